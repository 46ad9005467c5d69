//! Submodules of a checkout brought to the commits its tree records, each
//! through the cache like a component.

use std::path::Path;

use anyhow::{bail, Result};

use crate::git::{submodule, Cache, Checkout, FetchMode, Need, Oid};
use crate::manifest::Submodules;
use crate::printer::Printer;

use super::place::{place_tree, OnLocalWork, Placement};
use super::{backup, Action};

/// Bring the submodules of `parent` (at `commit`) to the commits it records.
pub(super) struct SubmoduleSync<'a> {
    pub(super) cache: &'a Cache,
    pub(super) log: &'a Path,
    pub(super) force: OnLocalWork,
    pub(super) offline: bool,
    /// How a submodule's new store is fetched: as its parent's.
    pub(super) mode: FetchMode,
    /// The component's name, for backup refs.
    pub(super) component: &'a str,
    /// Which of the component's own submodules it needs (nested ones of
    /// those: all).
    pub(super) wanted: &'a Submodules,
    pub(super) printer: &'a Printer,
}

impl SubmoduleSync<'_> {
    pub(super) fn run(&self, parent: &Checkout, parent_url: &str, commit: Oid, depth: usize) -> Result<()> {
        if depth > 8 {
            bail!("submodules nest deeper than 8 levels under {}", parent.path.display());
        }
        let printer = self.printer;
        let mut subs = submodule::list(parent.repo(), commit, parent_url)?;
        if depth == 0 {
            subs = submodule::select(subs, self.wanted, self.component, commit)?;
        }
        for sub in subs {
            let store = self.cache.store(&sub.url, printer)?;
            let progress = printer.progress(&sub.name);
            let sources = [sub.url.clone()];
            let need = Need {
                sources: &sources,
                offline: self.offline,
                log: self.log,
                printer,
                progress: &progress,
            };
            store.fetch_commit(
                sub.commit,
                self.mode,
                &format!("submodule {}", sub.path.display()),
                &need,
            )?;
            let path = parent.path.join(&sub.path);
            let label = format!("submodule {}", sub.path.display());
            let backup_label = format!("{}/{}", self.component, sub.path.display());
            let placed = place_tree(
                &path,
                &Placement {
                    cache: self.cache,
                    url: &sub.url,
                    store: &store,
                    commit: sub.commit,
                    force: self.force,
                    label: &label,
                    backup_label: &backup_label,
                    printer,
                },
            )?;
            if placed.action == Action::LeftDirty {
                printer.warn(format!("{} has local changes; left as it is", path.display()));
                continue;
            }
            backup::print_saved(printer, &label, &placed.saved);
            let mut config = parent.repo().config()?;
            config.set_str(&format!("submodule.{}.url", sub.name), &sub.url)?;
            config.set_bool(&format!("submodule.{}.active", sub.name), true)?;
            let checkout = Checkout::open(&path)?;
            self.run(&checkout, &sub.url, sub.commit, depth + 1)?;
        }
        Ok(())
    }
}
