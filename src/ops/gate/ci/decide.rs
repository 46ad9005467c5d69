//! The deciding job: both flights recorded from the CI jobs' results, the
//! candidate classified against the baseline, reported and pushed like a
//! local gate.

use std::path::Path;

use anyhow::{Context, Result};

use super::job::no_result;
use super::result::{read_result, vet, Expected};
use super::Set;
use crate::gate::classify::JobOutcome;
use crate::gate::db::{FlightDb, Revision, StepRow};
use crate::gate::flight::{self, build_job, test_job};
use crate::gate::status::FlightKind;
use crate::gate::{conclude_flight, finish, prepare_with, Concluded, Options, Outcome, Prepared};
use crate::printer::Printer;
use crate::workspace::Workspace;

/// Decide from the jobs' results in `dir` (`baseline/` and `candidate/`):
/// both flights go into the history and the candidate is classified against
/// the baseline, then reported and pushed like a local gate.
pub fn decide(ws: &Workspace, options: &Options, dir: &Path, printer: &Printer) -> Result<Outcome> {
    let prepared = prepare_with(ws, options, true, printer)?;
    let mut outcome = prepared.outcome();
    if prepared.nothing_to_test(options, printer) {
        return Ok(outcome);
    }
    let db = FlightDb::open(&crate::gate::db_path(ws))?;
    let expected = expected_jobs(ws, &prepared)?;
    let baseline_results = load(ws, dir, Set::Baseline, &prepared, &expected)?;
    let candidate_results = load(ws, dir, Set::Candidate, &prepared, &expected)?;

    let baseline_revisions = prepared.with(&prepared.baseline);
    let baseline_key = crate::gate::db::revisions_key(&baseline_revisions);
    let baseline_flight = record_flight(
        &db,
        FlightKind::Baseline,
        (&prepared.component.name, &prepared.baseline.commit),
        &prepared.baseline,
        &baseline_revisions,
        &baseline_results,
    )?;
    let concluded = Concluded {
        kind: FlightKind::Baseline,
        at: &prepared.baseline,
        revisions: baseline_revisions,
        baseline_key: &baseline_key,
        of_baseline: true,
    };
    let base = conclude_flight(ws, &db, &prepared, concluded, baseline_flight, printer)?;
    outcome.baseline_report = Some(base);
    let revisions = prepared.with(&prepared.candidate);
    let flown = record_flight(
        &db,
        FlightKind::Gate,
        (&prepared.component.name, &prepared.baseline.commit),
        &prepared.candidate,
        &revisions,
        &candidate_results,
    )?;
    let concluded = Concluded {
        kind: FlightKind::Gate,
        at: &prepared.candidate,
        revisions,
        baseline_key: &baseline_key,
        of_baseline: false,
    };
    let report = conclude_flight(ws, &db, &prepared, concluded, flown, printer)?;
    finish(ws, &db, &prepared, report, outcome, options, printer)
}

/// Every job of the flight, in order: builds, then tests.
pub(crate) fn expected_jobs(ws: &Workspace, prepared: &Prepared) -> Result<Vec<(String, String)>> {
    let mut builds = Vec::new();
    let mut tests = Vec::new();
    for r in &prepared.pins {
        let component = ws.manifest.component(&r.component).context("no such component")?;
        builds.push((build_job(&r.component), r.component.clone()));
        for test in ws.recipe(component)?.tests {
            tests.push((test_job(&r.component, &test.name), r.component.clone()));
        }
    }
    builds.extend(tests);
    Ok(builds)
}

fn load(
    ws: &Workspace,
    dir: &Path,
    set: Set,
    prepared: &Prepared,
    expected: &[(String, String)],
) -> Result<Vec<(JobOutcome, Vec<StepRow>)>> {
    let revisions = prepared.with(match set {
        Set::Baseline => &prepared.baseline,
        Set::Candidate => &prepared.candidate,
    });
    let mut out = Vec::new();
    for (job, component) in expected {
        let path = dir.join(set.name()).join(format!("{job}.json"));
        if !path.exists() {
            let why = "the CI job left no result (it did not run, or its artifacts did not arrive)";
            out.push((no_result(job, component, why), Vec::new()));
            continue;
        }
        let result = read_result(&path)?;
        let expected = Expected {
            set,
            component: &prepared.component.name,
            candidate: &prepared.candidate.commit,
            job,
            job_component: component,
            revisions: &revisions,
        };
        vet(&result, &expected).with_context(|| format!("{} is refused", path.display()))?;
        // A result counts for the job as defined now, nothing older.
        let definition = crate::gate::definition::of_job(ws, component, job)?;
        if result.outcome.definition != definition {
            let why = "its result is for another definition of the job (a recipe or test script changed since it ran)";
            out.push((no_result(job, component, why), Vec::new()));
            continue;
        }
        out.push((result.outcome, result.steps));
    }
    Ok(out)
}

