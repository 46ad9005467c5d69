//! Turning an intent (branch, tag, full commit id) into a commit, exactly as
//! DESIGN.md's "Revisions" says: branches are the remote's (the cache mirrors
//! the remote's branches, never a local one), tags are peeled, full ids must
//! exist, short ids are refused.

use git2::{ObjectType, Repository};
use serde::Serialize;

use super::{Oid, Store};
use crate::validate;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum RevKind {
    Branch(String),
    Tag(String),
    Commit,
}

#[derive(Clone, Debug)]
pub struct Resolved {
    pub commit: Oid,
    pub kind: RevKind,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("revision `{rev}` is an abbreviated commit id; write the full 40-character id")]
    ShortSha { rev: String },
    #[error("revision `{rev}` names both a branch and a tag in {url}; write refs/heads/{rev} or refs/tags/{rev}")]
    Ambiguous { rev: String, url: String },
    #[error("commit {rev} is not in {url}")]
    MissingCommit { rev: String, url: String },
    #[error("revision `{rev}` is not a branch, tag or commit of {url}")]
    NotFound { rev: String, url: String },
    #[error("revision `{rev}` of {url}: {message}")]
    Git { rev: String, url: String, message: String },
}

impl ResolveError {
    /// A fetch might make the revision resolvable.
    pub fn may_need_fetch(&self) -> bool {
        matches!(self, ResolveError::MissingCommit { .. } | ResolveError::NotFound { .. })
    }
}

impl Store {
    /// Resolve `rev` against what the store holds now (no network).
    pub fn resolve(&self, rev: &str) -> Result<Resolved, ResolveError> {
        resolve_in(&self.repo, rev, &self.url)
    }

    /// Whether resolving `rev` must ask the remote first: a branch always
    /// (it moves), a tag or commit only when the store does not have it yet.
    pub fn resolve_needs_fetch(&self, rev: &str) -> bool {
        !matches!(
            self.resolve(rev),
            Ok(Resolved {
                kind: RevKind::Tag(_) | RevKind::Commit,
                ..
            })
        )
    }

    /// `git describe --tags` of a commit, or its short id when no tag reaches it.
    pub fn describe(&self, oid: Oid) -> String {
        let described = self.repo.find_commit(oid).and_then(|commit| {
            let mut options = git2::DescribeOptions::new();
            options.describe_tags();
            commit.as_object().describe(&options)?.format(None)
        });
        described.unwrap_or_else(|_| super::short(oid))
    }
}

pub fn resolve_in(repo: &Repository, rev: &str, url: &str) -> Result<Resolved, ResolveError> {
    let git_err = |e: git2::Error| ResolveError::Git {
        rev: rev.to_string(),
        url: url.to_string(),
        message: super::message(&e),
    };
    if validate::is_full_sha(rev) {
        let oid = Oid::from_str(rev).map_err(git_err)?;
        return match repo.find_commit(oid) {
            Ok(_) => Ok(Resolved {
                commit: oid,
                kind: RevKind::Commit,
            }),
            Err(_) => Err(ResolveError::MissingCommit {
                rev: rev.to_string(),
                url: url.to_string(),
            }),
        };
    }
    let peel = |refname: &str| -> Result<Option<Oid>, ResolveError> {
        match repo.find_reference(refname) {
            Ok(reference) => {
                let object = reference.peel(ObjectType::Commit).map_err(git_err)?;
                Ok(Some(object.id()))
            }
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(git_err(e)),
        }
    };
    if let Some(name) = rev.strip_prefix("refs/heads/") {
        if let Some(commit) = peel(rev)? {
            return Ok(Resolved {
                commit,
                kind: RevKind::Branch(name.to_string()),
            });
        }
    } else if let Some(name) = rev.strip_prefix("refs/tags/") {
        if let Some(commit) = peel(rev)? {
            return Ok(Resolved {
                commit,
                kind: RevKind::Tag(name.to_string()),
            });
        }
    } else {
        let mut names = vec![rev];
        if let Some(stripped) = rev.strip_prefix("origin/") {
            names.push(stripped);
        }
        for name in names {
            let branch = peel(&format!("refs/heads/{name}"))?;
            let tag = peel(&format!("refs/tags/{name}"))?;
            match (branch, tag) {
                (Some(_), Some(_)) => {
                    return Err(ResolveError::Ambiguous {
                        rev: rev.to_string(),
                        url: url.to_string(),
                    })
                }
                (Some(commit), None) => {
                    return Ok(Resolved {
                        commit,
                        kind: RevKind::Branch(name.to_string()),
                    })
                }
                (None, Some(commit)) => {
                    return Ok(Resolved {
                        commit,
                        kind: RevKind::Tag(name.to_string()),
                    })
                }
                (None, None) => {}
            }
        }
    }
    if validate::is_short_sha(rev) {
        return Err(ResolveError::ShortSha { rev: rev.to_string() });
    }
    Err(ResolveError::NotFound {
        rev: rev.to_string(),
        url: url.to_string(),
    })
}
