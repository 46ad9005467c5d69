//! The shared cache: one bare object store per URL under
//! `$XDG_CACHE_HOME/sultana/git/`, shared by every workspace.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use git2::Repository;
use sha2::{Digest, Sha256};

use super::store_users::lock_store;
use super::transfer::{parse_progress, retry, run_showing_progress};
use super::{FetchMode, Filter, Oid};
use crate::fsutil::{self, FileLock};
use crate::manifest::UrlRewrites;
use crate::printer::{Printer, Progress};
use crate::process::{Cause, ProcessError};

const REFSPECS: &[&str] = &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Where a store keeps the names (branches, tags) a source told it. The
/// store's own url keeps git's usual places; each mirror gets its own, so a
/// name learned from a mirror never resolves a name for the url or another
/// mirror. Objects are shared: they are named by their content.
pub fn namespace_of(store_url: &str, source: &str) -> String {
    if source == store_url {
        "refs/".to_string()
    } else {
        let hash = Sha256::digest(source.as_bytes());
        let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("refs/mirrors/{hex}/")
    }
}

pub struct Cache {
    root: PathBuf,
    /// `[url_rewrites]`: where git really goes for a url (every store
    /// opened from this cache fetches through them).
    rewrites: UrlRewrites,
    /// Where a user can give another place to fetch from, for the hint
    /// when the network fails.
    elsewhere: Elsewhere,
}

/// How the user of a command names another place to fetch from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Elsewhere {
    /// A workspace: `mirrors` or `[url_rewrites]` in sultana.local.toml.
    #[default]
    LocalFile,
    /// `verify-tarball`: its `--url-rewrite` option.
    UrlRewriteOption,
}

impl Cache {
    /// `$XDG_CACHE_HOME/sultana/git`, else `$HOME/.cache/sultana/git`.
    pub fn locate() -> Result<Cache> {
        Ok(Cache {
            root: crate::fsutil::cache_home()?.join("git"),
            rewrites: UrlRewrites::default(),
            elsewhere: Elsewhere::LocalFile,
        })
    }

    /// Say `elsewhere` in the hint of a failed fetch.
    pub fn hinting(mut self, elsewhere: Elsewhere) -> Cache {
        self.elsewhere = elsewhere;
        self
    }

    /// This cache with the workspace's url rewrites applied to every fetch.
    pub fn rewriting(mut self, rewrites: &UrlRewrites) -> Cache {
        self.rewrites = rewrites.clone();
        self
    }

