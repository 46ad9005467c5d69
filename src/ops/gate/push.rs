//! The end of a gate: the reports written, and the pin advanced when a push
//! was asked for and nothing blocks.

use anyhow::{anyhow, Context, Result};

use super::db::{FlightDb, Revision};
use super::prepare::Prepared;
use super::report::FlightReport;
use super::{Options, Outcome};
use crate::git::{Oid, Store};
use crate::lock::Lock;
use crate::manifest::Component;
use crate::printer::Printer;
use crate::process;
use crate::sync;
use crate::workspace::Workspace;

/// Write the requested reports and push when asked and nothing blocks.
pub(crate) fn finish(
    ws: &Workspace,
    db: &FlightDb,
    prepared: &Prepared,
    report: FlightReport,
    mut outcome: Outcome,
    options: &Options,
    printer: &Printer,
) -> Result<Outcome> {
    if let Some(path) = &options.junit {
        crate::fsutil::atomic_write(path, report.junit().as_bytes())?;
    }
    if let Some(path) = &options.summary {
        crate::fsutil::atomic_write(path, report.summary().as_bytes())?;
    }
    if options.push {
        let blocking = report.blocking();
        outcome.not_pushed = if outcome.up_to_date {
            Some("the candidate is the tested revision already".into())
        } else if !blocking.is_empty() {
            let what: Vec<String> = blocking.iter().map(|f| format!("{} {}", f.job, f.summary)).collect();
            Some(format!("blocked by {}", what.join("; ")))
        } else {
            None
        };
        if outcome.not_pushed.is_none() {
            // As osstest's push to the tested branch: a candidate that is
            // not a descendant of the tested commit would drop tested work.
            if !is_fast_forward(ws, prepared, options.settings.session.offline(), printer)? {
                if options.allow_rewind {
                    outcome.rewind = true;
                } else {
                    outcome.refused_rewind = true;
                    outcome.not_pushed = Some(format!(
                        "{} {} is not a fast-forward of the tested {} {}; --allow-rewind pushes it",
                        prepared.component.name,
                        prepared.candidate.describe,
                        prepared.baseline.describe,
                        crate::git::short(Oid::from_str(&prepared.baseline.commit)?),
                    ));
                }
            }
        }
        if outcome.not_pushed.is_none() {
            crate::fault::point("gate-before-push");
            push(
                ws,
                prepared.component,
                &prepared.candidate,
                &prepared.store,
                prepared.push_target.as_ref(),
                outcome.rewind.then_some(&prepared.baseline.commit),
                printer,
            )?;
            db.mark_pushed(report.flight)?;
            outcome.pushed = true;
            outcome.pushed_ref = prepared.push_target.clone().map(|(url, r)| format!("{url} {r}"));
        }
    }
    outcome.report = Some(report);
    Ok(outcome)
}

/// Advance the pin: the component's commit in sultana.lock (the rest of the
/// file as it was), and the ref when asked.
fn push(
    ws: &Workspace,
    component: &Component,
    candidate: &Revision,
    store: &Store,
    target: Option<&(String, String)>,
    // A rewind: the tested commit the remote ref must still hold.
    rewind: Option<&String>,
    printer: &Printer,
) -> Result<()> {
    let is_rewind = rewind.is_some();
    if let Some((url, reference)) = target {
        let oid = Oid::from_str(&candidate.commit)?;
        if !store.has_commit(oid) {
            // A CI deciding job has not fetched anything yet.
            sync::fetch_store(ws, store, component, None, Some(oid), printer)?;
        }
        let log = process::log_path(&ws.state_dir(), &format!("push-{}", component.name));
        // A rewind replaces the remote ref only while it still holds the
        // tested commit: never what someone pushed there since.
        let lease: Vec<String> = rewind
            .map(|tested| vec![format!("--force-with-lease={reference}:{tested}")])
            .unwrap_or_default();
        crate::git::transfer_command()
            .arg("--git-dir")
            .arg(&store.dir)
            .arg("push")
            .args(lease)
            .arg("--")
            .arg(url)
            .arg(format!("{}:{reference}", candidate.commit))
            .log(&log)
            .run()
            .with_context(|| format!("cannot push {} to {reference} of {url}", candidate.commit))?;
        printer.status("Pushed", format!("{} to {reference} of {url}", &candidate.commit[..12]));
    }
    let mut lock: Lock = ws.load_lock()?;
    let entry = lock
        .entries
        .get_mut(&component.name)
        .ok_or_else(|| anyhow!("`{}` is not in sultana.lock", component.name))?;
    let old = entry.commit.clone();
    entry.commit = candidate.commit.clone();
    entry.describe = candidate.describe.clone();
    lock.save(&ws.lock_path())?;
    printer.status(
        "Pushed",
        format!(
            "{} {}{}{} into sultana.lock{} (run `sultana fetch` to move your checkout)",
            component.name,
            &old[..12],
            if is_rewind { "..(rewind).." } else { ".." },
            &candidate.commit[..12],
            if is_rewind { ", a rewind" } else { "" },
        ),
    );
    Ok(())
}

/// Whether the candidate descends from the tested commit, both fetched
/// (and a shallow store deepened) as needed.
fn is_fast_forward(ws: &Workspace, prepared: &Prepared, offline: bool, printer: &Printer) -> Result<bool> {
    let (component, store) = (prepared.component, &prepared.store);
    let candidate = Oid::from_str(&prepared.candidate.commit)?;
    let tested = Oid::from_str(&prepared.baseline.commit)?;
    for oid in [candidate, tested] {
        if !store.has_commit(oid) {
            sync::fetch_store(ws, store, component, None, Some(oid), printer)?;
        }
    }
    if store.is_shallow() {
        let source = sync::sources(component)
            .first()
            .cloned()
            .unwrap_or_else(|| component.url.clone());
        sync::with_need(ws, component, offline, printer, |need| {
            store.ensure_ancestry(candidate, tested, &source, need)
        })?;
    }
    // Opened again: the fetches above are not in the store's open handle.
    let repo = git2::Repository::open_bare(&store.dir)
        .with_context(|| format!("cannot open the cache store {}", store.dir.display()))?;
    repo.graph_descendant_of(candidate, tested)
        .with_context(|| format!("cannot compare {candidate} with {tested}"))
}
