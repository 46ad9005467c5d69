//! What a staged prefix holds, file by file: the kind, mode and size of
//! each entry, a file's sha256 and a link's target. A build-cache entry
//! carries this list (`files.json`); a restore compares the copy it made
//! with it, so a tampered, truncated or half-written entry is never taken
//! for a build. FIFOs, sockets and devices are refused without being
//! opened (opening a FIFO blocks for ever).

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The form of `files.json`; another version is no entry of this sultana's.
pub const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{path} in {root} is a {kind}: a staged prefix holds files, folders and links only")]
    Special {
        root: String,
        path: String,
        kind: &'static str,
    },
    #[error("{path} in {root} has a name that is not UTF-8")]
    Name { root: String, path: String },
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub path: String,
    pub kind: Kind,
    /// Permission bits (links: 0).
    pub mode: u32,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    pub version: u32,
    /// Sorted by path.
    pub items: Vec<Item>,
}

/// Whether to read every file for its sha256 (storing, restoring) or only
/// look at the kinds (checking a fresh build's staged prefix).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    Hashed,
    KindsOnly,
}

/// Every entry below `root`, sorted; an error for a FIFO, socket or device
/// (never opened) and for a name that is not UTF-8.
pub fn take(root: &Path, depth: Depth) -> Result<Files, FilesError> {
    let mut items = Vec::new();
    walk(root, root, depth, &mut items)?;
    items.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Files {
        version: VERSION,
        items,
    })
}

fn walk(root: &Path, dir: &Path, depth: Depth, out: &mut Vec<Item>) -> Result<(), FilesError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| FilesError::Io { path, source }
    };
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let Some(name) = relative.to_str().map(str::to_string) else {
            return Err(FilesError::Name {
                root: root.display().to_string(),
                path: relative.display().to_string(),
            });
        };
        let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
        let kind = meta.file_type();
        let special = if kind.is_fifo() {
            Some("FIFO")
        } else if kind.is_socket() {
            Some("socket")
        } else if kind.is_block_device() || kind.is_char_device() {
            Some("device")
        } else {
            None
        };
        if let Some(kind) = special {
            return Err(FilesError::Special {
                root: root.display().to_string(),
                path: name,
                kind,
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(io(&path))?;
            out.push(Item {
                path: name,
                kind: Kind::Symlink,
                mode: 0,
                size: 0,
                sha256: None,
                target: Some(target.to_string_lossy().into_owned()),
            });
        } else if kind.is_dir() {
            out.push(Item {
                path: name,
                kind: Kind::Dir,
                mode,
                size: 0,
                sha256: None,
                target: None,
            });
            walk(root, &path, depth, out)?;
        } else {
            let sha256 = match depth {
                Depth::Hashed => Some(hash_file(&path).map_err(io(&path))?),
                Depth::KindsOnly => None,
            };
            out.push(Item {
                path: name,
                kind: Kind::File,
                mode,
                size: meta.len(),
                sha256,
                target: None,
            });
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    // O_NOFOLLOW|O_NONBLOCK: a file swapped for a FIFO or a link since it
    // was looked at is never waited on or followed.
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(super::fingerprint::hex(&hash.finalize()))
}

/// The first difference between what an entry says it holds and what a
/// copy of it holds, in words; None when they are the same.
pub fn first_difference(expected: &Files, found: &Files) -> Option<String> {
    if expected.version != found.version {
        return Some(format!("its file list is of version {}", expected.version));
    }
    let mut theirs = found.items.iter().peekable();
    for want in &expected.items {
        let Some(have) = theirs.peek() else {
            return Some(format!("{} is missing", want.path));
        };
        if have.path < want.path {
            return Some(format!("{} is not in its file list", have.path));
        }
        if have.path > want.path {
            return Some(format!("{} is missing", want.path));
        }
        if *have != want {
            let what = if have.kind != want.kind {
                "is of another kind"
            } else if have.size != want.size {
                "has another size"
            } else if have.sha256 != want.sha256 {
                "has other content"
            } else if have.target != want.target {
                "points elsewhere"
            } else {
                "has another mode"
            };
            return Some(format!("{} {what}", want.path));
        }
        theirs.next();
    }
    theirs
        .next()
        .map(|extra| format!("{} is not in its file list", extra.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_compared_entry_by_entry() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::write(root.join("usr/bin/tool"), "v1").unwrap();
        std::os::unix::fs::symlink("tool", root.join("usr/bin/alias")).unwrap();
        let files = take(&root, Depth::Hashed).unwrap();
        let paths: Vec<&str> = files.items.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["usr", "usr/bin", "usr/bin/alias", "usr/bin/tool"]);
        assert_eq!(first_difference(&files, &files), None);

        fs::write(root.join("usr/bin/tool"), "v2").unwrap();
        let changed = take(&root, Depth::Hashed).unwrap();
        assert_eq!(
            first_difference(&files, &changed).as_deref(),
            Some("usr/bin/tool has other content")
        );
        fs::write(root.join("usr/bin/tool"), "v").unwrap();
        let truncated = take(&root, Depth::Hashed).unwrap();
        assert_eq!(
            first_difference(&files, &truncated).as_deref(),
            Some("usr/bin/tool has another size")
        );
        fs::remove_file(root.join("usr/bin/tool")).unwrap();
        let partial = take(&root, Depth::Hashed).unwrap();
        assert_eq!(
            first_difference(&files, &partial).as_deref(),
            Some("usr/bin/tool is missing")
        );
        fs::write(root.join("extra"), "").unwrap();
        let more = take(&root, Depth::Hashed).unwrap();
        assert_eq!(
            first_difference(&partial, &more).as_deref(),
            Some("extra is not in its file list")
        );
    }

    #[test]
    fn a_fifo_is_refused_without_being_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a fresh path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
        // Hangs for ever if it is opened.
        let err = take(dir.path(), Depth::Hashed).unwrap_err();
        assert!(matches!(err, FilesError::Special { kind: "FIFO", .. }), "{err}");
        assert!(take(dir.path(), Depth::KindsOnly).is_err());
    }
}
