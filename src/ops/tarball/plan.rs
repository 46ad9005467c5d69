//! What a tarball is made of: the root and inlined components at their
//! pins, the files sultana writes into it, and every entry of the trees
//! read from the object stores.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use git2::Repository;

use crate::git::{self, Cache, Checkout, FetchMode, Need, Oid, TreeState};
use crate::lock::LockEntry;
use crate::manifest::{Component, Manifest, Tarball};
use crate::printer::Printer;
use crate::workspace::{SourceKind, Workspace};

use super::tree::{self, Entry, Kind};

/// One tree that goes in.
#[derive(Clone, Debug)]
pub(super) struct Part {
    pub(super) name: String,
    pub(super) url: String,
    pub(super) commit: Oid,
    /// The repository holding its objects: a cache store, or your checkout.
    pub(super) repo_dir: PathBuf,
    /// Path bytes below the top folder; empty for the root.
    pub(super) at: Vec<u8>,
    pub(super) submodules: crate::manifest::Submodules,
}

/// A file sultana writes into the tarball: path below the top folder,
/// content, executable.
pub(super) type ExtraFile = (Vec<u8>, Vec<u8>, bool);

/// Everything the tarball is made of.
pub(super) struct Plan {
    pub(super) top: String,
    pub(super) mtime: u64,
    pub(super) parts: Vec<Part>,
    /// Files sultana writes: (path below the top, content, executable).
    pub(super) extra: Vec<ExtraFile>,
}

