//! Turning an intent (branch, tag, full commit id) into a commit, exactly as
//! the README says of revisions: branches are the remote's (the cache mirrors
//! the remote's branches, never a local one), tags are peeled, full ids must
//! exist, short ids are refused.

use std::collections::HashMap;

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
    #[error("revision `{rev}` is an abbreviated commit id; write the full 40-character id{}", full.as_ref().map(|f| format!(" (the cache knows it: {f})")).unwrap_or_default())]
    ShortSha { rev: String, full: Option<String> },
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
    /// Resolve `rev` against the names `source` gave the store.
    pub fn resolve_from(&self, rev: &str, source: &str) -> Result<Resolved, ResolveError> {
        resolve_in(&self.repo, rev, source, &self.namespace(source))
    }

    /// Resolve `rev` with the names of the first of `sources` that knows it
    /// (a workspace's mirrors, then its url): the resolution and that source.
    /// Failing everywhere, the error of the last source.
    pub fn resolve_among(&self, rev: &str, sources: &[String]) -> Result<(Resolved, String), ResolveError> {
        let mut last = None;
        for source in sources {
            match self.resolve_from(rev, source) {
                Ok(resolved) => return Ok((resolved, source.clone())),
                Err(e) if e.may_need_fetch() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ResolveError::NotFound {
            rev: rev.to_string(),
            url: self.url.clone(),
        }))
    }

    /// Whether resolving `rev` must ask a source first: a branch always
    /// (it moves), a tag or commit only when no source's names have it yet.
    pub fn resolve_needs_fetch(&self, rev: &str, sources: &[String]) -> bool {
        !matches!(
            self.resolve_among(rev, sources),
            Ok((
                Resolved {
                    kind: RevKind::Tag(_) | RevKind::Commit,
                    ..
                },
                _
            ))
        )
    }

    /// `git describe --tags` of a commit with the tags `source` gave.
    pub fn describe_from(&self, oid: Oid, source: &str) -> String {
        let namespace = self.namespace(source);
        let tags = format!("{namespace}tags/");
        // A describe does not change while the commit and the tags do not:
        // kept, so that a lock with nothing to change walks no history.
        let memo = self.tags_digest(&tags).map(|digest| format!("{oid} {digest}"));
        if let Some(found) = memo.as_deref().and_then(|key| self.describe_memo().get(key).cloned()) {
            return found;
        }
        let described = if namespace == "refs/" {
            self.describe(oid)
        } else {
            describe_with_tags(&self.repo, oid, &tags).unwrap_or_else(|| super::short(oid))
        };
        // Only an answer git gave: a short id is also what a failed or
        // killed describe leaves, which the next run must try again.
        if let Some(key) = memo.filter(|_| described != super::short(oid)) {
            self.remember_describe(key, &described);
        }
        described
    }

    /// A digest of the tags below `prefix` (name and target), or none when
    /// they cannot be read.
    fn tags_digest(&self, prefix: &str) -> Option<String> {
        use sha2::Digest;
        let mut lines: Vec<String> = Vec::new();
        for reference in self.repo.references_glob(&format!("{prefix}*")).ok()?.flatten() {
            let name = reference.name()?.to_string();
            let target = reference.target().map(|t| t.to_string()).unwrap_or_default();
            lines.push(format!("{name} {target}"));
        }
        lines.sort();
        let hash = sha2::Sha256::digest(lines.join("\n").as_bytes());
        Some(hash.iter().take(16).map(|b| format!("{b:02x}")).collect())
    }

    fn describe_memo_path(&self) -> std::path::PathBuf {
        self.dir.join("sultana-describes")
    }

    /// What earlier runs described: `commit tags-digest` -> describe.
    fn describe_memo(&self) -> HashMap<String, String> {
        let Ok(text) = crate::fsutil::read_bounded(&self.describe_memo_path(), 4 << 20) else {
            return HashMap::new();
        };
        String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|line| {
                let mut words = line.splitn(3, ' ');
                let (commit, digest, describe) = (words.next()?, words.next()?, words.next()?);
                Some((format!("{commit} {digest}"), describe.to_string()))
            })
            .collect()
    }

    /// Keep a describe (a cache: a lost write costs one walk later). The
    /// newest 2000 are kept.
    fn remember_describe(&self, key: String, describe: &str) {
        if describe.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return;
        }
        let text = crate::fsutil::read_bounded(&self.describe_memo_path(), 4 << 20).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(&key)).collect();
        let line = format!("{key} {describe}");
        lines.push(&line);
        let keep = &lines[lines.len().saturating_sub(2000)..];
        let _ = crate::fsutil::atomic_write(&self.describe_memo_path(), (keep.join("\n") + "\n").as_bytes());
    }

    /// `git describe --tags` of a commit, or its short id when no tag
    /// reaches it. git's own: libgit2 orders commits of one second and
    /// names annotated tags otherwise, and the scratch describe of shallow
    /// stores is git's too.
    pub fn describe(&self, oid: Oid) -> String {
        let described = crate::process::Cmd::new("git", "git")
            .env("GIT_NO_LAZY_FETCH", "1")
            .arg("--git-dir")
            .arg(&self.dir)
            .args(["describe", "--tags", "--abbrev=7"])
            .arg(oid.to_string())
            .output_with_code();
        match described {
            Ok((Some(0), out)) => {
                let text = String::from_utf8_lossy(&out).trim().to_string();
                if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    super::short(oid)
                } else {
                    text
                }
            }
            _ => super::short(oid),
        }
    }
}

