//! `sultana demo`: the whole job on small local upstreams, no network.
//! It creates the fixture repositories, then runs the real commands one
//! after another through this same binary, showing each command line first.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fixtures::{self, Clock};
use crate::printer::Printer;
use crate::process::Cmd;

pub struct Demo {
    pub dir: PathBuf,
    pub upstreams: PathBuf,
    pub workspace: PathBuf,
}

/// Make the upstream repositories and an initialised workspace under `dir`.
pub fn setup(dir: &Path) -> Result<Demo> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        anyhow::bail!(
            "{} is not empty; give `sultana demo` a new or empty folder",
            dir.display()
        );
    }
    let upstreams = dir.join("upstreams");
    let workspace = dir.join("workspace");
    std::fs::create_dir_all(&workspace).with_context(|| format!("cannot create {}", workspace.display()))?;
    let clock = Clock::default();
    fixtures::create_upstreams(&upstreams, &clock)?;
    crate::fsutil::atomic_write(&dir.join("demo.toml"), fixtures::manifest(&upstreams).as_bytes())?;
    fixtures::write_recipes(&workspace)?;
    Ok(Demo {
        dir: dir.to_path_buf(),
        upstreams,
        workspace,
    })
}

/// Run each step as a user would type it, in the workspace.
pub fn run(demo: &Demo, printer: &Printer) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the sultana binary")?;
    let manifest = demo.dir.join("demo.toml");
    let step = |title: &str, args: &[&str]| -> Result<()> {
        printer.out(format!("\n# {title}\n$ sultana {}", args.join(" ")));
        Cmd::new(&exe, "sultana")
            .args(args)
            .cwd(&demo.workspace)
            .env("NO_COLOR", "1")
            .run_with(|line| printer.out(format!("  {line}")))
            .with_context(|| format!("the demo step `sultana {}` failed", args.join(" ")))
    };
    printer.out(format!(
        "sultana demo: upstream repositories in {}\n(an autotools library with `make check`, a make-only tool, a cargo project,\n and a root tree that links the library), workspace in {}",
        demo.upstreams.display(),
        demo.workspace.display()
    ));
    step(
        "Write the manifest (here from the demo's; by default the embedded xen-unstable one)",
        &["init", "--from", &manifest.display().to_string()],
    )?;
    step(
        "Clone every tree at its pin into the workspace, through the shared cache",
        &["fetch"],
    )?;
    step("See each tree's source, intent, pin and state", &["status"])?;
    step(
        "Build in dependency order; independent components in parallel",
        &["build"],
    )?;
    step("Nothing changed: nothing is rebuilt", &["build"])?;

    // Upstream moves on: update shows the range and moves the pin.
    let clock = Clock::default();
    fixtures::commit(
        &demo.upstreams.join("tool"),
        &[(
            "fixtool.c",
            "#include <stdio.h>\nint main(void) { puts(\"fixtool 1.1\"); return 0; }\n".to_string(),
            false,
        )],
        "tool: version 1.1",
        &clock,
    )?;
    step(
        "The tool's upstream got a new commit: move the pins (like make subtree-force-update)",
        &["update"],
    )?;
    step(
        "The tool and the root tree that depends on it are rebuilt; the rest is fresh",
        &["build"],
    )?;
    step(
        "Install what was built into a staging root",
        &["install", "--destdir", &demo.dir.join("root-fs").display().to_string()],
    )?;

    printer.out(format!(
        "\nDone. Everything is in {}. Next, against the real Xen trees (needs the network):\n  mkdir xen-ws && cd xen-ws && sultana init && sultana build",
        demo.dir.display()
    ));
    Ok(())
}
