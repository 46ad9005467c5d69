//! What every way of running a gate starts from: the gated component, the
//! involved components at their locked revisions, the candidate and the
//! baseline resolved, the allow file read and the push target checked.

use anyhow::{anyhow, bail, Context, Result};

use super::classify::AllowList;
use super::db::Revision;
use super::flight::Settings;
use super::{Options, Outcome};
use crate::build;
use crate::git::{self, Checkout, Oid, Store};
use crate::manifest::Component;
use crate::printer::Printer;
use crate::sync;
use crate::workspace::{SourceKind, Workspace};

/// Revisions from the command line are data: checked before any git call.
pub(crate) fn check_revisions(revisions: &[&Option<String>]) -> Result<()> {
    for rev in revisions.iter().filter_map(|r| r.as_deref()) {
        crate::validate::check_revision(rev).map_err(|m| anyhow!(m))?;
    }
    Ok(())
}

/// What every way of running a gate starts from.
pub(crate) struct Prepared<'a> {
    pub component: &'a Component,
    pub allow: AllowList,
    pub push_target: Option<(String, String)>,
    /// Every involved component at its locked revision.
    pub pins: Vec<Revision>,
    pub store: Store,
    pub candidate: Revision,
    pub baseline: Revision,
}

impl Prepared<'_> {
    /// An outcome with nothing run yet.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            component: self.component.name.clone(),
            up_to_date: self.candidate.commit == self.baseline.commit,
            candidate: self.candidate.clone(),
            baseline: self.baseline.clone(),
            baseline_report: None,
            report: None,
            pushed: false,
            pushed_ref: None,
            not_pushed: None,
            rewind: false,
            refused_rewind: false,
        }
    }

    /// The candidate is the tested revision and no flight was asked for
    /// anyway: says so.
    pub fn nothing_to_test(&self, options: &Options, printer: &Printer) -> bool {
        if self.candidate.commit != self.baseline.commit || options.always {
            return false;
        }
        printer.status(
            "Up to date",
            format!(
                "{} {} is the tested revision",
                self.component.name, self.baseline.describe
            ),
        );
        true
    }

    /// The involved revisions with the gated component at `rev`.
    pub fn with(&self, rev: &Revision) -> Vec<Revision> {
        self.pins
            .iter()
            .map(|r| {
                if r.component == self.component.name {
                    rev.clone()
                } else {
                    r.clone()
                }
            })
            .collect()
    }
}

pub(crate) fn prepare<'a>(ws: &'a Workspace, options: &Options, printer: &Printer) -> Result<Prepared<'a>> {
    prepare_with(ws, options, false, printer)
}

/// `light`: for a CI job given the candidate as a full commit id: the pins
/// are read from sultana.lock and nothing is fetched (a test job or the
/// deciding job needs no git at all; a build job fetches its own tree).
pub(crate) fn prepare_with<'a>(
    ws: &'a Workspace,
    options: &Options,
    light: bool,
    printer: &Printer,
) -> Result<Prepared<'a>> {
    check_revisions(&[&options.candidate, &options.baseline])?;
    let component = gated_component(ws, &options.component)?;
    // A pin by commit id has no candidates: its flight could not place
    // another commit, and a push would leave the lock against the manifest.
    if crate::validate::is_full_sha(&component.revision) {
        if let Some(candidate) = options.candidate.as_deref().filter(|c| *c != component.revision) {
            bail!(
                "`{}` is pinned to a commit in the manifest (revision = \"{}\"): a gate tests candidates of a branch or tag; set its revision to the branch (e.g. `--set {}.revision=master`) to gate {candidate}",
                component.name,
                component.revision,
                component.name
            );
        }
    }
    let allow = match &options.allow {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            AllowList::parse(&text, &path.display().to_string())?
        }
        None => AllowList::default(),
    };
    let push_target = match &options.push_ref {
        Some(spec) => Some(parse_push_ref(spec, component)?),
        None => None,
    };
    let (pins, store, candidate, baseline) = if light {
        pin_light(ws, component, options, printer)?
    } else {
        pin_full(ws, component, options, printer)?
    };
    Ok(Prepared {
        component,
        allow,
        push_target,
        pins,
        store,
        candidate,
        baseline,
    })
}

/// The involved pins, the gated component's store, the candidate and the
/// baseline.
type Pinned = (Vec<Revision>, Store, Revision, Revision);