/// The root's companions: named ones (each needs an `intree`), or every
/// enabled component that has one.
pub(super) fn pick_components<'a>(
    manifest: &'a Manifest,
    tarball: &Tarball,
    names: &[String],
    printer: &Printer,
) -> Result<Vec<&'a Component>> {
    if !names.is_empty() {
        let mut out = Vec::new();
        for component in manifest.select(names, true)? {
            if component.name == tarball.root {
                continue;
            }
            if component.intree.is_none() {
                bail!(
                    "`{}` has no `intree` path, so it has no place inside the tarball; add e.g. `intree = \"tools/{}\"` under [components.{}]",
                    component.name,
                    component.name,
                    component.name
                );
            }
            out.push(component);
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for component in manifest
        .components
        .iter()
        .filter(|c| c.enabled && c.name != tarball.root)
    {
        if component.intree.is_some() {
            out.push(component);
        } else {
            printer.warn(format!(
                "`{}` is not in the tarball: it has no `intree` path",
                component.name
            ));
        }
    }
    Ok(out)
}

/// The lock entry and object store of a component; your own checkout (a
/// local override) is taken at its HEAD.
pub(super) fn pin_of(
    ws: &Workspace,
    cache: &Cache,
    component: &Component,
    locked: Option<&LockEntry>,
    printer: &Printer,
) -> Result<(LockEntry, PathBuf)> {
    let path = ws.tree_path(component);
    if ws.source(component) == SourceKind::Local {
        let checkout = Checkout::open(&path)?;
        let head = checkout
            .head()
            .ok_or_else(|| anyhow!("{} has no commit checked out", path.display()))?;
        warn_local_changes(ws, cache, component, &checkout, printer);
        printer.warn(format!(
            "`{}` comes from your checkout {} at {} (a local override), not from a pin",
            component.name,
            path.display(),
            git::short(head)
        ));
        let describe = describe_in(checkout.repo(), head);
        let entry = LockEntry {
            name: component.name.clone(),
            url: component.url.clone(),
            revision: component.revision.clone(),
            commit: head.to_string(),
            describe,
            source: None,
            not_in_url: false,
        };
        return Ok((entry, checkout.repo().path().to_path_buf()));
    }
    let entry = locked
        .cloned()
        .ok_or_else(|| anyhow!("`{}` is not in sultana.lock", component.name))?;
    if git::tree_state(&path) == TreeState::Git {
        if let Ok(checkout) = Checkout::open(&path) {
            if checkout.head().map(|h| h.to_string()) != Some(entry.commit.clone()) {
                printer.warn(format!(
                    "{} is not checked out at its pin; the tarball has the pinned commit {}",
                    ws.display_path(&path),
                    entry.short()
                ));
            } else {
                warn_local_changes(ws, cache, component, &checkout, printer);
            }
        }
    }
    let store = cache
        .existing_store(&component.url)
        .ok_or_else(|| anyhow!("the cache has no store for {}", component.url))?;
    Ok((entry, store.dir.clone()))
}

pub(super) fn warn_local_changes(
    ws: &Workspace,
    cache: &Cache,
    component: &Component,
    checkout: &Checkout,
    printer: &Printer,
) {
    let store = cache.existing_store(&component.url);
    if let Ok(dirt) = checkout.dirt(store.as_ref(), None) {
        if dirt.changed > 0 || dirt.untracked > 0 {
            printer.warn(format!(
                "{} has local changes ({}); they are not in the tarball, which is made from commits",
                ws.display_path(&checkout.path),
                dirt.summary()
            ));
        }
    }
}

pub(super) fn describe_in(repo: &Repository, oid: Oid) -> String {
    repo.find_commit(oid)
        .and_then(|commit| {
            let mut options = git2::DescribeOptions::new();
            options.describe_tags();
            commit.as_object().describe(&options)?.format(None)
        })
        .unwrap_or_else(|_| git::short(oid))
}

pub(super) fn commit_time(repo: &Repository, commit: Oid, url: &str) -> Result<u64> {
    let commit = repo
        .find_commit(commit)
        .with_context(|| format!("commit {commit} of {url} is not in the cache"))?;
    let seconds = commit.committer().when().seconds();
    Ok(seconds.max(0) as u64)
}

/// A description that is safe in a file name.
pub(super) fn check_desc(desc: &str) -> Result<()> {
    let ok = !desc.is_empty()
        && desc.len() <= 100
        && !desc.starts_with(['.', '-'])
        && desc.chars().all(|c| c.is_ascii_alphanumeric() || "._+-~".contains(c));
    if !ok {
        bail!(
            "tarball description `{desc}` may only use letters, digits and `._+-~`, and must not start with `.` or `-`"
        );
    }
    Ok(())
}

/// The workspace's own recipes (and their test scripts) for the components
/// inside, so the unpacked tree builds with the same recipes.
pub(super) fn workspace_recipes(ws: &Workspace, components: &[&Component]) -> Result<Vec<ExtraFile>> {
    let mut out = Vec::new();
    let dir = ws.recipes_root.join("recipes");
    let mut recipes: Vec<&str> = components.iter().map(|c| c.recipe.as_str()).collect();
    recipes.sort();
    recipes.dedup();
    for recipe in recipes {
        let file = dir.join(format!("{recipe}.toml"));
        if file.is_file() {
            out.push(read_extra(&file, &format!("recipes/{recipe}.toml"))?);
        }
        let tests = dir.join("tests").join(recipe);
        if tests.is_dir() {
            let mut files = Vec::new();
            walk_files(&tests, &mut files)?;
            for file in files {
                let rel = file.strip_prefix(&dir).unwrap_or(&file);
                out.push(read_extra(&file, &format!("recipes/{}", rel.display()))?);
            }
        }
    }
    Ok(out)
}

pub(super) fn read_extra(file: &Path, at: &str) -> Result<ExtraFile> {
    let meta = std::fs::symlink_metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a plain file; recipes go into the tarball as files",
            file.display()
        );
    }
    let content = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok((at.as_bytes().to_vec(), content, meta.permissions().mode() & 0o111 != 0))
}

pub(super) fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

impl Plan {
    /// Every entry, sorted, with the folders their paths imply.
    pub(super) fn entries(&self, repos: &mut Repos) -> Result<BTreeMap<Vec<u8>, Entry>> {
        let mut out = self.git_entries(repos)?;
        add_extras(&mut out, &self.extra)?;
        Ok(out)
    }

    /// The entries of the parts' git trees.
    pub(super) fn git_entries(&self, repos: &mut Repos) -> Result<BTreeMap<Vec<u8>, Entry>> {
        let mut out: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
        for part in &self.parts {
            if !part.at.is_empty() {
                let mut below = part.at.clone();
                below.push(b'/');
                let taken = out.contains_key(&part.at)
                    || out
                        .range(below.clone()..)
                        .next()
                        .is_some_and(|(k, _)| k.starts_with(&below));
                if taken {
                    bail!(
                        "the root tree already has `{}`, where `{}` would go (its `intree` path); pick a path the root tree does not have",
                        String::from_utf8_lossy(&part.at),
                        part.name
                    );
                }
            }
            repos.open_dir(&part.repo_dir)?;
            let index = repos.index_of(&part.repo_dir);
            let source = tree::Source {
                repo: index,
                url: &part.url,
                commit: part.commit,
                at: &part.at,
                submodules: &part.submodules,
            };
            tree::collect(repos, source, &mut out)?;
        }
        add_parents(&mut out)?;
        check_links(&out)?;
        Ok(out)
    }
}

