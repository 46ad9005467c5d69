use std::path::PathBuf;

use anyhow::Result;

use super::Globals;
use crate::build;
use crate::cli::InstallArgs;
use crate::printer::Printer;

pub fn run(globals: &Globals, args: InstallArgs, printer: &Printer) -> Result<()> {
    let ws = globals.workspace(printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let destdir = args.destdir.unwrap_or_else(|| PathBuf::from("/"));
    let done = build::install(&ws, &args.components, &destdir)?;
    for (name, count) in &done {
        printer.status(
            "Installed",
            format!("{name}: {count} file(s) into {}", destdir.display()),
        );
    }
    printer.json(&serde_json::json!({
        "command": "install",
        "destdir": destdir,
        "components": done.iter().map(|(n, c)| serde_json::json!({"name": n, "files": c})).collect::<Vec<_>>(),
    }));
    Ok(())
}
