//! The push gate and the bisector on the fixture trees: real builds, real
//! test scripts (make check, qemu-img/qemu-io, the built programs), a real
//! SQLite flight history.

use std::path::Path;

use crate::support::*;

pub(crate) fn toolchain_present() {
    require("autoreconf", "the autotools fixture (Debian autoconf, automake)");
    require("make", "the fixture builds");
    require("gcc", "the fixture builds");
    require("cargo", "the cargo fixture");
    require("qemu-img", "the fixture's disk test (Debian qemu-utils)");
    require("qemu-io", "the fixture's disk test (Debian qemu-utils)");
}

/// The fixture workspace (its tests declare the toolchain they need).
pub(crate) fn fixture() -> TestContext {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    ctx
}

/// The fixture workspace with a flight of the baseline of `component`.
pub(crate) fn flown(component: &str) -> TestContext {
    let ctx = fixture();
    ctx.sultana(&["gate", component, "--always"]).success();
    ctx
}

/// A libfix commit whose `make` fails (a syntax error in fix.c).
pub(crate) fn break_libfix_build(ctx: &TestContext) {
    commit(
        ctx,
        "libfix",
        &[(
            "fix.c",
            "#include \"fix.h\"\nint fix_add(int a, int b) { return a + ; }\n",
        )],
        "broken",
    );
}

/// Commit files to a fixture upstream.
pub(crate) fn commit(ctx: &TestContext, upstream: &str, files: &[(&'static str, &str)], message: &str) -> String {
    let files: Vec<sultana::fixtures::File> = files.iter().map(|(p, c)| (*p, c.to_string(), false)).collect();
    let clock = sultana::fixtures::Clock::default();
    sultana::fixtures::commit(&ctx.upstreams.join(upstream), &files, message, &clock)
        .unwrap()
        .to_string()
}

pub(crate) const GOOD_FIX: &str = "#include \"fix.h\"\n/* reviewed */\nint fix_add(int a, int b) { return a + b; }\n";
pub(crate) const OFF_BY_ONE: &str = "#include \"fix.h\"\nint fix_add(int a, int b) { return a + b + 1; }\n";

/// Add a `[[test]]` with its script to a workspace recipe.
pub(crate) fn add_test(ctx: &TestContext, recipe: &str, name: &str, script: &str, timeout: u64) {
    let file = format!("recipes/{recipe}.toml");
    let text =
        ctx.read(&file) + &format!("\n[[test]]\nname = \"{name}\"\ndescription = \"{name}\"\ntimeout = {timeout}\n");
    ctx.write(&file, &text);
    ctx.write(&format!("recipes/tests/{recipe}/{name}.sh"), script);
}

pub(crate) fn job<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {report}"))
}

pub(crate) fn finding<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["job"] == name)
        .unwrap_or_else(|| panic!("no finding for {name} in {report}"))
}

