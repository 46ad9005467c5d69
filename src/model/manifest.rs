//! `sultana.toml`: what the user wants (intent), validated before anything runs.

mod ordered;
mod overrides;
mod raw;
mod url_rewrites;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use overrides::{apply_local_file, apply_local_text, apply_set, LOCAL_FILE_NAME};
pub(crate) use raw::check_party;
pub use url_rewrites::UrlRewrites;

use crate::validate;

pub const FILE_NAME: &str = "sultana.toml";

/// Manifests shipped inside the binary, by the name `init --from` accepts.
pub const SHIPPED: &[Shipped] = &[
    Shipped {
        name: "xen-unstable",
        summary: "the pins of Xen's development branch today (the default)",
        text: include_str!("../../manifests/xen-unstable.toml"),
    },
    Shipped {
        name: "xen-4.21",
        summary: "the pins Xen 4.21.0 was released with",
        text: include_str!("../../manifests/xen-4.21.toml"),
    },
    Shipped {
        name: "xen-4.20",
        summary: "the pins Xen 4.20.0 was released with",
        text: include_str!("../../manifests/xen-4.20.toml"),
    },
];

/// A manifest compiled into the binary, for `init --from NAME`.
pub struct Shipped {
    pub name: &'static str,
    /// One line for `init --help`.
    pub summary: &'static str,
    pub text: &'static str,
}
pub const DEFAULT_NAME: &str = "xen-unstable";

pub fn shipped(name: &str) -> Option<&'static str> {
    SHIPPED.iter().find(|m| m.name == name).map(|m| m.text)
}

/// An error in a manifest-like file, pointing at the offending spot.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}:{line}:{column}: {message}")]
    At {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

/// Where a manifest's text came from, for error messages.
#[derive(Clone, Debug)]
pub struct Source<'a> {
    pub name: String,
    pub text: &'a str,
}

