//! Partial and shallow fetches (`--filter`, `--depth`): every mode writes
//! the lock a full fetch writes, checks out the same tree and makes the same
//! tarball; what a job needs more is fetched when it needs it.

use std::path::{Path, PathBuf};

use git2::{Oid, Signature, Time};

use crate::support::*;

const MODES: &[&[&str]] = &[
    &[],
    &["--filter", "tree:0"],
    &["--filter", "blob:none"],
    &["--depth", "1"],
];

fn git_in(dir: &Path, args: &[&str]) -> String {
    git_stdout(dir, Path::new("/nonexistent"), args)
}

fn serve_filters(up: &Upstream, allowed: bool) {
    let mut config = up.repo.config().unwrap();
    config.set_bool("uploadpack.allowFilter", allowed).unwrap();
    config.set_bool("uploadpack.allowAnySHA1InWant", allowed).unwrap();
}

/// Merge `branch` into HEAD (a merge commit, like an upstream pull request).
fn merge(up: &Upstream, branch: &str, when: i64) -> Oid {
    let repo = &up.repo;
    let ours = repo.head().unwrap().peel_to_commit().unwrap();
    let theirs = repo
        .find_branch(branch, git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_commit()
        .unwrap();
    let mut index = repo.merge_commits(&ours, &theirs, None).unwrap();
    let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
    let sig = Signature::new("Upstream Dev", "dev@example.org", &Time::new(when, 0)).unwrap();
    let oid = repo
        .commit(
            Some("HEAD"),
            &sig,
            &sig,
            &format!("Merge {branch}"),
            &tree,
            &[&ours, &theirs],
        )
        .unwrap();
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    oid
}

/// A history with work below and above its tags, a side branch with a tag
/// of its own merged back, and the tip far from every tag.
fn long_history(ctx: &TestContext) -> Upstream {
    let up = ctx.upstream("up");
    serve_filters(&up, true);
    for i in 0..400 {
        up.commit(&[("log.txt", &format!("old {i}\n"))], &format!("old {i}"));
    }
    up.tag("v1.0", true);
    for i in 0..20 {
        up.commit(&[("log.txt", &format!("mid {i}\n"))], &format!("mid {i}"));
    }
    up.switch_new_branch("side");
    for i in 0..3 {
        up.commit(&[(&format!("side{i}.c"), "side\n")], &format!("side {i}"));
    }
    up.tag("side-1", false);
    up.switch("master");
    for i in 0..5 {
        up.commit(&[("log.txt", &format!("main {i}\n"))], &format!("main {i}"));
    }
    merge(&up, "side", 1_800_000_000);
    for i in 0..90 {
        up.commit(&[("src/tip.c", &format!("tip {i}\n"))], &format!("tip {i}"));
    }
    up
}

/// A workspace folder with its own cache, for one mode.
fn workspace(ctx: &TestContext, name: &str, manifest: &str) -> (PathBuf, PathBuf) {
    let dir = ctx.root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sultana.toml"), manifest).unwrap();
    let cache = ctx.root.join(format!("{name}-cache"));
    std::fs::create_dir_all(&cache).unwrap();
    (dir, cache)
}

fn run_in(ctx: &TestContext, dir: &Path, cache: &Path, args: &[&str]) -> Run {
    ctx.sultana_with(dir, "022", &[("XDG_CACHE_HOME", cache.to_str().unwrap())], args)
}

fn store_kind(ctx: &TestContext, dir: &Path, cache: &Path) -> String {
    let run = run_in(ctx, dir, cache, &["status", "--json"]).success();
    run.json()["components"][0]["store"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

fn store_dir(cache: &Path) -> PathBuf {
    let stores: Vec<PathBuf> = std::fs::read_dir(cache.join("sultana/git"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.to_string_lossy().ends_with(".lock"))
        .collect();
    assert_eq!(stores.len(), 1, "{stores:?}");
    stores[0].clone()
}

#[test]
fn every_mode_checks_out_the_pin_and_writes_the_lock_of_a_full_fetch() {
    let ctx = TestContext::new();
    let up = long_history(&ctx);
    let expected = git_in(&up.path, &["describe", "--tags", "--abbrev=7", "HEAD"]);
    assert!(
        expected.starts_with("side-1-"),
        "the fixture's nearest tag is on the merged side: {expected}"
    );
    let manifest = manifest(&[("up", &up.url(), "master")]);
    let mut locks = Vec::new();
    for (i, mode) in MODES.iter().enumerate() {
        let (dir, cache) = workspace(&ctx, &format!("mode{i}"), &manifest);
        let mut args = vec!["fetch"];
        args.extend_from_slice(mode);
        let run = run_in(&ctx, &dir, &cache, &args).success();
        let lock = std::fs::read_to_string(dir.join("sultana.lock")).unwrap();
        assert!(lock.contains(&format!("describe = \"{expected}\"")), "{mode:?}: {lock}");
        assert_eq!(head_of(&dir.join("up")), up.head(), "{mode:?}");
        assert_eq!(std::fs::read_to_string(dir.join("up/src/tip.c")).unwrap(), "tip 89\n");
        locks.push(lock);
        let kind = store_kind(&ctx, &dir, &cache);
        let store = store_dir(&cache);
        match mode.first().copied() {
            None => assert_eq!(kind, "full"),
            Some("--filter") => {
                assert_eq!(kind, format!("partial ({})", mode[1]), "{}", run.stderr);
                // Commits only (or trees): far fewer objects than the full store.
                let missing = git_in(
                    &store,
                    &[
                        "-c",
                        "core.quotepath=off",
                        "rev-list",
                        "--objects",
                        "--all",
                        "--missing=print",
                    ],
                );
                assert!(
                    missing.lines().any(|l| l.starts_with('?')),
                    "{mode:?}: nothing is missing"
                );
            }
            Some(_) => {
                assert!(kind.starts_with("shallow"), "{kind}: {}", run.stderr);
                assert!(run.stderr.contains("Deepening"), "{}", run.stderr);
                assert!(store.join("shallow").exists());
            }
        }
        // git in the checkout knows the borrowed history and where to get the rest.
        let log = git_in(&dir.join("up"), &["log", "--oneline", "-3"]);
        assert_eq!(log.lines().count(), 3, "{mode:?}: {log}");
        let shown = git_in(&dir.join("up"), &["show", "--stat", "HEAD~2"]);
        assert!(shown.contains("src/tip.c"), "{mode:?}: {shown}");
        assert!(git_in(&dir.join("up"), &["status", "--porcelain"]).is_empty());
        // Nothing more to fetch the second time.
        let again = run_in(&ctx, &dir, &cache, &args).success();
        assert!(!again.stderr.contains("Fetching"), "{mode:?}: {}", again.stderr);
    }
    assert!(locks.iter().all(|l| l == &locks[0]), "{locks:#?}");
}

#[test]
fn a_server_that_refuses_filters_gets_a_full_fetch_and_one_warning() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    serve_filters(&up, false);
    up.commit(&[("a.c", "a\n")], "a");
    up.tag("v1", true);
    let tip = up.commit(&[("b.c", "b\n")], "b");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    let run = ctx.sultana(&["fetch", "--filter", "tree:0"]).success();
    assert_eq!(
        run.stderr.matches("does not serve partial clones").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("filtering not recognized"),
        "git's own words stay in the log: {}",
        run.stderr
    );
    assert_eq!(ctx.head("up"), tip);
    let status = ctx.sultana(&["status", "--json"]).success();
    assert_eq!(status.json()["components"][0]["store"], "full");
    assert!(ctx.read("sultana.lock").contains("describe = \"v1-1-g"));
    // Remembered: the next fetch from it asks for no filter and says nothing.
    let tip = up.commit(&[("c.c", "c\n")], "c");
    let run = ctx.sultana(&["update", "--filter", "tree:0"]).success();
    assert!(!run.stderr.contains("partial clones"), "{}", run.stderr);
    assert_eq!(ctx.head("up"), tip);
}

#[test]
fn a_shallow_store_updates_to_a_new_tip_and_fetches_an_older_pin_by_id() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    serve_filters(&up, true);
    let mut early = Vec::new();
    for i in 0..200 {
        early.push(up.commit(&[("a.c", &format!("early {i}\n"))], &format!("early {i}")));
        if i == 100 {
            up.tag("v0", false);
        }
    }
    up.tag("v1", true);
    for i in 0..10 {
        up.commit(&[("a.c", &format!("{i}\n"))], &format!("c{i}"));
    }
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch", "--depth", "1"]).success();
    assert!(ctx.read("sultana.lock").contains("describe = \"v1-10-g"));
    assert!(ctx.sultana(&["status"]).success().stdout.contains("shallow"));
    let count = git_in(&ctx.cache_store(), &["rev-list", "--count", "--all"]);
    assert!(
        count.parse::<u32>().unwrap() < 100,
        "deepened only as far as describe needs: {count}"
    );
    // The tip moves: `update` from the shallow store.
    let tip = up.commit(&[("a.c", "new\n")], "new tip");
    let run = ctx.sultana(&["update", "--depth", "1"]).success();
    assert_eq!(ctx.head("up"), tip, "{}", run.stderr);
    assert!(ctx.read("sultana.lock").contains("describe = \"v1-11-g"));
    assert!(ctx.sultana(&["status"]).success().stdout.contains("shallow"));

    // A second workspace on the same cache pins a commit below the boundary:
    // fetched by id, described as a full clone describes it.
    let old = early[150];
    let other = ctx.root.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("sultana.toml"),
        manifest(&[("up", &up.url(), &old.to_string())]),
    )
    .unwrap();
    ctx.sultana_in(&other, &["fetch", "--depth", "1"]).success();
    assert_eq!(head_of(&other.join("up")), old);
    assert_eq!(std::fs::read_to_string(other.join("up/a.c")).unwrap(), "early 150\n");
    let (full, full_cache) = workspace(&ctx, "full", &manifest(&[("up", &up.url(), &old.to_string())]));
    run_in(&ctx, &full, &full_cache, &["fetch"]).success();
    let lock = std::fs::read_to_string(other.join("sultana.lock")).unwrap();
    assert!(lock.contains("describe = \"v0-50-g"), "{lock}");
    assert_eq!(lock, std::fs::read_to_string(full.join("sultana.lock")).unwrap());
    assert!(ctx.sultana(&["status"]).success().stdout.contains("shallow"));

    // A plain command keeps the store as it is; asking for everything
    // (--full) makes it whole, once.
    let plain = ctx.sultana(&["update", "up"]).success();
    assert!(!plain.stderr.contains("fetching its history"), "{}", plain.stderr);
    assert!(ctx.sultana(&["status"]).success().stdout.contains("shallow"));
    let run = ctx.sultana(&["update", "up", "--full"]).success();
    assert!(run.stderr.contains("fetching its history"), "{}", run.stderr);
    assert!(ctx.sultana(&["status"]).success().stdout.contains("full"));
    assert_eq!(git_in(&ctx.work.join("up"), &["rev-list", "--count", "HEAD"]), "212");
    let again = ctx.sultana(&["update", "up"]).success();
    assert!(!again.stderr.contains("history"), "{}", again.stderr);
}

#[test]
fn a_partial_store_is_completed_when_a_full_fetch_is_asked() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    serve_filters(&up, true);
    for i in 0..5 {
        up.commit(&[("f.c", &format!("{i}\n"))], &format!("c{i}"));
    }
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch", "--filter", "blob:none"]).success();
    let store = ctx.cache_store();
    let missing = git_in(&store, &["rev-list", "--objects", "--all", "--missing=print"]);
    assert!(missing.lines().any(|l| l.starts_with('?')));
    up.commit(&[("g.c", "y\n")], "more");
    // A plain update keeps the store partial (the new tip's blobs come as
    // the checkout needs them); --full completes it.
    let plain = ctx.sultana(&["update"]).success();
    assert!(!plain.stderr.contains("Completing"), "{}", plain.stderr);
    assert_eq!(ctx.read("up/g.c"), "y\n");
    let run = ctx.sultana(&["update", "--full"]).success();
    assert!(run.stderr.contains("Completing"), "{}", run.stderr);
    let missing = git_in(&store, &["rev-list", "--objects", "--all", "--missing=print"]);
    assert!(!missing.lines().any(|l| l.starts_with('?')), "{missing}");
    assert!(ctx.sultana(&["status"]).success().stdout.contains("full"));
}

