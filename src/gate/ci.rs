//! The gate on CI engines (GitLab CI, osstest): each build job and each test
//! of a flight runs as its own CI job (`gate COMP --as SET --job JOB`), its
//! result and outputs passed on as artifacts under `.sultana/ci/` and
//! `.sultana/ci-area/`; a last job decides from all of them (`gate COMP
//! --results .sultana/ci`) exactly as a local gate would. Both the baseline
//! and the candidate are tested in the same pipeline, so no history has to
//! survive between pipelines.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::classify::JobOutcome;
use super::db::{FlightDb, Revision, StepRow};
use super::flight::{self, build_job, test_job, TestRun};
use super::{conclude_flight, finish, prepare, prepare_with, Concluded, Options, Outcome, Prepared};
use crate::build::{self, Status, UnitReport};
use crate::fsutil;
use crate::printer::Printer;
use crate::workspace::Workspace;

/// Which revisions a CI job tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Set {
    Baseline,
    Candidate,
}

impl Set {
    pub fn parse(text: &str) -> Option<Set> {
        match text {
            "baseline" => Some(Set::Baseline),
            "candidate" => Some(Set::Candidate),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Set::Baseline => "baseline",
            Set::Candidate => "candidate",
        }
    }
}

/// What one CI job leaves for the deciding job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobResult {
    pub set: Set,
    pub component: String,
    pub candidate: String,
    pub revisions: Vec<Revision>,
    pub outcome: JobOutcome,
    pub steps: Vec<StepRow>,
}

pub fn results_dir(ws: &Workspace) -> PathBuf {
    ws.state_dir().join("ci")
}

/// The scratch workspace of one set, under `.sultana/ci-area/SET/`.
pub fn area(ws: &Workspace, set: Set) -> Workspace {
    Workspace {
        root: ws.state_dir().join("ci-area").join(set.name()),
        manifest: ws.manifest.clone(),
        recipes_root: ws.recipes_root.clone(),
        notes: Vec::new(),
    }
}

fn result_file(ws: &Workspace, set: Set, job: &str) -> PathBuf {
    results_dir(ws).join(set.name()).join(format!("{job}.json"))
}

/// A result file is CI data: read only up to this size.
const MAX_RESULT_BYTES: u64 = 4 << 20;

fn read_result(path: &Path) -> Result<JobResult> {
    let bytes = crate::fsutil::read_bounded(path, MAX_RESULT_BYTES)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_result(&bytes).with_context(|| format!("{} is not a job result sultana wrote", path.display()))
}

/// A job result from a CI engine's artifacts: data, checked by `vet`.
pub fn parse_result(bytes: &[u8]) -> Result<JobResult> {
    Ok(serde_json::from_slice(bytes)?)
}

/// What the deciding job expects of one result file.
pub struct Expected<'a> {
    pub set: Set,
    pub component: &'a str,
    pub candidate: &'a str,
    pub job: &'a str,
    pub job_component: &'a str,
}

/// A result counts only for the gate, the set and the job it is read for.
pub fn vet(result: &JobResult, expected: &Expected) -> Result<()> {
    if result.component != expected.component || result.candidate != expected.candidate || result.set != expected.set {
        bail!(
            "it is the result of another gate ({} {} as {}), not of {} {}",
            result.component,
            shown_id(&result.candidate),
            result.set.name(),
            expected.component,
            shown_id(expected.candidate)
        );
    }
    // A result stands for the job whose file it is, and only that one.
    if result.outcome.job != expected.job || result.outcome.component != expected.job_component {
        bail!(
            "it claims to be the result of job `{}` of `{}`, not of `{}`",
            result.outcome.job,
            result.outcome.component,
            expected.job
        );
    }
    Ok(())
}

/// The first characters of an id from a result file (by characters: it is
/// data, and may hold multibyte ones). The printer escapes what it shows.
fn shown_id(id: &str) -> String {
    id.chars().take(12).collect()
}

