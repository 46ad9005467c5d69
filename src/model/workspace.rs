//! The workspace: where `sultana.toml` lives (or the current folder with the
//! embedded default), its lock file, its state folder and its components'
//! sources.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::fsutil::FileLock;
use crate::git::{self, TreeState};
use crate::lock::{self, Lock};
use crate::manifest::{self, Component, Manifest};
use crate::printer::Printer;

#[derive(Clone, Debug, Default)]
pub struct WorkspaceOptions {
    /// `--manifest PATH`
    pub manifest: Option<PathBuf>,
    /// `--set COMP.KEY=VALUE`, in order.
    pub sets: Vec<String>,
    /// Xen's make variables in the environment (`QEMU_UPSTREAM_REVISION=…`),
    /// as (variable, `COMP.KEY=VALUE`): applied before `--set`.
    pub env_sets: Vec<(String, String)>,
}

pub struct Workspace {
    pub root: PathBuf,
    pub manifest: Manifest,
    /// The folder whose `recipes/` overrides the shipped recipes: the root,
    /// except for derived workspaces (a gate's scratch area uses its parent's).
    pub recipes_root: PathBuf,
    /// What the user should know about how the manifest was read.
    pub notes: Vec<String>,
    /// The recipes read so far, shared with derived workspaces.
    recipes: std::sync::Arc<Recipes>,
    /// `--filter`/`--depth`/`--full`: how this run fetches every component,
    /// over what the manifest says.
    pub fetch_override: Option<git::FetchMode>,
}

/// Each recipe read and checked once a run: every operation of the run
/// sees the same one, whatever happens to its file meanwhile.
#[derive(Default)]
struct Recipes(std::sync::Mutex<std::collections::BTreeMap<String, crate::recipe::Recipe>>);

/// The places a component's build writes (see `Workspace::build_paths`).
pub struct BuildPaths {
    /// Out-of-tree build folder.
    pub build: PathBuf,
    /// The staged prefix, and the one being made before it replaces it.
    pub staging: PathBuf,
    pub staging_new: PathBuf,
    /// What the last build was made from.
    pub stamp: PathBuf,
    /// The source tree's file index at the last build (hashes by stat).
    pub files: PathBuf,
    /// The key of the last configure that succeeded (autotools).
    pub configured: PathBuf,
    pub logs: PathBuf,
}

/// Where a component's tree comes from, first the first that applies: your
/// own checkout, a copy inside the root tree, a checkout sultana manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Your own checkout (`sultana.local.toml` path): never fetched or reset.
    Local,
    /// A copy inside the root tree (a release tarball): no git, no network.
    Intree,
    /// A checkout sultana manages.
    Git,
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceKind::Local => "local",
            SourceKind::Intree => "intree",
            SourceKind::Git => "git",
        })
    }
}

impl Workspace {
    /// The shared git cache, fetching through this workspace's url rewrites.
    pub fn git_cache(&self) -> Result<git::Cache> {
        Ok(git::Cache::locate()?.rewriting(&self.manifest.url_rewrites))
    }

    /// Find the workspace from the current folder (after `-C`).
    /// The workspace of the current folder: `--manifest`, else the nearest
    /// `sultana.toml` here or above. Without one, an error that says so and
    /// suggests `sultana init`: nothing is created or fetched then.
    pub fn discover(options: &WorkspaceOptions) -> Result<Workspace> {
        Workspace::find(options, false)
    }

    /// Like `discover`, but with no `sultana.toml` the embedded default
    /// manifest describes the current folder: for commands that only read
    /// (`detect`, `deps`) and work anywhere.
    pub fn discover_or_default(options: &WorkspaceOptions) -> Result<Workspace> {
        Workspace::find(options, true)
    }