#[test]
fn the_manifest_says_filter_or_depth_and_the_command_line_wins() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    serve_filters(&up, true);
    up.commit(&[("a.c", "a\n")], "a");
    let base = manifest(&[("up", &up.url(), "master")]);
    ctx.write(
        "sultana.toml",
        &base.replace("name = \"test\"\n", "name = \"test\"\nfilter = \"tree:0\"\n"),
    );
    ctx.sultana(&["lock"]).success();
    assert!(ctx.sultana(&["status"]).success().stdout.contains("partial (tree:0)"));

    // Per component wins over [workspace].
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    serve_filters(&up, true);
    for i in 0..3 {
        up.commit(&[("a.c", &format!("{i}\n"))], &format!("c{i}"));
    }
    up.tag("v3", true);
    ctx.write(
        "sultana.toml",
        &format!("[workspace]\nname = \"t\"\nfilter = \"tree:0\"\n\n[components.up]\nurl = \"{}\"\nrevision = \"master\"\ndepth = 1\n", up.url()),
    );
    ctx.sultana(&["fetch"]).success();
    assert!(ctx.sultana(&["status"]).success().stdout.contains("shallow"));
    // The command line wins over both: a new cache made full.
    let ctx2 = TestContext::new();
    let up2 = ctx2.upstream("up");
    serve_filters(&up2, true);
    ctx2.write("sultana.toml", &ctx.read("sultana.toml").replace(&up.url(), &up2.url()));
    ctx2.sultana(&["fetch", "--filter", "blob:none"]).success();
    assert!(ctx2
        .sultana(&["status"])
        .success()
        .stdout
        .contains("partial (blob:none)"));

    // Bad values: file, line and column; nothing done.
    for (bad, says) in [
        ("filter = \"blob:limit=1k\"", "is not one sultana uses"),
        ("depth = 0", "is not a number of commits"),
        ("depth = 1\nfilter = \"tree:0\"", "not both"),
    ] {
        let ctx = TestContext::new();
        ctx.write("sultana.toml", &format!("{base}{bad}\n"));
        ctx.sultana(&["fetch"])
            .code(2)
            .stderr_has(says)
            .stderr_has("sultana.toml:");
        assert!(!ctx.work.join("up").exists());
    }
    ctx.sultana(&["fetch", "--filter", "tree:0", "--depth", "1"]).code(2);
    ctx.sultana(&["fetch", "--filter", "sparse:oid=x"]).code(2);
    ctx.sultana(&["fetch", "--depth", "0"]).code(2);
}

