use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Result};

use super::Globals;
use crate::cli::DepsArgs;
use crate::printer::Printer;
use crate::process::{self, Cmd};

pub fn run(globals: &Globals, args: DepsArgs, printer: &Printer) -> Result<()> {
    let ws = globals.workspace_or_default(printer)?;
    // The named components with everything they build on (default: every enabled one).
    let components = crate::build::closure(&ws, &args.components)?;
    let mut packages = BTreeSet::new();
    for component in &components {
        let recipe = ws.recipe(component)?;
        packages.extend(recipe.build_deps.debian.iter().cloned());
    }
    let packages: Vec<String> = packages.into_iter().collect();
    let names: Vec<&str> = components.iter().map(|c| c.name.as_str()).collect();
    printer.verbose("Listing", format!("the build dependencies of {}", names.join(", ")));
    printer.json(&serde_json::json!({ "components": names, "debian": packages, "install": args.install }));
    if !args.install {
        printer.out(packages.join("\n"));
        return Ok(());
    }
    if !Path::new("/etc/debian_version").exists() {
        bail!(
            "`deps --install` uses apt-get and this is not Debian; install these by hand: {}",
            packages.join(" ")
        );
    }
    if !is_root() {
        bail!(
            "`deps --install` needs root: run `sudo sultana deps --install`, or `sudo apt-get install {}`",
            packages.join(" ")
        );
    }
    printer.status(
        "Installing",
        format!("{} Debian package(s) with apt-get", packages.len()),
    );
    let log = process::log_path(&ws.state_dir(), "deps");
    let install = || {
        Cmd::new("apt-get", "apt")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .log(&log)
            .run()
    };
    if let Err(first) = install() {
        // Stale package lists are the usual cause ("unmet dependencies",
        // "unable to locate package"): refresh them once and try again.
        printer.warn(format!(
            "apt-get install failed; refreshing the package lists and trying once more\n{}",
            first.to_string().lines().last().unwrap_or_default()
        ));
        Cmd::new("apt-get", "apt")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .log(&log)
            .run()?;
        install()?;
    }
    printer.status("Installed", packages.join(" "));
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}
