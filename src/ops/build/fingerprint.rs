//! What decides whether a component must be rebuilt: the content of its
//! source tree (file bytes, exec bits, link targets; never modification
//! times, so `touch` or moving to another commit and back changes nothing),
//! with the other inputs of the build hashed beside it.
//!
//! Hashing every file on every run would cost a full read of the tree, so
//! a file index remembers each file's hash with its size, times and inode,
//! as git's index does: a file whose stat is unchanged keeps its hash, one
//! that changed is read again. A file changed within two seconds of being
//! indexed is always read again (git's "racy" case).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Each file of a tree (relative path, lossless when UTF-8) with what it
/// was hashed from.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileIndex {
    /// Seconds since the epoch when the index was taken.
    pub taken: i64,
    pub files: BTreeMap<String, FileEntry>,
    /// What builds wrote: each file a build created (or rewrote, having
    /// created it before) with its hash as that build left it. Such a file
    /// is an output, not a source: left unchanged, it is no input of the
    /// build-cache key (a scratch tree still holding another commit's
    /// objects has the key of a fresh clone).
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    /// Untracked files that changed while the last build ran and were kept
    /// as they were before it: one that changes during the next build too
    /// is the build's own (a stamp it rewrites, an output of a build made
    /// by hand or by an older sultana), not a developer's edit.
    #[serde(default)]
    pub unsettled: std::collections::BTreeSet<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// sha256 of the content (or of the link target for a symlink).
    pub hash: String,
    /// `x` executable, `l` symlink, `f` other file.
    pub kind: char,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ctime: i64,
    pub ctime_nsec: i64,
    pub ino: u64,
}

impl FileIndex {
    /// Read an index written by `save`; a missing or unreadable one is empty
    /// (everything is hashed again, nothing is trusted).
    pub fn load(path: &Path) -> FileIndex {
        fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(self)?;
        crate::fsutil::atomic_write(path, &bytes)
    }

    /// The tree's fingerprint: every path with its kind and hash.
    pub fn fingerprint(&self) -> String {
        self.fingerprint_of_entries(|_, _| true)
    }

    /// Paths whose content differs from `before`: changed, added, removed.
    pub fn changed_since(&self, before: &FileIndex) -> Vec<String> {
        let mut out: Vec<String> = self
            .files
            .iter()
            .filter(|(p, e)| {
                before
                    .files
                    .get(*p)
                    .is_none_or(|b| b.hash != e.hash || b.kind != e.kind)
            })
            .map(|(p, _)| p.clone())
            .collect();
        out.extend(before.files.keys().filter(|p| !self.files.contains_key(*p)).cloned());
        out.sort();
        out
    }

    /// The fingerprint of the tree's inputs: every file but the outputs
    /// builds left as they left them.
    pub fn input_fingerprint(&self) -> String {
        self.fingerprint_of_entries(|path, entry| self.outputs.get(path) != Some(&entry.hash))
    }

    /// The hash of the files `select` picks (e.g. what configure reads).
    pub fn fingerprint_of(&self, select: impl Fn(&str) -> bool) -> String {
        self.fingerprint_of_entries(|path, _| select(path))
    }

    fn fingerprint_of_entries(&self, select: impl Fn(&str, &FileEntry) -> bool) -> String {
        let mut hash = Sha256::new();
        for (path, entry) in self.files.iter().filter(|(p, e)| select(p, e)) {
            hash.update((path.len() as u64).to_le_bytes());
            hash.update(path.as_bytes());
            hash.update([entry.kind as u8]);
            hash.update(entry.hash.as_bytes());
        }
        hex(&hash.finalize())
    }
}

