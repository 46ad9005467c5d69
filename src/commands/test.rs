//! `test`: the recipes' tests against the workspace's own build.

use anyhow::{Context, Result};

use super::Globals;
use crate::cli::TestArgs;
use crate::error::CheckFailed;
use crate::gate::{self, TestOptions};
use crate::printer::Printer;

pub fn run(globals: &Globals, args: TestArgs, printer: &Printer) -> Result<()> {
    let ws = globals.workspace(printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let cwd = std::env::current_dir()?;
    let options = TestOptions {
        components: args.components,
        test: args.test,
        build: super::build::options(globals, args.build)?,
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
