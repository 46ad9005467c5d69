//! What a component's last build was made from (`.sultana/build/NAME.stamp`,
//! JSON): each input's hash, so that a rebuild can say which one changed,
//! and their combination, the key dependents see.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fingerprint::{self, FileIndex};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Inputs {
    /// The source tree's content (after the build, so that what an in-tree
    /// build leaves behind is not a change next time).
    pub source: String,
    /// The recipe's text.
    pub recipe: String,
    /// The rendered steps, environment, prefix and describe (`{jobs}` left
    /// symbolic, so that `-j` does not rebuild).
    pub steps: String,
    /// Each variable of the build's environment, its value hashed.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Each dependency's key.
    pub deps: BTreeMap<String, String>,
    pub toolchain: String,
}

impl Inputs {
    pub fn key(&self) -> String {
        let deps: Vec<String> = self.deps.iter().map(|(d, k)| format!("{d}={k}")).collect();
        let env: Vec<String> = self.env.iter().map(|(v, k)| format!("{v}={k}")).collect();
        fingerprint::combine(&[
            env!("CARGO_PKG_VERSION"),
            &self.source,
            &self.recipe,
            &self.steps,
            &env.join("\n"),
            &deps.join("\n"),
            &self.toolchain,
        ])
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stamp {
    pub key: String,
    pub inputs: Inputs,
    /// The build-cache key of the tree the build was made from (none for a
    /// dirty tree): only such a build may be stored later.
    #[serde(default)]
    pub cache_key: Option<String>,
    /// The staged prefix was restored from the build cache: there is no
    /// build tree, and it is no build for a run without the cache.
    #[serde(default)]
    pub restored: bool,
}

impl Stamp {
    pub fn new(inputs: Inputs) -> Stamp {
        Stamp {
            key: inputs.key(),
            inputs,
            cache_key: None,
            restored: false,
        }
    }

    /// The stamp of the last build; none when missing or unreadable (an
    /// older sultana's plain stamp too: that is one rebuild).
    pub fn load(path: &Path) -> Option<Stamp> {
        let bytes = std::fs::read(path).ok()?;
        let stamp: Stamp = serde_json::from_slice(&bytes).ok()?;
        (stamp.key == stamp.inputs.key()).then_some(stamp)
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        crate::fsutil::atomic_write(path, &serde_json::to_vec_pretty(self)?)
    }
}

/// Why a component builds again, in words for `-v`: the inputs that
/// changed since `last`, the first few changed paths of the source.
pub fn reasons(
    last: Option<&Stamp>,
    now: &Inputs,
    built: &FileIndex,
    tree: &FileIndex,
    toolchain: &str,
) -> Vec<String> {
    let Some(last) = last else {
        return vec!["never built here".into()];
    };
    let was = &last.inputs;
    let mut out = Vec::new();
    if was.source != now.source {
        let changed = tree.changed_since(built);
        out.push(match changed.len() {
            0 => "the source changed".to_string(),
            _ => format!("source changed: {}", first_paths(&changed)),
        });
    }
    if was.recipe != now.recipe {
        out.push("the recipe changed".into());
    }
    if was.steps != now.steps {
        out.push("its steps changed (arguments, prefix or version)".into());
    }
    let env = super::environment::changed(&was.env, &now.env);
    if !env.is_empty() {
        out.push(format!("the environment changed: {}", env.join(", ")));
    }
    for (dep, key) in &now.deps {
        match was.deps.get(dep) {
            Some(old) if old == key => {}
            Some(_) => out.push(format!("dependency {dep} changed")),
            None => out.push(format!("dependency {dep} is new")),
        }
    }
    for dep in was.deps.keys().filter(|d| !now.deps.contains_key(*d)) {
        out.push(format!("dependency {dep} is gone"));
    }
    if was.toolchain != now.toolchain {
        out.push(format!("the toolchain changed (now {toolchain})"));
    }
    if out.is_empty() {
        out.push("its staged install is missing".into());
    }
    out
}

/// The first few of `paths`, and how many more.
pub fn first_paths(paths: &[String]) -> String {
    let shown: Vec<&str> = paths.iter().take(3).map(String::as_str).collect();
    match paths.len() {
        n if n > 3 => format!("{} and {} more", shown.join(", "), n - 3),
        _ => shown.join(", "),
    }
}
