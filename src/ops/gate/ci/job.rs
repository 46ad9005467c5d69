//! One CI job of a gate's flight (`gate COMP --as SET --job JOB`): a build
//! or one test, in the set's scratch area, its result left for the decider.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::result::{read_result, result_file, results_dir, JobResult};
use super::{area, Set};
use crate::build::{self, Status, UnitReport};
use crate::fsutil;
use crate::gate::classify::JobOutcome;
use crate::gate::db::Revision;
use crate::gate::flight::{self, build_job, test_job, TestRun};
use crate::gate::status::{JobKind, JobStatus};
use crate::gate::{prepare_with, Options};
use crate::printer::Printer;
use crate::workspace::Workspace;

/// Run one job of the flight and leave its result; returns its outcome.
pub fn run_job(ws: &Workspace, options: &Options, set: Set, job: &str, printer: &Printer) -> Result<JobOutcome> {
    let prepared = prepare_with(ws, options, true, printer)?;
    let revisions = prepared.with(match set {
        Set::Baseline => &prepared.baseline,
        Set::Candidate => &prepared.candidate,
    });
    let owner = flight::owner_of(job, &revisions)?;
    let scratch = area(ws, set);
    let closure: Vec<String> = build::closure(&scratch, std::slice::from_ref(&owner))?
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let dir = results_dir(ws).join("logs").join(set.name());
    std::fs::create_dir_all(&dir)?;
    printer.status(
        "Job",
        format!("{job} of the {} ({})", set.name(), revisions_text(&revisions)),
    );
    let cx = JobContext {
        ws,
        options,
        set,
        job,
        deps: closure.iter().filter(|n| **n != owner).cloned().collect(),
        owner,
        closure,
        scratch,
        dir,
        printer,
    };
    let (outcome, steps) = if job == build_job(&cx.owner) {
        cx.build(&revisions)?
    } else {
        cx.test()?
    };
    let result = JobResult {
        set,
        component: prepared.component.name.clone(),
        candidate: prepared.candidate.commit.clone(),
        revisions,
        outcome: outcome.clone(),
        steps,
    };
    let path = result_file(ws, set, job);
    fsutil::atomic_write(&path, serde_json::to_string_pretty(&result)?.as_bytes())?;
    let junit = results_dir(ws).join("junit").join(format!("{}-{job}.xml", set.name()));
    fsutil::atomic_write(&junit, job_junit(&result).as_bytes())?;
    Ok(outcome)
}

/// One job of one set, with the component that owns it and what it needs.
struct JobContext<'a> {
    ws: &'a Workspace,
    options: &'a Options,
    set: Set,
    job: &'a str,
    owner: String,
    /// The owner and everything it depends on.
    closure: Vec<String>,
    /// The closure without the owner.
    deps: BTreeSet<String>,
    scratch: Workspace,
    /// Where the job's logs go.
    dir: PathBuf,
    printer: &'a Printer,
}

type Ran = (JobOutcome, Vec<crate::gate::db::StepRow>);

