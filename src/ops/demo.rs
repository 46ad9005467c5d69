//! `sultana demo`: the whole job on small local upstreams, no network.
//! It creates the fixture repositories, then runs the real commands one
//! after another through this same binary, showing each command line first.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

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
        bail!(
            "{} is not empty; give `sultana demo` a new or empty folder",
            dir.display()
        );
    }
    let upstreams = dir.join("upstreams");
    // The upstreams' file:// URLs name this folder: refused before anything
    // is made when a URL cannot hold its path.
    let url = format!("file://{}", upstreams.display());
    if dir.to_str().is_none() {
        bail!(
            "{} is not valid UTF-8; give `sultana demo` another folder",
            dir.display()
        );
    }
    if let Err(e) = crate::validate::check_url(&url) {
        bail!(
            "the demo cannot use {}: {e}; give `sultana demo` another folder",
            dir.display()
        );
    }
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

/// Runs demo steps as a user would type them, in the workspace.
struct Steps<'a> {
    exe: PathBuf,
    demo: &'a Demo,
    printer: &'a Printer,
    count: usize,
}

impl Steps<'_> {
    /// Show the title and the command line, run it, indent its output;
    /// `expect` is the exit code this step should end with.
    fn run(&mut self, title: &str, args: &[&str], expect: i32) -> Result<()> {
        self.count += 1;
        self.printer
            .out(format!("\n── {}. {title}\n$ sultana {}", self.count, args.join(" ")));
        let code = Cmd::new(&self.exe, "sultana")
            .args(args)
            .cwd(&self.demo.workspace)
            .env("NO_COLOR", "1")
            .env_remove("SULTANA_TEST_CRASH_AT")
            .run_with_code(|line| self.printer.out(format!("  {line}")))?;
        if code != Some(expect) {
            bail!(
                "the demo step `sultana {}` ended with {} instead of {expect}",
                args.join(" "),
                code.map_or("a signal".to_string(), |c| format!("exit {c}"))
            );
        }
        Ok(())
    }

    /// Something that happens upstream, between two steps.
    fn upstream(&mut self, repo: &str, path: &'static str, content: &str, message: &str) -> Result<()> {
        self.printer.out(format!("\n   (upstream, {repo}: \"{message}\")"));
        fixtures::commit(
            &self.demo.upstreams.join(repo),
            &[(path, content.to_string(), false)],
            message,
            &Clock::default(),
        )?;
        Ok(())
    }
}

/// Run each step as a user would type it, in the workspace.
pub fn run(demo: &Demo, printer: &Printer) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the sultana binary")?;
    // The build cache's entries before: those after that are new, the demo's.
    let builds_before: std::collections::BTreeSet<String> = crate::build::BuildCache::locate()?
        .entries()
        .into_iter()
        .map(|e| e.key)
        .collect();
    let mut steps = Steps {
        exe,
        demo,
        printer,
        count: 0,
    };
    let manifest = demo.dir.join("demo.toml").display().to_string();
    let out = demo.dir.join("releases").display().to_string();
    printer.out(format!(
        "sultana demo: upstream repositories in {}\n\
         (an autotools library with `make check`, a make-only tool, a cargo project,\n \
         and a root tree that links the library); the workspace is {}",
        demo.upstreams.display(),
        demo.workspace.display()
    ));
    steps.run(
        "Write the manifest (by default `sultana init` writes the embedded xen-unstable one)",
        &["init", "--from", &manifest],
        0,
    )?;
    steps.run("Clone every tree at its pin, through the shared cache", &["fetch"], 0)?;
    steps.run("Each tree's source, intent, pin and state", &["status"], 0)?;
    steps.run(
        "Build in dependency order, independent trees in parallel",
        &["build"],
        0,
    )?;
    steps.run("Nothing changed: nothing is rebuilt", &["build"], 0)?;
    steps.run(
        "A release tarball: the root tree with the others inlined (like mktarball)",
        &["tarball", "--out", &out],
        0,
    )?;
    let tarball = demo.dir.join("releases").join("root-v1.0.tar.gz").display().to_string();
    steps.run(
        "Anyone can check it: made again from the lock inside, byte for byte",
        &["verify-tarball", &tarball],
        0,
    )?;
    steps.run(
        "The push gate of libfix records a tested baseline first",
        &["gate", "libfix", "--always"],
        0,
    )?;
    steps.upstream(
        "libfix",
        "fix.c",
        "#include \"fix.h\"\n/* reviewed */\nint fix_add(int a, int b) { return a + b; }\n",
        "libfix: a reviewed change",
    )?;
    steps.run(
        "The gate tests the new commit with everything that uses it, and pushes the pin",
        &["gate", "libfix", "--push"],
        0,
    )?;
    steps.upstream(
        "libfix",
        "fix.c",
        "#include \"fix.h\"\nint fix_add(int a, int b) { return a + b + 1; }\n",
        "libfix: off by one",
    )?;
    steps.run(
        "A regression: the gate refuses to push it (exit 1) and says what broke",
        &["gate", "libfix", "--push"],
        1,
    )?;
    steps.upstream(
        "tool",
        "fixtool.c",
        "#include <stdio.h>\nint main(void) { puts(\"fixtool 1.1\"); return 0; }\n",
        "tool: version 1.1",
    )?;
    steps.run(
        "Move the pins to the branch tips (like make subtree-force-update)",
        &["update", "tool"],
        0,
    )?;
    steps.run("Only what changed is rebuilt", &["build"], 0)?;
    steps.run(
        "Install what was built into a staging root",
        &["install", "--destdir", &demo.dir.join("root-fs").display().to_string()],
        0,
    )?;
    printer.out(format!("\nDone: everything is in {}.", demo.dir.display()));
    printer.out(left_in_cache(demo, &builds_before)?);
    printer.out(
        "Next, the real Xen trees (needs the network to reach them):\n  \
         mkdir xen-ws && cd xen-ws && sultana init && sultana build",
    );
    Ok(())
}

