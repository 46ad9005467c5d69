use std::time::Instant;

use anyhow::Result;

use super::{finished, Globals};
use crate::cli::LockArgs;
use crate::error::CheckFailed;
use crate::printer::Printer;
use crate::sync::pin_check::{self, PinCheck};
use crate::sync::{self, Mode};
use crate::validate;
use crate::workspace::{SourceKind, Workspace};

pub fn run(globals: &Globals, args: LockArgs, printer: &Printer) -> Result<()> {
    let started = Instant::now();
    let ws = globals.fetching_workspace(&args.transfer, printer)?;
    if args.check {
        return check(&ws, printer);
    }
    let _lock = ws.lock_exclusive(printer)?;
    let outcome = sync::run(&ws, &[], false, &globals.sync_options(Mode::Lock), printer)?;
    finished(printer, "locked", outcome.components.len(), started);
    printer.json(&serde_json::json!({ "command": "lock", "lock_changed": outcome.lock_changed, "components": outcome.components }));
    Ok(())
}

/// Every enabled git component pinned at its current intent, and each pin
/// what its revision names in the cache; nothing stale. No network.
fn check(ws: &Workspace, printer: &Printer) -> Result<()> {
    let lock = ws.load_lock()?;
    let cache = ws.git_cache()?;
    let mut problems = Vec::new();
    let mut verdicts = serde_json::Map::new();
    let mut not_in_url: Vec<String> = Vec::new();
    for component in ws.manifest.components.iter().filter(|c| c.enabled) {
        if ws.source(component) != SourceKind::Git {
            continue;
        }
        match lock.get(&component.name) {
            None => problems.push(format!("{}: not in sultana.lock", component.name)),
            Some(entry) if validate::redact_url(&entry.url) != validate::redact_url(&component.url) => {
                problems.push(format!(
                    "{}: locked from {} but the manifest says {}",
                    component.name, entry.url, component.url
                ))
            }
            Some(entry) if entry.revision != component.revision => problems.push(format!(
                "{}: locked for revision `{}` but the manifest says `{}`",
                component.name, entry.revision, component.revision
            )),
            Some(entry) => match cache.existing_store(&component.url) {
                Some(store) => {
                    let verdict = pin_check::check(&store, &sync::sources(component), entry);
                    if verdict.contradicts() {
                        problems.push(format!("{}: {}", component.name, verdict.describe(entry)));
                    } else if let PinCheck::Unknown { .. } = verdict {
                        printer.warn(format!("{}: {}", component.name, verdict.describe(entry)));
                    } else {
                        printer.verbose("Checked", format!("{}: {}", component.name, verdict.describe(entry)));
                    }
                    verdicts.insert(component.name.clone(), serde_json::to_value(&verdict)?);
                    // Valid, but only a fork has it: said, not failed.
                    let commit = crate::git::Oid::from_str(&entry.commit).ok();
                    if commit.is_some_and(|c| store.url_has(c) == Some(false)) {
                        printer.warn(format!(
                            "{}: {} is not in {}'s branches or tags, only in a fork (an override or a mirror)",
                            component.name,
                            entry.short(),
                            validate::redact_url(&component.url)
                        ));
                        not_in_url.push(component.name.clone());
                    }
                }
                None => printer.warn(format!(
                    "{}: not in the git cache, so its commit was not checked against `{}`; run `sultana fetch` first",
                    component.name, entry.revision
                )),
            },
        }
    }
    for name in lock.entries.keys() {
        if ws.manifest.component(name).is_none() {
            problems.push(format!("{name}: in sultana.lock but not in the manifest"));
        }
    }
    printer.json(
        &serde_json::json!({ "command": "lock", "check": true, "ok": problems.is_empty(), "problems": problems, "pins": verdicts, "not_in_url": not_in_url }),
    );
    if problems.is_empty() {
        printer.status("Checked", "sultana.lock pins every enabled component's revision");
        return Ok(());
    }
    Err(CheckFailed(format!(
        "sultana.lock does not hold: run `sultana lock`, or `sultana update NAME` for a wrong pin:\n  {}",
        problems.join("\n  ")
    ))
    .into())
}
