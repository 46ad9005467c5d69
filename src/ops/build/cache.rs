//! The shared build cache, `$XDG_CACHE_HOME/sultana/builds/<key>/`: the
//! staged prefix of a clean tree's build, keyed by what went into it (the
//! commit's tree, the rendered recipe with workspace paths left symbolic,
//! the dependencies' keys, the toolchain), like Yocto's sstate. A second
//! workspace at the same pins, a gate flight or a bisect step restores it
//! instead of building.
//!
//! An entry is made in a temporary folder and renamed into place, so it is
//! whole or absent; a run killed while storing leaves a temporary folder
//! that later runs sweep. Restoring copies (never links: a staged file
//! edited in place must not change the cache), into a temporary folder
//! the build then renames into place.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::entry_files;
use crate::fsutil;

/// An entry's list of its files with their sha256 (see `entry_files`).
const FILES: &str = "files.json";
/// Far above any real prefix's list (Xen's: a few MB).
const MAX_FILES_JSON: u64 = 256 << 20;

/// What an entry says of itself (`meta.json`, written before the rename).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub component: String,
    pub describe: String,
    /// Seconds since the epoch.
    pub created: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub key: String,
    pub component: String,
    pub describe: String,
    pub bytes: u64,
    /// Seconds since the epoch it was last stored or restored.
    pub used: u64,
}

pub struct BuildCache {
    root: PathBuf,
}

const STALE_TEMPORARY: Duration = Duration::from_secs(3600);

impl BuildCache {
    pub fn locate() -> Result<BuildCache> {
        Ok(BuildCache {
            root: fsutil::cache_home()?.join("builds"),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The cache's folder, made when missing.
    pub fn ensure_root(&self) -> Result<&Path> {
        fs::create_dir_all(&self.root).with_context(|| format!("cannot create {}", self.root.display()))?;
        Ok(&self.root)
    }

    /// The folder of `key`'s entry (whole only when `has` says so).
    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.entry(key)
    }

    /// Whether a whole entry is there for `key` (its file list and meta
    /// file are written last, before the rename that makes it appear).
    pub fn has(&self, key: &str) -> bool {
        let entry = self.entry(key);
        entry.join("meta.json").is_file() && entry.join(FILES).is_file()
    }

    /// Copy the entry's prefix into `into` (which must not exist) and
    /// check the copy against the entry's file list; false when there is no
    /// whole entry for `key`. An entry whose copy differs (tampered,
    /// truncated, partial) is removed and the error says what differed.
    pub fn restore(&self, key: &str, into: &Path) -> Result<bool> {
        let entry = self.entry(key);
        if !self.has(key) {
            return Ok(false);
        }
        let listed: Option<entry_files::Files> = fsutil::read_bounded(&entry.join(FILES), MAX_FILES_JSON)
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok());
        // An error writing the copy (a full disk) says nothing of the
        // entry: it stays, and the component builds. Only what the copy
        // holds, compared with the list, makes it damaged.
        if let Err(e) = fsutil::copy_tree(&entry.join("prefix"), into) {
            let _ = fsutil::remove_all(into);
            if e.kind() != std::io::ErrorKind::InvalidInput {
                return Err(
                    anyhow::Error::from(e).context(format!("cannot restore {} from the build cache", entry.display()))
                );
            }
            // A FIFO, socket or device in the entry: damage.
        }
        let copied = entry_files::take(into, entry_files::Depth::Hashed);
        let damage = match (&listed, &copied) {
            (None, _) => Some("its file list is unreadable".to_string()),
            (_, Err(e)) => Some(format!("{e:#}")),
            (Some(listed), Ok(found)) => entry_files::first_difference(listed, found),
        };
        if let Some(damage) = damage {
            let _ = fsutil::remove_all(into);
            self.remove_entry(key);
            anyhow::bail!(
                "the build-cache entry {} is damaged ({damage}); it was removed",
                entry.display()
            );
        }
        crate::fault::point("build-cache-restored");
        // Last use, for `cache prune`: the meta file's time.
        let _ = fs::File::options()
            .append(true)
            .open(entry.join("meta.json"))
            .and_then(|f| f.set_modified(SystemTime::now()));
        Ok(true)
    }

    /// Keep `staged` (a component's staged prefix) under `key`. Another
    /// run that stored the same key first wins; both are the same build.
    pub fn store(&self, key: &str, staged: &Path, meta: &Meta) -> Result<()> {
        let entry = self.entry(key);
        if self.has(key) {
            return Ok(());
        }
        fs::create_dir_all(&self.root).with_context(|| format!("cannot create {}", self.root.display()))?;
        self.sweep_temporaries();
        // Apart per process and per thread: builds of one key can run at
        // once in one run (identical components) as in several.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temporary = self.root.join(format!(".tmp-{key}-{}-{n}", std::process::id()));
        fsutil::remove_all(&temporary)?;
        let filled = (|| -> Result<()> {
            fsutil::copy_tree(staged, &temporary.join("prefix"))?;
            crate::fault::point("build-cache-storing");
            // The list of what was copied: what a restore checks against.
            let files = entry_files::take(&temporary.join("prefix"), entry_files::Depth::Hashed)?;
            fsutil::atomic_write(&temporary.join(FILES), &serde_json::to_vec(&files)?)?;
            fsutil::atomic_write(&temporary.join("meta.json"), &serde_json::to_vec_pretty(meta)?)?;
            Ok(())
        })();
        if let Err(e) = filled {
            let _ = fsutil::remove_all(&temporary);
            return Err(e.context(format!("cannot store {} in the build cache", meta.component)));
        }
        // A folder left by a run killed half way through an old layout, or
        // without its meta file or file list: not an entry, replaced.
        if entry.exists() && !self.has(key) {
            self.remove_entry(key);
        }
        if fs::rename(&temporary, &entry).is_err() {
            // Stored meanwhile by another run.
            let _ = fsutil::remove_all(&temporary);
        }
        Ok(())
    }

    /// Take an entry away at once (renamed aside, then removed), so that a
    /// run restoring it has it whole or not at all.
    fn remove_entry(&self, key: &str) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let trash = self.root.join(format!(".trash-{key}-{}-{n}", std::process::id()));
        if fs::rename(self.entry(key), &trash).is_ok() {
            let _ = fsutil::remove_all(&trash);
        }
    }

