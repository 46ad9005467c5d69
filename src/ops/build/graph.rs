//! The build graph: which components a build involves, what each depends
//! on, and the order they build in (a component after all it needs).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};

use crate::manifest::Component;
use crate::workspace::Workspace;

/// The components a build of `names` involves: those and, transitively,
/// their enabled dependencies (manifest `depends` and recipe `depends`), in
/// an order where each comes after everything it needs (manifest order
/// among equals). A cycle is an error that names it.
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
    let members: Vec<&Component> = ws
        .manifest
        .components
        .iter()
        .filter(|c| wanted.contains(&c.name))
        .collect();
    let mut needs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &members {
        needs.insert(c.name.clone(), dependencies(ws, c)?);
    }
    let order = topological(&members.iter().map(|c| c.name.clone()).collect::<Vec<_>>(), &needs)?;
    Ok(order
        .iter()
        .filter_map(|name| members.iter().find(|c| &c.name == name).copied())
        .collect())
}

/// `names` ordered so that each comes after what it `needs` (names outside
/// the list count as done); among those ready, the given order.
pub fn topological(names: &[String], needs: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>> {
    let inside: BTreeSet<&String> = names.iter().collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < names.len() {
        let ready = names.iter().find(|n| {
            !done.contains(*n)
                && needs
                    .get(*n)
                    .is_none_or(|deps| deps.iter().all(|d| done.contains(d) || !inside.contains(d)))
        });
        match ready {
            Some(name) => {
                done.insert(name.clone());
                order.push(name.clone());
            }
            None => {
                let left: Vec<&String> = names.iter().filter(|n| !done.contains(*n)).collect();
                bail!(
                    "a dependency cycle: {} (manifest `depends` and recipe `depends` together)",
                    cycle(&left, needs).join(" → ")
                );
            }
        }
    }
    Ok(order)
}

/// One cycle among `left` (every one of which waits for another of them).
fn cycle(left: &[&String], needs: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut path: Vec<String> = Vec::new();
    let mut at = left[0].clone();
    loop {
        if let Some(i) = path.iter().position(|p| *p == at) {
            let mut ring = path[i..].to_vec();
            ring.push(at);
            return ring;
        }
        path.push(at.clone());
        let next = needs
            .get(&at)
            .and_then(|deps| deps.iter().find(|d| left.iter().any(|l| l == d)))
            .cloned();
        match next {
            Some(n) => at = n,
            None => return path,
        }
    }
}

/// Enabled dependencies of a component, from the manifest and its recipe
/// (a recipe that does not load is an error, not a component without
/// dependencies).
pub(crate) fn dependencies(ws: &Workspace, component: &Component) -> Result<Vec<String>> {
    let mut deps: Vec<String> = component.depends.clone();
    let recipe = ws.recipe(component)?;
    deps.extend(
        recipe
            .depends
            .iter()
            .filter(|d| ws.manifest.component(d).is_some())
            .cloned(),
    );
    deps.retain(|d| ws.manifest.component(d).is_some_and(|c| c.enabled));
    deps.sort();
    deps.dedup();
    Ok(deps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_follows_dependencies_and_names_a_cycle() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut needs = BTreeMap::new();
        needs.insert("a".to_string(), vec!["b".to_string()]);
        needs.insert("b".to_string(), vec!["outside".to_string()]);
        assert_eq!(topological(&names, &needs).unwrap(), ["b", "a", "c"]);
        needs.insert("b".to_string(), vec!["c".to_string()]);
        needs.insert("c".to_string(), vec!["a".to_string()]);
        let err = topological(&names, &needs).unwrap_err().to_string();
        assert!(err.contains("a → b → c → a"), "{err}");
    }
}
