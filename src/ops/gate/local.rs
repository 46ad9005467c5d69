//! `sultana test`: the recipes' tests against the workspace's own staged
//! build, as `cargo test` runs a crate's: what is stale is built first, then
//! each test runs once. No flight, no history, no classification: the
//! verdict words and exit codes are the gate's, judged on this run alone.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::classify::JobOutcome;
use super::flight::{blocked_test, build_tree_needs, test_job, Runs};
use super::status::JobStatus;
use super::test_run::TestRun;
use crate::build::{self, Status};
use crate::fsutil;
use crate::printer::Printer;
use crate::workspace::Workspace;

pub struct TestOptions {
    /// Components whose tests run (default: every enabled one with tests).
    pub components: Vec<String>,
    /// Only the tests of this name.
    pub test: Option<String>,
    pub build: build::Options,
}

#[derive(Clone, Debug, Serialize)]
pub struct TestsOutcome {
    pub jobs: Vec<JobOutcome>,
    /// Where the logs are (`.sultana/test/`).
    pub logs: std::path::PathBuf,
}

impl TestsOutcome {
    pub fn failed(&self) -> Vec<&JobOutcome> {
        // A test whose build failed did not run: as `cargo test` when the
        // crate does not compile, that is a failure.
        self.jobs
            .iter()
            .filter(|j| j.status.failed() || j.status == JobStatus::Blocked)
            .collect()
    }
}

pub fn run_tests(ws: &Workspace, options: &TestOptions, printer: &Printer) -> Result<TestsOutcome> {
    let enabled: Vec<String> = ws
        .manifest
        .components
        .iter()
        .filter(|c| c.enabled)
        .map(|c| c.name.clone())
        .collect();
    let names: Vec<String> = if options.components.is_empty() {
        enabled
    } else {
        for name in &options.components {
            if ws.manifest.component(name).is_none() {
                bail!("no component `{name}` in {}", ws.manifest.display_name);
            }
        }
        options.components.clone()
    };
    // The tests to run, known before anything is built.
    let mut chosen = Vec::new();
    for name in &names {
        let component = ws.manifest.component(name).context("a component left the manifest")?;
        let recipe = ws.recipe(component)?;
        for test in &recipe.tests {
            if options.test.as_ref().is_none_or(|t| *t == test.name) {
                chosen.push((name.clone(), test.name.clone()));
            }
        }
    }
    if chosen.is_empty() {
        match &options.test {
            Some(test) => bail!("no test `{test}` in the recipes of {}", names.join(", ")),
            None => bail!("the recipes of {} declare no tests", names.join(", ")),
        }
    }
    let mut with_tests: Vec<String> = chosen.iter().map(|(c, _)| c.clone()).collect();
    with_tests.dedup();
    let only: std::collections::BTreeMap<String, Runs> =
        chosen.iter().map(|(c, t)| (test_job(c, t), Runs::Once)).collect();
    let mut build_options = options.build.clone();
    build_options.need_build_tree = build_tree_needs(ws, &with_tests, Some(&only))?;
    let reports = build::run(ws, &with_tests, &build_options, printer)?;

    let dir = ws.state_dir().join("test");
    fsutil::remove_scratch(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let headers = build_options
        .kernel_headers
        .clone()
        .or_else(|| build::kbuild::headers(None).ok().map(|h| h.dir));
    let mut jobs = Vec::new();
    for report in reports.iter().filter(|r| with_tests.contains(&r.name)) {
        let component = ws
            .manifest
            .component(&report.name)
            .context("a component left the manifest")?;
        let recipe = ws.recipe(component)?;
        for test in recipe
            .tests
            .iter()
            .filter(|t| chosen.contains(&(report.name.clone(), t.name.clone())))
        {
            let outcome = if matches!(report.status, Status::Failed | Status::Blocked) {
                blocked_test(&report.name, test, String::new())
            } else {
                let run = TestRun {
                    ws,
                    scratch: ws,
                    flight: 0,
                    dir: &dir,
                    report,
                    reports: &reports,
                    headers: headers.as_deref(),
                    jobs: build_options.session.jobs,
                };
                run.run(&recipe, test, Runs::Once, &|_, _| None, printer)?.0
            };
            jobs.push(outcome);
        }
    }
    Ok(TestsOutcome { jobs, logs: dir })
}

/// The run as a table, in the gate's words.
pub fn table(outcome: &TestsOutcome) -> String {
    let mut lines = Vec::new();
    for job in &outcome.jobs {
        let detail = if job.status == JobStatus::Pass {
            String::new()
        } else {
            job.detail.clone()
        };
        lines.push(format!(
            "  {:<40} {:<8} {:>7.1}s  {detail}",
            job.job,
            job.status.to_string(),
            job.seconds
        ));
    }
    let count = |s: JobStatus| outcome.jobs.iter().filter(|j| j.status == s).count();
    lines.push(format!(
        "{} passed, {} failed, {} skipped",
        count(JobStatus::Pass),
        outcome.failed().len(),
        count(JobStatus::Skip)
    ));
    lines.join("\n")
}

/// JUnit XML of the run (no classification: a failure is a failure).
pub fn junit(outcome: &TestsOutcome) -> Result<String> {
    let cases = outcome.jobs.iter().map(|j| super::junit::case(j, None)).collect();
    super::junit::document("sultana test", "sultana test", cases)
}
