//! Bringing a workspace to its pins: resolve intents (phase 1, parallel),
//! write the lock (phase 2), move checkouts and submodules (phase 3, parallel).
//! Shared by `fetch`, `update` and `lock`.

pub mod backup;
pub mod pin_check;

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::error::CheckFailed;
use crate::fsutil;
use crate::git::{self, submodule, Cache, Checkout, Dirt, MoveMode, Oid, ResolveError, RevKind, Store, TreeState};
use crate::lock::{Lock, LockEntry};
use crate::manifest::Component;
use crate::parallel;
use crate::printer::Printer;
use crate::process;
use crate::workspace::{SourceKind, Workspace};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Missing clones, checkouts to the lock; resolve only what the lock lacks.
    Fetch,
    /// Ask every remote again, re-resolve, move checkouts.
    Update { force: bool },
    /// Re-resolve into the lock; leave checkouts alone.
    Lock,
    /// Like `Fetch` for the lock and the cache (pins kept, missing ones
    /// resolved, commits fetched into the cache), but checkouts are left
    /// alone: what `tarball` needs, reading trees from the cache.
    Resolve,
    /// Like `Fetch`, for checkouts that are sultana's own scratch (a gate's
    /// area): moved by force, their local state not saved.
    Scratch,
}

impl Mode {
    /// Keeps existing pins and resolves only what the lock lacks.
    fn keeps_pins(self) -> bool {
        matches!(self, Mode::Fetch | Mode::Resolve | Mode::Scratch)
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub mode: Mode,
    pub offline: bool,
    pub locked: bool,
    pub jobs: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Cloned,
    Moved,
    Fresh,
    /// Not moved: it has local changes (fetch never touches those).
    LeftDirty,
    /// `lock`: checkouts are not touched.
    Locked,
    Local,
    Intree,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub name: String,
    pub source: SourceKind,
    pub path: String,
    pub revision: String,
    pub commit: Option<String>,
    pub describe: Option<String>,
    /// The locked commit before this run, when it changed.
    pub previous: Option<String>,
    /// Commits between the old and new pin (update), when known.
    pub new_commits: Option<usize>,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub lock_changed: bool,
    pub components: Vec<Report>,
}

struct Resolution<'a> {
    component: &'a Component,
    entry: LockEntry,
    kind: Option<RevKind>,
    previous: Option<LockEntry>,
}