/// Index every file below `dir`, skipping `.git` entries and the top-level
/// folders named in `skip` (a workspace's own `build/`, `dist/` and
/// `.sultana/` when the tree is the workspace itself, as in an unpacked
/// release tarball); hashes are taken from `known` where a file's stat is
/// unchanged since then.
pub fn index(dir: &Path, skip: &[&str], known: &FileIndex) -> std::io::Result<FileIndex> {
    let taken = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut files = BTreeMap::new();
    // Links are judged by where they lead as the kernel resolves them.
    let root = fs::canonicalize(dir)?;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in fs::read_dir(&at)? {
            let entry = entry?;
            let name = entry.file_name();
            if name == ".git" || (at == dir && skip.iter().any(|s| name == *s)) {
                continue;
            }
            let path = entry.path();
            let meta = fs::symlink_metadata(&path)?;
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            let key = match rel.to_str() {
                Some(text) => text.to_string(),
                // Not UTF-8: the bytes, escaped, so that no two names meet.
                None => format!("\0{}", hex(rel.as_os_str().as_bytes())),
            };
            if meta.is_dir() {
                // A folder is content too: an empty one, and its mode.
                files.insert(
                    format!("{key}/"),
                    FileEntry {
                        hash: format!("dir:{:o}", meta.mode() & 0o7777),
                        kind: 'd',
                        size: 0,
                        mtime: 0,
                        mtime_nsec: 0,
                        ctime: 0,
                        ctime_nsec: 0,
                        ino: meta.ino(),
                    },
                );
                pending.push(path);
                continue;
            }
            let outside = if meta.file_type().is_symlink() {
                leads_outside(&path, &root)?
            } else {
                None
            };
            let kind = if outside.is_some() {
                // Read again every time: the link's own stat says nothing
                // of the file it leads to.
                'L'
            } else if meta.file_type().is_symlink() {
                'l'
            } else if !meta.is_file() {
                // A FIFO, socket or device: never opened (a FIFO would block).
                'o'
            } else if meta.mode() & 0o111 != 0 {
                'x'
            } else {
                'f'
            };
            let mut fresh = FileEntry {
                hash: String::new(),
                kind,
                size: meta.len(),
                mtime: meta.mtime(),
                mtime_nsec: meta.mtime_nsec(),
                ctime: meta.ctime(),
                ctime_nsec: meta.ctime_nsec(),
                ino: meta.ino(),
            };
            let reuse = known.files.get(&key).filter(|old| {
                old.kind == kind
                    && old.size == fresh.size
                    && old.mtime == fresh.mtime
                    && old.mtime_nsec == fresh.mtime_nsec
                    && old.ctime == fresh.ctime
                    && old.ctime_nsec == fresh.ctime_nsec
                    && old.ino == fresh.ino
                    // Changed in the same moment it was indexed: not to be trusted.
                    && fresh.mtime < known.taken.saturating_sub(1)
                    && fresh.ctime < known.taken.saturating_sub(1)
            });
            fresh.hash = match reuse.filter(|_| kind != 'L') {
                Some(old) => old.hash.clone(),
                None if kind == 'L' => {
                    let text = fs::read_link(&path)?;
                    let content = hash_file(outside.as_deref().unwrap_or(&path))?;
                    hex(&Sha256::digest(
                        [text.as_os_str().as_bytes(), b"\0", content.as_bytes()].concat(),
                    ))
                }
                None if kind == 'l' => hex(&Sha256::digest(fs::read_link(&path)?.as_os_str().as_bytes())),
                None if kind == 'o' => format!("special:{:o}", meta.mode() & 0o170000),
                None => hash_file(&path)?,
            };
            files.insert(key, fresh);
        }
    }
    let outputs = known
        .outputs
        .iter()
        .filter(|(path, _)| files.contains_key(*path))
        .map(|(p, h)| (p.clone(), h.clone()))
        .collect();
    let unsettled = known
        .unsettled
        .iter()
        .filter(|path| files.contains_key(*path))
        .cloned()
        .collect();
    Ok(FileIndex {
        taken,
        files,
        outputs,
        unsettled,
    })
}

/// What `settle` asks of the tree and of the build's processes.
pub struct Judge<'a> {
    /// git tracks the path.
    pub tracked: &'a dyn Fn(&str) -> bool,
    /// git ignores the path.
    pub ignored: &'a dyn Fn(&str) -> bool,
    /// The paths the build's processes wrote (see `trace`); None when the
    /// tracer was not there, and timing decides as before.
    pub written: Option<&'a std::collections::HashSet<String>>,
}

