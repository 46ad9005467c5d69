//! Components taken from the system (`--with-system`): probed, and what
//! their dependents see of them.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};

use super::{fingerprint, Provided, SystemChoice};
use crate::detect::{self, Detection};
use crate::manifest::Component;
use crate::recipe::{render, Vars};
use crate::workspace::Workspace;

/// Probe the components asked for with `--with-system`; an error lists what
/// is missing.
pub fn resolve_system(ws: &Workspace, choice: &SystemChoice) -> Result<BTreeMap<String, Detection>> {
    for name in choice.with.keys().chain(choice.without.iter()) {
        if ws.manifest.component(name).is_none() {
            bail!(
                "--with-system/--without-system {name}: no such component in {}",
                ws.manifest.display_name
            );
        }
    }
    if let Some(both) = choice.with.keys().find(|n| choice.without.contains(*n)) {
        bail!("{both} is given both --with-system and --without-system");
    }
    let mut found = BTreeMap::new();
    for (name, prefix) in &choice.with {
        let component = ws
            .manifest
            .component(name)
            .ok_or_else(|| anyhow!("no component {name}"))?;
        let recipe = ws.recipe(component)?;
        if recipe.probe.is_empty() {
            bail!("--with-system {name}: its recipe has no probes, so an installed copy cannot be recognised");
        }
        let detection = detect::detect(name, &recipe, prefix.as_deref());
        if !detection.found() {
            let place = prefix.as_ref().map_or_else(
                || format!("the standard places ({})", detect::STANDARD_PREFIXES.join(", ")),
                |p| p.display().to_string(),
            );
            bail!(
                "--with-system {name}: not found in {place}; missing: {}",
                detection.missing().join(", ")
            );
        }
        found.insert(name.clone(), detection);
    }
    Ok(found)
}

pub(super) fn system_unit(ws: &Workspace, component: &Component, detection: &Detection) -> Provided {
    let prefix = detection.prefix.clone().unwrap_or_default();
    let libdir = detection.libdir.clone().unwrap_or_else(|| prefix.join("lib"));
    let recipe = ws.recipe(component).ok();
    let mut vars = Vars::new();
    vars.insert("prefix".into(), prefix.display().to_string());
    vars.insert("libdir".into(), libdir.display().to_string());
    let exports = recipe.map_or((String::new(), String::new()), |r| {
        (
            render(&r.exports.cflags, &vars).unwrap_or_default(),
            render(&r.exports.libs, &vars).unwrap_or_default(),
        )
    });
    let found: Vec<String> = detection
        .probes
        .iter()
        .filter_map(|p| p.found.as_ref())
        .map(|p| p.display().to_string())
        .collect();
    Provided {
        runtime_prefix: prefix.display().to_string(),
        stamp: fingerprint::combine(&["system", &prefix.display().to_string(), &found.join("\n")]),
        // What is installed on this system is no key to share.
        cache_key: None,
        prefix,
        libdir,
        src: None,
        exports,
    }
}
