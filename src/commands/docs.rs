//! `completions` and `man`: generated from the command-line definition.

use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::{self, CompletionsArgs, HelpArgs, ManArgs};
use crate::printer::Printer;

use super::manual;

/// The variable under which the shell asks `sultana` for completions
/// (`SULTANA_COMPLETE=bash sultana -- …`): sultana answers from its own
/// command line and, for component arguments, the workspace it is in.
pub const COMPLETE_VAR: &str = "SULTANA_COMPLETE";

/// The script a shell sources: it calls `sultana` back for each completion,
/// so component names come from the workspace in the current folder.
pub fn completions(args: CompletionsArgs, printer: &Printer) -> Result<()> {
    use clap_complete::env::EnvCompleter;
    let shell: &dyn EnvCompleter = match args.shell {
        crate::cli::CompletionShell::Bash => &clap_complete::env::Bash,
        crate::cli::CompletionShell::Zsh => &clap_complete::env::Zsh,
        crate::cli::CompletionShell::Fish => &clap_complete::env::Fish,
    };
    let mut text = Vec::new();
    shell.write_registration(COMPLETE_VAR, "sultana", "sultana", "sultana", &mut text)?;
    emit(printer, "script", &text)
}

/// Answer a shell's completion request when this run is one (and exit).
pub fn answer_completion_request() {
    clap_complete::CompleteEnv::with_factory(cli::command)
        .var(COMPLETE_VAR)
        .complete();
}

/// The component names of the workspace in the current folder, for
/// completion: none (and no message) when there is no readable one.
pub fn component_candidates() -> Vec<String> {
    crate::workspace::Workspace::discover(&crate::workspace::WorkspaceOptions::default())
        .map(|ws| ws.manifest.components.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// The text on stdout, or with `--json` inside the one document.
fn emit(printer: &Printer, key: &str, bytes: &[u8]) -> Result<()> {
    if printer.is_json() {
        printer.json(&serde_json::json!({ key: String::from_utf8_lossy(bytes) }));
        return Ok(());
    }
    print(bytes)
}

/// `sultana help [COMMAND…]`: the same text as `sultana COMMAND… --help`.
pub fn help(args: HelpArgs, printer: &Printer) -> Result<()> {
    let mut command = cli::command().bin_name("sultana");
    command.build();
    let mut at = &mut command;
    let mut path = String::from("sultana");
    for name in &args.command {
        path.push(' ');
        path.push_str(name);
        at = match at.find_subcommand_mut(name) {
            Some(sub) => sub,
            None => {
                anyhow::bail!("`{path}` is not a command; `sultana --help` lists them")
            }
        };
    }
    let help = at.render_help();
    use std::io::IsTerminal;
    let text = if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        help.ansi().to_string()
    } else {
        help.to_string()
    };
    emit(printer, "help", text.as_bytes())
}

/// To stdout; a reader that went away (`| head`) is not an error.
fn print(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The manual page of `sultana`, roff.
pub fn man_page() -> Result<Vec<u8>> {
    Ok(manual::page(&[])?.text)
}

/// `sultana man [COMMAND…]` prints one page; `--out DIR` writes them all.
pub fn man(args: ManArgs, printer: &Printer) -> Result<()> {
    match args.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let pages = manual::pages()?;
            for page in &pages {
                crate::fsutil::atomic_write(&dir.join(&page.file), &page.text)?;
            }
            printer.status("Wrote", format!("{} manual pages into {}", pages.len(), dir.display()));
            printer.json(&serde_json::json!({
                "pages": pages.iter().map(|p| dir.join(&p.file)).collect::<Vec<_>>()
            }));
        }
        None => emit(printer, "page", &manual::page(&args.command)?.text)?,
    }
    Ok(())
}