#[test]
fn killed_while_deepening_and_two_runs_at_once_still_describe_right() {
    let ctx = TestContext::new();
    let up = long_history(&ctx);
    let expected = git_in(&up.path, &["describe", "--tags", "--abbrev=7", "HEAD"]);
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    let killed = ctx
        .command(&ctx.work, &["lock", "--depth", "1"])
        .env("SULTANA_TEST_CRASH_AT", "store-deepened#1")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    assert!(!ctx.work.join("sultana.lock").exists());
    ctx.sultana(&["lock", "--depth", "1"]).success();
    assert!(ctx.read("sultana.lock").contains(&format!("describe = \"{expected}\"")));

    // Two workspaces on one fresh cache, deepening the same store at once.
    let cache = ctx.root.join("shared-cache");
    let dirs: Vec<PathBuf> = (0..2)
        .map(|i| workspace(&ctx, &format!("race{i}"), &manifest(&[("up", &up.url(), "master")])).0)
        .collect();
    let children: Vec<_> = dirs
        .iter()
        .map(|d| {
            ctx.command(d, &["fetch", "--depth", "1"])
                .env("XDG_CACHE_HOME", &cache)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for d in &dirs {
        let lock = std::fs::read_to_string(d.join("sultana.lock")).unwrap();
        assert!(lock.contains(&format!("describe = \"{expected}\"")), "{lock}");
        assert_eq!(head_of(&d.join("up")), up.head());
    }
}

#[test]
fn tarballs_are_the_same_bytes_from_every_mode_and_verify_fetches_only_the_pins() {
    let ctx = TestContext::new();
    let lib = ctx.upstream("lib");
    serve_filters(&lib, true);
    for i in 0..30 {
        lib.commit(&[("lib.c", &format!("int v = {i};\n"))], &format!("lib {i}"));
    }
    lib.tag("v2.0", true);
    let root = ctx.upstream("root");
    serve_filters(&root, true);
    root.commit_raw(b"tools/run.sh", b"#!/bin/sh\necho hi\n", 0o100755, "an executable");
    root.commit_raw(b"docs/link", b"../README", 0o120000, "a symlink");
    root.tag("v1.0", true);
    root.commit(&[("after.txt", "after\n")], "after the tag");
    let manifest = format!(
        "[workspace]\nname = \"rel\"\n\n[tarball]\nroot = \"root\"\nname = \"root-{{desc}}\"\n\n\
         [components.root]\nurl = \"{}\"\nrevision = \"master\"\n\n\
         [components.lib]\nurl = \"{}\"\nrevision = \"v2.0\"\nintree = \"extras/lib\"\n",
        root.url(),
        lib.url()
    );
    let mut sums = Vec::new();
    let mut tarballs = Vec::new();
    for (i, mode) in MODES.iter().enumerate() {
        let (dir, cache) = workspace(&ctx, &format!("t{i}"), &manifest);
        let mut args = vec!["tarball"];
        args.extend_from_slice(mode);
        run_in(&ctx, &dir, &cache, &args).success();
        let tarball = std::fs::read_dir(dir.join("dist"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
            .unwrap();
        sums.push(std::fs::read(&tarball).unwrap());
        tarballs.push(tarball);
        // A plain tarball after it keeps each store as it holds (a shallow
        // one stays shallow: only describe deepens what it must).
        if mode.contains(&"--depth") {
            let before = run_in(&ctx, &dir, &cache, &["status"]).success().stdout;
            assert!(before.contains("shallow"), "{before}");
            run_in(&ctx, &dir, &cache, &["tarball", "--out", "again"]).success();
            let after = run_in(&ctx, &dir, &cache, &["status"]).success().stdout;
            assert_eq!(before, after, "{mode:?}");
        }
    }
    assert!(
        tarballs[0].to_string_lossy().contains("root-v1.0-1-g"),
        "{:?}",
        tarballs[0]
    );
    assert!(sums.iter().all(|s| s == &sums[0]), "a tarball differs between modes");

    // verify-tarball on a fresh cache: the locked commits only.
    let fresh = ctx.root.join("verify-cache");
    std::fs::create_dir_all(&fresh).unwrap();
    let run = ctx.sultana_with(
        &ctx.root,
        "022",
        &[("XDG_CACHE_HOME", fresh.to_str().unwrap())],
        &["verify-tarball", tarballs[0].to_str().unwrap()],
    );
    let run = run.success();
    assert!(run.stderr.contains("Fetching"), "{}", run.stderr);
    for store in std::fs::read_dir(fresh.join("sultana/git")).unwrap().flatten() {
        let path = store.path();
        if path.is_dir() {
            let count = git_in(&path, &["rev-list", "--count", "--all"]);
            assert_eq!(count, "1", "{}: only the pinned commit", path.display());
        }
    }
    // A workspace on that cache asking for full trees (--full) completes
    // the stores, though its pins are already there.
    let t0 = ctx.root.join("t0");
    let run = ctx
        .sultana_with(
            &t0,
            "022",
            &[("XDG_CACHE_HOME", fresh.to_str().unwrap())],
            &["fetch", "--full"],
        )
        .success();
    assert!(run.stderr.contains("fetching its history"), "{}", run.stderr);
    let status = ctx.sultana_with(
        &t0,
        "022",
        &[("XDG_CACHE_HOME", fresh.to_str().unwrap())],
        &["status", "--json"],
    );
    for row in status.success().json()["components"].as_array().unwrap() {
        assert_eq!(row["store"], "full", "{row}");
    }
    assert_eq!(git_in(&t0.join("lib"), &["rev-list", "--count", "HEAD"]), "31");
}

#[test]
fn an_old_server_that_sends_no_commit_by_id_gets_a_whole_fetch() {
    let ctx = TestContext::new();
    // Protocol v0, where a server sends only what its refs name.
    std::fs::write(ctx.home.join(".gitconfig"), "[protocol]\n\tversion = 0\n").unwrap();
    let up = ctx.upstream("up");
    serve_filters(&up, false);
    let old = up.commit(&[("a.c", "old\n")], "old");
    up.commit(&[("a.c", "new\n")], "new");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), &old.to_string())]));
    ctx.sultana(&["fetch", "--depth", "1"])
        .success()
        .stderr_has("will not send commit");
    assert_eq!(ctx.head("up"), old);
    assert_eq!(ctx.read("up/a.c"), "old\n");
    assert!(ctx.sultana(&["status"]).success().stdout.contains("full"));
}

