//! kill -9 at deterministic points of fetch, update, build, tarball and a
//! gate flight, then the same command again: it must end in exactly the
//! state an uninterrupted run gives, with no user change lost.
//!
//! Each scenario first runs once uninterrupted with SULTANA_TEST_TRACE to
//! list every kill point it reaches (`name#n`: the n-th time the point is
//! reached); a seeded shuffle picks which to try. SULTANA_KILL_SEED changes
//! the pick; SULTANA_KILL_ALL=1 tries every point.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::*;

/// A scenario: how to reach the state before the command, the command,
/// and what of the end state must equal the uninterrupted run's.
struct Scenario {
    name: &'static str,
    setup: fn(&TestContext),
    command: &'static [&'static str],
    snapshot: fn(&TestContext) -> BTreeMap<String, String>,
    /// How many of its kill points to try (all with SULTANA_KILL_ALL).
    tries: usize,
}

fn seed() -> u64 {
    std::env::var("SULTANA_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0005_eed0_f501_7a4a)
}

/// Fisher-Yates with a 64-bit LCG: the same pick for the same seed.
fn pick(points: &[String], count: usize, seed: u64) -> Vec<String> {
    let mut state = seed;
    let mut v = points.to_vec();
    for i in (1..v.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (state >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
    v.truncate(count);
    v.sort();
    v
}

fn run_traced(ctx: &TestContext, args: &[&str], trace: &Path) -> std::process::Output {
    ctx.command(&ctx.work, args)
        .env("SULTANA_TEST_TRACE", trace)
        .output()
        .unwrap()
}

fn run_killed(ctx: &TestContext, args: &[&str], point: &str) -> std::process::Output {
    ctx.command(&ctx.work, args)
        .env("SULTANA_TEST_CRASH_AT", point)
        .output()
        .unwrap()
}

fn exercise(scenario: &Scenario) -> usize {
    // The uninterrupted run: its kill points and its end state.
    let ctx = TestContext::new();
    (scenario.setup)(&ctx);
    let trace = ctx.root.join("trace");
    let output = run_traced(&ctx, scenario.command, &trace);
    assert!(
        output.status.success(),
        "{}: the uninterrupted run failed: {}",
        scenario.name,
        String::from_utf8_lossy(&output.stderr)
    );
    let reference = normalized(&ctx, (scenario.snapshot)(&ctx));
    let points: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!points.is_empty(), "{}: no kill point reached", scenario.name);
    let count = if std::env::var_os("SULTANA_KILL_ALL").is_some() {
        points.len()
    } else {
        scenario.tries.min(points.len())
    };
    let chosen = pick(&points, count, seed());
    for point in &chosen {
        let ctx = TestContext::new();
        (scenario.setup)(&ctx);
        let killed = run_killed(&ctx, scenario.command, point);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&killed.status),
            Some(9),
            "{}: the run did not die by SIGKILL at {point}: {}",
            scenario.name,
            String::from_utf8_lossy(&killed.stderr)
        );
        let again = ctx.command(&ctx.work, scenario.command).output().unwrap();
        assert!(
            again.status.success(),
            "{}: the run after a kill at {point} failed: {}",
            scenario.name,
            String::from_utf8_lossy(&again.stderr)
        );
        let state = normalized(&ctx, (scenario.snapshot)(&ctx));
        for (key, expected) in &reference {
            assert_eq!(
                state.get(key),
                Some(expected),
                "{}: after a kill at {point}, {key} differs from an uninterrupted run",
                scenario.name
            );
        }
        assert_eq!(
            state.len(),
            reference.len(),
            "{}: after a kill at {point}: {:?}",
            scenario.name,
            state.keys()
        );
    }
    eprintln!(
        "{}: {} kill points reached, {} tried: {chosen:?}",
        scenario.name,
        points.len(),
        chosen.len()
    );
    chosen.len()
}

/// Each context lives in its own temp folder: compare without it.
fn normalized(ctx: &TestContext, state: BTreeMap<String, String>) -> BTreeMap<String, String> {
    let root = ctx.root.display().to_string();
    state
        .into_iter()
        .map(|(k, v)| (k, v.replace(&root, "@ROOT@")))
        .collect()
}

