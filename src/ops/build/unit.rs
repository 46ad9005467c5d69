//! One unit of a build: a recipe's steps run in its build folder and
//! installed into its staging folder, or a component taken from the system.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use super::cache::{self, BuildCache};
use super::environment::{self, BuildEnv};
use super::fingerprint::{self, FileIndex};
use super::stamp::{self, Inputs, Stamp};
use super::steps::{self, Action, Step};
use super::system::system_unit;
use super::{
    build_dir, kbuild, log_dir, staging_root, tool_package, toolchain, How, Options, Provided, Status, Unit, UnitReport,
};
use crate::fsutil;
use crate::git::{self, Checkout};
use crate::manifest::Component;
use crate::printer::Printer;
use crate::process::{Cmd, ProcessError};
use crate::recipe::{render, Recipe, Vars};
use crate::workspace::{SourceKind, Workspace};

/// What every unit of one build shares: the workspace and options, the
/// kernel headers, the output, and what finished units provide and report.
#[derive(Clone, Copy)]
pub(super) struct BuildContext<'a> {
    pub ws: &'a Workspace,
    pub options: &'a Options,
    pub headers: Option<&'a kbuild::Headers>,
    pub printer: &'a Printer,
    pub provided: &'a Mutex<BTreeMap<String, Provided>>,
    pub reports: &'a Mutex<Vec<UnitReport>>,
    pub jobs: Jobs<'a>,
    /// sultana.lock, read once for the whole build (none when unreadable).
    pub lock: Option<&'a crate::lock::Lock>,
    /// The build cache's remote tier, when there is one.
    pub remote: Option<&'a Mutex<super::remote::Remote>>,
}

/// Build one unit (or take it from the system) once its dependencies are
/// done; a failed dependency blocks it.
pub(super) fn build_unit(cx: &BuildContext, unit: &Unit, jobs: usize) -> UnitReport {
    let BuildContext {
        ws,
        printer,
        provided,
        reports,
        ..
    } = *cx;
    let name = unit.component.name.clone();
    let started = Instant::now();
    let mut report = UnitReport {
        name: name.clone(),
        status: Status::Failed,
        seconds: 0.0,
        prefix: None,
        step: None,
        error: None,
        blocked_by: None,
        logs: None,
        config_error: false,
    };
    let failed_dep = reports.lock().ok().and_then(|all| {
        all.iter()
            .find(|r| unit.deps.contains(&r.name) && matches!(r.status, Status::Failed | Status::Blocked))
            .map(|r| r.name.clone())
    });
    if let Some(dep) = failed_dep {
        printer.warn(format!("{name} not built: its dependency {dep} failed"));
        report.status = Status::Blocked;
        report.blocked_by = Some(dep);
        return report;
    }
    let deps: BTreeMap<String, Provided> = match provided.lock() {
        Ok(all) => unit
            .deps
            .iter()
            .filter_map(|d| all.get(d).map(|p| (d.clone(), p.clone())))
            .collect(),
        Err(_) => BTreeMap::new(),
    };

    let result = match &unit.how {
        How::System(detection) => Ok(Finished::as_it_was(
            system_unit(ws, unit.component, detection),
            Status::System,
        )),
        How::Recipe(recipe) => build_recipe(cx, unit.component, recipe, &deps, jobs),
    };
    report.seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(finished) => {
            report.status = finished.status;
            report.logs = finished.logs;
            if report.status == Status::Built {
                printer.status("Built", format!("{name} in {:.1}s", report.seconds));
            }
            report.prefix = Some(finished.provided.prefix.clone());
            if let Ok(mut all) = provided.lock() {
                all.insert(name.clone(), finished.provided);
            }
        }
        Err(Failed { step, logs, error: e }) => {
            report.status = Status::Failed;
            report.logs = logs;
            let tool_missing = e
                .chain()
                .any(|c| matches!(c.downcast_ref::<ProcessError>(), Some(ProcessError::ToolMissing { .. })));
            // Before any step ran, the recipe or its setup is at fault.
            report.config_error = tool_missing || step.is_none();
            let at = step.as_deref().unwrap_or("setup");
            if crate::process::interrupted() {
                // Stopped by Ctrl-C or a SIGTERM: nothing is wrong with it.
                printer.error(format!("{name}: interrupted at {at}"));
            } else {
                printer.error(format!("{name} failed at {at}: {e:#}"));
            }
            report.step = step;
            report.error = Some(format!("{e:#}"));
        }
    }
    report
}

/// How a unit that was not blocked ended well: what it provides, and
/// whether it was fresh, restored, built or the system's.
struct Finished {
    provided: Provided,
    status: Status,
    /// Its build's logs, when it built.
    logs: Option<PathBuf>,
}

impl Finished {
    /// A unit that did not build: fresh, restored or the system's.
    fn as_it_was(provided: Provided, status: Status) -> Finished {
        Finished {
            provided,
            status,
            logs: None,
        }
    }
}

/// A unit that failed: the step that ran last (none: it failed in its
/// setup, before any), its build's logs, and why.
struct Failed {
    step: Option<String>,
    logs: Option<PathBuf>,
    error: anyhow::Error,
}

/// A failure before the build's steps: in the unit's setup.
impl From<anyhow::Error> for Failed {
    fn from(error: anyhow::Error) -> Failed {
        Failed {
            step: None,
            logs: None,
            error,
        }
    }
}

