//! The documentation cannot rot: every `sultana` command in README.md is one
//! the CLI accepts, and the README's command blocks run, in order, in a
//! workspace shaped like Xen's (xen, blktap, qemu-xen, seabios) whose trees
//! are the fixture projects. The shipped man page is current; completions
//! and the grouped help work.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The lines of the README's ```sh blocks.
fn command_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("```") {
            inside = line == "```sh";
            continue;
        }
        if inside && !line.trim().is_empty() {
            out.push(line.trim().to_string());
        }
    }
    out
}

/// Every `sultana …` in the README: in command blocks (split at `&&`) and in
/// inline code.
fn sultana_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in command_lines(text) {
        for part in line.split("&&") {
            let part = part.trim();
            if part.starts_with("sultana ") || part == "sultana" {
                out.push(part.to_string());
            }
        }
    }
    for span in text.split('`').skip(1).step_by(2) {
        if let Some(rest) = span.strip_prefix("sultana ") {
            if !rest.contains('…') && !rest.contains('|') && !rest.contains("COMMAND") && !rest.contains('<') {
                out.push(span.to_string());
            }
        }
    }
    out
}

/// What the README claims of the project, checked against it.
#[test]
fn the_readme_tells_the_truth() {
    let text = readme();
    // It stands alone: nothing outside the repository.
    for outside in ["../shared", "DESIGN.md", "seeds/"] {
        assert!(!text.contains(outside), "the README refers to {outside}");
    }
    // The quick start works as root without sudo: no bare `sudo` command.
    let quick = command_lines(&text)
        .into_iter()
        .find(|l| l.contains("apt-get install"))
        .unwrap();
    assert!(!quick.contains("sudo apt-get"), "{quick}");
    // blktap's recipe "in full" is the shipped file.
    let start = text.find("blktap's, in full:").unwrap();
    let block = &text[start..];
    let block = &block[block.find("```toml\n").unwrap() + 8..];
    let block = &block[..block.find("```").unwrap()];
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/blktap.toml")).unwrap();
    assert_eq!(block, shipped, "the README's blktap recipe is not the shipped one");
    // `update --all` names every disabled component of the default manifest.
    let row = text.lines().find(|l| l.contains("`sultana update --all`")).unwrap();
    let manifest = sultana::manifest::Manifest::parse(
        sultana::manifest::shipped(sultana::manifest::DEFAULT_NAME).unwrap(),
        "default",
        None,
    )
    .unwrap();
    for disabled in manifest.components.iter().filter(|c| !c.enabled) {
        assert!(row.contains(&disabled.name), "{row} lacks {}", disabled.name);
    }
}

#[test]
fn every_readme_command_is_accepted_by_the_cli() {
    let commands = sultana_commands(&readme());
    assert!(commands.len() > 30, "{commands:?}");
    for command in commands {
        // The command itself, not what the shell does with its output.
        let args: Vec<&str> = command
            .split_whitespace()
            .skip(1)
            .take_while(|w| !matches!(*w, ">" | ">>" | "|" | ";" | "&&"))
            .collect();
        if let Err(e) = sultana::accepts(&args) {
            panic!("README shows `{command}`, which sultana refuses:\n{e}");
        }
    }
}

fn fixture_commit(dir: &Path, path: &'static str, content: &str, message: &str) {
    let clock = sultana::fixtures::Clock::default();
    sultana::fixtures::commit(dir, &[(path, content.to_string(), false)], message, &clock).unwrap();
}