/// `git describe --tags` over the tags below `prefix` (a mirror's names).
fn describe_with_tags(repo: &Repository, oid: Oid, prefix: &str) -> Option<String> {
    let mut tags: HashMap<Oid, Vec<String>> = HashMap::new();
    for reference in repo.references_glob(&format!("{prefix}*")).ok()?.flatten() {
        let (Some(name), Ok(target)) = (reference.name(), reference.peel(ObjectType::Commit)) else {
            continue;
        };
        tags.entry(target.id())
            .or_default()
            .push(name.trim_start_matches(prefix).to_string());
    }
    describe_with_map(repo, oid, &tags).map(|(text, _)| text)
}

/// `git describe --tags` with these tags (by the commit each names) over
/// the history libgit2 walks.
fn describe_with_map(repo: &Repository, oid: Oid, tags: &HashMap<Oid, Vec<String>>) -> Option<(String, Oid)> {
    let mut walk = repo.revwalk().ok()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME).ok()?;
    walk.push(oid).ok()?;
    describe_rule(oid, walk.flatten(), tags, |commit| {
        repo.graph_ahead_behind(oid, commit).ok().map(|(ahead, _)| ahead)
    })
}

/// git's rule for `describe --tags`: of the first ten tagged commits met
/// walking back from `oid` (newest first), the one with the fewest commits
/// between it and `oid` (`depth_of`), the first met on a tie. Also the
/// tagged commit.
pub(super) fn describe_rule(
    oid: Oid,
    walk: impl Iterator<Item = Oid>,
    tags: &HashMap<Oid, Vec<String>>,
    depth_of: impl Fn(Oid) -> Option<usize>,
) -> Option<(String, Oid)> {
    let mut best: Option<(usize, String, Oid)> = None;
    let mut seen = 0;
    for commit in walk {
        let Some(names) = tags.get(&commit) else { continue };
        let mut names = names.clone();
        names.sort();
        let depth = depth_of(commit)?;
        if best.as_ref().is_none_or(|(d, _, _)| depth < *d) {
            best = Some((depth, names[0].clone(), commit));
        }
        seen += 1;
        if seen == 10 {
            break;
        }
    }
    let (depth, name, tagged) = best?;
    let text = if depth == 0 {
        name
    } else {
        format!("{name}-{depth}-g{}", &oid.to_string()[..7])
    };
    Some((text, tagged))
}

pub fn resolve_in(repo: &Repository, rev: &str, url: &str, namespace: &str) -> Result<Resolved, ResolveError> {
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
    let heads = format!("{namespace}heads/");
    let tags = format!("{namespace}tags/");
    if let Some(name) = rev.strip_prefix("refs/heads/") {
        if let Some(commit) = peel(&format!("{heads}{name}"))? {
            return Ok(Resolved {
                commit,
                kind: RevKind::Branch(name.to_string()),
            });
        }
    } else if let Some(name) = rev.strip_prefix("refs/tags/") {
        if let Some(commit) = peel(&format!("{tags}{name}"))? {
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
            let branch = peel(&format!("{heads}{name}"))?;
            let tag = peel(&format!("{tags}{name}"))?;
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
        // Still refused (a short id can come to name another commit), but
        // answered with the full one when the cache knows it unambiguously.
        let full = repo
            .revparse_single(&format!("{rev}^{{commit}}"))
            .ok()
            .map(|o| o.id().to_string())
            .filter(|id| id.starts_with(&rev.to_ascii_lowercase()));
        return Err(ResolveError::ShortSha {
            rev: rev.to_string(),
            full,
        });
    }
    Err(ResolveError::NotFound {
        rev: rev.to_string(),
        url: url.to_string(),
    })
}
