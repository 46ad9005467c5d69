use std::path::PathBuf;

use anyhow::Result;

use super::{system_choice, Globals};
use crate::build::SystemChoice;
use crate::cli::{BisectArgs, BuildEnvArgs, CacheArgs, CiCommand, GateArgs, OsstestCommand};
use crate::error::CheckFailed;
use crate::gate::{self, BisectOptions, Settings};
use crate::printer::Printer;

pub fn run(globals: &Globals, args: GateArgs, printer: &Printer) -> Result<()> {
    let ws = globals.fetching_workspace(&args.transfer, printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let cwd = std::env::current_dir()?;
    let asked_push = args.push;
    let options = gate::Options {
        component: args.component,
        candidate: args.candidate,
        baseline: args.baseline,
        push: args.push,
        allow_rewind: args.allow_rewind,
        push_ref: args.push_ref,
        allow: args.allow.map(|p| cwd.join(p)),
        junit: args.junit.map(|p| cwd.join(p)),
        summary: args.summary.map(|p| cwd.join(p)),
        always: args.always,
        settings: Settings {
            flaky_runs: args.flaky_runs,
            ..settings(
                globals,
                system_choice(&args.system),
                args.kernel_headers,
                &args.cache,
                &args.build_env,
            )?
        },
    };
    if let Some(job) = &args.job {
        let set = match args.set {
            crate::cli::SetArg::Baseline => gate::ci::Set::Baseline,
            crate::cli::SetArg::Candidate => gate::ci::Set::Candidate,
        };
        let outcome = gate::ci::run_job(&ws, &options, set, job, printer)?;
        printer.json(&serde_json::json!({ "command": "gate", "job": outcome }));
        if outcome.status.failed() {
            return Err(CheckFailed(format!("{job} ({}): {}", outcome.status, outcome.detail)).into());
        }
        return Ok(());
    }
    let outcome = match &args.results {
        Some(dir) => gate::ci::decide(&ws, &options, &cwd.join(dir), printer)?,
        None => gate::run(&ws, &options, printer)?,
    };
    let pruned = match outcome.report {
        Some(_) => super::flights::after_flight(&ws, printer),
        None => None,
    };
    printer.json(&serde_json::json!({ "command": "gate", "gate": outcome, "pruned": pruned }));
    if let Some(why) = &outcome.not_pushed {
        if outcome.refused_rewind {
            return Err(CheckFailed(format!("not pushed: {why}")).into());
        }
        if !outcome.blocking() {
            printer.warn(format!("not pushed: {why}"));
        }
    }
    if outcome.blocking() {
        let report = outcome.report.as_ref();
        let what: Vec<String> = report
            .map(|r| {
                r.blocking()
                    .iter()
                    .map(|f| format!("{} {}", f.job, f.summary))
                    .collect()
            })
            .unwrap_or_default();
        let flight = report.map_or(0, |r| r.flight);
        return Err(CheckFailed(format!(
            "the gate of {} failed in flight {flight}{}: {}\nlogs: {}",
            outcome.component,
            if asked_push { ", not pushed" } else { "" },
            what.join("; "),
            gate::flight_dir(&ws, flight).display()
        ))
        .into());
    }
    Ok(())
}

pub fn run_bisect(globals: &Globals, args: BisectArgs, printer: &Printer) -> Result<()> {
    let ws = globals.fetching_workspace(&args.transfer, printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let options = BisectOptions {
        component: args.component,
        test: args.test,
        good: args.good,
        bad: args.bad,
        settings: settings(
            globals,
            system_choice(&args.system),
            args.kernel_headers,
            &args.cache,
            &args.build_env,
        )?,
    };
    let outcome = gate::bisect(&ws, &options, printer)?;
    let pruned = super::flights::after_flight(&ws, printer);
    printer.json(&serde_json::json!({ "command": "bisect", "bisect": outcome, "pruned": pruned }));
    let reused = outcome.tried.iter().filter(|t| t.reused).count();
    printer.report(format!(
        "{}\n({} build(s) run, {} result(s) reused from earlier flights)",
        outcome.message, outcome.builds, reused
    ));
    if outcome.reproduced {
        Ok(())
    } else {
        Err(CheckFailed(outcome.message).into())
    }
}

fn gate_options(globals: &Globals, component: String, candidate: Option<String>) -> Result<gate::Options> {
    Ok(gate::Options {
        component,
        candidate,
        baseline: None,
        push: false,
        allow_rewind: false,
        push_ref: None,
        allow: None,
        junit: None,
        summary: None,
        always: false,
        settings: settings(
            globals,
            Default::default(),
            None,
            &CacheArgs::default(),
            &BuildEnvArgs::default(),
        )?,
    })
}

fn settings(
    globals: &Globals,
    system: SystemChoice,
    kernel_headers: Option<PathBuf>,
    cache: &CacheArgs,
    build_env: &BuildEnvArgs,
) -> Result<Settings> {
    let env = super::build_env(build_env)?;
    Ok(Settings {
        session: globals.session,
        flaky_runs: gate::DEFAULT_FLAKY_RUNS,
        system,
        kernel_headers,
        build_cache: !cache.no_build_cache,
        build_cache_remote: cache.build_cache_remote.clone(),
        ccache: !cache.no_ccache,
        inherited_env: env.inherited,
        env: env.given,
    })
}

pub fn run_ci(globals: &Globals, command: CiCommand, printer: &Printer) -> Result<()> {
    let CiCommand::Gitlab(args) = command;
    let ws = globals.workspace(printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let options = gate_options(globals, args.component.clone(), args.candidate.clone())?;
    let yaml = gate::ci::gitlab(&ws, &options, args.parent_job.as_deref(), printer)?;
    printer.json(&serde_json::json!({ "command": "ci gitlab", "yaml": yaml }));
    printer.out(yaml.trim_end());
    Ok(())
}

pub fn run_osstest(globals: &Globals, command: OsstestCommand, printer: &Printer) -> Result<()> {
    let OsstestCommand::Flight(args) = command;
    let ws = globals.workspace(printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let options = gate_options(globals, args.component, args.candidate)?;
    let target = gate::ci::OsstestTarget {
        flight: &args.flight,
        arch: &args.arch,
        suite: &args.suite,
    };
    let lines = gate::ci::osstest_flight(&ws, &options, &target, printer)?;
    printer.json(&serde_json::json!({ "command": "osstest flight", "lines": lines }));
    printer.out(lines.trim_end());
    Ok(())
}
