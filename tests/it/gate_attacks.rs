//! Attacks on the rule that a gate never pushes a regression, each once a
//! way a worse candidate got pushed: the lock must not move.

use crate::gate::{add_test, commit, finding, fixture, flown, job};
use crate::gate_rules::NEWS_CHECK;

/// The baseline's single run fails once by chance; the candidate fails
/// every time. Once pushed as "never passed".
#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn one_chance_failure_at_the_baseline_does_not_excuse_a_candidate() {
    let ctx = flown("tool");
    let pinned = ctx.lock_commit("tool");
    let script = "#!/bin/bash\nif grep -q bad \"$SULTANA_SRC/NEWS\" 2>/dev/null; then echo 'NEWS says bad'; exit 1; fi\n\
if [ ! -e \"$HOME/fluked\" ]; then touch \"$HOME/fluked\"; echo 'fluke (first baseline run only)'; exit 1; fi\nexit 0\n";
    add_test(&ctx, "tool", "news", script, 60);
    commit(&ctx, "tool", &[("NEWS", "bad\n")], "bad");
    let run = ctx.sultana(&["gate", "tool", "--push", "--json"]).code(1);
    let gate = &run.json()["gate"];
    assert_eq!(
        finding(&gate["report"], "test-tool-news")["class"],
        "regression",
        "{gate}"
    );
    let base = job(&gate["baseline_report"], "test-tool-news");
    assert_eq!(
        (base["runs"].as_u64(), base["failed_runs"].as_u64()),
        (Some(7), Some(1)),
        "{base}"
    );
    assert_eq!(
        ctx.lock_commit("tool"),
        pinned,
        "a candidate failing 2 of 2 was pushed over a baseline that fails 1 in 7"
    );
}

/// The baseline skips (exit 77), the candidate fails: once "never passed".
#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_skip_at_the_baseline_is_no_evidence() {
    let ctx = flown("tool");
    let pinned = ctx.lock_commit("tool");
    let script = "#!/bin/bash\nif grep -q feature \"$SULTANA_SRC/NEWS\" 2>/dev/null; then echo 'feature broken'; exit 1; fi\necho 'skip: no feature'; exit 77\n";
    add_test(&ctx, "tool", "feat", script, 60);
    commit(&ctx, "tool", &[("NEWS", "feature\n")], "feature");
    let run = ctx.sultana(&["gate", "tool", "--push", "--json"]).code(1);
    let gate = &run.json()["gate"];
    assert_eq!(
        finding(&gate["report"], "test-tool-feat")["class"],
        "not-at-baseline",
        "{gate}"
    );
    assert_eq!(
        ctx.lock_commit("tool"),
        pinned,
        "a skip at the baseline counted as evidence"
    );
}

/// An existing test, passed at the baseline, made intermittent by the
/// candidate; the baseline's follow-up build fails transiently (a cc that
/// fails under gate-baseline): the test is blocked there, which once made
/// the intermittent failure "flaky".
#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_baseline_build_failure_does_not_excuse_an_intermittent_regression() {
    let ctx = fixture();
    let counted = "#!/bin/bash\ngrep -q intermittent \"$SULTANA_SRC/NEWS\" 2>/dev/null || exit 0\n\
n=$(cat \"$HOME/flop\" 2>/dev/null || echo 0)\nn=$((n + 1))\necho \"$n\" > \"$HOME/flop\"\necho \"run $n\"\n[ $((n % 2)) -eq 0 ]\n";
    add_test(&ctx, "tool", "flop", counted, 60);
    ctx.sultana(&["gate", "tool", "--always"]).success();
    let pinned = ctx.lock_commit("tool");
    let cc = ctx.write("bin/flakycc", "#!/bin/bash\ncase \"$PWD\" in *gate-baseline*) echo 'cc: internal error: Killed (program cc1)' >&2; exit 1;; esac\nexec gcc \"$@\"\n");
    std::process::Command::new("chmod").arg("+x").arg(&cc).status().unwrap();
    commit(&ctx, "tool", &[("NEWS", "intermittent\n")], "an intermittent bug");
    let path = format!("{}:{}", ctx.work.join("bin").display(), std::env::var("PATH").unwrap());
    let run = ctx.sultana_with(
        &ctx.work,
        "022",
        &[("CC", cc.to_str().unwrap()), ("PATH", &path)],
        &["gate", "tool", "--push", "--json"],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let gate = &run.json()["gate"];
    assert_eq!(
        job(&gate["baseline_report"], "test-tool-flop")["status"],
        "blocked",
        "{gate}"
    );
    // The baseline's earlier pass still counts; the blocked run adds nothing.
    assert_eq!(
        finding(&gate["report"], "test-tool-flop")["class"],
        "intermittent-regression",
        "{gate}"
    );
    assert_eq!(
        ctx.lock_commit("tool"),
        pinned,
        "a baseline build failure let an intermittent regression through"
    );
}