/// What a build leaves to record: the tree `after` it, except that a
/// source which changed while it ran (a developer's edit made during the
/// build, which the build may or may not have seen) is recorded as it was
/// `before`, so that the next run builds again and the build is never
/// stored under the key of the tree it started from.
///
/// What is an output rather than a source, with a trace: what the build's
/// processes wrote, but for a new file git would show (a developer's).
/// Without one (the tracer did not load): never a file git tracks; a file
/// the build created where git ignores it; a file builds wrote before; an
/// untracked file that changed during the last build too. `tracked` and
/// `ignored` answer for git (in a tree that is no checkout, nothing is
/// tracked and everything ignored).
pub fn settle(before: &FileIndex, after: FileIndex, judge: &Judge) -> (FileIndex, Vec<String>) {
    let Judge {
        tracked,
        ignored,
        written,
    } = *judge;
    let FileIndex {
        taken,
        mut files,
        mut outputs,
        ..
    } = after;
    let same = |a: Option<&FileEntry>, b: Option<&FileEntry>| match (a, b) {
        (Some(a), Some(b)) => a.hash == b.hash && a.kind == b.kind,
        (None, None) => true,
        _ => false,
    };
    let paths: std::collections::BTreeSet<String> = files.keys().chain(before.files.keys()).cloned().collect();
    let mut changed = Vec::new();
    let mut unsettled = std::collections::BTreeSet::new();
    for path in paths {
        let (pre, post) = (before.files.get(&path), files.get(&path));
        if same(pre, post) {
            continue;
        }
        let output = match written {
            // What the build's processes wrote is theirs: a folder, a file
            // git ignores, one that was there before (even a tracked one
            // the build regenerates, as Xen's bison and flex outputs), but
            // never a new file git would show.
            Some(written) => {
                written.contains(path.trim_end_matches('/')) && (path.ends_with('/') || pre.is_some() || ignored(&path))
            }
            // Without a trace: git shows no folder by itself, so one that
            // changed is the build's; a file by the timing rules.
            None => {
                path.ends_with('/')
                    || (!tracked(&path)
                        && (before.outputs.contains_key(&path)
                            || before.unsettled.contains(&path)
                            || (pre.is_none() && ignored(&path))))
            }
        };
        if output && tracked(&path) {
            // A tracked file the build regenerated: no edit (it is built
            // from), but it stays in the key as it now is (never an output
            // left out of it): a tree where it differs from the commit is
            // dirty and has no key at all.
            continue;
        }
        if output {
            match post {
                Some(entry) => outputs.insert(path, entry.hash.clone()),
                None => outputs.remove(&path),
            };
            continue;
        }
        match pre {
            Some(entry) => files.insert(path.clone(), entry.clone()),
            None => files.remove(&path),
        };
        outputs.remove(&path);
        unsettled.insert(path.clone());
        changed.push(path);
    }
    (
        FileIndex {
            taken,
            files,
            outputs,
            unsettled,
        },
        changed,
    )
}

/// Where a symlink leads when that is a file outside `root` (whose content
/// is then what the link stands for); None for a link inside, one that
/// leads nowhere or to a device. A link to a folder outside is refused:
/// what it holds cannot be keyed.
fn leads_outside(link: &Path, root: &Path) -> std::io::Result<Option<std::path::PathBuf>> {
    let Ok(resolved) = fs::canonicalize(link) else {
        return Ok(None);
    };
    if resolved.starts_with(root) {
        return Ok(None);
    }
    let meta = fs::metadata(&resolved)?;
    if meta.is_file() {
        return Ok(Some(resolved));
    }
    if !meta.is_dir() {
        // A device, FIFO or socket (`.config -> /dev/null`): nothing to
        // read (and a FIFO must not be opened); the link's text stands.
        return Ok(None);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!(
            "{} is a symlink to {}, outside the tree, which is a folder: what it holds cannot be an input of the build; copy it into the tree or remove the link",
            link.display(),
            resolved.display()
        ),
    ))
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex(&hash.finalize()))
}

pub fn combine(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hex(&hash.finalize())
}

