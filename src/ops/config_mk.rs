//! Xen's pins as make variables (`Config.mk`, `.config`, the environment),
//! in and out: `*_UPSTREAM_URL` / `*_UPSTREAM_REVISION` pairs and the trees
//! they name, so sultana can be adopted without a flag day.

pub mod make;

use std::path::Path;

use anyhow::{anyhow, bail, Result};

use crate::lock::Lock;
use crate::manifest::Manifest;
pub use make::{Makefile, Unevaluated};

/// A tree Xen's make knows: its variable prefix and sultana's component.
pub struct Tree {
    pub prefix: &'static str,
    pub component: &'static str,
    pub intree: &'static str,
    pub submodules: bool,
    pub enabled: bool,
}

pub const TREES: &[Tree] = &[
    Tree {
        prefix: "QEMU_UPSTREAM",
        component: "qemu-xen",
        intree: "tools/qemu-xen",
        submodules: true,
        enabled: true,
    },
    Tree {
        prefix: "QEMU_TRADITIONAL",
        component: "qemu-xen-traditional",
        intree: "tools/qemu-xen-traditional",
        submodules: false,
        enabled: false,
    },
    Tree {
        prefix: "SEABIOS_UPSTREAM",
        component: "seabios",
        intree: "tools/firmware/seabios-dir",
        submodules: false,
        enabled: true,
    },
    Tree {
        prefix: "OVMF_UPSTREAM",
        component: "ovmf",
        intree: "tools/firmware/ovmf-dir",
        submodules: true,
        enabled: false,
    },
    Tree {
        prefix: "MINIOS_UPSTREAM",
        component: "mini-os",
        intree: "extras/mini-os",
        submodules: false,
        enabled: true,
    },
    Tree {
        prefix: "BLKTAP_UPSTREAM",
        component: "blktap",
        intree: "tools/blktap",
        submodules: false,
        enabled: true,
    },
];

/// Names older Config.mk files and users' `.config`s still use, read the way
/// Config.mk itself maps them.
const LEGACY: &[(&str, &str)] = &[
    ("SEABIOS_UPSTREAM_TAG", "SEABIOS_UPSTREAM_REVISION"),
    ("QEMU_TAG", "QEMU_TRADITIONAL_REVISION"),
    ("QEMU_REMOTE", "QEMU_TRADITIONAL_URL"),
];

/// One tree's pin found in a file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Pin {
    pub component: String,
    pub url_var: String,
    pub url: String,
    pub revision_var: String,
    pub revision: String,
}

#[derive(Clone, Debug, Default)]
pub struct Imported {
    pub pins: Vec<Pin>,
    pub unevaluated: Vec<Unevaluated>,
    /// Legacy names that were used: (old, new).
    pub legacy: Vec<(String, String)>,
}

/// Read the pins out of a Config.mk or .config text.
pub fn import(text: &str, name: &str) -> Result<Imported> {
    let mut make = Makefile::default();
    make.read(text).map_err(|e| anyhow!("{name}: {e}"))?;
    let mut out = Imported {
        unevaluated: make.unevaluated.clone(),
        ..Imported::default()
    };
    // A legacy name set where Config.mk's own mapping did not see it (set
    // after the mapping, or the file has none): read again with the new name.
    let mut presets: Vec<(&str, String)> = Vec::new();
    for (old, new) in LEGACY {
        if make.get(new).is_none() {
            if let Some(value) = make.get(old).filter(|v| !v.is_empty()) {
                out.legacy.push((old.to_string(), new.to_string()));
                presets.push((new, value));
            }
        }
    }
    if !presets.is_empty() {
        let presets: Vec<(&str, &str)> = presets.iter().map(|(n, v)| (*n, v.as_str())).collect();
        make = Makefile::with(&presets);
        make.read(text).map_err(|e| anyhow!("{name}: {e}"))?;
    }
    for tree in TREES {
        let url_var = format!("{}_URL", tree.prefix);
        let revision_var = format!("{}_REVISION", tree.prefix);
        let (Some(url), Some(revision)) = (make.lookup(&url_var), make.lookup(&revision_var)) else {
            continue;
        };
        let url = url.map_err(|e| anyhow!("{name}: {url_var}: {e}"))?;
        let revision = revision.map_err(|e| anyhow!("{name}: {revision_var}: {e}"))?;
        let (url_calls, revision_calls) = (url.calls, revision.calls);
        let (url, revision) = (url.value.trim().to_string(), revision.value.trim().to_string());
        if url.is_empty() || revision.is_empty() {
            continue;
        }
        if url_calls || revision_calls {
            bail!("{name}: {url_var} or {revision_var} uses make functions sultana does not evaluate: `{url}` `{revision}`");
        }
        out.pins.push(Pin {
            component: tree.component.to_string(),
            url_var,
            url,
            revision_var,
            revision,
        });
    }
    Ok(out)
}