/// xen, blktap, qemu-xen and seabios as the README names them, made of the
/// fixture projects (root, libfix, tool, rusty) with recipes to match.
fn xen_shaped_workspace(ctx: &TestContext) {
    let clock = sultana::fixtures::Clock::default();
    let upstreams = sultana::fixtures::create_upstreams(&ctx.upstreams, &clock).unwrap();
    let url = |name: &str| {
        let path = &upstreams.iter().find(|(n, _)| *n == name).unwrap().1;
        format!("file://{}", path.display())
    };
    ctx.write(
        "sultana.toml",
        &format!(
            "[workspace]\nname = \"xen-unstable\"\n\n[tarball]\nroot = \"xen\"\nname = \"xen-{{desc}}\"\n\n\
             [components.xen]\nurl = \"{}\"\nrevision = \"master\"\ndepends = [\"qemu-xen\", \"seabios\", \"blktap\"]\n\n\
             [components.qemu-xen]\nurl = \"{}\"\nrevision = \"master\"\nintree = \"tools/qemu-xen\"\nsubmodules = true\n\n\
             [components.seabios]\nurl = \"{}\"\nrevision = \"master\"\nintree = \"tools/firmware/seabios-dir\"\n\n\
             [components.blktap]\nurl = \"{}\"\nrevision = \"master\"\nintree = \"tools/blktap\"\n",
            url("root"),
            url("tool"),
            url("rusty"),
            url("libfix")
        ),
    );
    let dir = ctx.work.join("recipes");
    let rename = |from: &str| from.replace("{dep.libfix.", "{dep.blktap.");
    std::fs::create_dir_all(dir.join("tests/blktap")).unwrap();
    std::fs::write(dir.join("xen.toml"), rename(sultana::fixtures::root().recipe)).unwrap();
    std::fs::write(dir.join("qemu-xen.toml"), sultana::fixtures::tool().recipe).unwrap();
    for (name, project) in [
        ("xen", sultana::fixtures::root()),
        ("qemu-xen", sultana::fixtures::tool()),
    ] {
        std::fs::create_dir_all(dir.join("tests").join(name)).unwrap();
        for (file, content) in &project.tests {
            std::fs::write(dir.join("tests").join(name).join(file), content).unwrap();
        }
    }
    std::fs::write(dir.join("seabios.toml"), sultana::fixtures::rusty().recipe).unwrap();
    // blktap: the library, with its tests under blktap's names.
    let libfix = sultana::fixtures::libfix();
    let recipe = libfix.recipe.split("[[test]]").next().unwrap().to_string();
    let mut recipe = recipe;
    for name in ["mock-tests", "vhd", "tapdisk-nbd"] {
        recipe.push_str(&format!("[[test]]\nname = \"{name}\"\ntimeout = 120\n\n"));
    }
    std::fs::write(dir.join("blktap.toml"), recipe).unwrap();
    let check = libfix.tests.iter().find(|(f, _)| *f == "check.sh").unwrap().1;
    let disk = libfix.tests.iter().find(|(f, _)| *f == "disk.sh").unwrap().1;
    std::fs::write(dir.join("tests/blktap/mock-tests.sh"), check).unwrap();
    std::fs::write(dir.join("tests/blktap/vhd.sh"), disk).unwrap();
    std::fs::write(dir.join("tests/blktap/tapdisk-nbd.sh"), check).unwrap();
}