    fn find(options: &WorkspaceOptions, default: bool) -> Result<Workspace> {
        let cwd = std::env::current_dir().context("cannot read the current folder")?;
        let (root, mut manifest) = match &options.manifest {
            Some(path) => {
                let path = cwd.join(path);
                let manifest = Manifest::load(&path)?;
                let root = path.parent().map(Path::to_path_buf).unwrap_or(cwd);
                (root, manifest)
            }
            None => match find_upwards(&cwd) {
                Some(path) => {
                    let manifest = Manifest::load(&path)?;
                    (path.parent().map(Path::to_path_buf).unwrap_or(cwd), manifest)
                }
                None if default => (cwd, Manifest::embedded_default()),
                None => anyhow::bail!(
                    "could not find {} in {} or any parent folder\n  hint: run `sultana init` to create one here, or point at one with -C DIR or --manifest PATH",
                    crate::manifest::FILE_NAME,
                    cwd.display()
                ),
            },
        };
        manifest::apply_local_file(&mut manifest, &root)?;
        let mut notes = Vec::new();
        for (var, setting) in &options.env_sets {
            let component = setting.split('.').next().unwrap_or_default();
            if manifest.component(component).is_some() {
                manifest::apply_set(&mut manifest, &root, setting)
                    .map_err(|e| anyhow::anyhow!("{var} in the environment: {e:#}"))?;
                notes.push(format!("{var} from the environment: --set {setting}"));
            }
        }
        for setting in &options.sets {
            manifest::apply_set(&mut manifest, &root, setting)?;
        }
        Ok(Workspace {
            recipes_root: root.clone(),
            root,
            manifest,
            notes,
            recipes: Default::default(),
            fetch_override: None,
        })
    }

    /// A workspace of its own at `root` (a gate's scratch area) with this
    /// one's manifest and recipes.
    pub fn derived(&self, root: PathBuf) -> Workspace {
        Workspace {
            root,
            manifest: self.manifest.clone(),
            recipes_root: self.recipes_root.clone(),
            notes: Vec::new(),
            recipes: self.recipes.clone(),
            fetch_override: self.fetch_override,
        }
    }

    /// How to fetch `component` into a store that holds `held`: what the
    /// command line asked, else what the manifest asked, else what the store
    /// holds. A store fetched `--depth 1` stays shallow through every plain
    /// command after, as git's does, until a job needs more or the user asks
    /// (`--full`).
    pub fn fetch_mode(&self, component: &Component, held: git::FetchMode) -> git::FetchMode {
        self.fetch_override.or(component.fetch).unwrap_or(held)
    }

    /// The recipe a component is built with (workspace override first),
    /// read once a run.
    pub fn recipe(&self, component: &Component) -> Result<crate::recipe::Recipe> {
        let mut read = self.recipes.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(recipe) = read.get(&component.recipe) {
            return Ok(recipe.clone());
        }
        let recipe = crate::recipe::Recipe::load(&self.recipes_root, &component.recipe)?;
        read.insert(component.recipe.clone(), recipe.clone());
        Ok(recipe)
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root.join(lock::FILE_NAME)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join(".sultana")
    }

    pub fn load_lock(&self) -> Result<Lock> {
        Lock::load(&self.lock_path())
    }