fn pin_full(ws: &Workspace, component: &Component, options: &Options, printer: &Printer) -> Result<Pinned> {
    let involved = involved(ws, &component.name)?;
    let pins = pin_everything(ws, &involved, &options.settings, printer)?;
    let cache = ws.git_cache()?;
    let store = cache.store(&component.url, printer)?;
    let have_candidate = options
        .candidate
        .as_deref()
        .is_some_and(|c| crate::validate::is_full_sha(c) && Oid::from_str(c).is_ok_and(|o| store.has_commit(o)));
    let sources = if have_candidate {
        sync::sources(component)
    } else {
        refresh(
            ws,
            &store,
            component,
            options.candidate.as_deref(),
            &options.settings,
            printer,
        )?
    };
    let candidate = revision_of(
        ws,
        &store,
        component,
        options.candidate.as_deref().unwrap_or(&component.revision),
        &sources,
        &options.settings,
        printer,
    )?;
    let baseline = match &options.baseline {
        Some(rev) => revision_of(ws, &store, component, rev, &sources, &options.settings, printer)?,
        None => pins
            .iter()
            .find(|r| r.component == component.name)
            .cloned()
            .ok_or_else(|| anyhow!("`{}` has no pin in sultana.lock", component.name))?,
    };
    // A push replaces the locked pin: the candidate must be judged against it.
    let pinned = pins.iter().find(|r| r.component == component.name);
    if options.push && pinned.is_some_and(|p| p.commit != baseline.commit) {
        bail!(
            "--push replaces {}'s locked commit, so the candidate is judged against it: drop --baseline {} (or gate without --push)",
            component.name,
            baseline.describe
        );
    }
    Ok((pins, store, candidate, baseline))
}

/// A component a gate can test: one sultana fetches with git.
pub(crate) fn gated_component<'a>(ws: &'a Workspace, name: &str) -> Result<&'a Component> {
    let component = ws.manifest.select(&[name.to_string()], true)?[0];
    match ws.source(component) {
        SourceKind::Git => Ok(component),
        SourceKind::Local => bail!(
            "`{name}` is your own checkout (a local override): a gate tests revisions of its upstream; remove the override from sultana.local.toml"
        ),
        SourceKind::Intree => bail!("`{name}` is an in-tree copy (a release tarball): it has no history to gate"),
    }
}

fn pin_light(ws: &Workspace, component: &Component, options: &Options, printer: &Printer) -> Result<Pinned> {
    let Some(commit) = options.candidate.clone().filter(|c| crate::validate::is_full_sha(c)) else {
        bail!("a CI job needs --candidate as a full 40-hex commit (the pipeline passes $SULTANA_CANDIDATE)");
    };
    let lock = ws.load_lock()?;
    let mut pins = Vec::new();
    for name in involved(ws, &component.name)? {
        let c = ws
            .manifest
            .component(&name)
            .context("involved component left the manifest")?;
        let entry = lock.get(&name).filter(|e| e.matches(c)).with_context(|| {
            format!("`{name}` has no current pin in sultana.lock; run `sultana lock` and commit it")
        })?;
        pins.push(Revision {
            component: name.clone(),
            commit: entry.commit.clone(),
            describe: entry.describe.clone(),
        });
    }
    let cache = ws.git_cache()?;
    let store = cache.store(&component.url, printer)?;
    let describe = Oid::from_str(&commit)
        .ok()
        .filter(|o| store.has_commit(*o))
        .map(|o| describe_commit(ws, &store, component, o, &options.settings, printer))
        .unwrap_or_else(|| commit[..12].to_string());
    let candidate = Revision {
        component: component.name.clone(),
        commit,
        describe,
    };
    let baseline = pins
        .iter()
        .find(|r| r.component == component.name)
        .cloned()
        .context("no pin for the component")?;
    Ok((pins, store, candidate, baseline))
}

/// The component, everything that depends on it (what it could break), and
/// what those need to build.
pub fn involved(ws: &Workspace, name: &str) -> Result<Vec<String>> {
    let mut wanted = vec![name.to_string()];
    for other in ws.manifest.components.iter().filter(|c| c.enabled && c.name != name) {
        let closure: Vec<String> = build::closure(ws, std::slice::from_ref(&other.name))?
            .iter()
            .map(|c| c.name.clone())
            .collect();
        if closure.iter().any(|c| c == name) {
            wanted.push(other.name.clone());
        }
    }
    Ok(build::closure(ws, &wanted)?.iter().map(|c| c.name.clone()).collect())
}

