//! One module per command: arguments in, domain calls, output out.

mod build;
mod cache;
mod clean;
mod config_mk;
mod demo;
mod deps;
mod detect;
mod docs;
mod fetch;
mod flights;
mod gate;
mod init;
mod install;
mod lock;
mod manual;
mod run;
mod status;
mod tarball;
mod test;
mod update;

use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};
use crate::printer::Printer;
use crate::session::Session;
use crate::sync;
use crate::workspace::{Workspace, WorkspaceOptions};

/// What every command gets besides its own arguments.
pub struct Globals {
    pub workspace: WorkspaceOptions,
    pub session: Session,
}

impl Globals {
    /// The workspace a command acts on; none is an error (exit 2).
    pub fn workspace(&self, printer: &Printer) -> Result<Workspace> {
        let ws = Workspace::discover(&self.workspace)?;
        Self::notes(&ws, printer);
        Ok(ws)
    }

    /// For commands that work anywhere: the embedded default manifest when
    /// there is no `sultana.toml`.
    pub fn workspace_or_default(&self, printer: &Printer) -> Result<Workspace> {
        let ws = Workspace::discover_or_default(&self.workspace)?;
        Self::notes(&ws, printer);
        Ok(ws)
    }

    fn notes(ws: &Workspace, printer: &Printer) {
        for note in &ws.notes {
            printer.status("Using", note);
        }
    }

    /// The workspace, every component fetched as `--filter`/`--depth` say
    /// (the command line wins over the manifest).
    pub fn fetching_workspace(&self, transfer: &crate::cli::TransferArgs, printer: &Printer) -> Result<Workspace> {
        let mut ws = self.workspace(printer)?;
        ws.fetch_override = fetch_mode(transfer);
        Ok(ws)
    }

    pub fn sync_options(&self, mode: sync::Mode) -> sync::Options {
        sync::Options {
            mode,
            session: self.session,
        }
    }
}

/// `--filter`/`--depth` as a fetch mode (clap has checked both).
pub fn fetch_mode(transfer: &crate::cli::TransferArgs) -> Option<crate::git::FetchMode> {
    use crate::git::{FetchMode, Filter};
    match (transfer.filter, transfer.depth) {
        (Some(crate::cli::FilterArg::TreeZero), _) => Some(FetchMode::Filter(Filter::TreeZero)),
        (Some(crate::cli::FilterArg::BlobNone), _) => Some(FetchMode::Filter(Filter::BlobNone)),
        (None, Some(depth)) => Some(FetchMode::Depth(depth)),
        (None, None) if transfer.full => Some(FetchMode::Full),
        (None, None) => None,
    }
}

pub use docs::{answer_completion_request, component_candidates, man_page};
pub use manual::pages as man_pages;

pub fn dispatch(cli: Cli, printer: &Printer) -> Result<()> {
    if let Some(dir) = &cli.chdir {
        std::env::set_current_dir(dir).with_context(|| format!("cannot change to {}", dir.display()))?;
    }
    let globals = Globals {
        workspace: WorkspaceOptions {
            manifest: cli.manifest,
            sets: cli.sets,
            env_sets: crate::config_mk::environment_sets(|name| std::env::var(name).ok()),
        },
        session: Session::new(cli.offline, cli.locked, cli.jobs),
    };
    match cli.command {
        Command::Demo(args) => demo::run(args, printer),
        Command::Init(args) => init::run(&globals, args, printer),
        Command::Fetch(args) => fetch::run(&globals, args, printer),
        Command::Update(args) => update::run(&globals, args, printer),
        Command::Lock(args) => lock::run(&globals, args, printer),
        Command::Status(args) => status::run(&globals, args, printer),
        Command::Build(args) => build::run(&globals, args, printer),
        Command::Install(args) => install::run(&globals, args, printer),
        Command::Clean(args) => clean::run(&globals, args, printer),
        Command::Distclean(args) => clean::run_distclean(&globals, args, printer),
        Command::Deps(args) => deps::run(&globals, args, printer),
        Command::Detect(args) => detect::run(&globals, args, printer),
        Command::Tarball(args) => tarball::run(&globals, args, printer),
        Command::Gate(args) => gate::run(&globals, args, printer),
        Command::ConfigMk(command) => config_mk::run(&globals, command, printer),
        Command::Completions(args) => docs::completions(args, printer),
        Command::Man(args) => docs::man(args, printer),
        Command::Help(args) => docs::help(args, printer),
        Command::Run(args) => run::run(&globals, args, printer),
        Command::Cache(args) => cache::run(&globals, args.command, printer),
        Command::Flights(args) => flights::run(&globals, args, printer),
        Command::Test(args) => test::run(&globals, args, printer),
        Command::Env(args) => run::env(&globals, args, printer),
        Command::Shell(args) => run::shell(&globals, args, printer),
        Command::Bisect(args) => gate::run_bisect(&globals, args, printer),
        Command::Ci(command) => gate::run_ci(&globals, command, printer),
        Command::Osstest(command) => gate::run_osstest(&globals, command, printer),
        Command::VerifyTarball(args) => tarball::run_verify(&globals, args, printer),
    }
}

/// `    Finished 6 component(s) in 0.84s`
fn finished(printer: &Printer, what: &str, count: usize, started: Instant) {
    printer.status(
        "Finished",
        format!("{what} {count} component(s) in {:.2}s", started.elapsed().as_secs_f64()),
    );
}

/// Turn the `--with-system…` flags into the build's choice.
fn system_choice(args: &crate::cli::SystemArgs) -> crate::build::SystemChoice {
    let mut choice = crate::build::SystemChoice::default();
    for item in &args.with_system {
        let (name, prefix) = match item.split_once('=') {
            Some((name, prefix)) => (name, Some(std::path::PathBuf::from(prefix))),
            None => (item.as_str(), None),
        };
        choice
            .with
            .insert(name.to_string(), prefix.filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(prefix) = &args.with_system_blktap {
        let prefix = (!prefix.is_empty()).then(|| std::path::PathBuf::from(prefix));
        choice.with.insert("blktap".into(), prefix);
    }
    choice.without.extend(args.without_system.iter().cloned());
    if args.without_system_blktap {
        choice.without.insert("blktap".into());
    }
    choice
}

/// The build environment's settings from the command line: `--env`
/// checked, and sultana's own environment read once.
fn build_env(args: &crate::cli::BuildEnvArgs) -> Result<BuildEnvSettings> {
    let mut given = Vec::new();
    for item in &args.env {
        given.push(crate::build::environment::parse_assignment(item).map_err(|m| anyhow::anyhow!("--env: {m}"))?);
    }
    // Variables whose name or value is no UTF-8 never reach a build.
    let inherited = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    Ok(BuildEnvSettings { given, inherited })
}

struct BuildEnvSettings {
    given: Vec<(String, String)>,
    inherited: std::collections::BTreeMap<String, String>,
}
