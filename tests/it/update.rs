//! `update`: remote branches, old..new ranges, dirty refusal, backups.

use git2::Repository;

use crate::support::*;

#[test]
fn update_follows_the_remote_branch_not_a_stale_local_one() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let old = up.commit(&[("a", "1")], "one");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();

    // A stale local `master` in the checkout, as `git checkout master` leaves.
    let checkout = Repository::open(ctx.work.join("up")).unwrap();
    checkout
        .branch("master", &checkout.find_commit(old).unwrap(), true)
        .unwrap();

    up.commit(&[("a", "2")], "two");
    let new = up.commit(&[("a", "3")], "three");
    let run = ctx.sultana(&["update"]).success();
    let range = format!("{}..{}", &old.to_string()[..12], &new.to_string()[..12]);
    assert!(
        run.stderr.contains(&range) && run.stderr.contains("2 new commit(s)"),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.head("up"), new);
    assert_eq!(ctx.lock_commit("up"), new.to_string());
    assert_eq!(ctx.read("up/a"), "3");
    // `origin/master` in the checkout means the remote's branch.
    let remote = checkout.find_reference("refs/remotes/origin/master").unwrap();
    assert_eq!(remote.target(), Some(new));
}

#[test]
fn fetch_keeps_the_pin_while_update_moves_it() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let pinned = up.head();
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let moved = up.commit(&[("a", "new")], "moved on");
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.head("up"), pinned, "fetch honours the lock");
    ctx.sultana(&["update", "--json"]).success();
    assert_eq!(ctx.head("up"), moved);
}

/// Local work is refused only where the update would move the tree: a
/// dirty checkout whose pin stays put keeps its work and the run succeeds,
/// while another component still moves.
#[test]
fn a_dirty_tree_whose_pin_does_not_move_is_not_refused() {
    let ctx = TestContext::new();
    let still = ctx.upstream("still");
    let moving = ctx.upstream("moving");
    ctx.write(
        "sultana.toml",
        &manifest(&[("still", &still.url(), "master"), ("moving", &moving.url(), "master")]),
    );
    ctx.sultana(&["fetch"]).success();
    let pinned = ctx.head("still");
    ctx.write("still/work.c", "my work\n");

    ctx.sultana(&["update", "still"]).success();
    let new = moving.commit(&[("a", "new")], "moved on");
    ctx.sultana(&["update"]).success();
    assert_eq!(ctx.head("still"), pinned);
    assert_eq!(ctx.read("still/work.c"), "my work\n");
    assert_eq!(ctx.head("moving"), new, "the other component moved");
    assert_eq!(ctx.lock_commit("moving"), new.to_string());

    // Once the pin moves, the same work is refused, naming the component.
    let newer = still.commit(&[("b", "1")], "upstream");
    ctx.sultana(&["update"])
        .code(2)
        .stderr_has("still (still): 1 untracked file(s); the update would move it from")
        .stderr_has("sultana update --force still");
    assert_eq!(ctx.head("still"), pinned);
    assert_ne!(ctx.lock_commit("still"), newer.to_string(), "lock untouched on refusal");
}

#[test]
fn dirty_checkouts_are_refused_and_force_saves_everything() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit(&[("tracked.c", "original\n")], "base");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let before = ctx.head("up");

    ctx.write("up/tracked.c", "my edit\n");
    ctx.write("up/notes.txt", "untracked work\n");
    let new = up.commit(&[("tracked.c", "upstream change\n")], "upstream");

    ctx.sultana(&["update"])
        .code(2)
        .stderr_has("refusing to update")
        .stderr_has("1 changed file(s), 1 untracked file(s)")
        .stderr_has("sultana update --force");
    assert_eq!(ctx.head("up"), before, "nothing moved");
    assert_eq!(ctx.read("up/tracked.c"), "my edit\n");
    assert_ne!(ctx.lock_commit("up"), new.to_string(), "lock untouched on refusal");

    let run = ctx.sultana(&["update", "--force"]).success();
    assert_eq!(ctx.head("up"), new);
    assert_eq!(ctx.read("up/tracked.c"), "upstream change\n");
    assert!(!ctx.work.join("up/notes.txt").exists());

    // The backup holds both changes on top of the old HEAD, and the restore
    // command printed works.
    let repo = Repository::open(ctx.work.join("up")).unwrap();
    let backups: Vec<String> = repo
        .references_glob("refs/sultana/backup/*")
        .unwrap()
        .map(|r| r.unwrap().name().unwrap().to_string())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let saved = repo.find_reference(&backups[0]).unwrap().peel_to_commit().unwrap();
    assert_eq!(saved.parent_id(0).unwrap(), before);
    let tree = saved.tree().unwrap();
    let blob = |p: &str| {
        let entry = tree.get_path(std::path::Path::new(p)).unwrap();
        String::from_utf8(repo.find_blob(entry.id()).unwrap().content().to_vec()).unwrap()
    };
    assert_eq!(blob("tracked.c"), "my edit\n");
    assert_eq!(blob("notes.txt"), "untracked work\n");
    let restore = format!("checkout -b rescued {}", backups[0]);
    assert!(run.stderr.contains(&restore), "{}", run.stderr);
    let status = std::process::Command::new("git")
        .args([
            "-C",
            ctx.work.join("up").to_str().unwrap(),
            "checkout",
            "-q",
            "-b",
            "rescued",
            &backups[0],
        ])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", &ctx.home)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(ctx.read("up/tracked.c"), "my edit\n");
    assert_eq!(ctx.read("up/notes.txt"), "untracked work\n");
}

