//! Working checkouts. They borrow objects from the cache store (alternates),
//! are created beside their final place and renamed in, and record a marker
//! while they move so a killed run is finished by the next one.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use git2::build::CheckoutBuilder;
use git2::{Repository, RepositoryState, Signature, Status, StatusOptions};

use super::{Oid, Store};
use crate::fsutil;

/// Written inside `.git` before a move starts, removed when it is done.
const MOVE_MARKER: &str = "sultana-moving";

/// Objects of the cache store could not be read: damaged (zlib, object
/// database), not a problem of the tree. `sync` makes the store again.
#[derive(Debug, thiserror::Error)]
#[error("damaged objects in the git cache: {0}")]
pub struct DamagedObjects(pub String);

/// The error, typed as damaged objects when libgit2 says so.
fn damaged_or(e: git2::Error, other: impl FnOnce(String) -> anyhow::Error) -> anyhow::Error {
    let message = super::message(&e);
    match e.class() {
        git2::ErrorClass::Zlib | git2::ErrorClass::Odb => DamagedObjects(message).into(),
        // libgit2 refuses `.git` entries and paths that would leave the
        // checkout; say plainly that the upstream tree is at fault.
        _ if message.contains("invalid path") => other(format!(
            "{message}: the upstream tree has an entry git never checks out \
             (a `.git` entry or a path leaving the checkout); nothing was written"
        )),
        _ => other(message),
    }
}

/// What sits at a component's path.
#[derive(Debug, PartialEq, Eq)]
pub enum TreeState {
    Missing,
    Git,
    /// Something that is not a git checkout (files copied by hand, a tarball's tree).
    Other,
}

pub fn tree_state(path: &Path) -> TreeState {
    match fs::symlink_metadata(path) {
        Err(_) => TreeState::Missing,
        Ok(meta) if meta.is_dir() && fsutil::is_empty_dir(path) => TreeState::Missing,
        Ok(meta) if meta.is_dir() && path.join(".git").exists() => TreeState::Git,
        Ok(_) => TreeState::Other,
    }
}

/// How a move treats the working tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveMode {
    /// Refuse to overwrite anything changed (the tree was checked clean).
    Safe,
    /// Overwrite tracked changes and remove untracked files (after a backup).
    Force,
    /// Force, and remove ignored files too: a scratch checkout starts clean.
    Scrub,
}

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
        parts.join(", ")
    }
}

pub struct Checkout {
    pub path: PathBuf,
    repo: Repository,
}