/// A gate without --push leaves a 1-of-5 baseline failure as the newest
/// baseline result; a candidate that then failed the test every time was
/// not retried and was "same as baseline".
#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn every_baseline_run_counts_not_the_newest() {
    let ctx = fixture();
    // Baseline: fails its 3rd baseline run only. Candidate 1 (NEWS flaky):
    // fails odd runs. Candidate 2 (NEWS bad): always fails.
    let script = "#!/bin/bash\nif grep -q bad \"$SULTANA_SRC/NEWS\" 2>/dev/null; then echo 'NEWS says bad'; exit 1; fi\n\
if grep -q flaky \"$SULTANA_SRC/NEWS\" 2>/dev/null; then n=$(cat \"$HOME/c\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$HOME/c\"; [ $((n % 2)) -eq 0 ]; exit; fi\n\
n=$(cat \"$HOME/b\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$HOME/b\"; echo \"baseline run $n\"; [ $n -ne 3 ]\n";
    add_test(&ctx, "tool", "t", script, 60);
    ctx.sultana(&["gate", "tool", "--always"]).success();
    let pinned = ctx.lock_commit("tool");
    commit(&ctx, "tool", &[("NEWS", "flaky\n")], "flaky");
    ctx.sultana(&["gate", "tool", "--json"]);
    commit(&ctx, "tool", &[("NEWS", "bad\n")], "bad");
    let run = ctx.sultana(&["gate", "tool", "--push", "--json"]).code(1);
    let gate = &run.json()["gate"];
    assert_eq!(finding(&gate["report"], "test-tool-t")["class"], "regression", "{gate}");
    assert_eq!(
        ctx.lock_commit("tool"),
        pinned,
        "a failure every run pushed over a baseline that passed 6 of 7"
    );
}

/// CI: the baseline's build job left no result (cancelled, or its
/// artifacts did not arrive): the baseline's tests are blocked, and the
/// candidate's failure of a test the baseline passes was once pushed.
#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn ci_a_lost_baseline_build_is_no_evidence() {
    let ctx = fixture();
    let script = NEWS_CHECK;
    add_test(&ctx, "tool", "news", script, 60);
    ctx.sultana(&["fetch", "-q"]).success();
    let pinned = ctx.lock_commit("tool");
    let candidate = commit(&ctx, "tool", &[("NEWS", "bad\n")], "bad");
    let builds = ["build-libfix", "build-tool", "build-rusty", "build-root"];
    let tests = [
        "test-libfix-check",
        "test-libfix-disk",
        "test-tool-version",
        "test-tool-news",
        "test-root-app",
    ];
    for set in ["baseline", "candidate"] {
        for job in builds.iter().chain(tests.iter()) {
            if set == "baseline" && *job == "build-tool" {
                continue; // its artifacts never arrive
            }
            ctx.sultana(&[
                "--locked",
                "gate",
                "tool",
                "--job",
                job,
                "--as",
                set,
                "--candidate",
                &candidate,
            ]);
        }
    }
    let results = ctx.work.join(".sultana/ci");
    let run = ctx
        .sultana(&[
            "--locked",
            "gate",
            "tool",
            "--candidate",
            &candidate,
            "--results",
            results.to_str().unwrap(),
            "--push",
            "--json",
        ])
        .code(1);
    let gate = &run.json()["gate"];
    assert_eq!(
        finding(&gate["report"], "test-tool-news")["class"],
        "not-at-baseline",
        "{gate}"
    );
    assert_eq!(ctx.lock_commit("tool"), pinned, "pushed with no baseline evidence");
}

