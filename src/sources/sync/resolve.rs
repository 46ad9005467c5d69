//! Phase 1: what each component's revision resolves to, fetching into the
//! cache when the commit is not there (from the component's own sources,
//! names never taken from another's).

use anyhow::{anyhow, Result};

use crate::error::CheckFailed;
use crate::git::{Cache, FetchRequest, Need, Oid, ResolveError, RevKind, Store};
use crate::lock::LockEntry;
use crate::manifest::Component;
use crate::printer::Printer;
use crate::process;
use crate::workspace::Workspace;

use super::{pin_check, Mode, Options};

pub(super) struct Resolution<'a> {
    pub(super) component: &'a Component,
    pub(super) entry: LockEntry,
    pub(super) kind: Option<RevKind>,
    pub(super) previous: Option<LockEntry>,
}

/// Where a component is fetched from, in order: its mirrors, then its url.
pub(crate) fn sources(component: &Component) -> Vec<String> {
    // A local override says where to fetch from: only there.
    if let Some(from) = &component.fetch_from {
        return vec![from.clone()];
    }
    component
        .local_mirrors
        .as_ref()
        .unwrap_or(&component.mirrors)
        .iter()
        .cloned()
        .chain([component.url.clone()])
        .collect()
}

pub(crate) fn fetch_store(
    ws: &Workspace,
    store: &Store,
    component: &Component,
    revision: Option<&str>,
    want: Option<Oid>,
    printer: &Printer,
) -> Result<String> {
    let sources = sources(component);
    let first = sources.first().cloned().unwrap_or_else(|| component.url.clone());
    // Say where the objects really come from.
    let relation = |source: &str| {
        if source == component.url {
            "its url".to_string()
        } else if component.fetch_from.is_some() {
            format!("local override of {}", component.url)
        } else {
            format!("mirror of {}", component.url)
        }
    };
    let shown = store.describe_source(&first);
    let from = if first == component.url {
        shown
    } else {
        format!("{shown} ({})", relation(&first))
    };
    printer.status("Fetching", format!("{} from {from}", component.name));
    let progress = printer.progress(&component.name);
    let log = process::log_path(&ws.state_dir(), &format!("fetch-{}", component.name));
    let request = FetchRequest {
        sources: &sources,
        want,
        revision,
        mode: ws.fetch_mode(component, store.kind()),
    };
    let used = store.fetch(&request, &log, printer, &progress)?;
    // After a source that failed, say which one answered.
    if used != first {
        printer.status(
            "Fetched",
            format!(
                "{} from {} ({})",
                component.name,
                store.describe_source(&used),
                relation(&used)
            ),
        );
    }
    Ok(used)
}

/// Run `job` with what an on-demand fetch of `component` needs.
pub(crate) fn with_need<T>(
    ws: &Workspace,
    component: &Component,
    offline: bool,
    printer: &Printer,
    job: impl FnOnce(&Need) -> Result<T>,
) -> Result<T> {
    let sources = sources(component);
    let log = process::log_path(&ws.state_dir(), &format!("fetch-{}", component.name));
    let progress = printer.progress(&component.name);
    job(&Need {
        sources: &sources,
        offline,
        log: &log,
        printer,
        progress: &progress,
    })
}

pub(super) fn offline_error(component: &Component, what: &str) -> anyhow::Error {
    anyhow!(
        "component `{}` needs the network: {what}; run without --offline (once is enough), or add a reachable mirror",
        component.name
    )
}

