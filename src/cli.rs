//! Command-line types only; `commands/` turns them into options.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// `sultana --help`: the commands grouped by job (clap lists them flat).
/// A unit test checks every command appears here.
pub const COMMAND_GROUPS: &str = "\
Trees:
  init            Write sultana.toml (default: the embedded xen-unstable manifest)
  fetch           Clone what is missing, check out the locked commits (*-dir-find)
  update          Move pins to the branch tips, saving local work (subtree-force-update)
  lock            Resolve intents into sultana.lock without moving checkouts
  status          Each tree's source, intent, pin and state
Build:
  build           Build in dependency order into dist/<component>
  test            Run the recipes' tests against your build (make check), no flight
  install         Install what `build` staged
  clean           Remove build outputs
  distclean       Remove build outputs and the checkouts sultana manages
  deps            List (or apt-get install) the Debian build dependencies
  detect          Find components installed on the system, and kernel blktap support
  run             Run a command with the built components on PATH and the library path
  env             Print that environment as shell lines, for eval
  shell           Start a shell in that environment
  cache           What the shared caches hold; `cache prune` trims the build cache
Release:
  tarball         The release tarball with every external tree inlined (mktarball)
  verify-tarball  Make a tarball again from its lock and compare byte for byte
Push gate:
  gate            Test a candidate revision and advance its pin when nothing regressed
  bisect          Find the first commit at which a job fails
  flights         The gate's flight history; `flights prune` trims it
Xen and CI:
  ci              Emit a GitLab CI pipeline for the push gate of a component
  osstest         Emit osstest's job lines for the push gate of a component
  config-mk       Read Config.mk pins into a manifest, or print them as make variables
Help:
  demo            The whole job on small local upstreams, no network needed
  completions     Shell completions (bash, zsh, fish)
  man             The manual pages (sultana.1, sultana-fetch.1, ...)
  help            Help on a command";

