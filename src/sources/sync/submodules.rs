//! Submodules of a checkout brought to the commits its tree records, each
//! through the cache like a component.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::git::{submodule, Cache, Checkout, FetchMode, Need, Oid};
use crate::manifest::Submodules;
use crate::printer::Printer;

use super::place_tree::{place_tree, OnLocalWork, Placement};
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
    /// A submodule no longer asked for leaves its checkout, as `git
    /// submodule deinit` does: an empty folder, like the tarball's. One with
    /// local work stays, said.
    fn empty_unwanted(&self, parent: &Checkout, sub: &submodule::Submodule) -> Result<()> {
        let path = parent.path.join(&sub.path);
        if crate::git::tree_state(&path) != crate::git::TreeState::Git {
            return Ok(());
        }
        let checkout = Checkout::open(&path)?;
        let store = self.cache.store(&sub.url, self.printer)?;
        let dirt =
            super::place_tree::dirt_recursive(self.cache, &checkout, &sub.url, Some(&store), None, self.printer)?;
        if !dirt.is_clean() {
            self.printer.warn(format!(
                "{} is no longer asked for (`submodules`) but has local work ({}); left as it is",
                path.display(),
                dirt.summary()
            ));
            return Ok(());
        }
        crate::fsutil::remove_all(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        self.printer.status(
            "Emptied",
            format!("submodule {} (no longer asked for)", sub.path.display()),
        );
        Ok(())
    }

    pub(super) fn run(&self, parent: &Checkout, parent_url: &str, commit: Oid, depth: usize) -> Result<()> {
        if depth > 8 {
            bail!("submodules nest deeper than 8 levels under {}", parent.path.display());
        }
        let printer = self.printer;
        let mut subs = submodule::list(parent.repo(), commit, parent_url)?;
        if depth == 0 {
            let all = subs.clone();
            subs = submodule::select(subs, self.wanted, self.component, commit)?;
            for dropped in all.iter().filter(|s| !self.wanted.wants(&s.path)) {
                self.empty_unwanted(parent, dropped)?;
            }
        }
        for sub in subs {
            // git's rule after its own insteadOf too: a tree fetched from
            // elsewhere does not pull in a repository of this machine.
            let rewrites = self.cache.rewrites();
            if submodule::is_local_url(&rewrites.apply(&sub.url))
                && !submodule::is_local_url(&rewrites.apply(parent_url))
            {
                bail!(
                    "{parent_url}: submodule {} points at a repository on this machine once rewritten ({}); \
                     a tree fetched from elsewhere may not pull in local repositories",
                    sub.path.display(),
                    rewrites.describe(&sub.url)
                );
            }
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