pub(super) fn resolve<'a>(
    ws: &Workspace,
    cache: &Cache,
    component: &'a Component,
    previous: Option<&LockEntry>,
    options: &Options,
    printer: &Printer,
) -> Result<Resolution<'a>> {
    let store = cache.store(&component.url, printer)?;
    let pinned = previous.filter(|e| e.matches(component) && options.mode.keeps_pins());
    if let Some(entry) = pinned {
        keep_pin(ws, &store, component, entry, options, printer)?;
        return Ok(Resolution {
            component,
            entry: entry.clone(),
            kind: None,
            previous: previous.cloned(),
        });
    }

    let rev = component.revision.as_str();
    let want = crate::validate::is_full_sha(rev)
        .then(|| Oid::from_str(rev).ok())
        .flatten();
    let all_sources = sources(component);
    let must_fetch = match options.mode {
        Mode::Fetch | Mode::Resolve | Mode::Scratch => {
            store.resolve_needs_fetch(rev, &all_sources) || store.lacks(ws.fetch_mode(component, store.kind()))
        }
        Mode::Update { .. } | Mode::Lock => true,
    };
    // Names are taken from the source just fetched, else from the first of
    // this workspace's own sources that has them: never from a mirror some
    // other workspace named.
    let mut lookup = all_sources.clone();
    let mut fetched = false;
    if must_fetch && !options.session.offline() {
        lookup = vec![fetch_store(ws, &store, component, Some(rev), want, printer)?];
        fetched = true;
    }
    let resolved = match store.resolve_among(rev, &lookup) {
        Ok(r) => r,
        // Offline, a name the cache does not hold is not known to be wrong.
        Err(ResolveError::MissingCommit { .. } | ResolveError::NotFound { .. }) if options.session.offline() => {
            return Err(offline_error(
                component,
                &format!("`{rev}` of {} is not in the cache", component.url),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let (resolved, source) = resolved;
    if !fetched {
        if let RevKind::Branch(branch) = &resolved.kind {
            printer.warn(format!(
                "{}: branch `{branch}` resolved from the cache (offline); it may be behind the remote",
                component.name
            ));
        }
    }
    let entry = LockEntry {
        name: component.name.clone(),
        url: component.url.clone(),
        revision: component.revision.clone(),
        commit: resolved.commit.to_string(),
        describe: with_need(ws, component, options.session.offline(), printer, |need| {
            store.describe_deepening(resolved.commit, &source, need)
        })?,
        source: None,
        not_in_url: false,
    };
    if options.mode != Mode::Lock {
        with_need(ws, component, options.session.offline(), printer, |need| {
            store.ensure_tree(resolved.commit, need)
        })?;
    }
    if previous.map(|p| &p.commit) != Some(&entry.commit) {
        printer.status(
            "Resolved",
            // A describe that is only the hash is not said twice.
            if entry.commit.starts_with(&entry.describe) {
                format!("{} {} to {}", component.name, rev, entry.short())
            } else {
                format!("{} {} to {} ({})", component.name, rev, entry.short(), entry.describe)
            },
        );
        // Locked from a fork (an override or a mirror) that has a commit the
        // url lacks: said now, while whoever fetches the url would miss it.
        let from_elsewhere = component.fetch_from.is_some() || !component.mirrors.is_empty();
        if from_elsewhere && store.url_has(resolved.commit) == Some(false) {
            printer.warn(format!(
                "{}: {} is not in {}'s branches or tags, only where it was fetched from; a workspace or a tarball's reader fetching the url will not find it",
                component.name,
                entry.short(),
                crate::validate::redact_url(&component.url)
            ));
        }
    }
    Ok(Resolution {
        component,
        entry,
        kind: Some(resolved.kind),
        previous: previous.cloned(),
    })
}

/// A pin kept: its commit fetched where the cache lacks it (or holds less
/// than the component asks), checked against what its revision names, and
/// its tree brought in.
fn keep_pin(
    ws: &Workspace,
    store: &crate::git::Store,
    component: &Component,
    entry: &LockEntry,
    options: &Options,
    printer: &Printer,
) -> Result<()> {
    let commit = Oid::from_str(&entry.commit)?;
    // A store holding less than asked is completed even for a pin it has.
    if !store.has_commit(commit) || (store.lacks(ws.fetch_mode(component, store.kind())) && !options.session.offline())
    {
        if options.session.offline() {
            return Err(offline_error(
                component,
                &format!("commit {} is not in the cache", entry.short()),
            ));
        }
        fetch_store(ws, store, component, Some(&component.revision), Some(commit), printer)?;
    }
    // A pin is trusted only as what its revision names.
    let verdict = pin_check::check(store, &sources(component), entry);
    match verdict {
        pin_check::PinCheck::TagDiffers { .. } | pin_check::PinCheck::CommitDiffers => {
            return Err(CheckFailed(format!(
                "{}: {}; fix sultana.lock, or run `sultana update {}` to resolve it again",
                component.name,
                verdict.describe(entry),
                component.name
            ))
            .into())
        }
        pin_check::PinCheck::NotOnBranch { .. } => {
            printer.warn(format!("{}: {}", component.name, verdict.describe(entry)))
        }
        _ => {}
    }
    if options.mode != Mode::Lock {
        with_need(ws, component, options.session.offline(), printer, |need| {
            store.ensure_tree(commit, need)
        })?;
    }
    Ok(())
}