#[test]
fn a_shallow_describe_is_not_fooled_by_a_tag_above_a_cut_side_branch() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    serve_filters(&up, true);
    up.commit(&[("base.c", "base\n")], "base");
    up.switch_new_branch("side");
    for i in 0..150 {
        up.commit(&[("side.c", &format!("side {i}\n"))], &format!("side {i}"));
        if i == 20 {
            up.tag("side-t", true);
        }
    }
    up.switch("master");
    for i in 0..5 {
        up.commit(&[("main.c", &format!("main {i}\n"))], &format!("main {i}"));
    }
    up.tag("main-t", true);
    for i in 0..3 {
        up.commit(&[("main.c", &format!("more {i}\n"))], &format!("more {i}"));
    }
    merge(&up, "side", 1_800_000_000);
    up.commit(&[("main.c", "tip\n")], "tip");
    let expected = git_in(&up.path, &["describe", "--tags", "--abbrev=7", "HEAD"]);
    assert!(expected.starts_with("side-t-"), "{expected}");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["lock", "--depth", "1"]).success();
    let lock = ctx.read("sultana.lock");
    assert!(lock.contains(&format!("describe = \"{expected}\"")), "{lock}");
}

/// Commits made by git itself, all at one second (a scripted series, a
/// rebase), where the order of a walk decides describe's ties.
fn git_at_one_second(dir: &Path, args: &[&str]) {
    let date = "1700000000 +0000";
    git_stdout_with(
        dir,
        Path::new("/nonexistent"),
        &[("GIT_AUTHOR_DATE", date), ("GIT_COMMITTER_DATE", date)],
        args,
    );
}

