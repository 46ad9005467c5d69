//! Flight history retention, as osstest's cleanup jobs keep its history in
//! bounds: the newest flights are kept whole, and of the older ones what
//! classification still reads (see `FlightDb::prune`): the flights of the
//! pinned revisions, every gate's baseline, and for each test as defined
//! the newest flight it passed in. The rest goes: rows first, in one
//! transaction, then folders. A numbered folder without a row is what a
//! killed prune left and goes too.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::db::FlightDb;
use crate::fsutil;
use crate::workspace::Workspace;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Pruned {
    /// Flights removed, oldest first.
    pub removed: Vec<i64>,
    /// Flights older than the newest `keep`, kept as evidence.
    pub evidence: usize,
    /// Flights left in the history.
    pub left: usize,
    /// Disk space of the removed folders.
    pub freed_bytes: u64,
    /// Folders that could not be removed, with why.
    pub stuck: Vec<String>,
}

/// Prune the history of `ws` to its newest `keep` flights and the evidence.
/// The caller holds the workspace lock: no flight is running.
pub fn prune(ws: &Workspace, db: &FlightDb, keep: usize) -> Result<Pruned> {
    let lock = ws
        .load_lock()
        .context("the flight history keeps the flights of the locked commits")?;
    let pins: Vec<(String, String)> = ws
        .manifest
        .components
        .iter()
        .filter_map(|c| lock.get(&c.name).map(|e| (c.name.clone(), e.commit.clone())))
        .collect();
    let pruning = db.prune(keep, &pins)?;
    let kept = db.flight_ids()?;
    let dir = ws.state_dir().join("flights");
    let mut freed = 0;
    let mut stuck = Vec::new();
    for (id, path) in numbered_folders(&dir)? {
        if kept.contains(&id) {
            continue;
        }
        // A symlink planted there is counted (and removed) alone.
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        let bytes = if is_dir { fsutil::size_of(&path) } else { 0 };
        // One folder that cannot go (a test's root-owned leftover) stops
        // neither the others nor the command: the next prune tries again.
        let removed = if is_dir {
            fsutil::remove_scratch(&path)
        } else {
            fsutil::remove_all(&path)
        };
        match removed {
            Ok(()) => freed += bytes,
            Err(e) => stuck.push(format!("{}: {e}", path.display())),
        }
    }
    Ok(Pruned {
        removed: pruning.removed,
        evidence: pruning.evidence,
        left: kept.len(),
        freed_bytes: freed,
        stuck,
    })
}

/// `flights/<number>` entries; anything else there is not ours to remove.
fn numbered_folders(dir: &Path) -> Result<Vec<(i64, std::path::PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        found.push((id, entry.path()));
    }
    found.sort();
    Ok(found)
}
