//! The push gate (osstest's cr-daily-branch for one tree): the candidate
//! revision of a component is tested against the tested (locked) revisions
//! of everything else, each failure classified against the flight that
//! tested the baseline, and the pin advanced only when nothing blocks.

mod bisect;
pub mod ci;

mod classify;
mod conclude;
mod db;
mod definition;
mod flight;
mod jobs;
mod junit;
mod local;
mod prepare;
mod push;
mod report;
mod retention;
mod status;
mod test_run;

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

pub use bisect::{bisect, BisectOptions};
#[cfg(feature = "fuzzing")]
pub use classify::AllowList;
pub use db::{FlightDb, Revision};
pub use flight::{flight_dir, Settings, DEFAULT_FLAKY_RUNS};
pub use local::{junit as tests_junit, run_tests, table as tests_table, TestOptions};
pub use report::FlightReport;
pub use retention::{prune as prune_flights, Pruned};
pub use status::{FlightKind, JobStatus};

pub(crate) use conclude::{conclude_flight, Concluded};
pub(crate) use prepare::{prepare, prepare_with, Prepared};
pub(crate) use push::finish;

use crate::printer::Printer;
use crate::workspace::Workspace;

pub struct Options {
    pub component: String,
    pub candidate: Option<String>,
    pub baseline: Option<String>,
    pub push: bool,
    /// Push a candidate that is not a descendant of the tested commit.
    pub allow_rewind: bool,
    /// `REMOTE:REF`: also push the commit there (like `xen-tested-master`).
    pub push_ref: Option<String>,
    pub allow: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub summary: Option<PathBuf>,
    /// Run a flight even when the candidate is the locked commit.
    pub always: bool,
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
    /// The push (made with --allow-rewind) moved the pin to a commit that
    /// is not a descendant of the tested one.
    pub rewind: bool,
    /// The push was refused: the candidate is no fast-forward of the
    /// tested commit and --allow-rewind was not given.
    pub refused_rewind: bool,
}

impl Outcome {
    pub fn blocking(&self) -> bool {
        self.report.as_ref().is_some_and(|r| !r.blocking().is_empty())
    }
}

pub fn db_path(ws: &Workspace) -> PathBuf {
    ws.state_dir().join("flights.db")
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
    // What the baseline's runs say of a test decides how often a failing
    // one runs here.
    let baseline = |job: &str, definition: &str| db.known(&baseline_key, job, definition, -1).ok().flatten();
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
    let flown = flight::fly(ws, &db, &plan, &options.settings, &baseline, printer)?;

    if !of_baseline {
        let needs = baseline_needs(&db, &baseline_key, &flown, options.settings.flaky_runs)?;
        if !needs.is_empty() {
            let what: Vec<String> = needs
                .iter()
                .map(|(job, runs)| match runs {
                    flight::Runs::Times(n) => format!("{job} ({n} runs: it failed, then passed)"),
                    _ => format!("{job} (no settled result there for it as defined now)"),
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
            let base = flight::fly(ws, &db, &plan, &options.settings, &|_, _| None, printer)?;
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
/// judged: a job that passed some runs here and failed others runs
/// `flaky_runs` times there; a failing job with no runs there for the job as
/// defined now, or only one failed run, runs as a gate runs it (again after
/// a failure, more after a fail-then-pass).
fn baseline_needs(
    db: &FlightDb,
    baseline_key: &str,
    flown: &flight::Flown,
    flaky_runs: u32,
) -> Result<std::collections::BTreeMap<String, flight::Runs>> {
    let mut needs = std::collections::BTreeMap::new();
    for job in &flown.jobs {
        if matches!(job.status, JobStatus::Blocked | JobStatus::Skip) || job.failed_runs == 0 {
            continue;
        }
        if job.runs > job.failed_runs {
            needs.insert(job.job.clone(), flight::Runs::Times(flaky_runs.max(1)));
            continue;
        }
        let known = db.known(baseline_key, &job.job, &job.definition, flown.id)?;
        let settled = known.is_some_and(|k| k.passed > 0 || k.fails_for_sure());
        if !settled {
            needs.insert(job.job.clone(), flight::Runs::Gate { flaky_runs });
        }
    }
    Ok(needs)
}