#[test]
fn local_commits_count_as_local_work() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let repo = Repository::open(ctx.work.join("up")).unwrap();
    ctx.write("up/mine.c", "mine\n");
    let mut index = repo.index().unwrap();
    index.add_path(std::path::Path::new("mine.c")).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("me", "me@example.org").unwrap();
    let parent = repo.head().unwrap().peel_to_commit().unwrap();
    let mine = repo
        .commit(Some("HEAD"), &sig, &sig, "my work", &tree, &[&parent])
        .unwrap();
    up.commit(&[("b", "upstream")], "upstream");

    ctx.sultana(&["update"])
        .code(2)
        .stderr_has("commits not in the upstream");
    ctx.sultana(&["status"])
        .success()
        .stdout_has("dirty: commits not in the upstream");
    ctx.sultana(&["update", "--force"]).success();
    let saved = repo
        .references_glob("refs/sultana/backup/*")
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(saved.peel_to_commit().unwrap().parent_id(0).unwrap(), mine);
}

#[test]
fn fetch_never_touches_a_dirty_tree() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let first = up.head();
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    up.switch_new_branch("next");
    up.commit(&[("README", "next\n")], "next");
    ctx.write("up/README", "my local edit\n");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "next")]));
    // Left as it is, in one line, and no error: the developer's tree. Where
    // the pins must hold (--locked, CI) it is one.
    ctx.sultana(&["fetch"])
        .success()
        .stderr_has("up has local work (1 changed file(s))")
        .stderr_has("`sultana update --force up` saves it and moves");
    ctx.sultana(&["--locked", "fetch"]).code(2).stderr_has("up (up)");
    assert_eq!(ctx.head("up"), first);
    assert_eq!(ctx.read("up/README"), "my local edit\n");
}

#[test]
fn update_all_includes_disabled_components() {
    let ctx = TestContext::new();
    let a = ctx.upstream("a");
    let off = ctx.upstream("off");
    let text = format!(
        "{}enabled = false\n",
        manifest(&[("a", &a.url(), "master"), ("off", &off.url(), "master")])
    );
    ctx.write("sultana.toml", &text);
    ctx.sultana(&["update"]).success();
    assert!(!ctx.work.join("off").exists());
    ctx.sultana(&["update", "--all"]).success();
    assert!(ctx.work.join("off").exists());
    assert_eq!(ctx.head("off"), off.head());
}

#[test]
fn lock_resolves_without_moving_checkouts_and_check_reports_staleness() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["lock", "--check"])
        .code(1)
        .stderr_has("up: not in sultana.lock");
    ctx.sultana(&["lock"]).success();
    assert!(!ctx.work.join("up").exists(), "lock does not check out");
    assert_eq!(ctx.lock_commit("up"), up.head().to_string());
    ctx.sultana(&["lock", "--check"]).success();

    up.switch_new_branch("stable");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "stable")]));
    let run = ctx.sultana(&["lock", "--check", "--json"]).code(1);
    assert_eq!(run.json()["ok"], false);
    // --locked: a fetch that would need to change the lock fails, untouched.
    let before = ctx.read("sultana.lock");
    ctx.sultana(&["fetch", "--locked"]).code(1).stderr_has("--locked");
    assert_eq!(ctx.read("sultana.lock"), before);
    ctx.sultana(&["fetch"]).success();
    ctx.sultana(&["fetch", "--locked"]).success();
    up.commit(&[("z", "z")], "moves");
    ctx.sultana(&["update", "--locked"]).code(1).stderr_has("would change");
}

/// A describe is kept while the commit and the tags do not change, and
/// made again when they do: a new tag on the locked commit, or one moved.
#[test]
fn a_kept_describe_follows_new_and_moved_tags() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit(&[("a", "1")], "one");
    up.tag("v1.0", false);
    up.commit(&[("a", "2")], "two");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    let describe = |ctx: &TestContext| -> String {
        let lock: toml::Value = toml::from_str(&ctx.read("sultana.lock")).unwrap();
        lock["component"][0]["describe"].as_str().unwrap().to_string()
    };
    ctx.sultana(&["lock"]).success();
    let first = describe(&ctx);
    assert!(first.starts_with("v1.0-1-g"), "{first}");
    // Nothing changed: the same (kept) answer.
    ctx.sultana(&["update"]).success();
    assert_eq!(describe(&ctx), first);
    // A tag on the locked commit itself.
    up.tag("v1.1", false);
    ctx.sultana(&["update"]).success();
    assert_eq!(describe(&ctx), "v1.1");
    // The tag moved away (deleted, made on the older commit again).
    up.repo.tag_delete("v1.1").unwrap();
    ctx.sultana(&["update"]).success();
    assert_eq!(describe(&ctx), first, "a deleted tag no longer names it");
}

#[test]
fn an_update_with_nothing_to_move_says_up_to_date() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    ctx.sultana(&["update"])
        .success()
        .stderr_has("up to date: 1 component(s) already at their revisions' tips")
        .stderr_lacks("updated 1");
    up.commit(&[("NEWS", "more\n")], "more");
    ctx.sultana(&["update"]).success().stderr_has("updated 1 component(s)");
}
