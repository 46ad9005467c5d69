//! The push gate (osstest's cr-daily-branch for one tree): the candidate
//! revision of a component is tested against the tested (locked) revisions
//! of everything else, each failure classified against the flight that
//! tested the baseline, and the pin advanced only when nothing blocks.

mod bisect;
pub mod ci;

mod classify;
mod db;
mod definition;
mod flight;
mod junit;
mod report;
mod status;

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

pub use bisect::{bisect, BisectOptions, BisectOutcome};
pub use classify::AllowList;
pub use classify::Class;
pub use db::{FlightDb, Revision};
pub use flight::{flight_dir, Settings};
pub use report::FlightReport;
pub use status::{FlightKind, FlightOutcome, JobKind, JobStatus};

use crate::build;
use crate::git::{self, Cache, Checkout, Oid, Store};
use crate::lock::Lock;
use crate::manifest::Component;
use crate::printer::Printer;
use crate::process;
use crate::sync;
use crate::workspace::{SourceKind, Workspace};

pub struct Options {
    pub component: String,
    pub candidate: Option<String>,
    pub baseline: Option<String>,
    pub push: bool,
    /// `REMOTE:REF`: also push the commit there (like `xen-tested-master`).
    pub push_ref: Option<String>,
    pub allow: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub summary: Option<PathBuf>,
    /// Run a flight even when the candidate is the locked commit.
    pub always: bool,
    pub locked: bool,
    pub settings: Settings,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub component: String,
    pub up_to_date: bool,
    pub candidate: Revision,
    pub baseline: Revision,
    /// The flight that tested the baseline in this run, when none had before.
    pub baseline_report: Option<FlightReport>,
    pub report: Option<FlightReport>,
    pub pushed: bool,
    pub pushed_ref: Option<String>,
    /// Why a push that was asked for did not happen.
    pub not_pushed: Option<String>,
}

impl Outcome {
    pub fn blocking(&self) -> bool {
        self.report.as_ref().is_some_and(|r| !r.blocking().is_empty())
    }
}

pub fn db_path(ws: &Workspace) -> PathBuf {
    ws.state_dir().join("flights.db")
}

/// Revisions from the command line are data: checked before any git call.
fn check_revisions(revisions: &[&Option<String>]) -> Result<()> {
    for rev in revisions.iter().filter_map(|r| r.as_deref()) {
        crate::validate::check_revision(rev).map_err(|m| anyhow!(m))?;
    }
    Ok(())
}

/// What every way of running a gate starts from.
pub(crate) struct Prepared<'a> {
    pub component: &'a Component,
    pub allow: AllowList,
    pub push_target: Option<(String, String)>,
    /// Every involved component at its locked revision.
    pub pins: Vec<Revision>,
    pub store: Store,
    pub candidate: Revision,
    pub baseline: Revision,
}

impl Prepared<'_> {
    /// An outcome with nothing run yet.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            component: self.component.name.clone(),
            up_to_date: self.candidate.commit == self.baseline.commit,
            candidate: self.candidate.clone(),
            baseline: self.baseline.clone(),
            baseline_report: None,
            report: None,
            pushed: false,
            pushed_ref: None,
            not_pushed: None,
        }
    }

    /// The candidate is the tested revision and no flight was asked for
    /// anyway: says so.
    pub fn nothing_to_test(&self, options: &Options, printer: &Printer) -> bool {
        if self.candidate.commit != self.baseline.commit || options.always {
            return false;
        }
        printer.status(
            "Up to date",
            format!(
                "{} {} is the tested revision",
                self.component.name, self.baseline.describe
            ),
        );
        true
    }

    /// The involved revisions with the gated component at `rev`.
    pub fn with(&self, rev: &Revision) -> Vec<Revision> {
        self.pins
            .iter()
            .map(|r| {
                if r.component == self.component.name {
                    rev.clone()
                } else {
                    r.clone()
                }
            })
            .collect()
    }
}

pub(crate) fn prepare<'a>(ws: &'a Workspace, options: &Options, printer: &Printer) -> Result<Prepared<'a>> {
    prepare_with(ws, options, false, printer)
}

