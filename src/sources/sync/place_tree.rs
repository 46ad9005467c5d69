//! One tree brought to a commit: a clone or a move, local work saved,
//! left or discarded as asked; and the dirt of a checkout with its
//! submodules'. Used for components' checkouts (`place`) and for their
//! submodules alike.

use std::path::Path;

use anyhow::{bail, Result};

use crate::fsutil;
use crate::git::{self, submodule, Cache, Checkout, Dirt, MoveMode, Oid, Store, TreeState};
use crate::printer::Printer;

use super::{backup, Action};

/// A checkout's dirt including that of its submodule checkouts; with
/// `target`, the ignored files a move there would overwrite count too.
pub fn dirt_recursive(
    cache: &Cache,
    checkout: &Checkout,
    url: &str,
    store: Option<&Store>,
    target: Option<Oid>,
    printer: &Printer,
) -> Result<Dirt> {
    let mut dirt = checkout.dirt(store, target)?;
    let Some(head) = checkout.head() else { return Ok(dirt) };
    for sub in submodule::list(checkout.repo(), head, url).unwrap_or_default() {
        let path = checkout.path.join(&sub.path);
        if git::tree_state(&path) != TreeState::Git {
            continue;
        }
        let sub_checkout = Checkout::open(&path)?;
        let sub_store = cache.store(&sub.url, printer)?;
        if !dirt_recursive(cache, &sub_checkout, &sub.url, Some(&sub_store), None, printer)?.is_clean() {
            dirt.submodules.push(sub.path.display().to_string());
        }
    }
    Ok(dirt)
}

pub(super) struct Placed {
    pub(super) action: Action,
    /// Why a tree was left as it was.
    pub(super) note: Option<String>,
    /// What was saved before the move (the checkout's own backup last).
    pub(super) saved: Vec<backup::Saved>,
}

impl Placed {
    pub(super) fn plain(action: Action) -> Placed {
        Placed {
            action,
            note: None,
            saved: Vec::new(),
        }
    }
}

/// What moving a checkout does with local work in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OnLocalWork {
    /// Leave the checkout where it is (fetch, update without --force).
    Leave,
    /// Save it under refs/sultana/backup/, then move (update --force).
    Save,
    /// Move over it: a scratch checkout holds nobody's work.
    Discard,
}

/// What placing one tree (a component's or a submodule's) needs.
pub(super) struct Placement<'a> {
    pub(super) cache: &'a Cache,
    pub(super) url: &'a str,
    pub(super) store: &'a Store,
    pub(super) commit: Oid,
    pub(super) force: OnLocalWork,
    /// The component's name, or `submodule PATH`.
    pub(super) label: &'a str,
    /// The name for backup refs in the cache store.
    pub(super) backup_label: &'a str,
    pub(super) printer: &'a Printer,
}

/// Make the tree at `path` a checkout of `p.commit`, creating, moving or
/// (with local work) leaving it, as `p.force` says.
pub(super) fn place_tree(path: &Path, p: &Placement) -> Result<Placed> {
    let placed = place_tree_as_asked(path, p)?;
    // git in the checkout reads the store's objects as its own: it must
    // know where the store's history stops and where to ask for the rest.
    if git::tree_state(path) == TreeState::Git {
        let checkout = Checkout::open(path)?;
        checkout.borrow_history(p.store)?;
        checkout.mirror_refs(p.store, p.url)?;
        checkout.follow_rewrite(p.cache.rewrites(), p.url)?;
    }
    Ok(placed)
}