pub fn run(ws: &Workspace, names: &[String], all: bool, options: &Options, printer: &Printer) -> Result<Outcome> {
    let selected = ws.manifest.select(names, all)?;
    let cache = Cache::locate()?;
    let old_lock = ws.load_lock()?;
    let git_components: Vec<&Component> = selected
        .iter()
        .copied()
        .filter(|c| ws.source(c) == SourceKind::Git)
        .collect();
    for component in &git_components {
        ws.check_tree_is_git(component)?;
    }

    if options.locked && options.mode.keeps_pins() {
        let stale: Vec<&str> = git_components
            .iter()
            .filter(|c| !old_lock.get(&c.name).is_some_and(|e| e.matches(c)))
            .map(|c| c.name.as_str())
            .collect();
        if !stale.is_empty() {
            return Err(CheckFailed(format!(
                "sultana.lock has no current pin for {} and --locked forbids changing it; run `sultana lock`",
                stale.join(", ")
            ))
            .into());
        }
    }
    if let Mode::Update { force: false } = options.mode {
        refuse_dirty(ws, &cache, &git_components, printer)?;
    }

    // Phase 1: resolve.
    let resolved = parallel::map(options.jobs, &git_components, |component| {
        resolve(ws, &cache, component, old_lock.get(&component.name), options, printer)
            .with_context(|| format!("cannot resolve `{}`", component.name))
    });
    let mut resolutions = Vec::new();
    let mut errors = Vec::new();
    for result in resolved {
        match result {
            Ok(r) => resolutions.push(r),
            Err(e) => errors.push(e),
        }
    }
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }

    // Phase 2: the lock.
    let mut new_lock = old_lock.clone();
    new_lock.entries.retain(|name, _| ws.manifest.component(name).is_some());
    for r in &resolutions {
        new_lock.entries.insert(r.entry.name.clone(), r.entry.clone());
    }
    let lock_changed = new_lock.entries != old_lock.entries;
    if lock_changed {
        if options.locked {
            let changed: Vec<&str> = resolutions
                .iter()
                .filter(|r| old_lock.get(&r.entry.name) != Some(&r.entry))
                .map(|r| r.entry.name.as_str())
                .collect();
            return Err(CheckFailed(format!(
                "sultana.lock would change (for {}) but --locked was given",
                if changed.is_empty() {
                    "removed components".to_string()
                } else {
                    changed.join(", ")
                }
            ))
            .into());
        }
        new_lock.save(&ws.lock_path())?;
        crate::fault::point("after-lock-write");
    }

    // Phase 3: checkouts.
    let mut reports = parallel::map(options.jobs, &resolutions, |r| {
        place(ws, &cache, r, options, printer).with_context(|| format!("cannot check out `{}`", r.component.name))
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;

    for component in selected.iter().filter(|c| ws.source(c) != SourceKind::Git) {
        reports.push(other_source_report(ws, component, &new_lock, printer));
    }
    let order = |name: &str| ws.manifest.components.iter().position(|c| c.name == name);
    reports.sort_by_key(|r| order(&r.name));

    let dirty: Vec<String> = reports
        .iter()
        .filter(|r| r.action == Action::LeftDirty)
        .map(|r| format!("{} ({})", r.name, r.path))
        .collect();
    let outcome = Outcome {
        lock_changed,
        components: reports,
    };
    if !dirty.is_empty() {
        printer.json(&outcome);
        bail!(
            "left as they were because they have local changes: {}\n\
             Commit or stash the changes, or run `sultana update --force NAME` to save them under refs/sultana/backup/ and move on",
            dirty.join(", ")
        );
    }
    Ok(outcome)
}

/// Where a component is fetched from, in order: its mirrors, then its url.
pub(crate) fn sources(component: &Component) -> Vec<String> {
    component
        .mirrors
        .iter()
        .cloned()
        .chain([component.url.clone()])
        .collect()
}

pub(crate) fn fetch_store(
    ws: &Workspace,
    store: &Store,
    component: &Component,
    want: Option<Oid>,
    printer: &Printer,
) -> Result<String> {
    printer.status("Fetching", format!("{} from {}", component.name, store.url));
    let progress = printer.progress(&component.name);
    let log = process::log_path(&ws.state_dir(), &format!("fetch-{}", component.name));
    let used = store.fetch(&sources(component), want, &log, printer, &progress)?;
    if used != component.url {
        printer.verbose("Fetched", format!("{} from mirror {used}", component.name));
    }
    Ok(used)
}

fn offline_error(component: &Component, what: &str) -> anyhow::Error {
    anyhow!(
        "component `{}` needs the network ({what}), but --offline was given; run once without --offline, or add a reachable mirror",
        component.name
    )
}

fn resolve<'a>(
    ws: &Workspace,
    cache: &Cache,
    component: &'a Component,
    previous: Option<&LockEntry>,
    options: &Options,
    printer: &Printer,
) -> Result<Resolution<'a>> {
    let store = cache.store(&component.url, printer)?;
    let pinned = previous.filter(|e| e.matches(component) && options.mode.keeps_pins());
    if let Some(entry) = pinned {
        let commit = Oid::from_str(&entry.commit)?;
        if !store.has_commit(commit) {
            if options.offline {
                return Err(offline_error(
                    component,
                    &format!("commit {} is not in the cache", entry.short()),
                ));
            }
            fetch_store(ws, &store, component, Some(commit), printer)?;
        }
        // A pin is trusted only as what its revision names.
        let verdict = pin_check::check(&store, &sources(component), entry);
        match verdict {
            pin_check::PinCheck::TagDiffers { .. } | pin_check::PinCheck::CommitDiffers => {
                return Err(CheckFailed(format!(
                    "{}: {}; fix sultana.lock, or run `sultana update {}` to resolve it again",
                    component.name,
                    verdict.describe(entry),
                    component.name
                ))
                .into())
            }
            pin_check::PinCheck::NotOnBranch { .. } => {
                printer.warn(format!("{}: {}", component.name, verdict.describe(entry)))
            }
            _ => {}
        }
        return Ok(Resolution {
            component,
            entry: entry.clone(),
            kind: None,
            previous: previous.cloned(),
        });
    }

    let rev = component.revision.as_str();
    let want = crate::validate::is_full_sha(rev)
        .then(|| Oid::from_str(rev).ok())
        .flatten();
    let all_sources = sources(component);
    let must_fetch = match options.mode {
        Mode::Fetch | Mode::Resolve | Mode::Scratch => store.resolve_needs_fetch(rev, &all_sources),
        Mode::Update { .. } | Mode::Lock => true,
    };
    // Names are taken from the source just fetched, else from the first of
    // this workspace's own sources that has them: never from a mirror some
    // other workspace named.
    let mut lookup = all_sources.clone();
    let mut fetched = false;
    if must_fetch && !options.offline {
        lookup = vec![fetch_store(ws, &store, component, want, printer)?];
        fetched = true;
    }
    let resolved = match store.resolve_among(rev, &lookup) {
        Ok(r) => r,
        Err(e @ (ResolveError::MissingCommit { .. } | ResolveError::NotFound { .. })) if options.offline => {
            return Err(offline_error(component, &e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    let (resolved, source) = resolved;
    if !fetched {
        if let RevKind::Branch(branch) = &resolved.kind {
            printer.warn(format!(
                "{}: branch `{branch}` resolved from the cache (offline); it may be behind the remote",
                component.name
            ));
        }
    }
    let entry = LockEntry {
        name: component.name.clone(),
        url: component.url.clone(),
        revision: component.revision.clone(),
        commit: resolved.commit.to_string(),
        describe: store.describe_from(resolved.commit, &source),
        source: None,
    };
    if previous.map(|p| &p.commit) != Some(&entry.commit) {
        printer.status(
            "Resolved",
            format!("{} {} to {} ({})", component.name, rev, entry.short(), entry.describe),
        );
    }
    Ok(Resolution {
        component,
        entry,
        kind: Some(resolved.kind),
        previous: previous.cloned(),
    })
}

/// Refuse `update` without `--force` when any checkout holds local work.
fn refuse_dirty(ws: &Workspace, cache: &Cache, components: &[&Component], printer: &Printer) -> Result<()> {
    let mut dirty = Vec::new();
    for component in components {
        let path = ws.tree_path(component);
        if git::tree_state(&path) != TreeState::Git {
            continue;
        }
        let checkout = Checkout::open(&path)?;
        let store = cache.store(&component.url, printer)?;
        let dirt = dirt_recursive(cache, &checkout, &component.url, Some(&store), None, printer)?;
        if !dirt.is_clean() {
            dirty.push(format!(
                "  {} ({}): {}",
                component.name,
                ws.display_path(&path),
                dirt.summary()
            ));
        }
    }
    if dirty.is_empty() {
        return Ok(());
    }
    bail!(
        "refusing to update checkouts with local work:\n{}\n\
         Commit or stash it, or run `sultana update --force` to save it as a commit under refs/sultana/backup/ first",
        dirty.join("\n")
    )
}

/// A checkout's dirt including that of its submodule checkouts; with
/// `target`, the ignored files a move there would overwrite count too.
pub fn dirt_recursive(
    cache: &Cache,
    checkout: &Checkout,
    url: &str,
    store: Option<&Store>,
    target: Option<Oid>,
    printer: &Printer,
) -> Result<Dirt> {
    let mut dirt = checkout.dirt(store, target)?;
    let Some(head) = checkout.head() else { return Ok(dirt) };
    for sub in submodule::list(checkout.repo(), head, url).unwrap_or_default() {
        let path = checkout.path.join(&sub.path);
        if git::tree_state(&path) != TreeState::Git {
            continue;
        }
        let sub_checkout = Checkout::open(&path)?;
        let sub_store = cache.store(&sub.url, printer)?;
        if !dirt_recursive(cache, &sub_checkout, &sub.url, Some(&sub_store), None, printer)?.is_clean() {
            dirt.submodules.push(sub.path.display().to_string());
        }
    }
    Ok(dirt)
}

fn place(ws: &Workspace, cache: &Cache, r: &Resolution, options: &Options, printer: &Printer) -> Result<Report> {
    let component = r.component;
    let path = ws.tree_path(component);
    let commit = Oid::from_str(&r.entry.commit)?;
    let changed_pin = r.previous.as_ref().filter(|p| p.commit != r.entry.commit);
    let mut report = Report {
        name: component.name.clone(),
        source: SourceKind::Git,
        path: ws.display_path(&path),
        revision: component.revision.clone(),
        commit: Some(r.entry.commit.clone()),
        describe: Some(r.entry.describe.clone()),
        previous: changed_pin.map(|p| p.commit.clone()),
        new_commits: None,
        action: Action::Fresh,
        backup: None,
        note: None,
    };
    let store = cache.store(&component.url, printer)?;
    if let Some(previous) = changed_pin.and_then(|p| Oid::from_str(&p.commit).ok()) {
        if let Ok((ahead, behind)) = store.repo().graph_ahead_behind(commit, previous) {
            report.new_commits = Some(ahead);
            let range = format!("{}..{}", &previous.to_string()[..12], r.entry.short());
            let extra = if behind > 0 {
                format!(", {behind} dropped: not a fast-forward")
            } else {
                String::new()
            };
            printer.status(
                "Updating",
                format!("{} {range} ({} new commit(s){extra})", component.name, ahead),
            );
        }
    }
    if matches!(options.mode, Mode::Lock | Mode::Resolve) {
        report.action = Action::Locked;
        return Ok(report);
    }
    let force = match options.mode {
        Mode::Update { force: true } => OnLocalWork::Save,
        Mode::Scratch => OnLocalWork::Discard,
        _ => OnLocalWork::Leave,
    };
    let place = |store: &Store| {
        place_tree(
            &path,
            &Placement {
                cache,
                url: &component.url,
                store,
                commit,
                force,
                label: &component.name,
                backup_label: &component.name,
                printer,
            },
        )
    };
    let first = place(&store);
    let placed = match first {
        Err(e) if git::is_damaged_store(&e) && !options.offline => {
            // Damaged objects in the shared cache: make the store again from
            // the network, then place the tree once more. The damaged store's
            // handle goes first: libgit2 shares open packs by path, and its
            // would stand for the new store's.
            drop(store);
            printer.warn(format!(
                "the cache of {} is damaged ({}); fetching it again",
                component.url,
                format!("{e:#}").lines().last().unwrap_or_default()
            ));
            let log = process::log_path(&ws.state_dir(), &format!("fetch-{}", component.name));
            let store = cache.rebuild_store(&component.url, &sources(component), Some(commit), &log, printer)?;
            place(&store)?
        }
        other => other?,
    };
    report.action = placed.action;
    report.note = placed.note.clone();
    report.backup = placed.saved.last().map(|s| s.reference.clone());
    let checkout = Checkout::open(&path)?;
    if let Some(RevKind::Branch(branch)) = &r.kind {
        checkout.set_remote_branch(branch, commit)?;
    }
    backup::print_saved(printer, &component.name, &placed.saved);
    if component.submodules && placed.action != Action::LeftDirty {
        let log = process::log_path(&ws.state_dir(), &format!("fetch-{}-submodules", component.name));
        SubmoduleSync {
            cache,
            log: &log,
            force,
            offline: options.offline,
            component: &component.name,
            printer,
        }
        .run(&checkout, &component.url, commit, 0)?;
    }
    let shown = format!("{} {} ({})", component.name, r.entry.short(), r.entry.describe);
    match report.action {
        // A gate's own checkout: never let it pass for the user's.
        Action::Cloned | Action::Moved if options.mode == Mode::Scratch => printer.status(
            "Scratch",
            format!(
                "{shown} in the flight's scratch tree {} (not your checkout)",
                scratch_path(ws, &report.path)
            ),
        ),
        Action::Cloned => printer.status("Checked out", format!("{shown} into {}", report.path)),
        Action::Moved => printer.status("Moved", shown),
        Action::Fresh => printer.verbose("Fresh", shown),
        Action::LeftDirty => printer.warn(format!(
            "{} has local work ({}); left at its current commit instead of {}",
            report.path,
            report.note.as_deref().unwrap_or("local changes"),
            r.entry.short()
        )),
        _ => {}
    }
    Ok(report)
}

/// `.sultana/gate/blktap`: a scratch tree named from the workspace that
/// holds the scratch area.
fn scratch_path(scratch: &Workspace, path: &str) -> String {
    let full = scratch.root.join(path);
    scratch
        .root
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == ".sultana"))
        .and_then(|state| state.parent())
        .and_then(|ws| full.strip_prefix(ws).ok())
        .unwrap_or(&full)
        .display()
        .to_string()
}

struct Placed {
    action: Action,
    /// Why a tree was left as it was.
    note: Option<String>,
    /// What was saved before the move (the checkout's own backup last).
    saved: Vec<backup::Saved>,
}

impl Placed {
    fn plain(action: Action) -> Placed {
        Placed {
            action,
            note: None,
            saved: Vec::new(),
        }
    }
}

/// What moving a checkout does with local work in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnLocalWork {
    /// Leave the checkout where it is (fetch, update without --force).
    Leave,
    /// Save it under refs/sultana/backup/, then move (update --force).
    Save,
    /// Move over it: a scratch checkout holds nobody's work.
    Discard,
}