#[test]
fn describe_is_git_s_for_tag_kinds_same_second_merges_and_whole_short_histories() {
    let ctx = TestContext::new();
    // An annotated and a lightweight tag on one commit: git takes the annotated.
    let up = ctx.upstream("up");
    serve_filters(&up, true);
    up.commit(&[("a.c", "1\n")], "one");
    up.tag("v1", true);
    up.tag("a-light", false);
    up.commit(&[("a.c", "2\n")], "two");
    // A series made in one second, with a merge.
    let same = ctx.upstream("same");
    serve_filters(&same, true);
    let d = &same.path;
    git_at_one_second(d, &["commit", "-q", "--allow-empty", "-m", "c0"]);
    git_at_one_second(d, &["checkout", "-q", "-b", "side"]);
    git_at_one_second(d, &["commit", "-q", "--allow-empty", "-m", "c2"]);
    git_at_one_second(d, &["commit", "-q", "--allow-empty", "-m", "c3"]);
    git_at_one_second(d, &["tag", "l3"]);
    git_at_one_second(d, &["checkout", "-q", "master"]);
    git_at_one_second(d, &["commit", "-q", "--allow-empty", "-m", "c1"]);
    git_at_one_second(d, &["merge", "-q", "--no-ff", "-m", "merge", "side"]);
    let manifest = manifest(&[("up", &up.url(), "master"), ("same", &same.url(), "master")]);
    let (full, full_cache) = workspace(&ctx, "full", &manifest);
    run_in(&ctx, &full, &full_cache, &["lock"]).success();
    let expected = std::fs::read_to_string(full.join("sultana.lock")).unwrap();
    for (name, want) in [("up", &up.path), ("same", &same.path)] {
        let described = git_in(want, &["describe", "--tags", "--abbrev=7", "HEAD"]);
        assert!(
            expected.contains(&format!("describe = \"{described}\"")),
            "{name}: {expected}"
        );
    }
    for (i, depth) in ["1", "100"].iter().enumerate() {
        let (dir, cache) = workspace(&ctx, &format!("d{i}"), &manifest);
        run_in(&ctx, &dir, &cache, &["lock", "--depth", depth]).success();
        assert_eq!(
            std::fs::read_to_string(dir.join("sultana.lock")).unwrap(),
            expected,
            "--depth {depth}"
        );
        // Locking again asks nothing more of the history.
        let again = run_in(&ctx, &dir, &cache, &["lock", "--depth", depth]).success();
        assert!(!again.stderr.contains("Deepening"), "{}", again.stderr);
        assert_eq!(std::fs::read_to_string(dir.join("sultana.lock")).unwrap(), expected);
        // A full fetch on that cache (whose stores hold some names only).
        let (other, _) = workspace(&ctx, &format!("o{i}"), &manifest);
        run_in(&ctx, &other, &cache, &["lock"]).success();
        assert_eq!(std::fs::read_to_string(other.join("sultana.lock")).unwrap(), expected);
    }
}