/// Run a README line with `sh -c`, sultana on PATH, in `dir`.
fn shell(ctx: &TestContext, dir: &Path, line: &str) -> std::process::Output {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_sultana"));
    let path = format!(
        "{}:{}",
        exe.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = ctx.command(dir, &[]);
    let envs: Vec<(std::ffi::OsString, std::ffi::OsString)> = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect();
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(line).current_dir(dir).env_clear();
    for (k, v) in envs {
        sh.env(k, v);
    }
    sh.env("PATH", path).env("TMPDIR", ctx.root.join("tmp"));
    let _ = &mut cmd;
    sh.output().unwrap()
}

#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make, have_qemu_img, have_tar)),
    ignore = "needs autoreconf, cargo, gcc, make, qemu-img, tar"
)]
fn the_readme_runs() {
    require("autoreconf", "the autotools fixture (Debian autoconf, automake)");
    require("make", "the fixture builds");
    require("gcc", "the fixture builds");
    require("cargo", "the cargo fixture");
    require("qemu-img", "the fixture's disk test (Debian qemu-utils)");
    require("tar", "unpacking the tarball");
    let ctx = TestContext::new();
    std::fs::create_dir_all(ctx.root.join("tmp")).unwrap();
    xen_shaped_workspace(&ctx);
    let libfix = ctx.upstreams.join("libfix");
    let mut ran = 0;
    for line in command_lines(&readme()) {
        // Only what cannot run here is not run; each says why.
        let why_not = if line.contains("apt-get install") {
            Some("installs packages and sultana itself (.ci/run does that part)")
        } else if line.starts_with("cargo test") {
            Some("is this very test suite")
        } else if line.contains("sultana init && sultana build") {
            Some("needs the network to reach the real trees")
        } else if line.starts_with("sultana run -- vhd-util") {
            Some("needs blktap's vhd-util (the fixture blktap is a small library)")
        } else if line == "sultana shell" {
            Some("starts an interactive shell")
        } else if line.contains("SULTANA_BUILD_CACHE") || line.contains("cache push") {
            Some("needs an OCI registry and a signing key (remote_cache.rs runs this on docker-registry)")
        } else if line.contains("--with-system-blktap=/usr/local") {
            Some("needs blktap installed under /usr/local")
        } else {
            None
        };
        if let Some(why) = why_not {
            eprintln!("not run: `{line}` {why}");
            continue;
        }
        // What happens upstream between the README's gate commands.
        if line.starts_with("sultana gate blktap --push --junit") {
            fixture_commit(
                &libfix,
                "fix.c",
                "#include \"fix.h\"\n/* reviewed */\nint fix_add(int a, int b) { return a + b; }\n",
                "good",
            );
        }
        if line.starts_with("sultana bisect") {
            fixture_commit(&libfix, "NEWS", "1.1\n", "news");
            fixture_commit(
                &libfix,
                "fix.c",
                "#include \"fix.h\"\nint fix_add(int a, int b) { return a + b + 1; }\n",
                "off by one",
            );
            fixture_commit(&libfix, "NEWS", "1.2\n", "more news");
        }
        if line.contains("--allow allow.blktap") {
            ctx.write("allow.blktap", "test-blktap-@@\ntest-xen-app\n");
        }
        let line = line.replace(" /tmp/", &format!(" {}/tmp/", ctx.root.display()));
        let output = shell(&ctx, &ctx.work, &line);
        assert!(
            output.status.success(),
            "README line `{line}` failed ({:?}):\n--- stdout\n{}\n--- stderr\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 15, "ran only {ran} README lines");
    // What those lines did is what the README says they do.
    let gate = std::fs::read_to_string(ctx.work.join("gate.summary")).unwrap();
    assert!(gate.contains("perfect"), "{gate}");
    let upstream = git2::Repository::open(&libfix).unwrap();
    let pushed = upstream.find_reference("refs/heads/xen-tested-master").unwrap();
    assert_eq!(pushed.target().unwrap().to_string(), ctx.lock_commit("blktap"));
    assert!(
        ctx.work.join("xen-4.21.0/dist/xen/usr/local/bin/rootapp").is_file(),
        "the unpacked tarball was built"
    );
    // The README's `sultana init` in an empty folder writes the embedded manifest.
    let empty = ctx.dir("xen-ws");
    let output = shell(&ctx, &empty, "sultana init");
    assert!(output.status.success());
    assert!(std::fs::read_to_string(empty.join("sultana.toml"))
        .unwrap()
        .contains("xapi-project/blktap"));
    // And the demo ran (first README line's last command) in the test's TMPDIR.
    let output = shell(&ctx, &ctx.root, "sultana demo");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "$ sultana fetch",
        "$ sultana tarball",
        "identical to what its lock gives",
        "Pushed libfix",
        "Regressions :-(",
        "Done: everything is in",
        "store(s) in the shared git cache",
    ] {
        assert!(out.contains(expected), "demo output lacks {expected:?}:\n{out}");
    }
    // The line it gives to remove what it left names the cache's stores
    // and their locks, which exist.
    let rm = out.lines().find(|l| l.trim_start().starts_with("rm -rf ")).unwrap();
    let paths: Vec<&str> = rm.split_whitespace().skip(2).collect();
    let in_cache: Vec<&&str> = paths
        .iter()
        .filter(|p| p.starts_with(&*ctx.cache.to_string_lossy()))
        .collect();
    assert!(in_cache.len() > 8, "four stores, their locks and the builds: {rm}");
    for path in &paths {
        assert!(Path::new(path).exists(), "{path} in `{rm}`");
    }
    // Run as given, it leaves no store and no build of the demo behind:
    // the cache's entries besides are those of an earlier demo run.
    let builds = || {
        std::fs::read_dir(ctx.cache.join("sultana/builds"))
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    };
    let builds_before = builds();
    let removed = Command::new("sh").args(["-c", rm.trim()]).status().unwrap();
    assert!(removed.success());
    for path in &paths {
        assert!(!Path::new(path).exists(), "{path} in `{rm}`");
    }
    let builds_named = paths.iter().filter(|p| p.contains("/sultana/builds/")).count();
    assert!(builds_named > 0, "{rm}");
    assert_eq!(builds(), builds_before - builds_named);
}

/// The shipped pages in man/ are the ones `sultana man --out` writes: one
/// per command, none stale, none left over from a removed command.
#[test]
fn the_shipped_man_pages_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let stale = "is stale: run `cargo run -- man --out man` and commit man/";
    let pages = sultana::man_pages().unwrap();
    for (file, text) in &pages {
        let shipped = std::fs::read(dir.join(file)).unwrap_or_default();
        assert!(&shipped == text, "man/{file} {stale}");
    }
    let mut shipped: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    shipped.sort();
    let mut expected: Vec<String> = pages.iter().map(|(f, _)| f.clone()).collect();
    expected.sort();
    assert_eq!(shipped, expected, "man/ {stale}");

    // `man --out` writes them all; `man COMMAND` prints one.
    let ctx = TestContext::new();
    ctx.sultana(&["man", "--out", "pages"]).success();
    assert_eq!(files_below(&ctx.work.join("pages")).len(), pages.len());
    ctx.sultana(&["man", "ci", "gitlab"])
        .success()
        .stdout_has(".TH sultana-ci-gitlab 1")
        .stdout_has("EXIT STATUS");
    ctx.sultana(&["man", "nope"])
        .code(2)
        .stderr_has("`sultana nope` is not a command");
}

