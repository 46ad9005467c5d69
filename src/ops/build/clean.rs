//! `clean` (build outputs) and `distclean` (also the checkouts).

use std::fs;

use anyhow::{bail, Result};

use super::{build_dir, log_dir, staging_root, stamp_path};
use crate::fsutil;
use crate::git::{self, Checkout, TreeState};
use crate::printer::Printer;
use crate::process::Cmd;
use crate::recipe::BuildDir;
use crate::workspace::{SourceKind, Workspace};

pub fn clean(ws: &Workspace, names: &[String], printer: &Printer) -> Result<Vec<String>> {
    let mut cleaned = Vec::new();
    for component in ws.manifest.select(names, true)? {
        let name = &component.name;
        let paths = ws.build_paths(name);
        let outputs = [
            build_dir(ws, name),
            staging_root(ws, name),
            stamp_path(ws, name),
            paths.files,
            paths.configured,
            log_dir(ws, name),
        ];
        // Only what sultana built is cleaned: an upstream's own `clean`
        // target never runs in a tree it did not build.
        let built = outputs.iter().any(|p| fs::symlink_metadata(p).is_ok());
        if !built {
            printer.verbose("Clean", format!("{name}: nothing built"));
            continue;
        }
        for path in &outputs {
            fsutil::remove_all(path)?;
        }
        let src = ws.tree_path(component);
        if let Ok(recipe) = ws.recipe(component) {
            if let (BuildDir::InTree, Some(argv), true) = (recipe.build_dir(), &recipe.clean, src.is_dir()) {
                if let Some((program, args)) = argv.split_first() {
                    let run = Cmd::new(program, super::tool_package(program))
                        .args(args)
                        .cwd(&src)
                        .run();
                    if let Err(e) = run {
                        printer.warn(format!(
                            "{name}: `{}` in {} failed: {}",
                            argv.join(" "),
                            src.display(),
                            e.to_string().lines().next().unwrap_or_default()
                        ));
                    }
                }
            }
        }
        printer.status("Cleaned", name);
        cleaned.push(name.clone());
    }
    Ok(cleaned)
}

/// Remove build outputs and the checkouts sultana manages. A checkout with
/// local work is refused, or with `force` saved first into the cache store
/// (which outlives the checkout) under `refs/sultana/backup/<name>/…`.
/// Returns the components cleaned or removed, then `build/` and `dist/`
/// when they were there.
pub fn distclean(ws: &Workspace, force: bool, printer: &Printer) -> Result<Vec<String>> {
    let cache = ws.git_cache()?;
    let managed: Vec<_> = ws
        .manifest
        .components
        .iter()
        .filter(|c| ws.source(c) == SourceKind::Git)
        .collect();
    let mut dirty = Vec::new();
    for component in &managed {
        let path = ws.tree_path(component);
        if git::tree_state(&path) != TreeState::Git {
            continue;
        }
        let checkout = Checkout::open(&path)?;
        let store = cache.existing_store(&component.url);
        let dirt = crate::sync::dirt_recursive(&cache, &checkout, &component.url, store.as_ref(), None, printer)?;
        if !dirt.is_clean() {
            dirty.push((component, checkout, dirt));
        }
    }
    if !dirty.is_empty() && !force {
        let list: Vec<String> = dirty
            .iter()
            .map(|(c, _, d)| format!("  {} ({}): {}", c.name, ws.display_path(&ws.tree_path(c)), d.summary()))
            .collect();
        bail!(
            "refusing to remove checkouts with local work:\n{}\nCommit it, or run `sultana distclean --force` to save it in the cache first",
            list.join("\n")
        );
    }
    for (component, checkout, dirt) in &dirty {
        let saved = crate::sync::backup::save_local_work(
            &crate::sync::backup::SaveRequest {
                cache: &cache,
                checkout,
                url: &component.url,
                label: &component.name,
                reason: &format!("sultana: local work in {} before distclean", component.name),
                ignored: &dirt.ignored,
                removing: true,
            },
            printer,
        )?;
        crate::sync::backup::print_saved(printer, &component.name, &saved);
    }
    let mut removed = clean(ws, &[], printer)?;
    for component in managed {
        let path = ws.tree_path(component);
        if git::tree_state(&path) == TreeState::Git {
            fsutil::remove_all(&path)?;
            printer.status("Removed", ws.display_path(&path));
            if !removed.contains(&component.name) {
                removed.push(component.name.clone());
            }
        }
    }
    // What is left of components no longer in the manifest, too.
    let build = ws.root.join("build");
    if fs::symlink_metadata(&build).is_ok() {
        fsutil::remove_all(&build)?;
        printer.verbose("Removed", "build/");
        removed.push("build/".to_string());
    }
    // dist/ holds staged builds (folders) and release artefacts (files:
    // tarballs, signatures, SHA256SUMS, SBOMs). A signature cannot be made
    // again without its key: the files stay.
    let dist = ws.root.join("dist");
    if fs::symlink_metadata(&dist).is_ok_and(|m| m.is_dir()) {
        let mut kept = Vec::new();
        for entry in fs::read_dir(&dist)?.flatten() {
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir {
                fsutil::remove_all(&entry.path())?;
            } else {
                kept.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        if kept.is_empty() {
            fs::remove_dir(&dist)?;
            printer.verbose("Removed", "dist/");
            removed.push("dist/".to_string());
        } else {
            kept.sort();
            printer.status(
                "Kept",
                format!("{} release file(s) in dist/: {}", kept.len(), kept.join(", ")),
            );
        }
    } else if fs::symlink_metadata(&dist).is_ok() {
        fsutil::remove_all(&dist)?;
        removed.push("dist/".to_string());
    }
    Ok(removed)
}