#[test]
fn full_revision_names_and_git_lock_files_a_killed_run_left() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    serve_filters(&up, true);
    up.commit(&[("a.c", "1\n")], "one");
    up.tag("v1", true);
    let tip = up.commit(&[("a.c", "2\n")], "two");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "refs/heads/master")]));
    ctx.sultana(&["fetch", "--depth", "1"]).success();
    assert_eq!(ctx.head("up"), tip);
    // What git leaves when killed: its locks stay, and must not stop the next run.
    let store = ctx.cache_store();
    std::fs::write(store.join("shallow.lock"), "").unwrap();
    std::fs::create_dir_all(store.join("refs/heads")).unwrap();
    std::fs::write(store.join("refs/heads/master.lock"), "").unwrap();
    std::fs::write(store.join("packed-refs.lock"), "").unwrap();
    let tip = up.commit(&[("a.c", "3\n")], "three");
    ctx.sultana(&["update", "--depth", "1"]).success();
    assert_eq!(ctx.head("up"), tip);
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "refs/tags/v1")]));
    ctx.sultana(&["update", "--depth", "1"]).success();
    assert!(ctx.read("sultana.lock").contains("describe = \"v1\""));
}

#[test]
fn a_pin_no_branch_names_keeps_its_tree_when_the_store_is_completed() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    serve_filters(&up, true);
    for i in 0..4 {
        up.commit(&[("a.c", &format!("{i}\n"))], &format!("c{i}"));
    }
    up.switch_new_branch("feat");
    let feat = up.commit(&[("feat.c", "feature\n")], "feature");
    up.switch("master");
    let (p, cache) = workspace(&ctx, "p", &manifest(&[("up", &up.url(), "feat")]));
    run_in(&ctx, &p, &cache, &["lock", "--filter", "tree:0"]).success();
    // The branch goes; another workspace asks for everything (completion).
    up.repo
        .find_branch("feat", git2::BranchType::Local)
        .unwrap()
        .delete()
        .unwrap();
    up.commit(&[("a.c", "new\n")], "new");
    let (f, _) = workspace(&ctx, "f", &manifest(&[("up", &up.url(), "master")]));
    let run = run_in(&ctx, &f, &cache, &["update", "--full"]).success();
    assert!(run.stderr.contains("Completing"), "{}", run.stderr);
    // The locked commit's tree is fetched, not taken for a damaged cache.
    let run = run_in(&ctx, &p, &cache, &["fetch"]).success();
    assert!(!run.stderr.contains("damaged"), "{}", run.stderr);
    assert_eq!(head_of(&p.join("up")), feat);
    assert_eq!(std::fs::read_to_string(p.join("up/feat.c")).unwrap(), "feature\n");
}

