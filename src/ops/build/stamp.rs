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

/// Why a component builds again (cargo's `DirtyReason`): each input that
/// changed since its last build, said in words by `Display` for `-v`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirtyReason {
    NeverBuilt,
    /// The source changed: the first changed paths (none when only its
    /// fingerprint tells).
    Source(Vec<String>),
    Recipe,
    Steps,
    /// The variables whose values changed.
    Environment(Vec<String>),
    DependencyChanged(String),
    DependencyNew(String),
    DependencyGone(String),
    /// The toolchain now, in a few words.
    Toolchain(String),
    /// Its inputs match a build restored from the cache, and this run needs
    /// a build of its own (a test needs the build tree, or no build cache).
    RestoredOnly,
    /// Nothing changed, but its staged install is not there.
    StagedInstallMissing,
}

impl std::fmt::Display for DirtyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirtyReason::NeverBuilt => f.write_str("never built here"),
            DirtyReason::Source(paths) if paths.is_empty() => f.write_str("the source changed"),
            DirtyReason::Source(paths) => write!(f, "source changed: {}", first_paths(paths)),
            DirtyReason::Recipe => f.write_str("the recipe changed"),
            DirtyReason::Steps => f.write_str("its steps changed (arguments, prefix or version)"),
            DirtyReason::Environment(keys) => write!(f, "the environment changed: {}", keys.join(", ")),
            DirtyReason::DependencyChanged(dep) => write!(f, "dependency {dep} changed"),
            DirtyReason::DependencyNew(dep) => write!(f, "dependency {dep} is new"),
            DirtyReason::DependencyGone(dep) => write!(f, "dependency {dep} is gone"),
            DirtyReason::Toolchain(now) => write!(f, "the toolchain changed (now {now})"),
            DirtyReason::RestoredOnly => {
                f.write_str("its last build was restored from the build cache, and this run builds its own")
            }
            DirtyReason::StagedInstallMissing => f.write_str("its staged install is missing"),
        }
    }
}

/// Why a component builds again: the inputs that changed since `last`,
/// the first few changed paths of the source.
pub fn reasons(
    last: Option<&Stamp>,
    now: &Inputs,
    built: &FileIndex,
    tree: &FileIndex,
    toolchain: &str,
    staged: bool,
) -> Vec<DirtyReason> {
    let Some(last) = last else {
        return vec![DirtyReason::NeverBuilt];
    };
    let was = &last.inputs;
    let mut out = Vec::new();
    if was.source != now.source {
        out.push(DirtyReason::Source(tree.changed_since(built)));
    }
    if was.recipe != now.recipe {
        out.push(DirtyReason::Recipe);
    }
    if was.steps != now.steps {
        out.push(DirtyReason::Steps);
    }
    let env = super::environment::changed(&was.env, &now.env);
    if !env.is_empty() {
        out.push(DirtyReason::Environment(env));
    }
    for (dep, key) in &now.deps {
        match was.deps.get(dep) {
            Some(old) if old == key => {}
            Some(_) => out.push(DirtyReason::DependencyChanged(dep.clone())),
            None => out.push(DirtyReason::DependencyNew(dep.clone())),
        }
    }
    for dep in was.deps.keys().filter(|d| !now.deps.contains_key(*d)) {
        out.push(DirtyReason::DependencyGone(dep.clone()));
    }
    if was.toolchain != now.toolchain {
        out.push(DirtyReason::Toolchain(toolchain.to_string()));
    }
    if out.is_empty() {
        out.push(match staged && last.restored {
            true => DirtyReason::RestoredOnly,
            false => DirtyReason::StagedInstallMissing,
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_typed_and_say_what_changed_in_words() {
        let was = Inputs {
            source: "s1".into(),
            recipe: "r".into(),
            steps: "st".into(),
            deps: [
                ("libfix".to_string(), "k1".to_string()),
                ("old".to_string(), "k".to_string()),
            ]
            .into_iter()
            .collect(),
            toolchain: "t1".into(),
            ..Inputs::default()
        };
        let now = Inputs {
            recipe: "r2".into(),
            deps: [
                ("libfix".to_string(), "k2".to_string()),
                ("new".to_string(), "k".to_string()),
            ]
            .into_iter()
            .collect(),
            toolchain: "t2".into(),
            ..was.clone()
        };
        let last = Stamp::new(was.clone());
        let empty = FileIndex::default();
        let why = reasons(Some(&last), &now, &empty, &empty, "gcc 12", true);
        assert_eq!(
            why,
            [
                DirtyReason::Recipe,
                DirtyReason::DependencyChanged("libfix".into()),
                DirtyReason::DependencyNew("new".into()),
                DirtyReason::DependencyGone("old".into()),
                DirtyReason::Toolchain("gcc 12".into()),
            ]
        );
        let words: Vec<String> = why.iter().map(ToString::to_string).collect();
        assert_eq!(words[0], "the recipe changed");
        assert_eq!(words[4], "the toolchain changed (now gcc 12)");
        assert_eq!(reasons(None, &now, &empty, &empty, "", true), [DirtyReason::NeverBuilt]);

        // Nothing changed: a restored build a run needs its own of, or a
        // staged install that is gone.
        let mut restored = Stamp::new(was.clone());
        restored.restored = true;
        assert_eq!(
            reasons(Some(&restored), &was, &empty, &empty, "", true),
            [DirtyReason::RestoredOnly]
        );
        assert_eq!(
            reasons(Some(&restored), &was, &empty, &empty, "", false),
            [DirtyReason::StagedInstallMissing]
        );
        assert_eq!(
            DirtyReason::Source(vec!["a".into(), "b".into(), "c".into(), "d".into()]).to_string(),
            "source changed: a, b, c and 1 more"
        );
    }
}
