//! Building components in dependency order, independent ones in parallel,
//! each installed into its staging folder `dist/<component>` (DESTDIR) and
//! skipped when nothing that goes into it changed.

mod cache;
mod ccache;
mod clean;
pub(crate) mod entry_files;
pub mod environment;
pub(crate) mod fingerprint;
mod graph;
mod install;
pub mod kbuild;
pub mod remote;
mod run_env;
mod stamp;
mod steps;
mod system;
mod toolchain;
mod trace;
mod unit;

pub use cache::BuildCache;
pub use ccache::prune as prune_ccache;
pub use clean::{clean, distclean};
pub use graph::closure;
pub(crate) use graph::dependencies;
pub use install::install;
pub use run_env::{run_env, RunEnv};
pub use system::resolve_system;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use serde::Serialize;

use crate::detect::Detection;
use crate::manifest::Component;
use crate::parallel;
use crate::printer::Printer;
use crate::recipe::Recipe;
use crate::sync;
use crate::workspace::Workspace;

/// `--with-system COMP[=PREFIX]` and `--without-system COMP`.
#[derive(Clone, Debug, Default)]
pub struct SystemChoice {
    pub with: BTreeMap<String, Option<PathBuf>>,
    pub without: BTreeSet<String>,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub session: crate::session::Session,
    pub system: SystemChoice,
    pub kernel_headers: Option<PathBuf>,
    /// Components built elsewhere (another CI job, whose artifacts are
    /// here): their staged install and stamp are used as they are, never
    /// rebuilt, and missing ones are an error.
    pub trusted: BTreeSet<String>,
    /// Use the shared build cache (restore clean trees' builds, store them).
    pub build_cache: bool,
    /// `--build-cache-remote`: the build cache's remote tier (an OCI
    /// registry), else the environment's or the manifest's (see `remote`).
    pub build_cache_remote: Option<String>,
    /// Compile through ccache when it is installed.
    pub ccache: bool,
    /// sultana's own environment, read once at the command boundary; only
    /// the base and what a recipe declares reach its build.
    pub inherited_env: BTreeMap<String, String>,
    /// `--env NAME=VALUE`: set for every build step (and part of its inputs).
    pub env: Vec<(String, String)>,
    /// Components built here, never restored from the build cache (nor
    /// taken as fresh after an earlier restore), with the tests that read
    /// their build tree: a restored entry holds the staged prefix only.
    pub need_build_tree: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Built,
    Fresh,
    /// Restored from the shared build cache.
    Cached,
    System,
    Failed,
    Blocked,
}

#[derive(Clone, Debug, Serialize)]
pub struct UnitReport {
    pub name: String,
    pub status: Status,
    pub seconds: f64,
    /// Where its files are now: the staging prefix, or the system prefix.
    pub prefix: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<PathBuf>,
    /// A missing tool or a recipe problem (exit 2), not a failing build (exit 1).
    #[serde(skip)]
    pub config_error: bool,
}

/// What a finished dependency gives its dependents.
#[derive(Clone, Debug)]
struct Provided {
    prefix: PathBuf,
    runtime_prefix: String,
    libdir: PathBuf,
    src: Option<PathBuf>,
    stamp: String,
    /// Its key in the shared build cache (a clean tree's build), which
    /// dependents' keys are made from; none means they are not cached.
    cache_key: Option<String>,
    exports: (String, String),
}

struct Unit<'a> {
    component: &'a Component,
    how: How,
    deps: Vec<String>,
}

/// Where a unit comes from: built by its recipe, or taken from the system.
enum How {
    // Boxed: a recipe is large beside a detection.
    Recipe(Box<Recipe>),
    System(Detection),
}

pub fn staging_root(ws: &Workspace, name: &str) -> PathBuf {
    ws.build_paths(name).staging
}

pub fn build_dir(ws: &Workspace, name: &str) -> PathBuf {
    ws.build_paths(name).build
}

fn stamp_path(ws: &Workspace, name: &str) -> PathBuf {
    ws.build_paths(name).stamp
}

fn log_dir(ws: &Workspace, name: &str) -> PathBuf {
    ws.build_paths(name).logs
}