pub use crate::fsutil::hex;

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mtime(path: &Path, secs: i64) {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    #[test]
    fn content_counts_and_times_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.c");
        fs::write(&a, "1").unwrap();
        fs::create_dir(dir.path().join(".git")).unwrap();
        let before = index(dir.path(), &[], &FileIndex::default()).unwrap();
        fs::write(dir.path().join(".git/HEAD"), "x").unwrap();
        set_mtime(&a, 1_000_000);
        let touched = index(dir.path(), &[], &before).unwrap();
        assert_eq!(
            touched.fingerprint(),
            before.fingerprint(),
            "touch and .git change nothing"
        );
        fs::create_dir(dir.path().join("dist")).unwrap();
        fs::write(dir.path().join("dist/out"), "x").unwrap();
        assert_eq!(
            index(dir.path(), &["dist"], &before).unwrap().fingerprint(),
            before.fingerprint()
        );
        fs::write(&a, "2").unwrap();
        let edited = index(dir.path(), &["dist"], &touched).unwrap();
        assert_ne!(edited.fingerprint(), before.fingerprint());
        assert_eq!(edited.changed_since(&before), ["a.c"]);
        // The exec bit is content too.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&a, fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(
            index(dir.path(), &["dist"], &edited).unwrap().fingerprint(),
            edited.fingerprint()
        );
    }

    #[test]
    fn a_fifo_is_never_opened_and_a_hostile_index_time_does_not_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
        fs::write(dir.path().join("a"), "1").unwrap();
        let known = FileIndex {
            taken: i64::MIN,
            files: BTreeMap::new(),
            outputs: BTreeMap::new(),
            unsettled: Default::default(),
        };
        // Opening the FIFO would block here for ever.
        let index = index(dir.path(), &[], &known).unwrap();
        assert_eq!(index.files["fifo"].kind, 'o');
        assert_eq!(index.files.len(), 2);
    }

    #[test]
    fn an_unchanged_stat_keeps_its_hash_and_a_changed_one_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::write(&a, "same size 1").unwrap();
        set_mtime(&a, 1_000_000);
        let mut old = index(dir.path(), &[], &FileIndex::default()).unwrap();
        // A stale hash under an identical stat is trusted (that is the point),
        // once the file is older than the index…
        old.files.get_mut("a").unwrap().hash = "stale".into();
        old.taken += 10;
        assert_eq!(index(dir.path(), &[], &old).unwrap().files["a"].hash, "stale");
        // …but not once the file changed, even to the same size and mtime
        // (its ctime moved).
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&a, "same size 2").unwrap();
        set_mtime(&a, 1_000_000);
        assert_ne!(index(dir.path(), &[], &old).unwrap().files["a"].hash, "stale");
        // Nor a file changed in the second the index was taken (racy).
        let mut racy = index(dir.path(), &[], &FileIndex::default()).unwrap();
        racy.files.get_mut("a").unwrap().hash = "stale".into();
        assert_ne!(index(dir.path(), &[], &racy).unwrap().files["a"].hash, "stale");
    }

    #[test]
    fn settle_keeps_sources_edited_during_a_build_as_they_were_and_learns_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let at = |p: &str| dir.path().join(p);
        fs::write(at("main.c"), "1").unwrap();
        fs::write(at(".config"), "user").unwrap();
        let before = index(dir.path(), &[], &FileIndex::default()).unwrap();
        let tracked = |p: &str| p == "main.c";
        let ignored = |p: &str| p.ends_with(".o");
        // The build: an object created, .config rewritten, main.c edited, a
        // new source written where git would show it.
        fs::write(at("main.o"), "obj").unwrap();
        fs::write(at(".config"), "rewritten").unwrap();
        fs::write(at("main.c"), "2").unwrap();
        fs::write(at("extra.c"), "new").unwrap();
        let after = index(dir.path(), &[], &before).unwrap();
        let (recorded, edited) = settle(
            &before,
            after,
            &Judge {
                tracked: &tracked,
                ignored: &ignored,
                written: None,
            },
        );
        assert_eq!(
            edited,
            [".config", "extra.c", "main.c"],
            "sources changed during the build"
        );
        assert!(!recorded.files.contains_key("extra.c"), "recorded as absent");
        assert_eq!(recorded.files["main.c"], before.files["main.c"]);
        assert_eq!(recorded.files[".config"], before.files[".config"]);
        assert_eq!(recorded.outputs.keys().collect::<Vec<_>>(), ["main.o"]);
        // The outputs are no input of the key; the sources are.
        let mut without = recorded.clone();
        without.files.remove("main.o");
        without.outputs.clear();
        assert_eq!(recorded.input_fingerprint(), without.fingerprint());
        // Next build rewrites its own output: still an output. An output a
        // developer changed is an input again.
        // .config changes during this build too: the build's own, not an edit.
        let before = index(dir.path(), &[], &recorded).unwrap();
        fs::write(at("main.o"), "obj 2").unwrap();
        fs::write(at(".config"), "rewritten again").unwrap();
        let after = index(dir.path(), &[], &before).unwrap();
        let (recorded, edited) = settle(
            &before,
            after,
            &Judge {
                tracked: &tracked,
                ignored: &ignored,
                written: None,
            },
        );
        assert!(edited.is_empty(), "{edited:?}");
        assert!(recorded.outputs.contains_key(".config"));
        assert_eq!(recorded.outputs["main.o"], recorded.files["main.o"].hash);
        fs::write(at("main.o"), "by hand").unwrap();
        let now = index(dir.path(), &[], &recorded).unwrap();
        assert_ne!(now.input_fingerprint(), recorded.input_fingerprint());
        // A tracked file is never an output, even one the build created.
        let before = index(dir.path(), &[], &FileIndex::default()).unwrap();
        fs::write(at("gen.h"), "x").unwrap();
        let after = index(dir.path(), &[], &before).unwrap();
        let (recorded, edited) = settle(
            &before,
            after,
            &Judge {
                tracked: &|p| p == "gen.h",
                ignored: &|_| true,
                written: None,
            },
        );
        assert_eq!(edited, ["gen.h"]);
        assert!(!recorded.files.contains_key("gen.h"));
    }

    #[test]
    fn with_a_trace_only_what_the_build_wrote_is_an_output() {
        let dir = tempfile::tempdir().unwrap();
        let at = |p: &str| dir.path().join(p);
        fs::write(at("main.c"), "1").unwrap();
        let ignored = |p: &str| p.ends_with(".o") || p == ".config";
        let mut recorded = index(dir.path(), &[], &FileIndex::default()).unwrap();
        // Build after build, the developer writes the ignored .config while
        // it runs; the build writes main.o (and a new folder).
        for round in 0..3 {
            let before = index(dir.path(), &[], &recorded).unwrap();
            fs::write(at("main.o"), format!("obj {round}")).unwrap();
            fs::write(at("main.c"), format!("regenerated {round}")).unwrap();
            fs::create_dir_all(at("objs")).unwrap();
            fs::write(at(".config"), format!("by hand {round}")).unwrap();
            if round == 0 {
                // A folder made by hand meanwhile: no output either.
                fs::create_dir(at("mine")).unwrap();
            }
            let after = index(dir.path(), &[], &before).unwrap();
            let written: std::collections::HashSet<String> =
                ["main.o".to_string(), "main.c".to_string(), "objs".to_string()].into();
            let (next, edited) = settle(
                &before,
                after,
                &Judge {
                    tracked: &|p| p == "main.c",
                    ignored: &ignored,
                    written: Some(&written),
                },
            );
            let expected: &[&str] = if round == 0 {
                &[".config", "mine/"]
            } else {
                &[".config"]
            };
            assert_eq!(edited, expected, "round {round}: never the build's");
            // A tracked file the build regenerates is no edit, and stays in
            // the key (no output left out of it).
            assert!(!next.outputs.contains_key("main.c"));
            assert!(next.outputs.contains_key("main.o"));
            assert!(next.outputs.contains_key("objs/"));
            assert!(!next.outputs.contains_key(".config"));
            recorded = next;
        }
    }
}