/// The locked revision of every involved component (pins added to the lock
/// when missing, checkouts untouched); a local override counts at its HEAD.
pub(crate) fn pin_everything(
    ws: &Workspace,
    names: &[String],
    settings: &Settings,
    printer: &Printer,
) -> Result<Vec<Revision>> {
    let options = sync::Options {
        mode: sync::Mode::Resolve,
        session: settings.session,
    };
    sync::run(ws, names, true, &options, printer)?;
    let lock = ws.load_lock()?;
    let mut out = Vec::new();
    for name in names {
        let component = ws
            .manifest
            .component(name)
            .context("involved component left the manifest")?;
        let revision = match ws.source(component) {
            SourceKind::Git => {
                let entry = lock
                    .get(name)
                    .with_context(|| format!("`{name}` has no pin in sultana.lock"))?;
                Revision {
                    component: name.clone(),
                    commit: entry.commit.clone(),
                    describe: entry.describe.clone(),
                }
            }
            SourceKind::Local => {
                let path = ws.tree_path(component);
                let head = Checkout::open(&path)?
                    .head()
                    .with_context(|| format!("{} has no commit", path.display()))?;
                Revision {
                    component: name.clone(),
                    commit: head.to_string(),
                    describe: git::short(head),
                }
            }
            SourceKind::Intree => bail!("`{name}` is an in-tree copy: a gate needs git checkouts"),
        };
        out.push(revision);
    }
    Ok(out)
}

/// Ask the remote what its branches say now (the candidate is their tip).
/// Returns the sources whose names to resolve with: the one that answered,
/// so a mirror's stale names never stand for the fresh ones; offline, the
/// component's own sources in order.
pub(crate) fn refresh(
    ws: &Workspace,
    store: &Store,
    component: &Component,
    candidate: Option<&str>,
    settings: &Settings,
    printer: &Printer,
) -> Result<Vec<String>> {
    if settings.session.offline() {
        return Ok(sync::sources(component));
    }
    let want = candidate
        .filter(|c| crate::validate::is_full_sha(c))
        .and_then(|c| Oid::from_str(c).ok());
    Ok(vec![sync::fetch_store(
        ws,
        store,
        component,
        Some(candidate.unwrap_or(&component.revision)),
        want,
        printer,
    )?])
}

/// `rev` of `component` resolved with the names of `sources` (see `refresh`).
pub(crate) fn revision_of(
    ws: &Workspace,
    store: &Store,
    component: &Component,
    rev: &str,
    sources: &[String],
    settings: &Settings,
    printer: &Printer,
) -> Result<Revision> {
    crate::validate::check_revision(rev).map_err(|m| anyhow!("{}: {m}", component.name))?;
    let mut found = store.resolve_among(rev, sources);
    if found.is_err() && store.is_shallow() && !settings.session.offline() {
        // A shallow store holds only the revisions fetched so far.
        let want = crate::validate::is_full_sha(rev)
            .then(|| Oid::from_str(rev).ok())
            .flatten();
        let used = sync::fetch_store(ws, store, component, Some(rev), want, printer)?;
        found = store.resolve_among(rev, std::slice::from_ref(&used));
    }
    let (resolved, source) = found.with_context(|| format!("cannot resolve `{rev}` of {}", component.name))?;
    let describe = sync::with_need(ws, component, settings.session.offline(), printer, |need| {
        store.describe_deepening(resolved.commit, &source, need)
    })?;
    Ok(Revision {
        component: component.name.clone(),
        commit: resolved.commit.to_string(),
        describe,
    })
}

/// `git describe --tags` of a commit of the store, as a full clone says it
/// (a shallow store is deepened; without the network, its short id).
pub(crate) fn describe_commit(
    ws: &Workspace,
    store: &Store,
    component: &Component,
    oid: Oid,
    settings: &Settings,
    printer: &Printer,
) -> String {
    if !store.is_shallow() && !store.has_some_names() {
        return store.describe(oid);
    }
    sync::with_need(ws, component, settings.session.offline(), printer, |need| {
        store.describe_deepening(oid, &component.url, need)
    })
    .unwrap_or_else(|_| crate::git::short(oid))
}

/// `REMOTE:REF` → (URL, full ref). REMOTE is a URL, or `origin` for the
/// component's own.
fn parse_push_ref(spec: &str, component: &Component) -> Result<(String, String)> {
    let (remote, reference) = spec
        .rsplit_once(':')
        .filter(|(r, f)| !r.is_empty() && !f.is_empty())
        .ok_or_else(|| anyhow!("--push-ref `{spec}`: write REMOTE:REF, e.g. origin:xen-tested-master"))?;
    let url = if remote == "origin" {
        component.url.clone()
    } else {
        crate::validate::check_url(remote).map_err(|m| anyhow!("--push-ref: {m}"))?;
        remote.to_string()
    };
    let full = if reference.starts_with("refs/") {
        reference.to_string()
    } else {
        format!("refs/heads/{reference}")
    };
    let ok = !reference.starts_with(['-', '/'])
        && !full.contains("..")
        && !full.ends_with('/')
        && !full.ends_with(".lock")
        && full.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if !ok {
        bail!("--push-ref: `{reference}` is not a usable ref name");
    }
    Ok((url, full))
}
