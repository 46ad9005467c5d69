//! Bringing a workspace to its pins: resolve intents (phase 1, parallel),
//! write the lock (phase 2), move checkouts and submodules (phase 3, parallel).
//! Shared by `fetch`, `update` and `lock`.

pub mod backup;
pub mod pin_check;
mod place;
mod place_tree;
mod resolve;
pub mod state;
mod submodules;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::error::CheckFailed;
use crate::lock::Lock;
use crate::manifest::Component;
use crate::parallel;
use crate::printer::Printer;
use crate::workspace::{SourceKind, Workspace};

use place::{other_source_report, place, refuse_dirty};
pub use place_tree::dirt_recursive;
pub(crate) use resolve::{fetch_store, sources, with_need};
use resolve::{resolve, Resolution};

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
    pub session: crate::session::Session,
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
    /// Components that could not be fetched, resolved or checked out, with
    /// why: the others went on without them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Failure>,
}

/// One component a run could not bring to its pin.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub name: String,
    pub error: String,
}

pub fn run(ws: &Workspace, names: &[String], all: bool, options: &Options, printer: &Printer) -> Result<Outcome> {
    let selected = ws.manifest.select(names, all)?;
    let cache = ws.git_cache()?;
    let old_lock = ws.load_lock()?;
    let git_components: Vec<&Component> = selected
        .iter()
        .copied()
        .filter(|c| ws.source(c) == SourceKind::Git)
        .collect();
    for component in &git_components {
        ws.check_tree_is_git(component)?;
    }
    if options.session.locked() && options.mode.keeps_pins() {
        check_pins_current(&git_components, &old_lock)?;
    }
    // Phase 1: resolve. One component that cannot be resolved does not
    // cost the others.
    let mut failures = Failures::default();
    let resolved = parallel::map(options.session.jobs, &git_components, |component| {
        resolve(ws, &cache, component, old_lock.get(&component.name), options, printer)
            .with_context(|| format!("cannot resolve `{}`", component.name))
    });
    let resolutions = failures.keep_ok(git_components.iter().map(|c| c.name.as_str()), resolved);

    // Checkouts with local work that the update would move: refused before
    // the lock changes. One whose pin does not move is left as it is.
    if let Mode::Update { force: false } = options.mode {
        refuse_dirty(ws, &cache, &resolutions, printer)?;
    }

    // Phase 2: the lock.
    let (new_lock, lock_changed) = write_lock(ws, &old_lock, &resolutions, options.session.locked())?;

    // Phase 3: checkouts.
    let placed = parallel::map(options.session.jobs, &resolutions, |r| {
        place(ws, &cache, r, options, printer).with_context(|| format!("cannot check out `{}`", r.component.name))
    });
    let mut reports = failures.keep_ok(resolutions.iter().map(|r| r.component.name.as_str()), placed);

    for component in selected.iter().filter(|c| ws.source(c) != SourceKind::Git) {
        reports.push(other_source_report(ws, component, &new_lock, printer));
    }
    let order = |name: &str| ws.manifest.components.iter().position(|c| c.name == name);
    reports.sort_by_key(|r| order(&r.name));
    failures.failed.sort_by_key(|f| order(&f.name));
    let outcome = Outcome {
        lock_changed,
        components: reports,
        failed: failures.failed,
    };
    conclude(outcome, failures.first, options.session.locked(), printer)
}

/// `--locked` where pins are kept: every component must already have a
/// current pin.
fn check_pins_current(components: &[&Component], lock: &Lock) -> Result<()> {
    let stale: Vec<&str> = components
        .iter()
        .filter(|c| !lock.get(&c.name).is_some_and(|e| e.matches(c)))
        .map(|c| c.name.as_str())
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    Err(CheckFailed(format!(
        "sultana.lock has no current pin for {} and --locked forbids changing it; run `sultana lock`",
        stale.join(", ")
    ))
    .into())
}

/// The components a phase could not do, and the first error kept whole
/// (its kind gives the exit code).
#[derive(Default)]
struct Failures {
    failed: Vec<Failure>,
    first: Option<anyhow::Error>,
}

impl Failures {
    /// The results that worked; the others are noted against their names.
    fn keep_ok<'a, T>(&mut self, names: impl Iterator<Item = &'a str>, results: Vec<Result<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for (name, result) in names.zip(results) {
            match result {
                Ok(value) => out.push(value),
                Err(e) => {
                    self.failed.push(Failure {
                        name: name.to_string(),
                        error: format!("{e:#}"),
                    });
                    self.first.get_or_insert(e);
                }
            }
        }
        out
    }
}

/// The lock with the new pins (and without components the manifest no
/// longer has), written when it changed: `--locked` forbids that.
fn write_lock(ws: &Workspace, old_lock: &Lock, resolutions: &[Resolution], locked: bool) -> Result<(Lock, bool)> {
    let mut new_lock = old_lock.clone();
    new_lock.entries.retain(|name, _| ws.manifest.component(name).is_some());
    for r in resolutions {
        new_lock.entries.insert(r.entry.name.clone(), r.entry.clone());
    }
    let lock_changed = new_lock.entries != old_lock.entries;
    if !lock_changed {
        return Ok((new_lock, false));
    }
    if locked {
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
    Ok((new_lock, true))
}

/// The run's end: its failures as one error keeping the first one's kind,
/// and trees left with local work as an error only under `--locked`.
fn conclude(outcome: Outcome, first_error: Option<anyhow::Error>, locked: bool, printer: &Printer) -> Result<Outcome> {
    let dirty: Vec<String> = (outcome.components.iter())
        .filter(|r| r.action == Action::LeftDirty)
        .map(|r| format!("{} ({})", r.name, r.path))
        .collect();
    if let Some(first) = first_error {
        printer.json(&outcome);
        if outcome.failed.len() == 1 && dirty.is_empty() {
            return Err(first);
        }
        let mut message = format!(
            "{} component(s) could not be brought to their pins:",
            outcome.failed.len()
        );
        for f in &outcome.failed {
            message.push_str(&format!(
                "\n  {}: {}",
                f.name,
                f.error.lines().next().unwrap_or_default()
            ));
        }
        if !dirty.is_empty() {
            message.push_str(&format!(
                "\nand left as they were (local changes): {}",
                dirty.join(", ")
            ));
        }
        // The first error keeps its kind (and so its exit code).
        return Err(first.context(message));
    }
    // A tree with local work is left as it is, said in one line each (as
    // Xen's *-dir-find leaves an existing tree): the developer's, not an
    // error. Only where the pins must hold (--locked, CI) does it fail.
    if !dirty.is_empty() && locked {
        printer.json(&outcome);
        bail!(
            "--locked: left as they were because they have local work: {}\n\
             Commit or stash the changes, or run `sultana update --force NAME` to save them under refs/sultana/backup/ and move on",
            dirty.join(", ")
        );
    }
    Ok(outcome)
}
