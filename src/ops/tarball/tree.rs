//! The entries of a release tarball, read straight from git trees: no
//! checkout, no stash, the working trees' state irrelevant. Upstream trees
//! are data: names that could escape the tarball's folder, `.git` entries and
//! symlinks pointing outside are refused.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use git2::{ObjectType, Repository, TreeEntry};

use super::attrs::{Attr, Attributes};
use crate::git::{submodule, Oid};
use crate::manifest::Submodules;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File {
        blob: Oid,
        executable: bool,
        /// `export-subst`: expand `$Format:…$` with this commit.
        subst: Option<Oid>,
    },
    Symlink {
        target: Vec<u8>,
    },
    /// Written by sultana (the manifest, the lock, workspace recipes).
    Extra {
        content: Vec<u8>,
        executable: bool,
    },
}

#[derive(Clone, Debug)]
pub struct Entry {
    /// Relative to the tarball's top folder; no trailing `/`.
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Index of the repository that holds its objects.
    pub repo: usize,
}

/// Where a submodule's objects are, for trees that record gitlinks.
pub trait SubmoduleStores {
    /// The repository holding `commit` of `url` (fetched if need be), and
    /// its index in the list of repositories.
    fn open(&mut self, url: &str, commit: Oid, path: &str) -> Result<usize>;
    fn repo(&self, index: usize) -> &Repository;
}

/// One tree to put into the tarball: `commit` of `url` (in repository
/// `repo` of the stores) below `at`, with its submodules or not.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub repo: usize,
    pub url: &'a str,
    pub commit: Oid,
    pub at: &'a [u8],
    pub submodules: &'a Submodules,
}

/// A submodule's own submodules: all of them.
static ALL: Submodules = Submodules::All;

/// Add the tree of `source` to `out`.
pub fn collect(stores: &mut dyn SubmoduleStores, source: Source, out: &mut BTreeMap<Vec<u8>, Entry>) -> Result<()> {
    collect_depth(stores, source, out, 0)
}

fn collect_depth(
    stores: &mut dyn SubmoduleStores,
    source: Source,
    out: &mut BTreeMap<Vec<u8>, Entry>,
    depth: usize,
) -> Result<()> {
    let Source {
        repo,
        url,
        commit,
        at,
        submodules,
    } = source;
    if depth > 8 {
        bail!("{url}: submodules nest deeper than 8 levels");
    }
    let (tree_id, links) = {
        let git = stores.repo(repo);
        let tree = git
            .find_commit(commit)
            .with_context(|| format!("commit {commit} of {url} is not in the cache"))?
            .tree()?;
        let links = if submodules.any() {
            submodule::select(submodule::list(git, commit, url)?, submodules, url, commit)?
        } else {
            Vec::new()
        };
        (tree.id(), links)
    };
    let links: BTreeMap<Vec<u8>, submodule::Submodule> = links
        .into_iter()
        .map(|s| (s.path.to_string_lossy().into_owned().into_bytes(), s))
        .collect();
    let mut gitlinks = Vec::new();
    {
        let git = stores.repo(repo);
        let mut walker = Walker {
            git,
            url,
            commit,
            at,
            attrs: Attributes::default(),
            repo,
            out,
            gitlinks: &mut gitlinks,
        };
        walker.tree(&git.find_tree(tree_id)?, &[])?;
    }
    for rel in gitlinks {
        let full = join(at, &rel);
        match links.get(&rel) {
            Some(sub) => {
                let index = stores.open(&sub.url, sub.commit, &String::from_utf8_lossy(&full))?;
                let inner = Source {
                    repo: index,
                    url: &sub.url,
                    commit: sub.commit,
                    at: &full,
                    submodules: &ALL,
                };
                collect_depth(stores, inner, out, depth + 1)?;
            }
            // Like `git archive`: a submodule is an empty folder.
            None => insert(out, full, Kind::Dir, repo, url)?,
        }
    }
    Ok(())
}

struct Walker<'a> {
    git: &'a Repository,
    url: &'a str,
    commit: Oid,
    at: &'a [u8],
    attrs: Attributes,
    repo: usize,
    out: &'a mut BTreeMap<Vec<u8>, Entry>,
    gitlinks: &'a mut Vec<Vec<u8>>,
}