/// The describe of what is checked out: the lock's for the locked commit,
/// else the commit's own short id (a HEAD moved by hand).
fn describe_of(cx: &BuildContext, component: &Component, checkout: Option<&Checkout>) -> String {
    let ws = cx.ws;
    let head = checkout.and_then(|c| c.head());
    if let Some(entry) = cx.lock.and_then(|l| l.get(&component.name).cloned()) {
        let at_pin = head.is_none_or(|h| h.to_string() == entry.commit);
        if ws.source(component) != SourceKind::Local && at_pin {
            return entry.describe;
        }
    }
    head.map(git::short).unwrap_or_else(|| component.revision.clone())
}

/// How a build is named on screen: the describe, `-dirty` for a checkout
/// with changes (as `git describe --dirty`).
fn label_of(describe: &str, checkout: Option<&Checkout>) -> String {
    match checkout {
        Some(c) if c.clean_tree().is_none() => format!("{describe}-dirty"),
        _ => describe.to_string(),
    }
}

/// Where a unit's files are, for its templates.
struct Where<'a> {
    name: &'a str,
    src: &'a Path,
    build: &'a Path,
    staging: &'a Path,
    prefix: &'a str,
    describe: &'a str,
}

/// The values a recipe's templates see: `{prefix}`, `{src}`, `{jobs}` (left
/// a slot: changing -j rebuilds nothing), the kernel's, each dependency's.
fn template_vars(cx: &BuildContext, at: &Where, deps: &BTreeMap<String, Provided>) -> Vars {
    let Where {
        name,
        src,
        build,
        staging,
        prefix,
        describe,
    } = *at;
    let mut vars = Vars::new();
    let mut set = |k: &str, v: String| {
        vars.insert(k.to_string(), v);
    };
    set("name", name.to_string());
    set("prefix", prefix.to_string());
    set("libdir", format!("{prefix}/lib"));
    set("libexecdir", format!("{prefix}/libexec"));
    set("src", src.display().to_string());
    set("build", build.display().to_string());
    set("destdir", staging.display().to_string());
    set("describe", describe.to_string());
    set("version", describe.strip_prefix('v').unwrap_or(describe).to_string());
    set("jobs", "{jobs}".into());
    // For recipes (`true` under --offline); sultana's own steps take the
    // session's network as it is (see `steps::Planner`).
    set("offline", cx.options.session.offline().to_string());
    if let Some(h) = cx.headers {
        set("kernel_headers", h.dir.display().to_string());
        set("kernel_release", h.release.clone());
    }
    for (dep, p) in deps {
        set(&format!("dep.{dep}.prefix"), p.prefix.display().to_string());
        set(&format!("dep.{dep}.runtime_prefix"), p.runtime_prefix.clone());
        set(&format!("dep.{dep}.libdir"), p.libdir.display().to_string());
        set(&format!("dep.{dep}.cflags"), p.exports.0.clone());
        set(&format!("dep.{dep}.libs"), p.exports.1.clone());
        if let Some(s) = &p.src {
            set(&format!("dep.{dep}.src"), s.display().to_string());
        }
    }
    vars
}

/// What a unit builds with, resolved before anything is decided: its
/// paths, template values, environment, steps and the inputs its key and
/// freshness are made of.
struct UnitPlan {
    src: PathBuf,
    build: PathBuf,
    staging: PathBuf,
    prefix: String,
    stage_prefix: PathBuf,
    checkout: Option<Checkout>,
    describe: String,
    vars: Vars,
    present: Vec<String>,
    env: BuildEnv,
    env_lines: Vec<String>,
    planned: Vec<Step>,
    step_text: Vec<String>,
    toolchain: String,
    inputs: Inputs,
    paths: crate::workspace::BuildPaths,
    exported: (String, String),
    /// What the source index leaves out (a root tree that is the workspace).
    skip: &'static [&'static str],
}

fn plan_unit(
    cx: &BuildContext,
    component: &Component,
    recipe: &Recipe,
    deps: &BTreeMap<String, Provided>,
) -> Result<UnitPlan> {
    let BuildContext { ws, options, .. } = *cx;
    let name = &component.name;
    let src = ws.tree_path(component);
    if !src.is_dir() && !options.trusted.contains(name) {
        bail!("its source {} is missing; run `sultana fetch {name}`", src.display());
    }
    let build = build_dir(ws, name);
    let staging = staging_root(ws, name);
    let prefix = ws.manifest.prefix.clone();
    let stage_prefix = PathBuf::from(format!("{}{prefix}", staging.display()));
    let checkout = Checkout::open(&src).ok();
    let describe = describe_of(cx, component, checkout.as_ref());

    let vars = template_vars(
        cx,
        &Where {
            name,
            src: &src,
            build: &build,
            staging: &staging,
            prefix: &prefix,
            describe: &describe,
        },
        deps,
    );
    let present: Vec<String> = deps.keys().cloned().collect();
    check_dep_requires(name, recipe, &present, &vars)?;
    let env = unit_env(options, recipe, &vars)?;
    let env_lines: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();

    // Everything that goes into the build besides the source, with {jobs}
    // left symbolic so that changing -j does not rebuild.
    let planned = steps::Planner {
        recipe,
        present: &present,
        src: &src,
        build: &build,
        network: options.session.network,
    }
    .plan(&vars)?;
    let mut step_text: Vec<String> = vec![prefix.clone(), describe.clone()];
    step_text.extend(planned.iter().map(Step::describe));
    let toolchain = toolchain::identity(&env);
    let inputs = Inputs {
        source: String::new(),
        recipe: fingerprint::combine(&[&recipe.text]),
        steps: fingerprint::combine(&step_text.iter().map(String::as_str).collect::<Vec<_>>()),
        env: env.hashed(),
        deps: deps.iter().map(|(d, p)| (d.clone(), p.stamp.clone())).collect(),
        toolchain: fingerprint::combine(&[&toolchain]),
    };
    let paths = ws.build_paths(name);
    let exports = |vars: &Vars| -> (String, String) {
        let mut v = vars.clone();
        v.insert("prefix".into(), stage_prefix.display().to_string());
        v.insert("libdir".into(), stage_prefix.join("lib").display().to_string());
        (
            render(&recipe.exports.cflags, &v).unwrap_or_default(),
            render(&recipe.exports.libs, &v).unwrap_or_default(),
        )
    };
    let exported = exports(&vars);
    // The key in the shared build cache: a clean tree's commit tree and
    // the inputs with this workspace's paths left symbolic, so that another
    // workspace (or a gate's scratch tree) at the same pins has the same.
    // Dirty trees, and builds on a dirty or system dependency, have none.
    // A root tree that is the workspace itself holds sultana's own folders.
    let skip: &'static [&'static str] = if src == ws.root {
        &["build", "dist", ".sultana"]
    } else {
        &[]
    };
    Ok(UnitPlan {
        src,
        build,
        staging,
        prefix,
        stage_prefix,
        checkout,
        describe,
        vars,
        present,
        env,
        env_lines,
        planned,
        step_text,
        toolchain,
        inputs,
        paths,
        exported,
        skip,
    })
}