/// Push the current builds of `names` (those made from a clean tree and in
/// the local cache) to `remote`, each signed with `sign`; pushed again when
/// the tag is there, so that an entry someone else put under it (unsigned,
/// damaged) is replaced, never trusted. Returns what was pushed.
pub fn push_builds(
    ws: &Workspace,
    names: &[String],
    remote: &remote::Remote,
    sign: &str,
    printer: &Printer,
) -> Result<Vec<(String, String)>> {
    let cache = BuildCache::locate()?;
    let mut pushed = Vec::new();
    for (name, key) in current_cache_keys(ws, names) {
        let Some(key) = key.filter(|k| cache.has(k)) else {
            printer.verbose(
                "Skipped",
                format!("{name}: no build from a clean tree in the build cache"),
            );
            continue;
        };
        let started = std::time::Instant::now();
        remote.push(&key, &cache, sign)?;
        printer.status(
            "Pushed",
            format!("{name} to {} ({:.1}s)", remote.url(), started.elapsed().as_secs_f64()),
        );
        pushed.push((name, key));
    }
    Ok(pushed)
}

/// After a CI build job: push the builds of `names` to the remote tier,
/// signed with the key `SULTANA_BUILD_CACHE_SIGN` names, when the project
/// gives one (as GitLab CI variables). Never fails the job: a push that
/// cannot be made is said.
pub fn push_to_remote(ws: &Workspace, names: &[String], options: &Options, printer: &Printer) {
    let Some(sign) = options
        .inherited_env
        .get("SULTANA_BUILD_CACHE_SIGN")
        .filter(|s| !s.is_empty())
    else {
        return;
    };
    if !options.build_cache || options.session.offline() {
        return;
    }
    let pushed = (|| -> Result<()> {
        let env = &options.inherited_env;
        if let Some(settings) =
            remote::Settings::for_manifest(options.build_cache_remote.as_deref(), env, &ws.manifest)?
        {
            push_builds(ws, names, &remote::Remote::open(&settings, env)?, sign, printer)?;
        }
        Ok(())
    })();
    if let Err(e) = pushed {
        printer.warn(format!("the build cache push was not made: {e:#}"));
    }
}

/// The remote tier a build pulls from, resolved once: none with
/// `--no-build-cache` or `--offline`, and none (said once) when no key is
/// trusted.
fn open_remote(ws: &Workspace, options: &Options, printer: &Printer) -> Result<Option<remote::Remote>> {
    if !options.build_cache || options.session.offline() {
        return Ok(None);
    }
    let env = &options.inherited_env;
    let Some(settings) = remote::Settings::for_manifest(options.build_cache_remote.as_deref(), env, &ws.manifest)?
    else {
        return Ok(None);
    };
    if settings.trust.is_empty() {
        printer.warn(format!(
            "the build cache remote {} restores nothing: no key is trusted (set SULTANA_BUILD_CACHE_TRUST to the fingerprints that sign its entries)",
            settings.url
        ));
        return Ok(None);
    }
    Ok(Some(remote::Remote::open(&settings, env)?))
}

/// The build-cache key of each component's current build (none when it
/// was not built from a clean tree, or not built).
pub fn current_cache_keys(ws: &Workspace, names: &[String]) -> Vec<(String, Option<String>)> {
    names
        .iter()
        .map(|name| {
            let key = stamp::Stamp::load(&ws.build_paths(name).stamp).and_then(|s| s.cache_key);
            (name.clone(), key)
        })
        .collect()
}