/// CI: results computed with libfix at one pin, decided after the lock
/// moved libfix on, were once taken for results of the new pin.
#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn ci_results_of_other_pins_are_refused() {
    let ctx = fixture();
    ctx.sultana(&["fetch", "-q"]).success();
    let pinned = ctx.lock_commit("tool");
    let candidate = commit(&ctx, "tool", &[("NEWS", "fine\n")], "fine");
    let builds = ["build-libfix", "build-tool", "build-rusty", "build-root"];
    let tests = [
        "test-libfix-check",
        "test-libfix-disk",
        "test-tool-version",
        "test-root-app",
    ];
    for set in ["baseline", "candidate"] {
        for job in builds.iter().chain(tests.iter()) {
            ctx.sultana(&[
                "--locked",
                "gate",
                "tool",
                "--job",
                job,
                "--as",
                set,
                "--candidate",
                &candidate,
            ]);
        }
    }
    // Another gate moved libfix on meanwhile.
    let old = ctx.lock_commit("libfix");
    let new = commit(&ctx, "libfix", &[("NEWS", "libfix moved\n")], "libfix moves");
    let lock = ctx.read("sultana.lock").replace(&old, &new);
    ctx.write("sultana.lock", &lock);
    let results = ctx.work.join(".sultana/ci");
    ctx.sultana(&[
        "--locked",
        "gate",
        "tool",
        "--candidate",
        &candidate,
        "--results",
        results.to_str().unwrap(),
        "--push",
    ])
    .code(2)
    .stderr_has("other revisions than this gate's");
    assert_eq!(
        ctx.lock_commit("tool"),
        pinned,
        "results for libfix {old} decided as if for {new}"
    );
}

/// Kill -9 during the baseline's follow-up, then again.
#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn a_killed_baseline_follow_up_is_run_again() {
    let ctx = flown("tool");
    let pinned = ctx.lock_commit("tool");
    let script = NEWS_CHECK;
    add_test(&ctx, "tool", "news", script, 60);
    commit(&ctx, "tool", &[("NEWS", "bad\n")], "bad");
    for point in [
        "flight-job#10",
        "flight-job#11",
        "build-after-step#2",
        "atomic-write#30",
    ] {
        ctx.sultana_with(
            &ctx.work,
            "022",
            &[("SULTANA_TEST_CRASH_AT", point)],
            &["gate", "tool", "--push"],
        );
    }
    ctx.sultana(&["gate", "tool", "--push", "--json"])
        .code(1)
        .stderr_has("test-tool-news REGR. vs.");
    assert_eq!(ctx.lock_commit("tool"), pinned);
}

/// `--baseline REV --push` once judged the candidate against REV and
/// pushed it over the locked pin.
#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn push_is_judged_against_the_locked_pin() {
    let ctx = fixture();
    let script = NEWS_CHECK;
    add_test(&ctx, "tool", "news", script, 60);
    ctx.sultana(&["gate", "tool", "--always"]).success();
    let pinned = ctx.lock_commit("tool");
    let broken = commit(&ctx, "tool", &[("NEWS", "bad\n")], "bad");
    let cand = commit(&ctx, "tool", &[("OTHER", "x\n")], "more");
    ctx.sultana(&["gate", "tool", "--candidate", &cand, "--baseline", &broken, "--push"])
        .code(2)
        .stderr_has("drop --baseline");
    assert_eq!(
        ctx.lock_commit("tool"),
        pinned,
        "pushed over the locked pin a candidate that fails what the pin passes"
    );
    // Without --push, judging against another revision is fine.
    ctx.sultana(&["gate", "tool", "--candidate", &cand, "--baseline", &broken])
        .success();
}