#[test]
fn completions_and_grouped_help() {
    let ctx = TestContext::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = ctx.sultana(&["completions", shell]).success();
        assert!(run.stdout.contains("SULTANA_COMPLETE"), "{shell}");
    }
    ctx.sultana(&["completions", "tcsh"]).code(2);
    // bash, through the script it sources: commands, then the component
    // names of the workspace the shell is in.
    let up = ctx.upstream("up");
    ctx.write(
        "sultana.toml",
        &format!(
            "[components.blktap]\nurl = \"{0}\"\nrevision = \"master\"\n\n[components.blktap-module]\nurl = \"{0}\"\nrevision = \"master\"\n",
            up.url()
        ),
    );
    let script = ctx.sultana(&["completions", "bash"]).success().stdout;
    ctx.write("complete.bash", &script);
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_sultana")).parent().unwrap();
    let complete = |words: &str| {
        let line = format!(
            "source ./complete.bash; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMP_TYPE=9; \
             _clap_complete_sultana sultana \"${{COMP_WORDS[COMP_CWORD]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &line])
            .current_dir(&ctx.work)
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
            .env("HOME", &ctx.home)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = complete("sultana verify");
    assert!(listed.contains("verify-tarball"), "{listed}");
    let listed = complete("sultana build blk");
    let names: Vec<&str> = listed.lines().collect();
    assert_eq!(names, ["blktap", "blktap-module"], "{listed}");
    let listed = complete("sultana gate blktap-");
    assert_eq!(listed.trim(), "blktap-module");
    let help = ctx.sultana(&["--help"]).success();
    for group in ["Trees:", "Build:", "Release:", "Push gate:"] {
        assert!(help.stdout.contains(group), "{}", help.stdout);
    }
    ctx.sultana(&["help", "gate"])
        .success()
        .stdout_has("Example: sultana gate blktap");
    ctx.sultana(&["man"]).success().stdout_has(".TH sultana 1");
}

/// Each command's help shows its own options first and the global ones
/// under their own heading; `help` takes --help like any command; `init
/// --help` lists the shipped manifests.
#[test]
fn help_shows_a_commands_own_options_first() {
    let ctx = TestContext::new();
    let help = ctx.sultana(&["tarball", "--help"]).success().stdout;
    let own = help.find("--desc").expect("tarball's own option");
    let heading = help.find("Global options:").expect("a heading for the global options");
    let global = help.find("--offline").expect("a global option");
    assert!(own < heading && heading < global, "{help}");
    assert_eq!(ctx.sultana(&["help", "tarball"]).success().stdout, help);

    ctx.sultana(&["help", "--help"])
        .success()
        .stdout_has("Usage: sultana help [OPTIONS] [COMMAND]...");
    ctx.sultana(&["help", "nope"])
        .code(2)
        .stderr_has("`sultana nope` is not a command");
    let init = ctx.sultana(&["init", "--help"]).success();
    for name in ["xen-unstable", "xen-4.21", "xen-4.20"] {
        assert!(init.stdout.contains(&format!("\n  {name} ")), "{}", init.stdout);
    }
}

/// Every shell script the project ships (recipe tests, CI and osstest
/// scripts) passes shellcheck.
#[test]
#[cfg_attr(not(have_shellcheck), ignore = "needs shellcheck")]
fn shipped_scripts_pass_shellcheck() {
    require("shellcheck", "checking the shipped shell scripts (Debian shellcheck)");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "sh")
                || std::fs::read_to_string(&path).is_ok_and(|t| {
                    t.starts_with("#!/bin/sh") || t.starts_with("#!/bin/bash") || t.starts_with("#!/usr/bin/env bash")
                })
            {
                out.push(path);
            }
        }
    }
    for dir in ["recipes", "ci", "osstest", "benches", ".ci"] {
        walk(&root.join(dir), &mut scripts);
    }
    assert!(scripts.len() >= 5, "{scripts:?}");
    let output = Command::new("shellcheck").arg("-x").args(&scripts).output().unwrap();
    assert!(
        output.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// osstest's step scripts are Perl: they pass perlcritic.
#[test]
#[cfg_attr(not(have_perlcritic), ignore = "needs perlcritic")]
fn osstest_steps_pass_perlcritic() {
    require(
        "perlcritic",
        "checking osstest's Perl step scripts (Debian libperl-critic-perl)",
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("osstest");
    let steps: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ts-")))
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    let output = Command::new("perlcritic")
        .arg("--gentle")
        .args(&steps)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "perlcritic:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