fn place_tree_as_asked(path: &Path, p: &Placement) -> Result<Placed> {
    match git::tree_state(path) {
        TreeState::Missing => {
            git::links::refuse_escaping(p.store.repo(), p.commit, p.url)?;
            Checkout::create(path, p.store, p.url, p.commit)?;
            Ok(Placed::plain(Action::Cloned))
        }
        TreeState::Other => bail!("{} exists but is not a git checkout; move it away", path.display()),
        TreeState::Git => {
            // The manifest may name another url than the one the checkout
            // was made from: its objects are in that url's store now.
            Checkout::borrow_objects(path, p.store)?;
            let checkout = Checkout::open(path)?;
            checkout.follow_url(p.url)?;
            let mut saved = Vec::new();
            if let Some(interrupted) = checkout.interrupted_move()? {
                let earlier = interrupted
                    .backup
                    .as_deref()
                    .map(|b| format!("; the work saved before it is in {b}"))
                    .unwrap_or_default();
                if !interrupted.local_work.is_empty() && p.force == OnLocalWork::Leave {
                    p.printer.warn(format!(
                        "{}: a move an interrupted run left half done, and {} file(s) changed since ({}); \
                         left as it is{earlier}. Run `sultana update --force {}` to save them and finish the move",
                        p.label,
                        interrupted.local_work.len(),
                        git::preview(&interrupted.local_work),
                        p.backup_label,
                    ));
                    return Ok(Placed {
                        note: Some(format!(
                            "half moved by an interrupted run, {} file(s) changed since",
                            interrupted.local_work.len()
                        )),
                        ..Placed::plain(Action::LeftDirty)
                    });
                }
                if !interrupted.local_work.is_empty() && p.force == OnLocalWork::Save {
                    saved = save(
                        &checkout,
                        p,
                        "sultana: work done in a checkout an interrupted move left half done",
                        // Ignored files among them too (add_all skips those).
                        &interrupted.local_work,
                    )?;
                    remove_saved_files(path, &interrupted.local_work)?;
                }
                checkout.finish_move(&interrupted)?;
                p.printer.status(
                    "Repaired",
                    format!("{}: finished a move an earlier run left half done{earlier}", p.label),
                );
            }
            if checkout.head() == Some(p.commit) {
                return Ok(Placed {
                    action: Action::Fresh,
                    note: None,
                    saved,
                });
            }
            git::links::refuse_escaping(p.store.repo(), p.commit, p.url)?;
            if p.force == OnLocalWork::Discard {
                // Nobody's work is here, and no build output of another
                // commit may stay: start clean.
                checkout.move_to(p.commit, MoveMode::Scrub, None)?;
                return Ok(Placed::plain(Action::Moved));
            }
            let dirt = dirt_recursive(p.cache, &checkout, p.url, Some(p.store), Some(p.commit), p.printer)?;
            if dirt.is_clean() {
                checkout.move_to(p.commit, MoveMode::Safe, None)?;
                return Ok(Placed {
                    action: Action::Moved,
                    note: None,
                    saved,
                });
            }
            if p.force == OnLocalWork::Leave {
                return Ok(Placed {
                    action: Action::LeftDirty,
                    note: Some(dirt.summary()),
                    saved,
                });
            }
            let reason = format!(
                "sultana: local work in {} before moving to {}",
                path.display(),
                p.commit
            );
            saved.extend(save(&checkout, p, &reason, &dirt.ignored)?);
            remove_saved_files(path, &dirt.ignored)?;
            let backup = saved.last().map(|s| s.reference.clone());
            checkout.move_to(p.commit, MoveMode::Force, backup.as_deref())?;
            Ok(Placed {
                action: Action::Moved,
                note: None,
                saved,
            })
        }
    }
}

/// Files just saved that a forced move would not remove itself (ignored
/// ones) and that may stand where the new commit needs a folder. Nested
/// repositories are left where they are.
pub(super) fn remove_saved_files(root: &Path, paths: &[std::path::PathBuf]) -> Result<()> {
    for rel in paths {
        let path = root.join(rel);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
            fsutil::remove_all(&path)?;
        }
    }
    Ok(())
}

pub(super) fn save(
    checkout: &Checkout,
    p: &Placement,
    reason: &str,
    ignored: &[std::path::PathBuf],
) -> Result<Vec<backup::Saved>> {
    backup::save_local_work(
        &backup::SaveRequest {
            cache: p.cache,
            checkout,
            url: p.url,
            label: p.backup_label,
            reason,
            ignored,
            removing: false,
        },
        p.printer,
    )
}
