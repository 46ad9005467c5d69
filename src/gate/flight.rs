//! One flight: every involved tree at its revision in the gate's scratch area
//! (`.sultana/gate/`, checkouts borrowing the shared cache), the build jobs in
//! dependency order, then every test of every recipe involved, one at a
//! time. Each job and step goes into the flight history as it ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::classify::JobOutcome;
use super::db::{FlightDb, JobRow, Known, Revision, StepRow};
use super::definition;
use super::status::{FlightKind, JobKind, JobStatus};
use crate::build::{self, Status, UnitReport};
use crate::fsutil;
use crate::lock::{Lock, LockEntry};
use crate::printer::Printer;
use crate::process::{Cmd, Ended};
use crate::recipe::{BuildDir, TestSpec};
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

/// How many times a test runs in a flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// Once.
    Once,
    /// Exactly this many times (the baseline's side of a fail-then-pass).
    Times(u32),
    /// Once; after a failure the baseline does not share, again; after a
    /// fail-then-pass, `flaky_runs` more times.
    Gate { flaky_runs: u32 },
}

/// What the build engine is given besides the trees.
pub struct Settings {
    pub jobs: usize,
    /// Runs of a fail-then-pass test, on the candidate and on the baseline.
    pub flaky_runs: u32,
    pub offline: bool,
    pub system: build::SystemChoice,
    pub kernel_headers: Option<PathBuf>,
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
    Workspace {
        root: ws.state_dir().join(scratch.dir()),
        manifest: ws.manifest.clone(),
        recipes_root: ws.recipes_root.clone(),
        notes: Vec::new(),
    }
}

pub fn flight_dir(ws: &Workspace, id: i64) -> PathBuf {
    ws.state_dir().join("flights").join(id.to_string())
}

pub fn build_job(component: &str) -> String {
    format!("build-{component}")
}

pub fn test_job(component: &str, test: &str) -> String {
    format!("test-{component}-{test}")
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
    fsutil::remove_all(&dir)?;
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
    let options = build::Options {
        jobs: settings.jobs,
        offline: settings.offline,
        locked: true,
        system: settings.system.clone(),
        kernel_headers: settings.kernel_headers.clone(),
        trusted: Default::default(),
    };
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
                    jobs: settings.jobs,
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

/// The component whose build or test `job` is, among `revisions`.
pub fn owner_of(job: &str, revisions: &[Revision]) -> Result<String> {
    let mut names: Vec<&str> = revisions.iter().map(|r| r.component.as_str()).collect();
    // Longest names first: `test-blktap-module-x` is blktap-module's.
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names
        .into_iter()
        .find(|n| job == build_job(n) || job.starts_with(&format!("test-{n}-")))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("`{job}` is not a job of this flight"))
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
            },
        );
    }
    lock.save(&scratch.lock_path())?;
    let names: Vec<String> = revisions.iter().map(|r| r.component.clone()).collect();
    let options = sync::Options {
        mode: sync::Mode::Scratch,
        offline: settings.offline,
        locked: true,
        jobs: settings.jobs,
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

/// One test script of one built component.
pub struct TestRun<'a> {
    /// Where the recipes come from.
    pub ws: &'a Workspace,
    /// Where the trees, builds and staged installs are.
    pub scratch: &'a Workspace,
    pub flight: i64,
    /// Where the scripts and logs go.
    pub dir: &'a Path,
    pub report: &'a UnitReport,
    /// Every component's report (their prefixes for the test).
    pub reports: &'a [UnitReport],
    pub headers: Option<&'a Path>,
    pub jobs: usize,
}

