//! Who uses a cache store: each checkout that borrows its objects (through
//! `objects/info/alternates`) is written down in the store, and each run
//! that opens the store stamps it. `cache prune --git` removes a store only
//! when no recorded checkout borrows from it any more and nothing opened it
//! for a while: a checkout whose borrowed objects went would be broken.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::fsutil::{self, FileLock};
use crate::printer::Printer;

/// Inside a store: one file per checkout, holding its git folder's path.
const USERS: &str = "sultana-users";
/// Inside a store: touched whenever a run opens it.
const USED: &str = "sultana-used";

/// Write down that the checkout whose git folder is `git_dir` borrows the
/// objects of the store at `store`. Only in a store that keeps a record:
/// one made before records began stays unknown (its older checkouts are in
/// no record), so a checkout made now does not make it prunable. Best
/// effort: a read-only or shared cache still serves checkouts.
pub fn record(store: &Path, git_dir: &Path) {
    if !has_record(store) {
        return;
    }
    let git_dir = canonical(git_dir);
    let users = store.join(USERS);
    let name: String = Sha256::digest(git_dir.as_os_str().as_encoded_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let file = users.join(name);
    let already = std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file())
        && fsutil::read_bounded(&file, 4096).ok().as_deref() == Some(git_dir.as_os_str().as_encoded_bytes());
    if !already {
        let _ = fsutil::atomic_write(&file, git_dir.as_os_str().as_encoded_bytes());
    }
}

/// Stamp the store as used now (best effort: a read-only cache still reads).
pub fn touch(store: &Path) {
    let stamp = store.join(USED);
    let stamped = std::fs::File::options()
        .write(true)
        .open(&stamp)
        .and_then(|f| f.set_modified(SystemTime::now()));
    if stamped.is_err() {
        let _ = std::fs::write(&stamp, b"");
    }
}

/// Start the record of a new store's users (a store made before records
/// began has none, and is never pruned: who borrows from it is unknown).
pub fn start_record(store: &Path) -> Result<()> {
    // (A new store, not yet in place: nothing else writes here.)
    let users = store.join(USERS);
    std::fs::create_dir_all(&users).with_context(|| format!("cannot create {}", users.display()))
}

/// Whether the store keeps a record of its users (a real folder: a link
/// planted there is no record, and is never written through).
pub fn has_record(store: &Path) -> bool {
    std::fs::symlink_metadata(store.join(USERS)).is_ok_and(|m| m.is_dir())
}

/// Whether someone's work is saved in the store (`distclean --force` and
/// `update --force` put it under refs/sultana/backup/): never pruned.
fn holds_backups(store: &Path) -> bool {
    let Ok(repo) = git2::Repository::open_bare(store) else {
        // Unreadable: not known to be free of work.
        return true;
    };
    repo.references_glob("refs/sultana/backup/*")
        .map(|mut refs| refs.next().is_some())
        .unwrap_or(true)
}

/// When a run last opened the store (its creation when never stamped).
pub fn last_used(store: &Path) -> Option<SystemTime> {
    std::fs::metadata(store.join(USED))
        .or_else(|_| std::fs::metadata(store))
        .and_then(|m| m.modified())
        .ok()
}

/// The recorded checkouts that still borrow from `store`: a record whose
/// checkout is gone, or no longer names the store in its alternates, is
/// no user.
pub fn live(store: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(store.join(USERS)) else {
        return Vec::new();
    };
    let objects = std::fs::canonicalize(store.join("objects")).unwrap_or_else(|_| store.join("objects"));
    let mut out = Vec::new();
    for entry in entries.flatten() {
        // Regular files only: a FIFO or a link planted here is no record.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(bytes) = fsutil::read_bounded(&entry.path(), 4096) else {
            continue;
        };
        let git_dir = PathBuf::from(String::from_utf8_lossy(&bytes).into_owned());
        if borrows(&git_dir, &objects) {
            out.push(git_dir);
        }
    }
    out.sort();
    out
}

/// Whether the repository at `git_dir` lists `objects` among its alternates.
fn borrows(git_dir: &Path, objects: &Path) -> bool {
    let own = git_dir.join("objects");
    let Ok(text) = fsutil::read_bounded(&own.join("info/alternates"), 64 << 10) else {
        return false;
    };
    String::from_utf8_lossy(&text).lines().any(|line| {
        let line = Path::new(line.trim());
        let full = if line.is_absolute() {
            line.to_path_buf()
        } else {
            own.join(line)
        };
        std::fs::canonicalize(&full).ok().as_deref() == Some(objects) || full == objects
    })
}