/// The files a recipe says its dependencies must have installed.
fn check_dep_requires(name: &str, recipe: &Recipe, present: &[String], vars: &Vars) -> Result<()> {
    for dep in present {
        for path in recipe.dep_require.get(dep).into_iter().flatten() {
            let path = render(path, vars).map_err(|e| anyhow!("{}: {e}", recipe.origin))?;
            if !Path::new(&path).exists() {
                bail!("{name} needs {path} from {dep}, which is not there (did {dep}'s build install it?)");
            }
        }
    }
    Ok(())
}

/// A clean environment: the base, what the recipe declares it reads, its
/// own settings and --env. All of it is an input.
fn unit_env(options: &Options, recipe: &Recipe, vars: &Vars) -> Result<BuildEnv> {
    let mut set_env: Vec<(String, String)> = Vec::new();
    for (key, value) in &recipe.set_env {
        set_env.push((
            key.clone(),
            render(value, vars).map_err(|e| anyhow!("{}: {e}", recipe.origin))?,
        ));
    }
    Ok(BuildEnv::resolve(&environment::Sources {
        inherited: &options.inherited_env,
        declared: &recipe.env,
        set: &set_env,
        given: &options.env,
    }))
}

fn build_recipe(
    cx: &BuildContext,
    component: &Component,
    recipe: &Recipe,
    deps: &BTreeMap<String, Provided>,
    jobs: usize,
) -> Result<Finished, Failed> {
    let BuildContext { ws, options, .. } = *cx;
    let name = &component.name;
    let mut plan = plan_unit(cx, component, recipe, deps)?;
    let unpacked = ws.source(component) == SourceKind::Intree || component.path == Path::new(".");
    if unpacked && !log_dir(ws, name).exists() {
        check_unpacked_links(&plan.src)?;
    }
    let provide = {
        let (stage_prefix, prefix) = (plan.stage_prefix.clone(), plan.prefix.clone());
        let (src, exports) = (plan.src.clone(), plan.exported.clone());
        move |stamp: String, cache_key: Option<String>| Provided {
            libdir: stage_prefix.join("lib"),
            prefix: stage_prefix.clone(),
            runtime_prefix: prefix.clone(),
            src: Some(src.clone()),
            stamp,
            cache_key,
            exports: exports.clone(),
        }
    };
    if options.trusted.contains(name) {
        // Built by another job: its stamp and staged install must be here.
        let stamp = Stamp::load(&plan.paths.stamp).filter(|_| plan.staging.is_dir());
        let stamp = stamp.with_context(|| {
            format!(
                "{name} was to be built by another job, but {} is not here (did its artifacts arrive?)",
                ws.display_path(&plan.staging)
            )
        })?;
        return Ok(Finished::as_it_was(provide(stamp.key, None), Status::Fresh));
    }

    let built_files = FileIndex::load(&plan.paths.files);
    let tree = fingerprint::index(&plan.src, plan.skip, &built_files)
        .with_context(|| format!("cannot read the source tree {}", plan.src.display()))?;
    // The key is of the tree's whole content before the build (ignored
    // files too: Xen's build reads its ignored .config), but for what
    // earlier builds wrote and left as they wrote it.
    let cache_key = cache_key(&KeyContext {
        ws,
        component,
        src: &plan.src,
        step_text: &plan.step_text,
        env_lines: &plan.env_lines,
        inputs: &plan.inputs,
        content: &tree.input_fingerprint(),
        deps,
    });
    plan.inputs.source = tree.fingerprint();
    let cache = open_cache(cx);
    let last = Stamp::load(&plan.paths.stamp);
    let found = Found {
        name,
        last: last.as_ref(),
        inputs: &plan.inputs,
        built_files: &built_files,
        tree: &tree,
        toolchain: &plan.toolchain,
        staged: plan.staging.is_dir(),
    };
    match decide(cx, &found, cache.as_ref(), cache_key.as_deref()) {
        Decision::Fresh(last) => {
            // Same content: keep the new stat data, so that touched files
            // are not read again next time.
            if tree.files != built_files.files {
                tree.save(&plan.paths.files)?;
            }
            cx.printer.verbose("Fresh", name);
            if let (Some(cache), Some(key)) = (&cache, &cache_key) {
                store_missing(cache, key, last, &plan, name, cx.printer);
            }
            return Ok(Finished::as_it_was(
                provide(plan.inputs.key(), cache_key),
                Status::Fresh,
            ));
        }
        Decision::Restore(key, cache) => {
            let from = Restore {
                cx,
                name,
                describe: &plan.describe,
                key,
                cache,
            };
            if let Some(stamp) = from.restore(&tree, &plan.inputs, &plan.paths)? {
                return Ok(Finished::as_it_was(provide(stamp, cache_key), Status::Cached));
            }
        }
        Decision::Build => {}
    }

    build_for_real(BuildJob {
        cx,
        component,
        recipe,
        deps,
        jobs,
        plan,
        tree,
        cache_key: cache_key.clone(),
        cache,
    })
    .map(|(stamp, logs)| Finished {
        provided: provide(stamp, cache_key),
        status: Status::Built,
        logs: Some(logs),
    })
}

