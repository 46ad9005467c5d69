//! `cache` and `cache prune`: what the shared caches hold, and trimming
//! the build cache.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};

use super::Globals;
use crate::build::remote;
use crate::build::BuildCache;
use crate::cli::{CacheCommand, CachePruneArgs, CachePushArgs};
use crate::fsutil;
use crate::printer::Printer;

/// Unused this long, a build-cache entry goes at `cache prune`.
const UNUSED: Duration = Duration::from_secs(30 * 24 * 3600);

pub fn run(globals: &Globals, command: Option<CacheCommand>, printer: &Printer) -> Result<()> {
    match command {
        None => show(globals, printer),
        Some(CacheCommand::Prune(args)) => prune(args, printer),
        Some(CacheCommand::Push(args)) => push(globals, args, printer),
    }
}

/// The remote tier for the workspace: the option, the environment, the manifest.
fn remote_settings(ws: &crate::workspace::Workspace, given: Option<&str>) -> Result<Option<remote::Settings>> {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    remote::Settings::for_manifest(given, &env, &ws.manifest)
}

fn push(globals: &Globals, args: CachePushArgs, printer: &Printer) -> Result<()> {
    if globals.session.offline() {
        bail!("cache push needs the network (--offline was given)");
    }
    let ws = globals.workspace(printer)?;
    let settings = remote_settings(&ws, args.build_cache_remote.as_deref())?.ok_or_else(|| {
        anyhow!(
            "no build cache remote: give --build-cache-remote oci://HOST/REPOSITORY or set SULTANA_BUILD_CACHE_REMOTE"
        )
    })?;
    crate::tarball::sign::check_key(&args.sign)?;
    let names: Vec<String> = if args.components.is_empty() {
        ws.manifest
            .components
            .iter()
            .filter(|c| c.enabled)
            .map(|c| c.name.clone())
            .collect()
    } else {
        ws.manifest
            .select(&args.components, true)?
            .iter()
            .map(|c| c.name.clone())
            .collect()
    };
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let remote = remote::Remote::open(&settings, &env)?;
    let pushed: Vec<serde_json::Value> = crate::build::push_builds(&ws, &names, &remote, &args.sign, printer)?
        .into_iter()
        .map(|(component, key)| serde_json::json!({ "component": component, "key": key }))
        .collect();
    printer.json(&serde_json::json!({ "remote": remote.url(), "pushed": pushed }));
    Ok(())
}