/// `light`: for a CI job given the candidate as a full commit id: the pins
/// are read from sultana.lock and nothing is fetched (a test job or the
/// deciding job needs no git at all; a build job fetches its own tree).
pub(crate) fn prepare_with<'a>(
    ws: &'a Workspace,
    options: &Options,
    light: bool,
    printer: &Printer,
) -> Result<Prepared<'a>> {
    check_revisions(&[&options.candidate, &options.baseline])?;
    let component = gated_component(ws, &options.component)?;
    let allow = match &options.allow {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            AllowList::parse(&text, &path.display().to_string())?
        }
        None => AllowList::default(),
    };
    let push_target = match &options.push_ref {
        Some(spec) => Some(parse_push_ref(spec, component)?),
        None => None,
    };
    let (pins, store, candidate, baseline) = if light {
        pin_light(ws, component, options, printer)?
    } else {
        pin_full(ws, component, options, printer)?
    };
    Ok(Prepared {
        component,
        allow,
        push_target,
        pins,
        store,
        candidate,
        baseline,
    })
}

/// The involved pins, the gated component's store, the candidate and the
/// baseline.
type Pinned = (Vec<Revision>, Store, Revision, Revision);

fn pin_full(ws: &Workspace, component: &Component, options: &Options, printer: &Printer) -> Result<Pinned> {
    let involved = involved(ws, &component.name)?;
    let pins = pin_everything(ws, &involved, options.locked, &options.settings, printer)?;
    let cache = Cache::locate()?;
    let store = cache.store(&component.url, printer)?;
    let have_candidate = options
        .candidate
        .as_deref()
        .is_some_and(|c| crate::validate::is_full_sha(c) && Oid::from_str(c).is_ok_and(|o| store.has_commit(o)));
    let sources = if have_candidate {
        sync::sources(component)
    } else {
        refresh(
            ws,
            &store,
            component,
            options.candidate.as_deref(),
            &options.settings,
            printer,
        )?
    };
    let candidate = revision_of(
        &store,
        component,
        options.candidate.as_deref().unwrap_or(&component.revision),
        &sources,
    )?;
    let baseline = match &options.baseline {
        Some(rev) => revision_of(&store, component, rev, &sources)?,
        None => pins
            .iter()
            .find(|r| r.component == component.name)
            .cloned()
            .ok_or_else(|| anyhow!("`{}` has no pin in sultana.lock", component.name))?,
    };
    Ok((pins, store, candidate, baseline))
}

pub fn run(ws: &Workspace, options: &Options, printer: &Printer) -> Result<Outcome> {
    let prepared = prepare(ws, options, printer)?;
    let mut outcome = prepared.outcome();
    if prepared.nothing_to_test(options, printer) {
        return Ok(outcome);
    }
    let db = FlightDb::open(&db_path(ws))?;
    let baseline_revisions = prepared.with(&prepared.baseline);
    let baseline_key = db::revisions_key(&baseline_revisions);
    // `--always` on the tested revision: a flight of the baseline itself.
    let of_baseline = outcome.up_to_date;
    let kind = if of_baseline {
        FlightKind::Baseline
    } else {
        FlightKind::Gate
    };
    // A failure is run again unless the baseline, as the test is defined
    // now, is known to fail it too.
    let worth_again = |job: &str, definition: &str| !matches!(db.known(&baseline_key, job, definition, -1), Ok(Some(k)) if k.status != JobStatus::Pass);
    let revisions = prepared.with(&prepared.candidate);
    let plan = flight::Plan {
        kind,
        component: prepared.component.name.clone(),
        candidate: prepared.candidate.commit.clone(),
        baseline: prepared.baseline.commit.clone(),
        revisions: revisions.clone(),
        scratch: flight::Scratch::Candidate,
        only: None,
    };
    let flown = flight::fly(ws, &db, &plan, &options.settings, &worth_again, printer)?;

    if !of_baseline {
        let needs = baseline_needs(&db, &baseline_key, &flown, options.settings.flaky_runs)?;
        if !needs.is_empty() {
            let what: Vec<String> = needs
                .iter()
                .map(|(job, runs)| match runs {
                    flight::Runs::Times(n) => format!("{job} ({n} runs: it failed, then passed)"),
                    _ => format!("{job} (no result there for it as defined now)"),
                })
                .collect();
            printer.status(
                "Baseline",
                format!(
                    "testing {} {} before judging the candidate: {}",
                    prepared.component.name,
                    prepared.baseline.describe,
                    what.join(", ")
                ),
            );
            let plan = flight::Plan {
                kind: FlightKind::Baseline,
                component: prepared.component.name.clone(),
                candidate: prepared.baseline.commit.clone(),
                baseline: prepared.baseline.commit.clone(),
                revisions: baseline_revisions.clone(),
                scratch: flight::Scratch::Baseline,
                only: Some(needs),
            };
            let base = flight::fly(ws, &db, &plan, &options.settings, &|_, _| false, printer)?;
            let concluded = Concluded {
                kind: FlightKind::Baseline,
                at: &prepared.baseline,
                revisions: baseline_revisions.clone(),
                baseline_key: &baseline_key,
                of_baseline: true,
            };
            outcome.baseline_report = Some(conclude_flight(ws, &db, &prepared, concluded, base, printer)?);
        }
    }
    let concluded = Concluded {
        kind,
        at: &prepared.candidate,
        revisions,
        baseline_key: &baseline_key,
        of_baseline,
    };
    let report = conclude_flight(ws, &db, &prepared, concluded, flown, printer)?;
    finish(ws, &db, &prepared, report, outcome, options, printer)
}