/// A fresh build the cache lacks (a run killed while storing it, or built
/// with --no-build-cache) is stored now; only one made from this very tree
/// before it ran (never one made while the tree was dirty).
fn store_missing(cache: &BuildCache, key: &str, last: &Stamp, plan: &UnitPlan, name: &str, printer: &Printer) {
    if last.cache_key.as_deref() == Some(key) && !cache.has(key) {
        store(cache, key, &plan.staging, name, &plan.describe, printer);
    }
}

/// The build cache of a run that uses it; one that cannot be opened is
/// said, and the run goes on without it.
fn open_cache(cx: &BuildContext) -> Option<BuildCache> {
    if !cx.options.build_cache {
        return None;
    }
    BuildCache::locate()
        .map_err(|e| cx.printer.warn(format!("no build cache: {e:#}")))
        .ok()
}

/// What the freshness check reads: the last build's stamp and index, and
/// the tree and inputs now.
struct Found<'a> {
    name: &'a str,
    last: Option<&'a Stamp>,
    inputs: &'a Inputs,
    built_files: &'a FileIndex,
    tree: &'a FileIndex,
    toolchain: &'a str,
    /// Whether the staged install is there.
    staged: bool,
}

/// What is done with a unit that is not taken on trust.
enum Decision<'a> {
    /// Its last build holds: the stamp it was made with.
    Fresh(&'a Stamp),
    /// Restored from the build cache under this key, when the cache has it;
    /// else built.
    Restore(&'a str, &'a BuildCache),
    Build,
}

/// Fresh when the last build's inputs are today's (a restored build only
/// where a restore counts as one); else restored where the cache may be
/// used, else built. With `-v`, why it is not fresh.
fn decide<'a>(
    cx: &BuildContext,
    found: &Found<'a>,
    cache: Option<&'a BuildCache>,
    key: Option<&'a str>,
) -> Decision<'a> {
    let (options, printer, name) = (cx.options, cx.printer, found.name);
    // A restore is no build where a test needs the build tree, nor for a
    // run that does not use the build cache.
    let needs_tree = options.need_build_tree.get(name);
    let restore_counts = needs_tree.is_none() && options.build_cache;
    let usable = |s: &Stamp| s.key == found.inputs.key() && (!s.restored || restore_counts);
    if let Some(last) = found.last.filter(|s| found.staged && usable(s)) {
        return Decision::Fresh(last);
    }
    if printer.verbosity() == crate::printer::Verbosity::Verbose {
        let why = stamp::reasons(
            found.last,
            found.inputs,
            found.built_files,
            found.tree,
            &toolchain::summary(found.toolchain),
            found.staged,
        );
        let why: Vec<String> = why.iter().map(ToString::to_string).collect();
        printer.verbose("Rebuilding", format!("{name}: {}", why.join("; ")));
    }
    let (Some(cache), Some(key)) = (cache, key) else {
        return Decision::Build;
    };
    match needs_tree {
        None => Decision::Restore(key, cache),
        Some(tests) => {
            if cache.has(key) {
                printer.status(
                    "Note",
                    format!(
                        "{name} is built, not restored: its test {} needs its build tree",
                        tests.join(", ")
                    ),
                );
            }
            Decision::Build
        }
    }
}

/// A unit that is neither fresh nor restored: its plan and what the
/// freshness check read, for the build itself.
struct BuildJob<'a> {
    cx: &'a BuildContext<'a>,
    component: &'a Component,
    recipe: &'a Recipe,
    deps: &'a BTreeMap<String, Provided>,
    jobs: usize,
    plan: UnitPlan,
    /// The source tree's index before the build.
    tree: FileIndex,
    cache_key: Option<String>,
    cache: Option<BuildCache>,
}

/// Run the steps (configure skipped when what it reads did not change),
/// put the staged prefix in place, settle the tree's index against what
/// the build wrote, save the stamp, store a clean build in the cache.
/// Returns the stamp's key and the logs; a failure says the step that ran
/// last.
fn build_for_real(job: BuildJob) -> Result<(String, PathBuf), Failed> {
    let logs = log_dir(job.cx.ws, &job.component.name);
    let mut at = None;
    match run_build(job, &mut at) {
        Ok(key) => Ok((key, logs)),
        Err(error) => Err(Failed {
            step: at,
            logs: Some(logs),
            error,
        }),
    }
}