fn show(globals: &Globals, printer: &Printer) -> Result<()> {
    let home = fsutil::cache_home()?;
    let git = home.join("git");
    let stores: Vec<_> = std::fs::read_dir(&git)
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()).collect())
        .unwrap_or_default();
    let git_bytes: u64 = stores.iter().map(|s| fsutil::size_of(s)).sum();
    let builds = BuildCache::locate()?;
    let entries = builds.entries();
    let build_bytes: u64 = entries.iter().map(|e| e.bytes).sum();
    let ccache = home.join("ccache");
    let ccache_bytes = fsutil::size_of(&ccache);
    let mut text = vec![
        format!("{:<8} {:>6}  {:>10}  {}", "CACHE", "ITEMS", "SIZE", "WHERE"),
        format!(
            "{:<8} {:>6}  {:>10}  {}",
            "git",
            stores.len(),
            size(git_bytes),
            git.display()
        ),
        format!(
            "{:<8} {:>6}  {:>10}  {}",
            "builds",
            entries.len(),
            size(build_bytes),
            builds.root().display()
        ),
        format!(
            "{:<8} {:>6}  {:>10}  {}",
            "ccache",
            "",
            size(ccache_bytes),
            ccache.display()
        ),
    ];
    // The remote tier: what it holds of this workspace's current builds.
    let mut remote_json = serde_json::Value::Null;
    if let Ok(ws) = crate::workspace::Workspace::discover(&globals.workspace) {
        if let Some(settings) = remote_settings(&ws, None)? {
            let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
            let names: Vec<String> = ws.manifest.components.iter().map(|c| c.name.clone()).collect();
            let keys: Vec<String> = crate::build::current_cache_keys(&ws, &names)
                .into_iter()
                .filter_map(|(_, k)| k)
                .collect();
            let held = if globals.session.offline() {
                "not asked (--offline)".to_string()
            } else {
                match remote::Remote::open(&settings, &env) {
                    Ok(remote) => keys
                        .iter()
                        .filter(|k| remote.has(k).unwrap_or(false))
                        .count()
                        .to_string(),
                    Err(e) => format!("unreachable ({e:#})"),
                }
            };
            text.push(format!(
                "{:<8} {:>6}  {:>10}  {} (of this workspace's {} builds)",
                "remote",
                held,
                "",
                settings.url,
                keys.len()
            ));
            remote_json = serde_json::json!({ "url": settings.url, "holds": held, "builds": keys.len(), "trusted": settings.trust });
        }
    }
    if printer.verbosity() == crate::printer::Verbosity::Verbose && !entries.is_empty() {
        text.push(String::new());
        text.push(format!(
            "{:<16} {:<20} {:>10}  {:<12} {}",
            "COMPONENT", "DESCRIBE", "SIZE", "USED", "KEY"
        ));
        for e in &entries {
            text.push(format!(
                "{:<16} {:<20} {:>10}  {:<12} {}",
                e.component,
                e.describe,
                size(e.bytes),
                crate::timefmt::date(e.used),
                e.key.get(..16).unwrap_or(&e.key)
            ));
        }
    }
    printer.out(text.join("\n"));
    printer.json(&serde_json::json!({
        "git": { "path": git, "stores": stores.len(), "bytes": git_bytes },
        "builds": { "path": builds.root(), "entries": entries, "bytes": build_bytes },
        "ccache": { "path": ccache, "bytes": ccache_bytes },
        "remote": remote_json,
    }));
    Ok(())
}

fn prune(args: CachePruneArgs, printer: &Printer) -> Result<()> {
    let max = args.max_size.unwrap_or(u64::MAX);
    let unused_since = SystemTime::now()
        .checked_sub(UNUSED)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    let builds = BuildCache::locate()?;
    let removed = builds.prune_older(max, unused_since)?;
    let freed: u64 = removed.iter().map(|e| e.bytes).sum();
    let left: u64 = builds.entries().iter().map(|e| e.bytes).sum();
    printer.status(
        "Pruned",
        format!(
            "{} build(s) from the build cache, {} freed, {} left",
            removed.len(),
            size(freed),
            size(left)
        ),
    );
    let mut json = serde_json::json!({ "removed": removed, "freed_bytes": freed, "left_bytes": left });
    if args.git {
        let git = crate::git::Cache::locate()?;
        let pruned = crate::git::store_users::prune(git.root(), UNUSED, printer)?;
        let freed: u64 = pruned.removed.iter().map(|s| s.bytes).sum();
        for store in &pruned.removed {
            printer.verbose(
                "Removed",
                format!("the git store of {} ({})", store.url, size(store.bytes)),
            );
        }
        let unknown = if pruned.unknown > 0 {
            format!(
                "; {} older store(s) kept: made before sultana recorded which checkouts use a store (a fetch in each workspace records it)",
                pruned.unknown
            )
        } else {
            String::new()
        };
        printer.status(
            "Pruned",
            format!(
                "{} git store(s), {} freed; {} kept (borrowed from by a checkout, holding saved work, or opened in the last 30 days){unknown}",
                pruned.removed.len(),
                size(freed),
                pruned.kept
            ),
        );
        json["git"] = serde_json::to_value(&pruned)?;
    }
    if args.ccache {
        match crate::build::prune_ccache(UNUSED)? {
            Some((before, after)) => {
                printer.status(
                    "Pruned",
                    format!(
                        "the compiler cache: {} freed, {} left",
                        size(before.saturating_sub(after)),
                        size(after)
                    ),
                );
                json["ccache"] = serde_json::json!({ "bytes_before": before, "bytes_after": after });
            }
            None => printer.warn("ccache is not on PATH: the compiler cache is left as it is"),
        }
    }
    printer.json(&json);
    Ok(())
}

fn size(bytes: u64) -> String {
    fsutil::human_size(bytes)
}
