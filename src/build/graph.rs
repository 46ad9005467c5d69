//! The build graph: which components a build involves, what each depends
//! on, and the waves they build in (a component after all it needs).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use crate::manifest::Component;
use crate::workspace::Workspace;

/// The components a build of `names` involves: those and, transitively,
/// their enabled dependencies (manifest `depends` and recipe `depends`).
pub fn closure<'a>(ws: &'a Workspace, names: &[String]) -> Result<Vec<&'a Component>> {
    let roots = ws.manifest.select(names, false)?;
    let mut wanted: BTreeSet<String> = roots.iter().map(|c| c.name.clone()).collect();
    let mut queue: Vec<&Component> = roots;
    while let Some(component) = queue.pop() {
        for dep in dependencies(ws, component)? {
            if wanted.insert(dep.clone()) {
                if let Some(c) = ws.manifest.component(&dep) {
                    queue.push(c);
                }
            }
        }
    }
    Ok(ws
        .manifest
        .components
        .iter()
        .filter(|c| wanted.contains(&c.name))
        .collect())
}

/// Enabled dependencies of a component, from the manifest and its recipe.
pub(crate) fn dependencies(ws: &Workspace, component: &Component) -> Result<Vec<String>> {
    let mut deps: Vec<String> = component.depends.clone();
    if let Ok(recipe) = ws.recipe(component) {
        deps.extend(
            recipe
                .depends
                .iter()
                .filter(|d| ws.manifest.component(d).is_some())
                .cloned(),
        );
    }
    deps.retain(|d| ws.manifest.component(d).is_some_and(|c| c.enabled));
    deps.sort();
    deps.dedup();
    Ok(deps)
}

/// The wave of each unit: 0 for those that depend on nothing here, else
/// one more than the latest wave of what it depends on. `units` are in
/// dependency order (as `closure` gives them): names with their deps.
pub fn waves(units: &[(String, Vec<String>)]) -> BTreeMap<String, usize> {
    let mut level: BTreeMap<String, usize> = BTreeMap::new();
    for (name, deps) in units {
        let l = deps.iter().filter_map(|d| level.get(d)).max().map_or(0, |l| l + 1);
        level.insert(name.clone(), l);
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str, deps: &[&str]) -> (String, Vec<String>) {
        (name.to_string(), deps.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn each_unit_builds_after_everything_it_needs() {
        // xen needs seabios and blktap; qemu needs blktap; the module stands alone.
        let units = [
            unit("blktap", &[]),
            unit("seabios", &[]),
            unit("blktap-module", &[]),
            unit("qemu", &["blktap"]),
            unit("xen", &["seabios", "blktap", "qemu"]),
        ];
        let waves = waves(&units);
        assert_eq!(waves["blktap"], 0);
        assert_eq!(waves["seabios"], 0);
        assert_eq!(waves["blktap-module"], 0);
        assert_eq!(waves["qemu"], 1);
        assert_eq!(waves["xen"], 2, "after qemu, the latest of what it needs");
        // A dependency outside the build (taken as done) does not delay it.
        assert_eq!(super::waves(&[unit("a", &["elsewhere"])])["a"], 0);
    }
}