/// What the demo left outside its folder: a store per upstream in the
/// shared git cache, its builds in the build cache, compiler results in
/// ccache's; and how to remove them with the folder.
fn left_in_cache(demo: &Demo, builds_before: &std::collections::BTreeSet<String>) -> Result<String> {
    let text = std::fs::read_to_string(demo.dir.join("demo.toml"))?;
    let manifest = crate::manifest::Manifest::parse(&text, "demo.toml", None)?;
    let cache = crate::git::Cache::locate()?;
    let mut paths = Vec::new();
    let mut stores = 0;
    let mut bytes = 0;
    for component in &manifest.components {
        let store = cache.store_dir(&component.url);
        if store.is_dir() {
            bytes += crate::fsutil::size_of(&store);
            paths.push(PathBuf::from(format!("{}.lock", store.display())));
            paths.push(store);
            stores += 1;
        }
    }
    let builds = crate::build::BuildCache::locate()?;
    let mut entries = 0;
    let mut build_bytes = 0;
    for entry in builds.entries() {
        if !builds_before.contains(&entry.key) {
            build_bytes += entry.bytes;
            paths.push(builds.root().join(&entry.key));
            entries += 1;
        }
    }
    if paths.is_empty() {
        return Ok(String::new());
    }
    let mut said = vec![format!(
        "{stores} store(s) in the shared git cache {} ({:.1} MB), one per demo upstream (the workspace's checkouts borrow their objects)",
        cache.root().display(),
        bytes as f64 / 1e6
    )];
    if entries > 0 {
        said.push(format!(
            "{entries} build(s) in the build cache {} ({:.1} MB)",
            builds.root().display(),
            build_bytes as f64 / 1e6
        ));
    }
    let ccache = crate::fsutil::cache_home()?.join("ccache");
    let ccache_note = if which::which("ccache").is_ok() && ccache.is_dir() {
        format!(
            "\nIts compiler results went into the shared compiler cache {} too, mixed with others' \
             (`sultana cache prune --ccache` drops those unused for 30 days).",
            ccache.display()
        )
    } else {
        String::new()
    };
    let quoted: Vec<String> = std::iter::once(demo.dir.clone())
        .chain(paths)
        .map(|p| crate::process::shell_quote(&p.display().to_string()))
        .collect();
    Ok(format!(
        "It also left {}.\nTo remove it all:\n  rm -rf {}{ccache_note}",
        said.join(", and "),
        quoted.join(" ")
    ))
}