impl Walker<'_> {
    fn tree(&mut self, tree: &git2::Tree, dir: &[u8]) -> Result<()> {
        // A folder's own .gitattributes applies to what is below it.
        if let Some(entry) = tree.get_name(".gitattributes") {
            if entry.kind() == Some(ObjectType::Blob) {
                let blob = self.git.find_blob(entry.id())?;
                self.attrs.add_file(dir, blob.content());
            }
        }
        for entry in tree.iter() {
            self.entry(&entry, dir)?;
        }
        Ok(())
    }

    fn entry(&mut self, entry: &TreeEntry, dir: &[u8]) -> Result<()> {
        let name = entry.name_bytes();
        check_name(name).map_err(|m| {
            anyhow!(
                "{}: commit {}: entry `{}` in `{}`: {m}",
                self.url,
                self.commit,
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(dir)
            )
        })?;
        let rel = join(dir, name);
        let is_dir = entry.kind() == Some(ObjectType::Tree);
        if self.attrs.get(&rel, is_dir, Attr::ExportIgnore) {
            return Ok(());
        }
        let full = join(self.at, &rel);
        match (entry.kind(), entry.filemode()) {
            (Some(ObjectType::Tree), _) => {
                insert(self.out, full, Kind::Dir, self.repo, self.url)?;
                let tree = self.git.find_tree(entry.id())?;
                self.tree(&tree, &rel)
            }
            (Some(ObjectType::Commit), _) => {
                self.gitlinks.push(rel);
                Ok(())
            }
            (Some(ObjectType::Blob), 0o120000) => {
                let target = self.git.find_blob(entry.id())?.content().to_vec();
                check_symlink(&full, &target).map_err(|m| {
                    anyhow!(
                        "{}: commit {}: symlink `{}`: {m}",
                        self.url,
                        self.commit,
                        String::from_utf8_lossy(&rel)
                    )
                })?;
                insert(self.out, full, Kind::Symlink { target }, self.repo, self.url)
            }
            (Some(ObjectType::Blob), mode) => {
                let subst = self.attrs.get(&rel, false, Attr::ExportSubst).then_some(self.commit);
                let kind = Kind::File {
                    blob: entry.id(),
                    executable: mode & 0o111 != 0,
                    subst,
                };
                insert(self.out, full, kind, self.repo, self.url)
            }
            (kind, mode) => bail!(
                "{}: commit {}: `{}` is a {kind:?} with mode {mode:o}, which a tarball cannot hold",
                self.url,
                self.commit,
                String::from_utf8_lossy(&rel)
            ),
        }
    }
}

pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut out = Vec::with_capacity(dir.len() + 1 + name.len());
    out.extend_from_slice(dir);
    out.push(b'/');
    out.extend_from_slice(name);
    out
}

/// Put an entry in place; two sources for one path is an error (a component
/// placed where the root tree already has something).
pub fn insert(out: &mut BTreeMap<Vec<u8>, Entry>, path: Vec<u8>, kind: Kind, repo: usize, url: &str) -> Result<()> {
    if let Some(old) = out.get(&path) {
        if old.kind == Kind::Dir && kind == Kind::Dir {
            return Ok(());
        }
        bail!(
            "`{}` would be in the tarball twice (again from {url}); is a component placed over a path its root tree already has?",
            String::from_utf8_lossy(&path)
        );
    }
    out.insert(path.clone(), Entry { path, kind, repo });
    Ok(())
}

/// A tree entry name that stays inside its folder and is not git's own.
pub fn check_name(name: &[u8]) -> Result<(), String> {
    if name.is_empty() || name == b"." || name == b".." {
        return Err("not a usable name".into());
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err("contains `/` or NUL".into());
    }
    if name.eq_ignore_ascii_case(b".git") {
        return Err("`.git` is git's own folder and never goes into a tarball".into());
    }
    Ok(())
}

/// A symlink at `path` (relative to the tarball's top folder) must point
/// inside that folder: resolved alone here, through the others once all
/// entries are known (`links::check_all`).
pub fn check_symlink(path: &[u8], target: &[u8]) -> Result<(), String> {
    crate::symlinks::check_one(path, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_symlinks() {
        assert!(check_name(b"a.c").is_ok());
        for bad in [&b""[..], b".", b"..", b".git", b".GIT", b"a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_symlink(b"tools/x", b"../README").is_ok());
        assert!(check_symlink(b"tools/a/x", b"../../xen/include").is_ok());
        assert!(check_symlink(b"x", b"../etc/passwd").is_err());
        assert!(check_symlink(b"tools/x", b"../../etc").is_err());
        assert!(check_symlink(b"tools/x", b"/etc/passwd").is_err());
        assert!(check_symlink(b"tools/x", b"a/../../..").is_err());
    }
}