/// What the baseline must show before the candidate's failures can be
/// judged: a failing job with no result there for the job as defined now
/// runs once; a fail-then-pass runs `flaky_runs` times.
fn baseline_needs(
    db: &FlightDb,
    baseline_key: &str,
    flown: &flight::Flown,
    flaky_runs: u32,
) -> Result<std::collections::BTreeMap<String, flight::Runs>> {
    let mut needs = std::collections::BTreeMap::new();
    for job in &flown.jobs {
        if matches!(job.status, JobStatus::Blocked | JobStatus::Skip) {
            continue;
        }
        if job.flaky {
            needs.insert(job.job.clone(), flight::Runs::Times(flaky_runs.max(1)));
        } else if job.status != JobStatus::Pass
            && db.known(baseline_key, &job.job, &job.definition, flown.id)?.is_none()
        {
            needs.insert(job.job.clone(), flight::Runs::Once);
        }
    }
    Ok(needs)
}

/// Write the requested reports and push when asked and nothing blocks.
pub(crate) fn finish(
    ws: &Workspace,
    db: &FlightDb,
    prepared: &Prepared,
    report: FlightReport,
    mut outcome: Outcome,
    options: &Options,
    printer: &Printer,
) -> Result<Outcome> {
    if let Some(path) = &options.junit {
        crate::fsutil::atomic_write(path, report.junit().as_bytes())?;
    }
    if let Some(path) = &options.summary {
        crate::fsutil::atomic_write(path, report.summary().as_bytes())?;
    }
    if options.push {
        let blocking = report.blocking();
        outcome.not_pushed = if outcome.up_to_date {
            Some("the candidate is the tested revision already".into())
        } else if !blocking.is_empty() {
            let what: Vec<String> = blocking.iter().map(|f| format!("{} {}", f.job, f.summary)).collect();
            Some(format!("blocked by {}", what.join("; ")))
        } else {
            None
        };
        if outcome.not_pushed.is_none() {
            crate::fault::point("gate-before-push");
            push(
                ws,
                prepared.component,
                &prepared.candidate,
                &prepared.store,
                prepared.push_target.as_ref(),
                printer,
            )?;
            db.mark_pushed(report.flight)?;
            outcome.pushed = true;
            outcome.pushed_ref = prepared.push_target.clone().map(|(url, r)| format!("{url} {r}"));
        }
    }
    outcome.report = Some(report);
    Ok(outcome)
}

/// A component a gate can test: one sultana fetches with git.
fn gated_component<'a>(ws: &'a Workspace, name: &str) -> Result<&'a Component> {
    let component = ws.manifest.select(&[name.to_string()], true)?[0];
    match ws.source(component) {
        SourceKind::Git => Ok(component),
        SourceKind::Local => bail!(
            "`{name}` is your own checkout (a local override): a gate tests revisions of its upstream; remove the override from sultana.local.toml"
        ),
        SourceKind::Intree => bail!("`{name}` is an in-tree copy (a release tarball): it has no history to gate"),
    }
}

