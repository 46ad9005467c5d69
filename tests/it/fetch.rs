//! `fetch`: clones at the pin, the lock, revision rules, the shared cache.

use crate::support::*;

#[test]
fn fetch_clones_at_pins_and_writes_the_lock() {
    let ctx = TestContext::new();
    let lib = ctx.upstream("lib");
    let v1 = lib.commit(&[("lib.c", "int v = 1;\n")], "v1");
    lib.tag("v1.0", true);
    let tip = lib.commit(&[("lib.c", "int v = 2;\n")], "v2");
    let app = ctx.upstream("app");
    ctx.write(
        "sultana.toml",
        &manifest(&[("lib", &lib.url(), "v1.0"), ("app", &app.url(), "master")]),
    );

    ctx.sultana(&["fetch"]).success().stderr_has("Checked out lib");
    assert_eq!(ctx.head("lib"), v1, "an annotated tag resolves to its peeled commit");
    assert_eq!(ctx.lock_commit("lib"), v1.to_string());
    assert_eq!(ctx.head("app"), app.head());
    assert_eq!(ctx.read("lib/lib.c"), "int v = 1;\n");
    let lock = ctx.read("sultana.lock");
    assert!(lock.contains("describe = \"v1.0\""), "{lock}");
    assert_ne!(ctx.lock_commit("lib"), tip.to_string());

    // The checkout borrows its objects from the cache.
    let alternates = ctx.read("lib/.git/objects/info/alternates");
    assert!(
        alternates.starts_with(ctx.cache.join("sultana/git").to_str().unwrap()),
        "{alternates}"
    );

    // Nothing to do the second time, and the lock is untouched.
    let run = ctx.sultana(&["fetch", "--json"]).success();
    let json = run.json();
    assert_eq!(json["lock_changed"], false);
    assert!(
        json["components"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["action"] == "fresh"),
        "{json}"
    );
    assert_eq!(ctx.read("sultana.lock"), lock);
}

#[test]
fn a_full_sha_only_on_another_branch_is_fetched() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.switch_new_branch("feature");
    let feature = up.commit(&[("f", "feature work\n")], "feature");
    up.switch("master");
    up.commit(&[("m", "master work\n")], "master moves on");
    let sha = feature.to_string();
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), &sha)]));
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.head("up"), feature);
    assert_eq!(ctx.read("up/f"), "feature work\n");
}

#[test]
fn a_missing_full_sha_is_an_error_naming_it() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let missing = "0123456789abcdef0123456789abcdef01234567";
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), missing)]));
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has(missing)
        .stderr_has("is not there");
    assert!(!ctx.work.join("sultana.lock").exists());
    assert!(!ctx.work.join("up").exists());
}

#[test]
fn short_shas_are_refused() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let short = &up.head().to_string()[..10];
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), short)]));
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("abbreviated commit id")
        .stderr_has("full 40-character")
        // The cache fetched the branches and tags: it knows the whole id.
        .stderr_has(&format!("(the cache knows it: {})", up.head()));
    assert!(!ctx.work.join("up").exists());
}

#[test]
fn unknown_revisions_and_ambiguous_names_are_errors() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "no-such-branch")]));
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("`no-such-branch` is not a branch, tag or commit");

    up.switch_new_branch("same");
    up.switch("master");
    up.tag("same", false);
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "same")]));
    ctx.sultana(&["fetch"]).code(2).stderr_has("both a branch and a tag");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "refs/tags/same")]));
    ctx.sultana(&["fetch"]).success();
}

#[test]
fn origin_prefixed_branches_are_accepted() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let tip = up.commit(&[("a", "1")], "one");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "origin/master")]));
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.head("up"), tip);
}

#[test]
fn a_second_workspace_needs_no_network() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit(&[("a", "1")], "one");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();

    // The upstream disappears: the cache alone must serve the pinned commit.
    let moved = ctx.root.join("gone");
    std::fs::rename(&up.path, &moved).unwrap();
    let second = ctx.dir("second");
    for file in ["sultana.toml", "sultana.lock"] {
        std::fs::copy(ctx.work.join(file), second.join(file)).unwrap();
    }
    ctx.sultana_in(&second, &["fetch", "--offline"]).success();
    assert_eq!(head_of(&second.join("up")), head_of(&ctx.work.join("up")));
    // Without --offline too: a pinned commit already cached needs no fetch.
    std::fs::remove_dir_all(second.join("up")).unwrap();
    ctx.sultana_in(&second, &["fetch"]).success().stderr_lacks("Fetching");
}