#[test]
fn an_old_server_that_filters_but_sends_no_object_by_id() {
    let ctx = TestContext::new();
    std::fs::write(ctx.home.join(".gitconfig"), "[protocol]\n\tversion = 0\n").unwrap();
    let up = ctx.upstream("up");
    up.repo
        .config()
        .unwrap()
        .set_bool("uploadpack.allowFilter", true)
        .unwrap();
    for i in 0..3 {
        up.commit(&[("a.c", &format!("{i}\n"))], &format!("c{i}"));
    }
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch", "--filter", "tree:0"])
        .success()
        .stderr_has("will not send objects by id");
    assert_eq!(ctx.head("up"), up.head());
    assert_eq!(ctx.read("up/a.c"), "2\n");
}

#[test]
fn locking_again_keeps_the_history_describe_deepened() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    serve_filters(&up, true);
    for i in 0..200 {
        up.commit(&[("a.c", &format!("{i}\n"))], &format!("c{i}"));
    }
    up.tag("v1", true);
    for i in 0..10 {
        up.commit(&[("a.c", &format!("after {i}\n"))], &format!("after {i}"));
    }
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    let first = ctx.sultana(&["lock", "--depth", "1"]).success();
    assert!(first.stderr.contains("Deepening"), "{}", first.stderr);
    assert!(ctx.cache_store().join("shallow").exists());
    let again = ctx.sultana(&["lock", "--depth", "1"]).success();
    assert!(!again.stderr.contains("Deepening"), "{}", again.stderr);
    assert!(ctx.read("sultana.lock").contains("describe = \"v1-10-g"));
}