/// JUnit XML that parses, with consistent counts; returns (name, failure type).
fn junit(path: &Path) -> Vec<(String, Option<String>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(suite.attribute("tests").unwrap(), cases.len().to_string(), "{text}");
    let failures = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .count();
    assert_eq!(suite.attribute("failures").unwrap(), failures.to_string(), "{text}");
    let skipped = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("skipped")))
        .count();
    assert_eq!(suite.attribute("skipped").unwrap(), skipped.to_string(), "{text}");
    for case in &cases {
        assert!(case.attribute("classname").is_some() && case.attribute("time").is_some());
    }
    cases
        .iter()
        .map(|c| {
            let failure = c
                .children()
                .find(|n| n.has_tag_name("failure"))
                .map(|f| f.attribute("type").unwrap_or_default().to_string());
            (c.attribute("name").unwrap().to_string(), failure)
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn the_gate_pushes_a_good_candidate_and_refuses_a_regression() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    ctx.sultana(&["fetch"]).success();
    ctx.sultana(&["gate", "libfix"]).success().stderr_has("Up to date");
    assert!(
        !ctx.work.join(".sultana/flights.db").exists(),
        "no flight when up to date"
    );

    // The baseline: every build and test of libfix and what depends on it.
    let run = ctx.sultana(&["gate", "libfix", "--always", "--json"]).success();
    let report = &run.json()["gate"]["report"];
    assert_eq!(report["outcome"], "perfect", "{report}");
    for name in [
        "build-libfix",
        "build-root",
        "build-tool",
        "build-rusty",
        "test-libfix-check",
        "test-libfix-disk",
        "test-root-app",
        "test-tool-version",
    ] {
        assert_eq!(job(report, name)["status"], "pass", "{name}: {report}");
    }

    // A good candidate: pushed, and the lock changes by exactly that pin.
    let lock_before = ctx.read("sultana.lock");
    let good = commit(&ctx, "libfix", &[("fix.c", GOOD_FIX)], "libfix: a reviewed change");
    let junit_file = ctx.root.join("good.xml");
    let run = ctx
        .sultana(&[
            "gate",
            "libfix",
            "--push",
            "--junit",
            junit_file.to_str().unwrap(),
            "--json",
        ])
        .success();
    let gate = &run.json()["gate"];
    assert_eq!(gate["pushed"], true, "{gate}");
    assert_eq!(gate["report"]["baseline_flight"], 1);
    assert_eq!(ctx.lock_commit("libfix"), good);
    let lock_after = ctx.read("sultana.lock");
    let changed: Vec<(&str, &str)> = lock_before
        .lines()
        .zip(lock_after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(lock_before.lines().count(), lock_after.lines().count());
    assert_eq!(changed.len(), 2, "only commit and describe of libfix: {changed:?}");
    assert!(changed
        .iter()
        .all(|(a, _)| a.starts_with("commit = ") || a.starts_with("describe = ")));
    assert!(junit(&junit_file).iter().all(|(_, failure)| failure.is_none()));

    // A regression: the library adds wrong. Not pushed, exit 1, named.
    commit(&ctx, "libfix", &[("fix.c", OFF_BY_ONE)], "libfix: off by one");
    let junit_file = ctx.root.join("bad.xml");
    let summary = ctx.root.join("summary");
    let run = ctx
        .sultana(&[
            "gate",
            "libfix",
            "--push",
            "--junit",
            junit_file.to_str().unwrap(),
            "--summary",
            summary.to_str().unwrap(),
            "--json",
        ])
        .code(1)
        .stderr_has("the gate of libfix failed in flight 3, not pushed: test-libfix-check REGR. vs. 2");
    let gate = &run.json()["gate"];
    assert_eq!(gate["pushed"], false);
    assert_eq!(ctx.lock_commit("libfix"), good, "the pin stays");
    for name in ["test-libfix-check", "test-libfix-disk", "test-root-app"] {
        let f = finding(&gate["report"], name);
        assert_eq!(f["class"], "regression", "{f}");
        assert_eq!(f["blocking"], true);
    }
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.starts_with("flight 3\n"), "{summary}");
    assert!(summary.contains(&format!("version that libfix {good}\n")), "{summary}");
    assert!(summary.contains("regression test-libfix-check check 2\n"), "{summary}");
    assert!(summary.contains("regression test-root-app app 2\n"), "{summary}");
    assert!(!summary.contains("tolerable"), "{summary}");
    let cases = junit(&junit_file);
    assert!(
        cases.contains(&("test-root-app".to_string(), Some("regression".to_string()))),
        "{cases:?}"
    );
    let xml = std::fs::read_to_string(&junit_file).unwrap();
    assert!(
        xml.contains("rootapp: 2 + 3 = 6"),
        "the failure carries the log tail: {xml}"
    );

    // An allow file (osstest syntax) excuses exactly those.
    ctx.write("allow.libfix", "# known\ntest-libfix-@@\ntest-root-app app\n");
    let run = ctx
        .sultana(&["gate", "libfix", "--push", "--allow", "allow.libfix", "--json"])
        .success();
    let gate = &run.json()["gate"];
    assert_eq!(gate["pushed"], true, "{gate}");
    assert_eq!(finding(&gate["report"], "test-root-app")["class"], "allowed");
    assert_eq!(gate["report"]["outcome"], "tolerable");
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_broken_build_blocks_what_needs_it() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    ctx.sultana(&["gate", "libfix", "--always"]).success();
    break_libfix_build(&ctx);
    let junit_file = ctx.root.join("j.xml");
    let run = ctx
        .sultana(&[
            "gate",
            "libfix",
            "--push",
            "--junit",
            junit_file.to_str().unwrap(),
            "--json",
        ])
        .code(1);
    let report = &run.json()["gate"]["report"];
    assert_eq!(job(report, "build-libfix")["status"], "fail");
    assert_eq!(job(report, "build-libfix")["testid"], "make");
    assert_eq!(finding(report, "build-libfix")["class"], "regression");
    for blocked in ["build-root", "test-libfix-check", "test-root-app"] {
        assert_eq!(job(report, blocked)["status"], "blocked", "{blocked}");
        assert_eq!(finding(report, blocked)["blocking"], false);
    }
    assert_eq!(job(report, "build-tool")["status"], "pass", "independent builds go on");
    assert_eq!(report["outcome"], "regressions");
    // The flight's logs keep the failing step's output.
    let log_dir = ctx
        .work
        .join(format!(".sultana/flights/{}/build-libfix", report["flight"]));
    let make_log = std::fs::read_dir(&log_dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("-make.log"))
        .expect("the make log is kept");
    assert!(std::fs::read_to_string(make_log.path()).unwrap().contains("error"));
    let cases = junit(&junit_file);
    assert!(cases.contains(&("build-libfix".to_string(), Some("regression".to_string()))));
    let xml = std::fs::read_to_string(&junit_file).unwrap();
    assert!(
        xml.contains("<skipped message=\"blocked: build-libfix did not pass\"/>"),
        "{xml}"
    );
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_never_passing_test_does_not_block_and_its_fix_is_pushed() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    add_test(
        &ctx,
        "libfix",
        "mul",
        "#!/bin/bash\n# The library should multiply too.\ngrep -q fix_mul \"$SULTANA_PREFIX/include/fix.h\" || { echo \"no fix_mul yet\"; exit 1; }\n",
        60,
    );
    let run = ctx.sultana(&["gate", "libfix", "--always", "--json"]).success();
    let report = &run.json()["gate"]["report"];
    assert_eq!(finding(report, "test-libfix-mul")["class"], "never-passed");
    assert_eq!(report["outcome"], "tolerable");

    commit(&ctx, "libfix", &[("fix.c", GOOD_FIX)], "unrelated");
    let run = ctx.sultana(&["gate", "libfix", "--push", "--json"]).success();
    let gate = &run.json()["gate"];
    assert_eq!(finding(&gate["report"], "test-libfix-mul")["summary"], "never pass");
    assert_eq!(gate["pushed"], true, "a never-passing test does not block: {gate}");

    let fixed = commit(
        &ctx,
        "libfix",
        &[
            ("fix.h", "#ifndef FIX_H\n#define FIX_H\nint fix_add(int a, int b);\nint fix_mul(int a, int b);\n#endif\n"),
            ("fix.c", "#include \"fix.h\"\nint fix_add(int a, int b) { return a + b; }\nint fix_mul(int a, int b) { return a * b; }\n"),
        ],
        "libfix: multiply",
    );
    let run = ctx.sultana(&["gate", "libfix", "--push", "--json"]).success();
    let gate = &run.json()["gate"];
    assert_eq!(gate["report"]["outcome"], "perfect", "{gate}");
    assert_eq!(ctx.lock_commit("libfix"), fixed);
    // Now it has passed: breaking it again is a regression.
    commit(
        &ctx,
        "libfix",
        &[(
            "fix.h",
            "#ifndef FIX_H\n#define FIX_H\nint fix_add(int a, int b);\n#endif\n",
        )],
        "drop mul",
    );
    let run = ctx.sultana(&["gate", "libfix", "--json"]).code(1);
    assert_eq!(
        finding(&run.json()["gate"]["report"], "test-libfix-mul")["class"],
        "regression"
    );
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_hanging_test_is_stopped_and_judged_against_the_baseline() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    ctx.sultana(&["gate", "tool", "--always"]).success();
    // A hung test is stopped at its limit, with what it started; it hangs
    // at the baseline too, so it never passed and does not block.
    add_test(
        &ctx,
        "tool",
        "hang",
        "#!/bin/bash\nsleep 1000 &\necho $! > \"$HOME/hang-child\"\nsleep 1000\n",
        2,
    );
    commit(&ctx, "tool", &[("NEWS", "1.2\n")], "more news");
    let started = std::time::Instant::now();
    let run = ctx.sultana(&["gate", "tool", "--json"]).success();
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let report = &run.json()["gate"]["report"];
    assert_eq!(job(report, "test-tool-hang")["status"], "fail");
    assert!(job(report, "test-tool-hang")["detail"]
        .as_str()
        .unwrap()
        .contains("timed out after 2s"));
    assert_eq!(finding(report, "test-tool-hang")["class"], "never-passed");
    let base = &run.json()["gate"]["baseline_report"];
    assert_eq!(
        job(base, "test-tool-hang")["status"],
        "fail",
        "tested at the baseline: {base}"
    );
    let child = std::fs::read_to_string(ctx.home.join("hang-child")).unwrap();
    let gone = || {
        let state = std::fs::read_to_string(format!("/proc/{}/status", child.trim())).unwrap_or_default();
        state.is_empty() || state.contains("State:\tZ")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let state = std::fs::read_to_string(format!("/proc/{}/status", child.trim())).unwrap_or_default();
    assert!(
        state.is_empty() || state.contains("State:\tZ"),
        "the test's background child was stopped: {state}"
    );
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn bisect_from_a_shallow_workspace_deepens_and_finds_the_same_commit() {
    let ctx = fixture();
    ctx.sultana(&["gate", "libfix", "--always", "--depth", "1"]).success();
    assert!(ctx.sultana(&["status", "libfix"]).success().stdout.contains("shallow"));
    let mut commits = Vec::new();
    for i in 1..=40 {
        let mut files: Vec<(&'static str, String)> = vec![("HISTORY", format!("change {i}\n"))];
        if i == 25 {
            files.push(("fix.c", OFF_BY_ONE.to_string()));
        }
        let files: Vec<(&'static str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
        commits.push(commit(&ctx, "libfix", &files, &format!("change {i}")));
    }
    // A tag at the tip: describing it needs no history, the bisect does.
    let upstream = git2::Repository::open(ctx.upstreams.join("libfix")).unwrap();
    let tip = upstream.revparse_single("HEAD").unwrap();
    upstream.tag_lightweight("v2.0-rc1", &tip, false).unwrap();
    // The bad end by id: fetched alone, one commit deep.
    let run = ctx
        .sultana(&[
            "bisect",
            "libfix",
            "--test",
            "check",
            "--depth",
            "1",
            "--bad",
            &commits[39],
            "--json",
        ])
        .success();
    assert!(run.stderr.contains("Deepening"), "{}", run.stderr);
    let bisect = &run.json()["bisect"];
    assert_eq!(bisect["first_bad"]["commit"], commits[24], "{bisect}");
    assert_eq!(bisect["last_good"]["commit"], commits[23]);
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn bisect_finds_the_first_bad_commit_in_few_builds() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    ctx.sultana(&["gate", "libfix", "--always"]).success();
    // 32 commits; the 20th breaks the addition.
    let mut commits = Vec::new();
    for i in 1..=32 {
        let mut files: Vec<(&'static str, String)> = vec![("HISTORY", format!("change {i}\n"))];
        if i == 20 {
            files.push(("fix.c", OFF_BY_ONE.to_string()));
        }
        let files: Vec<(&'static str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
        commits.push(commit(&ctx, "libfix", &files, &format!("change {i}")));
    }
    // The gate sees the regression at the tip.
    ctx.sultana(&["gate", "libfix"]).code(1);
    let run = ctx
        .sultana(&["bisect", "libfix", "--test", "check", "--json"])
        .success();
    let bisect = &run.json()["bisect"];
    assert_eq!(bisect["first_bad"]["commit"], commits[19], "{bisect}");
    assert_eq!(bisect["last_good"]["commit"], commits[18]);
    assert_eq!(bisect["reproduced"], true);
    assert_eq!(bisect["job"], "test-libfix-check");
    let builds = bisect["builds"].as_u64().unwrap();
    assert!(builds <= 6, "{builds} builds: {bisect}");
    let reused = bisect["tried"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["reused"] == true)
        .count();
    assert_eq!(reused, 2, "both ends come from the gate's flights: {bisect}");
    assert!(run.stdout.contains("first bad commit"), "{}", run.stdout);

    // Asked again, every answer is in the history: no build at all.
    let run = ctx
        .sultana(&["bisect", "libfix", "--test", "test-libfix-check", "--json"])
        .success();
    assert_eq!(run.json()["bisect"]["builds"], 0);

    // A job that does not fail at the bad end does not reproduce: exit 1.
    ctx.sultana(&["bisect", "libfix", "--test", "nothing"])
        .code(2)
        .stderr_has("no job `nothing`");
    let run = ctx
        .sultana(&["bisect", "libfix", "--test", "disk", "--bad", &commits[10], "--json"])
        .code(1)
        .stderr_has("does not fail at the bad commit");
    // It says so having tried the bad end alone: nothing else is built.
    let tried = run.json()["bisect"]["tried"].as_array().unwrap().clone();
    assert_eq!(tried.len(), 1, "{tried:?}");
    assert_eq!(tried[0]["commit"], commits[10]);
}

#[test]
fn bad_gate_input_is_refused() {
    let ctx = TestContext::new();
    let up = ctx.upstream("thing");
    ctx.write("sultana.toml", &manifest(&[("thing", &up.url(), "master")]));
    ctx.sultana(&["gate", "nothing"])
        .code(2)
        .stderr_has("no component `nothing`");
    ctx.sultana(&["gate", "thing", "--push", "--push-ref", "origin:-x"])
        .code(2)
        .stderr_has("not a usable ref name");
    ctx.sultana(&["gate", "thing", "--push", "--push-ref", "ext::sh -c x:main"])
        .code(2)
        .stderr_has("transport");
    ctx.write("allow", "a b c\n");
    ctx.sultana(&["gate", "thing", "--allow", "allow"])
        .code(2)
        .stderr_has("allow:1: an allow line is");
    ctx.sultana(&["gate", "thing", "--candidate=--upload-pack=x"])
        .code(2)
        .stderr_has("looks like");
}
