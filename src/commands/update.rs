use std::time::Instant;

use anyhow::Result;

use super::{finished, Globals};
use crate::cli::UpdateArgs;
use crate::printer::Printer;
use crate::sync::{self, Mode};

pub fn run(globals: &Globals, args: UpdateArgs, printer: &Printer) -> Result<()> {
    let started = Instant::now();
    let ws = globals.fetching_workspace(&args.transfer, printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let mode = Mode::Update { force: args.force };
    let outcome = sync::run(&ws, &args.components, args.all, &globals.sync_options(mode), printer)?;
    let moved = outcome
        .components
        .iter()
        .any(|c| c.previous.is_some() || matches!(c.action, sync::Action::Cloned | sync::Action::Moved));
    if moved || outcome.lock_changed {
        finished(printer, "updated", outcome.components.len(), started);
    } else {
        printer.status(
            "Finished",
            format!(
                "up to date: {} component(s) already at their revisions' tips ({:.2}s)",
                outcome.components.len(),
                started.elapsed().as_secs_f64()
            ),
        );
    }
    printer.json(&serde_json::json!({ "command": "update", "lock_changed": outcome.lock_changed, "components": outcome.components }));
    Ok(())
}