fn pin_light(ws: &Workspace, component: &Component, options: &Options, printer: &Printer) -> Result<Pinned> {
    let Some(commit) = options.candidate.clone().filter(|c| crate::validate::is_full_sha(c)) else {
        bail!("a CI job needs --candidate as a full 40-hex commit (the pipeline passes $SULTANA_CANDIDATE)");
    };
    let lock = ws.load_lock()?;
    let mut pins = Vec::new();
    for name in involved(ws, &component.name)? {
        let c = ws
            .manifest
            .component(&name)
            .context("involved component left the manifest")?;
        let entry = lock.get(&name).filter(|e| e.matches(c)).with_context(|| {
            format!("`{name}` has no current pin in sultana.lock; run `sultana lock` and commit it")
        })?;
        pins.push(Revision {
            component: name.clone(),
            commit: entry.commit.clone(),
            describe: entry.describe.clone(),
        });
    }
    let cache = Cache::locate()?;
    let store = cache.store(&component.url, printer)?;
    let describe = Oid::from_str(&commit)
        .ok()
        .filter(|o| store.has_commit(*o))
        .map(|o| store.describe(o))
        .unwrap_or_else(|| commit[..12].to_string());
    let candidate = Revision {
        component: component.name.clone(),
        commit,
        describe,
    };
    let baseline = pins
        .iter()
        .find(|r| r.component == component.name)
        .cloned()
        .context("no pin for the component")?;
    Ok((pins, store, candidate, baseline))
}

/// The component, everything that depends on it (what it could break), and
/// what those need to build.
pub fn involved(ws: &Workspace, name: &str) -> Result<Vec<String>> {
    let mut wanted = vec![name.to_string()];
    for other in ws.manifest.components.iter().filter(|c| c.enabled && c.name != name) {
        let closure: Vec<String> = build::closure(ws, std::slice::from_ref(&other.name))?
            .iter()
            .map(|c| c.name.clone())
            .collect();
        if closure.iter().any(|c| c == name) {
            wanted.push(other.name.clone());
        }
    }
    Ok(build::closure(ws, &wanted)?.iter().map(|c| c.name.clone()).collect())
}

/// The locked revision of every involved component (pins added to the lock
/// when missing, checkouts untouched); a local override counts at its HEAD.
fn pin_everything(
    ws: &Workspace,
    names: &[String],
    locked: bool,
    settings: &Settings,
    printer: &Printer,
) -> Result<Vec<Revision>> {
    let options = sync::Options {
        mode: sync::Mode::Resolve,
        offline: settings.offline,
        locked,
        jobs: settings.jobs,
    };
    sync::run(ws, names, true, &options, printer)?;
    let lock = ws.load_lock()?;
    let mut out = Vec::new();
    for name in names {
        let component = ws
            .manifest
            .component(name)
            .context("involved component left the manifest")?;
        let revision = match ws.source(component) {
            SourceKind::Git => {
                let entry = lock
                    .get(name)
                    .with_context(|| format!("`{name}` has no pin in sultana.lock"))?;
                Revision {
                    component: name.clone(),
                    commit: entry.commit.clone(),
                    describe: entry.describe.clone(),
                }
            }
            SourceKind::Local => {
                let path = ws.tree_path(component);
                let head = Checkout::open(&path)?
                    .head()
                    .with_context(|| format!("{} has no commit", path.display()))?;
                Revision {
                    component: name.clone(),
                    commit: head.to_string(),
                    describe: git::short(head),
                }
            }
            SourceKind::Intree => bail!("`{name}` is an in-tree copy: a gate needs git checkouts"),
        };
        out.push(revision);
    }
    Ok(out)
}

/// Ask the remote what its branches say now (the candidate is their tip).
/// Returns the sources whose names to resolve with: the one that answered,
/// so a mirror's stale names never stand for the fresh ones; offline, the
/// component's own sources in order.
fn refresh(
    ws: &Workspace,
    store: &Store,
    component: &Component,
    candidate: Option<&str>,
    settings: &Settings,
    printer: &Printer,
) -> Result<Vec<String>> {
    if settings.offline {
        return Ok(sync::sources(component));
    }
    let want = candidate
        .filter(|c| crate::validate::is_full_sha(c))
        .and_then(|c| Oid::from_str(c).ok());
    Ok(vec![sync::fetch_store(ws, store, component, want, printer)?])
}

/// `rev` of `component` resolved with the names of `sources` (see `refresh`).
pub(crate) fn revision_of(store: &Store, component: &Component, rev: &str, sources: &[String]) -> Result<Revision> {
    crate::validate::check_revision(rev).map_err(|m| anyhow!("{}: {m}", component.name))?;
    let (resolved, source) = store
        .resolve_among(rev, sources)
        .with_context(|| format!("cannot resolve `{rev}` of {}", component.name))?;
    Ok(Revision {
        component: component.name.clone(),
        commit: resolved.commit.to_string(),
        describe: store.describe_from(resolved.commit, &source),
    })
}

/// Which flight is concluded, and against what.
pub(crate) struct Concluded<'a> {
    pub kind: FlightKind,
    /// The gated component's revision in the flight.
    pub at: &'a Revision,
    pub revisions: Vec<Revision>,
    /// The baseline's revisions (`db::revisions_key`): where each failure's
    /// evidence is looked up.
    pub baseline_key: &'a str,
    /// The flight tested the baseline's own revisions.
    pub of_baseline: bool,
}