/// What placing one tree (a component's or a submodule's) needs.
struct Placement<'a> {
    cache: &'a Cache,
    url: &'a str,
    store: &'a Store,
    commit: Oid,
    force: OnLocalWork,
    /// The component's name, or `submodule PATH`.
    label: &'a str,
    /// The name for backup refs in the cache store.
    backup_label: &'a str,
    printer: &'a Printer,
}

/// Make the tree at `path` a checkout of `p.commit`, creating, moving or
/// (with local work) leaving it, as `p.force` says.
fn place_tree(path: &Path, p: &Placement) -> Result<Placed> {
    match git::tree_state(path) {
        TreeState::Missing => {
            git::links::refuse_escaping(p.store.repo(), p.commit, p.url)?;
            Checkout::create(path, p.store, p.url, p.commit)?;
            Ok(Placed::plain(Action::Cloned))
        }
        TreeState::Other => bail!("{} exists but is not a git checkout; move it away", path.display()),
        TreeState::Git => {
            let checkout = Checkout::open(path)?;
            let mut saved = Vec::new();
            if let Some(interrupted) = checkout.interrupted_move()? {
                let earlier = interrupted
                    .backup
                    .as_deref()
                    .map(|b| format!("; the work saved before it is in {b}"))
                    .unwrap_or_default();
                if !interrupted.local_work.is_empty() && p.force == OnLocalWork::Leave {
                    p.printer.warn(format!(
                        "{}: a move an interrupted run left half done, and {} file(s) changed since ({}); \
                         left as it is{earlier}. Run `sultana update --force {}` to save them and finish the move",
                        p.label,
                        interrupted.local_work.len(),
                        git::preview(&interrupted.local_work),
                        p.backup_label,
                    ));
                    return Ok(Placed {
                        note: Some(format!(
                            "half moved by an interrupted run, {} file(s) changed since",
                            interrupted.local_work.len()
                        )),
                        ..Placed::plain(Action::LeftDirty)
                    });
                }
                if !interrupted.local_work.is_empty() && p.force == OnLocalWork::Save {
                    saved = save(
                        &checkout,
                        p,
                        "sultana: work done in a checkout an interrupted move left half done",
                        // Ignored files among them too (add_all skips those).
                        &interrupted.local_work,
                    )?;
                    remove_saved_files(path, &interrupted.local_work)?;
                }
                checkout.finish_move(&interrupted)?;
                p.printer.status(
                    "Repaired",
                    format!("{}: finished a move an earlier run left half done{earlier}", p.label),
                );
            }
            if checkout.head() == Some(p.commit) {
                return Ok(Placed {
                    action: Action::Fresh,
                    note: None,
                    saved,
                });
            }
            git::links::refuse_escaping(p.store.repo(), p.commit, p.url)?;
            if p.force == OnLocalWork::Discard {
                // Nobody's work is here, and no build output of another
                // commit may stay: start clean.
                checkout.move_to(p.commit, MoveMode::Scrub, None)?;
                return Ok(Placed::plain(Action::Moved));
            }
            let dirt = dirt_recursive(p.cache, &checkout, p.url, Some(p.store), Some(p.commit), p.printer)?;
            if dirt.is_clean() {
                checkout.move_to(p.commit, MoveMode::Safe, None)?;
                return Ok(Placed {
                    action: Action::Moved,
                    note: None,
                    saved,
                });
            }
            if p.force == OnLocalWork::Leave {
                return Ok(Placed {
                    action: Action::LeftDirty,
                    note: Some(dirt.summary()),
                    saved,
                });
            }
            let reason = format!(
                "sultana: local work in {} before moving to {}",
                path.display(),
                p.commit
            );
            saved.extend(save(&checkout, p, &reason, &dirt.ignored)?);
            remove_saved_files(path, &dirt.ignored)?;
            let backup = saved.last().map(|s| s.reference.clone());
            checkout.move_to(p.commit, MoveMode::Force, backup.as_deref())?;
            Ok(Placed {
                action: Action::Moved,
                note: None,
                saved,
            })
        }
    }
}

