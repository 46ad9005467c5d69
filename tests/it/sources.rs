//! Component sources other than a managed checkout: local overrides, intree
//! copies; and the command-line override.

use crate::support::*;

#[test]
fn a_local_override_is_used_and_never_touched() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let mine = ctx.upstream("my-checkout");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.write(
        "sultana.local.toml",
        &format!("[components.up]\npath = \"{}\"\n", mine.path.display()),
    );
    std::fs::write(mine.path.join("README"), "uncommitted edit\n").unwrap();
    let before = mine.head();
    ctx.sultana(&["update", "--force"]).success();
    assert_eq!(mine.head(), before);
    assert_eq!(
        std::fs::read_to_string(mine.path.join("README")).unwrap(),
        "uncommitted edit\n"
    );
    assert!(!ctx.work.join("up").exists());
    let json = ctx.sultana(&["status", "--json"]).success().json();
    assert_eq!(json["components"][0]["source"], "local");
    assert_eq!(json["components"][0]["state"], "dirty");
}

#[test]
fn an_intree_copy_needs_no_git_and_no_network() {
    let ctx = TestContext::new();
    let text = "[tarball]\nroot = \"xen\"\n\n\
        [components.xen]\nurl = \"https://example.invalid/xen.git\"\nrevision = \"master\"\npath = \".\"\n\n\
        [components.blktap]\nurl = \"https://example.invalid/blktap.git\"\nrevision = \"v4.0.8\"\nintree = \"tools/blktap\"\n";
    ctx.write("sultana.toml", text);
    ctx.write("tools/blktap/Makefile", "all:\n");
    ctx.write("xen/Makefile", "all:\n");
    let run = ctx.sultana(&["fetch", "--offline", "--json"]).success();
    let json = run.json();
    let actions: Vec<_> = json["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].clone())
        .collect();
    assert_eq!(actions, ["intree", "intree"], "{json}");
    let status = ctx.sultana(&["status"]).success();
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("blktap") && l.contains("intree")),
        "{}",
        status.stdout
    );
    assert!(files_below(&ctx.cache).is_empty());
}

#[test]
fn set_overrides_a_revision_on_the_command_line() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let master = up.head();
    up.switch_new_branch("stable");
    let stable = up.commit(&[("s", "stable")], "stable");
    up.switch("master");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch", "--set", "up.revision=stable"]).success();
    assert_eq!(ctx.head("up"), stable);
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.head("up"), master);
}

#[test]
fn a_checkout_follows_its_component_to_another_url() {
    let ctx = TestContext::new();
    let first = ctx.upstream("first");
    ctx.write("sultana.toml", &manifest(&[("up", &first.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    // A fork holding the same history and one commit more.
    let fork = ctx.upstreams.join("fork");
    git2::Repository::clone(&first.url(), &fork).unwrap();
    let fork = Upstream::open(&fork);
    let ahead = fork.commit(&[("FORK", "only here\n")], "fork: one more");
    ctx.write("sultana.toml", &manifest(&[("up", &fork.url(), "master")]));
    ctx.sultana(&["update"]).success();
    assert_eq!(ctx.head("up"), ahead);
    assert_eq!(ctx.read("up/FORK"), "only here\n");
    let origin = git_stdout(&ctx.work.join("up"), &ctx.home, &["remote", "get-url", "origin"]);
    assert_eq!(origin.trim(), fork.url());
    // git in the checkout sees the fork's commits too.
    let log = git_stdout(&ctx.work.join("up"), &ctx.home, &["log", "--format=%s"]);
    assert!(log.contains("fork: one more") && log.contains("initial"), "{log}");
    // An origin the developer set is theirs: it stays.
    git_stdout(
        &ctx.work.join("up"),
        &ctx.home,
        &["remote", "set-url", "origin", "git@example.org:me/up.git"],
    );
    ctx.sultana(&["fetch"]).success();
    let origin = git_stdout(&ctx.work.join("up"), &ctx.home, &["remote", "get-url", "origin"]);
    assert_eq!(origin.trim(), "git@example.org:me/up.git");
}

#[test]
fn a_plain_path_to_a_working_repository_locks_on_a_fresh_cache() {
    let ctx = TestContext::new();
    // Fresh commits are loose objects, which git's local clone copies as
    // they are: the store must still get them.
    let up = ctx.upstream("plain");
    let tip = up.commit(&[("NEWS", "loose\n")], "a loose commit");
    let path = up.path.display().to_string();
    ctx.write("sultana.toml", &manifest(&[("up", &path, "master")]));
    ctx.sultana(&["lock"]).success();
    assert_eq!(ctx.lock_commit("up"), tip.to_string());
    assert!(ctx.read("sultana.lock").starts_with("# Written by sultana"));
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.read("up/NEWS"), "loose\n");
}

#[test]
fn a_pin_only_a_fork_has_is_said_at_lock_and_in_status() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let fork = ctx.upstreams.join("fork");
    git2::Repository::clone(&up.url(), &fork).unwrap();
    let fork = Upstream::open(&fork);
    let mine = fork.commit(&[("FORK", "only here\n")], "fork: mine");
    // Fetched from the fork (a local override of the url), locked there.
    ctx.write(
        "sultana.local.toml",
        &format!("[components.up]\nurl = \"{}\"\n", fork.url()),
    );
    ctx.sultana(&["update"]).success().stderr_has(&format!(
        "up: {} is not in {}'s branches or tags",
        &mine.to_string()[..12],
        up.url()
    ));
    assert_eq!(ctx.lock_commit("up"), mine.to_string());
    let status = ctx.sultana(&["status"]).success().stdout;
    assert!(status.contains("pin not in its url (only in a fork)"), "{status}");
    let check = ctx
        .sultana(&["lock", "--check", "--json"])
        .success()
        .stderr_has("only in a fork");
    assert_eq!(check.json()["not_in_url"], serde_json::json!(["up"]));
    // A release of it: its SBOM sends nobody to a url without the commit,
    // and a verifier (told where the fork is) makes the same bytes.
    let mut text = ctx.read("sultana.toml");
    text.push_str("\n[tarball]\nroot = \"up\"\nname = \"up-{desc}\"\n");
    ctx.write("sultana.toml", &text);
    ctx.sultana(&["tarball", "--desc", "1.0"])
        .success()
        .stderr_has("the SBOMs give no download location");
    let sbom: serde_json::Value = serde_json::from_str(&ctx.read("dist/up-1.0.spdx.json")).unwrap();
    assert_eq!(sbom["packages"][0]["downloadLocation"], "NOASSERTION", "{sbom}");
    let lock = tar_file(&ctx.work.join("dist/up-1.0.tar.gz"), "up-1.0/sultana.lock");
    assert!(lock.contains("not_in_url = true"), "{lock}");
    let rule = format!("{}={}", up.url(), fork.url());
    ctx.sultana(&["verify-tarball", "dist/up-1.0.tar.gz", "--url-rewrite", &rule])
        .success()
        .stdout_has("identical");
    // Once the url has it, nothing is said.
    up.commit(&[("OTHER", "x\n")], "other");
    std::fs::remove_file(ctx.work.join("sultana.local.toml")).unwrap();
    let run = ctx.sultana(&["update"]).success();
    assert!(!run.stderr.contains("is not in"), "{}", run.stderr);
    assert!(!ctx.sultana(&["status"]).success().stdout.contains("pin not in its url"));
}
