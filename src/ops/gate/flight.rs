//! One flight: every involved tree at its revision in the gate's scratch area
//! (`.sultana/gate/`, checkouts borrowing the shared cache), the build jobs in
//! dependency order, then every test of every recipe involved, one at a
//! time. Each job and step goes into the flight history as it ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::classify::JobOutcome;
use super::db::{FlightDb, JobRow, Known, Revision, StepRow};
use super::definition;
pub use super::jobs::{build_job, owner_of, test_job, Runs};
use super::status::{FlightKind, JobKind, JobStatus};
pub use super::test_run::TestRun;
use crate::build::{self, Status, UnitReport};
use crate::fsutil;
use crate::lock::{Lock, LockEntry};
use crate::printer::Printer;
use crate::recipe::TestSpec;
use crate::sync;
use crate::workspace::Workspace;

/// What a flight tests.
pub struct Plan {
    pub kind: FlightKind,
    /// The tree under test and its commits in this flight and in the lock.
    pub component: String,
    pub candidate: String,
    pub baseline: String,
    /// Every involved tree at its revision.
    pub revisions: Vec<Revision>,
    /// Which scratch tree the flight builds in.
    pub scratch: Scratch,
    /// Run only these jobs (and the builds they need), each its way: bisect,
    /// and the baseline's side of a gate's failures.
    pub only: Option<BTreeMap<String, Runs>>,
}

/// The gate's scratch trees: sultana's own checkouts, never the user's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scratch {
    /// `.sultana/gate/`: candidates, and bisect's commits.
    Candidate,
    /// `.sultana/gate-baseline/`: the locked revisions, kept built there so
    /// that testing the baseline again costs no rebuild.
    Baseline,
}

impl Scratch {
    fn dir(self) -> &'static str {
        match self {
            Scratch::Candidate => "gate",
            Scratch::Baseline => "gate-baseline",
        }
    }
}

/// Runs of a fail-then-pass test on each side, unless `--flaky-runs` says.
pub const DEFAULT_FLAKY_RUNS: u32 = 5;

/// What the build engine is given besides the trees.
pub struct Settings {
    pub session: crate::session::Session,
    /// Runs of a fail-then-pass test, on the candidate and on the baseline.
    pub flaky_runs: u32,
    pub system: build::SystemChoice,
    pub kernel_headers: Option<PathBuf>,
    pub build_cache: bool,
    pub build_cache_remote: Option<String>,
    pub ccache: bool,
    /// sultana's environment and `--env`, for every build (see `build::Options`).
    pub inherited_env: std::collections::BTreeMap<String, String>,
    pub env: Vec<(String, String)>,
}

impl Settings {
    /// How a flight builds: at its pins, with the run's system choices,
    /// caches and environment; `trusted` built by other jobs.
    pub fn build_options(
        &self,
        trusted: std::collections::BTreeSet<String>,
        need_build_tree: std::collections::BTreeMap<String, Vec<String>>,
    ) -> build::Options {
        build::Options {
            session: self.session.pinned(),
            system: self.system.clone(),
            kernel_headers: self.kernel_headers.clone(),
            trusted,
            build_cache: self.build_cache,
            build_cache_remote: self.build_cache_remote.clone(),
            ccache: self.ccache,
            inherited_env: self.inherited_env.clone(),
            env: self.env.clone(),
            need_build_tree,
        }
    }
}

pub struct Flown {
    pub id: i64,
    pub jobs: Vec<JobOutcome>,
    /// Whether the builds ran (not all found up to date).
    pub built: bool,
}

/// A gate's scratch workspace: the same manifest and recipes, its own
/// checkouts, builds and lock under `.sultana/gate/` (or `gate-baseline/`).
pub fn area(ws: &Workspace, scratch: Scratch) -> Workspace {
    ws.derived(ws.state_dir().join(scratch.dir()))
}

pub fn flight_dir(ws: &Workspace, id: i64) -> PathBuf {
    ws.state_dir().join("flights").join(id.to_string())
}

