//! `--xen-version`: the release named as `make src-tarball-release` names
//! it, by `make -C xen xenversion` of the pinned tree. That target echoes
//! `XEN_FULLVERSION`, made of the version lines at the top of xen/Makefile;
//! those lines (read from the pinned commit, bounded) are given to make on
//! their own, so make's own rules decide (`?=`, and `XEN_EXTRAVERSION` or
//! `XEN_VENDORVERSION` from the environment), without a checkout or the
//! rest of xen's build.

use anyhow::{anyhow, bail, Context, Result};
use git2::Repository;

use crate::git::Oid;
use crate::process::Cmd;

const VARIABLES: &[&str] = &["XEN_VERSION", "XEN_SUBVERSION", "XEN_EXTRAVERSION", "XEN_FULLVERSION"];

/// `XEN_FULLVERSION` of xen's tree at `commit` of `repo`.
pub fn of(repo: &Repository, commit: Oid, what: &str) -> Result<String> {
    let tree = repo.find_commit(commit)?.tree()?;
    let entry = tree.get_path(std::path::Path::new("xen/Makefile")).map_err(|_| {
        anyhow!(
            "{what} has no xen/Makefile at {}: --xen-version needs xen's tree",
            crate::git::short(commit)
        )
    })?;
    let blob = repo.find_blob(entry.id())?;
    if blob.size() > 1 << 20 {
        bail!("{what}: xen/Makefile is larger than 1 MiB");
    }
    let text = String::from_utf8_lossy(blob.content());
    let mut makefile = String::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let name = match words.as_slice() {
            ["export", name, ..] => *name,
            [name, ..] => *name,
            [] => continue,
        };
        if VARIABLES.contains(&name) {
            makefile.push_str(line);
            makefile.push('\n');
        }
    }
    if !makefile.contains("XEN_FULLVERSION") {
        bail!(
            "{what}: xen/Makefile at {} defines no XEN_FULLVERSION",
            crate::git::short(commit)
        );
    }
    // Nothing but these variables: no $(shell …) of a tree's can run here.
    if makefile.contains("$(shell") || makefile.contains("${shell") {
        bail!("{what}: xen/Makefile's version lines call $(shell …); refusing to run them");
    }
    makefile.push_str("xenversion:\n\t@echo $(XEN_FULLVERSION)\n");
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("Makefile");
    std::fs::write(&file, &makefile)?;
    let out = Cmd::new("make", "make")
        .arg("-s")
        .arg("--no-print-directory")
        .arg("-f")
        .arg(&file)
        .arg("xenversion")
        .cwd(dir.path())
        .output()
        .context("cannot run make for xen's version")?;
    let version = String::from_utf8_lossy(&out).trim().to_string();
    if version.is_empty() {
        bail!("{what}: `make xenversion` printed nothing");
    }
    Ok(version)
}
