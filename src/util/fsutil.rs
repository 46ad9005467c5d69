//! File-system helpers: atomic writes and advisory locks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::printer::Printer;

/// Write `contents` to `path` through a temporary file in the same folder and a
/// rename, so a reader (or a run after a kill) sees the old file or the new one,
/// never half of one.
/// `$XDG_CACHE_HOME/sultana`, else `$HOME/.cache/sultana`: the git and
/// build caches and the compiler cache, shared by every workspace.
pub fn cache_home() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| anyhow::anyhow!("neither XDG_CACHE_HOME nor HOME is set: cannot place the cache"))?;
            PathBuf::from(home).join(".cache")
        }
    };
    Ok(base.join("sultana"))
}

pub fn atomic_write(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".sultana-tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    // tempfile makes 0600 files: keep the mode of the file replaced, else
    // the usual 0644 (a lock or SHA256SUMS is for everyone to read).
    let mode = fs::metadata(path).map(|m| m.permissions()).unwrap_or_else(|_| {
        use std::os::unix::fs::PermissionsExt;
        fs::Permissions::from_mode(0o644)
    });
    tmp.write_all(contents)
        .and_then(|_| tmp.as_file().set_permissions(mode))
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    crate::fault::point("atomic-write");
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// An exclusive advisory lock on a file, released when dropped (or when the
/// process dies, so a killed run never leaves a stale lock).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Take the lock, telling the user when another process holds it.
    pub fn exclusive(path: &Path, what: &str, printer: &Printer) -> Result<FileLock> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        // A moment's contention is not worth a message: a child that another
        // thread forks holds a copy of the descriptor until it execs.
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if tries < 20 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    printer.status("Blocking", format!("waiting for file lock on {what}"));
                    file.lock().with_context(|| format!("cannot lock {}", path.display()))?;
                    break;
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
        }
        Ok(FileLock { _file: file })
    }
}

/// Remove a file or a whole folder, ignoring one that is already gone.
pub fn remove_all(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Append to a log, best effort: a log that cannot be written loses a line,
/// never the run.
pub fn append_log(log: &Path, bytes: &[u8]) {
    use std::io::Write;
    if let Ok(mut file) = fs::OpenOptions::new().append(true).create(true).open(log) {
        let _ = file.write_all(bytes);
    }
}

/// Remove a folder sultana made for scratch (a flight's, a test's work):
/// what a test left read-only in it (`chmod 555`, as Go's module cache does)
/// is made writable first, folders only, never through a symlink.
pub fn remove_scratch(path: &Path) -> io::Result<()> {
    match remove_all(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_folders_writable(path);
            remove_all(path)
        }
        other => other,
    }
}

fn make_folders_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(dir) else { return };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_folders_writable(&entry.path());
            }
        }
    }
}

/// The last `max` bytes of a file (all of it when shorter): where a log's
/// failure is, without reading a log of any size whole.
pub fn read_tail(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut out = Vec::new();
    file.take(max).read_to_end(&mut out)?;
    Ok(out)
}

/// Read a whole file of untrusted size, refusing one larger than `max` bytes
/// (an `InvalidData` error) without reading more than that into memory.
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = File::open(path)?;
    let mut out = Vec::new();
    file.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {max} bytes", path.display()),
        ));
    }
    Ok(out)
}

/// True when `path` is a folder with nothing in it.
pub fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path)
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(false)
}

/// `500M`, `10G`, `1.5G`, `123` (bytes); K, M, G, T are powers of 1024.
/// (Also clap's parser of `--max-size`: the error is its message.)
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a size: use a number with K, M, G or T (e.g. 10G)");
    let trimmed = text.trim();
    let (number, unit) = match trimmed.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&trimmed[..i], trimmed[i..].to_ascii_uppercase()),
        None => (trimmed, String::new()),
    };
    let factor: u64 = match unit.trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    let value: f64 = number
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(bad)?;
    Ok((value * factor as f64) as u64)
}

/// `1.5 GiB`, `12.0 KiB`, `300 B`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// What a folder takes on disk, as `du` counts it (allocated blocks, not
/// file lengths: a cache of many small files takes far more than their
/// bytes).
pub fn size_of(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let own = fs::symlink_metadata(dir).map_or(0, |m| m.blocks() * 512);
    let Ok(entries) = fs::read_dir(dir) else { return own };
    own + entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            _ => fs::symlink_metadata(e.path()).map_or(0, |m| m.blocks() * 512),
        })
        .sum::<u64>()
}

/// Copy a folder recursively (not `.git`), keeping symlinks and the modes
/// of files and folders; a FIFO, socket or device is refused unopened.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == ".git" {
            continue;
        }
        let source = entry.path();
        let target = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&source)?;
        if meta.file_type().is_symlink() {
            remove_all(&target)?;
            std::os::unix::fs::symlink(fs::read_link(&source)?, &target)?;
        } else if meta.is_dir() {
            copy_tree(&source, &target)?;
        } else if meta.is_file() {
            fs::copy(&source, &target)?;
        } else {
            // A FIFO would block the copy for ever; a device is no file.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a FIFO, socket or device: not copied", source.display()),
            ));
        }
    }
    // The folder's own mode, whatever the umask (a copy is the same
    // tree), set last: a read-only folder is filled first.
    fs::set_permissions(to, fs::metadata(from)?.permissions())?;
    Ok(())
}

/// Bytes as lower-case hex (digests, in files and messages).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest `D` (SHA-256, SHA-512) of the file at `path`, read in a
/// stream, as lower-case hex.
pub fn file_digest<D: sha2::Digest + Write>(path: &Path) -> Result<String> {
    let mut hash = D::new();
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    io::copy(&mut file, &mut hash).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex(&hash.finalize()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tail_of_a_big_log_is_its_last_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut text = vec![b'x'; 5 << 20];
        text.extend_from_slice(b"\n\xff not utf-8\nFAIL: the reason\n");
        std::fs::write(&log, &text).unwrap();
        let tail = super::read_tail(&log, 1024).unwrap();
        assert_eq!(tail.len(), 1024);
        assert!(String::from_utf8_lossy(&tail).ends_with("FAIL: the reason\n"));
        let short = dir.path().join("short");
        std::fs::write(&short, b"ok\n").unwrap();
        assert_eq!(super::read_tail(&short, 1024).unwrap(), b"ok\n");
    }
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes_are_read_as_people_write_them() {
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("2K").unwrap(), 2048);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("10gib").unwrap(), 10 << 30);
        for bad in ["", "G", "-1M", "1X", "nanG"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