/// Run the flight. `baseline(job, definition)`: what the baseline's runs of
/// a test say, which decides how often a failing test runs (`Runs::Gate`).
pub fn fly(
    ws: &Workspace,
    db: &FlightDb,
    plan: &Plan,
    settings: &Settings,
    baseline: &dyn Fn(&str, &str) -> Option<Known>,
    printer: &Printer,
) -> Result<Flown> {
    let id = db.begin(
        plan.kind,
        &plan.component,
        &plan.candidate,
        &plan.baseline,
        &plan.revisions,
    )?;
    let dir = flight_dir(ws, id);
    fsutil::remove_scratch(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let shown: Vec<String> = plan
        .revisions
        .iter()
        .map(|r| format!("{} {}", r.component, r.describe))
        .collect();
    printer.status("Flight", format!("{id} ({}): {}", plan.kind, shown.join(", ")));

    let scratch = area(ws, plan.scratch);
    pin(&scratch, plan, settings, printer)?;

    // Which components to build: all involved, or what the chosen jobs need.
    let names: Vec<String> = match &plan.only {
        Some(only) => {
            let mut owners = Vec::new();
            for job in only.keys() {
                let owner = owner_of(job, &plan.revisions)?;
                if !owners.contains(&owner) {
                    owners.push(owner);
                }
            }
            owners
        }
        None => plan.revisions.iter().map(|r| r.component.clone()).collect(),
    };
    let options = settings.build_options(
        Default::default(),
        build_tree_needs(&scratch, &names, plan.only.as_ref())?,
    );
    let reports = build::run(&scratch, &names, &options, printer)?;
    let built = reports.iter().any(|r| r.status == Status::Built);

    let mut outcomes = Vec::new();
    for report in &reports {
        let component = scratch
            .manifest
            .component(&report.name)
            .context("a built component left the manifest")?;
        let definition = definition::of_build(&scratch.recipe(component)?);
        let (outcome, steps) = build_outcome(&dir, report, definition)?;
        record(db, id, &outcome, &steps)?;
        outcomes.push(outcome);
    }

    let headers = settings
        .kernel_headers
        .clone()
        .or_else(|| build::kbuild::headers(None).ok().map(|h| h.dir));
    for report in &reports {
        let component = scratch
            .manifest
            .component(&report.name)
            .context("a built component left the manifest")?;
        let recipe = scratch.recipe(component)?;
        for test in &recipe.tests {
            let job = test_job(&report.name, &test.name);
            let runs = match &plan.only {
                None => Runs::Gate {
                    flaky_runs: settings.flaky_runs,
                },
                Some(only) => match only.get(&job) {
                    Some(runs) => *runs,
                    None => continue,
                },
            };
            let (outcome, steps) = if matches!(report.status, Status::Failed | Status::Blocked) {
                let definition = definition::of_test(&ws.recipes_root, &recipe, test);
                (blocked_test(&report.name, test, definition), Vec::new())
            } else {
                let run = TestRun {
                    ws,
                    scratch: &scratch,
                    flight: id,
                    dir: &dir,
                    report,
                    reports: &reports,
                    headers: headers.as_deref(),
                    jobs: settings.session.jobs,
                };
                run.run(&recipe, test, runs, baseline, printer)?
            };
            record(db, id, &outcome, &steps)?;
            outcomes.push(outcome);
        }
    }
    Ok(Flown {
        id,
        jobs: outcomes,
        built,
    })
}

/// The components among `names` with a test this flight runs (all, or
/// those in `only`) that reads their build tree, and those tests.
pub(crate) fn build_tree_needs(
    scratch: &Workspace,
    names: &[String],
    only: Option<&BTreeMap<String, Runs>>,
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out = BTreeMap::new();
    for name in names {
        let Some(component) = scratch.manifest.component(name) else {
            continue;
        };
        let recipe = scratch.recipe(component)?;
        let tests: Vec<String> = recipe
            .tests
            .iter()
            .filter(|t| t.build_tree)
            .filter(|t| only.is_none_or(|o| o.contains_key(&test_job(name, &t.name))))
            .map(|t| t.name.clone())
            .collect();
        if !tests.is_empty() {
            out.insert(name.clone(), tests);
        }
    }
    Ok(out)
}

/// Put the scratch area's checkouts at the plan's revisions.
pub(super) fn pin(scratch: &Workspace, plan: &Plan, settings: &Settings, printer: &Printer) -> Result<()> {
    pin_revisions(scratch, &plan.revisions, settings, printer)
}

/// Put a scratch area's checkouts at these revisions.
pub fn pin_revisions(
    scratch: &Workspace,
    revisions: &[Revision],
    settings: &Settings,
    printer: &Printer,
) -> Result<()> {
    let mut lock = Lock::default();
    for r in revisions {
        let component = scratch
            .manifest
            .component(&r.component)
            .with_context(|| format!("no component `{}`", r.component))?;
        lock.entries.insert(
            r.component.clone(),
            LockEntry {
                name: r.component.clone(),
                url: component.url.clone(),
                revision: component.revision.clone(),
                commit: r.commit.clone(),
                describe: r.describe.clone(),
                source: None,
                not_in_url: false,
            },
        );
    }
    lock.save(&scratch.lock_path())?;
    let names: Vec<String> = revisions.iter().map(|r| r.component.clone()).collect();
    let options = sync::Options {
        mode: sync::Mode::Scratch,
        // A flight's scratch trees are at their pins, whatever the run.
        session: settings.session.pinned(),
    };
    sync::run(scratch, &names, true, &options, printer)?;
    Ok(())
}

/// A test job whose build did not pass.
pub fn blocked_test(component: &str, test: &TestSpec, definition: String) -> JobOutcome {
    JobOutcome {
        definition,
        runs: 0,
        failed_runs: 0,
        job: test_job(component, &test.name),
        component: component.to_string(),
        kind: JobKind::Test,
        status: JobStatus::Blocked,
        testid: test.name.clone(),
        seconds: 0.0,
        flaky: false,
        detail: format!("{} did not pass", build_job(component)),
        log: None,
    }
}

/// A build job from the build engine's report, its step logs kept in `dir`
/// (the next build writes over the originals).
pub fn build_outcome(dir: &Path, report: &UnitReport, definition: String) -> Result<(JobOutcome, Vec<StepRow>)> {
    let job = build_job(&report.name);
    let mut steps = Vec::new();
    let kept = dir.join(&job);
    if let Some(logs) = &report.logs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(logs)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        std::fs::create_dir_all(&kept)?;
        for (i, file) in files.iter().enumerate() {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let copy = kept.join(&name);
            let _ = std::fs::copy(file, &copy);
            let testid = name
                .trim_end_matches(".log")
                .split_once('-')
                .map(|(_, step)| step.to_string())
                .unwrap_or(name.clone());
            let failed = report.status == Status::Failed && i + 1 == files.len();
            steps.push(StepRow {
                stepno: i as i64 + 1,
                testid,
                status: if failed { JobStatus::Fail } else { JobStatus::Pass },
                seconds: 0.0,
                log: Some(copy.display().to_string()),
                detail: String::new(),
            });
        }
    }
    let (status, testid, detail) = match report.status {
        Status::Built => (JobStatus::Pass, "build".to_string(), String::new()),
        Status::Fresh => (
            JobStatus::Pass,
            "build".to_string(),
            "up to date (built by an earlier flight)".to_string(),
        ),
        Status::Cached => (
            JobStatus::Pass,
            "build".to_string(),
            "restored from the build cache".to_string(),
        ),
        Status::System => (
            JobStatus::Pass,
            "build".to_string(),
            "taken from the system".to_string(),
        ),
        Status::Blocked => (
            JobStatus::Blocked,
            "build".to_string(),
            format!(
                "{} did not pass",
                build_job(report.blocked_by.as_deref().unwrap_or("?"))
            ),
        ),
        Status::Failed => (
            if report.config_error {
                JobStatus::Broken
            } else {
                JobStatus::Fail
            },
            report.step.clone().unwrap_or_else(|| "setup".into()),
            report
                .error
                .as_deref()
                .and_then(|e| e.lines().next())
                .unwrap_or_default()
                .to_string(),
        ),
    };
    if steps.is_empty() {
        steps.push(StepRow {
            stepno: 1,
            testid: testid.clone(),
            status,
            seconds: report.seconds,
            log: None,
            detail: detail.clone(),
        });
    }
    let failed = u32::from(status.failed());
    let outcome = JobOutcome {
        definition,
        runs: 1,
        failed_runs: failed,
        job,
        component: report.name.clone(),
        kind: JobKind::Build,
        status,
        testid,
        seconds: report.seconds,
        flaky: false,
        detail,
        log: Some(kept.display().to_string()),
    };
    Ok((outcome, steps))
}

