//! `completions` and `man`: generated from the command-line definition.

use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::{self, CompletionsArgs, ManArgs};
use crate::printer::Printer;

pub fn completions(args: CompletionsArgs) -> Result<()> {
    let shell = match args.shell.as_str() {
        "bash" => clap_complete::Shell::Bash,
        "zsh" => clap_complete::Shell::Zsh,
        _ => clap_complete::Shell::Fish,
    };
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cli::command(), "sultana", &mut text);
    print(&text)
}

/// To stdout; a reader that went away (`| head`) is not an error.
fn print(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The manual page, roff.
pub fn man_page() -> Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cli::command())
        .date("")
        .render(&mut page)
        .context("cannot render the manual page")?;
    Ok(page)
}

pub fn man(args: ManArgs, printer: &Printer) -> Result<()> {
    let page = man_page()?;
    match args.out {
        Some(dir) => {
            let file = dir.join("sultana.1");
            crate::fsutil::atomic_write(&file, &page)?;
            printer.status("Wrote", file.display());
        }
        None => print(&page)?,
    }
    Ok(())
}