    /// Serialise runs that change this workspace; released on drop or death.
    pub fn lock_exclusive(&self, printer: &Printer) -> Result<FileLock> {
        self.check_confined()?;
        let lock = FileLock::exclusive(&self.state_dir().join("workspace.lock"), "the workspace", printer)?;
        // Temporary files of a write a killed run never finished: under the
        // lock, no other run of this workspace is writing them.
        for dir in [self.root.clone(), self.state_dir()] {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().starts_with(".sultana-tmp-") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(lock)
    }

    /// Refuse to write through a symlink that leads out of the workspace:
    /// the state folder, `build/`, `dist/` and every managed checkout must
    /// stay inside it, so a planted link cannot redirect a reset or a build.
    pub fn check_confined(&self) -> Result<()> {
        let mut places: Vec<PathBuf> = vec![".sultana/logs".into(), ".sultana/gate".into()];
        for component in &self.manifest.components {
            let paths = self.build_paths(&component.name);
            places.extend([paths.build, paths.staging, paths.staging_new, paths.stamp, paths.logs]);
        }
        places.extend(
            self.manifest
                .components
                .iter()
                .filter(|c| c.local.is_none() && c.path != Path::new("."))
                .map(|c| c.path.clone()),
        );
        for place in places {
            self.check_inside(&self.root.join(place))?;
        }
        Ok(())
    }

    /// Where sultana builds a component: every folder and file it writes or
    /// deletes for it (checked by `lock_exclusive`, used by the build).
    pub fn build_paths(&self, name: &str) -> BuildPaths {
        BuildPaths {
            build: self.root.join("build").join(name),
            staging: self.root.join("dist").join(name),
            staging_new: self.root.join("dist").join(format!(".{name}.new")),
            stamp: self.state_dir().join("build").join(format!("{name}.stamp")),
            files: self.state_dir().join("build").join(format!("{name}.files")),
            configured: self.state_dir().join("build").join(format!("{name}.configured")),
            logs: self.state_dir().join("logs").join("build").join(name),
        }
    }

    /// Refuse a path below the workspace that sultana is about to write or
    /// delete under when any of its folders, at any level, is a symlink
    /// leading out of the workspace (or nowhere): `build/xen`,
    /// `.sultana/logs/…`, `dist/<comp>` as much as `build` itself.
    fn check_inside(&self, path: &Path) -> Result<()> {
        let Ok(root) = self.root.canonicalize() else {
            return Ok(());
        };
        let Ok(below) = path.strip_prefix(&self.root) else {
            return Ok(());
        };
        let mut walked = self.root.clone();
        for part in below.components() {
            walked.push(part);
            let Ok(meta) = std::fs::symlink_metadata(&walked) else {
                break;
            };
            if !meta.file_type().is_symlink() {
                continue;
            }
            let target = std::fs::read_link(&walked).unwrap_or_default();
            let shown = walked.strip_prefix(&self.root).unwrap_or(&walked).display().to_string();
            match walked.canonicalize() {
                Ok(resolved) if resolved.starts_with(&root) => {}
                Ok(resolved) => bail!(
                    "`{shown}` is a symlink to `{}`, outside the workspace {}; \
                     sultana writes there, so it will not follow it (remove the link)",
                    resolved.display(),
                    self.root.display()
                ),
                Err(_) => bail!(
                    "`{shown}` is a symlink to `{}`, which does not exist; \
                     sultana writes there, so it will not follow it (remove the link)",
                    target.display()
                ),
            }
        }
        Ok(())
    }

    /// Where the component's tree is on disk.
    pub fn tree_path(&self, component: &Component) -> PathBuf {
        if let Some(local) = &component.local {
            return local.clone();
        }
        if let Some(dir) = self.intree_dir(component) {
            return dir;
        }
        self.root.join(&component.path)
    }

    pub fn source(&self, component: &Component) -> SourceKind {
        if component.local.is_some() {
            SourceKind::Local
        } else if self.intree_dir(component).is_some() {
            SourceKind::Intree
        } else if component.path == Path::new(".") {
            // The workspace itself is the root tree and a git checkout: it is
            // the developer's own, never reset by sultana.
            SourceKind::Local
        } else {
            SourceKind::Git
        }
    }

    /// The component's copy inside the root tree, when one is there and is
    /// not a git checkout of its own.
    fn intree_dir(&self, component: &Component) -> Option<PathBuf> {
        let root = self.manifest.root()?;
        let root_dir = self.root.join(&root.path);
        let dir = if root.name == component.name {
            if root.path != Path::new(".") {
                return None;
            }
            root_dir
        } else {
            root_dir.join(component.intree.as_ref()?)
        };
        (git::tree_state(&dir) == TreeState::Other).then_some(dir)
    }

    /// A user-facing path for messages: relative to the workspace when inside it.
    pub fn display_path(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.display().to_string())
    }

    pub fn check_tree_is_git(&self, component: &Component) -> Result<()> {
        let path = self.tree_path(component);
        if git::tree_state(&path) == TreeState::Other {
            bail!(
                "{} (component `{}`) exists but is not a git checkout; move it away, or use it as is with \
                 `path = \"{}\"` under [components.{}] in {}",
                self.display_path(&path),
                component.name,
                path.display(),
                component.name,
                manifest::LOCAL_FILE_NAME
            );
        }
        Ok(())
    }
}

fn find_upwards(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(manifest::FILE_NAME))
        .find(|candidate| candidate.is_file())
}