#[derive(Debug, Parser)]
#[command(
    name = "sultana",
    version,
    about = "Manage the Xen Project's external trees: fetch pinned revisions, build, tarball, gate",
    long_about = None,
    help_template = "{about-with-newline}\n{usage-heading} {usage}\n\nCommands:\n{before-help}Options:\n{options}{after-help}",
    // Our own `help`, so that `sultana help --help` works like any command's.
    disable_help_subcommand = true,
    before_help = COMMAND_GROUPS,
    after_help = "New here? `sultana demo` shows the whole job without network. Then\n`sultana init && sultana build` in an empty folder, or `sultana help <command>`."
)]
pub struct Cli {
    /// The command the line names (`fetch`, `cache prune`), from the same
    /// parse: the `command` field of the one JSON document.
    #[arg(skip)]
    pub command_name: String,
    /// Run as if started in DIR
    #[arg(short = 'C', value_name = "DIR", global = true, help_heading = "Global options")]
    pub chdir: Option<PathBuf>,
    /// Use this manifest instead of searching for sultana.toml
    #[arg(long, value_name = "PATH", global = true, help_heading = "Global options")]
    pub manifest: Option<PathBuf>,
    /// Parallel jobs (default: the number of CPUs)
    #[arg(
        short = 'j',
        long = "jobs",
        value_name = "N",
        global = true,
        help_heading = "Global options"
    )]
    pub jobs: Option<usize>,
    /// Never touch the network; fail naming the component that needs it
    #[arg(long, global = true, help_heading = "Global options")]
    pub offline: bool,
    /// Fail instead of changing sultana.lock (for CI)
    #[arg(long, global = true, help_heading = "Global options")]
    pub locked: bool,
    /// Print one JSON document on stdout
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// Print only warnings and errors
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// Print more detail
    #[arg(short, long, action = ArgAction::Count, global = true, help_heading = "Global options")]
    pub verbose: u8,
    /// Override a manifest value, e.g. --set blktap.revision=master
    #[arg(
        long = "set",
        value_name = "COMP.KEY=VALUE",
        global = true,
        help_heading = "Global options"
    )]
    pub sets: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// See the whole job on small local upstreams, no network needed
    #[command(after_help = "Example: sultana demo /tmp/sultana-demo")]
    Demo(DemoArgs),
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
    /// Build components in dependency order into dist/<component> (like `subdir-all-*`)
    #[command(after_help = "Example: sultana build --with-system-blktap=/usr xen")]
    Build(BuildArgs),
    /// Install what `build` staged (like `subdir-install-*`)
    #[command(after_help = "Example: sultana install --destdir /tmp/root")]
    Install(InstallArgs),
    /// Remove build outputs
    #[command(after_help = "Example: sultana clean blktap")]
    Clean(CleanArgs),
    /// Remove build outputs and the checkouts sultana manages
    #[command(after_help = "Example: sultana distclean --force")]
    Distclean(DistcleanArgs),
    /// List (or apt-get install) the Debian build dependencies of enabled components
    #[command(after_help = "Example: sultana deps --install")]
    Deps(DepsArgs),
    /// Make the release tarball: the root tree with every external tree inlined (like `mktarball`)
    #[command(after_help = "Example: sultana tarball --desc 4.21.0 --format gz --format xz")]
    Tarball(TarballArgs),
    /// Make a tarball again from the lock inside it and compare byte for byte
    #[command(
        name = "verify-tarball",
        after_help = "Example: sultana verify-tarball dist/xen-4.21.0.tar.gz"
    )]
    VerifyTarball(VerifyTarballArgs),
    /// Push gate: test the candidate tip of COMP against the tested revisions of everything else,
    /// advance its pin when nothing regressed (like osstest's push gates)
    #[command(after_help = "Example: sultana gate blktap --push --junit gate.xml")]
    Gate(GateArgs),
    /// Find the first commit of COMP at which a job fails (like osstest's bisector)
    #[command(after_help = "Example: sultana bisect blktap --test tapdisk-nbd --good v4.0.7")]
    Bisect(BisectArgs),
    /// Emit a CI pipeline for the push gate of a component
    #[command(subcommand, after_help = "Example: sultana ci gitlab blktap > gate.yml")]
    Ci(CiCommand),
    /// Emit osstest's job lines for the push gate of a component
    #[command(subcommand, after_help = "Example: sultana osstest flight blktap --flight 12345")]
    Osstest(OsstestCommand),
    /// Read Xen's Config.mk pins into a manifest, or print the manifest's pins as make variables
    #[command(
        name = "config-mk",
        subcommand,
        after_help = "Example: sultana config-mk import ../xen/Config.mk"
    )]
    ConfigMk(ConfigMkCommand),
    /// Print shell completions for bash, zsh or fish
    #[command(after_help = "Example: sultana completions bash > /etc/bash_completion.d/sultana")]
    Completions(CompletionsArgs),
    /// Print a manual page (roff), or write them all into a folder
    #[command(after_help = "Example: sultana man fetch | man -l -")]
    Man(ManArgs),
    /// Look for components installed on the system, and the kernel's blktap support
    #[command(after_help = "Example: sultana detect --with-system-blktap=/usr/local")]
    Detect(DetectArgs),
    /// Run a command with the built components on PATH, LD_LIBRARY_PATH and PKG_CONFIG_PATH
    #[command(after_help = "Example: sultana run -- vhd-util create -n disk.vhd -s 64")]
    Run(RunArgs),
    /// Print the environment of `run` as shell lines: eval "$(sultana env)"
    #[command(after_help = "Example: sultana env --shell fish | source")]
    Env(EnvArgs),
    /// Start $SHELL (or `$SHELL ARGS...`) in the environment of `run`
    #[command(after_help = "Example: sultana shell -c 'tap-ctl list'")]
    Shell(ShellArgs),
    /// Show what the shared git, build and compiler caches hold; `cache prune` trims the build cache
    #[command(after_help = "Example: sultana cache prune --max-size 20G")]
    Cache(CacheCmdArgs),
    /// Run the recipes' tests against the workspace's build (built first when stale), without a flight
    #[command(after_help = "Example: sultana test blktap-module --test kmod-load")]
    Test(TestArgs),
    /// List the gate's flight history; `flights prune` trims it
    #[command(after_help = "Example: sultana flights prune --keep 100")]
    Flights(FlightsArgs),
    /// Print the help of sultana or of one of its commands
    #[command(after_help = "Example: sultana help ci gitlab")]
    Help(HelpArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The command and its arguments
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The shell the lines are for
    #[arg(long, value_name = "SHELL", value_enum, default_value_t = EnvShell::Sh)]
    pub shell: EnvShell,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// Arguments for the shell, e.g. -c 'COMMAND'
    #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct CacheCmdArgs {
    #[command(subcommand)]
    pub command: Option<CacheCommand>,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove build-cache entries unused for 30 days, then the least recently used beyond --max-size
    #[command(after_help = "Example: sultana cache prune --max-size 20G --git --ccache")]
    Prune(CachePruneArgs),
    /// Upload this workspace's current builds to the build cache's remote tier, signed
    #[command(after_help = "Example: sultana cache push --sign release@example.org")]
    Push(CachePushArgs),
}