    pub fn rewrites(&self) -> &UrlRewrites {
        &self.rewrites
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `blktap-<16 hex of sha256(url)>`: readable, and distinct per URL.
    pub fn store_dir(&self, url: &str) -> PathBuf {
        let hash = Sha256::digest(url.as_bytes());
        let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let base = url
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("repo")
            .trim_end_matches(".git");
        let base: String = base
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(40)
            .collect();
        let base = if base.is_empty() || base.starts_with('.') {
            "repo".into()
        } else {
            base
        };
        self.root.join(format!("{base}-{hex}"))
    }

    /// The store for `url` if one was made already (read-only callers).
    pub fn existing_store(&self, url: &str) -> Option<Store> {
        let dir = self.store_dir(url);
        let repo = Repository::open_bare(&dir).ok()?;
        Some(Store::new(dir, url, repo, self))
    }

    /// The store for `url`, created (empty) on first use.
    pub fn store(&self, url: &str, printer: &Printer) -> Result<Store> {
        let dir = self.store_dir(url);
        if !dir.exists() {
            let _lock = lock_store(&dir, url, printer)?;
            if !dir.exists() {
                create_store(&dir, url)?;
            }
        }
        let repo = Repository::open_bare(&dir).with_context(|| {
            format!(
                "the cache store {} is not a git repository; remove it and run again",
                dir.display()
            )
        })?;
        super::store_users::touch(&dir);
        Ok(Store::new(dir, url, repo, self))
    }
}

impl Cache {
    /// Replace a damaged store: a new one is made beside it from `sources`
    /// (with `want` in it), and only once that fetch succeeded does it take
    /// the damaged one's place. When the fetch fails (the upstream is
    /// unreachable), the damaged store stays as it was: the checkouts that
    /// borrow its objects keep what still reads. Backups saved in it
    /// (`refs/sultana/backup/`) are carried over; when they cannot be, the
    /// damaged copy is kept aside and named.
    pub fn rebuild_store(
        &self,
        url: &str,
        sources: &[String],
        want: Option<Oid>,
        log: &Path,
        printer: &Printer,
    ) -> Result<Store> {
        let dir = self.store_dir(url);
        {
            let _lock = lock_store(&dir, url, printer)?;
            let fresh = beside(&dir, ".rebuild");
            fsutil::remove_all(&fresh).with_context(|| format!("cannot remove {}", fresh.display()))?;
            create_store(&fresh, url)?;
            let repo = Repository::open_bare(&fresh).with_context(|| format!("cannot open {}", fresh.display()))?;
            let store = Store::new(fresh.clone(), url, repo, self);
            let progress = printer.progress("rebuild");
            let request = FetchRequest {
                sources,
                want,
                revision: None,
                mode: FetchMode::Full,
            };
            let fetched = store.fetch(&request, log, printer, &progress);
            drop(progress);
            drop(store);
            if let Err(e) = fetched {
                let _ = fsutil::remove_all(&fresh);
                return Err(e.context(format!(
                    "cannot fetch {} again; its damaged cache {} is kept as it was",
                    crate::validate::redact_url(url),
                    dir.display()
                )));
            }
            crate::fault::point("store-rebuilt");
            let carried = carry_backups(&dir, &fresh, log);
            super::store_users::carry(&dir, &fresh);
            let aside = beside(&dir, &format!(".damaged-{}", std::process::id()));
            fsutil::remove_all(&aside)?;
            if dir.exists() {
                fs::rename(&dir, &aside).with_context(|| format!("cannot move {} aside", dir.display()))?;
            }
            fs::rename(&fresh, &dir).with_context(|| format!("cannot move {} into place", fresh.display()))?;
            if carried {
                let _ = fsutil::remove_all(&aside);
            } else {
                printer.warn(format!(
                    "the backups saved in the damaged cache could not all be carried over: it is kept at {}",
                    aside.display()
                ));
            }
        }
        self.store(url, printer)
    }
}

/// `dir` with `suffix` added to its name.
fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Copy the backup refs (and their objects) of the store at `from` into
/// the one at `to`; false when some could not be (damaged objects).
fn carry_backups(from: &Path, to: &Path, log: &Path) -> bool {
    let Ok(old) = Repository::open_bare(from) else {
        return false;
    };
    let has_backups = old
        .references_glob("refs/sultana/backup/*")
        .map(|mut refs| refs.next().is_some())
        .unwrap_or(true);
    if !has_backups {
        return true;
    }
    super::transfer_command()
        .arg("--git-dir")
        .arg(to)
        .args(["fetch", "--no-tags", "--no-write-fetch-head", "--"])
        .arg(from)
        .arg("+refs/sultana/backup/*:refs/sultana/backup/*")
        .log(log)
        .run()
        .is_ok()
}

/// Whether an error says objects of a store are damaged or missing (as
/// opposed to a tree with local work, or a bad revision): decided on the
/// error's type, libgit2's class (object database or zlib) or the checkout's
/// `DamagedObjects`, never on words in its message.
pub fn is_damaged_store(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.is::<super::checkout::DamagedObjects>()
            || c.downcast_ref::<git2::Error>()
                .is_some_and(|e| matches!(e.class(), git2::ErrorClass::Odb | git2::ErrorClass::Zlib))
    })
}

/// Build the store in a temporary folder and rename it into place, so a killed
/// run never leaves a half-made store that the next run trusts.
fn create_store(dir: &Path, url: &str) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let mut tmp_name = dir.as_os_str().to_owned();
    tmp_name.push(".new");
    let tmp = PathBuf::from(tmp_name);
    fsutil::remove_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    let repo = Repository::init_bare(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut config = repo.config()?;
    config.set_str("sultana.url", url)?;
    // Objects are shared with checkouts through alternates: never prune them.
    config.set_i32("gc.auto", 0)?;
    config.set_bool("core.logAllRefUpdates", false)?;
    // git's commit-graph, written by every fetch: the walks that remain
    // (describe of a new commit, bisect, ahead/behind) read it.
    config.set_bool("fetch.writeCommitGraph", true)?;
    drop(repo);
    super::store_users::start_record(&tmp)?;
    fs::rename(&tmp, dir).with_context(|| format!("cannot move {} into place", dir.display()))?;
    crate::fault::point("store-created");
    Ok(())
}

