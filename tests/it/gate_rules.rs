//! The rules that keep a gate from pushing a regression: a failing test is
//! judged only against a baseline result for the test as defined now (the
//! baseline is tested when there is none), and a fail-then-pass is run
//! again on both sides before it may count as flaky.

use crate::gate::{add_test, commit, finding, fixture, flown, job, GOOD_FIX};
use std::path::Path;
use std::process::Command;

use crate::support::*;

/// Fails when the tree's NEWS says "bad": passes at the baseline, fails at
/// a candidate that writes it.
pub(crate) const NEWS_CHECK: &str =
    "#!/bin/bash\nif grep -q bad \"$SULTANA_SRC/NEWS\" 2>/dev/null; then echo \"NEWS says bad\"; exit 1; fi\n";

/// (definition, status, runs, failed_runs, steps) of `job` in every flight,
/// oldest first.
fn history(ctx: &TestContext, job: &str) -> Vec<(i64, String, String, i64, i64, i64)> {
    let conn = rusqlite::Connection::open(ctx.work.join(".sultana/flights.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT j.flight, j.definition, j.status, j.runs, j.failed_runs,
                    (SELECT COUNT(*) FROM steps s WHERE s.flight = j.flight AND s.job = j.job)
             FROM jobs j WHERE j.job = ?1 ORDER BY j.flight",
        )
        .unwrap();
    stmt.query_map([job], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_new_test_is_tested_at_the_baseline_before_it_is_judged() {
    let ctx = flown("libfix");
    let pinned = ctx.lock_commit("libfix");

    // Added after the last flight; the candidate fails it, the baseline
    // passes it: a regression, not "never pass".
    add_test(&ctx, "libfix", "news", NEWS_CHECK, 60);
    commit(&ctx, "libfix", &[("NEWS", "bad\n")], "libfix: bad news");
    let run = ctx
        .sultana(&["gate", "libfix", "--push", "--json"])
        .code(1)
        .stderr_has("test-libfix-news REGR. vs.");
    let gate = &run.json()["gate"];
    assert_eq!(gate["pushed"], false);
    assert_eq!(ctx.lock_commit("libfix"), pinned);
    let f = finding(&gate["report"], "test-libfix-news");
    assert_eq!(f["class"], "regression", "{f}");
    let base = &gate["baseline_report"];
    assert_eq!(job(base, "test-libfix-news")["status"], "pass", "{base}");
    assert_eq!(f["reference"], base["flight"]);
    assert!(
        run.stderr
            .contains("Baseline testing libfix v1.0 before judging the candidate: test-libfix-news"),
        "{}",
        run.stderr
    );

    // A new test both fail: never passed, pushed.
    add_test(&ctx, "libfix", "never", "#!/bin/bash\necho \"not yet\"\nexit 1\n", 60);
    let good = commit(
        &ctx,
        "libfix",
        &[("NEWS", "fine\n"), ("fix.c", GOOD_FIX)],
        "libfix: fine",
    );
    let run = ctx.sultana(&["gate", "libfix", "--push", "--json"]).success();
    let gate = &run.json()["gate"];
    assert_eq!(finding(&gate["report"], "test-libfix-never")["class"], "never-passed");
    assert_eq!(gate["pushed"], true, "{gate}");
    assert_eq!(ctx.lock_commit("libfix"), good);
    assert_eq!(
        job(&gate["baseline_report"], "test-libfix-never")["status"],
        "fail",
        "the baseline was tested first"
    );
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_changed_test_is_judged_against_the_baseline_as_it_is_now() {
    let ctx = fixture();
    add_test(
        &ctx,
        "libfix",
        "strict",
        "#!/bin/bash\n[ -f \"$SULTANA_SRC/fix.c\" ]\n",
        60,
    );
    ctx.sultana(&["gate", "libfix", "--always"]).success();

    // Made stricter: the baseline fails it too. Re-baselined, pushed.
    let stricter =
        "#!/bin/bash\ngrep -q fix_mul \"$SULTANA_PREFIX/include/fix.h\" || { echo \"no fix_mul\"; exit 1; }\n";
    ctx.write("recipes/tests/libfix/strict.sh", stricter);
    let harmless = commit(&ctx, "libfix", &[("fix.c", GOOD_FIX)], "libfix: harmless");
    let run = ctx.sultana(&["gate", "libfix", "--push", "--json"]).success();
    let gate = &run.json()["gate"];
    assert_eq!(gate["pushed"], true, "{gate}");
    assert_eq!(ctx.lock_commit("libfix"), harmless);
    assert_eq!(finding(&gate["report"], "test-libfix-strict")["class"], "never-passed");
    assert_eq!(job(&gate["baseline_report"], "test-libfix-strict")["status"], "fail");

    // The tested revision flown again is no regression against itself.
    let run = ctx.sultana(&["gate", "libfix", "--always", "--json"]).success();
    assert_eq!(run.json()["gate"]["report"]["kind"], "baseline");
    assert!(!run.stderr.contains("REGR"), "{}", run.stderr);

    // Changed so that only the candidate fails: a regression.
    ctx.write("recipes/tests/libfix/strict.sh", NEWS_CHECK);
    commit(&ctx, "libfix", &[("NEWS", "bad\n")], "libfix: bad news");
    let run = ctx.sultana(&["gate", "libfix", "--push", "--json"]).code(1);
    let gate = &run.json()["gate"];
    assert_eq!(finding(&gate["report"], "test-libfix-strict")["class"], "regression");
    assert_eq!(ctx.lock_commit("libfix"), harmless);

    // Every result carries its definition: three definitions of the test.
    let rows = history(&ctx, "test-libfix-strict");
    assert!(rows.iter().all(|r| r.1.len() == 16), "{rows:?}");
    let mut definitions: Vec<&String> = rows.iter().map(|r| &r.1).collect();
    definitions.dedup();
    assert_eq!(definitions.len(), 3, "{rows:?}");
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn an_intermittent_failure_is_flaky_only_when_the_baseline_has_it_too() {
    let ctx = flown("tool");

    // Fails every other run, wherever it runs: flaky at the baseline too.
    // Counts its runs in $HOME/NAME.
    let counted = |name: &str, condition: &str| {
        format!(
            "#!/bin/bash\nn=$(cat \"$HOME/{name}\" 2>/dev/null || echo 0)\nn=$((n + 1))\necho \"$n\" > \"$HOME/{name}\"\necho \"run $n\"\n{condition}\n"
        )
    };
    add_test(&ctx, "tool", "flip", &counted("flip", "[ $((n % 2)) -eq 0 ]"), 60);
    let news = commit(&ctx, "tool", &[("NEWS", "1.1\n")], "news");
    let run = ctx.sultana(&["gate", "tool", "--push", "--json"]).success();
    let gate = &run.json()["gate"];
    let f = finding(&gate["report"], "test-tool-flip");
    assert_eq!(f["class"], "flaky", "{f}");
    assert_eq!(f["blocking"], false);
    assert_eq!(gate["pushed"], true, "{gate}");
    assert_eq!(ctx.lock_commit("tool"), news);
    assert_eq!(
        std::fs::read_to_string(ctx.home.join("flip")).unwrap(),
        "12\n",
        "7 runs here, 5 there"
    );
    let summary = std::fs::read_to_string(
        ctx.work
            .join(format!(".sultana/flights/{}/summary", gate["report"]["flight"])),
    )
    .unwrap();
    assert!(summary.contains("heisenbug test-tool-flip flip\n"), "{summary}");
    // Every run is in the history: 7 of the candidate, 5 of the baseline.
    let rows = history(&ctx, "test-tool-flip");
    let runs: Vec<(i64, i64, i64)> = rows.iter().map(|r| (r.3, r.4, r.5)).collect();
    assert_eq!(runs, vec![(7, 4, 7), (5, 2, 5)], "{rows:?}");

    // Fails every other run only at the candidate: an intermittent
    // regression, not pushed, however the lucky retry went.
    let only_here = "grep -q intermittent \"$SULTANA_SRC/NEWS\" || exit 0\n[ $((n % 2)) -eq 0 ]";
    add_test(&ctx, "tool", "flop", &counted("flop", only_here), 60);
    commit(&ctx, "tool", &[("NEWS", "intermittent\n")], "an intermittent bug");
    let run = ctx
        .sultana(&["gate", "tool", "--push", "--json", "--flaky-runs", "3"])
        .code(1)
        .stderr_has("test-tool-flop intermittent REGR.");
    let gate = &run.json()["gate"];
    let f = finding(&gate["report"], "test-tool-flop");
    assert_eq!(f["class"], "intermittent-regression", "{f}");
    assert_eq!(gate["pushed"], false);
    assert_eq!(ctx.lock_commit("tool"), news);
    assert_eq!(job(&gate["baseline_report"], "test-tool-flop")["failed_runs"], 0);
    assert_eq!(job(&gate["baseline_report"], "test-tool-flop")["runs"], 3);
    assert_eq!(job(&gate["report"], "test-tool-flop")["runs"], 5, "--flaky-runs 3");
    // The failure and its reason come before the retry.
    let failed = run
        .stderr
        .find("Failed test-tool-flop: exit 1: run 1")
        .expect("the failure is shown");
    let retry = run.stderr.find("Retrying test-tool-flop").expect("the retry is shown");
    assert!(failed < retry, "{}", run.stderr);
    assert!(!run.stderr.contains("Moved tool"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("in the flight's scratch tree .sultana/gate/tool (not your checkout)"),
        "{}",
        run.stderr
    );
}

/// The libnbd reader of the shipped tapdisk-nbd test (its Python part),
/// against a real NBD server: it negotiates plain replies, then structured
/// ones, and names the first byte that differs from what was written.
#[test]
#[cfg_attr(
    not(all(have_python3_libnbd, have_qemu_io, have_qemu_nbd)),
    ignore = "needs python3-libnbd, qemu-io, qemu-nbd"
)]
fn the_shipped_nbd_reader_checks_both_reply_kinds() {
    let module = Path::new("/usr/lib/python3/dist-packages/nbd.py");
    require("qemu-nbd", "serving a disk over NBD (Debian qemu-utils)");
    require("qemu-io", "writing the pattern (Debian qemu-utils)");
    require_path(module, "libnbd's Python module (Debian python3-libnbd)");
    let script =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/tests/blktap/tapdisk-nbd.sh"))
            .unwrap();
    let start = script.find("<<'PY'").expect("the Python part");
    let body = &script[start..];
    let body = &body[body.find('\n').unwrap() + 1..body.find("\nPY\n").unwrap()];
    let ctx = TestContext::new();
    let reader = ctx.root.join("reader.py");
    std::fs::write(&reader, body).unwrap();
    let disk = ctx.root.join("disk.raw");
    std::fs::write(&disk, vec![0u8; 8 << 20]).unwrap();
    let written = Command::new("qemu-io")
        .args(["-f", "raw", "-c", "write -P 0xa5 0 2M", "-c", "write -P 0x3c 4M 1M"])
        .arg(&disk)
        .output()
        .unwrap();
    assert!(written.status.success(), "{written:?}");
    let sock = ctx.root.join("nbd.sock");
    let mut server = Command::new("qemu-nbd")
        .args(["-t", "-f", "raw", "-k"])
        .arg(&sock)
        .arg(&disk)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let read = |spans: &[&str]| {
        Command::new("/usr/bin/python3")
            .arg("-")
            .args(spans)
            .env("NBD_SOCK", &sock)
            .stdin(std::fs::File::open(&reader).unwrap())
            .output()
            .unwrap()
    };
    // One persistent server (-t) for both readers.
    let good = read(&["0:2M:0xa5", "2M:2M:0", "4M:1M:0x3c"]);
    let out = String::from_utf8_lossy(&good.stdout).to_string();
    let bad = read(&["0:2M:0xa5", "4M:2M:0x3c"]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(good.status.success(), "{good:?}");
    assert!(out.contains("plain replies: 3 span(s) read back as written"), "{out}");
    assert!(
        out.contains("structured replies: 3 span(s) read back as written"),
        "{out}"
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("plain replies: byte 5242880 reads 0x00, 0x3c was written"),
        "{err}"
    );
}

/// What a test writes to stderr is in its log (its failure's reason, a
/// traceback), and never on sultana's stdout, where `--json` goes.
#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_test_s_stderr_goes_to_its_log() {
    let ctx = flown("tool");
    let script = "#!/bin/bash\necho to-stdout\necho to-stderr >&2\nexit 1\n";
    add_test(&ctx, "tool", "err", script, 60);
    commit(&ctx, "tool", &[("NEWS", "1.1\n")], "news");
    // It fails at the baseline too: never passed, nothing blocks.
    let run = ctx.sultana(&["gate", "tool", "--json"]).success();
    let gate = &run.json()["gate"];
    assert!(!run.stdout.lines().any(|l| l == "to-stderr"), "{}", run.stdout);
    let failed = job(&gate["report"], "test-tool-err");
    assert_eq!(failed["detail"], "exit 1: to-stderr", "{failed}");
    let log = std::fs::read_to_string(failed["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("to-stdout\nto-stderr\n"), "{log}");
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_rewind_is_refused_unless_allowed_and_then_said() {
    let ctx = fixture();
    ctx.sultana(&["fetch"]).success();
    let tested = ctx.lock_commit("libfix");
    let good = commit(&ctx, "libfix", &[("fix.c", GOOD_FIX)], "libfix: a reviewed change");
    ctx.sultana(&["gate", "libfix", "--push"]).success();
    assert_eq!(ctx.lock_commit("libfix"), good);

    // The older commit passes every test, but it drops tested work.
    let run = ctx
        .sultana(&["gate", "libfix", "--candidate", &tested, "--push", "--json"])
        .code(1)
        .stderr_has("is not a fast-forward of the tested");
    let gate = &run.json()["gate"];
    assert_eq!(gate["pushed"], false, "{gate}");
    assert_eq!(gate["refused_rewind"], true, "{gate}");
    assert_eq!(ctx.lock_commit("libfix"), good, "the pin stays");

    // Asked for: pushed, and said to be a rewind.
    let run = ctx
        .sultana(&[
            "gate",
            "libfix",
            "--candidate",
            &tested,
            "--push",
            "--allow-rewind",
            "--json",
        ])
        .success()
        .stderr_has("a rewind");
    let gate = &run.json()["gate"];
    assert_eq!(gate["pushed"], true, "{gate}");
    assert_eq!(gate["rewind"], true, "{gate}");
    assert_eq!(ctx.lock_commit("libfix"), tested);

    // A descendant is no rewind.
    let next = commit(&ctx, "libfix", &[("NEWS", "more\n")], "libfix: news");
    let run = ctx.sultana(&["gate", "libfix", "--push", "--json"]).success();
    assert_eq!(run.json()["gate"]["rewind"], false);
    assert_eq!(ctx.lock_commit("libfix"), next);
}

/// A flight whose builds are all in the build cache: a test that needs its
/// component's build tree (`make check` there) gets a real build, not a
/// restored prefix without one, so no regression is invented; a flight
/// with --no-build-cache afterwards does not keep trusting a restore.
#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_test_that_needs_the_build_tree_gets_a_build_not_a_restore() {
    let ctx = fixture();
    ctx.sultana(&["build"]).success();
    let run = ctx.sultana(&["gate", "libfix", "--always", "--json"]).success();
    let report = &run.json()["gate"]["report"];
    assert_eq!(job(report, "test-libfix-check")["status"], "pass", "{report}");
    assert_eq!(report["outcome"], "perfect", "{report}");
    assert!(
        run.stderr
            .contains("libfix is built, not restored: its test check needs its build tree"),
        "{}",
        run.stderr
    );
    // What needs no build tree is still restored.
    assert!(run.stderr.contains("Restored tool"), "{}", run.stderr);

    // The scratch area restored tool; --no-build-cache does not trust it.
    let run = ctx
        .sultana(&["gate", "libfix", "--always", "--no-build-cache", "--json"])
        .success();
    assert!(run.stderr.contains("Building tool"), "{}", run.stderr);
}

/// A component the manifest pins by commit id has no candidates: a gate of
/// another commit is refused before any flight (exit 2), naming the pin;
/// with the revision set to its branch, it is gated.
#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_component_pinned_by_commit_is_refused_a_candidate_before_the_flight() {
    let ctx = fixture();
    ctx.sultana(&["lock"]).success();
    let pinned = ctx.lock_commit("libfix");
    let manifest = ctx.read("sultana.toml");
    let by_commit = manifest.replacen(
        "[components.libfix]\nurl",
        "[components.libfix]\nrevision = \"PIN\"\nurl",
        1,
    );
    // The fixture's libfix has `revision = "master"` after its url.
    let by_commit = by_commit.replacen(
        "revision = \"master\"\nintree = \"extras/libfix\"",
        "intree = \"extras/libfix\"",
        1,
    );
    let by_commit = by_commit.replace("PIN", &pinned);
    assert!(by_commit.contains(&pinned), "{by_commit}");
    ctx.write("sultana.toml", &by_commit);
    ctx.sultana(&["lock"]).success();
    let candidate = commit(&ctx, "libfix", &[("fix.c", GOOD_FIX)], "libfix: a reviewed change");
    ctx.sultana(&["gate", "libfix", "--candidate", &candidate, "--push"])
        .code(2)
        .stderr_has("is pinned to a commit in the manifest")
        .stderr_has(&pinned);
    assert!(!ctx.work.join(".sultana/flights.db").exists(), "no flight was run");
    let run = ctx
        .sultana(&[
            "--set",
            "libfix.revision=master",
            "gate",
            "libfix",
            "--candidate",
            &candidate,
            "--json",
        ])
        .success();
    assert_eq!(
        run.json()["gate"]["candidate"]["commit"],
        candidate.as_str(),
        "{}",
        run.stderr
    );
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_candidate_that_was_never_built_is_not_pushed() {
    let ctx = fixture();
    // libfix, which root builds on, fails to build at the baseline and at
    // the candidate: no regression of libfix, but root is never built.
    commit(&ctx, "libfix", &[("fix.c", "this is not C\n")], "libfix: broken");
    ctx.sultana(&["update", "libfix"]).success();
    let _ = ctx.sultana(&["gate", "root", "--always"]);
    let pinned = ctx.lock_commit("root");
    commit(&ctx, "root", &[("README", "changed\n")], "root: readme");
    let run = ctx.sultana(&["gate", "root", "--push", "--json"]).code(1);
    let gate = &run.json()["gate"];
    assert_eq!(gate["pushed"], false, "{gate}");
    assert_eq!(ctx.lock_commit("root"), pinned);
    let f = finding(&gate["report"], "build-root");
    assert_eq!(f["class"], "blocked", "{f}");
    assert_eq!(f["blocking"], true, "{f}");
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .starts_with("the candidate was never built: "),
        "{f}"
    );
}
