use std::time::Instant;

use anyhow::Result;

use super::{finished, Globals};
use crate::cli::FetchArgs;
use crate::printer::Printer;
use crate::sync::{self, Mode};

pub fn run(globals: &Globals, args: FetchArgs, printer: &Printer) -> Result<()> {
    let started = Instant::now();
    let ws = globals.fetching_workspace(&args.transfer, printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let outcome = sync::run(
        &ws,
        &args.components,
        false,
        &globals.sync_options(Mode::Fetch),
        printer,
    )?;
    finished(printer, "fetched", outcome.components.len(), started);
    printer.json(&serde_json::json!({ "command": "fetch", "lock_changed": outcome.lock_changed, "components": outcome.components }));
    Ok(())
}
