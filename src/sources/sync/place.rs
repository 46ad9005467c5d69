//! Phase 3: checkouts moved to their pins, local work saved or left alone,
//! and what is printed of each.

use std::path::Path;

use anyhow::{bail, Result};

use crate::git::{self, Cache, Checkout, Oid, RevKind, Store, TreeState};
use crate::lock::Lock;
use crate::manifest::Component;
use crate::printer::Printer;
use crate::process;
use crate::workspace::{SourceKind, Workspace};

use super::place_tree::{dirt_recursive, place_tree, OnLocalWork, Placement};
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
