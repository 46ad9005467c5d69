//! `test`: the recipes' tests against the workspace's own build.

use anyhow::{Context, Result};

use super::{system_choice, Globals};
use crate::build;
use crate::cli::TestArgs;
use crate::error::CheckFailed;
use crate::gate::{self, TestOptions};
use crate::printer::Printer;

pub fn run(globals: &Globals, args: TestArgs, printer: &Printer) -> Result<()> {
    let ws = globals.workspace(printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let cwd = std::env::current_dir()?;
    let env = super::build_env(&args.build_env)?;
    let options = TestOptions {
        components: args.components,
        test: args.test,
        build: build::Options {
            jobs: globals.jobs,
            offline: globals.offline,
            locked: globals.locked,
            system: system_choice(&args.system),
            kernel_headers: args.kernel_headers,
            trusted: Default::default(),
            build_cache: !args.cache.no_build_cache,
            ccache: !args.cache.no_ccache,
            inherited_env: env.inherited,
            env: env.given,
            need_build_tree: Default::default(),
        },
    };
    let outcome = gate::run_tests(&ws, &options, printer)?;
    if let Some(path) = args.junit.map(|p| cwd.join(p)) {
        let xml = gate::tests_junit(&outcome)?;
        crate::fsutil::atomic_write(&path, xml.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    printer.report(gate::tests_table(&outcome));
    printer.json(&serde_json::json!({ "command": "test", "test": outcome }));
    let failed = outcome.failed();
    if failed.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = failed.iter().map(|j| format!("{} ({})", j.job, j.status)).collect();
    Err(CheckFailed(format!(
        "{} test(s) failed: {}\nlogs: {}",
        failed.len(),
        what.join(", "),
        outcome.logs.display()
    ))
    .into())
}
