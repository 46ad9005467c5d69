use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Globals;
use crate::cli::InitArgs;
use crate::fsutil;
use crate::manifest::{self, Manifest};
use crate::printer::Printer;

pub fn run(globals: &Globals, args: InitArgs, printer: &Printer) -> Result<()> {
    let _ = globals;
    let from = args.from.as_deref().unwrap_or(manifest::DEFAULT_NAME);
    let (text, label) = match manifest::shipped(from) {
        Some(text) => (text.to_string(), from.to_string()),
        None => {
            let path = Path::new(from);
            if !path.is_file() {
                let names: Vec<&str> = manifest::SHIPPED.iter().map(|m| m.name).collect();
                bail!(
                    "`{from}` is neither a shipped manifest ({}) nor a file",
                    names.join(", ")
                );
            }
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {from}"))?;
            (text, path.display().to_string())
        }
    };
    // Refuse to write a manifest that would fail on the next command.
    Manifest::parse(&text, &label, None)?;
    let target = std::env::current_dir()?.join(manifest::FILE_NAME);
    if target.exists() && !args.force {
        bail!("{} already exists; use --force to overwrite it", target.display());
    }
    fsutil::atomic_write(&target, text.as_bytes())?;
    printer.status("Created", format!("{} from {label}", target.display()));
    printer.report("Next: `sultana fetch` to clone the trees at their pins, `sultana status` to see them.");
    printer.json(&serde_json::json!({ "manifest": target, "from": label }));
    Ok(())
}
