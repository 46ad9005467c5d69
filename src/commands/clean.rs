use anyhow::Result;

use super::Globals;
use crate::build;
use crate::cli::{CleanArgs, DistcleanArgs};
use crate::printer::Printer;

pub fn run(globals: &Globals, args: CleanArgs, printer: &Printer) -> Result<()> {
    let ws = globals.workspace(printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let cleaned = build::clean(&ws, &args.components, printer)?;
    if cleaned.is_empty() {
        printer.status("Clean", "nothing built here: nothing to remove");
    }
    printer.json(&serde_json::json!({ "components": cleaned }));
    Ok(())
}

pub fn run_distclean(globals: &Globals, args: DistcleanArgs, printer: &Printer) -> Result<()> {
    let ws = globals.workspace(printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let removed = build::distclean(&ws, args.force, printer)?;
    if removed.is_empty() {
        printer.status("Clean", "no build outputs or checkouts here: nothing to remove");
    }
    let (folders, components): (Vec<String>, Vec<String>) = removed.into_iter().partition(|r| r.ends_with('/'));
    if !folders.is_empty() && components.is_empty() {
        printer.status("Removed", folders.join(" "));
    }
    printer.json(&serde_json::json!({ "components": components, "folders": folders }));
    Ok(())
}
