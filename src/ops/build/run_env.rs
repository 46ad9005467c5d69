//! The environment `sultana run`, `env` and `shell` give a command: every
//! built component's staged prefix on PATH, its libraries found through
//! LD_LIBRARY_PATH and its pkg-config files through PKG_CONFIG_PATH, ahead
//! of what the caller had. The staged binaries are linked for the install
//! prefix (`/usr/local/lib/libvhd.so.0`), which is not where they are yet.

use anyhow::Result;
use serde::Serialize;

use super::staging_root;
use crate::workspace::Workspace;

#[derive(Clone, Debug, Serialize)]
pub struct RunEnv {
    /// The components whose staged prefix is in the environment.
    pub components: Vec<String>,
    /// PATH, LD_LIBRARY_PATH and PKG_CONFIG_PATH, each with the staged
    /// folders first and the caller's value after.
    pub vars: Vec<(String, String)>,
}

/// The environment for the built components of `ws`; `inherited` gives the
/// caller's value of a variable.
pub fn run_env(ws: &Workspace, inherited: &dyn Fn(&str) -> Option<String>) -> Result<RunEnv> {
    let mut programs = Vec::new();
    let mut libraries = Vec::new();
    let mut pkgconfig = Vec::new();
    let mut components = Vec::new();
    for component in &ws.manifest.components {
        let staging = staging_root(ws, &component.name);
        if !staging.is_dir() {
            continue;
        }
        let recipe = ws.recipe(component)?;
        let prefix = staging.join(ws.manifest.prefix.trim_start_matches('/'));
        // A search path cannot quote its separators (`:`, and `;` for
        // ld.so): such a folder would put relative entries on PATH.
        if let Some(c) = prefix.to_string_lossy().chars().find(|c| [':', ';'].contains(c)) {
            anyhow::bail!(
                "the staged prefix {} holds a `{c}`, which PATH and LD_LIBRARY_PATH cannot hold: move the workspace to a folder without one",
                prefix.display()
            );
        }
        let existing = |dirs: Vec<String>| -> Vec<String> {
            dirs.into_iter()
                .map(|d| prefix.join(d))
                .filter(|p| p.is_dir())
                .map(|p| p.display().to_string())
                .collect()
        };
        let with = |usual: &[&str], extra: &[String]| -> Vec<String> {
            usual
                .iter()
                .map(|s| s.to_string())
                .chain(extra.iter().cloned())
                .collect()
        };
        programs.extend(existing(with(&["bin", "sbin"], &recipe.run.program_dirs)));
        libraries.extend(existing(with(&["lib", "lib64"], &recipe.run.library_dirs)));
        pkgconfig.extend(existing(with(
            &["lib/pkgconfig", "lib64/pkgconfig", "share/pkgconfig"],
            &[],
        )));
        components.push(component.name.clone());
    }
    // Ours first, then the caller's without ours (an `eval "$(sultana env)"`
    // run twice does not grow PATH); a variable with nothing in it is left out.
    let joined = |dirs: Vec<String>, name: &str| -> Option<(String, String)> {
        let mut all: Vec<String> = Vec::new();
        let old = inherited(name).unwrap_or_default();
        for dir in dirs
            .into_iter()
            .chain(old.split(':').filter(|d| !d.is_empty()).map(String::from))
        {
            if !all.contains(&dir) {
                all.push(dir);
            }
        }
        (!all.is_empty()).then(|| (name.to_string(), all.join(":")))
    };
    Ok(RunEnv {
        components,
        vars: [
            joined(programs, "PATH"),
            joined(libraries, "LD_LIBRARY_PATH"),
            joined(pkgconfig, "PKG_CONFIG_PATH"),
        ]
        .into_iter()
        .flatten()
        .collect(),
    })
}
