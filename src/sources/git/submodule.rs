//! Submodules (qemu-xen, ovmf): read from the commit's own `.gitmodules` and
//! gitlinks, each fetched through the cache like any other tree.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use git2::{ObjectType, Repository};

use super::Oid;
use crate::validate;

#[derive(Clone, Debug)]
pub struct Submodule {
    pub name: String,
    pub path: PathBuf,
    pub url: String,
    pub commit: Oid,
}

/// Of `subs` (a tree's own), those `wanted` asks for; a path it names that
/// the tree does not have is an error naming what the tree has.
pub fn select(
    mut subs: Vec<Submodule>,
    wanted: &crate::manifest::Submodules,
    what: &str,
    commit: Oid,
) -> Result<Vec<Submodule>> {
    if let crate::manifest::Submodules::Only(paths) = wanted {
        let missing: Vec<String> = paths
            .iter()
            .filter(|p| !subs.iter().any(|s| &s.path == *p))
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            let has: Vec<String> = subs.iter().map(|s| s.path.display().to_string()).collect();
            return Err(anyhow!(
                "{what}: `submodules` names {} but its tree at {} has no such submodule (it has: {})",
                missing.join(", "),
                super::short(commit),
                if has.is_empty() {
                    "none".to_string()
                } else {
                    has.join(", ")
                }
            ));
        }
    }
    subs.retain(|s| wanted.wants(&s.path));
    Ok(subs)
}

/// The submodules recorded in `commit`: those with both a `.gitmodules`
/// entry and a gitlink at that path. Their paths and URLs are upstream data
/// and pass the same checks as a manifest's.
pub fn list(repo: &Repository, commit: Oid, parent_url: &str) -> Result<Vec<Submodule>> {
    let tree = repo.find_commit(commit)?.tree()?;
    let Ok(entry) = tree.get_path(std::path::Path::new(".gitmodules")) else {
        return Ok(Vec::new());
    };
    let blob = repo.find_blob(entry.id()).context("cannot read .gitmodules")?;
    let tmp = tempfile::NamedTempFile::new()?;
    std::fs::write(tmp.path(), blob.content())?;
    let config = git2::Config::open(tmp.path()).map_err(|e| {
        anyhow!(
            "{parent_url}: .gitmodules at {commit} cannot be parsed: {}",
            super::message(&e)
        )
    })?;

    let mut names = Vec::new();
    let mut entries = config.entries(Some(r"^submodule\..*\.path$"))?;
    while let Some(entry) = entries.next() {
        let entry = entry?;
        if let Some(name) = entry
            .name()
            .and_then(|n| n.strip_prefix("submodule."))
            .and_then(|n| n.strip_suffix(".path"))
        {
            names.push((name.to_string(), entry.value().unwrap_or_default().to_string()));
        }
    }
    let mut out = Vec::new();
    for (name, path) in names {
        let path = validate::check_rel_path(&path, false)
            .map_err(|m| anyhow!("{parent_url}: .gitmodules submodule `{name}`: {m}"))?;
        let Ok(link) = tree.get_path(&path) else { continue };
        if link.kind() != Some(ObjectType::Commit) {
            continue;
        }
        let raw_url = config
            .get_string(&format!("submodule.{name}.url"))
            .map_err(|_| anyhow!("{parent_url}: .gitmodules submodule `{name}` has no url"))?;
        let url = resolve_url(parent_url, &raw_url);
        validate::check_url(&url).map_err(|m| anyhow!("{parent_url}: .gitmodules submodule `{name}`: {m}"))?;
        // A `..` left inside the url (after the leading ones that climb from
        // the parent's) leads out of where the url seems to point: through a
        // rewrite to a local mirror, to any repository on this machine.
        if url.split(['/', ':', '\\']).any(|part| part == "..") {
            return Err(anyhow!(
                "{parent_url}: .gitmodules submodule `{name}` has a url with `..` inside ({url}); refusing it"
            ));
        }
        // git's rule (protocol.file.allow=user): a remote tree's
        // .gitmodules never reaches repositories on this machine.
        if is_local_url(&url) && !is_local_url(parent_url) {
            return Err(anyhow!(
                "{parent_url}: .gitmodules submodule `{name}` points at a repository on this machine ({url}); \
                 a tree fetched from elsewhere may not pull in local repositories (git's protocol.file.allow=user)"
            ));
        }
        out.push(Submodule {
            name,
            path,
            url,
            commit: link.id(),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// A url that git fetches with its file transport: `file://`, or a path.
pub fn is_local_url(url: &str) -> bool {
    if url.starts_with("file:") {
        return true;
    }
    if url.contains("://") {
        return false;
    }
    // scp-like `host:path` is ssh; a `:` after the first `/` is a path's.
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => slash < colon,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Resolve a `.gitmodules` URL relative to the parent's (`../dtc.git`).
pub fn resolve_url(parent: &str, url: &str) -> String {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return url.to_string();
    }
    let mut base = parent.trim_end_matches('/').to_string();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
            match base.rfind(['/', ':']) {
                Some(pos) if !base[..pos].ends_with('/') => base.truncate(pos),
                _ => {}
            }
        } else {
            break;
        }
    }
    let sep = if base.ends_with(':') { "" } else { "/" };
    format!("{base}{sep}{rest}")
}

#[cfg(test)]
mod tests {
    use super::resolve_url;

    #[test]
    fn local_urls() {
        use super::is_local_url;
        for local in [
            "file:///srv/x.git",
            "/home/x/private.git",
            "../x.git",
            "x.git",
            "./a/b:c",
        ] {
            assert!(is_local_url(local), "{local}");
        }
        for remote in ["https://h/x.git", "git@h:group/p.git", "ssh://h/x", "git://h/x"] {
            assert!(!is_local_url(remote), "{remote}");
        }
    }

    #[test]
    fn relative_urls() {
        assert_eq!(
            resolve_url("https://h/git/qemu-xen.git", "../dtc.git"),
            "https://h/git/dtc.git"
        );
        assert_eq!(
            resolve_url("https://h/git/qemu-xen.git/", "./sub"),
            "https://h/git/qemu-xen.git/sub"
        );
        assert_eq!(resolve_url("file:///srv/a/b.git", "../../c.git"), "file:///srv/c.git");
        assert_eq!(resolve_url("git@h:group/p.git", "../q.git"), "git@h:group/q.git");
        assert_eq!(
            resolve_url("https://h/a.git", "https://other/x.git"),
            "https://other/x.git"
        );
    }
}