/// One job's result and steps into flight `id`.
pub(super) fn record(db: &FlightDb, id: i64, outcome: &JobOutcome, steps: &[StepRow]) -> Result<()> {
    crate::fault::point("flight-job");
    let row = JobRow {
        job: &outcome.job,
        component: &outcome.component,
        kind: outcome.kind,
        status: outcome.status,
        seconds: outcome.seconds,
        definition: &outcome.definition,
        runs: outcome.runs,
        failed_runs: outcome.failed_runs,
    };
    db.record_job(id, &row, steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(component: &str) -> Revision {
        Revision {
            component: component.into(),
            commit: "0".repeat(40),
            describe: "v1".into(),
        }
    }

    #[test]
    fn a_job_belongs_to_the_longest_component_name_it_starts_with() {
        let revisions = [rev("blktap"), rev("blktap-module"), rev("xen")];
        assert_eq!(owner_of("build-blktap", &revisions).unwrap(), "blktap");
        assert_eq!(
            owner_of("test-blktap-module-kmod-load", &revisions).unwrap(),
            "blktap-module"
        );
        assert_eq!(owner_of("test-blktap-vhd", &revisions).unwrap(), "blktap");
        assert!(owner_of("build-qemu", &revisions).is_err());
        assert!(owner_of("test-xen", &revisions).is_err(), "a test job names a test");
    }

    fn unit(status: Status, config_error: bool) -> UnitReport {
        UnitReport {
            name: "blktap".into(),
            status,
            seconds: 2.0,
            prefix: None,
            step: Some("make".into()),
            error: Some("step make failed\nmore".into()),
            blocked_by: Some("xen".into()),
            logs: None,
            config_error,
        }
    }

    #[test]
    fn a_build_becomes_a_job_with_the_gate_s_words() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (Status::Built, false, JobStatus::Pass, "build"),
            (Status::Fresh, false, JobStatus::Pass, "build"),
            (Status::System, false, JobStatus::Pass, "build"),
            (Status::Blocked, false, JobStatus::Blocked, "build"),
            (Status::Failed, false, JobStatus::Fail, "make"),
            (Status::Failed, true, JobStatus::Broken, "make"),
        ];
        for (status, config_error, want, testid) in cases {
            let (job, steps) = build_outcome(dir.path(), &unit(status, config_error), "d".into()).unwrap();
            assert_eq!((job.status, job.testid.as_str()), (want, testid), "{status:?}");
            assert_eq!(job.failed_runs, u32::from(want.failed()));
            assert_eq!(steps.len(), 1, "one step when no logs were kept");
            assert_eq!(job.definition, "d");
        }
        let (failed, _) = build_outcome(dir.path(), &unit(Status::Failed, false), "d".into()).unwrap();
        assert_eq!(failed.detail, "step make failed", "the first line of the error");
    }
}