impl JobContext<'_> {
    /// Why the job cannot run: a build it needs from an earlier job did not
    /// pass, or left no result here.
    fn missing(&self, needed: &[String]) -> Option<String> {
        for need in needed {
            match read_result(&result_file(self.ws, self.set, need)) {
                Ok(r) if r.outcome.status == JobStatus::Pass => {}
                Ok(r) => return Some(format!("{need} did not pass ({})", r.outcome.status)),
                Err(_) => return Some(format!("{need} left no result here (did its artifacts arrive?)")),
            }
        }
        None
    }

    /// The owner's build, its dependencies taken as built by their jobs.
    fn build(&self, revisions: &[Revision]) -> Result<Ran> {
        let (owner, options, printer) = (&self.owner, &self.options.settings, self.printer);
        let needed: Vec<String> = self.deps.iter().map(|d| build_job(d)).collect();
        if let Some(why) = self.missing(&needed) {
            return Ok((blocked(self.job, owner, "build", &why), Vec::new()));
        }
        let scratch = &self.scratch;
        let mine: Vec<Revision> = revisions.iter().filter(|r| &r.component == owner).cloned().collect();
        flight::pin_revisions(scratch, &mine, options, printer)?;
        let build_options = options.build_options(
            self.deps.clone(),
            flight::build_tree_needs(scratch, std::slice::from_ref(owner), None)?,
        );
        let reports = build::run(scratch, std::slice::from_ref(owner), &build_options, printer)?;
        let report = reports
            .iter()
            .find(|r| &r.name == owner)
            .context("the build left no report")?;
        // Only the baseline's builds (the locked, already tested revisions)
        // are pushed: a candidate's build steps are not trusted with what is
        // signed in everyone's name.
        if report.status == build::Status::Built && self.set == Set::Baseline {
            build::push_to_remote(scratch, std::slice::from_ref(owner), &build_options, printer);
        }
        let component = scratch.manifest.component(owner).context("no such component")?;
        let definition = crate::gate::definition::of_build(&scratch.recipe(component)?);
        flight::build_outcome(&self.dir.join(self.job), report, definition)
    }

    /// One test of the owner's recipe, on the builds its closure's jobs left.
    fn test(&self) -> Result<Ran> {
        let (owner, job, scratch) = (&self.owner, self.job, &self.scratch);
        let component = scratch.manifest.component(owner).context("no such component")?;
        let recipe = scratch.recipe(component)?;
        let test = recipe
            .tests
            .iter()
            .find(|t| test_job(owner, &t.name) == job)
            .with_context(|| format!("`{job}` is not a test of {owner}'s recipe"))?
            .clone();
        let needed: Vec<String> = self.closure.iter().map(|d| build_job(d)).collect();
        if let Some(why) = self.missing(&needed) {
            let definition = crate::gate::definition::of_test(&self.ws.recipes_root, &recipe, &test);
            let mut outcome = flight::blocked_test(owner, &test, definition);
            outcome.detail = why;
            return Ok((outcome, Vec::new()));
        }
        let reports: Vec<UnitReport> = (self.closure.iter()).map(|name| staged_report(scratch, name)).collect();
        let report = reports.iter().find(|r| &r.name == owner).context("no report")?;
        let settings = &self.options.settings;
        let headers = (settings.kernel_headers.clone()).or_else(|| build::kbuild::headers(None).ok().map(|h| h.dir));
        let run = TestRun {
            ws: self.ws,
            scratch,
            flight: 0,
            dir: &self.dir,
            report,
            reports: &reports,
            headers: headers.as_deref(),
            jobs: settings.session.jobs,
        };
        // A failure runs again, a fail-then-pass more times, on both sides
        // alike: the decider weighs the runs, and cannot ask for more of them.
        let runs = flight::Runs::Gate {
            flaky_runs: settings.flaky_runs,
        };
        run.run(&recipe, &test, runs, &|_, _| None, self.printer)
    }
}

fn revisions_text(revisions: &[Revision]) -> String {
    revisions
        .iter()
        .map(|r| format!("{} {}", r.component, r.describe))
        .collect::<Vec<_>>()
        .join(", ")
}

fn blocked(job: &str, component: &str, testid: &str, why: &str) -> JobOutcome {
    JobOutcome {
        job: job.to_string(),
        component: component.to_string(),
        kind: if job.starts_with("build-") {
            JobKind::Build
        } else {
            JobKind::Test
        },
        status: JobStatus::Blocked,
        testid: testid.to_string(),
        seconds: 0.0,
        flaky: false,
        detail: why.to_string(),
        log: None,
        definition: String::new(),
        runs: 0,
        failed_runs: 0,
    }
}

/// A job with no result that counts: broken, which nothing excuses.
pub(super) fn no_result(job: &str, component: &str, why: &str) -> JobOutcome {
    JobOutcome {
        status: JobStatus::Broken,
        ..blocked(job, component, "result", why)
    }
}

/// A component as the build job that made it left it here.
fn staged_report(scratch: &Workspace, name: &str) -> UnitReport {
    let prefix = PathBuf::from(format!(
        "{}{}",
        build::staging_root(scratch, name).display(),
        scratch.manifest.prefix
    ));
    UnitReport {
        name: name.to_string(),
        status: Status::Fresh,
        seconds: 0.0,
        prefix: Some(prefix),
        step: None,
        error: None,
        blocked_by: None,
        logs: None,
        config_error: false,
    }
}

/// JUnit for one CI job, so each shows in GitLab's test report.
fn job_junit(result: &JobResult) -> String {
    let o = &result.outcome;
    let cases = vec![crate::gate::junit::case(o, None)];
    let name = format!("{} {}", result.set.name(), o.job);
    crate::gate::junit::document(&name, &name, cases).unwrap_or_default()
}
