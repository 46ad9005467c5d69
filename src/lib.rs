//! sultana: the Xen Project's external trees, fetched, built, packed and gated.

// The layers, each a folder: util (level 0), model (the user's files),
// sources (git and the trees), ops (build, tarball, gate, vm), and the
// command line (cli, commands). Their modules keep short paths
// (`crate::fsutil`, `crate::build`) through the re-exports below.
mod cli;
mod commands;
mod model;
mod ops;
mod sources;
mod testing;
mod util;

pub(crate) use model::{lock, session, workspace};
pub(crate) use ops::{build, config_mk, demo, detect, gate, tarball, vm};
pub(crate) use sources::{git, sync};
pub(crate) use util::{error, fault, fsutil, glob, oci_url, parallel, printer, process, symlinks, timefmt, validate};

// The testing face: what the integration tests, the demo and the fuzz
// targets reach; not an API.
#[doc(hidden)]
pub use model::{manifest, recipe};
#[doc(hidden)]
pub use testing::fixtures;
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub use testing::fuzzing;

use crate::printer::{Printer, Verbosity};

/// Whether the command line (without the program name) is one sultana
/// accepts; the error clap would print otherwise. For documentation tests.
pub fn accepts(args: &[&str]) -> Result<(), String> {
    let argv = std::iter::once("sultana").chain(args.iter().copied());
    match cli::parse_from(argv) {
        Ok(_) => Ok(()),
        Err(e) if !e.use_stderr() => Ok(()), // --help, --version
        Err(e) => Err(e.to_string()),
    }
}

/// The manual page as `sultana man` prints it (roff).
pub fn man_page() -> anyhow::Result<Vec<u8>> {
    commands::man_page()
}

/// Every manual page `sultana man --out DIR` writes: file name and roff text.
pub fn man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    Ok(commands::man_pages()?.into_iter().map(|p| (p.file, p.text)).collect())
}

/// Parse the command line, run the command, and return the exit code.
pub fn run() -> i32 {
    commands::answer_completion_request();
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                error::EXIT_ERROR
            } else {
                error::EXIT_OK
            };
        }
    };
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        _ => Verbosity::Verbose,
    };
    let printer = Printer::new(verbosity, cli.json);
    let command = cli.command_name.clone();
    match commands::dispatch(cli, &printer) {
        Ok(()) => {
            printer.finish_json(&command, None);
            error::EXIT_OK
        }
        Err(err) => {
            let code = error::exit_code(&err);
            let mut chain = err.chain().map(|c| c.to_string());
            let head = chain.next().unwrap_or_default();
            let causes: Vec<String> = chain.collect();
            let mut text = head.clone();
            for cause in &causes {
                text.push_str(&format!("\n  caused by: {cause}"));
            }
            printer.error(&text);
            printer.finish_json(
                &command,
                Some(serde_json::json!({ "message": head, "causes": causes, "exit_code": code })),
            );
            code
        }
    }
}
