//! Local work in a checkout: what a move would lose (changed, untracked
//! and ignored files, local commits, dirty submodules), and the backup
//! commit that saves it under `refs/sultana/backup/` before anything is
//! overwritten.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use git2::{RepositoryState, Signature, Status, StatusOptions};

use super::{Checkout, Oid, Store};

/// Local state that a move would lose.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Dirt {
    pub changed: usize,
    pub untracked: usize,
    /// HEAD is a commit the upstream does not have.
    pub local_commits: bool,
    /// A merge, rebase or similar is in progress.
    pub in_progress: bool,
    /// Submodule paths that are dirty themselves.
    pub submodules: Vec<String>,
    /// Ignored files (the upstream's .gitignore covers them) that the move
    /// would overwrite or delete: local work too. Names need not be UTF-8.
    #[serde(serialize_with = "lossy_paths")]
    pub ignored: Vec<PathBuf>,
    /// A move a killed run left half done, with work done in the tree since.
    pub interrupted: bool,
}

impl Dirt {
    pub fn is_clean(&self) -> bool {
        *self == Dirt::default()
    }

    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.changed > 0 {
            parts.push(format!("{} changed file(s)", self.changed));
        }
        if self.untracked > 0 {
            parts.push(format!("{} untracked file(s)", self.untracked));
        }
        if self.local_commits {
            parts.push("commits not in the upstream".to_string());
        }
        if self.in_progress {
            parts.push("an operation in progress (merge, rebase, …)".to_string());
        }
        if !self.submodules.is_empty() {
            parts.push(format!("changes in submodule(s) {}", self.submodules.join(", ")));
        }
        if !self.ignored.is_empty() {
            parts.push(format!(
                "{} ignored file(s) the new commit tracks ({})",
                self.ignored.len(),
                preview(&self.ignored)
            ));
        }
        if self.interrupted {
            parts.push("a move an interrupted run left half done".to_string());
        }
        parts.join(", ")
    }
}

impl Checkout {
    /// What a move would lose, not counting submodules (see `submodule::dirt`).
    /// `upstream` is the cache store: a HEAD it lacks is local work.
    /// With `target`, ignored files that moving there would overwrite or
    /// delete count too.
    pub fn dirt(&self, upstream: Option<&Store>, target: Option<Oid>) -> Result<Dirt> {
        let mut dirt = Dirt::default();
        let mut options = StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(false)
            .include_ignored(false)
            .exclude_submodules(true);
        let statuses = self.repo.statuses(Some(&mut options)).map_err(|e| {
            anyhow!(
                "cannot read the status of {}: {}",
                self.path.display(),
                crate::git::message(&e)
            )
        })?;
        for entry in statuses.iter() {
            if entry.status() == Status::WT_NEW {
                dirt.untracked += 1;
            } else if !entry.status().is_ignored() {
                dirt.changed += 1;
            }
        }
        if let (Some(store), Some(head)) = (upstream, self.head()) {
            dirt.local_commits = !store.is_upstream(head);
        }
        dirt.in_progress = self.repo.state() != RepositoryState::Clean;
        if let Some(target) = target.filter(|t| Some(*t) != self.head()) {
            dirt.ignored = self.ignored_at_risk(target)?;
        }
        if let Some(interrupted) = self.interrupted_move()? {
            // What the interrupted move wrote is not local work; what was
            // done in the tree since is.
            dirt.changed = interrupted.local_work.len();
            dirt.untracked = 0;
            dirt.interrupted = !interrupted.local_work.is_empty();
        }
        Ok(dirt)
    }