pub fn run(ws: &Workspace, names: &[String], options: &Options, printer: &Printer) -> Result<Vec<UnitReport>> {
    // Also for a gate's scratch workspace, which takes no workspace lock.
    ws.check_confined()?;
    let systems = resolve_system(ws, &options.system)?;
    let components = closure(ws, names)?;

    // Recipes before any fetch: a broken recipe is refused without network or disk work.
    let mut recipes = BTreeMap::new();
    for component in components.iter().filter(|c| !systems.contains_key(&c.name)) {
        recipes.insert(component.name.clone(), ws.recipe(component)?);
    }

    // Sources first (like `fetch`): everything that is not taken from the system.
    let to_fetch: Vec<String> = components
        .iter()
        .filter(|c| !systems.contains_key(&c.name) && !options.trusted.contains(&c.name))
        .map(|c| c.name.clone())
        .collect();
    if !to_fetch.is_empty() {
        let sync_options = sync::Options {
            mode: sync::Mode::Fetch,
            session: options.session,
        };
        sync::run(ws, &to_fetch, true, &sync_options, printer)?;
    }

    let mut units = Vec::new();
    for component in &components {
        let how = match systems.get(&component.name) {
            Some(detection) => How::System(detection.clone()),
            None => How::Recipe(Box::new(
                recipes
                    .remove(&component.name)
                    .with_context(|| format!("{}: no recipe", component.name))?,
            )),
        };
        let deps = dependencies(ws, component)?
            .into_iter()
            .filter(|d| components.iter().any(|c| &c.name == d))
            .collect();
        units.push(Unit { component, how, deps });
    }

    let headers = if units
        .iter()
        .any(|u| matches!(&u.how, How::Recipe(r) if r.kind == crate::recipe::Kind::Kbuild))
    {
        let headers = kbuild::headers(options.kernel_headers.as_deref())?;
        printer.status(
            "Using",
            format!(
                "kernel headers {} ({}; release {})",
                headers.dir.display(),
                headers.reason,
                headers.release
            ),
        );
        Some(headers)
    } else {
        None
    };

    // A ready queue: each component starts once what it depends on is done.
    let needs: Vec<Vec<usize>> = units
        .iter()
        .map(|u| {
            u.deps
                .iter()
                .filter_map(|d| units.iter().position(|o| &o.component.name == d))
                .collect()
        })
        .collect();
    let provided: Mutex<BTreeMap<String, Provided>> = Mutex::new(BTreeMap::new());
    let reports: Mutex<Vec<UnitReport>> = Mutex::new(Vec::new());
    // One jobserver for every make of the build: -j N means N in all.
    let server = jobserver::Client::new(options.session.jobs.max(1)).ok();
    // Read once: every unit's describe comes from it.
    let lock = ws.load_lock().ok();
    // One client, one pull at a time.
    let remote = open_remote(ws, options, printer)?.map(Mutex::new);
    let cx = unit::BuildContext {
        remote: remote.as_ref(),
        ws,
        options,
        headers: headers.as_ref(),
        printer,
        provided: &provided,
        reports: &reports,
        jobs: unit::Jobs {
            total: options.session.jobs.max(1),
            count: options.session.jobs.max(1),
            server: server.as_ref(),
        },
        lock: lock.as_ref(),
    };
    parallel::ready_queue(options.session.jobs, &units, &needs, |unit, sharing| {
        // make's -j: the CPUs shared among the components running or ready now.
        let jobs = options.session.jobs.max(1);
        let jobs_each = (jobs / sharing.clamp(1, jobs)).max(1);
        let report = unit::build_unit(&cx, unit, jobs_each);
        if let Ok(mut all) = reports.lock() {
            all.push(report);
        }
    });
    let mut reports = reports.into_inner().map_err(|_| anyhow!("a build thread panicked"))?;
    let order = |name: &str| ws.manifest.components.iter().position(|c| c.name == name);
    reports.sort_by_key(|r| order(&r.name));
    Ok(reports)
}

/// The Debian package that provides a build tool, for the missing-tool message.
pub fn tool_package(program: &str) -> &'static str {
    match Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program)
    {
        "make" => "make",
        "gcc" | "cc" => "gcc",
        "g++" | "c++" => "g++",
        "autoreconf" | "autoconf" | "autoheader" => "autoconf",
        "automake" | "aclocal" => "automake",
        "libtoolize" | "libtool" => "libtool",
        "cargo" | "rustc" => "cargo",
        "pkg-config" => "pkgconf",
        "python3" => "python3",
        "ninja" => "ninja-build",
        "nasm" => "nasm",
        "iasl" => "acpica-tools",
        "git" => "git",
        "sh" | "bash" => "bash",
        "install" | "cp" | "rm" | "printf" => "coreutils",
        _ if program.contains('/') => "none: it is a file of the component's source",
        _ => "unknown: install the tool that provides it",
    }
}
