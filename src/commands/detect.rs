use anyhow::{bail, Result};

use super::{system_choice, Globals};
use crate::cli::DetectArgs;
use crate::detect;
use crate::printer::Printer;

pub fn run(globals: &Globals, args: DetectArgs, printer: &Printer) -> Result<()> {
    let ws = globals.workspace_or_default(printer)?;
    let choice = system_choice(&args.system);
    let mut names = args.components.clone();
    names.extend(
        choice
            .with
            .keys()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for component in ws.manifest.select(&names, true)? {
        let recipe = ws.recipe(component)?;
        if recipe.probe.is_empty() {
            lines.push(format!("{:<14} no probes in its recipe", component.name));
            continue;
        }
        let prefix = choice.with.get(&component.name).cloned().flatten();
        let detection = detect::detect(&component.name, &recipe, prefix.as_deref());
        match &detection.prefix {
            Some(p) => {
                lines.push(format!("{:<14} found in {}", component.name, p.display()));
                for probe in &detection.probes {
                    let found = probe
                        .found
                        .as_ref()
                        .map(|f| f.display().to_string())
                        .unwrap_or_default();
                    let version = probe.version.as_ref().map(|v| format!(" ({v})")).unwrap_or_default();
                    lines.push(format!("{:<14}   {}: {found}{version}", "", probe.probe));
                }
            }
            None => lines.push(format!(
                "{:<14} not found; missing: {}",
                component.name,
                detection.missing().join(", ")
            )),
        }
        rows.push(detection);
    }
    let kernel = detect::kernel_support();
    lines.push(String::new());
    lines.push(format!("kernel {}:", kernel.release));
    lines.push(format!("  blktap2 device (blktap 3.x): {}", yes(kernel.blktap2_device)));
    lines.push(format!("  /dev/xen/gntdev: {}", yes(kernel.gntdev)));
    lines.push(format!(
        "  gntdev grant copy (tapback, blktap3): {}",
        yes(kernel.gntdev_grant_copy)
    ));
    for note in &kernel.notes {
        lines.push(format!("  note: {note}"));
    }
    printer.out(lines.join("\n"));
    printer.json(&serde_json::json!({ "command": "detect", "components": rows, "kernel": kernel }));
    let asked_missing: Vec<String> = rows
        .iter()
        .filter(|d| choice.with.contains_key(&d.component) && !d.found())
        .map(|d| format!("{} (missing: {})", d.component, d.missing().join(", ")))
        .collect();
    if !asked_missing.is_empty() {
        bail!("asked for the system's copy of {}", asked_missing.join("; "));
    }
    Ok(())
}

fn yes(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}
