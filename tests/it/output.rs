//! What users read, exactly: the tables and messages of the everyday
//! commands snapshot as a whole (insta), with the temp folder, times and
//! commit ids redacted, so a reworded message or a moved column fails here
//! and is reviewed (`cargo insta review`) instead of slipping past a
//! substring check.

use crate::gate::fixture;
use crate::support::*;

/// A run's words, as a user sees them, with what differs from run to run
/// redacted.
fn seen(ctx: &TestContext, run: &Run) -> String {
    let text = format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        run.code.unwrap_or(-1),
        run.stdout,
        run.stderr
    );
    text.replace(&ctx.root.display().to_string(), "[ROOT]")
}

/// Times and commit ids vary; their place and shape do not.
fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b\d+\.\d+s\b", "[T]s");
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[COMMIT]");
    settings.add_filter(r"\b[0-9a-f]{40}\b", "[COMMIT]");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn the_everyday_commands_say_exactly_this() {
    let ctx = fixture();
    let settings = settings();
    let _bound = settings.bind_to_scope();
    // One job at a time: the order of the lines is the order of the work.
    let fetched = ctx.sultana(&["-j", "1", "fetch"]).success();
    insta::assert_snapshot!("fetch", seen(&ctx, &fetched));
    let built = ctx
        .sultana(&["-j", "1", "build", "--no-build-cache", "libfix", "tool"])
        .success();
    insta::assert_snapshot!("build", seen(&ctx, &built));
    let status = ctx.sultana(&["status"]).success();
    insta::assert_snapshot!("status", seen(&ctx, &status));
    let again = ctx.sultana(&["build", "libfix"]).success();
    insta::assert_snapshot!("build-fresh", seen(&ctx, &again));
    let unknown = ctx.sultana(&["build", "libfx"]).code(2);
    insta::assert_snapshot!("build-unknown", seen(&ctx, &unknown));
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn the_gate_s_verdict_and_the_flight_history_say_exactly_this() {
    let ctx = fixture();
    let settings = settings();
    let mut settings = settings.clone();
    // The compiler's own words are gcc's and automake's, not sultana's.
    settings.add_filter(r"(?m)(^  \| .*\n)+", "  | [the failed step's log]\n");
    settings.add_filter(r"-g[0-9a-f]{7,}\b", "-g[COMMIT]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    let _bound = settings.bind_to_scope();
    ctx.sultana(&["-j", "1", "gate", "libfix", "--always"]).success();
    crate::gate::break_libfix_build(&ctx);
    // A regression: the verdict, what it blocks, and why the push is refused.
    let refused = ctx.sultana(&["-j", "1", "gate", "libfix", "--push"]).code(1);
    insta::assert_snapshot!("gate-regression", seen(&ctx, &refused));
    let flights = ctx.sultana(&["flights"]).success();
    insta::assert_snapshot!("flights", seen(&ctx, &flights));
}