#[derive(Debug, Args)]
pub struct CachePushArgs {
    /// Components whose builds to push (default: every enabled one that is built)
    #[arg(add = component_names())]
    pub components: Vec<String>,
    /// The gpg key that signs each entry (its fingerprint goes in SULTANA_BUILD_CACHE_TRUST of those who pull)
    #[arg(long, value_name = "KEY")]
    pub sign: String,
    /// The registry, oci://HOST/REPOSITORY (default: SULTANA_BUILD_CACHE_REMOTE, else the manifest's)
    #[arg(long, value_name = "URL")]
    pub build_cache_remote: Option<String>,
}

#[derive(Debug, Args)]
pub struct CachePruneArgs {
    /// Keep at most SIZE of builds (e.g. 500M, 20G)
    #[arg(long, value_name = "SIZE", value_parser = crate::fsutil::parse_size)]
    pub max_size: Option<u64>,
    /// Also remove git stores unused for 30 days that no checkout borrows objects from
    #[arg(long)]
    pub git: bool,
    /// Also remove compiler-cache (ccache) results unused for 30 days
    #[arg(long)]
    pub ccache: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Components whose tests run (default: every enabled one with tests)
    #[arg(add = component_names())]
    pub components: Vec<String>,
    /// Only the tests of this name
    #[arg(long, value_name = "NAME")]
    pub test: Option<String>,
    /// Write JUnit XML of the run to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub build: BuildSettingsArgs,
}

#[derive(Debug, Args)]
pub struct FlightsArgs {
    #[command(subcommand)]
    pub command: Option<FlightsCommand>,
    /// List this many of the newest flights
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum FlightsCommand {
    /// Remove flights older than the newest N, keeping those classification still reads
    #[command(after_help = "Example: sultana flights prune --keep 100")]
    Prune(FlightsPruneArgs),
}

#[derive(Debug, Args)]
pub struct FlightsPruneArgs {
    /// Keep the newest N flights whole (default: `keep_flights` in [workspace], else 500)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: Option<u64>,
}

#[derive(Debug, Args)]
pub struct HelpArgs {
    /// The command (and subcommand) to explain, e.g. `fetch` or `ci gitlab`
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `--with-system COMP[=PREFIX]`, `--without-system COMP` and the blktap aliases.
#[derive(Debug, Args, Clone, Default)]
pub struct SystemArgs {
    /// Use the installed COMP instead of building it (error if not found), optionally under PREFIX
    #[arg(long = "with-system", value_name = "COMP[=PREFIX]")]
    pub with_system: Vec<String>,
    /// Always build COMP
    #[arg(long = "without-system", value_name = "COMP")]
    pub without_system: Vec<String>,
    /// Same as --with-system blktap[=PREFIX]
    #[arg(long = "with-system-blktap", value_name = "PREFIX", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    pub with_system_blktap: Option<String>,
    /// Same as --without-system blktap
    #[arg(long = "without-system-blktap")]
    pub without_system_blktap: bool,
}

/// `--filter`, `--depth`: how much of each repository a fetch brings.
#[derive(Debug, Args, Clone, Default)]
pub struct TransferArgs {
    /// Fetch a partial clone: `tree:0` (commits only) or `blob:none` (commits and
    /// trees); what a job needs more is fetched when it needs it
    #[arg(long, value_name = "FILTER", value_enum, conflicts_with = "depth")]
    pub filter: Option<FilterArg>,
    /// Fetch only the last N commits of each revision; deepened when a job needs more
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_073_741_824))]
    pub depth: Option<u32>,
    /// Fetch whole histories: completes a partial or shallow store (which
    /// otherwise keeps what it holds)
    #[arg(long, conflicts_with_all = ["filter", "depth"])]
    pub full: bool,
}

/// `--no-build-cache`, `--no-ccache`.
#[derive(Debug, Args, Clone, Default)]
pub struct CacheArgs {
    /// Neither restore from nor store into the shared build cache (local or remote)
    #[arg(long)]
    pub no_build_cache: bool,
    /// The build cache's remote tier: an OCI registry, oci://HOST/REPOSITORY
    /// (default: SULTANA_BUILD_CACHE_REMOTE, else the manifest's [workspace] build_cache_remote)
    #[arg(long, value_name = "URL")]
    pub build_cache_remote: Option<String>,
    /// Do not compile through ccache, even when it is installed
    #[arg(long)]
    pub no_ccache: bool,
}