pub struct Store {
    pub dir: PathBuf,
    pub url: String,
    pub(super) repo: Repository,
    /// This run's first fill asked for a filter the server ignored.
    refused_filter_on_fill: std::cell::Cell<bool>,
    rewrites: UrlRewrites,
    elsewhere: Elsewhere,
}

/// Where a store says what it holds (git's own `shallow` file says depth).
const KIND_FILTER: &str = "sultana.filter";
const KIND_DEPTH: &str = "sultana.depth";
/// The store holds only some of the url's branches and tags (a shallow
/// fetch's), even once its history is whole.
const SOME_NAMES: &str = "sultana.somenames";
/// Sources that answered a filter with everything.
const NO_FILTER: &str = "sultana.nofilter";

/// What one fetch asks of a store.
pub struct FetchRequest<'a> {
    /// Mirrors first, then the url.
    pub sources: &'a [String],
    /// A commit that must be there afterwards.
    pub want: Option<Oid>,
    /// The revision being resolved: all of the names a shallow store fetches.
    pub revision: Option<&'a str>,
    pub mode: FetchMode,
}

/// How one fetch is done, from what is asked and what the store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// Every branch and tag, whole (the first fill by clone).
    Full,
    /// Every branch and tag, their commits (and trees) only.
    Filtered(Filter),
    /// The wanted revision only, this many commits deep.
    Shallow(u32),
    /// A partial store made whole (`--refetch`).
    Complete,
    /// A shallow store given its history (`--unshallow`), filtered or not.
    Unshallow(Option<Filter>),
}

impl Plan {
    /// A store keeps what it holds; asking for everything completes it, and
    /// a shallow store asked for the commit graph gets its history.
    fn of(asked: FetchMode, held: FetchMode, empty: bool) -> Plan {
        if empty {
            return match asked {
                FetchMode::Full => Plan::Full,
                FetchMode::Filter(f) => Plan::Filtered(f),
                FetchMode::Depth(n) => Plan::Shallow(n),
            };
        }
        match (asked, held) {
            (_, FetchMode::Full) => Plan::Full,
            (FetchMode::Full, FetchMode::Filter(_)) => Plan::Complete,
            (_, FetchMode::Filter(f)) => Plan::Filtered(f),
            (FetchMode::Full, FetchMode::Depth(_)) => Plan::Unshallow(None),
            (FetchMode::Filter(f), FetchMode::Depth(_)) => Plan::Unshallow(Some(f)),
            (FetchMode::Depth(n), FetchMode::Depth(_)) => Plan::Shallow(n),
        }
    }

    fn filter(self) -> Option<Filter> {
        match self {
            Plan::Filtered(f) | Plan::Unshallow(Some(f)) => Some(f),
            _ => None,
        }
    }
}

