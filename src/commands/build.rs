use std::time::Instant;

use anyhow::{anyhow, Result};

use super::{system_choice, Globals};
use crate::build::{self, Status};
use crate::cli::{BuildArgs, BuildSettingsArgs};
use crate::error::CheckFailed;
use crate::printer::Printer;

pub fn run(globals: &Globals, args: BuildArgs, printer: &Printer) -> Result<()> {
    let started = Instant::now();
    let ws = globals.workspace(printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let options = options(globals, args.build)?;
    let reports = build::run(&ws, &args.components, &options, printer)?;
    let mut table = vec![format!(
        "{:<16} {:<8} {:>8}  {}",
        "COMPONENT", "STATUS", "TIME", "PREFIX"
    )];
    for r in &reports {
        let status = format!("{:?}", r.status).to_lowercase();
        let prefix = r
            .prefix
            .as_ref()
            .map(|p| ws.display_path(p))
            .unwrap_or_else(|| r.blocked_by.as_ref().map_or("-".into(), |d| format!("(needs {d})")));
        table.push(format!("{:<16} {:<8} {:>7.1}s  {}", r.name, status, r.seconds, prefix));
    }
    printer.report(table.join("\n"));
    printer.json(&serde_json::json!({ "command": "build", "components": reports }));
    let failed: Vec<&build::UnitReport> = reports
        .iter()
        .filter(|r| matches!(r.status, Status::Failed | Status::Blocked))
        .collect();
    if failed.is_empty() {
        printer.status(
            "Finished",
            format!(
                "build of {} component(s) in {:.2}s",
                reports.len(),
                started.elapsed().as_secs_f64()
            ),
        );
        return Ok(());
    }
    let names: Vec<String> = failed
        .iter()
        .map(|r| match &r.blocked_by {
            Some(dep) => format!("{} (blocked by {dep})", r.name),
            None => format!("{} (at {})", r.name, r.step.as_deref().unwrap_or("setup")),
        })
        .collect();
    let message = format!("build failed: {}", names.join(", "));
    if failed.iter().any(|r| r.config_error) {
        return Err(anyhow!(message));
    }
    Err(CheckFailed(message).into())
}

/// The build's options from the command line (`build`, `test`).
pub(super) fn options(globals: &Globals, args: BuildSettingsArgs) -> Result<build::Options> {
    let env = super::build_env(&args.build_env)?;
    Ok(build::Options {
        session: globals.session,
        system: system_choice(&args.system),
        kernel_headers: args.kernel_headers,
        trusted: Default::default(),
        build_cache: !args.cache.no_build_cache,
        build_cache_remote: args.cache.build_cache_remote.clone(),
        ccache: !args.cache.no_ccache,
        inherited_env: env.inherited,
        env: env.given,
        need_build_tree: Default::default(),
    })
}