/// `build_for_real`'s work; `at` follows the step that runs.
fn run_build(job: BuildJob, at: &mut Option<String>) -> Result<String> {
    let BuildJob {
        cx,
        component,
        recipe,
        deps,
        jobs,
        plan,
        tree,
        cache_key,
        cache,
    } = job;
    let UnitPlan {
        src,
        build,
        staging,
        prefix,
        describe,
        checkout,
        mut vars,
        present,
        mut env,
        env_lines,
        planned,
        toolchain,
        mut inputs,
        paths,
        skip,
        ..
    } = plan;
    let BuildContext { ws, printer, .. } = *cx;
    let name = &component.name;
    let configure = Configure::of(&planned, &env_lines, deps, &prefix, &toolchain);
    // autotools: prepare, bootstrap and configure run again only when what
    // they read changed (or the last configure did not finish).
    let configure_dir = match recipe.build_dir() {
        crate::recipe::BuildDir::InTree => &src,
        crate::recipe::BuildDir::OutOfTree => &build,
    };
    let configured = recipe.kind == crate::recipe::Kind::Autotools
        && configure_dir.join("config.status").is_file()
        && std::fs::read_to_string(&paths.configured).ok() == Some(configure.key(&tree));

    // Build for real, with the real job count and a temporary staging folder.
    let (logs, new_staging) = clear_for_build(ws, component, recipe, &src, &build, &paths)?;
    // `{jobs}` stays a slot until a step runs: `-j{jobs}` for make or
    // cargo gives way to the shared jobserver, anywhere else the count.
    vars.insert("jobs".into(), steps::JOBS_SLOT.into());
    let planned = steps::Planner {
        recipe,
        present: &present,
        src: &src,
        build: &build,
        network: cx.options.session.network,
    };
    let run_steps = planned.plan(&vars)?;
    vars.insert("destdir".into(), new_staging.display().to_string());
    let install_steps = planned.plan(&vars)?;

    say_building(cx, name, recipe, &label_of(&describe, checkout.as_ref()), configured);
    let progress = printer.progress(name);
    let total = run_steps.len();
    let trace = instrument(cx, recipe, &paths, &mut env);
    // This build's own slot of the shared -j: its make's implicit one.
    let _slot = match cx.jobs.server {
        Some(server) => Some(server.acquire().context("cannot take a job slot from the jobserver")?),
        None => None,
    };
    let jobs = Jobs { count: jobs, ..cx.jobs };
    for (i, (step, install_variant)) in run_steps.iter().zip(install_steps.iter()).enumerate() {
        let step = if step.install { install_variant } else { step };
        let configure_phase = steps::configures(&step.name);
        if configured && configure_phase {
            continue;
        }
        if configure_phase {
            // A configure that does not finish is run again next time.
            let _ = std::fs::remove_file(&paths.configured);
        }
        *at = Some(step.name.clone());
        progress.update(i as u64, total as u64, &step.name);
        let log = logs.join(format!("{:02}-{}.log", i + 1, step.name));
        let place = (i as u64, total as u64);
        run_showing(step, &env, &jobs, &log, &progress, place).with_context(|| format!("step {}", step.name))?;
        crate::fault::point("build-after-step");
        if step.name == "configure" {
            let now = fingerprint::index(&src, skip, &tree)?;
            fsutil::atomic_write(&paths.configured, configure.key(&now).as_bytes())?;
        }
    }
    drop(progress);
    put_in_place(name, &new_staging, &staging)?;
    let (after, edited) = settle_tree(&src, skip, &tree, trace.as_ref())?;
    after.save(&paths.files)?;
    if recipe.kind == crate::recipe::Kind::Autotools && paths.configured.exists() {
        fsutil::atomic_write(&paths.configured, configure.key(&after).as_bytes())?;
    }
    inputs.source = after.fingerprint();
    let mut stamp = Stamp::new(inputs);
    // A build that may hold an edit its key does not name is never stored.
    stamp.cache_key = cache_key.clone().filter(|_| edited.is_empty());
    stamp.save(&paths.stamp)?;
    if !edited.is_empty() {
        printer.warn(format!(
            "{name}: {} changed while it was building; it builds again next time",
            stamp::first_paths(&edited)
        ));
    }
    if let (Some(cache), Some(key)) = (&cache, &stamp.cache_key) {
        store(cache, key, &staging, name, &describe, printer);
    }
    Ok(stamp.key)
}

/// The build's first line: what, at which commit, how, with how many jobs.
fn say_building(cx: &BuildContext, name: &str, recipe: &Recipe, label: &str, configured: bool) {
    // The describe keeps its case (RELEASE-4.21.0); only the kind is lowered.
    let kind = format!("{:?}", recipe.kind).to_lowercase();
    let shared = if cx.jobs.server.is_some() { " shared" } else { "" };
    let total = cx.jobs.total;
    cx.printer
        .status("Building", format!("{name} {label} ({kind}, -j{total}{shared})"));
    if configured {
        cx.printer
            .verbose("Skipping", format!("{name}'s configure: what it reads did not change"));
    }
}

/// Before the steps run: no stamp (a build that does not finish is not
/// fresh), the outputs git should not see, a fresh log folder, the build
/// folder, and no half-made staging folder. The logs and the new staging
/// folder's paths.
fn clear_for_build(
    ws: &Workspace,
    component: &Component,
    recipe: &Recipe,
    src: &Path,
    build: &Path,
    paths: &crate::workspace::BuildPaths,
) -> Result<(PathBuf, PathBuf)> {
    let _ = std::fs::remove_file(&paths.stamp);
    if ws.source(component) == SourceKind::Git && !recipe.ignore.is_empty() {
        exclude_outputs(src, &recipe.ignore)?;
    }
    let logs = log_dir(ws, &component.name);
    let new_staging = ws.build_paths(&component.name).staging_new;
    fsutil::remove_all(&logs)?;
    std::fs::create_dir_all(build).with_context(|| format!("cannot create {}", build.display()))?;
    fsutil::remove_all(&new_staging)?;
    Ok((logs, new_staging))
}

