//! `run`, `env` and `shell`: commands in the environment of what `build`
//! staged.

use std::ffi::OsString;

use anyhow::{bail, Result};

use super::Globals;
use crate::build::{self, RunEnv};
use crate::cli::{EnvArgs, RunArgs, ShellArgs};
use crate::printer::Printer;
use crate::process::{self, Cmd, ProcessError};

fn environment(globals: &Globals, printer: &Printer) -> Result<RunEnv> {
    let ws = globals.workspace(printer)?;
    let env = build::run_env(&ws, &|name| std::env::var(name).ok())?;
    if env.components.is_empty() {
        printer.warn("nothing is built here yet: run `sultana build` first");
    }
    Ok(env)
}

/// Become `program args…` in the environment; returns only on failure.
fn exec(env: &RunEnv, program: &OsString, args: &[OsString]) -> Result<()> {
    let mut cmd = Cmd::new(program, "").args(args);
    for (key, value) in &env.vars {
        cmd = cmd.env(key, value);
    }
    match cmd.exec() {
        ProcessError::ToolMissing { tool, .. } => {
            bail!("`{tool}` was not found (PATH has the built components' bin and sbin first, then yours)")
        }
        other => Err(other.into()),
    }
}

pub fn run(globals: &Globals, args: RunArgs, printer: &Printer) -> Result<()> {
    let env = environment(globals, printer)?;
    let Some((program, rest)) = args.command.split_first() else {
        bail!("give the command to run: `sultana run -- COMMAND [ARGS…]`");
    };
    exec(&env, program, rest)
}

pub fn shell(globals: &Globals, args: ShellArgs, printer: &Printer) -> Result<()> {
    let env = environment(globals, printer)?;
    let shell = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    if args.args.is_empty() {
        printer.status(
            "Starting",
            format!(
                "{} with {} on PATH; `exit` to leave",
                shell.to_string_lossy(),
                env.components.join(", ")
            ),
        );
    }
    exec(&env, &shell, &args.args)
}

pub fn env(globals: &Globals, args: EnvArgs, printer: &Printer) -> Result<()> {
    let env = environment(globals, printer)?;
    printer.json(&serde_json::json!({
        "components": env.components,
        "env": env.vars.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
    }));
    let lines: Vec<String> = env
        .vars
        .iter()
        .map(|(key, value)| match args.shell {
            crate::cli::EnvShell::Fish => format!("set -gx {key} {};", fish_quote(value)),
            crate::cli::EnvShell::Sh => format!("export {key}={}", process::shell_quote(value)),
        })
        .collect();
    printer.out(lines.join("\n"));
    Ok(())
}

/// fish's single quotes: a backslash and a quote are escaped inside them.
fn fish_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::fish_quote;

    #[test]
    fn fish_reads_back_what_fish_quote_wrote() {
        assert_eq!(fish_quote("it's"), "'it\\'s'");
        let hostile = "a'b\\c $HOME (echo x) \\' \"q\"\n; end; echo no";
        let Ok(fish) = which::which("fish") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "fish is needed under CI (Debian fish)"
            );
            eprintln!("skipped: fish is not installed");
            return;
        };
        let out = std::process::Command::new(fish)
            .arg("--no-config")
            .arg("-c")
            .arg(format!("set -l v {}; printf %s $v", fish_quote(hostile)))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), hostile);
    }
}