impl Checkout {
    pub fn open(path: &Path) -> Result<Checkout> {
        let repo = Repository::open(path).map_err(|e| {
            anyhow!(
                "{} is not a usable git checkout: {}",
                path.display(),
                super::message(&e)
            )
        })?;
        Ok(Checkout {
            path: path.to_path_buf(),
            repo,
        })
    }

    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// Make a new checkout of `commit` at `path`: built beside it under a
    /// fixed temporary name (so the next run clears a killed attempt) and
    /// renamed into place only when complete.
    pub fn create(path: &Path, store: &Store, url: &str, commit: Oid) -> Result<Checkout> {
        let parent = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.sultana-new"));
        fsutil::remove_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
        if let Err(e) = Self::fill(&tmp, store, url, commit) {
            // A refused or broken tree leaves nothing half-made behind.
            let _ = fsutil::remove_all(&tmp);
            return Err(e);
        }
        crate::fault::point("checkout-before-rename");
        if path.exists() {
            // Only an empty folder gets here (tree_state said Missing).
            fs::remove_dir(path).with_context(|| format!("cannot replace {}", path.display()))?;
        }
        fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))?;
        Checkout::open(path)
    }

    fn fill(tmp: &Path, store: &Store, url: &str, commit: Oid) -> Result<()> {
        let repo = Repository::init(tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let alternates = repo.path().join("objects/info/alternates");
        fs::write(&alternates, format!("{}\n", store.objects_dir().display()))
            .with_context(|| format!("cannot write {}", alternates.display()))?;
        drop(repo);
        let repo = Repository::open(tmp)?;
        repo.remote("origin", url)?;
        let target = repo.find_commit(commit)?;
        let mut checkout = CheckoutBuilder::new();
        checkout.force();
        repo.checkout_tree(target.as_object(), Some(&mut checkout))
            .map_err(|e| damaged_or(e, |m| anyhow!("cannot check out {commit}: {m}")))?;
        repo.set_head_detached(commit)?;
        Ok(())
    }

    pub fn head(&self) -> Option<Oid> {
        self.repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .map(|c| c.id())
    }

    /// The branch HEAD is on, if any.
    pub fn branch(&self) -> Option<String> {
        let head = self.repo.head().ok()?;
        head.is_branch().then(|| head.shorthand().map(str::to_string)).flatten()
    }

    /// Finish a move that a killed run left half done. Returns whether one was.
    pub fn repair(&self) -> Result<bool> {
        let marker = self.repo.path().join(MOVE_MARKER);
        let Ok(text) = fs::read_to_string(&marker) else {
            return Ok(false);
        };
        let target = Oid::from_str(text.trim())
            .map_err(|_| anyhow!("{} is corrupt; remove it and run again", marker.display()))?;
        // Every difference from HEAD was made by the interrupted move (it only
        // starts on a clean tree), so forcing is safe.
        self.checkout(target, MoveMode::Force)?;
        self.repo.set_head_detached(target)?;
        fsutil::remove_all(&marker)?;
        Ok(true)
    }

    /// Move HEAD (detached) and the tree to `target`.
    pub fn move_to(&self, target: Oid, mode: MoveMode) -> Result<()> {
        let marker = self.repo.path().join(MOVE_MARKER);
        fsutil::atomic_write(&marker, format!("{target}\n").as_bytes())?;
        crate::fault::point("move-after-marker");
        self.checkout(target, mode)?;
        crate::fault::point("move-before-head");
        self.repo.set_head_detached(target)?;
        fsutil::remove_all(&marker)?;
        Ok(())
    }

    fn checkout(&self, target: Oid, mode: MoveMode) -> Result<()> {
        let commit = self.repo.find_commit(target).map_err(|e| {
            anyhow!(
                "commit {target} is missing from {}: {}",
                self.path.display(),
                super::message(&e)
            )
        })?;
        let mut builder = CheckoutBuilder::new();
        match mode {
            MoveMode::Safe => builder.safe(),
            MoveMode::Force => builder.force().remove_untracked(true),
            MoveMode::Scrub => builder.force().remove_untracked(true).remove_ignored(true),
        };
        self.repo
            .checkout_tree(commit.as_object(), Some(&mut builder))
            .map_err(|e| {
                damaged_or(e, |m| {
                    anyhow!("cannot check out {target} in {}: {m}", self.path.display())
                })
            })
    }

    /// What a move would lose, not counting submodules (see `submodule::dirt`).
    /// `upstream` is the cache store: a HEAD it lacks is local work.
    pub fn dirt(&self, upstream: Option<&Store>) -> Result<Dirt> {
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
                super::message(&e)
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
            dirt.local_commits = !store.has_commit(head);
        }
        dirt.in_progress = self.repo.state() != RepositoryState::Clean;
        Ok(dirt)
    }

    /// Save HEAD plus every tracked and untracked (not ignored) change as a
    /// commit under `refs/sultana/backup/<stamp>`; returns the ref.
    pub fn backup(&self, reason: &str) -> Result<String> {
        let mut index = self.repo.index()?;
        let saved = (|| -> Result<Oid, git2::Error> {
            index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)?;
            index.update_all(["*"].iter(), None)?;
            let tree = self.repo.find_tree(index.write_tree()?)?;
            let signature = Signature::now("sultana", "sultana@localhost")?;
            let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
            let parents: Vec<&git2::Commit> = parent.iter().collect();
            self.repo.commit(None, &signature, &signature, reason, &tree, &parents)
        })();
        // The index above was changed in memory only; drop those changes.
        index.read(true)?;
        let oid = saved.map_err(|e| {
            anyhow!(
                "cannot save the state of {}: {}",
                self.path.display(),
                super::message(&e)
            )
        })?;
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

    /// (ahead, behind) of HEAD relative to `other`.
    pub fn ahead_behind(&self, other: Oid) -> Option<(usize, usize)> {
        let head = self.head()?;
        self.repo.graph_ahead_behind(head, other).ok()
    }

    /// Point `refs/remotes/origin/<branch>` at what the remote's branch was
    /// when fetched, so `git log origin/<branch>` in the checkout means it.
    pub fn set_remote_branch(&self, branch: &str, oid: Oid) -> Result<()> {
        let name = format!("refs/remotes/origin/{branch}");
        if git2::Reference::is_valid_name(&name) {
            self.repo.reference(&name, oid, true, "sultana: remote branch")?;
        }
        Ok(())
    }
}