/// Classify a flown flight, close it in the history, keep its summary and
/// JUnit beside its logs, and show its report.
pub(crate) fn conclude_flight(
    ws: &Workspace,
    db: &FlightDb,
    prepared: &Prepared,
    concluded: Concluded,
    flown: flight::Flown,
    printer: &Printer,
) -> Result<FlightReport> {
    let history = classify::DbHistory {
        db,
        flight: flown.id,
        baseline_key: concluded.baseline_key,
    };
    let findings = classify::classify(&flown.jobs, &history, concluded.of_baseline, &prepared.allow)?;
    let outcome = classify::outcome(&findings);
    db.finish(flown.id, outcome)?;
    let baseline_flight = db.newest_with(concluded.baseline_key, None, Some(flown.id))?;
    let report = FlightReport {
        flight: flown.id,
        kind: concluded.kind,
        component: prepared.component.name.clone(),
        candidate: concluded.at.clone(),
        baseline: prepared.baseline.clone(),
        baseline_flight,
        revisions: concluded.revisions,
        jobs: flown.jobs,
        findings,
        outcome,
    };
    let dir = flight::flight_dir(ws, flown.id);
    crate::fsutil::atomic_write(&dir.join("summary"), report.summary().as_bytes())?;
    crate::fsutil::atomic_write(&dir.join("junit.xml"), report.junit().as_bytes())?;
    printer.out(report.human());
    Ok(report)
}

/// `REMOTE:REF` → (URL, full ref). REMOTE is a URL, or `origin` for the
/// component's own.
fn parse_push_ref(spec: &str, component: &Component) -> Result<(String, String)> {
    let (remote, reference) = spec
        .rsplit_once(':')
        .filter(|(r, f)| !r.is_empty() && !f.is_empty())
        .ok_or_else(|| anyhow!("--push-ref `{spec}`: write REMOTE:REF, e.g. origin:xen-tested-master"))?;
    let url = if remote == "origin" {
        component.url.clone()
    } else {
        crate::validate::check_url(remote).map_err(|m| anyhow!("--push-ref: {m}"))?;
        remote.to_string()
    };
    let full = if reference.starts_with("refs/") {
        reference.to_string()
    } else {
        format!("refs/heads/{reference}")
    };
    let ok = !reference.starts_with(['-', '/'])
        && !full.contains("..")
        && !full.ends_with('/')
        && !full.ends_with(".lock")
        && full.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if !ok {
        bail!("--push-ref: `{reference}` is not a usable ref name");
    }
    Ok((url, full))
}

/// Advance the pin: the component's commit in sultana.lock (the rest of the
/// file as it was), and the ref when asked.
fn push(
    ws: &Workspace,
    component: &Component,
    candidate: &Revision,
    store: &Store,
    target: Option<&(String, String)>,
    printer: &Printer,
) -> Result<()> {
    if let Some((url, reference)) = target {
        let oid = Oid::from_str(&candidate.commit)?;
        if !store.has_commit(oid) {
            // A CI deciding job has not fetched anything yet.
            sync::fetch_store(ws, store, component, Some(oid), printer)?;
        }
        let log = process::log_path(&ws.state_dir(), &format!("push-{}", component.name));
        crate::git::transfer_command()
            .arg("--git-dir")
            .arg(&store.dir)
            .arg("push")
            .arg("--")
            .arg(url)
            .arg(format!("{}:{reference}", candidate.commit))
            .log(&log)
            .run()
            .with_context(|| format!("cannot push {} to {reference} of {url}", candidate.commit))?;
        printer.status("Pushed", format!("{} to {reference} of {url}", &candidate.commit[..12]));
    }
    let mut lock: Lock = ws.load_lock()?;
    let entry = lock
        .entries
        .get_mut(&component.name)
        .ok_or_else(|| anyhow!("`{}` is not in sultana.lock", component.name))?;
    let old = entry.commit.clone();
    entry.commit = candidate.commit.clone();
    entry.describe = candidate.describe.clone();
    lock.save(&ws.lock_path())?;
    printer.status(
        "Pushed",
        format!(
            "{} {}..{} into sultana.lock (run `sultana fetch` to move your checkout)",
            component.name,
            &old[..12],
            &candidate.commit[..12]
        ),
    );
    Ok(())
}