impl Store {
    /// The store's lock, and with it the lock files of git commands a
    /// killed run left (they die with sultana, so none is still running):
    /// without this, every later fetch fails on `shallow.lock` or a ref lock.
    pub fn lock(&self, printer: &Printer) -> Result<FileLock> {
        let lock = lock_store(&self.dir, &self.url, printer)?;
        for name in ["shallow.lock", "packed-refs.lock", "config.lock", "HEAD.lock"] {
            let _ = fs::remove_file(self.dir.join(name));
        }
        remove_lock_files(&self.dir.join("refs"), 0);
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(super::on_demand::SCRATCH_PREFIX)
                {
                    let _ = fsutil::remove_all(&entry.path());
                }
            }
        }
        Ok(lock)
    }

    fn new(dir: PathBuf, url: &str, repo: Repository, cache: &Cache) -> Store {
        Store {
            dir,
            url: url.to_string(),
            repo,
            refused_filter_on_fill: std::cell::Cell::new(false),
            rewrites: cache.rewrites.clone(),
            elsewhere: cache.elsewhere,
        }
    }

    /// Where git goes for `source` (a url as the manifest names it): the
    /// rewrite rules applied. Every name the store keeps stays under the
    /// manifest's url; only the transport sees this one.
    pub(super) fn remote(&self, source: &str) -> String {
        self.rewrites.apply(source)
    }

    /// Where the store keeps the names `source` gives. A url fetched
    /// through a rewrite rule is another place: its names are kept apart
    /// (as a mirror's), so they never resolve a name for a workspace that
    /// fetches the url itself, nor count as the url's.
    pub fn namespace(&self, source: &str) -> String {
        namespace_of(&self.url, &self.remote(source))
    }

    /// `source` as messages show it (with its rewrite, when one applies).
    pub fn describe_source(&self, source: &str) -> String {
        self.rewrites.describe(source)
    }

    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.dir.join("objects")
    }

    pub fn has_commit(&self, oid: Oid) -> bool {
        self.repo.find_commit(oid).is_ok()
    }

    /// Whether the url itself has `oid`, as far as the store knows: reachable
    /// from a branch or tag the url told it. None when the store never heard
    /// the url's names (only a mirror or an override answered).
    pub fn url_has(&self, oid: Oid) -> Option<bool> {
        // Fetched by id from the url itself.
        if self.repo.find_reference(&format!("refs/sultana/pins/{oid}")).is_ok() {
            return Some(true);
        }
        let references = self.repo.references().ok()?;
        let mut walk = self.repo.revwalk().ok()?;
        walk.push(oid).ok()?;
        let mut any = false;
        for reference in references.flatten() {
            let Some(name) = reference.name() else { continue };
            if !(name.starts_with("refs/heads/") || name.starts_with("refs/tags/")) {
                continue;
            }
            if let Ok(commit) = reference.peel_to_commit() {
                if commit.id() == oid {
                    return Some(true);
                }
                let _ = walk.hide(commit.id());
                any = true;
            }
        }
        any.then(|| walk.next().is_none())
    }

    /// Whether `oid` is upstream's: reachable from a name the store learned
    /// from its sources (branches, tags, pinned ids). A commit only a backup
    /// under refs/sultana/backup/ holds is someone's local work, restored
    /// or not.
    pub fn is_upstream(&self, oid: Oid) -> bool {
        if !self.has_commit(oid) {
            return false;
        }
        let Ok(references) = self.repo.references() else {
            return true;
        };
        let Ok(mut walk) = self.repo.revwalk() else { return true };
        if walk.push(oid).is_err() {
            return true;
        }
        let mut any = false;
        for reference in references.flatten() {
            if reference.name().is_none_or(|n| n.starts_with("refs/sultana/backup/")) {
                continue;
            }
            if let Ok(commit) = reference.peel_to_commit() {
                if commit.id() == oid {
                    return true;
                }
                let _ = walk.hide(commit.id());
                any = true;
            }
        }
        // Nothing left once every upstream name is hidden: it is theirs.
        any && walk.next().is_none()
    }

    /// Bring the store up to date with the first of `request.sources` that
    /// answers (mirrors first, then the URL), and make sure `want` is present.
    /// Returns the source used. The transfer runs `git fetch`: libgit2's
    /// local transport re-deltifies whole packs and its indexer is
    /// single-threaded (6x slower than git on xen.git), it has no partial or
    /// shallow fetches, and git brings the user's proxies, `insteadOf`
    /// rules, credential helpers and ssh.
    pub fn fetch(&self, request: &FetchRequest, log: &Path, printer: &Printer, progress: &Progress) -> Result<String> {
        let _lock = self.lock(printer)?;
        // What a killed first fill left beside the store (under the lock, so
        // never another run's clone in progress).
        let _ = fsutil::remove_all(&self.clone_dir());
        let empty = self.is_empty()?;
        let plan = Plan::of(request.mode, self.kind(), empty);
        match plan {
            Plan::Complete => printer.status(
                "Completing",
                format!("the cache of {} (it was {}): fetching all of it", self.url, self.kind()),
            ),
            Plan::Unshallow(_) => printer.status(
                "Deepening",
                format!(
                    "the cache of {} (it was {}): fetching its history",
                    self.url,
                    self.kind()
                ),
            ),
            _ => {}
        }
        self.prepare(plan, empty)?;
        let mut failures = Vec::new();
        let mut causes = Vec::new();
        for source in request.sources {
            match self.fetch_from(source, plan, request, log, printer, progress) {
                Ok(()) => {
                    crate::fault::point("store-fetched");
                    self.settle(plan, empty, self.namespace(source) == "refs/")?;
                    return Ok(source.clone());
                }
                Err(e) => {
                    let shown = self.describe_source(source);
                    if request.sources.len() > 1 {
                        printer.warn(format!("{shown}: {}; trying the next source", first_line(&e)));
                    }
                    // A source on this machine needs no network.
                    let local = shown.starts_with('/') || shown.starts_with("file://");
                    causes.push((ProcessError::cause_of(&e), local));
                    failures.push(format!("{shown}: {e:#}"));
                }
            }
        }
        let hint = if causes.iter().any(|(c, _)| *c == Cause::DiskFull) {
            format!(
                "the disk holding the cache ({}) is full: free some space and run again",
                self.dir.parent().unwrap_or(&self.dir).display()
            )
        } else if causes.iter().any(|(c, local)| *c == Cause::Network && !local) {
            match self.elsewhere {
                Elsewhere::LocalFile => "no network here? `sultana demo` shows the whole job without it; a `mirrors` \
                     entry or a `[url_rewrites]` rule in sultana.local.toml gives another place to fetch from"
                    .to_string(),
                Elsewhere::UrlRewriteOption => "no network here? `--url-rewrite FROM=TO` fetches a url from \
                     another place, such as a local mirror"
                    .to_string(),
            }
        } else {
            String::new()
        };
        if hint.is_empty() {
            bail!("could not fetch {}:\n  {}", self.url, failures.join("\n  "));
        }
        bail!("could not fetch {}:\n  {}\n  ({hint})", self.url, failures.join("\n  "))
    }

    /// What the store holds, said before the transfer, so a run killed
    /// during a filtered fill never takes the store for a full one.
    fn prepare(&self, plan: Plan, empty: bool) -> Result<()> {
        let mut config = self.config()?;
        if empty && plan.filter().is_none() {
            // What a killed or refused filtered fill said is not so now.
            let _ = config.remove(KIND_FILTER);
        }
        match plan {
            Plan::Filtered(filter) if empty => config.set_str(KIND_FILTER, filter.as_str())?,
            // Without its promisor remotes (which git would otherwise apply
            // as a default filter), git fetches whole objects.
            _ if plan.filter().is_none() => {
                let mut names = Vec::new();
                {
                    let mut entries = config.entries(Some(r"^remote\..*\.(promisor|partialclonefilter)$"))?;
                    while let Some(entry) = entries.next() {
                        if let Some(name) = entry?.name() {
                            names.push(name.to_string());
                        }
                    }
                }
                for name in names {
                    let _ = config.remove_multivar(&name, ".*");
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// What the store holds after a transfer that succeeded.
    fn settle(&self, plan: Plan, empty: bool, own_names: bool) -> Result<()> {
        let mut config = self.config()?;
        // A shallow fetch brings the names it was asked for, no more; the
        // other plans bring every branch and tag of the url.
        match plan {
            Plan::Shallow(_) => config.set_bool(SOME_NAMES, true)?,
            _ if own_names => {
                let _ = config.remove(SOME_NAMES);
            }
            _ => {}
        }
        match plan {
            Plan::Complete | Plan::Unshallow(None) => {
                let _ = config.remove(KIND_FILTER);
            }
            Plan::Unshallow(Some(filter)) => config.set_str(KIND_FILTER, filter.as_str())?,
            Plan::Filtered(_) if empty && self.refused_filter_on_fill.get() => {
                // The server sent everything: a full store.
                let _ = config.remove(KIND_FILTER);
            }
            _ => {}
        }
        if let Plan::Shallow(depth) = plan {
            if self.is_shallow() {
                config.set_i64(KIND_DEPTH, i64::from(depth))?;
            }
        }
        if !self.is_shallow() {
            let _ = config.remove(KIND_DEPTH);
        }
        self.repo.odb()?.refresh()?;
        Ok(())
    }

    /// Whether the store holds less than a job asking for `mode` wants
    /// (a partial or shallow store asked for everything or the graph).
    pub fn lacks(&self, mode: FetchMode) -> bool {
        !self.is_empty().unwrap_or(true)
            && (matches!(Plan::of(mode, self.kind(), false), Plan::Complete | Plan::Unshallow(_))
                || (!mode.is_shallow() && self.has_some_names()))
    }

    /// Whether the store holds only the names shallow fetches asked for.
    pub fn has_some_names(&self) -> bool {
        self.config().is_ok_and(|c| c.get_bool(SOME_NAMES).unwrap_or(false))
    }

    /// What the store holds: full, a filter's worth, or shallow.
    pub fn kind(&self) -> FetchMode {
        let config = self.config().ok();
        if self.is_shallow() {
            let depth = config
                .as_ref()
                .and_then(|c| c.get_i64(KIND_DEPTH).ok())
                .and_then(|d| u32::try_from(d).ok())
                .filter(|d| *d >= 1)
                .unwrap_or(1);
            return FetchMode::Depth(depth);
        }
        match config.and_then(|c| c.get_string(KIND_FILTER).ok()) {
            Some(text) => Filter::parse(&text).map_or(FetchMode::Full, FetchMode::Filter),
            None => FetchMode::Full,
        }
    }

    pub fn is_shallow(&self) -> bool {
        fs::metadata(self.dir.join("shallow")).is_ok_and(|m| m.len() > 0)
    }

    /// The store's own config file, read afresh (git changes it too).
    pub(super) fn config(&self) -> Result<git2::Config> {
        Ok(git2::Config::open(&self.dir.join("config"))?)
    }

    /// Whether `source` was found to refuse filters (remembered per url).
    fn refuses_filter(&self, source: &str) -> bool {
        let Ok(config) = self.config() else { return false };
        let Ok(mut values) = config.multivar(NO_FILTER, None) else {
            return false;
        };
        let mut found = false;
        while let Some(Ok(value)) = values.next() {
            found |= value.value() == Some(source);
        }
        found
    }

    fn fetch_from(
        &self,
        source: &str,
        plan: Plan,
        request: &FetchRequest,
        log: &Path,
        printer: &Printer,
        progress: &Progress,
    ) -> Result<()> {
        let want = request.want;
        let already = want.is_some_and(|oid| self.has_commit(oid));
        let filter = plan.filter().filter(|_| !self.refuses_filter(source));
        let mut flags: Vec<String> = vec!["--prune".into()];
        match plan {
            Plan::Complete => flags.push("--refetch".into()),
            Plan::Unshallow(_) => flags.push("--unshallow".into()),
            _ => {}
        }
        if let Some(filter) = filter {
            flags.push(format!("--filter={}", filter.as_str()));
        }
        let namespace = self.namespace(source);
        let mut filled = false;
        if let Plan::Shallow(depth) = plan {
            let (refspecs, all_here) = self.shallow_refspecs(source, &namespace, request, log)?;
            if !refspecs.is_empty() {
                let depth = depth.to_string();
                // Tips the store holds already only move names: with
                // `--depth` git would cut their history there again, and
                // what describe deepened would be fetched once more. New tips
                // come `--depth` deep (never a force-pushed branch's whole
                // new history).
                let flags: &[&str] = if all_here { &[] } else { &["--depth", &depth] };
                let refs: Vec<&str> = refspecs.iter().map(String::as_str).collect();
                let fetched = self.transfer(source, flags, &refs, log, printer, progress);
                // A protocol v0 server's answer; v2 says "not our ref" only of
                // what it does not have.
                let refused_by_id = |e: &anyhow::Error| ProcessError::cause_of(e) == Cause::NotByObjectId;
                if let (Err(e), Some(oid)) = (&fetched, want.filter(|_| fetched.as_ref().is_err_and(refused_by_id))) {
                    // An older server: no commit by id, only what its refs name.
                    printer.warn(format!(
                        "{}: the server will not send commit {} by id ({}); fetching its branches and tags whole",
                        crate::validate::redact_credentials(source),
                        super::short(oid),
                        first_line(e)
                    ));
                    let whole = if self.is_shallow() {
                        Plan::Unshallow(None)
                    } else {
                        Plan::Full
                    };
                    return self.fetch_from(source, whole, request, log, printer, progress);
                }
                fetched?;
            }
            filled = true;
        } else if namespace != "refs/" {
            let heads = format!("+refs/heads/*:{namespace}heads/*");
            let tags = format!("+refs/tags/*:{namespace}tags/*");
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            self.transfer(source, &flags, &[heads.as_str(), tags.as_str()], log, printer, progress)?;
            filled = true;
        } else if plan == Plan::Full && self.is_empty()? {
            retry(|| self.fill_by_clone(source, log, progress))?;
            filled = !self.is_empty()?;
        }
        // A clone that brought no refs (an empty upstream) gets a normal fetch.
        if !filled {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            self.transfer(source, &flags, REFSPECS, log, printer, progress)?;
        }
        self.repo.odb()?.refresh()?;
        if let Some(oid) = want.filter(|oid| !already && !self.has_commit(*oid)) {
            // A commit on no branch or tag: ask for the id itself (servers
            // that allow reachable-SHA1-in-want will send it).
            let spec = format!("+{oid}:{namespace}sultana/pins/{oid}");
            let mut flags: Vec<String> = Vec::new();
            if let Plan::Shallow(depth) = plan {
                flags.extend(["--depth".to_string(), depth.to_string()]);
            }
            if let Some(filter) = filter {
                flags.push(format!("--filter={}", filter.as_str()));
            }
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let by_id = self.transfer(source, &flags, &[spec.as_str()], log, printer, progress);
            self.repo.odb()?.refresh()?;
            if by_id.is_err() || !self.has_commit(oid) {
                bail!("commit {oid} is not there (not on any branch or tag, and the server will not send it by id)");
            }
        }
        Ok(())
    }

    /// What a shallow store fetches: the wanted commit by id, else the
    /// branch or tag the revision names (as the source lists them), never
    /// every branch and tag (each would bring a whole tree).
    fn shallow_refspecs(
        &self,
        source: &str,
        namespace: &str,
        request: &FetchRequest,
        log: &Path,
    ) -> Result<(Vec<String>, bool)> {
        if let Some(oid) = request.want {
            return Ok((
                vec![format!("+{oid}:{namespace}sultana/pins/{oid}")],
                self.has_commit(oid),
            ));
        }
        let Some(revision) = request.revision else {
            return Ok((Vec::new(), true));
        };
        let candidates: Vec<String> = if revision.starts_with("refs/heads/") || revision.starts_with("refs/tags/") {
            vec![revision.to_string()]
        } else {
            let name = revision.strip_prefix("origin/").unwrap_or(revision);
            vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")]
        };
        let listed = super::transfer_command()
            .args(["ls-remote", "--"])
            .arg(self.remote(source))
            .args(&candidates)
            .log(log)
            .output()?;
        let listed = String::from_utf8_lossy(&listed);
        let mut specs = Vec::new();
        let mut all_here = true;
        for candidate in &candidates {
            let tip = listed
                .lines()
                .find(|l| l.split('\t').nth(1) == Some(candidate.as_str()))
                .and_then(|l| Oid::from_str(l.split('\t').next().unwrap_or_default()).ok());
            if let Some(tip) = tip {
                let local = format!("{namespace}{}", candidate.trim_start_matches("refs/"));
                specs.push(format!("+{candidate}:{local}"));
                all_here &= self.repo.find_object(tip, None).is_ok();
            }
        }
        Ok((specs, all_here))
    }

    /// One `git fetch`, tried twice; a server refusing a filter is said
    /// once and remembered.
    fn transfer(
        &self,
        source: &str,
        flags: &[&str],
        refspecs: &[&str],
        log: &Path,
        printer: &Printer,
        progress: &Progress,
    ) -> Result<()> {
        let refused = std::cell::Cell::new(false);
        retry(|| self.git_fetch(source, flags, refspecs, log, progress, &refused))?;
        if refused.get() && flags.iter().any(|f| f.starts_with("--filter=")) && !self.refuses_filter(source) {
            self.config()?.set_multivar(NO_FILTER, "^$", source)?;
            self.refused_filter_on_fill.set(true);
            printer.warn(format!(
                "{}: the server does not serve partial clones; fetched everything instead (remembered for this url)",
                crate::validate::redact_credentials(source)
            ));
        }
        Ok(())
    }

    fn clone_dir(&self) -> PathBuf {
        let mut name = self.dir.as_os_str().to_owned();
        name.push(".clone");
        PathBuf::from(name)
    }

    /// Whether the store has no refs yet (its first fill).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.repo.references()?.next().is_none())
    }

    /// The first fill of a store: `git clone --bare` (the same heads and tags
    /// as REFSPECS) into a folder beside it, then its packs and refs moved in.
    /// A clone trusts its self-contained pack and skips the connectivity walk
    /// that `git fetch` does over the whole history (about 1 s on xen.git).
    /// Killed half way, the store holds packs without refs: the next run
    /// fetches normally.
    fn fill_by_clone(&self, source: &str, log: &Path, progress: &Progress) -> Result<(), ProcessError> {
        let tmp = self.clone_dir();
        let io = |command: &str, source: std::io::Error| ProcessError::Io {
            command: command.to_string(),
            source,
        };
        fsutil::remove_all(&tmp).map_err(|e| io("remove the clone folder", e))?;
        let clone = super::transfer_command()
            // --no-local: a plain path is cloned through git's transport
            // too, into a pack; its local shortcut copies loose objects,
            // which the move below (packs only) would leave behind.
            .args(["clone", "--bare", "--no-local", "--progress", "--"])
            .arg(self.remote(source))
            .arg(&tmp);
        run_showing_progress(clone, log, progress)?;
        let packs = tmp.join("objects/pack");
        let target = self.dir.join("objects/pack");
        std::fs::create_dir_all(&target).map_err(|e| io("create objects/pack", e))?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&packs)
            .map_err(|e| io("read the clone's packs", e))?
            .flatten()
            .map(|e| e.path())
            .collect();
        // A pack counts once its .idx is there: move the .pack first.
        files.sort_by_key(|f| (f.extension().is_none_or(|e| e != "pack"), f.clone()));
        for file in files {
            if let Some(name) = file.file_name() {
                std::fs::rename(&file, target.join(name)).map_err(|e| io("move a pack into the store", e))?;
            }
        }
        let refs = tmp.join("packed-refs");
        if refs.exists() {
            std::fs::rename(&refs, self.dir.join("packed-refs"))
                .map_err(|e| io("move packed-refs into the store", e))?;
        }
        crate::fault::point("cache-after-clone-fill");
        let _ = fsutil::remove_all(&tmp);
        Ok(())
    }

    fn git_fetch(
        &self,
        source: &str,
        flags: &[&str],
        refspecs: &[&str],
        log: &Path,
        progress: &Progress,
        refused: &std::cell::Cell<bool>,
    ) -> Result<(), ProcessError> {
        let fetch = super::transfer_command()
            .arg("--git-dir")
            .arg(&self.dir)
            .args(["fetch", "--no-tags", "--no-write-fetch-head", "--progress"])
            .args(flags)
            .arg("--")
            .arg(self.remote(source))
            .args(refspecs);
        fetch.log(log).run_with(|line| {
            if Cause::of_line(line) == Some(Cause::FilterUnsupported) {
                refused.set(true);
            }
            if let Some((done, total, phase)) = parse_progress(line) {
                progress.update(done, total, phase);
            }
        })
    }
}

/// `*.lock` files below a store's `refs/` (never following links).
fn remove_lock_files(dir: &Path, depth: usize) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        let path = entry.path();
        if kind.is_dir() && depth < 16 {
            remove_lock_files(&path, depth + 1);
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "lock") {
            let _ = fs::remove_file(&path);
        }
    }
}

fn first_line(err: &anyhow::Error) -> String {
    format!("{err:#}").lines().next().unwrap_or_default().to_string()
}