/// What an autotools configure depends on besides the files it reads:
/// its steps, the environment, the dependencies' exports, the prefix, the
/// toolchain.
struct Configure<'a> {
    text: String,
    toolchain: &'a str,
}

impl Configure<'_> {
    fn of<'a>(
        planned: &[Step],
        env_lines: &[String],
        deps: &BTreeMap<String, Provided>,
        prefix: &str,
        toolchain: &'a str,
    ) -> Configure<'a> {
        let steps = planned
            .iter()
            .filter(|s| steps::configures(&s.name))
            .map(Step::describe);
        let dep_exports: Vec<String> = (deps.iter())
            .map(|(d, p)| fingerprint::combine(&[d, &p.exports.0, &p.exports.1]))
            .collect();
        let text: Vec<String> = steps
            .chain([env_lines.join("\n"), dep_exports.join("\n"), prefix.to_string()])
            .collect();
        Configure {
            text: text.join("\n"),
            toolchain,
        }
    }

    fn key(&self, tree: &FileIndex) -> String {
        fingerprint::combine(&[&tree.fingerprint_of(steps::configure_reads), &self.text, self.toolchain])
    }
}

/// The new staged prefix in place of the old one, once what the install
/// left is files, folders and links only (a FIFO would hang whatever reads
/// the prefix next: the cache, install, a restore).
fn put_in_place(name: &str, new_staging: &Path, staging: &Path) -> Result<()> {
    if !new_staging.exists() {
        std::fs::create_dir_all(new_staging)?;
    }
    super::entry_files::take(new_staging, super::entry_files::Depth::KindsOnly)
        .with_context(|| format!("{name}'s install left something that is refused in its staged prefix"))?;
    fsutil::remove_all(staging)?;
    std::fs::rename(new_staging, staging).with_context(|| format!("cannot move {} into place", staging.display()))?;
    crate::fault::point("build-staged");
    Ok(())
}

/// The tree as the build left it, which the next run compares with, and
/// the sources edited while it ran (those build again).
fn settle_tree(
    src: &Path,
    skip: &[&str],
    before: &FileIndex,
    trace: Option<&super::trace::Trace>,
) -> Result<(FileIndex, Vec<String>)> {
    let after = fingerprint::index(src, skip, before)?;
    let checkout = Checkout::open(src).ok();
    let tracked = tracked_paths(checkout.as_ref());
    let ignored = |path: &str| {
        checkout
            .as_ref()
            .is_none_or(|c| c.repo().is_path_ignored(path).unwrap_or(false))
    };
    let written = trace.and_then(|t| t.written(src));
    Ok(fingerprint::settle(
        before,
        after,
        &fingerprint::Judge {
            tracked: &|p| tracked.contains(p),
            ignored: &ignored,
            written: written.as_ref(),
        },
    ))
}

/// A build the shared cache may hold (its remote tier asked first when
/// the local one lacks it).
struct Restore<'a> {
    cx: &'a BuildContext<'a>,
    name: &'a str,
    describe: &'a str,
    key: &'a str,
    cache: &'a BuildCache,
}

impl Restore<'_> {
    /// The build put in place as if built from `tree`: its stamp's key;
    /// none when the cache has no such build (or cannot give it).
    fn restore(
        &self,
        tree: &FileIndex,
        inputs: &Inputs,
        paths: &crate::workspace::BuildPaths,
    ) -> Result<Option<String>> {
        let (name, key, printer) = (self.name, self.key, self.cx.printer);
        if let Some(remote) = self.cx.remote {
            if !self.cache.has(key) {
                pull(remote, self.cache, key, name, printer);
            }
        }
        match restore(self.cx.ws, self.cache, key, name) {
            Ok(true) => {
                // Nothing ran in the tree: it is the state the stamp records.
                tree.save(&paths.files)?;
                let mut stamp = Stamp::new(Inputs {
                    source: tree.fingerprint(),
                    ..inputs.clone()
                });
                stamp.cache_key = Some(key.to_string());
                stamp.restored = true;
                stamp.save(&paths.stamp)?;
                printer.status("Restored", format!("{name} {} from the build cache", self.describe));
                Ok(Some(stamp.key))
            }
            Ok(false) => {
                printer.verbose("Missed", format!("{name}: not in the build cache"));
                Ok(None)
            }
            Err(e) => {
                printer.warn(format!("{name}: {e:#}; building it instead"));
                Ok(None)
            }
        }
    }
}

/// A tree unpacked from a tarball (not a checkout sultana checked when it
/// placed it), before its first build: its links are resolved before
/// anything runs. Later, links are the build's own (Xen's tools/include
/// links by absolute path).
fn check_unpacked_links(src: &Path) -> Result<()> {
    let links = crate::symlinks::on_disk(src, &[".git", "build", "dist", ".sultana"], 2_000_000)
        .with_context(|| format!("cannot read the symlinks of {}", src.display()))?;
    crate::symlinks::check_all(&links, std::iter::empty()).map_err(|(path, m)| {
        anyhow!(
            "{} has a symlink that is refused: `{}` {m}; nothing was built",
            src.display(),
            String::from_utf8_lossy(&path)
        )
    })
}