    /// Temporary folders of runs killed an hour ago or more.
    fn sweep_temporaries(&self) {
        let Ok(entries) = fs::read_dir(&self.root) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with(".tmp-") || name.starts_with(".trash-")) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= STALE_TEMPORARY);
            if old {
                let _ = fsutil::remove_all(&entry.path());
            }
        }
    }

    /// Every whole entry, most recently used first.
    pub fn entries(&self) -> Vec<Entry> {
        let Ok(dir) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut out: Vec<Entry> = dir
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let meta_file = e.path().join("meta.json");
                let meta: Meta = serde_json::from_slice(&fs::read(&meta_file).ok()?).ok()?;
                let used = fs::metadata(&meta_file)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                Some(Entry {
                    key: e.file_name().to_string_lossy().to_string(),
                    component: meta.component,
                    describe: meta.describe,
                    bytes: fsutil::size_of(&e.path()),
                    used,
                })
            })
            .collect();
        out.sort_by(|a, b| b.used.cmp(&a.used).then(a.key.cmp(&b.key)));
        out
    }

    /// Remove the least recently used entries until the rest fit in
    /// `max_bytes` (all of them with 0), and what killed runs left.
    /// Returns the entries removed. An entry disappears at once (renamed
    /// away first), so a run restoring it either has it whole or falls
    /// back to building.
    #[cfg(test)]
    pub fn prune(&self, max_bytes: u64) -> Result<Vec<Entry>> {
        self.prune_older(max_bytes, None)
    }

    /// `prune`, and also every entry not used since `unused_since`
    /// (seconds since the epoch).
    pub fn prune_older(&self, max_bytes: u64, unused_since: Option<u64>) -> Result<Vec<Entry>> {
        let mut removed = Vec::new();
        let mut total: u64 = 0;
        for entry in self.entries() {
            let recent = unused_since.is_none_or(|since| entry.used >= since);
            if recent && total + entry.bytes <= max_bytes {
                total += entry.bytes;
                continue;
            }
            let path = self.entry(&entry.key);
            let trash = self.root.join(format!(".trash-{}-{}", entry.key, std::process::id()));
            if fs::rename(&path, &trash).is_ok() {
                fsutil::remove_all(&trash).with_context(|| format!("cannot remove {}", trash.display()))?;
                removed.push(entry);
            }
        }
        // Leftovers of killed runs (not a store still in progress).
        self.sweep_temporaries();
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(component: &str) -> Meta {
        Meta {
            component: component.into(),
            describe: "v1".into(),
            created: 0,
        }
    }

    #[test]
    fn threads_storing_and_restoring_one_key_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache {
            root: dir.path().join("builds"),
        };
        let staged = dir.path().join("staged");
        fs::create_dir_all(staged.join("usr/lib")).unwrap();
        for i in 0..50 {
            fs::write(staged.join(format!("usr/lib/f{i}")), format!("{i}")).unwrap();
        }
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (cache, staged, dir) = (&cache, &staged, dir.path());
                scope.spawn(move || {
                    for round in 0..5 {
                        cache.store("k", staged, &meta("a")).unwrap();
                        let into = dir.join(format!("r-{t}-{round}"));
                        assert!(cache.restore("k", &into).unwrap());
                        assert_eq!(fs::read_to_string(into.join("usr/lib/f7")).unwrap(), "7");
                    }
                });
            }
        });
        let left: Vec<String> = fs::read_dir(&cache.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(left, ["k"], "one entry, no temporary left");
        let inside: Vec<String> = fs::read_dir(cache.root.join("k"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(inside, ["files.json", "meta.json", "prefix"]);
    }

    #[test]
    fn an_entry_is_stored_once_restored_as_a_copy_and_pruned_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache {
            root: dir.path().join("builds"),
        };
        let staged = dir.path().join("staged");
        fs::create_dir_all(staged.join("usr/bin")).unwrap();
        fs::write(staged.join("usr/bin/tool"), "v1").unwrap();
        cache.store("k1", &staged, &meta("a")).unwrap();
        // The same key again keeps the first.
        fs::write(staged.join("usr/bin/tool"), "other").unwrap();
        cache.store("k1", &staged, &meta("a")).unwrap();
        let into = dir.path().join("restored");
        assert!(cache.restore("k1", &into).unwrap());
        assert_eq!(fs::read_to_string(into.join("usr/bin/tool")).unwrap(), "v1");
        // A copy: editing it leaves the cache alone.
        fs::write(into.join("usr/bin/tool"), "edited").unwrap();
        let again = dir.path().join("again");
        cache.restore("k1", &again).unwrap();
        assert_eq!(fs::read_to_string(again.join("usr/bin/tool")).unwrap(), "v1");
        assert!(!cache.restore("absent", &dir.path().join("x")).unwrap());

        // A folder without its meta file (a killed store) is no entry.
        fs::create_dir_all(cache.root.join("k0/prefix")).unwrap();
        assert!(!cache.restore("k0", &dir.path().join("y")).unwrap());
        fs::create_dir_all(cache.root.join(".tmp-k9-1/prefix")).unwrap();

        cache.store("k2", &staged, &meta("b")).unwrap();
        let old = SystemTime::now() - Duration::from_secs(1000);
        fs::File::options()
            .append(true)
            .open(cache.root.join("k1/meta.json"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let keys: Vec<String> = cache.entries().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["k2", "k1"], "most recently used first; k0 is no entry");
        let one = cache.entries()[0].bytes;
        let removed = cache.prune(one).unwrap();
        assert_eq!(removed.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["k1"]);
        assert!(
            cache.root.join(".tmp-k9-1").exists(),
            "a store in progress is left alone"
        );
        assert_eq!(cache.prune(0).unwrap().len(), 1);
        assert!(cache.entries().is_empty());
    }
}