/// Every symlink of the tarball resolved through the others: none leaves it.
pub(super) fn check_links(out: &BTreeMap<Vec<u8>, Entry>) -> Result<()> {
    let symlinks: BTreeMap<Vec<u8>, Vec<u8>> = out
        .iter()
        .filter_map(|(path, e)| match &e.kind {
            Kind::Symlink { target } => Some((path.clone(), target.clone())),
            _ => None,
        })
        .collect();
    crate::symlinks::check_all(&symlinks, out.keys().map(Vec::as_slice)).map_err(|(path, m)| {
        anyhow!(
            "the tree has a symlink that is refused: `{}` {m}",
            String::from_utf8_lossy(&path)
        )
    })
}

/// Files sultana writes, and the folders they need.
pub(super) fn add_extras(out: &mut BTreeMap<Vec<u8>, Entry>, extra: &[ExtraFile]) -> Result<()> {
    for (path, content, executable) in extra {
        let kind = Kind::Extra {
            content: content.clone(),
            executable: *executable,
        };
        tree::insert(out, path.clone(), kind, 0, "sultana").map_err(|_| {
            anyhow!(
                "the root tree already has `{}`, which sultana writes into the tarball",
                String::from_utf8_lossy(path)
            )
        })?;
    }
    add_parents(out)
}

pub(super) fn add_parents(out: &mut BTreeMap<Vec<u8>, Entry>) -> Result<()> {
    let parents: Vec<Vec<u8>> = out
        .keys()
        .flat_map(|path| {
            path.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'/')
                .map(|(i, _)| path[..i].to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    for parent in parents {
        tree::insert(out, parent, Kind::Dir, 0, "sultana")?;
    }
    Ok(())
}

/// Repositories whose objects the tarball reads, opened once each; fetches
/// submodule commits the cache lacks.
pub(super) struct Repos {
    pub(super) cache: Cache,
    pub(super) offline: bool,
    /// How a submodule's new store is fetched.
    pub(super) mode: FetchMode,
    pub(super) log: PathBuf,
    pub(super) printer: Printer,
    pub(super) dirs: Vec<PathBuf>,
    pub(super) repos: Vec<Repository>,
}

impl Repos {
    pub(super) fn new(cache: Cache, offline: bool, mode: FetchMode, log: PathBuf, printer: Printer) -> Repos {
        Repos {
            cache,
            offline,
            mode,
            log,
            printer,
            dirs: Vec::new(),
            repos: Vec::new(),
        }
    }

    pub(super) fn index_of(&self, dir: &Path) -> usize {
        self.dirs.iter().position(|d| d == dir).unwrap_or(0)
    }

    pub(super) fn open_dir(&mut self, dir: &Path) -> Result<&Repository> {
        if let Some(i) = self.dirs.iter().position(|d| d == dir) {
            return Ok(&self.repos[i]);
        }
        let repo = Repository::open(dir).map_err(|e| anyhow!("cannot open {}: {}", dir.display(), git::message(&e)))?;
        self.dirs.push(dir.to_path_buf());
        self.repos.push(repo);
        Ok(&self.repos[self.repos.len() - 1])
    }
}

impl tree::SubmoduleStores for Repos {
    fn open(&mut self, url: &str, commit: Oid, path: &str) -> Result<usize> {
        let store = self.cache.store(url, &self.printer)?;
        let progress = self.printer.progress(path);
        let sources = [url.to_string()];
        let need = Need {
            sources: &sources,
            offline: self.offline,
            log: &self.log,
            printer: &self.printer,
            progress: &progress,
        };
        store.fetch_commit(commit, self.mode, &format!("submodule {path}"), &need)?;
        let dir = store.dir.clone();
        self.open_dir(&dir)?;
        Ok(self.index_of(&dir))
    }

    fn repo(&self, index: usize) -> &Repository {
        &self.repos[index]
    }
}
