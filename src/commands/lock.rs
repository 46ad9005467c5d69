use std::time::Instant;

use anyhow::Result;

use super::{finished, Globals};
use crate::cli::LockArgs;
use crate::error::CheckFailed;
use crate::printer::Printer;
use crate::sync::{self, Mode};
use crate::workspace::{SourceKind, Workspace};

pub fn run(globals: &Globals, args: LockArgs, printer: &Printer) -> Result<()> {
    let started = Instant::now();
    let ws = globals.workspace()?;
    if args.check {
        return check(&ws, printer);
    }
    let _lock = ws.lock_exclusive(printer)?;
    let outcome = sync::run(&ws, &[], false, &globals.sync_options(Mode::Lock), printer)?;
    finished(printer, "locked", outcome.components.len(), started);
    printer.json(&serde_json::json!({ "command": "lock", "lock_changed": outcome.lock_changed, "components": outcome.components }));
    Ok(())
}

/// Every enabled git component pinned at its current intent; nothing stale.
/// Reads files only: no network, no git.
fn check(ws: &Workspace, printer: &Printer) -> Result<()> {
    let lock = ws.load_lock()?;
    let mut problems = Vec::new();
    for component in ws.manifest.components.iter().filter(|c| c.enabled) {
        if ws.source(component) != SourceKind::Git {
            continue;
        }
        match lock.get(&component.name) {
            None => problems.push(format!("{}: not in sultana.lock", component.name)),
            Some(entry) if entry.url != component.url => problems.push(format!(
                "{}: locked from {} but the manifest says {}",
                component.name, entry.url, component.url
            )),
            Some(entry) if entry.revision != component.revision => problems.push(format!(
                "{}: locked for revision `{}` but the manifest says `{}`",
                component.name, entry.revision, component.revision
            )),
            Some(_) => {}
        }
    }
    for name in lock.entries.keys() {
        if ws.manifest.component(name).is_none() {
            problems.push(format!("{name}: in sultana.lock but not in the manifest"));
        }
    }
    printer.json(
        &serde_json::json!({ "command": "lock", "check": true, "ok": problems.is_empty(), "problems": problems }),
    );
    if problems.is_empty() {
        printer.status("Checked", "sultana.lock pins every enabled component's revision");
        return Ok(());
    }
    Err(CheckFailed(format!(
        "sultana.lock is out of date; run `sultana lock`:\n  {}",
        problems.join("\n  ")
    ))
    .into())
}
