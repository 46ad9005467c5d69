//! The symlinks a commit records, checked before the commit is checked out:
//! a chain of them that leads out of the checkout is refused, as in tarballs.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use git2::{ObjectType, Repository, TreeWalkMode, TreeWalkResult};

use super::Oid;

/// Refuse `commit` of `url` when one of its symlinks, followed through the
/// others, leads outside the tree.
pub fn refuse_escaping(repo: &Repository, commit: Oid, url: &str) -> Result<()> {
    let tree = repo.find_commit(commit)?.tree()?;
    let mut links = BTreeMap::new();
    let mut failed = None;
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if entry.filemode() == 0o120000 && entry.kind() == Some(ObjectType::Blob) {
            match repo.find_blob(entry.id()) {
                Ok(blob) => {
                    let mut path = dir.as_bytes().to_vec();
                    path.extend_from_slice(entry.name_bytes());
                    links.insert(path, blob.content().to_vec());
                }
                Err(e) => {
                    failed = Some(e);
                    return TreeWalkResult::Abort;
                }
            }
        }
        TreeWalkResult::Ok
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    crate::symlinks::check_all(&links, std::iter::empty()).map_err(|(path, m)| {
        anyhow!(
            "{url}: commit {commit} has a symlink that is refused: `{}` {m}; nothing of it was checked out",
            String::from_utf8_lossy(&path)
        )
    })
}