/// Files just saved that a forced move would not remove itself (ignored
/// ones) and that may stand where the new commit needs a folder. Nested
/// repositories are left where they are.
fn remove_saved_files(root: &Path, paths: &[std::path::PathBuf]) -> Result<()> {
    for rel in paths {
        let path = root.join(rel);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
            fsutil::remove_all(&path)?;
        }
    }
    Ok(())
}

fn save(
    checkout: &Checkout,
    p: &Placement,
    reason: &str,
    ignored: &[std::path::PathBuf],
) -> Result<Vec<backup::Saved>> {
    backup::save_local_work(
        &backup::SaveRequest {
            cache: p.cache,
            checkout,
            url: p.url,
            label: p.backup_label,
            reason,
            ignored,
            removing: false,
        },
        p.printer,
    )
}

/// Bring the submodules of `parent` (at `commit`) to the commits it records.
struct SubmoduleSync<'a> {
    cache: &'a Cache,
    log: &'a Path,
    force: OnLocalWork,
    offline: bool,
    /// The component's name, for backup refs.
    component: &'a str,
    printer: &'a Printer,
}

impl SubmoduleSync<'_> {
    fn run(&self, parent: &Checkout, parent_url: &str, commit: Oid, depth: usize) -> Result<()> {
        if depth > 8 {
            bail!("submodules nest deeper than 8 levels under {}", parent.path.display());
        }
        let printer = self.printer;
        for sub in submodule::list(parent.repo(), commit, parent_url)? {
            let store = self.cache.store(&sub.url, printer)?;
            if !store.has_commit(sub.commit) {
                if self.offline {
                    bail!(
                        "submodule {} needs commit {} from {}, which is not in the cache, but --offline was given",
                        sub.path.display(),
                        sub.commit,
                        sub.url
                    );
                }
                printer.status("Fetching", format!("submodule {} from {}", sub.path.display(), sub.url));
                let progress = printer.progress(&sub.name);
                store.fetch(
                    std::slice::from_ref(&sub.url),
                    Some(sub.commit),
                    self.log,
                    printer,
                    &progress,
                )?;
            }
            let path = parent.path.join(&sub.path);
            let label = format!("submodule {}", sub.path.display());
            let backup_label = format!("{}/{}", self.component, sub.path.display());
            let placed = place_tree(
                &path,
                &Placement {
                    cache: self.cache,
                    url: &sub.url,
                    store: &store,
                    commit: sub.commit,
                    force: self.force,
                    label: &label,
                    backup_label: &backup_label,
                    printer,
                },
            )?;
            if placed.action == Action::LeftDirty {
                printer.warn(format!("{} has local changes; left as it is", path.display()));
                continue;
            }
            backup::print_saved(printer, &label, &placed.saved);
            let mut config = parent.repo().config()?;
            config.set_str(&format!("submodule.{}.url", sub.name), &sub.url)?;
            config.set_bool(&format!("submodule.{}.active", sub.name), true)?;
            let checkout = Checkout::open(&path)?;
            self.run(&checkout, &sub.url, sub.commit, depth + 1)?;
        }
        Ok(())
    }
}

fn other_source_report(ws: &Workspace, component: &Component, lock: &Lock, printer: &Printer) -> Report {
    let source = ws.source(component);
    let path = ws.tree_path(component);
    let (commit, action) = match source {
        SourceKind::Local => {
            let head = Checkout::open(&path).ok().and_then(|c| c.head()).map(|h| h.to_string());
            printer.verbose("Local", format!("{} uses {} as it is", component.name, path.display()));
            (head, Action::Local)
        }
        _ => {
            printer.verbose(
                "Intree",
                format!(
                    "{} is inside the root tree at {}",
                    component.name,
                    ws.display_path(&path)
                ),
            );
            (lock.get(&component.name).map(|e| e.commit.clone()), Action::Intree)
        }
    };
    Report {
        name: component.name.clone(),
        source,
        path: ws.display_path(&path),
        revision: component.revision.clone(),
        describe: lock.get(&component.name).map(|e| e.describe.clone()),
        commit,
        previous: None,
        new_commits: None,
        action,
        backup: None,
        note: None,
    }
}