/// `--env NAME=VALUE`: what reaches the build steps besides the base and
/// what the recipes declare.
#[derive(Debug, Args, Clone, Default)]
pub struct BuildEnvArgs {
    /// Set NAME for every build step (repeatable), e.g. --env debug=y; part of the build's inputs
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Components to build, with their dependencies (default: every enabled one)
    #[arg(add = component_names())]
    pub components: Vec<String>,
    #[command(flatten)]
    pub build: BuildSettingsArgs,
}

/// How `build` and `test` build: system components, kernel headers, caches
/// and the build environment.
#[derive(Debug, Args)]
pub struct BuildSettingsArgs {
    #[command(flatten)]
    pub system: SystemArgs,
    /// Kernel headers for kbuild components (default: SULTANA_KERNEL_HEADERS,
    /// the running kernel's, else the newest /usr/src/linux-headers-*)
    #[arg(long, value_name = "DIR")]
    pub kernel_headers: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub build_env: BuildEnvArgs,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Components to install (default: every enabled one)
    #[arg(add = component_names())]
    pub components: Vec<String>,
    /// Install under DIR instead of /
    #[arg(long, value_name = "DIR")]
    pub destdir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Components to clean (default: all)
    #[arg(add = component_names())]
    pub components: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DistcleanArgs {
    /// Remove checkouts with local work too, after saving it in the cache
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DepsArgs {
    /// Components whose dependencies to list, with what they depend on (default: every enabled one)
    #[arg(add = component_names())]
    pub components: Vec<String>,
    /// Install them with apt-get (needs root on Debian), with what the tests need
    #[arg(long)]
    pub install: bool,
    /// List what the tests need too, after the build's packages
    #[arg(long)]
    pub tests: bool,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Components to look for (default: every enabled one)
    #[arg(add = component_names())]
    pub components: Vec<String>,
    #[command(flatten)]
    pub system: SystemArgs,
}

#[derive(Debug, Args)]
pub struct TarballArgs {
    /// Components to inline besides the root (default: every enabled one with an `intree` path)
    #[arg(add = component_names())]
    pub components: Vec<String>,
    /// The {desc} of the name (default: `git describe --tags` of the root's pinned commit)
    #[arg(long, value_name = "D")]
    pub desc: Option<String>,
    /// Who makes the release, named as the SBOMs' creator: NAME or "NAME <email or url>" (default: the manifest's [tarball] creator)
    #[arg(long, value_name = "WHO")]
    pub sbom_creator: Option<String>,
    /// Name it after xen's own version (`make -C xen xenversion` of the pinned tree), as `make src-tarball-release`
    #[arg(long, conflicts_with = "desc")]
    pub xen_version: bool,
    /// Where to write the tarballs and SHA256SUMS (default: dist/)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// gz, xz, zst or lz; repeat for several (default: the manifest's [tarball] formats)
    #[arg(long = "format", value_name = "F", value_enum)]
    pub formats: Vec<FormatArg>,
    /// Sign each tarball and SHA256SUMS with this gpg key (detached, armored `.asc`)
    #[arg(long, value_name = "KEY")]
    pub sign: Option<String>,
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// A component taken from the system is left out of the tarball
    #[command(flatten)]
    pub system: SystemArgs,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The component to gate
    #[arg(add = component_names())]
    pub component: String,
    /// Test this revision (default: the tip of the component's revision in the manifest)
    #[arg(long, value_name = "REF")]
    pub candidate: Option<String>,
    /// Compare against this revision (default: the component's commit in sultana.lock)
    #[arg(long, value_name = "REF")]
    pub baseline: Option<String>,
    /// Advance the component's commit in sultana.lock when nothing blocks
    #[arg(long)]
    pub push: bool,
    /// With --push, also push the commit to REMOTE:REF (REMOTE a URL or `origin`)
    #[arg(long, value_name = "REMOTE:REF", requires = "push")]
    pub push_ref: Option<String>,
    /// With --push, push a candidate that is not a descendant of the tested commit (a rewind)
    #[arg(long, requires = "push")]
    pub allow_rewind: bool,
    /// Failures these osstest allow-file patterns match do not block
    #[arg(long, value_name = "FILE")]
    pub allow: Option<PathBuf>,
    /// Write the flight's results as JUnit XML
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write osstest's machine-readable summary (also kept in .sultana/flights/N/summary)
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Run a flight even when the candidate is the tested revision (records a baseline)
    #[arg(long)]
    pub always: bool,
    /// After a test fails, then passes, run it N more times on the candidate and N times on
    /// the baseline: failing again while the baseline always passes blocks the push
    #[arg(long, value_name = "N", default_value_t = crate::gate::DEFAULT_FLAKY_RUNS, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub flaky_runs: u32,
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// CI: run only this job of the flight (build-COMP or test-COMP-NAME), leaving its
    /// result and outputs under .sultana/ci for the deciding job
    #[arg(long, value_name = "JOB")]
    pub job: Option<String>,
    /// CI: with --job, test the baseline or the candidate revisions
    #[arg(long = "as", value_name = "SET", value_enum, default_value_t = SetArg::Candidate, requires = "job")]
    pub set: SetArg,
    /// CI: decide from the results the CI jobs left in DIR instead of running a flight
    #[arg(long, value_name = "DIR", conflicts_with = "job")]
    pub results: Option<PathBuf>,
    #[command(flatten)]
    pub system: SystemArgs,
    /// Kernel headers for kbuild components
    #[arg(long, value_name = "DIR")]
    pub kernel_headers: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub build_env: BuildEnvArgs,
}

#[derive(Debug, Args)]
pub struct BisectArgs {
    /// The component whose history is searched
    #[arg(add = component_names())]
    pub component: String,
    /// The job: a test name of the component's recipe, or test-COMP-NAME, or build-COMP
    #[arg(long, value_name = "NAME")]
    pub test: String,
    /// A revision where it passes (default: the component's commit in sultana.lock)
    #[arg(long, value_name = "REV")]
    pub good: Option<String>,
    /// A revision where it fails (default: the tip of the component's revision)
    #[arg(long, value_name = "REV")]
    pub bad: Option<String>,
    #[command(flatten)]
    pub transfer: TransferArgs,
    #[command(flatten)]
    pub system: SystemArgs,
    /// Kernel headers for kbuild components
    #[arg(long, value_name = "DIR")]
    pub kernel_headers: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub build_env: BuildEnvArgs,
}

#[derive(Debug, Args)]
pub struct VerifyTarballArgs {
    /// The tarball (.tar.gz, .tar.xz, .tar.zst or .tar.lz)
    pub file: PathBuf,
    /// Also fetch from the mirrors the tarball's own manifest names (by
    /// default only from each component's url: the tarball is what is checked)
    #[arg(long)]
    pub use_mirrors: bool,
    /// Fetch urls starting with FROM from TO instead (git's insteadOf), e.g.
    /// a local mirror on an air-gapped machine; repeatable
    #[arg(long, value_name = "FROM=TO")]
    pub url_rewrite: Vec<String>,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// A GitLab CI child pipeline: a job per build and test of the flight, then the push decision
    #[command(after_help = "Example: sultana ci gitlab blktap --candidate origin/master > gate.yml")]
    Gitlab(CiArgs),
}

#[derive(Debug, Args)]
pub struct CiArgs {
    /// The component to gate
    #[arg(add = component_names())]
    pub component: String,
    /// The candidate revision (default: the tip of the component's revision)
    #[arg(long, value_name = "REF")]
    pub candidate: Option<String>,
    /// A parent pipeline's job whose artifacts hold sultana (.sultana-bin/bin/sultana);
    /// every job fetches it (needs: pipeline: $PARENT_PIPELINE_ID)
    #[arg(long, value_name = "JOB")]
    pub parent_job: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum OsstestCommand {
    /// The flight's jobs as `cs-job-create FLIGHT JOB RECIPE name=value ...` lines
    #[command(after_help = "Example: sultana osstest flight blktap --flight 12345 --arch amd64")]
    Flight(OsstestFlightArgs),
}

#[derive(Debug, Args)]
pub struct OsstestFlightArgs {
    /// The component to gate
    #[arg(add = component_names())]
    pub component: String,
    /// The candidate revision (default: the tip of the component's revision)
    #[arg(long, value_name = "REF")]
    pub candidate: Option<String>,
    /// The osstest flight number the jobs go into
    #[arg(long, value_name = "N", default_value = "$flight")]
    pub flight: String,
    /// The architecture in the job names
    #[arg(long, value_name = "ARCH", default_value = "amd64")]
    pub arch: String,
    /// The Debian suite of the hosts (osstest's DebianSuite), in the host flags
    #[arg(long, value_name = "SUITE", default_value = "bookworm")]
    pub suite: String,
}

#[derive(Debug, Subcommand)]
pub enum ConfigMkCommand {
    /// Write sultana.toml from the *_UPSTREAM_URL / *_UPSTREAM_REVISION pins of a Config.mk or .config
    #[command(after_help = "Example: sultana config-mk import ~/src/xen/Config.mk")]
    Import(ConfigMkImportArgs),
    /// Print `VAR ?= value` lines Xen's make and osstest's .config accept
    /// (with --locked: the resolved commits)
    #[command(after_help = "Example: sultana --locked config-mk export >> xen/.config")]
    Export,
}

#[derive(Debug, Args)]
pub struct ConfigMkImportArgs {
    /// Xen's Config.mk, or a .config with the same variables
    pub file: PathBuf,
    /// Where to write the manifest (default: sultana.toml here)
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Overwrite an existing manifest
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh or fish
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print, e.g. `fetch` or `ci gitlab` (default: sultana(1))
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
    /// Write every page (sultana.1, sultana-fetch.1, ...) into DIR instead of printing one
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A new or empty folder (default: a new temporary folder, kept)
    #[arg(value_name = "DIR")]
    pub folder: Option<PathBuf>,
    /// Only create the upstream repositories and the workspace
    #[arg(long)]
    pub setup_only: bool,
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
    #[arg(add = component_names())]
    pub components: Vec<String>,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Components to update (default: every enabled one)
    #[arg(add = component_names())]
    pub components: Vec<String>,
    /// Include disabled components (like `subtree-force-update-all`)
    #[arg(long)]
    pub all: bool,
    /// Save local work under refs/sultana/backup/ and update anyway
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Check that sultana.lock pins every enabled component's current intent; exit 1 if not
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Components to show (default: all)
    #[arg(add = component_names())]
    pub components: Vec<String>,
}

/// The clap command: the derived one, plus what is only known at run time
/// (the shipped manifests `init --from` takes).
pub fn command() -> clap::Command {
    let shipped: String = crate::manifest::SHIPPED
        .iter()
        .map(|m| format!("  {:<14}{}\n", m.name, m.summary))
        .collect();
    <Cli as clap::CommandFactory>::command().mut_subcommand("init", |init| {
        let example = init.get_after_help().map(|h| h.to_string()).unwrap_or_default();
        init.after_help(format!("Shipped manifests (--from NAME):\n{shipped}\n{example}"))
    })
}

/// The command line of this process.
pub fn parse() -> Result<Cli, clap::Error> {
    parse_from(std::env::args_os())
}

pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    let mut cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches)?;
    let mut names = Vec::new();
    let mut at = &matches;
    while let Some((name, sub)) = at.subcommand() {
        names.push(name);
        at = sub;
    }
    cli.command_name = names.join(" ");
    Ok(cli)
}

/// Completion of a component argument: the names of the workspace's
/// components (the shell asks `sultana` itself, in the folder it is in).
fn component_names() -> clap_complete::engine::ArgValueCandidates {
    clap_complete::engine::ArgValueCandidates::new(|| {
        crate::commands::component_candidates()
            .into_iter()
            .map(clap_complete::engine::CompletionCandidate::new)
            .collect::<Vec<_>>()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_grouped_name_is_a_command() {
        let names: Vec<String> = super::command()
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        for line in super::COMMAND_GROUPS.lines().filter(|l| l.starts_with("  ")) {
            let name = line.split_whitespace().next().unwrap_or_default();
            assert!(names.iter().any(|n| n == name), "`{name}` is not a command");
        }
    }

    #[test]
    fn every_command_is_in_the_grouped_help() {
        for sub in super::command().get_subcommands() {
            let line = format!("\n  {:<16}", sub.get_name());
            assert!(
                super::COMMAND_GROUPS.contains(line.trim_end()),
                "`{}` is missing from COMMAND_GROUPS",
                sub.get_name()
            );
            assert!(
                sub.get_after_help()
                    .is_some_and(|h| h.to_string().contains("Example: sultana ")),
                "`{}` has no example",
                sub.get_name()
            );
        }
    }
}

/// `sultana env --shell`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EnvShell {
    Sh,
    Fish,
}

/// `sultana completions SHELL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// `--filter`: the partial clones sultana makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FilterArg {
    #[value(name = "tree:0")]
    TreeZero,
    #[value(name = "blob:none")]
    BlobNone,
}

/// `tarball --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Gz,
    Xz,
    Zst,
    Lz,
}

/// `gate --as`: which revisions a CI job tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SetArg {
    Baseline,
    Candidate,
}