/// The xen component, when the folder holding Config.mk is a git checkout:
/// (url, revision).
pub fn xen_from_checkout(dir: &Path) -> Option<(String, String)> {
    let repo = git2::Repository::open(dir).ok()?;
    let head = repo.head().ok()?;
    let revision = if head.is_branch() {
        head.shorthand()?.to_string()
    } else {
        head.peel_to_commit().ok()?.id().to_string()
    };
    let url = repo
        .find_remote("origin")
        .ok()
        .and_then(|r| r.url().map(str::to_string))
        .filter(|u| crate::validate::check_url(u).is_ok())
        .unwrap_or_else(|| format!("file://{}", dir.display()));
    Some((url, revision))
}

fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// A manifest from imported pins (and xen itself, when known).
pub fn manifest_text(imported: &Imported, source: &str, xen: Option<(String, String, bool)>) -> String {
    let mut out = format!("# Imported by `sultana config-mk import` from {source}.\n\n[workspace]\nname = \"xen\"\n");
    if let Some((url, revision, in_place)) = &xen {
        out.push_str("\n[tarball]\nroot = \"xen\"\nname = \"xen-{desc}\"\nformats = [\"gz\"]\n");
        out.push_str(&format!(
            "\n[components.xen]\nurl = {}\nrevision = {}\n",
            quote(url),
            quote(revision)
        ));
        if *in_place {
            out.push_str("path = \".\"\n");
        }
        let depends: Vec<String> = imported
            .pins
            .iter()
            .filter(|p| TREES.iter().any(|t| t.component == p.component && t.enabled))
            .map(|p| quote(&p.component))
            .collect();
        if !depends.is_empty() {
            out.push_str(&format!("depends = [{}]\n", depends.join(", ")));
        }
    }
    for pin in &imported.pins {
        let tree = TREES.iter().find(|t| t.component == pin.component);
        out.push_str(&format!(
            "\n# {} / {}\n[components.{}]\nurl = {}\nrevision = {}\n",
            pin.url_var,
            pin.revision_var,
            pin.component,
            quote(&pin.url),
            quote(&pin.revision)
        ));
        if let Some(tree) = tree {
            out.push_str(&format!("intree = {}\n", quote(tree.intree)));
            if tree.submodules {
                out.push_str("submodules = true\n");
            }
            if !tree.enabled {
                out.push_str("enabled = false\n");
            }
        }
    }
    out
}

/// `VAR ?= value` lines for every tree Xen's make knows: the manifest's
/// intents, or with `locked` the resolved commits (what osstest writes into
/// Xen's `.config`).
pub fn export(manifest: &Manifest, lock: Option<&Lock>) -> Result<String> {
    let mut out = String::new();
    for tree in TREES {
        let Some(component) = manifest.component(tree.component) else {
            continue;
        };
        let pinned = lock
            .and_then(|l| l.get(&component.name))
            .is_some_and(|e| e.matches(component));
        if lock.is_some() && !component.enabled && !pinned {
            out.push_str(&format!(
                "# {}_*: {} is disabled and has no pin in sultana.lock\n",
                tree.prefix, component.name
            ));
            continue;
        }
        let revision = match lock {
            Some(lock) => lock
                .get(&component.name)
                .filter(|e| e.matches(component))
                .map(|e| e.commit.clone())
                .ok_or_else(|| {
                    anyhow!(
                        "`{}` has no current pin in sultana.lock; run `sultana lock`",
                        component.name
                    )
                })?,
            None => component.revision.clone(),
        };
        let url = crate::validate::redact_url(&component.url);
        for (var, value) in [
            (format!("{}_URL", tree.prefix), url.as_str()),
            (format!("{}_REVISION", tree.prefix), revision.as_str()),
        ] {
            shell_safe(&var, value)?;
            out.push_str(&format!("{var} ?= {value}\n"));
        }
    }
    Ok(out)
}

/// Xen's make hands `*_UPSTREAM_*` to the shell unquoted (`git checkout
/// $(QEMU_UPSTREAM_REVISION)`): a value with a character the shell or make
/// would split or expand is refused rather than exported. Git ref names and
/// urls may hold such characters; no real pin needs them.
fn shell_safe(var: &str, value: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_./:+,@%~=".contains(c);
    // `~` expands at the start of a word only.
    let refused = value
        .chars()
        .find(|c| !allowed(*c))
        .or(value.chars().next().filter(|c| *c == '~'));
    if let Some(c) = refused {
        return Err(anyhow!(
            "{var} would be `{}`, which holds the character {c:?}: Xen's make passes it to the shell unquoted, \
             so it is not exported; pin a commit id or a plainer name",
            value.escape_debug()
        ));
    }
    Ok(())
}