/// Run one job of the flight and leave its result; returns its outcome.
pub fn run_job(ws: &Workspace, options: &Options, set: Set, job: &str, printer: &Printer) -> Result<JobOutcome> {
    let prepared = prepare_with(ws, options, true, printer)?;
    let revisions = prepared.with(match set {
        Set::Baseline => &prepared.baseline,
        Set::Candidate => &prepared.candidate,
    });
    let owner = owner(job, &revisions)?;
    let scratch = area(ws, set);
    let component = scratch.manifest.component(&owner).context("no such component")?;
    let closure: Vec<String> = build::closure(&scratch, std::slice::from_ref(&owner))?
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let deps: BTreeSet<String> = closure.iter().filter(|n| **n != owner).cloned().collect();
    let dir = results_dir(ws).join("logs").join(set.name());
    std::fs::create_dir_all(&dir)?;
    printer.status(
        "Job",
        format!("{job} of the {} ({})", set.name(), revisions_text(&revisions)),
    );

    // What the job needs from earlier jobs: every dependency's build passed.
    let needed: Vec<String> = if job == build_job(&owner) {
        deps.iter().map(|d| build_job(d)).collect()
    } else {
        closure.iter().map(|d| build_job(d)).collect()
    };
    let mut missing = None;
    for need in &needed {
        let path = result_file(ws, set, need);
        match read_result(&path) {
            Ok(r) if r.outcome.status == "pass" => {}
            Ok(r) => {
                missing = Some(format!("{need} did not pass ({})", r.outcome.status));
                break;
            }
            Err(_) => {
                missing = Some(format!("{need} left no result here (did its artifacts arrive?)"));
                break;
            }
        }
    }

    let (outcome, steps) = if job == build_job(&owner) {
        match missing {
            Some(why) => (blocked(job, &owner, "build", &why), Vec::new()),
            None => {
                let mine: Vec<Revision> = revisions.iter().filter(|r| r.component == owner).cloned().collect();
                flight::pin_revisions(&scratch, &mine, &options.settings, printer)?;
                let build_options = build::Options {
                    jobs: options.settings.jobs,
                    offline: options.settings.offline,
                    locked: true,
                    system: options.settings.system.clone(),
                    kernel_headers: options.settings.kernel_headers.clone(),
                    trusted: deps.clone(),
                };
                let reports = build::run(&scratch, std::slice::from_ref(&owner), &build_options, printer)?;
                let report = reports
                    .iter()
                    .find(|r| r.name == owner)
                    .context("the build left no report")?;
                let definition = super::definition::of_build(&scratch.recipe(component)?);
                flight::build_outcome(&dir.join(job), report, definition)?
            }
        }
    } else {
        let recipe = scratch.recipe(component)?;
        let test = recipe
            .tests
            .iter()
            .find(|t| test_job(&owner, &t.name) == job)
            .with_context(|| format!("`{job}` is not a test of {owner}'s recipe"))?
            .clone();
        match missing {
            Some(why) => {
                let definition = super::definition::of_test(&ws.recipes_root, &recipe, &test);
                let mut outcome = flight::blocked_test(&owner, &test, definition);
                outcome.detail = why;
                (outcome, Vec::new())
            }
            None => {
                let reports: Vec<UnitReport> = closure.iter().map(|name| staged_report(&scratch, name)).collect();
                let report = reports.iter().find(|r| r.name == owner).context("no report")?;
                let headers = options
                    .settings
                    .kernel_headers
                    .clone()
                    .or_else(|| build::kbuild::headers(None).ok().map(|h| h.dir));
                let run = TestRun {
                    ws,
                    scratch: &scratch,
                    flight: 0,
                    dir: &dir,
                    report,
                    reports: &reports,
                    headers: headers.as_deref(),
                    jobs: options.settings.jobs,
                };
                // One run: the deciding job compares it with the baseline's
                // run of the same definition in the same pipeline.
                run.run(&recipe, &test, flight::Runs::Once, &|_, _| false, printer)?
            }
        }
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
        kind: if job.starts_with("build-") { "build" } else { "test" }.into(),
        status: "blocked".into(),
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
fn no_result(job: &str, component: &str, why: &str) -> JobOutcome {
    JobOutcome {
        status: "broken".into(),
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

/// The component whose build or test `job` is.
fn owner(job: &str, revisions: &[Revision]) -> Result<String> {
    let mut names: Vec<&str> = revisions.iter().map(|r| r.component.as_str()).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names
        .into_iter()
        .find(|n| job == build_job(n) || job.starts_with(&format!("test-{n}-")))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("`{job}` is not a job of this gate's flight"))
}

/// JUnit for one CI job, so each shows in GitLab's test report.
fn job_junit(result: &JobResult) -> String {
    let o = &result.outcome;
    let body = match o.status.as_str() {
        "pass" => String::new(),
        "skip" | "blocked" => format!("<skipped message=\"{}\"/>", super::report::xml(&o.detail)),
        "broken" => format!("<error type=\"broken\" message=\"{}\"/>", super::report::xml(&o.detail)),
        _ => format!("<failure type=\"fail\" message=\"{}\"/>", super::report::xml(&o.detail)),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{} {}\" tests=\"1\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">{body}</testcase>\n  </testsuite>\n</testsuites>\n",
        result.set.name(),
        super::report::xml(&o.job),
        u8::from(o.status == "fail"),
        u8::from(o.status == "broken"),
        u8::from(o.status == "skip" || o.status == "blocked"),
        super::report::xml(&o.kind),
        super::report::xml(&o.job),
        o.seconds
    )
}

/// Decide from the jobs' results in `dir` (`baseline/` and `candidate/`):
/// both flights go into the history and the candidate is classified against
/// the baseline, then reported and pushed like a local gate.
pub fn decide(ws: &Workspace, options: &Options, dir: &Path, printer: &Printer) -> Result<Outcome> {
    let prepared = prepare_with(ws, options, true, printer)?;
    let mut outcome = prepared.outcome();
    if prepared.nothing_to_test(options, printer) {
        return Ok(outcome);
    }
    let db = FlightDb::open(&super::db_path(ws))?;
    let expected = expected_jobs(ws, &prepared)?;
    let baseline_results = load(ws, dir, Set::Baseline, &prepared, &expected)?;
    let candidate_results = load(ws, dir, Set::Candidate, &prepared, &expected)?;

    let baseline_revisions = prepared.with(&prepared.baseline);
    let baseline_key = super::db::revisions_key(&baseline_revisions);
    let baseline_flight = record_flight(
        &db,
        "baseline",
        &prepared,
        &prepared.baseline,
        &baseline_revisions,
        &baseline_results,
    )?;
    let concluded = Concluded {
        kind: "baseline",
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
        "gate",
        &prepared,
        &prepared.candidate,
        &revisions,
        &candidate_results,
    )?;
    let concluded = Concluded {
        kind: "gate",
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
        };
        vet(&result, &expected).with_context(|| format!("{} is refused", path.display()))?;
        // A result counts for the job as defined now, nothing older.
        let definition = super::definition::of_job(ws, component, job)?;
        if result.outcome.definition != definition {
            let why = "its result is for another definition of the job (a recipe or test script changed since it ran)";
            out.push((no_result(job, component, why), Vec::new()));
            continue;
        }
        out.push((result.outcome, result.steps));
    }
    Ok(out)
}

fn record_flight(
    db: &FlightDb,
    kind: &'static str,
    prepared: &Prepared,
    at: &Revision,
    revisions: &[Revision],
    results: &[(JobOutcome, Vec<StepRow>)],
) -> Result<flight::Flown> {
    let id = db.begin(
        kind,
        &prepared.component.name,
        &at.commit,
        &prepared.baseline.commit,
        revisions,
    )?;
    for (outcome, steps) in results {
        flight::record(db, id, outcome, steps)?;
    }
    Ok(flight::Flown {
        id,
        jobs: results.iter().map(|(o, _)| o.clone()).collect(),
        built: false,
    })
}

/// The GitLab CI pipeline of the gate of `component` (a child pipeline):
/// for the baseline and the candidate, one job per build and per test with
/// `needs:` following the dependencies, and a job deciding the push.
/// `parent_job`: a job of the parent pipeline whose artifacts hold sultana
/// (`.sultana-bin/bin/sultana`), fetched by every job.
pub fn gitlab(ws: &Workspace, options: &Options, parent_job: Option<&str>, printer: &Printer) -> Result<String> {
    let prepared = prepare(ws, options, printer)?;
    let from_parent = parent_job.map(|job| format!("{{pipeline: \"$PARENT_PIPELINE_ID\", job: {}}}", yaml(job)));
    let needs_list = |needs: &[String]| -> String {
        from_parent
            .iter()
            .cloned()
            .chain(needs.iter().map(|n| yaml(n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let comp = &prepared.component.name;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# The push gate of {comp} as a GitLab CI pipeline, written by `sultana ci gitlab {comp}`.\n\
         # Candidate {} ({}) against the locked {} ({}).\n\
         # Every job runs sultana in the project's checkout (sultana.toml, sultana.lock);\n\
         # results and build outputs pass between jobs as artifacts.",
        prepared.candidate.commit, prepared.candidate.describe, prepared.baseline.commit, prepared.baseline.describe
    );
    out.push_str("stages: [build, test, gate]\n\nvariables:\n");
    let binary = if parent_job.is_some() {
        "$CI_PROJECT_DIR/.sultana-bin/bin/sultana"
    } else {
        "sultana"
    };
    let _ = writeln!(out, "  SULTANA: {}", yaml(binary));
    let _ = writeln!(out, "  SULTANA_CANDIDATE: {}", yaml(&prepared.candidate.commit));
    let _ = writeln!(out, "  SULTANA_GATE_ARGS: {}", yaml(""));
    let _ = writeln!(out, "  XDG_CACHE_HOME: {}", yaml("$CI_PROJECT_DIR/.sultana-cache"));
    out.push_str("\ncache:\n  key: sultana-git\n  paths: [.sultana-cache/]\n");

    let up_to_date = prepared.candidate.commit == prepared.baseline.commit;
    let mut all_jobs = Vec::new();
    if !up_to_date {
        for set in [Set::Baseline, Set::Candidate] {
            for (job, owner) in expected_jobs(ws, &prepared)? {
                let name = ci_name(set, &job);
                let scratch = area(ws, set);
                let owner_component = ws.manifest.component(&owner).context("no such component")?;
                let closure: Vec<String> = build::closure(ws, std::slice::from_ref(&owner))?
                    .iter()
                    .map(|c| c.name.clone())
                    .collect();
                let is_build = job == build_job(&owner);
                let needs: Vec<String> = closure
                    .iter()
                    .filter(|n| !(is_build && **n == owner))
                    .map(|n| ci_name(set, &build_job(n)))
                    .collect();
                let _ = writeln!(out, "\n{}:", yaml(&name));
                let _ = writeln!(out, "  stage: {}", if is_build { "build" } else { "test" });
                let _ = writeln!(out, "  needs: [{}]", needs_list(&needs));
                out.push_str("  allow_failure: true\n  interruptible: true\n  script:\n");
                let _ = writeln!(
                    out,
                    "    - {}",
                    yaml(&format!(
                        "$SULTANA --locked gate {comp} --as {} --job {job} --candidate $SULTANA_CANDIDATE",
                        set.name()
                    ))
                );
                out.push_str("  artifacts:\n    when: always\n    paths:\n");
                let junit = format!(".sultana/ci/junit/{}-{job}.xml", set.name());
                let _ = writeln!(out, "      - {}", yaml(&format!(".sultana/ci/{}/", set.name())));
                let _ = writeln!(out, "      - {}", yaml(".sultana/ci/logs/"));
                let _ = writeln!(out, "      - {}", yaml(&junit));
                if is_build {
                    let rel = |p: &Path| ws.display_path(p);
                    let tree = rel(&scratch.tree_path(owner_component));
                    let _ = writeln!(out, "      - {}", yaml(&format!("{tree}/")));
                    let _ = writeln!(
                        out,
                        "      - {}",
                        yaml(&format!("{}/", rel(&build::build_dir(&scratch, &owner))))
                    );
                    let _ = writeln!(
                        out,
                        "      - {}",
                        yaml(&format!("{}/", rel(&build::staging_root(&scratch, &owner))))
                    );
                    let _ = writeln!(
                        out,
                        "      - {}",
                        yaml(&rel(&scratch.state_dir().join("build").join(format!("{owner}.stamp"))))
                    );
                }
                out.push_str("    reports:\n");
                let _ = writeln!(out, "      junit: {}", yaml(&junit));
                all_jobs.push(name);
            }
        }
    }
    let _ = writeln!(out, "\n{}:", yaml("gate"));
    out.push_str("  stage: gate\n  when: always\n");
    let _ = writeln!(out, "  needs: [{}]", needs_list(&all_jobs));
    out.push_str("  script:\n");
    let _ = writeln!(
        out,
        "    - {}",
        yaml(&format!(
            "$SULTANA --locked gate {comp} --candidate $SULTANA_CANDIDATE --results .sultana/ci --junit .sultana/ci/junit/gate.xml --summary .sultana/ci/summary $SULTANA_GATE_ARGS"
        ))
    );
    out.push_str("  artifacts:\n    when: always\n    paths: [sultana.lock, .sultana/ci/]\n    reports:\n      junit: .sultana/ci/junit/gate.xml\n");
    Ok(out)
}

fn ci_name(set: Set, job: &str) -> String {
    match set {
        Set::Baseline => format!("baseline:{job}"),
        Set::Candidate => job.to_string(),
    }
}

/// A double-quoted YAML scalar (JSON's syntax, which YAML accepts).
fn yaml(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// The flight as osstest job lines: one `cs-job-create` per build and test
/// job, with the runvars osstest's scripts read.
pub fn osstest_flight(
    ws: &Workspace,
    options: &Options,
    flight: &str,
    arch: &str,
    printer: &Printer,
) -> Result<String> {
    let prepared = prepare(ws, options, printer)?;
    let comp = &prepared.component.name;
    let mut out = format!(
        "# The push gate of {comp} as osstest jobs (`sultana osstest flight {comp}`):\n\
         # candidate {} ({}), everything else at its locked revision.\n",
        prepared.candidate.commit, prepared.candidate.describe
    );
    let revisions = prepared.with(&prepared.candidate);
    let runvars = |extra: &[(String, String)]| -> String {
        let mut vars: Vec<(String, String)> = Vec::new();
        for r in &revisions {
            let c = ws.manifest.component(&r.component);
            let name = r.component.replace('-', "_");
            if let Some(c) = c {
                vars.push((format!("tree_{name}"), c.url.clone()));
            }
            vars.push((format!("revision_{name}"), r.commit.clone()));
        }
        vars.extend(extra.iter().cloned());
        vars.sort();
        vars.iter().map(|(k, v)| format!(" {k}={}", shell_word(v))).collect()
    };
    for (job, owner) in expected_jobs(ws, &prepared)? {
        let owner_var = owner.replace('-', "_");
        if job == build_job(&owner) {
            let name = format!("build-{arch}-{owner}");
            let _ = writeln!(
                out,
                "./cs-job-create {flight} {name} build-{owner}{}",
                runvars(&[
                    ("arch".into(), arch.into()),
                    ("sultana_job".into(), job.clone()),
                    ("sultana_gated".into(), comp.clone()),
                ])
            );
        } else {
            let test = job.trim_start_matches(&format!("test-{owner}-")).to_string();
            let name = format!("test-{arch}-{owner}-{test}");
            let _ = writeln!(
                out,
                "./cs-job-create {flight} {name} test-{owner}{}",
                runvars(&[
                    ("arch".into(), arch.into()),
                    ("sultana_job".into(), job.clone()),
                    ("sultana_gated".into(), comp.clone()),
                    (format!("{owner_var}buildjob"), format!("build-{arch}-{owner}")),
                ])
            );
        }
    }
    Ok(out)
}

fn shell_word(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=+@%,".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