impl TestRun<'_> {
    /// Run the test `runs` times (see `Runs`); every run is a step of the
    /// job, and the job's status says what they add up to.
    pub fn run(
        &self,
        recipe: &crate::recipe::Recipe,
        test: &TestSpec,
        runs: Runs,
        baseline: &dyn Fn(&str, &str) -> Option<Known>,
        printer: &Printer,
    ) -> Result<(JobOutcome, Vec<StepRow>)> {
        let name = &self.report.name;
        let job = test_job(name, &test.name);
        let definition = definition::of_test(&self.ws.recipes_root, recipe, test);
        printer.status("Testing", format!("{job} ({})", test.description));
        let (origin, script) = match recipe.test_script(&self.ws.recipes_root, test) {
            Ok(found) => found,
            Err(e) => {
                // The flight goes on; this job is broken, not the gate.
                let outcome = JobOutcome {
                    job: job.clone(),
                    component: name.clone(),
                    kind: JobKind::Test,
                    status: JobStatus::Broken,
                    testid: test.name.clone(),
                    seconds: 0.0,
                    flaky: false,
                    detail: format!("{e:#}"),
                    log: None,
                    definition,
                    runs: 1,
                    failed_runs: 1,
                };
                printer.trouble("Broken", format!("{job}: {e:#}"));
                return Ok((outcome, Vec::new()));
            }
        };
        let script_file = self
            .dir
            .join("scripts")
            .join(format!("{}-{}", recipe.name, test.script_name()));
        fsutil::atomic_write(&script_file, &script)?;

        let first = self.once(&job, test, &script_file, &origin, 1)?;
        let mut steps = vec![first.clone()];
        match runs {
            Runs::Once => {}
            Runs::Times(n) => {
                for attempt in 2..=i64::from(n) {
                    steps.push(self.once(&job, test, &script_file, &origin, attempt)?);
                }
            }
            Runs::Gate { flaky_runs } => {
                let known = baseline(&job, &definition);
                let confirmed = known.as_ref().is_some_and(Known::fails_for_sure);
                if first.status.failed() && !confirmed {
                    // The failure and its reason first, then what is done about it.
                    printer.trouble("Failed", format!("{job}: {}", first.detail));
                    printer.status("Retrying", format!("{job}: the baseline is not known to fail it"));
                    let again = self.once(&job, test, &script_file, &origin, 2)?;
                    let passed = again.status == JobStatus::Pass;
                    steps.push(again);
                    // A fail-then-pass, or two failures where the baseline
                    // passes only sometimes: how often does it fail here?
                    let why = if passed {
                        Some("failed, then passed")
                    } else if known.as_ref().is_some_and(Known::flaky) {
                        Some("failed twice where the baseline passes only sometimes")
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        printer.trouble(
                            "Intermittent",
                            format!("{job} {why}: {flaky_runs} more run(s) here, then at the baseline"),
                        );
                        for attempt in 3..3 + i64::from(flaky_runs) {
                            steps.push(self.once(&job, test, &script_file, &origin, attempt)?);
                        }
                    }
                }
            }
        }
        let failed_runs = steps.iter().filter(|s| s.status.failed()).count() as u32;
        let total = steps.len() as u32;
        // Intermittent: it passed some runs and failed others; any failure
        // fails the job, and the classification weighs the runs.
        let flaky = failed_runs > 0 && steps.iter().any(|s| s.status == JobStatus::Pass);
        let status = if flaky {
            JobStatus::Fail
        } else {
            steps
                .iter()
                .map(|s| s.status)
                .find(|s| *s != JobStatus::Pass)
                .unwrap_or(JobStatus::Pass)
        };
        let seconds: f64 = steps.iter().map(|s| s.seconds).sum();
        let last = steps.last().cloned().unwrap_or(first);
        let detail = if flaky {
            format!("failed {failed_runs} of {total} runs")
        } else if total > 1 && status == JobStatus::Pass {
            format!("passed {total} of {total} runs")
        } else {
            steps
                .iter()
                .find(|s| s.status != JobStatus::Pass)
                .map_or_else(|| steps[0].detail.clone(), |s| s.detail.clone())
        };
        let outcome = JobOutcome {
            job: job.clone(),
            component: name.clone(),
            kind: JobKind::Test,
            status,
            testid: test.name.clone(),
            seconds,
            flaky,
            detail,
            log: last.log.clone(),
            definition,
            runs: total,
            failed_runs,
        };
        let verb = match status {
            _ if flaky => "Intermittent",
            JobStatus::Pass => "Passed",
            JobStatus::Skip => "Skipped",
            JobStatus::Broken => "Broken",
            JobStatus::Blocked => "Blocked",
            JobStatus::Fail => "Failed",
        };
        let mut message = format!("{job} in {seconds:.1}s");
        if status != JobStatus::Pass || flaky || total > 1 {
            message.push_str(&format!(": {}", outcome.detail));
        }
        if status == JobStatus::Pass && !flaky {
            printer.status(verb, message);
        } else {
            printer.trouble(verb, message);
        }
        Ok((outcome, steps))
    }

    /// Run the script once; automake's exit codes.
    fn once(&self, job: &str, test: &TestSpec, script: &Path, origin: &str, attempt: i64) -> Result<StepRow> {
        let suffix = if attempt > 1 {
            format!(".{attempt}")
        } else {
            String::new()
        };
        let log = self.dir.join(format!("{job}{suffix}.log"));
        let work = self.dir.join("work").join(format!("{job}{suffix}"));
        fsutil::remove_all(&work)?;
        std::fs::create_dir_all(&work)?;
        std::fs::write(&log, format!("# {job}: {origin}\n"))?;
        let cmd = self.command(test, script, &work, &log);
        let started = Instant::now();
        let ended = cmd.run_limited(Duration::from_secs(test.timeout()))?;
        let seconds = started.elapsed().as_secs_f64();
        let tail = last_line(&log);
        let (status, detail) = match ended {
            // What the test says of how it ran (e.g. with a preload).
            Ended::Exited(0) => (JobStatus::Pass, notes(&log)),
            Ended::Exited(77) => (JobStatus::Skip, tail),
            Ended::Exited(99) => (JobStatus::Broken, format!("broken (exit 99): {tail}")),
            Ended::Exited(code) => (JobStatus::Fail, format!("exit {code}: {tail}")),
            Ended::Signaled(signal) => (JobStatus::Fail, format!("killed by signal {signal}: {tail}")),
            Ended::TimedOut => (JobStatus::Fail, format!("timed out after {}s", test.timeout())),
        };
        Ok(StepRow {
            stepno: attempt,
            testid: if attempt > 1 {
                format!("{} (run {attempt})", test.name)
            } else {
                test.name.clone()
            },
            status,
            seconds,
            log: Some(log.display().to_string()),
            detail,
        })
    }

    fn command(&self, test: &TestSpec, script: &Path, work: &Path, log: &Path) -> Cmd {
        let scratch = self.scratch;
        let component = scratch.manifest.component(&self.report.name);
        let src = component.map(|c| scratch.tree_path(c)).unwrap_or_default();
        let in_tree = component
            .and_then(|c| scratch.recipe(c).ok())
            .is_some_and(|r| r.build_dir() == BuildDir::InTree);
        let build_dir = if in_tree {
            src.clone()
        } else {
            build::build_dir(scratch, &self.report.name)
        };
        let prefix = self.report.prefix.clone().unwrap_or_default();
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_string(), v);
        };
        set("SULTANA_PREFIX", prefix.display().to_string());
        set(
            "SULTANA_DESTDIR",
            build::staging_root(scratch, &self.report.name).display().to_string(),
        );
        set("SULTANA_RUNTIME_PREFIX", scratch.manifest.prefix.clone());
        set("SULTANA_SRC", src.display().to_string());
        set("SULTANA_BUILD", build_dir.display().to_string());
        set("SULTANA_WORK", work.display().to_string());
        set("SULTANA_JOBS", self.jobs.to_string());
        set("SULTANA_COMPONENT", self.report.name.clone());
        set("SULTANA_TEST", test.name.clone());
        set("SULTANA_FLIGHT", self.flight.to_string());
        if let Some(headers) = self.headers {
            set("SULTANA_KERNEL_HEADERS", headers.display().to_string());
        }
        for other in self.reports {
            if let Some(p) = &other.prefix {
                let var = format!("SULTANA_DEP_{}_PREFIX", other.name.to_uppercase().replace('-', "_"));
                set(&var, p.display().to_string());
            }
        }
        let mut cmd = Cmd::new("bash", "bash").arg(script).cwd(work).log(log);
        for key in ["MAKEFLAGS", "MFLAGS", "MAKELEVEL"] {
            cmd = cmd.env_remove(key);
        }
        for (key, value) in env {
            cmd = cmd.env(key, value);
        }
        cmd
    }
}

/// The `note: …` lines a test printed.
fn notes(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("note: "))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The last non-empty line a test printed (its skip reason, or its failure).
fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("$ ") && !l.starts_with("# "))
        .unwrap_or_default()
        .trim()
        .to_string()
}