/// Files below `dir` (relative path → content), skipping what git and
/// sultana keep for themselves.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == ".git" || name == ".sultana" {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            if meta.is_dir() {
                walk(base, &path, out);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(rel, format!("{} bytes, {:x}", bytes.len(), checksum(&bytes)));
            } else {
                out.insert(rel, "symlink".into());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

fn three_upstreams(ctx: &TestContext) {
    let inner = ctx.upstream("inner");
    inner.commit(&[("inner.c", "inner\n")], "inner");
    let a = ctx.upstream("a");
    a.commit(&[("a.c", "a\n"), ("dir/b.c", "b\n")], "a");
    a.add_submodule("inner", "vendor/inner", "../inner", inner.head());
    let b = ctx.upstream("b");
    b.tag("v1", true);
    let c = ctx.upstream("c");
    c.commit(&[("c.c", "c\n")], "c");
    ctx.write(
        "sultana.toml",
        &format!(
            "[components.a]\nurl = \"{}\"\nrevision = \"master\"\nsubmodules = true\n\n\
             [components.b]\nurl = \"{}\"\nrevision = \"v1\"\n\n\
             [components.c]\nurl = \"{}\"\nrevision = \"master\"\n",
            a.url(),
            b.url(),
            c.url()
        ),
    );
}

fn checkout_state(ctx: &TestContext) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert("sultana.lock".into(), ctx.read("sultana.lock"));
    for name in ["a", "b", "c"] {
        out.insert(format!("{name} HEAD"), head_of(&ctx.work.join(name)).to_string());
        for (path, sum) in tree(&ctx.work.join(name)) {
            out.insert(format!("{name}/{path}"), sum);
        }
    }
    out.insert(
        "a/vendor/inner HEAD".into(),
        head_of(&ctx.work.join("a/vendor/inner")).to_string(),
    );
    let status = ctx.sultana(&["status", "--json"]).success().json();
    for c in status["components"].as_array().unwrap() {
        out.insert(format!("{} state", c["name"]), c["state"].to_string());
    }
    out
}

fn update_setup(ctx: &TestContext) {
    three_upstreams(ctx);
    ctx.sultana(&["fetch"]).success();
    // Upstream moves on: a and c get new commits.
    for (name, file) in [("a", "a.c"), ("c", "c.c")] {
        let dir = ctx.upstreams.join(name);
        std::fs::write(dir.join(file), format!("{name} v2\n")).unwrap();
        std::fs::write(dir.join("new.c"), "new\n").unwrap();
        let repo = git2::Repository::open(&dir).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new(file)).unwrap();
        index.add_path(Path::new("new.c")).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::new("Up", "up@example.org", &git2::Time::new(1_800_000_000, 0)).unwrap();
        let parent = repo.head().unwrap().peel_to_commit().unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "v2", &tree, &[&parent]).unwrap();
    }
    // Local work in c that --force must save, never lose.
    ctx.write("c/mine.txt", "my work\n");
}

/// The update's state, plus: the user's file is in a backup commit.
fn update_state(ctx: &TestContext) -> BTreeMap<String, String> {
    let mut out = checkout_state(ctx);
    out.remove("c/mine.txt");
    let repo = git2::Repository::open(ctx.work.join("c")).unwrap();
    let saved = repo
        .references_glob("refs/sultana/backup/*")
        .unwrap()
        .flatten()
        .any(|r| {
            let tree = r.peel_to_commit().unwrap().tree().unwrap();
            tree.get_name("mine.txt")
                .is_some_and(|e| repo.find_blob(e.id()).unwrap().content() == b"my work\n")
        });
    out.insert("c/mine.txt saved".into(), saved.to_string());
    out
}

/// Two fast fixture builds: make and cargo.
fn build_setup(ctx: &TestContext) {
    let clock = sultana::fixtures::Clock::default();
    let mut parts = Vec::new();
    for project in [sultana::fixtures::tool(), sultana::fixtures::rusty()] {
        let path = ctx.upstreams.join(project.name);
        sultana::fixtures::create(&path, &project, &clock).unwrap();
        parts.push(format!(
            "[components.{}]\nurl = \"file://{}\"\nrevision = \"master\"\n",
            project.name,
            path.display()
        ));
    }
    ctx.write("sultana.toml", &parts.join("\n"));
    sultana::fixtures::write_recipes(&ctx.work).unwrap();
    ctx.sultana(&["fetch"]).success();
}

fn build_state(ctx: &TestContext) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = tree(&ctx.work.join("dist"))
        .into_iter()
        .map(|(k, v)| (format!("dist/{k}"), v))
        .collect();
    // Nothing half-built is trusted: the next build finds it all fresh.
    let again = ctx.sultana(&["build", "--json"]).success().json();
    for c in again["components"].as_array().unwrap() {
        out.insert(format!("{} next build", c["name"]), c["status"].to_string());
    }
    out
}

