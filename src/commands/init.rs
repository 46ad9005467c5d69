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
    let parsed = Manifest::parse(&text, &label, None)?;
    let target = std::env::current_dir()?.join(manifest::FILE_NAME);
    if target.exists() && !args.force {
        bail!("{} already exists; use --force to overwrite it", target.display());
    }
    fsutil::atomic_write(&target, text.as_bytes())?;
    printer.status("Created", format!("{} from {label}", target.display()));
    // What sultana makes here stays out of a repository that holds the
    // manifest; a .gitignore already there is the developer's.
    let ignore = target.with_file_name(".gitignore");
    // (Not where a component's checkout is the workspace itself: an
    // untracked file would make its tree dirty.)
    let root_is_a_tree = parsed.components.iter().any(|c| c.path == Path::new("."));
    if !root_is_a_tree && std::fs::symlink_metadata(&ignore).is_err() {
        fsutil::atomic_write(&ignore, gitignore(&parsed).as_bytes())?;
        printer.status("Created", format!("{} (what sultana makes here)", ignore.display()));
    }
    printer.report("Next: `sultana fetch` to clone the trees at their pins, `sultana status` to see them.");
    printer.json(&serde_json::json!({ "manifest": target, "from": label }));
    Ok(())
}

/// The checkouts, builds, staged installs, state and local overrides.
fn gitignore(manifest: &Manifest) -> String {
    let mut text = String::from(
        "# Written by `sultana init`: what sultana makes here.\n/.sultana/\n/build/\n/dist/\n/sultana.local.toml\n",
    );
    for component in &manifest.components {
        let path = component.path.display().to_string();
        if path != "." && !path.is_empty() {
            text.push_str(&format!("/{}/\n", path.trim_end_matches('/')));
        }
    }
    text
}