/// What the build's environment gets that is no input of it: ccache (the
/// same compiler, remembered) and the tracer of what its processes write
/// (to tell their outputs from edits made meanwhile).
fn instrument(
    cx: &BuildContext,
    recipe: &Recipe,
    paths: &crate::workspace::BuildPaths,
    env: &mut BuildEnv,
) -> Option<super::trace::Trace> {
    let BuildContext {
        ws, options, printer, ..
    } = *cx;
    if options.ccache && recipe.kind != crate::recipe::Kind::Cargo {
        match super::ccache::environment(&ws.root, env.get("PATH").unwrap_or_default()) {
            Ok(more) => {
                for (key, value) in more {
                    env.set(&key, value);
                }
            }
            Err(e) => printer.warn(format!("not using ccache: {e:#}")),
        }
    }
    let trace = super::trace::Trace::start(&paths.stamp.with_extension("writes"));
    for (key, value) in trace.iter().flat_map(|t| t.env()) {
        env.set(&key, value);
    }
    if trace.is_some() {
        // AddressSanitizer refuses to run unless its runtime is the first
        // library loaded; the tracer comes first, which changes nothing
        // of what ASan checks.
        let asan = match env.get("ASAN_OPTIONS") {
            Some(options) if !options.is_empty() => format!("{options}:verify_asan_link_order=0"),
            _ => "verify_asan_link_order=0".to_string(),
        };
        env.set("ASAN_OPTIONS", asan);
    }
    trace
}

/// Run one step; on a terminal its bar shows the step, how long it has run
/// and its log's last line (`at`: the step's place among them all).
fn run_showing(
    step: &Step,
    env: &BuildEnv,
    jobs: &Jobs,
    log: &Path,
    progress: &crate::printer::Progress,
    at: (u64, u64),
) -> Result<()> {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        if progress.is_shown() {
            scope.spawn(|| {
                let started = std::time::Instant::now();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(250));
                    let tail = fsutil::read_tail(log, 4096).unwrap_or_default();
                    let text = String::from_utf8_lossy(&tail);
                    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
                    let last: String = last.chars().take(60).collect();
                    let message = format!("{} {}s: {last}", step.name, started.elapsed().as_secs());
                    progress.update(at.0, at.1, &message);
                }
            });
        }
        let ran = execute(step, env, jobs, log);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        ran
    })
}

/// Keep a clean tree's build in the shared cache; a failure to is only a
/// warning (the build itself is done).
fn store(cache: &BuildCache, key: &str, staging: &Path, name: &str, describe: &str, printer: &Printer) {
    let meta = cache::Meta {
        component: name.to_string(),
        describe: describe.to_string(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    if let Err(e) = cache.store(key, staging, &meta) {
        printer.warn(format!("{e:#}"));
    }
}

/// What a clean tree's build-cache key is made of.
struct KeyContext<'a> {
    ws: &'a Workspace,
    component: &'a Component,
    src: &'a Path,
    step_text: &'a [String],
    env_lines: &'a [String],
    inputs: &'a Inputs,
    content: &'a str,
    deps: &'a BTreeMap<String, Provided>,
}

/// The build-cache key's inputs as hashed: a versioned structure, each
/// field as JSON writes it (never a `{:?}` text, whose form is the
/// toolchain's to change).
#[derive(serde::Serialize)]
struct KeyInputs<'a> {
    version: u32,
    sultana: &'a str,
    /// The configured prefix as it is: one inside a workspace is that
    /// workspace's (the steps have its path made symbolic).
    prefix: &'a str,
    tree: String,
    content: &'a str,
    recipe: &'a str,
    steps: Vec<String>,
    environment: Vec<String>,
    deps: Vec<(String, String)>,
    toolchain: &'a str,
}

/// A clean tree's build key for the shared cache, or none.
fn cache_key(cx: &KeyContext) -> Option<String> {
    let ws = cx.ws;
    if !matches!(ws.source(cx.component), SourceKind::Git | SourceKind::Local) {
        return None;
    }
    let tree = Checkout::open(cx.src).ok()?.clean_tree()?;
    let mut deps = Vec::new();
    for (dep, provided) in cx.deps {
        deps.push((dep.clone(), provided.cache_key.clone()?));
    }
    let (src_text, root_text) = (cx.src.display().to_string(), ws.root.display().to_string());
    let neutral = |s: &String| s.replace(&src_text, "{src}").replace(&root_text, "{workspace}");
    let key = KeyInputs {
        version: 3,
        sultana: env!("CARGO_PKG_VERSION"),
        prefix: &ws.manifest.prefix,
        tree: tree.to_string(),
        content: cx.content,
        recipe: &cx.inputs.recipe,
        steps: cx.step_text.iter().map(neutral).collect(),
        environment: cx.env_lines.iter().map(neutral).collect(),
        deps,
        toolchain: &cx.inputs.toolchain,
    };
    let text = serde_json::to_string(&key).ok()?;
    Some(fingerprint::combine(&[&text]))
}