/// Whether the store has gone unopened for `unused` and no recorded
/// checkout borrows from it.
pub fn is_unused(store: &Path, unused: Duration) -> bool {
    if !has_record(store) || holds_backups(store) {
        return false;
    }
    let old = last_used(store)
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= unused);
    old && live(store).is_empty()
}

/// A rebuilt store takes over the damaged one's record (or its lack of one:
/// the users of a store made before records stay unknown).
pub fn carry(from: &Path, to: &Path) {
    let (old, new) = (from.join(USERS), to.join(USERS));
    if !old.is_dir() {
        let _ = fsutil::remove_all(&new);
        return;
    }
    let _ = std::fs::create_dir_all(&new);
    for entry in std::fs::read_dir(&old).into_iter().flatten().flatten() {
        if let Ok(bytes) = fsutil::read_bounded(&entry.path(), 4096) {
            let _ = fsutil::atomic_write(&new.join(entry.file_name()), &bytes);
        }
    }
}

/// One store `cache prune --git` removed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PrunedStore {
    pub url: String,
    pub dir: PathBuf,
    pub bytes: u64,
}

/// What `cache prune --git` did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StorePrune {
    pub removed: Vec<PrunedStore>,
    /// Kept: a checkout borrows from it, or a run opened it lately.
    pub kept: usize,
    /// Kept: made before sultana recorded who uses a store.
    pub unknown: usize,
}

/// Remove the stores under `root` that no recorded checkout borrows from
/// and no run opened for `unused`. Each goes under its lock, checked again
/// there, renamed aside first (a killed prune leaves `*.pruning`, which
/// the next one finishes).
pub fn prune(root: &Path, unused: Duration, printer: &crate::printer::Printer) -> Result<StorePrune> {
    let mut out = StorePrune::default();
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(out);
    };
    let mut stores = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only real folders: a symlink planted here is never followed out.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if name.ends_with(".pruning") {
            fsutil::remove_all(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        } else if is_store_name(&name) {
            stores.push(path);
        }
    }
    stores.sort();
    for store in stores {
        if !store.is_dir() {
            continue; // another prune took it meanwhile
        }
        if !has_record(&store) {
            out.unknown += 1;
            continue;
        }
        if !is_unused(&store, unused) {
            out.kept += 1;
            continue;
        }
        let url = git2::Repository::open_bare(&store)
            .ok()
            .and_then(|r| r.config().ok()?.get_string("sultana.url").ok())
            .unwrap_or_default();
        let _lock = lock_store(&store, &url, printer)?;
        // Another run may have opened it or borrowed from it meanwhile.
        if !is_unused(&store, unused) {
            out.kept += 1;
            continue;
        }
        let bytes = fsutil::size_of(&store);
        let mut aside = store.as_os_str().to_owned();
        aside.push(".pruning");
        let aside = PathBuf::from(aside);
        std::fs::rename(&store, &aside).with_context(|| format!("cannot move {} aside", store.display()))?;
        crate::fault::point("store-pruning");
        fsutil::remove_all(&aside).with_context(|| format!("cannot remove {}", aside.display()))?;
        out.removed.push(PrunedStore {
            url: crate::validate::redact_url(&url),
            dir: store,
            bytes,
        });
    }
    Ok(out)
}

/// `NAME-<16 hex>`, as `Cache::store_dir` names a store.
fn is_store_name(name: &str) -> bool {
    name.rsplit_once('-')
        .is_some_and(|(base, hex)| !base.is_empty() && hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `path` with its symlinks resolved; one not made yet resolved through
/// its parent (the checkout being made beside it).
fn canonical(path: &Path) -> PathBuf {
    if let Ok(full) = std::fs::canonicalize(path) {
        return full;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => canonical(parent).join(name),
        _ => path.to_path_buf(),
    }
}

/// The lock of the store at `dir`, held while a run changes it.
pub(super) fn lock_store(dir: &Path, url: &str, printer: &Printer) -> Result<FileLock> {
    let mut name = dir.as_os_str().to_owned();
    name.push(".lock");
    FileLock::exclusive(Path::new(&name), &format!("the git cache of {url}"), printer)
}
