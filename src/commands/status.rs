use anyhow::Result;
use serde::Serialize;

use super::Globals;
use crate::cli::StatusArgs;
use crate::git::{self, Cache, Checkout, TreeState};
use crate::printer::Printer;
use crate::sync::dirt_recursive;
use crate::workspace::SourceKind;

#[derive(Serialize)]
struct Row {
    name: String,
    enabled: bool,
    source: SourceKind,
    path: String,
    revision: String,
    locked_commit: Option<String>,
    locked_describe: Option<String>,
    checkout_commit: Option<String>,
    branch: Option<String>,
    /// missing | clean | dirty | not-git
    state: &'static str,
    dirt: Option<git::Dirt>,
    ahead: Option<usize>,
    behind: Option<usize>,
    /// The lock pins a different revision than the manifest asks for.
    lock_stale: bool,
    /// Local work sultana saved from this checkout, oldest first.
    backups: Vec<String>,
    /// The target of a move a killed run left half done.
    interrupted_move: Option<String>,
    /// The lock's commit contradicts its revision in the cache.
    pin_contradiction: Option<String>,
}

pub fn run(globals: &Globals, args: StatusArgs, printer: &Printer) -> Result<()> {
    let ws = globals.workspace()?;
    let lock = ws.load_lock()?;
    let cache = Cache::locate()?;
    let selected = ws.manifest.select(&args.components, true)?;
    let mut rows = Vec::new();
    for component in selected {
        let source = ws.source(component);
        let path = ws.tree_path(component);
        let entry = lock.get(&component.name);
        let mut row = Row {
            name: component.name.clone(),
            enabled: component.enabled,
            source,
            path: ws.display_path(&path),
            revision: component.revision.clone(),
            locked_commit: entry.map(|e| e.commit.clone()),
            locked_describe: entry.map(|e| e.describe.clone()),
            checkout_commit: None,
            branch: None,
            state: "missing",
            dirt: None,
            ahead: None,
            behind: None,
            lock_stale: source == SourceKind::Git && entry.is_some_and(|e| !e.matches(component)),
            backups: Vec::new(),
            interrupted_move: None,
            pin_contradiction: None,
        };
        if let (SourceKind::Git, Some(entry), Some(store)) = (source, entry, cache.existing_store(&component.url)) {
            let verdict = crate::sync::pin_check::check(&store, &crate::sync::sources(component), entry);
            if verdict.contradicts() {
                row.pin_contradiction = Some(verdict.describe(entry));
            }
        }
        match git::tree_state(&path) {
            TreeState::Missing => {}
            TreeState::Other => {
                row.state = if source == SourceKind::Intree {
                    "intree"
                } else {
                    "not-git"
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
                row.state = if dirt.is_clean() { "clean" } else { "dirty" };
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
    printer.out(table(&rows));
    printer.json(&serde_json::json!({
        "workspace": ws.root,
        "manifest": ws.manifest.file,
        "components": rows,
    }));
    Ok(())
}

fn short(commit: &Option<String>) -> String {
    commit
        .as_deref()
        .map_or("-".into(), |c| c[..c.len().min(12)].to_string())
}

fn table(rows: &[Row]) -> String {
    let mut lines = vec![[
        "COMPONENT".to_string(),
        "SOURCE".into(),
        "REVISION".into(),
        "LOCKED".into(),
        "CHECKOUT".into(),
        "STATE".into(),
    ]];
    for row in rows {
        let mut state = row.state.to_string();
        if let Some(dirt) = row.dirt.as_ref().filter(|d| !d.is_clean()) {
            state = format!("dirty: {}", dirt.summary());
        }
        match (row.ahead, row.behind) {
            (Some(a), Some(b)) if a > 0 || b > 0 => state.push_str(&format!(", {a} ahead / {b} behind the lock")),
            _ => {}
        }
        if row.checkout_commit.is_some() && row.checkout_commit != row.locked_commit && row.ahead.is_none() {
            state.push_str(", not at the locked commit");
        }
        if let Some(to) = &row.interrupted_move {
            state.push_str(&format!(", half moved to {} by an interrupted run", &to[..12]));
        }
        if let Some(newest) = row.backups.last() {
            state.push_str(&format!(", saved work: {newest}"));
            if row.backups.len() > 1 {
                state.push_str(&format!(" (+{} older)", row.backups.len() - 1));
            }
        }
        if let Some(contradiction) = &row.pin_contradiction {
            state.push_str(&format!(", WRONG PIN: {contradiction}"));
        }
        if row.lock_stale {
            state.push_str(", lock is for another revision: run `sultana fetch`");
        }
        if !row.enabled {
            state.push_str(" (disabled)");
        }
        let locked = match &row.locked_describe {
            Some(d) => format!("{} {d}", short(&row.locked_commit)),
            None => short(&row.locked_commit),
        };
        lines.push([
            row.name.clone(),
            row.source.to_string(),
            row.revision.clone(),
            locked,
            short(&row.checkout_commit),
            state,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0))
        .collect();
    lines
        .iter()
        .map(|l| {
            let mut out = String::new();
            for (i, cell) in l.iter().enumerate() {
                if i == 5 {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            out.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
