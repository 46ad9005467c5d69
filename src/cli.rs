//! Command-line types only; `commands/` turns them into options.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sultana",
    version,
    about = "Manage the Xen Project's external trees: fetch pinned revisions, build, tarball, gate",
    long_about = None,
    after_help = "Start with `sultana init && sultana fetch`, or see `sultana help <command>`."
)]
pub struct Cli {
    /// Run as if started in DIR
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub dir: Option<PathBuf>,
    /// Use this manifest instead of searching for sultana.toml
    #[arg(long, value_name = "PATH", global = true)]
    pub manifest: Option<PathBuf>,
    /// Parallel jobs (default: the number of CPUs)
    #[arg(short = 'j', long = "jobs", value_name = "N", global = true)]
    pub jobs: Option<usize>,
    /// Never touch the network; fail naming the component that needs it
    #[arg(long, global = true)]
    pub offline: bool,
    /// Fail instead of changing sultana.lock (for CI)
    #[arg(long, global = true)]
    pub locked: bool,
    /// Print one JSON document on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only warnings and errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Override a manifest value, e.g. --set blktap.revision=master
    #[arg(long = "set", value_name = "COMP.KEY=VALUE", global = true)]
    pub sets: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write sultana.toml (default: the embedded xen-unstable manifest)
    #[command(after_help = "Example: sultana init --from xen-unstable")]
    Init(InitArgs),
    /// Clone what is missing and check out the locked commits (like `*-dir-find`)
    #[command(after_help = "Example: sultana fetch blktap")]
    Fetch(FetchArgs),
    /// Fetch from the remotes, re-resolve, rewrite the lock and move checkouts
    /// (like `subtree-force-update`)
    #[command(after_help = "Example: sultana update --force qemu-xen")]
    Update(UpdateArgs),
    /// Resolve intents into sultana.lock without moving checkouts
    #[command(after_help = "Example: sultana lock --check")]
    Lock(LockArgs),
    /// Show each component's source, intent, pin and checkout state
    #[command(after_help = "Example: sultana status --json")]
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// A shipped manifest name (xen-unstable) or a manifest file
    #[arg(long, value_name = "NAME|PATH")]
    pub from: Option<String>,
    /// Overwrite an existing sultana.toml
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Components to fetch (default: every enabled one)
    pub components: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Components to update (default: every enabled one)
    pub components: Vec<String>,
    /// Include disabled components (like `subtree-force-update-all`)
    #[arg(long)]
    pub all: bool,
    /// Save local work under refs/sultana/backup/ and update anyway
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Check that sultana.lock pins every enabled component's current intent; exit 1 if not
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Components to show (default: all)
    pub components: Vec<String>,
}