/// `QEMU_UPSTREAM_REVISION=abc sultana …` is `--set qemu-xen.revision=abc`:
/// the `--set` strings for the variables set in `env`.
pub fn environment_sets(env: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for tree in TREES {
        for (suffix, key) in [("URL", "url"), ("REVISION", "revision")] {
            let var = format!("{}_{suffix}", tree.prefix);
            if let Some(value) = env(&var).filter(|v| !v.is_empty()) {
                out.push((var, format!("{}.{key}={value}", tree.component)));
            }
        }
    }
    for (old, new) in LEGACY {
        if env(new).is_none() {
            if let Some(value) = env(old).filter(|v| !v.is_empty()) {
                let tree = TREES.iter().find(|t| new.starts_with(t.prefix));
                if let Some(tree) = tree {
                    let key = if new.ends_with("_URL") { "url" } else { "revision" };
                    out.push((old.to_string(), format!("{}.{key}={value}", tree.component)));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG_MK: &str = "\
ifeq ($(filter /%,$(XEN_ROOT)),)
$(error XEN_ROOT must be absolute)
endif
XENBITS = https://xenbits.example/git-http
QEMU_UPSTREAM_INTREE ?= $(XEN_ROOT)/tools/qemu-xen
ifneq (,$(SEABIOS_UPSTREAM_TAG))
SEABIOS_UPSTREAM_REVISION ?= $(SEABIOS_UPSTREAM_TAG)
endif
ifneq (,$(QEMU_TAG))
QEMU_TRADITIONAL_REVISION ?= $(QEMU_TAG)
endif
OVMF_UPSTREAM_URL ?= $(XENBITS)/ovmf.git
OVMF_UPSTREAM_REVISION ?= ba91d0292e593df8528b66f99c1b0b14fadc8e16
QEMU_UPSTREAM_URL ?= $(XENBITS)/qemu-xen.git
QEMU_UPSTREAM_REVISION ?= \\
    master
SEABIOS_UPSTREAM_URL := $(XENBITS)/seabios.git  # the BIOS
SEABIOS_UPSTREAM_REVISION ?= rel-1.17.0
";

    #[test]
    fn pins_legacy_names_and_conditions() {
        let imported = import(CONFIG_MK, "Config.mk").unwrap();
        let pairs: Vec<(&str, &str, &str)> = imported
            .pins
            .iter()
            .map(|p| (p.component.as_str(), p.url.as_str(), p.revision.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("qemu-xen", "https://xenbits.example/git-http/qemu-xen.git", "master"),
                ("seabios", "https://xenbits.example/git-http/seabios.git", "rel-1.17.0"),
                (
                    "ovmf",
                    "https://xenbits.example/git-http/ovmf.git",
                    "ba91d0292e593df8528b66f99c1b0b14fadc8e16"
                ),
            ]
        );
        assert_eq!(imported.unevaluated.len(), 1);
        // A .config with the legacy names.
        let with_legacy = format!("SEABIOS_UPSTREAM_TAG = rel-1.16.3\nQEMU_TAG = xen-4.20.0\nQEMU_REMOTE = https://h/qemu-trad.git\n{CONFIG_MK}");
        let imported = import(&with_legacy, "x").unwrap();
        let seabios = imported.pins.iter().find(|p| p.component == "seabios").unwrap();
        assert_eq!(seabios.revision, "rel-1.16.3");
        let trad = imported
            .pins
            .iter()
            .find(|p| p.component == "qemu-xen-traditional")
            .unwrap();
        assert_eq!(
            (trad.url.as_str(), trad.revision.as_str()),
            ("https://h/qemu-trad.git", "xen-4.20.0")
        );
        assert!(imported
            .legacy
            .contains(&("QEMU_REMOTE".to_string(), "QEMU_TRADITIONAL_URL".to_string())));
    }

    #[test]
    fn export_gives_back_every_pair() {
        let imported = import(CONFIG_MK, "Config.mk").unwrap();
        let text = manifest_text(
            &imported,
            "Config.mk",
            Some(("https://h/xen.git".into(), "master".into(), false)),
        );
        let manifest = Manifest::parse(&text, "imported", None).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let exported = export(&manifest, None).unwrap();
        let again = import(&exported, "exported").unwrap();
        assert_eq!(again.pins, imported.pins);
        assert_eq!(manifest.component("xen").unwrap().depends, ["qemu-xen", "seabios"]);
        assert!(!manifest.component("ovmf").unwrap().enabled);
    }

    #[test]
    fn environment_in_the_make_habit() {
        let env = |name: &str| match name {
            "QEMU_UPSTREAM_REVISION" => Some("abc".to_string()),
            "BLKTAP_UPSTREAM_URL" => Some("https://h/blktap.git".to_string()),
            "SEABIOS_UPSTREAM_TAG" => Some("rel-1.16.3".to_string()),
            _ => None,
        };
        let sets: Vec<String> = environment_sets(env).into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            sets,
            [
                "qemu-xen.revision=abc",
                "blktap.url=https://h/blktap.git",
                "seabios.revision=rel-1.16.3"
            ]
        );
    }
}
