//! The `sultana.toml` and `sultana.lock` at the root of a release tarball:
//! the root component at `path = "."` and every inlined component at its
//! `intree` path, their lock entries marked `source = "intree"`. Written from
//! the same inputs they always give the same text, and written from their
//! own parse they give themselves back (what `verify-tarball` relies on).

use crate::lock::{Lock, LockEntry};
use crate::manifest::{Component, Manifest, Submodules, Tarball};

fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", quoted.join(", "))
}

/// `components`: the root and the inlined ones, written root first and then
/// by name (their `depends` are kept only where they point at another
/// inlined component).
pub fn manifest_text(top: &str, manifest: &Manifest, tarball: &Tarball, components: &[&Component]) -> String {
    let mut components = components.to_vec();
    components.sort_by_key(|c| (c.name != tarball.root, c.name.clone()));
    let names: Vec<&str> = components.iter().map(|c| c.name.as_str()).collect();
    let mut out = format!(
        "# The manifest of the release tarball {top}. Every component is inside\n\
         # this tree (intree), so `sultana fetch --offline` and `sultana build --offline`\n\
         # work here without network; sultana.lock records the commits it was made from.\n\n\
         [workspace]\n{}prefix = {}\n\n[tarball]\nroot = {}\nname = {}\nformats = {}\n{}",
        manifest
            .workspace_name
            .as_ref()
            .map(|n| format!("name = {}\n", quote(n)))
            .unwrap_or_default(),
        quote(&manifest.prefix),
        quote(&tarball.root),
        quote(&tarball.name),
        list(&tarball.formats),
        tarball
            .creator
            .as_ref()
            .map(|c| format!("creator = {}\n", quote(c)))
            .unwrap_or_default(),
    );
    for component in &components {
        let is_root = component.name == tarball.root;
        out.push_str(&format!("\n[components.{}]\n", component.name));
        out.push_str(&format!(
            "url = {}\n",
            quote(&crate::validate::redact_url(&component.url))
        ));
        if !component.mirrors.is_empty() {
            let mirrors: Vec<String> = component
                .mirrors
                .iter()
                .map(|m| crate::validate::redact_url(m))
                .collect();
            out.push_str(&format!("mirrors = {}\n", list(&mirrors)));
        }
        out.push_str(&format!("revision = {}\n", quote(&component.revision)));
        if let Some(supplier) = &component.supplier {
            out.push_str(&format!("supplier = {}\n", quote(supplier)));
        }
        if is_root {
            out.push_str("path = \".\"\n");
        } else if let Some(intree) = &component.intree {
            out.push_str(&format!("intree = {}\n", quote(&intree.to_string_lossy())));
        }
        out.push_str(&format!("recipe = {}\n", quote(&component.recipe)));
        let depends: Vec<String> = component
            .depends
            .iter()
            .filter(|d| names.contains(&d.as_str()))
            .cloned()
            .collect();
        if !depends.is_empty() {
            out.push_str(&format!("depends = {}\n", list(&depends)));
        }
        match &component.submodules {
            Submodules::None => {}
            Submodules::All => out.push_str("submodules = true\n"),
            Submodules::Only(paths) => {
                let paths: Vec<String> = paths.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                out.push_str(&format!("submodules = {}\n", list(&paths)));
            }
        }
    }
    out
}

pub fn lock_text(entries: &[LockEntry]) -> String {
    let mut lock = Lock::default();
    for entry in entries {
        let mut entry = entry.clone();
        entry.source = Some("intree".into());
        lock.entries.insert(entry.name.clone(), entry);
    }
    lock.render()
}

/// The manifest and lock a tarball holds at its top, as its extra files.
pub(super) fn files(
    top: &str,
    manifest: &Manifest,
    tarball: &Tarball,
    components: &[&Component],
    entries: &[LockEntry],
) -> Vec<super::ExtraFile> {
    vec![
        (
            b"sultana.toml".to_vec(),
            manifest_text(top, manifest, tarball, components).into_bytes(),
            false,
        ),
        (b"sultana.lock".to_vec(), lock_text(entries).into_bytes(), false),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_manifest_gives_itself_back() {
        let manifest = Manifest::embedded_default();
        let tarball = manifest.tarball.clone().unwrap();
        let picked: Vec<&Component> = ["xen", "qemu-xen", "seabios", "blktap"]
            .iter()
            .map(|n| manifest.component(n).unwrap())
            .collect();
        let text = manifest_text("xen-4.21.0", &manifest, &tarball, &picked);
        let again = Manifest::parse(&text, "embedded", None).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let root = again.component("xen").unwrap();
        assert_eq!(root.path, std::path::Path::new("."));
        assert_eq!(root.depends, ["qemu-xen", "seabios"], "mini-os is not inlined");
        assert_eq!(again.component("blktap").unwrap().depends, ["xen"]);
        assert!(again.component("qemu-xen").unwrap().submodules.any());
        let again_tarball = again.tarball.clone().unwrap();
        let all: Vec<&Component> = again.components.iter().collect();
        assert_eq!(manifest_text("xen-4.21.0", &again, &again_tarball, &all), text);
    }
}