fn tarball_setup(ctx: &TestContext) {
    ctx.fixture_workspace();
    ctx.sultana(&["fetch"]).success();
}

/// The tarballs (their content, with the context's temp folder taken out:
/// the manifest inside names the upstreams' file:// URLs), what else is in
/// the folder, SHA256SUMS matching the files, and each tarball identical to
/// what its lock gives.
fn tarball_state(ctx: &TestContext) -> BTreeMap<String, String> {
    use sha2::Digest;
    use std::io::Read;
    let out = ctx.work.join("out");
    let root = ctx.root.display().to_string();
    let mut state = BTreeMap::new();
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap_or_default();
    for entry in std::fs::read_dir(&out).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name == "SHA256SUMS" {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let hash: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        state.insert(
            format!("{name} in SHA256SUMS"),
            sums.contains(&format!("{hash}  {name}\n")).to_string(),
        );
        let mut plain = Vec::new();
        if name.ends_with(".gz") {
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .unwrap();
        } else if name.ends_with(".xz") {
            plain = std::process::Command::new("xz")
                .args(["-dc"])
                .arg(&path)
                .output()
                .unwrap()
                .stdout;
        } else if name.ends_with(".spdx3.json") {
            // It names the tarballs by their hashes, which hold this test's
            // own folder: those are compared above, as tarballs.
            let mut doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            for node in doc["@graph"].as_array_mut().unwrap() {
                for hash in node["verifiedUsing"].as_array_mut().into_iter().flatten() {
                    hash["hashValue"] = serde_json::json!("@HASH@");
                }
            }
            plain = serde_json::to_vec(&doc).unwrap();
        } else {
            plain = bytes.clone();
        }
        let plain = String::from_utf8_lossy(&plain).replace(&root, "@ROOT@");
        state.insert(name.clone(), format!("{:x}", checksum(plain.as_bytes())));
        let verify = ctx.sultana(&["verify-tarball", path.to_str().unwrap()]);
        state.insert(format!("{name} verifies"), (verify.code == Some(0)).to_string());
    }
    state.insert("SHA256SUMS lines".into(), sums.lines().count().to_string());
    state
}

/// A gate of `tool` (its version test) with a tested baseline and a new
/// upstream commit.
fn gate_setup(ctx: &TestContext) {
    build_setup(ctx);
    ctx.sultana(&["gate", "tool", "--always"]).success();
    let clock = sultana::fixtures::Clock::default();
    sultana::fixtures::commit(
        &ctx.upstreams.join("tool"),
        &[("NEWS", "1.1\n".to_string(), false)],
        "news",
        &clock,
    )
    .unwrap();
}

fn gate_state(ctx: &TestContext) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert("sultana.lock".into(), ctx.read("sultana.lock"));
    out.insert("flight history".into(), history(&ctx.work.join(".sultana/flights.db")));
    out
}

/// The flight history: intact, no flight left running, and the newest gate
/// flight's outcome.
fn history(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    let running: i64 = conn
        .query_row("SELECT count(*) FROM flights WHERE outcome = 'running'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let newest: String = conn
        .query_row(
            "SELECT outcome || ' pushed=' || pushed FROM flights WHERE kind = 'gate' AND finished IS NOT NULL ORDER BY flight DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    format!("{integrity}; running: {running}; newest gate: {newest}")
}

/// The tools every kill-point scenario's fixtures need.
fn kill_point_tools() {
    require("make", "the fixture builds");
    require("gcc", "the fixture builds");
    require("cargo", "the cargo fixture");
    require("xz", "reading the xz tarballs (Debian xz-utils)");
}

/// One command killed at many points, each run again: a test of its own
/// per command, so the harness spreads them over the cores.
fn kill_9_then_run_again(scenario: Scenario) {
    kill_point_tools();
    let tried = exercise(&scenario);
    assert!(
        tried >= scenario.tries.min(8),
        "{}: only {tried} kill points tried",
        scenario.name
    );
}

#[test]
#[cfg_attr(
    not(all(have_cargo, have_gcc, have_make, have_xz)),
    ignore = "needs cargo, gcc, make, xz"
)]
fn kill_9_during_fetch_then_run_again() {
    kill_9_then_run_again(Scenario {
        name: "fetch",
        setup: three_upstreams,
        command: &["-j1", "fetch"],
        snapshot: checkout_state,
        tries: 12,
    });
}

