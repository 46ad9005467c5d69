use std::time::Instant;

use anyhow::{anyhow, bail, Result};

use super::{system_choice, Globals};
use crate::build;
use crate::cli::{TarballArgs, VerifyTarballArgs};
use crate::error::CheckFailed;
use crate::printer::Printer;
use crate::tarball::{self, Format};

pub fn run(globals: &Globals, args: TarballArgs, printer: &Printer) -> Result<()> {
    let started = Instant::now();
    let ws = globals.fetching_workspace(&args.transfer, printer)?;
    let _lock = ws.lock_exclusive(printer)?;
    let formats: Vec<Format> = args
        .formats
        .iter()
        .map(|f| match f {
            crate::cli::FormatArg::Gz => Format::Gz,
            crate::cli::FormatArg::Xz => Format::Xz,
            crate::cli::FormatArg::Zst => Format::Zst,
            crate::cli::FormatArg::Lz => Format::Lz,
        })
        .collect();
    // What the system provides is not inlined.
    let system = build::resolve_system(&ws, &system_choice(&args.system))?;
    let mut components = args.components.clone();
    if !system.is_empty() {
        if components.is_empty() {
            components = ws
                .manifest
                .components
                .iter()
                .filter(|c| c.enabled && c.intree.is_some())
                .map(|c| c.name.clone())
                .collect();
        }
        components.retain(|c| !system.contains_key(c));
        for name in system.keys() {
            printer.status("Leaving out", format!("{name} (taken from the system)"));
        }
    }
    let options = tarball::Options {
        desc: match (args.desc, args.xen_version) {
            (Some(desc), _) => tarball::Desc::Given(desc),
            (None, true) => tarball::Desc::XenVersion,
            (None, false) => tarball::Desc::Describe,
        },
        out: args
            .out
            .map(|o| std::env::current_dir().map(|d| d.join(o)).unwrap_or_default()),
        formats,
        components,
        session: globals.session,
        sign: args.sign,
        creator: args.sbom_creator,
    };
    let outcome = tarball::run(&ws, &options, printer)?;
    for file in &outcome.files {
        printer.status(
            "Packed",
            format!(
                "{} ({} bytes, sha256 {})",
                ws.display_path(&file.path),
                file.bytes,
                &file.sha256[..16]
            ),
        );
    }
    for (sbom, what) in outcome.sboms.iter().zip(["SPDX 2.3", "SPDX 3.0", "CycloneDX 1.6"]) {
        printer.status("Wrote", format!("{} ({what} SBOM)", ws.display_path(sbom)));
    }
    for signature in &outcome.signatures {
        printer.status("Signed", ws.display_path(signature));
    }
    let inside: Vec<String> = outcome
        .components
        .iter()
        .map(|c| format!("{} {} at {}", c.name, c.describe, c.at))
        .collect();
    printer.report(format!("{}/: {}", outcome.top, inside.join("; ")));
    printer.status(
        "Finished",
        format!("{} entries in {:.2}s", outcome.entries, started.elapsed().as_secs_f64()),
    );
    printer.json(&serde_json::json!({ "command": "tarball", "tarball": outcome }));
    Ok(())
}

pub fn run_verify(globals: &Globals, args: VerifyTarballArgs, printer: &Printer) -> Result<()> {
    // The tarball's own manifest is what is checked: a workspace's, or a
    // value changed on the command line, has no say in it.
    if let Some(set) = globals.workspace.sets.first() {
        bail!(
            "verify-tarball checks the tarball's own manifest; `--set {set}` cannot apply to it \
             (to fetch from elsewhere, give --url-rewrite FROM=TO)"
        );
    }
    if globals.workspace.manifest.is_some() {
        bail!("verify-tarball checks the tarball's own manifest; --manifest cannot apply to it");
    }
    for (variable, _) in &globals.workspace.env_sets {
        printer.warn(format!(
            "{variable} is set in the environment; verify-tarball checks the tarball's own manifest and ignores it"
        ));
    }
    let mut rewrites = crate::manifest::UrlRewrites::default();
    for rule in &args.url_rewrite {
        let shown = crate::validate::redact_credentials(rule);
        let (from, to) = rule
            .split_once('=')
            .ok_or_else(|| anyhow!("--url-rewrite {shown}: expected FROM=TO"))?;
        rewrites
            .insert(from, to)
            .map_err(|m| anyhow!("--url-rewrite {shown}: {}", crate::validate::redact_credentials(&m)))?;
    }
    let options = tarball::VerifyOptions {
        session: globals.session,
        rewrites,
        use_mirrors: args.use_mirrors,
        mode: super::fetch_mode(&args.transfer).unwrap_or(crate::git::FetchMode::for_verify()),
    };
    let verdict = tarball::verify(&args.file, &options, printer)?;
    printer.json(&serde_json::json!({ "command": "verify-tarball", "verdict": verdict }));
    for beside in &verdict.beside {
        let line = format!("{}: {}", beside.file.display(), beside.detail);
        if beside.ok {
            printer.status("Checked", line);
        } else {
            printer.error(line);
        }
    }
    if let Some(difference) = &verdict.difference {
        return Err(CheckFailed(format!(
            "{} differs from what its lock gives: {difference}",
            args.file.display()
        ))
        .into());
    }
    let failed = verdict.failures();
    if !failed.is_empty() {
        return Err(CheckFailed(format!(
            "{}: the tarball is what its lock gives, but {} check(s) beside it failed: {}",
            args.file.display(),
            failed.len(),
            failed.join("; ")
        ))
        .into());
    }
    printer.report(format!(
        "{}: identical to what its lock gives ({} entries, sha256 {})",
        args.file.display(),
        verdict.entries,
        verdict.sha256
    ));
    Ok(())
}