impl Source<'_> {
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> ManifestError {
        let (line, column) = line_column(self.text, span.start);
        ManifestError::At {
            file: self.name.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    pub fn toml_error(&self, err: toml::de::Error) -> ManifestError {
        let message = err.message().trim().to_string();
        match err.span() {
            Some(span) => self.error(span, message),
            None => ManifestError::Other(format!("{}: {message}", self.name)),
        }
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

/// A daily gate for about a year and a half, at ~20 KB a flight.
pub const DEFAULT_KEEP_FLIGHTS: usize = 500;

#[derive(Clone, Debug)]
pub struct Manifest {
    /// The file it was read from; `None` for the embedded default.
    pub file: Option<PathBuf>,
    pub display_name: String,
    /// `[workspace] name`, when the manifest gives one.
    pub workspace_name: Option<String>,
    /// The install prefix builds are configured for (`[workspace] prefix`).
    pub prefix: String,
    /// How many of the newest gate flights the history keeps whole
    /// (`[workspace] keep_flights`); older ones go unless they are evidence.
    pub keep_flights: usize,
    pub tarball: Option<Tarball>,
    /// `[url_rewrites]` of the manifest and `sultana.local.toml`.
    pub url_rewrites: UrlRewrites,
    /// `[workspace] build_cache_remote`: the build cache's OCI registry.
    pub build_cache_remote: Option<String>,
    /// `[workspace] build_cache_trust`: fingerprints of the keys whose
    /// signed entries restore.
    pub build_cache_trust: Vec<String>,
    /// In dependency order (dependencies first), ties by name.
    pub components: Vec<Component>,
}

/// Which of a tree's submodules a component needs (`submodules = true`,
/// `false`, or a list of their paths).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Submodules {
    #[default]
    None,
    All,
    /// These paths (top level), each with all of its own submodules.
    Only(Vec<PathBuf>),
}

impl Submodules {
    pub fn any(&self) -> bool {
        !matches!(self, Submodules::None)
    }

    pub fn wants(&self, path: &Path) -> bool {
        match self {
            Submodules::None => false,
            Submodules::All => true,
            Submodules::Only(paths) => paths.iter().any(|p| p == path),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tarball {
    pub root: String,
    /// `[tarball] creator`: who makes the release (the SBOMs' creator).
    pub creator: Option<String>,
    pub name: String,
    pub formats: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    /// The manifest's url: what the lock, tarballs and exports record.
    pub url: String,
    /// Who supplies it (`supplier`: `NAME` or `NAME <email or url>`).
    pub supplier: Option<String>,
    pub mirrors: Vec<String>,
    /// A local override's url (`sultana.local.toml`, `--set`, a make-style
    /// variable): fetched from instead of `url` and the mirrors, and never
    /// written into a committed file.
    pub fetch_from: Option<String>,
    /// `mirrors` from `sultana.local.toml`: tried instead of the manifest's
    /// (which a release tarball's manifest keeps).
    pub local_mirrors: Option<Vec<String>>,
    pub revision: String,
    /// Checkout location relative to the workspace.
    pub path: PathBuf,
    /// Where the tree sits inside the root component's tree.
    pub intree: Option<PathBuf>,
    pub recipe: String,
    pub depends: Vec<String>,
    pub enabled: bool,
    pub submodules: Submodules,
    /// `sultana.local.toml` says: use this checkout, never fetch or reset it.
    pub local: Option<PathBuf>,
    /// How much of its history a fetch brings (`filter`/`depth`), when the
    /// manifest says (see `Workspace::fetch_mode`).
    pub fetch: Option<crate::git::FetchMode>,
}

impl Manifest {
    pub fn parse(text: &str, name: &str, file: Option<PathBuf>) -> Result<Manifest, ManifestError> {
        let source = Source {
            name: name.to_string(),
            text,
        };
        let raw: raw::RawManifest = toml::from_str(text).map_err(|e| source.toml_error(e))?;
        raw.validate(&source, file)
    }

    pub fn load(path: &Path) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Ok(Manifest::parse(
            &text,
            &path.display().to_string(),
            Some(path.to_path_buf()),
        )?)
    }

    pub fn embedded_default() -> Manifest {
        let text = shipped(DEFAULT_NAME).unwrap_or_default();
        // The shipped manifest is checked by a unit test; failing here is a build defect.
        Manifest::parse(text, &format!("<embedded {DEFAULT_NAME}.toml>"), None)
            .unwrap_or_else(|e| panic!("embedded manifest is invalid: {e}"))
    }

    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    pub fn component_mut(&mut self, name: &str) -> Option<&mut Component> {
        self.components.iter_mut().find(|c| c.name == name)
    }

    pub fn root(&self) -> Option<&Component> {
        self.tarball.as_ref().and_then(|t| self.component(&t.root))
    }

    /// Components named on the command line (or every enabled one), checked
    /// to exist. `all` includes disabled components.
    pub fn select(&self, names: &[String], all: bool) -> Result<Vec<&Component>, ManifestError> {
        if names.is_empty() {
            return Ok(self.components.iter().filter(|c| all || c.enabled).collect());
        }
        let mut picked = BTreeSet::new();
        for name in names {
            if self.component(name).is_none() {
                let known: Vec<_> = self.components.iter().map(|c| c.name.as_str()).collect();
                // As clap does for commands: the nearest name, when one is near.
                let nearest = known
                    .iter()
                    .map(|k| (strsim::jaro_winkler(name, k), *k))
                    .filter(|(score, _)| *score > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, k)| format!("; did you mean `{k}`?"))
                    .unwrap_or_default();
                return Err(ManifestError::Other(format!(
                    "no component `{name}` in {} (it has: {}){nearest}",
                    self.display_name,
                    known.join(", ")
                )));
            }
            picked.insert(name.as_str());
        }
        Ok(self
            .components
            .iter()
            .filter(|c| picked.contains(c.name.as_str()))
            .collect())
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Order components so that every dependency comes before its dependents,
/// keeping file order otherwise; report a cycle as the chain of names.
fn topo_order(entries: &[(String, Vec<String>)]) -> Result<Vec<String>, Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let deps: BTreeMap<&str, &Vec<String>> = entries.iter().map(|(name, deps)| (name.as_str(), deps)).collect();
    fn visit(
        name: &str,
        deps: &BTreeMap<&str, &Vec<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), Vec<String>> {
        match marks.get(name) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|n| n == name).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(name.to_string());
                return Err(cycle);
            }
            None => {}
        }
        marks.insert(name.to_string(), Mark::Visiting);
        stack.push(name.to_string());
        for dep in deps.get(name).into_iter().flat_map(|d| d.iter()) {
            visit(dep, deps, marks, stack, out)?;
        }
        stack.pop();
        marks.insert(name.to_string(), Mark::Done);
        out.push(name.to_string());
        Ok(())
    }
    let mut marks = BTreeMap::new();
    let mut out = Vec::new();
    for (name, _) in entries {
        visit(name, &deps, &mut marks, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

fn check_path(path: &str, allow_dot: bool) -> Result<PathBuf, String> {
    validate::check_rel_path(path, allow_dot)
}

#[cfg(test)]
mod tests;