/// Look for `key` in the remote tier; a refused or unreachable entry is
/// said in one line and the component builds.
fn pull(remote: &Mutex<super::remote::Remote>, cache: &BuildCache, key: &str, name: &str, printer: &Printer) {
    let Ok(remote) = remote.lock() else { return };
    let started = std::time::Instant::now();
    match remote.pull(key, cache) {
        Ok(super::remote::Pulled::Stored) => printer.status(
            "Pulled",
            format!(
                "{name} from {} ({:.1}s, {})",
                remote.url(),
                started.elapsed().as_secs_f64(),
                fsutil::human_size(fsutil::size_of(&cache.entry_dir(key)))
            ),
        ),
        Ok(super::remote::Pulled::Missing) => printer.verbose("Missed", format!("{name}: not in {}", remote.url())),
        Ok(super::remote::Pulled::Refused(why)) => printer.warn(format!(
            "{name}: the entry in {} is refused: {why}; building it instead",
            remote.url()
        )),
        Err(e) => printer.warn(format!("{name}: {}: {e:#}; building it instead", remote.url())),
    }
}

/// Put the cached build of `key` in place as the component's staged
/// prefix; false when the cache has none.
fn restore(ws: &Workspace, cache: &BuildCache, key: &str, name: &str) -> Result<bool> {
    let paths = ws.build_paths(name);
    fsutil::remove_all(&paths.staging_new)?;
    // The old stamp goes before the staged prefix changes.
    let _ = std::fs::remove_file(&paths.stamp);
    if !cache.restore(key, &paths.staging_new)? {
        let _ = fsutil::remove_all(&paths.staging_new);
        return Ok(false);
    }
    fsutil::remove_all(&paths.staging)?;
    std::fs::rename(&paths.staging_new, &paths.staging)
        .with_context(|| format!("cannot move {} into place", paths.staging.display()))?;
    crate::fault::point("build-restore-placed");
    Ok(true)
}

/// The paths git tracks in a checkout (none when the tree is not one).
fn tracked_paths(checkout: Option<&Checkout>) -> std::collections::HashSet<String> {
    let Some(checkout) = checkout else {
        return Default::default();
    };
    let Ok(index) = checkout.repo().index() else {
        return Default::default();
    };
    index.iter().filter_map(|e| String::from_utf8(e.path).ok()).collect()
}

/// Add `patterns` to the checkout's `.git/info/exclude` (once each).
fn exclude_outputs(src: &Path, patterns: &[String]) -> Result<()> {
    let Ok(checkout) = Checkout::open(src) else {
        return Ok(());
    };
    let file = checkout.repo().path().join("info").join("exclude");
    let current = std::fs::read_to_string(&file).unwrap_or_default();
    let missing: Vec<&String> = patterns
        .iter()
        .filter(|p| !current.lines().any(|l| l == p.as_str()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# written by the build (sultana recipe `ignore`)\n");
    for pattern in missing {
        text.push_str(pattern);
        text.push('\n');
    }
    fsutil::atomic_write(&file, text.as_bytes())
}

/// How many jobs a build's steps may run.
#[derive(Clone, Copy)]
pub(super) struct Jobs<'a> {
    /// `-j N` of the whole build.
    pub total: usize,
    /// This component's share, for `{jobs}` outside make's own `-j`.
    pub count: usize,
    /// One GNU make jobserver for the whole build (as cargo does), so a
    /// component that starts when others finish gets their slots.
    pub server: Option<&'a jobserver::Client>,
}

/// A step's arguments with the `{jobs}` slot filled: `-j{jobs}` of make
/// or cargo is dropped when the jobserver decides (an explicit `-jN`
/// would make them leave it), everywhere else the count.
fn with_jobs(program: &str, args: &[String], jobs: &Jobs) -> (Vec<String>, bool) {
    let name = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    let served = jobs.server.is_some() && matches!(name, "make" | "gmake" | "cargo");
    let slot_flag = format!("-j{}", steps::JOBS_SLOT);
    let mut out = Vec::new();
    for arg in args {
        if served && *arg == slot_flag {
            continue;
        }
        out.push(arg.replace(steps::JOBS_SLOT, &jobs.count.to_string()));
    }
    (out, jobs.server.is_some())
}

fn execute(step: &Step, env: &BuildEnv, jobs: &Jobs, log: &Path) -> Result<()> {
    match &step.action {
        Action::Run { argv, dir } => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let (program, args) = argv.split_first().ok_or_else(|| anyhow!("empty command"))?;
            let program = program.replace(steps::JOBS_SLOT, &jobs.count.to_string());
            let (args, served) = with_jobs(&program, args, jobs);
            let program = program.as_str();
            // Only the build's own environment (a parent make's jobserver
            // never leaks into ours either).
            let mut cmd = Cmd::new(program, tool_package(program))
                .args(args)
                .cwd(dir)
                .log(log)
                .env_clear();
            for (key, value) in env.iter() {
                cmd = cmd.env(key, value);
            }
            if let (true, Some(server)) = (served, jobs.server) {
                cmd = cmd.jobserver(server, jobs.total);
            }
            cmd.run()?;
        }
        Action::CopyModuleSource { from } => {
            for (src, dst) in from {
                fsutil::remove_all(dst)?;
                fsutil::copy_tree(src, dst)?;
            }
        }
        Action::CheckModules { modules, release } => {
            for module in modules {
                if !module.is_file() {
                    bail!("the build did not produce {}", module.display());
                }
                let magic = kbuild::vermagic(module)?;
                if &magic != release {
                    bail!(
                        "{} is for kernel {magic}, not {release} (vermagic mismatch)",
                        module.display()
                    );
                }
            }
        }
        Action::InstallModules { modules, target } => {
            std::fs::create_dir_all(target)?;
            for module in modules {
                let name = module.file_name().ok_or_else(|| anyhow!("bad module path"))?;
                std::fs::copy(module, target.join(name))?;
            }
        }
    }
    Ok(())
}