    /// Ignored files that a move to `target` would overwrite (it brings a
    /// file to their path with other content) or delete (it brings a file
    /// where a folder of theirs is). Only the paths the move writes are
    /// looked at, not every build output of the tree.
    pub(super) fn ignored_at_risk(&self, target: Oid) -> Result<Vec<PathBuf>> {
        let Some(head) = self.head() else { return Ok(Vec::new()) };
        let old = self.repo.find_commit(head)?.tree()?;
        let new = self.repo.find_commit(target)?.tree()?;
        let diff = self.repo.diff_tree_to_tree(Some(&old), Some(&new), None)?;
        let mut out = Vec::new();
        for delta in diff.deltas() {
            let Some(rel) = delta.new_file().path() else { continue };
            if delta.new_file().id().is_zero() || delta.new_file().mode() == git2::FileMode::Commit {
                // Deleted by the move (tracked: plain dirt covers it), or a
                // submodule (its own checkout, judged on its own).
                continue;
            }
            if rel.components().any(|c| c.as_os_str().eq_ignore_ascii_case(".git")) {
                continue; // never checked out (the move refuses such a tree)
            }
            // A file on disk where the move needs a folder.
            for dir in rel.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
                let is_file = fs::symlink_metadata(self.path.join(dir)).is_ok_and(|m| !m.is_dir());
                if is_file && old.get_path(dir).is_err() && self.repo.is_path_ignored(dir)? {
                    out.push(dir.to_path_buf());
                }
            }
            let on_disk = self.path.join(rel);
            let Ok(meta) = fs::symlink_metadata(&on_disk) else {
                continue;
            };
            let tracked_file = old
                .get_path(rel)
                .is_ok_and(|e| e.kind() == Some(git2::ObjectType::Blob));
            if tracked_file {
                continue; // tracked now: plain dirt covers it
            }
            if meta.is_dir() {
                self.ignored_below(rel, &mut out)?;
            } else if worktree_blob(&on_disk) != Some(delta.new_file().id()) && self.repo.is_path_ignored(rel)? {
                out.push(rel.to_path_buf());
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Ignored files below the folder `rel` (not in nested repositories).
    pub(super) fn ignored_below(&self, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        if self.path.join(rel).join(".git").exists() {
            return Ok(()); // a repository of its own: saved as such
        }
        for entry in fs::read_dir(self.path.join(rel))?.flatten() {
            let child = rel.join(entry.file_name());
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                self.ignored_below(&child, out)?;
            } else if self.repo.is_path_ignored(&child)? {
                out.push(child);
            }
        }
        Ok(())
    }

    /// Save HEAD plus every tracked and untracked (not ignored) change as a
    /// commit under `refs/sultana/backup/<stamp>`; returns the ref. Its
    /// first parent is HEAD; a second one, when the index differed from
    /// HEAD, holds what was staged.
    /// `ignored` are ignored files to save too (those a move puts at risk);
    /// `gitlinks` point nested checkouts at their own backups.
    pub fn backup(&self, reason: &str, ignored: &[PathBuf], gitlinks: &[(PathBuf, Oid)]) -> Result<String> {
        let mut index = self.repo.index()?;
        let saved = (|| -> Result<Oid, git2::Error> {
            let signature = Signature::now("sultana", "sultana@localhost")?;
            let head = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
            // What was staged, as git stash keeps it: a second parent, so a
            // staged version that differs from the file on disk stays
            // reachable. An index with conflicts has no tree to keep.
            let staged = match index.write_tree() {
                Ok(tree) if head.as_ref().is_none_or(|h| h.tree_id() != tree) => {
                    let tree = self.repo.find_tree(tree)?;
                    let parents: Vec<&git2::Commit> = head.iter().collect();
                    let message = format!("index of: {reason}");
                    let id = self
                        .repo
                        .commit(None, &signature, &signature, &message, &tree, &parents)?;
                    Some(self.repo.find_commit(id)?)
                }
                _ => None,
            };
            let nested: Vec<&Path> = gitlinks.iter().map(|(p, _)| p.as_path()).collect();
            // Nested checkouts are recorded below as gitlinks, never added
            // file by file.
            let mut skip_nested = |path: &Path, _: &[u8]| -> i32 {
                if nested.iter().any(|n| path.starts_with(n)) {
                    1
                } else {
                    0
                }
            };
            index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, Some(&mut skip_nested))?;
            index.update_all(["*"].iter(), None)?;
            for path in ignored {
                // Nested repositories are saved on their own (gitlinks).
                if !self.path.join(path).is_dir() {
                    index.add_path(path)?;
                }
            }
            for (path, oid) in gitlinks {
                let _ = index.remove_dir(path, 0);
                let _ = index.remove_path(path);
                index.add(&gitlink_entry(path, *oid))?;
            }
            let tree = self.repo.find_tree(index.write_tree()?)?;
            let parents: Vec<&git2::Commit> = head.iter().chain(staged.iter()).collect();
            self.repo.commit(None, &signature, &signature, reason, &tree, &parents)
        })();
        // The index above was changed in memory only; drop those changes.
        index.read(true)?;
        let oid = saved.map_err(|e| {
            anyhow!(
                "cannot save the state of {}: {}",
                self.path.display(),
                crate::git::message(&e)
            )
        })?;
        crate::fault::point("backup-before-ref");
        let stamp = crate::timefmt::utc_stamp(std::time::SystemTime::now());
        let mut name = format!("refs/sultana/backup/{stamp}");
        let mut n = 1;
        while self.repo.find_reference(&name).is_ok() {
            n += 1;
            name = format!("refs/sultana/backup/{stamp}-{n}");
        }
        self.repo.reference(&name, oid, false, reason)?;
        Ok(name)
    }

    /// The backups kept in this checkout, oldest first.
    pub fn backups(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .repo
            .references_glob("refs/sultana/backup/*")
            .map(|refs| refs.flatten().filter_map(|r| r.name().map(str::to_string)).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// The blob id of what is on disk at `path` (a symlink's target text for a
/// link), or None when nothing readable is there.
pub(super) fn worktree_blob(path: &Path) -> Option<Oid> {
    let meta = fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).ok()?;
        use std::os::unix::ffi::OsStrExt;
        Oid::hash_object(git2::ObjectType::Blob, target.as_os_str().as_bytes()).ok()
    } else if meta.is_file() {
        Oid::hash_file(git2::ObjectType::Blob, path).ok()
    } else {
        None
    }
}

/// Whether `tree` has an entry at `rel`, or something other than a folder
/// at one of its parents (a move there replaces or deletes what is at `rel`).
pub(super) fn occupies(tree: &git2::Tree<'_>, rel: &Path) -> bool {
    tree.get_path(rel).is_ok()
        || rel.ancestors().skip(1).any(|dir| {
            !dir.as_os_str().is_empty()
                && tree
                    .get_path(dir)
                    .is_ok_and(|e| e.kind() != Some(git2::ObjectType::Tree))
        })
}

pub(super) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub(super) fn gitlink_entry(path: &Path, oid: Oid) -> git2::IndexEntry {
    use std::os::unix::ffi::OsStrExt;
    let zero = git2::IndexTime::new(0, 0);
    git2::IndexEntry {
        ctime: zero,
        mtime: zero,
        dev: 0,
        ino: 0,
        mode: 0o160000,
        uid: 0,
        gid: 0,
        file_size: 0,
        id: oid,
        flags: 0,
        flags_extended: 0,
        path: path.as_os_str().as_bytes().to_vec(),
    }
}

pub(super) fn lossy_paths<S: serde::Serializer>(paths: &[PathBuf], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(paths.iter().map(|p| p.to_string_lossy()))
}

/// The first few paths of a list, for a one-line summary.
pub fn preview(paths: &[PathBuf]) -> String {
    let mut text = paths
        .iter()
        .take(3)
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > 3 {
        text.push_str(&format!(", … {} more", paths.len() - 3));
    }
    text
}
