//! Phase 3: checkouts moved to their pins, local work saved or left alone,
//! and what is printed of each.

use std::path::Path;

use anyhow::{bail, Result};

use crate::fsutil;
use crate::git::{self, submodule, Cache, Checkout, Dirt, MoveMode, Oid, RevKind, Store, TreeState};
use crate::lock::Lock;
use crate::manifest::Component;
use crate::printer::Printer;
use crate::process;
use crate::workspace::{SourceKind, Workspace};

use super::resolve::{sources, Resolution};
use super::submodules::SubmoduleSync;
use super::{backup, Action, Mode, Options, Report};

/// Refuse `update` without `--force` when a checkout holds local work and
/// its new pin would move it; one that stays where it is keeps its work.
pub(super) fn refuse_dirty(ws: &Workspace, cache: &Cache, resolutions: &[Resolution], printer: &Printer) -> Result<()> {
    let mut dirty = Vec::new();
    let mut names = Vec::new();
    for r in resolutions {
        let component = r.component;
        let path = ws.tree_path(component);
        if git::tree_state(&path) != TreeState::Git {
            continue;
        }
        let target = Oid::from_str(&r.entry.commit)?;
        let store = cache.store(&component.url, printer)?;
        // Judged against the target, which the manifest's url brought in
        // (read from its store, nothing written: this is a check).
        let checkout = Checkout::open_with(&path, &store)?;
        if checkout.head() == Some(target) {
            // The tree stays; a dirty submodule away from the commit the
            // tree records would still be moved.
            if !component.submodules.any() {
                continue;
            }
            let dirt = dirt_recursive(cache, &checkout, &component.url, Some(&store), None, printer)?;
            let recorded = checkout.repo().find_commit(target).and_then(|c| c.tree())?;
            for sub in &dirt.submodules {
                let wanted = recorded.get_path(Path::new(sub)).map(|e| e.id()).ok();
                let at = Checkout::open(&path.join(sub)).ok().and_then(|c| c.head());
                if wanted.is_some() && at != wanted {
                    dirty.push(format!(
                        "  {} ({}): submodule {sub} has local work and is not at the commit {} records",
                        component.name,
                        ws.display_path(&path),
                        r.entry.short()
                    ));
                    names.push(component.name.as_str());
                }
            }
            continue;
        }
        let dirt = dirt_recursive(cache, &checkout, &component.url, Some(&store), Some(target), printer)?;
        if !dirt.is_clean() {
            let from = checkout.head().map_or("nothing".to_string(), git::short);
            dirty.push(format!(
                "  {} ({}): {}; the update would move it from {from} to {}",
                component.name,
                ws.display_path(&path),
                dirt.summary(),
                r.entry.short()
            ));
            names.push(component.name.as_str());
        }
    }
    if dirty.is_empty() {
        return Ok(());
    }
    names.dedup();
    bail!(
        "refusing to update checkouts with local work:\n{}\n\
         Commit, stash or push it, or run `sultana update --force {}` to save it as a commit under refs/sultana/backup/ first",
        dirty.join("\n"),
        names.join(" ")
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

pub(super) fn place(
    ws: &Workspace,
    cache: &Cache,
    r: &Resolution,
    options: &Options,
    printer: &Printer,
) -> Result<Report> {
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
    let fetch_mode = ws.fetch_mode(component, store.kind());
    if let Some(previous) = changed_pin.and_then(|p| Oid::from_str(&p.commit).ok()) {
        report.new_commits = say_update(&store, component, previous, commit, &r.entry, printer);
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
        Err(e) if git::is_damaged_store(&e) && !options.session.offline() => {
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
    if component.submodules.any() && placed.action != Action::LeftDirty {
        let log = process::log_path(&ws.state_dir(), &format!("fetch-{}-submodules", component.name));
        SubmoduleSync {
            cache,
            log: &log,
            force,
            offline: options.session.offline(),
            mode: fetch_mode,
            component: &component.name,
            wanted: &component.submodules,
            printer,
        }
        .run(&checkout, &component.url, commit, 0)?;
    }
    say_placed(ws, r, &report, options.mode, printer);
    Ok(report)
}

/// How far a pin moves, said as `Updating`: the new commits, and the
/// dropped ones of a rewind.
fn say_update(
    store: &Store,
    component: &Component,
    previous: Oid,
    commit: Oid,
    entry: &crate::lock::LockEntry,
    printer: &Printer,
) -> Option<usize> {
    let (ahead, behind) = store.repo().graph_ahead_behind(commit, previous).ok()?;
    let range = format!("{}..{}", &previous.to_string()[..12], entry.short());
    let extra = if behind > 0 {
        format!(", {behind} dropped: not a fast-forward")
    } else {
        String::new()
    };
    printer.status(
        "Updating",
        format!("{} {range} ({} new commit(s){extra})", component.name, ahead),
    );
    Some(ahead)
}

/// What was done with the checkout, in one line.
fn say_placed(ws: &Workspace, r: &Resolution, report: &Report, mode: Mode, printer: &Printer) {
    let component = r.component;
    let shown = format!("{} {} ({})", component.name, r.entry.short(), r.entry.describe);
    match report.action {
        // A gate's own checkout: never let it pass for the user's.
        Action::Cloned | Action::Moved if mode == Mode::Scratch => printer.status(
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
            "{} has local work ({}); left at its current commit instead of {} (`sultana update --force {}` saves it and moves)",
            report.path,
            report.note.as_deref().unwrap_or("local changes"),
            r.entry.short(),
            component.name
        )),
        _ => {}
    }
}

/// `.sultana/gate/blktap`: a scratch tree named from the workspace that
/// holds the scratch area.
pub(super) fn scratch_path(scratch: &Workspace, path: &str) -> String {
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

pub(super) struct Placed {
    pub(super) action: Action,
    /// Why a tree was left as it was.
    pub(super) note: Option<String>,
    /// What was saved before the move (the checkout's own backup last).
    pub(super) saved: Vec<backup::Saved>,
}

impl Placed {
    pub(super) fn plain(action: Action) -> Placed {
        Placed {
            action,
            note: None,
            saved: Vec::new(),
        }
    }
}

/// What moving a checkout does with local work in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OnLocalWork {
    /// Leave the checkout where it is (fetch, update without --force).
    Leave,
    /// Save it under refs/sultana/backup/, then move (update --force).
    Save,
    /// Move over it: a scratch checkout holds nobody's work.
    Discard,
}

/// What placing one tree (a component's or a submodule's) needs.
pub(super) struct Placement<'a> {
    pub(super) cache: &'a Cache,
    pub(super) url: &'a str,
    pub(super) store: &'a Store,
    pub(super) commit: Oid,
    pub(super) force: OnLocalWork,
    /// The component's name, or `submodule PATH`.
    pub(super) label: &'a str,
    /// The name for backup refs in the cache store.
    pub(super) backup_label: &'a str,
    pub(super) printer: &'a Printer,
}

/// Make the tree at `path` a checkout of `p.commit`, creating, moving or
/// (with local work) leaving it, as `p.force` says.
pub(super) fn place_tree(path: &Path, p: &Placement) -> Result<Placed> {
    let placed = place_tree_as_asked(path, p)?;
    // git in the checkout reads the store's objects as its own: it must
    // know where the store's history stops and where to ask for the rest.
    if git::tree_state(path) == TreeState::Git {
        let checkout = Checkout::open(path)?;
        checkout.borrow_history(p.store)?;
        checkout.mirror_refs(p.store, p.url)?;
        checkout.follow_rewrite(p.cache.rewrites(), p.url)?;
    }
    Ok(placed)
}

fn place_tree_as_asked(path: &Path, p: &Placement) -> Result<Placed> {
    match git::tree_state(path) {
        TreeState::Missing => {
            git::links::refuse_escaping(p.store.repo(), p.commit, p.url)?;
            Checkout::create(path, p.store, p.url, p.commit)?;
            Ok(Placed::plain(Action::Cloned))
        }
        TreeState::Other => bail!("{} exists but is not a git checkout; move it away", path.display()),
        TreeState::Git => {
            // The manifest may name another url than the one the checkout
            // was made from: its objects are in that url's store now.
            Checkout::borrow_objects(path, p.store)?;
            let checkout = Checkout::open(path)?;
            checkout.follow_url(p.url)?;
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
pub(super) fn remove_saved_files(root: &Path, paths: &[std::path::PathBuf]) -> Result<()> {
    for rel in paths {
        let path = root.join(rel);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
            fsutil::remove_all(&path)?;
        }
    }
    Ok(())
}

pub(super) fn save(
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

pub(super) fn other_source_report(ws: &Workspace, component: &Component, lock: &Lock, printer: &Printer) -> Report {
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