#[test]
fn a_shallow_store_offline_a_wrong_pin_and_a_force_push_fetch_no_more_than_needed() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    serve_filters(&up, true);
    for i in 0..200 {
        up.commit(&[("a.c", &format!("{i}\n"))], &format!("c{i}"));
        if i == 50 {
            up.tag("v0", true);
        }
    }
    up.tag("v1", true);
    for i in 0..10 {
        up.commit(&[("a.c", &format!("after {i}\n"))], &format!("after {i}"));
    }
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch", "--depth", "1"]).success();
    let lock = ctx.read("sultana.lock");
    // Without the network, the tags the last run listed describe again.
    ctx.sultana(&["--offline", "lock", "--depth", "1"]).success();
    assert_eq!(ctx.read("sultana.lock"), lock);
    let count = || {
        git_in(&ctx.cache_store(), &["rev-list", "--count", "--all"])
            .parse::<u32>()
            .unwrap()
    };
    let before = count();
    // A pin the server does not have is an error, not a whole download.
    let other = ctx.root.join("wrong");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("sultana.toml"),
        manifest(&[("up", &up.url(), &"0123456789".repeat(4))]),
    )
    .unwrap();
    ctx.sultana_in(&other, &["fetch", "--depth", "1"]).code(2);
    assert_eq!(count(), before);
    assert!(ctx.sultana(&["status"]).success().stdout.contains("shallow"));
    // A force-pushed branch: its new tip comes one commit deep.
    let head = up.repo.revparse_single("HEAD~150").unwrap();
    up.repo.reset(&head, git2::ResetType::Hard, None).unwrap();
    let tip = up.commit(&[("a.c", "rewritten\n")], "rewritten");
    ctx.sultana(&["update", "--depth", "1"]).success();
    assert_eq!(ctx.head("up"), tip);
    assert!(ctx.read("sultana.lock").contains("describe = \"v0-10-g"));
    // The new tip one commit deep, then what describe needs (each deepening
    // also deepens the old history by as much): never the whole new history.
    assert!(count() < before + 150, "{} commits after the force push", count());
}
