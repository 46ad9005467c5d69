//! Saving a checkout's local work before anything overwrites or removes it:
//! a commit of its whole state (tracked changes, untracked files, the ignored
//! files at risk) under `refs/sultana/backup/`, kept in the checkout and in
//! the component's cache store, which outlives the checkout. Nested checkouts
//! (submodules, or repositories a developer put inside) are saved first, each
//! into its own store, and the parent's backup points at theirs.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::git::{Cache, Checkout};
use crate::printer::Printer;

/// One saved checkout.
#[derive(Clone, Debug)]
pub struct Saved {
    /// The checkout's folder.
    pub path: PathBuf,
    /// The backup ref in the checkout.
    pub reference: String,
    /// The cache store holding it too, and the ref there.
    pub store: PathBuf,
    pub store_ref: String,
    /// Whether it is a checkout nested inside the one being saved, or one
    /// about to be removed: restored from the cache store either way.
    pub nested: bool,
}

impl Saved {
    /// A command that brings the work back, whether the folder still exists
    /// (a moved checkout) or is gone (a dropped submodule, a distclean).
    pub fn restore_command(&self) -> String {
        let path = crate::process::shell_quote(&self.path.display().to_string());
        let store = crate::process::shell_quote(&self.store.display().to_string());
        if self.nested || !self.path.join(".git").exists() {
            format!(
                "git init -q {path} && git -C {path} fetch -q {store} {r} && git -C {path} checkout -b rescued FETCH_HEAD",
                r = self.store_ref
            )
        } else {
            format!("git -C {path} checkout -b rescued {}", self.reference)
        }
    }
}

/// What to save and why.
pub struct SaveRequest<'a> {
    pub cache: &'a Cache,
    pub checkout: &'a Checkout,
    /// The checkout's upstream url (its cache store).
    pub url: &'a str,
    /// A name for refs in the store: the component, and nested paths below.
    pub label: &'a str,
    pub reason: &'a str,
    /// Ignored files to save too.
    pub ignored: &'a [PathBuf],
    /// The checkout is removed next (distclean): restore from the store.
    pub removing: bool,
}

/// Save the checkout and every checkout nested in it. The list ends with the
/// checkout itself.
pub fn save_local_work(request: &SaveRequest, printer: &Printer) -> Result<Vec<Saved>> {
    let mut saved = Vec::new();
    let mut gitlinks = Vec::new();
    for rel in nested_checkouts(&request.checkout.path)? {
        let path = request.checkout.path.join(&rel);
        let Ok(nested) = Checkout::open(&path) else { continue };
        if nested.head().is_none() {
            continue;
        }
        let url = nested
            .repo()
            .find_remote("origin")
            .ok()
            .and_then(|r| r.url().map(str::to_string))
            .unwrap_or_else(|| request.url.to_string());
        let label = format!("{}/{}", request.label, rel.display());
        let inner = save_local_work(
            &SaveRequest {
                cache: request.cache,
                checkout: &nested,
                url: &url,
                label: &label,
                reason: request.reason,
                ignored: &[],
                removing: request.removing,
            },
            printer,
        )?;
        if let Some(top) = inner.last() {
            let oid = nested.repo().refname_to_id(&top.reference)?;
            gitlinks.push((rel.clone(), oid));
        }
        saved.extend(inner.into_iter().map(|mut s| {
            s.nested = true;
            s
        }));
    }
    let checkout = request.checkout;
    let reference = checkout.backup(request.reason, request.ignored, &gitlinks)?;
    let store = request.cache.store(request.url, printer)?;
    // The commit's id in the name: never a name taken twice in a store that
    // other workspaces' checkouts save into too.
    let oid = checkout.repo().refname_to_id(&reference)?;
    let stamp = format!(
        "{}-{}",
        reference.trim_start_matches("refs/sultana/backup/"),
        &oid.to_string()[..12]
    );
    let mut store_ref = format!("refs/sultana/backup/{}/{stamp}", request.label);
    if !git2::Reference::is_valid_name(&store_ref) {
        store_ref = format!("refs/sultana/backup/{stamp}");
    }
    // The store outlives the checkout: its objects (local commits included)
    // and a ref to them go there too, under the store's lock (which clears
    // the lock files of killed runs: never this push's).
    let _store_lock = store.lock(printer)?;
    crate::git::transfer_command()
        .arg("-C")
        .arg(&checkout.path)
        .args(["push", "--quiet", "--no-verify", "--"])
        .arg(&store.dir)
        .arg(format!("{reference}:{store_ref}"))
        .run()
        .with_context(|| format!("cannot copy the backup of {} into the cache", checkout.path.display()))?;
    crate::fault::point("backup-pushed");
    saved.push(Saved {
        path: checkout.path.clone(),
        reference,
        store: store.dir.clone(),
        store_ref,
        nested: request.removing,
    });
    Ok(saved)
}

/// Print where each saved tree went and how to bring it back: the nested
/// ones by their folder, the checkout itself (last) as `label`.
pub fn print_saved(printer: &Printer, label: &str, saved: &[Saved]) {
    for (i, s) in saved.iter().enumerate() {
        let what = if i + 1 == saved.len() {
            label.to_string()
        } else {
            s.path.display().to_string()
        };
        printer.status(
            "Saved",
            format!(
                "local work of {what} as {} (also {} in the cache); restore it with: {}",
                s.reference,
                s.store_ref,
                s.restore_command()
            ),
        );
    }
}

/// Folders below `root` that are git checkouts of their own (a `.git` entry),
/// not looked into further.
fn nested_checkouts(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let dir = root.join(&rel);
        let entries = fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries.flatten() {
            if rel.as_os_str().is_empty() && entry.file_name() == ".git" {
                continue;
            }
            let Ok(kind) = entry.file_type() else { continue };
            if !kind.is_dir() {
                continue;
            }
            let child = rel.join(entry.file_name());
            if root.join(&child).join(".git").exists() {
                out.push(child);
            } else {
                pending.push(child);
            }
        }
    }
    out.sort();
    Ok(out)
}
