//! `flights` and `flights prune`: the gate's flight history of this
//! workspace, and trimming it.

use anyhow::Result;

use super::Globals;
use crate::cli::{FlightsArgs, FlightsCommand};
use crate::gate::{self, FlightDb, Pruned};
use crate::printer::Printer;
use crate::workspace::Workspace;

pub fn run(globals: &Globals, args: FlightsArgs, printer: &Printer) -> Result<()> {
    let ws = globals.workspace(printer)?;
    match args.command {
        None => list(&ws, args.limit, printer),
        Some(FlightsCommand::Prune(prune)) => {
            let _lock = ws.lock_exclusive(printer)?;
            let keep = prune
                .keep
                .map_or(ws.manifest.keep_flights, |n| usize::try_from(n).unwrap_or(usize::MAX));
            let db = FlightDb::open(&gate::db_path(&ws))?;
            let pruned = gate::prune_flights(&ws, &db, keep)?;
            db.vacuum()?;
            report(&pruned, keep, printer, true);
            printer.json(&serde_json::json!({ "command": "flights prune", "keep": keep, "pruned": pruned }));
            Ok(())
        }
    }
}

fn list(ws: &Workspace, limit: usize, printer: &Printer) -> Result<()> {
    let path = gate::db_path(ws);
    let rows = if path.exists() {
        FlightDb::open(&path)?.list(limit)?
    } else {
        Vec::new()
    };
    if rows.is_empty() {
        printer.report("no flights yet: `sultana gate COMP` runs one");
    } else {
        let mut text = vec![format!(
            "{:>6}  {:<8}  {:<14}  {:<24}  {:<12}  {:>4}  {:>6}  {}",
            "FLIGHT", "KIND", "COMPONENT", "CANDIDATE", "OUTCOME", "JOBS", "FAILED", "STARTED"
        )];
        for r in &rows {
            let candidate = if r.describe.is_empty() {
                r.candidate.get(..12).unwrap_or(&r.candidate).to_string()
            } else {
                r.describe.clone()
            };
            let outcome = if r.pushed {
                format!("{} pushed", r.outcome)
            } else {
                r.outcome.to_string()
            };
            text.push(format!(
                "{:>6}  {:<8}  {:<14}  {:<24}  {:<12}  {:>4}  {:>6}  {}",
                r.flight,
                r.kind.to_string(),
                r.component,
                candidate,
                outcome,
                r.jobs,
                r.failed,
                crate::timefmt::rfc3339(r.started.max(0.0) as u64)
            ));
        }
        printer.out(text.join("\n"));
    }
    printer.json(&serde_json::json!({ "command": "flights", "flights": rows }));
    Ok(())
}

/// One line on what a prune did; after a gate only when it removed some.
pub fn report(pruned: &Pruned, keep: usize, printer: &Printer, always: bool) {
    for stuck in &pruned.stuck {
        printer.warn(format!(
            "cannot remove an old flight's folder, left for the next prune: {stuck}"
        ));
    }
    if pruned.removed.is_empty() && !always {
        return;
    }
    let evidence = match pruned.evidence {
        0 => String::new(),
        n => format!(", {n} older kept as evidence"),
    };
    printer.status(
        "Pruned",
        format!(
            "{} flight(s) from the history ({} freed); {} left: the newest {keep}{evidence}",
            pruned.removed.len(),
            crate::fsutil::human_size(pruned.freed_bytes),
            pruned.left
        ),
    );
}

/// After a gate, bisect or deciding job: the history back to its retention.
/// Never an error: the command's verdict stands whatever the prune meets.
pub fn after_flight(ws: &Workspace, printer: &Printer) -> Option<Pruned> {
    let pruned =
        FlightDb::open(&gate::db_path(ws)).and_then(|db| gate::prune_flights(ws, &db, ws.manifest.keep_flights));
    match pruned {
        Ok(pruned) => {
            report(&pruned, ws.manifest.keep_flights, printer, false);
            Some(pruned)
        }
        Err(e) => {
            printer.warn(format!("the flight history was not pruned: {e:#}"));
            None
        }
    }
}