#[test]
#[cfg_attr(
    not(all(have_cargo, have_gcc, have_make, have_xz)),
    ignore = "needs cargo, gcc, make, xz"
)]
fn kill_9_during_update_force_then_run_again() {
    kill_9_then_run_again(Scenario {
        name: "update --force",
        setup: update_setup,
        command: &["-j1", "update", "--force"],
        snapshot: update_state,
        tries: 12,
    });
}

#[test]
#[cfg_attr(
    not(all(have_cargo, have_gcc, have_make, have_xz)),
    ignore = "needs cargo, gcc, make, xz"
)]
fn kill_9_during_build_then_run_again() {
    kill_9_then_run_again(Scenario {
        name: "build",
        setup: build_setup,
        command: &["-j1", "build"],
        snapshot: build_state,
        tries: 10,
    });
}

#[test]
#[cfg_attr(
    not(all(have_cargo, have_gcc, have_make, have_xz)),
    ignore = "needs cargo, gcc, make, xz"
)]
fn kill_9_during_tarball_then_run_again() {
    kill_9_then_run_again(Scenario {
        name: "tarball",
        setup: tarball_setup,
        command: &["-j1", "tarball", "--out", "out", "--format", "gz", "--format", "xz"],
        snapshot: tarball_state,
        tries: 10,
    });
}

#[test]
#[cfg_attr(
    not(all(have_cargo, have_gcc, have_make, have_xz)),
    ignore = "needs cargo, gcc, make, xz"
)]
fn kill_9_during_gate_push_then_run_again() {
    kill_9_then_run_again(Scenario {
        name: "gate --push",
        setup: gate_setup,
        command: &["-j1", "gate", "tool", "--push"],
        snapshot: gate_state,
        tries: 10,
    });
}

/// kill -9 of sultana while a build step's children run: the whole step
/// (make and what it started) is stopped with it, so nothing writes the old
/// source's output after the developer's next edit.
#[test]
#[cfg_attr(not(all(have_gcc, have_make)), ignore = "needs gcc, make")]
fn a_killed_build_leaves_no_process_behind() {
    require("make", "the fixture build");
    require("gcc", "the fixture build");
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    let late = ctx.root.join("late-output");
    let started = ctx.root.join("step-started");
    let sleeper = ctx.root.join("sleeper-pid");
    // A recipe step whose grandchild (a sleep under a sub-shell under make)
    // writes after a while.
    ctx.edit_upstream(
        "tool",
        "Makefile",
        "\techo built > BUILD-INFO\n",
        &format!(
            "\techo built > BUILD-INFO\n\tsh -c 'echo $$$$ > {}; touch {}; sleep 4; echo late > {}'\n",
            sleeper.display(),
            started.display(),
            late.display()
        ),
        "slow",
    );
    // Started under nohup (SIGHUP ignored): a hangup changes nothing.
    let mut nohup = ctx.command(&ctx.work, &["build", "--no-build-cache", "tool"]);
    nohup
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only signal(2) between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut nohup, || {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = nohup.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !started.exists() {
        assert!(std::time::Instant::now() < deadline, "the step never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    }
    assert!(child.wait().unwrap().success(), "a build under nohup died of SIGHUP");
    assert!(late.exists());
    std::fs::remove_file(&late).unwrap();
    std::fs::remove_file(&started).unwrap();
    ctx.sultana(&["clean", "tool"]).success();

    let mut child = ctx
        .command(&ctx.work, &["build", "--no-build-cache", "tool"])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !started.exists() {
        assert!(std::time::Instant::now() < deadline, "the step never started");
        assert!(child.try_wait().unwrap().is_none(), "sultana ended before the step");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The step's shell, which would write late, is gone (a bounded wait
    // for that, not a sleep past its own): then it never writes.
    let pid: i32 = std::fs::read_to_string(&sleeper).unwrap().trim().parse().unwrap();
    let gone = || {
        let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        state.is_empty() || state.contains("State:\tZ")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(gone(), "the killed run's step {pid} went on");
    assert!(!late.exists(), "a step of the killed run went on and wrote its output");
    let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    let marker = late.display().to_string();
    assert!(
        !ps.lines().any(|l| l.contains(&marker) && !l.contains("ps -eo")),
        "left running: {ps}"
    );
}