#[test]
fn offline_without_the_commit_names_the_component() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("blktap", &up.url(), "master")]));
    ctx.sultana(&["fetch", "--offline"])
        .code(2)
        .stderr_has("component `blktap` needs the network");
    assert!(!ctx.work.join("blktap").exists());
}

#[test]
fn mirrors_are_tried_before_the_url() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let mirror = ctx.upstream("mirror-of-up");
    let text = format!(
        "[components.up]\nurl = \"{}\"\nmirrors = [\"file://{}/down\", \"{}\"]\nrevision = \"master\"\n",
        up.url(),
        ctx.root.display(),
        mirror.url()
    );
    ctx.write("sultana.toml", &text);
    let down = format!("file://{}/down", ctx.root.display());
    let run = ctx
        .sultana(&["fetch"])
        .success()
        // Each line names the source it is about, and which answered.
        .stderr_has(&format!("Fetching up from {down} (mirror of {})", up.url()))
        .stderr_has("trying the next source")
        .stderr_has(&format!("Fetched up from {} (mirror of {})", mirror.url(), up.url()));
    // The mirror answered, so the URL was not needed: its commit is checked out.
    assert_eq!(ctx.head("up"), mirror.head(), "{}", run.stderr);
    // status shows where fetches go beside the canonical url.
    let status = ctx.sultana(&["status", "--json"]).success().json();
    let row = &status["components"][0];
    assert_eq!(row["url"], up.url().as_str(), "{row}");
    assert_eq!(row["fetch_from"], down.as_str(), "{row}");
    ctx.sultana(&["status"])
        .success()
        .stdout_has(&format!("fetched from {down}"));
}

#[test]
fn an_unreachable_url_is_a_clear_error() {
    let ctx = TestContext::new();
    let url = format!("file://{}/nowhere", ctx.root.display());
    ctx.write("sultana.toml", &manifest(&[("up", &url, "master")]));
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("could not fetch")
        .stderr_has("nowhere");
}

#[test]
fn fetch_of_named_components_only() {
    let ctx = TestContext::new();
    let a = ctx.upstream("a");
    let b = ctx.upstream("b");
    ctx.write(
        "sultana.toml",
        &manifest(&[("a", &a.url(), "master"), ("b", &b.url(), "master")]),
    );
    ctx.sultana(&["fetch", "a"]).success();
    assert!(ctx.work.join("a").exists());
    assert!(!ctx.work.join("b").exists());
    ctx.sultana(&["fetch", "zz"]).code(2).stderr_has("no component `zz`");
}

#[test]
fn a_checkout_is_a_usable_clone_with_origin_branches_and_tags() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.tag("v1.0", true);
    let tip = up.commit(&[("NEWS", "more\n")], "after the release");
    up.switch_new_branch("staging");
    let staging = up.commit(&[("NEWS", "staged\n")], "staged work");
    up.switch("master");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let dir = ctx.work.join("up");
    // No network needed: the names come from the cache.
    let describe = git_stdout(&dir, &ctx.home, &["describe", "--tags"]);
    assert!(describe.trim().starts_with("v1.0-1-g"), "{describe}");
    let origin = git_stdout(&dir, &ctx.home, &["rev-parse", "origin/master", "origin/staging"]);
    assert_eq!(
        origin.split_whitespace().collect::<Vec<_>>(),
        [tip.to_string(), staging.to_string()]
    );
    let ahead = git_stdout(
        &dir,
        &ctx.home,
        &["log", "--format=%s", "origin/master..origin/staging"],
    );
    assert_eq!(ahead.trim(), "staged work");
    // A tag of the developer's own stays through the next fetch.
    git_stdout(&dir, &ctx.home, &["tag", "mine"]);
    up.tag("v1.1", false);
    ctx.sultana(&["update"]).success();
    let tags = git_stdout(&dir, &ctx.home, &["tag", "--list"]);
    assert_eq!(
        tags.split_whitespace().collect::<Vec<_>>(),
        ["mine", "v1.0", "v1.1"],
        "{tags}"
    );
}

#[test]
fn the_no_network_hint_is_given_for_network_errors_only() {
    let ctx = TestContext::new();
    let missing = ctx.upstreams.join("never-made");
    ctx.write(
        "sultana.toml",
        &manifest(&[("up", &format!("file://{}", missing.display()), "master")]),
    );
    ctx.sultana(&["fetch"]).code(2).stderr_lacks("no network here");
    // Nothing listens on loopback port 9: the connection is refused.
    ctx.write(
        "sultana.toml",
        &manifest(&[("up", "http://127.0.0.1:9/up.git", "master")]),
    );
    ctx.sultana(&["fetch"]).code(2).stderr_has("no network here");
}
