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
    let mut testing = BTreeSet::new();
    for component in &components {
        let recipe = ws.recipe(component)?;
        packages.extend(recipe.build_deps.debian.iter().cloned());
        testing.extend(recipe.test_deps.debian.iter().cloned());
        if recipe.tests.iter().any(|t| t.vm.is_some()) {
            testing.extend(crate::recipe::VmSpec::DEBIAN.iter().map(|p| p.to_string()));
        }
        // A Xen VM test boots the system's Xen when the flight builds none.
        let builds_xen = components.iter().any(|c| c.recipe == "xen");
        if !builds_xen && recipe.tests.iter().any(|t| t.vm.as_ref().is_some_and(|v| v.xen)) {
            testing.extend(crate::recipe::VmSpec::DEBIAN_XEN.iter().map(|p| p.to_string()));
        }
    }
    let testing: Vec<String> = testing.into_iter().filter(|p| !packages.contains(p)).collect();
    let packages: Vec<String> = packages.into_iter().collect();
    let names: Vec<&str> = components.iter().map(|c| c.name.as_str()).collect();
    printer.verbose("Listing", format!("the build dependencies of {}", names.join(", ")));
    printer.json(
        &serde_json::json!({ "components": names, "debian": packages, "tests": testing, "install": args.install }),
    );
    if !args.install {
        // stdout stays the build's list (`apt-get install $(sultana deps)`);
        // what the tests need besides is said apart.
        if args.tests {
            let all: Vec<String> = packages.iter().chain(&testing).cloned().collect();
            printer.out(all.join("\n"));
            return Ok(());
        }
        printer.out(packages.join("\n"));
        if !testing.is_empty() {
            printer.status(
                "Testing",
                format!(
                    "also needs: {} (`sultana deps --tests` lists them too)",
                    testing.join(" ")
                ),
            );
        }
        return Ok(());
    }
    let wanted: Vec<String> = packages.into_iter().chain(testing).collect();
    if !Path::new("/etc/debian_version").exists() {
        bail!(
            "`deps --install` uses apt-get and this is not Debian; install these by hand: {}",
            wanted.join(" ")
        );
    }
    // Only what is missing is installed, and named.
    let mut missing: Vec<String> = wanted.iter().filter(|p| !installed(p)).cloned().collect();
    if missing.is_empty() {
        printer.status(
            "Installed",
            format!("nothing to do: all {} package(s) are there", wanted.len()),
        );
        return Ok(());
    }
    // One QEMU package missing brings the other along, from one release.
    for (a, b) in [("qemu-system-x86", "qemu-utils"), ("qemu-utils", "qemu-system-x86")] {
        if missing.iter().any(|p| p == a) && wanted.iter().any(|p| p == b) && !missing.iter().any(|p| p == b) {
            missing.push(b.to_string());
        }
    }
    let packages = qemu_as_one_set(missing);
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
            // Wait for another apt or dpkg to finish, as apt itself can.
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(["install", "-y", "--no-install-recommends", "--allow-downgrades"])
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

/// QEMU's packages from one release: a newer qemu-utils from elsewhere
/// beside Debian's qemu-system-x86 makes apt remove one of them. When both
/// are asked for, both come from the system's own release.
fn qemu_as_one_set(packages: Vec<String>) -> Vec<String> {
    let has = |name: &str| packages.iter().any(|p| p == name);
    let codename = std::fs::read_to_string("/etc/os-release").ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
            .map(|c| c.trim_matches('"').to_string())
            .filter(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric()))
    });
    match codename {
        Some(release) if has("qemu-system-x86") && has("qemu-utils") => packages
            .into_iter()
            .map(|p| match p.as_str() {
                "qemu-system-x86" | "qemu-utils" => format!("{p}/{release}"),
                _ => p,
            })
            .collect(),
        _ => packages,
    }
}

/// Whether dpkg has `package` installed (a `name/release` is asked by name).
fn installed(package: &str) -> bool {
    let name = package.split('/').next().unwrap_or(package);
    Cmd::new("dpkg-query", "dpkg")
        .args(["-W", "-f=${Status}", "--", name])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out).contains("install ok installed"))
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
