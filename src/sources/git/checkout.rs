//! Working checkouts. They borrow objects from the cache store (alternates),
//! are created beside their final place and renamed in, and record a marker
//! while they move so a killed run is finished by the next one.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use git2::build::CheckoutBuilder;
use git2::{Repository, StatusOptions};

use super::{Oid, Store};
use crate::fsutil;

mod local_work;
mod refused;

use local_work::{is_executable, occupies, worktree_blob};
pub use local_work::{preview, Dirt};
use refused::{refused_entry, RefusedEntry};

/// Written inside `.git` before a move starts, removed when it is done. It
/// names the commit moved from, the commit moved to and the backup taken
/// first, so a later run knows exactly what the move could have written.
const MOVE_MARKER: &str = "sultana-moving";

/// A move that a killed run left half done.
#[derive(Clone, Debug)]
pub struct InterruptedMove {
    pub to: Oid,
    /// The backup the interrupted run made before moving, if it made one.
    pub backup: Option<String>,
    /// Paths whose content is neither the `from` nor the `to` commit's and
    /// that finishing the move would change: work done after the kill.
    pub local_work: Vec<PathBuf>,
}

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
        // Recorded where it will be, before it is there: a prune never
        // takes the store from under a checkout being made.
        super::store_users::record(&store.dir, &path.join(".git"));
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
        // What `follow_url` may change later: origin as sultana set it.
        repo.config()?
            .open_level(git2::ConfigLevel::Local)?
            .set_str("sultana.url", url)?;
        let target = repo.find_commit(commit)?;
        if let Some(refused) = refused_entry(&target.tree()?) {
            return Err(anyhow::Error::new(refused).context(format!("cannot check out {commit}")));
        }
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

    /// HEAD's tree when the checkout holds exactly it: nothing modified,
    /// staged or untracked (ignored files aside), submodules at their
    /// commits and clean. What a build of a clean tree can be keyed by.
    pub fn clean_tree(&self) -> Option<Oid> {
        if self.repo.state() != git2::RepositoryState::Clean {
            return None;
        }
        let mut options = StatusOptions::new();
        options
            .include_untracked(true)
            .include_ignored(false)
            .exclude_submodules(false);
        let statuses = self.repo.statuses(Some(&mut options)).ok()?;
        if !statuses.is_empty() {
            return None;
        }
        let head = self.repo.head().ok()?.peel_to_commit().ok()?;
        Some(head.tree_id())
    }

    /// The branch HEAD is on, if any.
    pub fn branch(&self) -> Option<String> {
        let head = self.repo.head().ok()?;
        head.is_branch().then(|| head.shorthand().map(str::to_string)).flatten()
    }

    /// The move a killed run left half done, if any, with the work done in
    /// the tree since (see `InterruptedMove::local_work`). A marker whose
    /// HEAD is neither end of the move means the developer moved HEAD by
    /// hand: the tree is judged as it is (the next move replaces the marker).
    pub fn interrupted_move(&self) -> Result<Option<InterruptedMove>> {
        let marker = self.repo.path().join(MOVE_MARKER);
        let text = match fsutil::read_bounded(&marker, 4096) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", marker.display())),
        };
        let corrupt = || anyhow!("{} is corrupt; remove it and run again", marker.display());
        let text = String::from_utf8(text).map_err(|_| corrupt())?;
        let (mut from, mut to, mut backup) = (None, None, None);
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("from", v)) => from = Some(Oid::from_str(v).map_err(|_| corrupt())?),
                Some(("to", v)) => to = Some(Oid::from_str(v).map_err(|_| corrupt())?),
                Some(("backup", v)) => backup = Some(v.to_string()),
                // The marker of an older sultana: the target alone.
                None if to.is_none() => to = Some(Oid::from_str(line.trim()).map_err(|_| corrupt())?),
                _ => return Err(corrupt()),
            }
        }
        let to = to.ok_or_else(corrupt)?;
        // A move to a tree git refuses never started: libgit2 checks every
        // path before it writes one. Its marker (left by a run killed right
        // after writing it) is void; the next move replaces it.
        if self.refused_at(to).is_some() {
            return Ok(None);
        }
        let head = self.head();
        let from = from.or(head);
        if head != from && head != Some(to) {
            return Ok(None);
        }
        let local_work = self.work_outside(from, to)?;
        Ok(Some(InterruptedMove { to, backup, local_work }))
    }

    /// Paths that finishing a move from `from` to `to` would change and whose
    /// content neither commit has.
    fn work_outside(&self, from: Option<Oid>, to: Oid) -> Result<Vec<PathBuf>> {
        let tree_of = |oid: Option<Oid>| -> Result<Option<git2::Tree<'_>>> {
            match oid {
                Some(oid) => Ok(Some(self.repo.find_commit(oid)?.tree()?)),
                None => Ok(None),
            }
        };
        let (from_tree, to_tree) = (tree_of(from)?, tree_of(Some(to))?);
        let mut options = StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(true)
            .recurse_ignored_dirs(true)
            .exclude_submodules(true);
        let statuses = self.repo.statuses(Some(&mut options))?;
        let entry_at = |tree: &Option<git2::Tree<'_>>, path: &Path| {
            tree.as_ref()
                .and_then(|t| t.get_path(path).ok())
                .filter(|e| e.kind() == Some(git2::ObjectType::Blob))
                .map(|e| (e.id(), e.filemode() == 0o100755))
        };
        let mut out = Vec::new();
        for entry in statuses.iter() {
            let rel = bytes_path(entry.path_bytes());
            let Some(content) = worktree_blob(&self.path.join(rel)) else {
                // A folder listed whole is a repository of its own nested
                // here (git never looks inside): someone's work. Nothing on
                // disk is nothing to lose.
                if self.path.join(rel).is_dir() {
                    out.push(rel.to_path_buf());
                }
                continue;
            };
            let executable = is_executable(&self.path.join(rel));
            let here = Some((content, executable));
            let (was, will) = (entry_at(&from_tree, rel), entry_at(&to_tree, rel));
            if here == was || here == will {
                continue;
            }
            // Finishing overwrites or deletes an ignored file only where
            // `to` has something at its path or a file where its folder is.
            if entry.status().is_ignored() && !to_tree.as_ref().is_some_and(|t| occupies(t, rel)) {
                continue;
            }
            out.push(rel.to_path_buf());
        }
        Ok(out)
    }

    /// Finish an interrupted move: the tree, the index and HEAD at `to`.
    /// Callers save `local_work` first, or have none.
    pub fn finish_move(&self, interrupted: &InterruptedMove) -> Result<()> {
        self.checkout(interrupted.to, MoveMode::Force)?;
        self.repo.set_head_detached(interrupted.to)?;
        fsutil::remove_all(&self.repo.path().join(MOVE_MARKER))?;
        Ok(())
    }

    /// The entry of `target`'s tree git never checks out, if any (none for
    /// a commit the repository lacks: checking it out says so).
    fn refused_at(&self, target: Oid) -> Option<RefusedEntry> {
        let tree = self.repo.find_commit(target).ok()?.tree().ok()?;
        refused_entry(&tree)
    }

    /// Move HEAD (detached) and the tree to `target`. `backup` is the backup
    /// taken just before, recorded so an interrupted move can name it.
    pub fn move_to(&self, target: Oid, mode: MoveMode, backup: Option<&str>) -> Result<()> {
        let marker = self.repo.path().join(MOVE_MARKER);
        let mut text = String::new();
        if let Some(from) = self.head() {
            text.push_str(&format!("from {from}\n"));
        }
        text.push_str(&format!("to {target}\n"));
        if let Some(backup) = backup {
            text.push_str(&format!("backup {backup}\n"));
        }
        // Refused before anything is written, the marker included: a move
        // that never starts leaves no move to finish.
        if let Some(refused) = self.refused_at(target) {
            let path = self.path.display();
            return Err(anyhow::Error::new(refused).context(format!("cannot check out {target} in {path}")));
        }
        fsutil::atomic_write(&marker, text.as_bytes())?;
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
        // A kill point per file written: a move killed half way through.
        builder.progress(|path, _, _| {
            if path.is_some() {
                crate::fault::point("move-file");
            }
        });
        match mode {
            // Ignored files the target tracks were checked first (`dirt`):
            // never overwrite one behind that check's back.
            MoveMode::Safe => builder.safe().overwrite_ignored(false),
            MoveMode::Force => builder.force().remove_untracked(true),
            MoveMode::Scrub => builder.force().remove_untracked(true).remove_ignored(true),
        };
        self.repo
            .checkout_tree(commit.as_object(), Some(&mut builder))
            .map_err(|e| {
                damaged_or(e, |m| {
                    anyhow!("cannot check out {target} in {}: {m}", self.path.display())
                })
            })?;
        if mode != MoveMode::Safe {
            // A forced move leaves the index exactly the target's: entries a
            // developer removed with `git rm --cached` come back, so nothing
            // shows as deleted and untracked at once.
            let mut index = self.repo.index()?;
            index.read_tree(&commit.tree()?)?;
            index.write()?;
        }
        Ok(())
    }

    /// The checkout at `path`, reading `store`'s objects too for this
    /// process only (nothing written): what a check of a move needs when
    /// the manifest's url changed and the target is only in its store.
    pub fn open_with(path: &Path, store: &Store) -> Result<Checkout> {
        let checkout = Checkout::open(path)?;
        checkout
            .repo
            .odb()?
            .add_disk_alternate(&store.objects_dir().display().to_string())?;
        Ok(checkout)
    }

    /// Make the checkout at `path` borrow from `store` (the manifest may now
    /// name another url than the one it was made from): the store goes
    /// first in its alternates, every line already there stays (its local
    /// commits may be in an older store). A linked worktree of someone's
    /// clone is theirs: left alone. Call before opening it: libgit2 reads
    /// alternates at open.
    pub fn borrow_objects(path: &Path, store: &Store) -> Result<()> {
        let repo = Repository::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        if repo.is_worktree() {
            return Ok(());
        }
        let objects = repo.path().join("objects");
        let file = objects.join("info/alternates");
        let ours = store.objects_dir();
        let text = String::from_utf8_lossy(&fsutil::read_bounded(&file, 64 << 10).unwrap_or_default()).into_owned();
        // Relative lines are relative to the objects folder, as git reads them.
        let present = text.lines().any(|l| {
            let line = Path::new(l.trim());
            let full = if line.is_absolute() {
                line.to_path_buf()
            } else {
                objects.join(line)
            };
            full == ours || fs::canonicalize(&full).ok() == fs::canonicalize(&ours).ok() && full.exists()
        });
        super::store_users::record(&store.dir, repo.path());
        if present {
            return Ok(());
        }
        let mut wanted = format!("{}\n", ours.display());
        wanted.push_str(&text);
        if !wanted.ends_with('\n') {
            wanted.push('\n');
        }
        fsutil::atomic_write(&file, wanted.as_bytes()).with_context(|| format!("cannot write {}", file.display()))
    }

    /// Point `origin` at `url` when it still is what sultana set (recorded
    /// as `sultana.url`): a remote the developer set by hand stays theirs.
    pub fn follow_url(&self, url: &str) -> Result<()> {
        if self.repo.is_worktree() {
            return Ok(());
        }
        let mut config = self.repo.config()?.open_level(git2::ConfigLevel::Local)?;
        let recorded = config.get_string("sultana.url").ok();
        let origin = self
            .repo
            .find_remote("origin")
            .ok()
            .and_then(|r| r.url().map(str::to_string));
        let ours = match (&origin, &recorded) {
            (None, _) => true,
            (Some(o), Some(r)) => o == r,
            (Some(_), None) => false,
        };
        if ours && origin.as_deref() != Some(url) {
            if origin.is_some() {
                self.repo.remote_set_url("origin", url)?;
            } else {
                self.repo.remote("origin", url)?;
            }
        }
        if ours && recorded.as_deref() != Some(url) {
            config.set_str("sultana.url", url)?;
        }
        Ok(())
    }

    /// Tell git in this checkout what the store it borrows from lacks: a
    /// shallow store's boundary (else `git log` stops at "bad object"), and
    /// for a partial one, `origin` as the place to fetch missing objects.
    pub fn borrow_history(&self, store: &Store) -> Result<()> {
        let shallow = self.repo.path().join("shallow");
        let theirs = fs::read(store.dir.join("shallow")).unwrap_or_default();
        if theirs.is_empty() {
            if shallow.exists() {
                fsutil::remove_all(&shallow)?;
            }
        } else if fs::read(&shallow).ok().as_deref() != Some(&theirs[..]) {
            fsutil::atomic_write(&shallow, &theirs)?;
        }
        let mut config = git2::Config::open(&self.repo.path().join("config"))?;
        match store.kind().filter() {
            Some(filter) => {
                config.set_bool("remote.origin.promisor", true)?;
                config.set_str("remote.origin.partialclonefilter", filter.as_str())?;
            }
            None => {
                let _ = config.remove("remote.origin.promisor");
                let _ = config.remove("remote.origin.partialclonefilter");
            }
        }
        Ok(())
    }

    /// (ahead, behind) of HEAD relative to `other`.
    pub fn ahead_behind(&self, other: Oid) -> Option<(usize, usize)> {
        let head = self.head()?;
        self.repo.graph_ahead_behind(head, other).ok()
    }

    /// Make the checkout a usable clone, as Xen's git-checkout.sh, repo and
    /// west leave theirs: the upstream's branches as `origin/*` and its tags,
    /// from the store (no network), so `git describe`, `git log
    /// origin/master..` and `git format-patch` work at once. Written as
    /// packed refs in one rename. `origin/*` is the store's; a tag of the
    /// developer's own (a name the store lacks, or another commit) stays.
    /// A git running in the checkout (its `packed-refs.lock`) is left alone.
    pub fn mirror_refs(&self, store: &Store, url: &str) -> Result<()> {
        // The names the url gave the store (through its rewrite rule, when
        // one applies: the place the workspace fetches from).
        let namespace = store.namespace(url);
        if self.repo.is_worktree() {
            return Ok(());
        }
        let dir = self.repo.path();
        // A git running here holds packed-refs.lock: leave it be. We never
        // take that lock ourselves (a kill -9 would leave it behind and
        // stop the developer's git); packed-refs is replaced in one rename.
        if dir.join("packed-refs.lock").exists() {
            return Ok(());
        }
        {
            let mut refs: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
            let packed = dir.join("packed-refs");
            // A packed-refs that cannot be read whole is left as it is: its
            // refs (the developer's tags, say) are never dropped.
            let text = match fsutil::read_bounded(&packed, 256 << 20) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(_) => return Ok(()),
            };
            for line in text.lines() {
                if line.starts_with('#') || line.starts_with('^') {
                    continue;
                }
                if let Some((oid, name)) = line.split_once(' ') {
                    if !name.starts_with("refs/remotes/origin/") {
                        refs.insert(name.to_string(), oid.to_string());
                    }
                }
            }
            let theirs = store.repo();
            for reference in theirs.references()?.flatten() {
                let (Some(name), Some(oid)) = (reference.name(), reference.target()) else {
                    continue;
                };
                let Some(local) = name.strip_prefix(namespace.as_str()) else {
                    continue;
                };
                if local.starts_with("mirrors/") && namespace == "refs/" {
                    continue; // a mirror's names, not the url's
                }
                if let Some(branch) = local.strip_prefix("heads/") {
                    refs.insert(format!("refs/remotes/origin/{branch}"), oid.to_string());
                } else if local.starts_with("tags/") && git2::Reference::is_valid_name(&format!("refs/{local}")) {
                    refs.entry(format!("refs/{local}")).or_insert_with(|| oid.to_string());
                }
            }
            let mut out = String::from("# pack-refs with: sorted \n");
            for (name, oid) in &refs {
                out.push_str(&format!("{oid} {name}\n"));
            }
            if out != text {
                fsutil::atomic_write(&packed, out.as_bytes())?;
            }
        }
        Ok(())
    }

    /// Let git in the checkout fetch as sultana does: the workspace's
    /// rewrite rule for its url (git's own `url.<to>.insteadOf`), so a
    /// partial checkout's lazy fetches and a manual `git fetch` go where
    /// the firewall lets them.
    pub fn follow_rewrite(&self, rewrites: &crate::manifest::UrlRewrites, url: &str) -> Result<()> {
        let Some((from, to)) = rewrites.rule_for(url) else {
            return Ok(());
        };
        let mut config = self.repo.config()?.open_level(git2::ConfigLevel::Local)?;
        let key = format!("url.{to}.insteadOf");
        let exact = format!("^{}$", regex_escape(from));
        let present = config
            .multivar(&key, Some(&exact))
            .map(|mut e| e.next().is_some())
            .unwrap_or(false);
        if !present {
            config.set_multivar(&key, &exact, from)?;
        }
        Ok(())
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

/// A path as git gives it: bytes, not necessarily UTF-8.
fn bytes_path(bytes: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

/// `text` matched literally by git's config value regexes.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
