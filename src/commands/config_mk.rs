use anyhow::{bail, Context, Result};

use super::Globals;
use crate::cli::{ConfigMkCommand, ConfigMkImportArgs};
use crate::config_mk;
use crate::fsutil;
use crate::manifest::{self, Manifest};
use crate::printer::Printer;

pub fn run(globals: &Globals, command: ConfigMkCommand, printer: &Printer) -> Result<()> {
    match command {
        ConfigMkCommand::Import(args) => import(args, printer),
        ConfigMkCommand::Export => export(globals, printer),
    }
}

fn import(args: ConfigMkImportArgs, printer: &Printer) -> Result<()> {
    let cwd = std::env::current_dir()?;
    let file = cwd.join(&args.file);
    let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let imported = config_mk::import(&text, &file.display().to_string())?;
    if imported.pins.is_empty() {
        bail!(
            "{} sets no *_UPSTREAM_URL / *_UPSTREAM_REVISION pair sultana knows ({})",
            file.display(),
            config_mk::TREES.iter().map(|t| t.prefix).collect::<Vec<_>>().join(", ")
        );
    }
    let out = args
        .out
        .map(|o| cwd.join(o))
        .unwrap_or_else(|| cwd.join(manifest::FILE_NAME));
    if out.exists() && !args.force {
        bail!("{} already exists; use --force to overwrite it", out.display());
    }
    let dir = file.parent().unwrap_or(&cwd).to_path_buf();
    let xen = config_mk::xen_from_checkout(&dir).map(|(url, revision)| {
        let in_place = out.parent().and_then(|p| p.canonicalize().ok()) == dir.canonicalize().ok();
        (url, revision, in_place)
    });
    let text = config_mk::manifest_text(&imported, &file.display().to_string(), xen.clone());
    // Refuse to write what the next command would refuse to read.
    Manifest::parse(&text, &out.display().to_string(), None)?;
    fsutil::atomic_write(&out, text.as_bytes())?;
    for unevaluated in &imported.unevaluated {
        printer.verbose(
            "Skipped",
            format!(
                "line {}: `{}` needs more of make than sultana reads; taken as false",
                unevaluated.line, unevaluated.text
            ),
        );
    }
    if !imported.unevaluated.is_empty() {
        printer.status(
            "Note",
            format!(
                "{} condition(s) not evaluated (make functions); their default branch was taken (-v lists them)",
                imported.unevaluated.len()
            ),
        );
    }
    for (old, new) in &imported.legacy {
        printer.status("Note", format!("read the legacy {old} as {new}"));
    }
    for pin in &imported.pins {
        printer.status(
            "Imported",
            format!("{} {} from {}", pin.component, pin.revision, pin.url_var),
        );
    }
    match &xen {
        Some((url, revision, _)) => printer.status("Imported", format!("xen {revision} from the checkout ({url})")),
        None => printer.warn(format!("{} is not a git checkout: no xen component", dir.display())),
    }
    printer.status("Created", out.display());
    printer.json(&serde_json::json!({ "command": "config-mk import", "manifest": out, "pins": imported.pins }));
    Ok(())
}

fn export(globals: &Globals, printer: &Printer) -> Result<()> {
    let ws = globals.workspace(printer)?;
    let lock = if globals.session.locked() {
        Some(ws.load_lock()?)
    } else {
        None
    };
    let text = config_mk::export(&ws.manifest, lock.as_ref())?;
    if text.is_empty() {
        bail!("{} has no component Xen's make knows", ws.manifest.display_name);
    }
    printer
        .json(&serde_json::json!({ "command": "config-mk export", "locked": globals.session.locked(), "text": text }));
    printer.out(text.trim_end());
    Ok(())
}
