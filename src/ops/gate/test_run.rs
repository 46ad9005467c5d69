//! One test of a flight: its script run in a scratch work folder with the
//! built trees' paths in its environment, as many times as the gate's
//! rules ask, each run a step of the job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::classify::JobOutcome;
use super::db::{Known, StepRow};
use super::definition;
use super::status::{JobKind, JobStatus};
use crate::build::{self, UnitReport};
use crate::fsutil;
use crate::printer::Printer;
use crate::process::{Cmd, Ended};
use crate::recipe::{BuildDir, TestSpec};
use crate::workspace::Workspace;

use super::jobs::{test_job, Runs};
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
        let (origin, script) = match self.write_scripts(recipe, test)? {
            Ok(written) => written,
            Err(why) => return Ok(self.broken(&job, test, definition, why, printer)),
        };
        let run = |attempt| self.once(&job, test, &script, &origin, attempt, printer);
        let first = run(1)?;
        let mut steps = vec![first.clone()];
        match runs {
            Runs::Once => {}
            Runs::Times(n) => {
                for attempt in 2..=i64::from(n) {
                    steps.push(run(attempt)?);
                }
            }
            Runs::Gate { flaky_runs } if first.status.failed() => {
                let known = baseline(&job, &definition);
                if !known.as_ref().is_some_and(Known::fails_for_sure) {
                    // The failure and its reason first, then what is done about it.
                    printer.trouble("Failed", format!("{job}: {}", first.detail));
                    printer.status("Retrying", format!("{job}: the baseline is not known to fail it"));
                    let again = run(2)?;
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
                            steps.push(run(attempt)?);
                        }
                    }
                }
            }
            Runs::Gate { .. } => {}
        }
        let outcome = outcome_of(&job, name, test, definition, &steps);
        say(&outcome, printer);
        Ok((outcome, steps))
    }

    /// The test's script, and the VM test's host-side preparation and its
    /// guest's script, written beside it; with where the script came from.
    /// A script that cannot be found makes the job broken (the inner error).
    fn write_scripts(
        &self,
        recipe: &crate::recipe::Recipe,
        test: &TestSpec,
    ) -> Result<std::result::Result<(String, Script), String>> {
        let (origin, script) = match recipe.test_script(&self.ws.recipes_root, test) {
            Ok(found) => found,
            Err(e) => return Ok(Err(format!("{e:#}"))),
        };
        let script_file = self
            .dir
            .join("scripts")
            .join(format!("{}-{}", recipe.name, test.script_name()));
        fsutil::atomic_write(&script_file, &script)?;
        let mut beside = Vec::new();
        for name in [
            test.vm.as_ref().and_then(|vm| vm.prepare.as_ref()),
            test.vm.as_ref().and_then(|vm| vm.guest.as_ref()),
        ] {
            beside.push(match name {
                Some(name) => match recipe.test_file(&self.ws.recipes_root, test, name) {
                    Ok((_, bytes)) => {
                        let file = self.dir.join("scripts").join(format!("{}-{name}", recipe.name));
                        fsutil::atomic_write(&file, &bytes)?;
                        Some(file)
                    }
                    Err(e) => return Ok(Err(format!("{e:#}"))),
                },
                None => None,
            });
        }
        let guest = beside.pop().flatten();
        let prepare = beside.pop().flatten();
        Ok(Ok((
            origin,
            Script {
                file: script_file,
                prepare,
                guest,
            },
        )))
    }

    /// The flight goes on; this job is broken, not the gate.
    fn broken(
        &self,
        job: &str,
        test: &TestSpec,
        definition: String,
        detail: String,
        printer: &Printer,
    ) -> (JobOutcome, Vec<StepRow>) {
        printer.trouble("Broken", format!("{job}: {detail}"));
        let outcome = JobOutcome {
            job: job.to_string(),
            component: self.report.name.clone(),
            kind: JobKind::Test,
            status: JobStatus::Broken,
            testid: test.name.clone(),
            seconds: 0.0,
            flaky: false,
            detail,
            log: None,
            definition,
            runs: 1,
            failed_runs: 1,
        };
        (outcome, Vec::new())
    }

    /// Run the script once; automake's exit codes.
    fn once(
        &self,
        job: &str,
        test: &TestSpec,
        script: &Script,
        origin: &str,
        attempt: i64,
        printer: &Printer,
    ) -> Result<StepRow> {
        let suffix = if attempt > 1 {
            format!(".{attempt}")
        } else {
            String::new()
        };
        let log = self.dir.join(format!("{job}{suffix}.log"));
        let work = self.dir.join("work").join(format!("{job}{suffix}"));
        fsutil::remove_scratch(&work).with_context(|| format!("cannot remove {}", work.display()))?;
        std::fs::create_dir_all(&work)?;
        std::fs::write(&log, format!("# {job}: {origin}\n"))?;
        let started = Instant::now();
        let limit = Duration::from_secs(test.timeout());
        let env = self.environment(test, &work);
        let mut trouble = None;
        let ended = match &test.vm {
            None => self.command(&env, &script.file, &work, &log).run_limited(limit)?,
            Some(vm) => {
                let prepared = match &script.prepare {
                    Some(prepare) => {
                        fsutil::append_log(
                            &log,
                            format!("# prepare on the host: {}\n", prepare.display()).as_bytes(),
                        );
                        self.command(&env, prepare, &work, &log).run_limited(limit)?
                    }
                    None => Ended::Exited(0),
                };
                if prepared != Ended::Exited(0) {
                    prepared
                } else {
                    let (ended, why) = self.in_vm(
                        job,
                        test,
                        vm,
                        script,
                        &env,
                        &work,
                        &log,
                        suffix.as_str(),
                        started,
                        printer,
                    )?;
                    trouble = why;
                    ended
                }
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let tail = last_line(&log);
        let (status, detail) = match (ended, trouble) {
            (_, Some((JobStatus::Broken, why))) => (JobStatus::Broken, why),
            (Ended::Exited(0 | 77), Some((status, why))) => (status, why),
            (Ended::Exited(_) | Ended::Stopped, Some((JobStatus::Fail, why))) => {
                (JobStatus::Fail, format!("{why}; {tail}"))
            }
            (ended, Some((status, why))) if !matches!(ended, Ended::Exited(_)) => (status, why),
            (ended, _) => match ended {
                // What the test says of how it ran (e.g. with a preload).
                Ended::Exited(0) => (JobStatus::Pass, notes(&log)),
                Ended::Exited(77) => (JobStatus::Skip, tail),
                Ended::Exited(99) => (JobStatus::Broken, format!("broken (exit 99): {tail}")),
                Ended::Exited(code) => (JobStatus::Fail, format!("exit {code}: {tail}")),
                Ended::Signaled(signal) => (JobStatus::Fail, format!("killed by signal {signal}: {tail}")),
                Ended::TimedOut => (JobStatus::Fail, format!("timed out after {}s", test.timeout())),
                Ended::Stopped => (JobStatus::Fail, format!("stopped: {tail}")),
            },
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

    /// Run the script in a VM (see `crate::vm`). Besides how it ended:
    /// what overrides the script's own verdict (a missing VM part skips;
    /// a kernel oops, or a VM that ended without an exit status, fails).
    #[allow(clippy::too_many_arguments)]
    fn in_vm(
        &self,
        job: &str,
        test: &TestSpec,
        vm: &crate::recipe::VmSpec,
        script: &Script,
        env: &BTreeMap<String, String>,
        work: &Path,
        log: &Path,
        suffix: &str,
        started: Instant,
        printer: &Printer,
    ) -> Result<(Ended, Option<(JobStatus, String)>)> {
        let (src, build_dir) = self.trees();
        let (mut trees, installs) = self.vm_trees(vm);
        if test.build_tree {
            trees.push(build_dir);
        }
        let xen_stage = match self.xen_stage() {
            Ok(stage) => stage,
            Err(why) if vm.xen => {
                fsutil::append_log(log, format!("broken: {why}\n").as_bytes());
                return Ok((Ended::Exited(99), Some((JobStatus::Broken, why))));
            }
            Err(_) => None,
        };
        let vm_test = crate::vm::VmTest {
            spec: vm,
            headers: self.headers,
            script: &script.file,
            env,
            trees,
            installs,
            xen_stage,
            guest: script.guest.as_deref(),
            sources: if vm.src {
                // A root component's tree is the workspace: not its state,
                // builds and staged installs.
                let skip = if src == self.scratch.root {
                    vec![".sultana", "dist", "build"]
                } else {
                    Vec::new()
                };
                vec![(src, skip)]
            } else {
                Vec::new()
            },
            work,
            scratch: &self.dir.join("vm").join(format!("{job}{suffix}")),
            log,
            console_log: self.dir.join(format!("{job}{suffix}.console.log")),
            kernel_log: self.dir.join(format!("{job}{suffix}.kernel.log")),
            timeout: Duration::from_secs(test.timeout()).saturating_sub(started.elapsed()),
        };
        match crate::vm::run(&vm_test, printer) {
            Ok(run) => {
                let booted = run
                    .boot_seconds
                    .map_or("never booted".to_string(), |s| format!("booted in {s:.1}s"));
                let xen = run.xen.as_ref().map_or(String::new(), |x| format!("{x}, dom0 "));
                let line = format!(
                    "# vm: {} ({}), {xen}kernel {}, {booted}\n",
                    run.accel.name(),
                    run.accel_note,
                    run.kernel.image.display()
                );
                insert_after_header(log, &line);
                printer.status(
                    "VM",
                    format!("{job}: {} ({}), {booted}", run.accel.name(), run.accel_note),
                );
                let trouble = match (&run.kernel_trouble, &run.detail) {
                    (Some(line), _) => Some((JobStatus::Fail, line.clone())),
                    (None, Some(why)) => Some((JobStatus::Fail, why.clone())),
                    (None, None) => None,
                };
                Ok((run.ended, trouble))
            }
            Err(crate::vm::VmError::Missing(why)) => {
                fsutil::append_log(log, format!("skip: no VM: {why}\n").as_bytes());
                Ok((Ended::Exited(77), Some((JobStatus::Skip, format!("no VM: {why}")))))
            }
            Err(crate::vm::VmError::Broken(why)) => {
                fsutil::append_log(log, format!("broken: {why}\n").as_bytes());
                Ok((
                    Ended::Exited(99),
                    Some((JobStatus::Broken, format!("broken VM: {why}"))),
                ))
            }
            // Making the VM failed (a file that cannot be read, a full
            // disk): this test is broken, the flight goes on.
            Err(crate::vm::VmError::Other(e)) => {
                fsutil::append_log(log, format!("broken: cannot run the VM: {e:#}\n").as_bytes());
                Ok((
                    Ended::Exited(99),
                    Some((JobStatus::Broken, format!("cannot run the VM: {e:#}"))),
                ))
            }
        }
    }

    /// What a VM holds of the flight's builds: (trees copied at their own
    /// paths, staged installs). A Xen dom0 has the flight's builds
    /// installed at `/`, as a real one would; what came from the system
    /// stays at its own path.
    fn vm_trees(&self, vm: &crate::recipe::VmSpec) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let own = build::staging_root(self.scratch, &self.report.name);
        if !vm.xen {
            let mut trees = vec![own];
            trees.extend(self.reports.iter().filter_map(|r| r.prefix.clone()));
            return (trees, Vec::new());
        }
        let (mut trees, mut installs) = (Vec::new(), vec![own]);
        for report in self.reports {
            let Some(prefix) = &report.prefix else { continue };
            let stage = build::staging_root(self.scratch, &report.name);
            if !prefix.starts_with(&stage) {
                trees.push(prefix.clone());
            } else if !installs.contains(&stage) {
                installs.push(stage);
            }
        }
        (trees, installs)
    }

    /// The staged install of the xen this flight built, which a Xen VM
    /// boots (none: the system's); a xen that did not build is no reason to
    /// boot another (the error says so).
    fn xen_stage(&self) -> std::result::Result<Option<PathBuf>, String> {
        let xen = self.reports.iter().find(|r| {
            self.scratch
                .manifest
                .component(&r.name)
                .is_some_and(|c| c.recipe == "xen")
        });
        match xen {
            Some(r)
                if matches!(
                    r.status,
                    build::Status::Built | build::Status::Fresh | build::Status::Cached
                ) =>
            {
                Ok(Some(build::staging_root(self.scratch, &r.name)))
            }
            Some(r) if matches!(r.status, build::Status::Failed | build::Status::Blocked) => {
                Err(format!("{} did not build in this flight: no Xen to boot", r.name))
            }
            _ => Ok(None),
        }
    }

    /// The component's source tree and build folder in the scratch workspace.
    fn trees(&self) -> (std::path::PathBuf, std::path::PathBuf) {
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
        (src, build_dir)
    }

    fn environment(&self, test: &TestSpec, work: &Path) -> BTreeMap<String, String> {
        let scratch = self.scratch;
        let (src, build_dir) = self.trees();
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
        env
    }

    fn command(&self, env: &BTreeMap<String, String>, script: &Path, work: &Path, log: &Path) -> Cmd {
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

/// What a test's runs add up to. Intermittent: it passed some runs and
/// failed others; any failure fails the job, and the classification weighs
/// the runs.
fn outcome_of(job: &str, component: &str, test: &TestSpec, definition: String, steps: &[StepRow]) -> JobOutcome {
    let failed_runs = steps.iter().filter(|s| s.status.failed()).count() as u32;
    let total = steps.len() as u32;
    let flaky = failed_runs > 0 && steps.iter().any(|s| s.status == JobStatus::Pass);
    let status = if flaky {
        JobStatus::Fail
    } else {
        (steps.iter().map(|s| s.status))
            .find(|s| *s != JobStatus::Pass)
            .unwrap_or(JobStatus::Pass)
    };
    let detail = if flaky {
        format!("failed {failed_runs} of {total} runs")
    } else if total > 1 && status == JobStatus::Pass {
        format!("passed {total} of {total} runs")
    } else {
        (steps.iter())
            .find(|s| s.status != JobStatus::Pass)
            .map_or_else(|| steps[0].detail.clone(), |s| s.detail.clone())
    };
    JobOutcome {
        job: job.to_string(),
        component: component.to_string(),
        kind: JobKind::Test,
        status,
        testid: test.name.clone(),
        seconds: steps.iter().map(|s| s.seconds).sum(),
        flaky,
        detail,
        log: steps.last().map(|s| s.log.clone()).unwrap_or_default(),
        definition,
        runs: total,
        failed_runs,
    }
}

/// The job's verdict line.
fn say(outcome: &JobOutcome, printer: &Printer) {
    let (status, flaky) = (outcome.status, outcome.flaky);
    let verb = match status {
        _ if flaky => "Intermittent",
        JobStatus::Pass => "Passed",
        JobStatus::Skip => "Skipped",
        JobStatus::Broken => "Broken",
        JobStatus::Blocked => "Blocked",
        JobStatus::Fail => "Failed",
    };
    let mut message = format!("{} in {:.1}s", outcome.job, outcome.seconds);
    if status != JobStatus::Pass || flaky || outcome.runs > 1 {
        message.push_str(&format!(": {}", outcome.detail));
    }
    if status == JobStatus::Pass && !flaky {
        printer.status(verb, message);
    } else {
        printer.trouble(verb, message);
    }
}

/// A test's script, and a VM test's host-side preparation.
struct Script {
    file: std::path::PathBuf,
    prepare: Option<std::path::PathBuf>,
    guest: Option<std::path::PathBuf>,
}

/// Put `line` right after the log's `# job: origin` header.
fn insert_after_header(log: &Path, line: &str) {
    let Ok(text) = std::fs::read_to_string(log) else { return };
    let (head, rest) = match text.split_once('\n') {
        Some((head, rest)) => (head, rest),
        None => (text.as_str(), ""),
    };
    let _ = fsutil::atomic_write(log, format!("{head}\n{line}{rest}").as_bytes());
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
    let tail = fsutil::read_tail(log, 64 << 10).unwrap_or_default();
    String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("$ ") && !l.starts_with("# "))
        .unwrap_or_default()
        .trim()
        .to_string()
}
