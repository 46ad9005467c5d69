//! The state of each component's checkout against the manifest and the
//! lock: what `status` shows as a table and as JSON, and what other
//! commands can ask.

use anyhow::Result;
use serde::Serialize;

use super::dirt_recursive;
use crate::git::{self, Checkout, TreeState};
use crate::printer::Printer;
use crate::workspace::{SourceKind, Workspace};

/// Where a component's tree stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TreeCondition {
    Missing,
    Clean,
    Dirty,
    /// A folder that is not a git checkout.
    NotGit,
    /// An in-tree copy (a release tarball).
    Intree,
}

impl TreeCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            TreeCondition::Missing => "missing",
            TreeCondition::Clean => "clean",
            TreeCondition::Dirty => "dirty",
            TreeCondition::NotGit => "not-git",
            TreeCondition::Intree => "intree",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ComponentState {
    pub name: String,
    pub enabled: bool,
    pub source: SourceKind,
    pub path: String,
    /// The manifest's url, and where fetches go first when that is
    /// elsewhere (a local override, or a mirror).
    pub url: String,
    pub fetch_from: Option<String>,
    pub revision: String,
    pub locked_commit: Option<String>,
    pub locked_describe: Option<String>,
    pub checkout_commit: Option<String>,
    pub branch: Option<String>,
    pub state: TreeCondition,
    pub dirt: Option<git::Dirt>,
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
    /// The lock pins a different revision than the manifest asks for.
    pub lock_stale: bool,
    /// Local work sultana saved from this checkout, oldest first.
    pub backups: Vec<String>,
    /// The target of a move a killed run left half done.
    pub interrupted_move: Option<String>,
    /// The lock's commit contradicts its revision in the cache.
    pub pin_contradiction: Option<String>,
    /// The locked commit is not in the url's branches or tags.
    pub pin_not_in_url: bool,
    /// What the shared cache holds of it: `full`, `partial (tree:0)`,
    /// `shallow (depth 1)`; none before its first fetch.
    pub store: Option<String>,
}

impl ComponentState {
    /// The state in words, with everything worth knowing about it.
    pub fn describe(&self) -> String {
        let mut state = self.state.as_str().to_string();
        if let Some(dirt) = self.dirt.as_ref().filter(|d| !d.is_clean()) {
            state = format!("dirty: {}", dirt.summary());
        }
        match (self.ahead, self.behind) {
            (Some(a), Some(b)) if a > 0 || b > 0 => state.push_str(&format!(", {a} ahead / {b} behind the lock")),
            _ => {}
        }
        if self.checkout_commit.is_some() && self.checkout_commit != self.locked_commit && self.ahead.is_none() {
            state.push_str(", not at the locked commit");
        }
        if let Some(to) = &self.interrupted_move {
            state.push_str(&format!(
                ", half moved to {} by an interrupted run",
                &to[..to.len().min(12)]
            ));
        }
        if let Some(newest) = self.backups.last() {
            state.push_str(&format!(", saved work: {newest}"));
            if self.backups.len() > 1 {
                state.push_str(&format!(" (+{} older)", self.backups.len() - 1));
            }
        }
        if let Some(contradiction) = &self.pin_contradiction {
            state.push_str(&format!(", WRONG PIN: {contradiction}"));
        }
        if self.pin_not_in_url {
            state.push_str(", pin not in its url (only in a fork)");
        }
        if self.lock_stale {
            state.push_str(", lock is for another revision: run `sultana fetch`");
        }
        if let Some(from) = &self.fetch_from {
            state.push_str(&format!(", fetched from {from}"));
        }
        if !self.enabled {
            state.push_str(" (disabled)");
        }
        state
    }
}

/// The state of each of `names` (all components when empty). Reads only:
/// nothing is fetched, moved or cleaned up.
pub fn states(ws: &Workspace, names: &[String], printer: &Printer) -> Result<Vec<ComponentState>> {
    let lock = ws.load_lock()?;
    let cache = ws.git_cache()?;
    let selected = ws.manifest.select(names, true)?;
    let mut rows = Vec::new();
    for component in selected {
        let source = ws.source(component);
        let path = ws.tree_path(component);
        let entry = lock.get(&component.name);
        let mut row = ComponentState {
            name: component.name.clone(),
            enabled: component.enabled,
            source,
            path: ws.display_path(&path),
            url: crate::validate::redact_url(&component.url),
            // Where a fetch goes first (an override or a mirror), when not the url.
            fetch_from: super::resolve::sources(component)
                .first()
                .filter(|first| **first != component.url)
                .map(|first| crate::validate::redact_url(first)),
            revision: component.revision.clone(),
            locked_commit: entry.map(|e| e.commit.clone()),
            locked_describe: entry.map(|e| e.describe.clone()),
            checkout_commit: None,
            branch: None,
            state: TreeCondition::Missing,
            dirt: None,
            ahead: None,
            behind: None,
            lock_stale: source == SourceKind::Git && entry.is_some_and(|e| !e.matches(component)),
            backups: Vec::new(),
            interrupted_move: None,
            pin_contradiction: None,
            pin_not_in_url: false,
            store: None,
        };
        if let (SourceKind::Git, Some(store)) = (source, cache.existing_store(&component.url)) {
            // A store a failed first fetch left holds nothing: not "full".
            row.store = Some(if store.is_empty().unwrap_or(false) {
                "empty".to_string()
            } else {
                store.kind().to_string()
            });
        }
        if let (SourceKind::Git, Some(entry), Some(store)) = (source, entry, cache.existing_store(&component.url)) {
            let verdict = super::pin_check::check(&store, &super::sources(component), entry);
            if verdict.contradicts() {
                row.pin_contradiction = Some(verdict.describe(entry));
            }
            // A pin that came from a fork (an override or a mirror) and that
            // the url itself does not have: whoever fetches the url lacks it.
            if let Ok(commit) = crate::git::Oid::from_str(&entry.commit) {
                if store.url_has(commit) == Some(false) {
                    row.pin_not_in_url = true;
                }
            }
        }
        match git::tree_state(&path) {
            TreeState::Missing => {}
            TreeState::Other => {
                row.state = if source == SourceKind::Intree {
                    TreeCondition::Intree
                } else {
                    TreeCondition::NotGit
                }
            }
            TreeState::Git => {
                let checkout = Checkout::open(&path)?;
                row.checkout_commit = checkout.head().map(|h| h.to_string());
                row.branch = checkout.branch();
                row.backups = checkout.backups();
                row.interrupted_move = checkout.interrupted_move()?.map(|m| m.to.to_string());
                let store = cache.existing_store(&component.url);
                let dirt = dirt_recursive(&cache, &checkout, &component.url, store.as_ref(), None, printer)?;
                row.state = if dirt.is_clean() {
                    TreeCondition::Clean
                } else {
                    TreeCondition::Dirty
                };
                row.dirt = Some(dirt);
                if let Some(locked) = entry.and_then(|e| git::Oid::from_str(&e.commit).ok()) {
                    if let Some((ahead, behind)) = checkout.ahead_behind(locked) {
                        row.ahead = Some(ahead);
                        row.behind = Some(behind);
                    }
                }
            }
        }
        rows.push(row);
    }
    Ok(rows)
}