/// The results of one set as a flight of the history (`gated`: the gated
/// component and its baseline commit).
fn record_flight(
    db: &FlightDb,
    kind: FlightKind,
    gated: (&str, &str),
    at: &Revision,
    revisions: &[Revision],
    results: &[(JobOutcome, Vec<StepRow>)],
) -> Result<flight::Flown> {
    let (component, baseline) = gated;
    let id = db.begin(kind, component, &at.commit, baseline, revisions)?;
    for (outcome, steps) in results {
        flight::record(db, id, outcome, steps)?;
    }
    Ok(flight::Flown {
        id,
        jobs: results.iter().map(|(o, _)| o.clone()).collect(),
        built: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::classify::{self, AllowList, Class, DbHistory};
    use crate::gate::db::revisions_key;
    use crate::gate::status::{FlightOutcome, JobKind, JobStatus};

    fn rev(commit: &str) -> Revision {
        Revision {
            component: "tool".into(),
            commit: commit.into(),
            describe: commit.into(),
        }
    }

    fn outcome(job: &str, status: JobStatus, runs: u32, failed_runs: u32) -> (JobOutcome, Vec<StepRow>) {
        let o = JobOutcome {
            job: job.into(),
            component: "tool".into(),
            kind: JobKind::Test,
            status,
            testid: job.into(),
            seconds: 1.0,
            flaky: runs > failed_runs && failed_runs > 0,
            detail: String::new(),
            log: None,
            definition: "d".into(),
            runs,
            failed_runs,
        };
        (o, Vec::new())
    }

    /// The decider's judgement: both sets recorded, the candidate's results
    /// weighed against the baseline's runs of the same pipeline.
    #[test]
    fn the_candidate_is_judged_against_the_pipeline_s_baseline_runs() {
        let dir = tempfile::tempdir().unwrap();
        let db = FlightDb::open(&dir.path().join("flights.db")).unwrap();
        let (base, cand) = (vec![rev("b")], vec![rev("c")]);
        let baseline = [
            outcome("test-tool-a", JobStatus::Pass, 1, 0),
            outcome("test-tool-b", JobStatus::Fail, 2, 2),
            outcome("test-tool-c", JobStatus::Fail, 7, 3),
            outcome("test-tool-d", JobStatus::Blocked, 0, 0),
        ];
        let flown = record_flight(&db, FlightKind::Baseline, ("tool", "b"), &base[0], &base, &baseline).unwrap();
        db.finish(flown.id, FlightOutcome::Tolerable).unwrap();
        let candidate = [
            outcome("test-tool-a", JobStatus::Fail, 2, 2),
            outcome("test-tool-b", JobStatus::Fail, 2, 2),
            outcome("test-tool-c", JobStatus::Fail, 7, 4),
            outcome("test-tool-d", JobStatus::Fail, 2, 2),
        ];
        let flown = record_flight(&db, FlightKind::Gate, ("tool", "b"), &cand[0], &cand, &candidate).unwrap();
        let key = revisions_key(&base);
        let history = DbHistory {
            db: &db,
            flight: flown.id,
            baseline_key: &key,
        };
        let findings = classify::classify(&flown.jobs, &history, false, &AllowList::default()).unwrap();
        let class = |job: &str| {
            findings
                .iter()
                .find(|f| f.job == job)
                .map(|f| (f.class, f.blocking))
                .unwrap()
        };
        assert_eq!(class("test-tool-a"), (Class::Regression, true));
        assert_eq!(class("test-tool-b"), (Class::NeverPassed, false));
        assert_eq!(class("test-tool-c"), (Class::Flaky, false));
        assert_eq!(
            class("test-tool-d"),
            (Class::NotAtBaseline, true),
            "blocked at the baseline: no evidence"
        );
    }
}
