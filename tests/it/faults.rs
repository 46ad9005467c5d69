//! Killed runs: the next run finishes the job, nothing half-made is trusted,
//! nothing of the user's is lost. Concurrent runs.

use std::time::Duration;

use crate::support::*;

pub fn crash(ctx: &TestContext, point: &str, args: &[&str]) {
    let output = ctx
        .command(&ctx.work, args)
        .env("SULTANA_TEST_CRASH_AT", point)
        .output()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&output.status),
        Some(9),
        "expected death by SIGKILL at {point}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn killed_before_the_checkout_is_in_place_the_next_fetch_finishes() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    crash(&ctx, "checkout-before-rename", &["fetch"]);
    assert!(
        !ctx.work.join("up").exists(),
        "a half-made checkout is never at its path"
    );
    assert!(ctx.work.join(".up.sultana-new").exists());
    ctx.sultana(&["fetch"]).success();
    assert!(!ctx.work.join(".up.sultana-new").exists());
    assert_eq!(ctx.head("up"), up.head());
}

#[test]
fn killed_after_the_first_fill_of_the_cache_the_next_fetch_finishes() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.tag("v1", true);
    let tip = up.commit(&[("a.c", "two\n")], "two");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    // Packs moved into the store, its refs too, the clone folder not yet removed.
    crash(&ctx, "cache-after-clone-fill", &["fetch"]);
    assert!(!ctx.work.join("up").exists());
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.head("up"), tip);
    let stores = ctx.cache_entries();
    assert!(
        !stores.iter().any(|s| s.to_string_lossy().ends_with(".clone")),
        "{stores:?}"
    );
    // The store holds the upstream's tags as well as its branches.
    let json = ctx.sultana(&["status", "--json"]).success().json();
    assert_eq!(
        json["components"][0]["locked_describe"],
        "v1-1-g".to_string() + &tip.to_string()[..7],
        "{json}"
    );
}

#[test]
fn killed_between_lock_write_and_checkout() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    crash(&ctx, "after-lock-write", &["fetch"]);
    assert_eq!(ctx.lock_commit("up"), up.head().to_string());
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.head("up"), up.head());
}

#[test]
fn killed_in_the_middle_of_a_move_the_next_run_repairs_it() {
    for point in ["move-after-marker", "move-before-head"] {
        let ctx = TestContext::new();
        let up = ctx.upstream("up");
        up.commit(&[("a.c", "one\n"), ("b.c", "one\n")], "one");
        ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
        ctx.sultana(&["fetch"]).success();
        let new = up.commit(&[("a.c", "two\n"), ("c.c", "new\n")], "two");
        crash(&ctx, point, &["update"]);
        // Whatever state the kill left, the next update completes cleanly and
        // does not mistake its own half-done move for local work.
        ctx.sultana(&["update"]).success().stderr_lacks("refusing");
        assert_eq!(ctx.head("up"), new, "{point}");
        assert_eq!(ctx.read("up/a.c"), "two\n");
        assert_eq!(ctx.read("up/c.c"), "new\n");
        let json = ctx.sultana(&["status", "--json"]).success().json();
        assert_eq!(json["components"][0]["state"], "clean", "{point}: {json}");
    }
}

#[test]
fn kill_9_at_many_moments_of_a_fetch_then_rerun() {
    let ctx = TestContext::new();
    let up = ctx.upstream("big");
    let files: Vec<(String, String)> = (0..3000)
        .map(|i| {
            (
                format!("dir{}/file{i}.c", i % 50),
                format!("/* {i} */\n{}\n", "int x;\n".repeat(i % 40)),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    up.commit(&refs, "big tree");
    ctx.write("sultana.toml", &manifest(&[("big", &up.url(), "master")]));
    // Kill moments spread over a fetch; wherever each lands, the rerun must
    // end in exactly the uninterrupted state.
    for delay_ms in [5u64, 40, 90, 160, 250, 400] {
        let _ = std::fs::remove_dir_all(ctx.work.join("big"));
        let _ = std::fs::remove_file(ctx.work.join("sultana.lock"));
        let _ = std::fs::remove_dir_all(&ctx.cache);
        let mut child = ctx.command(&ctx.work, &["fetch"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        ctx.sultana(&["fetch"]).success();
        assert_eq!(ctx.head("big"), up.head(), "after a kill at {delay_ms} ms");
        assert_eq!(ctx.lock_commit("big"), up.head().to_string());
        let json = ctx.sultana(&["status", "--json"]).success().json();
        assert_eq!(
            json["components"][0]["state"], "clean",
            "after a kill at {delay_ms} ms: {json}"
        );
        assert_eq!(ctx.read("big/dir7/file2507.c"), files[2507].1);
    }
}

#[test]
fn two_workspaces_fetch_one_url_at_once() {
    let ctx = TestContext::new();
    let up = ctx.upstream("shared");
    for i in 0..20 {
        up.commit(&[(&format!("f{i}") as &str, "x")], "more");
    }
    let a = ctx.dir("wa");
    let b = ctx.dir("wb");
    let text = manifest(&[("shared", &up.url(), "master")]);
    std::fs::write(a.join("sultana.toml"), &text).unwrap();
    std::fs::write(b.join("sultana.toml"), &text).unwrap();
    let first = ctx.command(&a, &["fetch"]).spawn().unwrap();
    let second = ctx.command(&b, &["fetch"]).spawn().unwrap();
    for (child, dir) in [(first, &a), (second, &b)] {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(head_of(&dir.join("shared")), up.head());
    }
    let stores: Vec<_> = ctx
        .cache_entries()
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".lock"))
        .collect();
    assert_eq!(stores.len(), 1, "one store per URL: {stores:?}");
}

#[test]
fn a_second_run_on_one_workspace_waits_for_the_first() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    let lock_path = ctx.work.join(".sultana/workspace.lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let held = std::fs::File::create(&lock_path).unwrap();
    held.lock().unwrap();

    let mut child = ctx
        .command(&ctx.work, &["fetch"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A handshake: it says it waits for the lock; until then and after,
    // nothing is fetched while the lock is held.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(read > 0, "it ended without waiting for the lock: {said}");
        said.push_str(&line);
        if line.contains("Blocking waiting for file lock on the workspace") {
            break;
        }
    }
    assert!(
        !ctx.work.join("up").exists(),
        "it must wait while the workspace is locked"
    );
    held.unlock().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{said}");
    assert_eq!(ctx.head("up"), up.head());
}

/// Objects of the shared cache damaged on disk: the next checkout that needs
/// them notices, makes the store again from the network, and the trees of
/// every workspace that borrows from it are whole again.
#[test]
#[cfg_attr(not(have_git), ignore = "needs git")]
fn a_damaged_cache_is_fetched_again() {
    require("git", "finding an object in a pack (git verify-pack)");
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    // Text that does not compress to nothing (a pseudo-random walk).
    let mut state = 7u64;
    let files: Vec<(String, String)> = (0..30)
        .map(|i| {
            let text: String = (0..20_000)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    char::from(b'a' + ((state >> 40) % 26) as u8)
                })
                .collect();
            (format!("f{i}.txt"), text)
        })
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    up.commit(&refs, "thirty files");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let store = ctx.cache_store();
    let pack = std::fs::read_dir(store.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap();
    // Damage one blob's compressed bytes in the middle of the pack.
    let verify = std::process::Command::new("git")
        .args(["verify-pack", "-v"])
        .arg(pack.with_extension("idx"))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&verify.stdout);
    let (size, offset) = listing
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.get(1) == Some(&"blob") && w.len() >= 5)
        .map(|w| (w[3].parse::<usize>().unwrap(), w[4].parse::<usize>().unwrap()))
        .max()
        .expect("a blob in the pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    for i in (offset + 20..offset + size - 10).step_by(40) {
        bytes[i] ^= 0x55;
    }
    std::fs::write(&pack, &bytes).unwrap();

    // A backup saved in the store (update --force of a dirty tree).
    std::fs::write(ctx.work.join("up/mine.txt"), "my work\n").unwrap();
    up.commit(&[("f0.txt", "moved on\n")], "upstream moves");
    ctx.sultana(&["update", "--force"]).success();
    let store_refs = |name: &str| -> Vec<String> {
        let repo = git2::Repository::open_bare(&store).unwrap();
        let names: Vec<String> = repo
            .references_glob(name)
            .unwrap()
            .map(|r| r.unwrap().name().unwrap().to_string())
            .collect();
        names
    };
    let backups = store_refs("refs/sultana/backup/*");
    assert_eq!(backups.len(), 1, "the backup is in the store");

    let second = ctx.dir("second");
    std::fs::copy(ctx.work.join("sultana.toml"), second.join("sultana.toml")).unwrap();
    std::fs::copy(ctx.work.join("sultana.lock"), second.join("sultana.lock")).unwrap();
    let first_head = ctx.head("up");

    // The upstream unreachable: the repair cannot finish, and the store
    // every workspace borrows from is kept as it was, not emptied.
    let away = ctx.root.join("up-away");
    std::fs::rename(ctx.upstreams.join("up"), &away).unwrap();
    ctx.sultana_in(&second, &["fetch"])
        .code(2)
        .stderr_has("is damaged")
        .stderr_has("is kept as it was");
    let repo = git2::Repository::open(ctx.work.join("up")).unwrap();
    assert_eq!(
        repo.head().unwrap().peel_to_commit().unwrap().id(),
        first_head,
        "the first workspace still reads its HEAD"
    );
    assert_eq!(store_refs("refs/sultana/backup/*"), backups);
    std::fs::rename(&away, ctx.upstreams.join("up")).unwrap();

    ctx.sultana_in(&second, &["fetch"])
        .success()
        .stderr_has("is damaged")
        .stderr_has("fetching it again");
    assert_eq!(
        store_refs("refs/sultana/backup/*"),
        backups,
        "the backup was carried over"
    );
    for (path, content) in files.iter().skip(1) {
        assert_eq!(&std::fs::read_to_string(second.join("up").join(path)).unwrap(), content);
    }
    // The first workspace borrows from the same store: whole again too.
    let first = git2::Repository::open(ctx.work.join("up")).unwrap();
    let head = first.head().unwrap().peel_to_tree().unwrap();
    for entry in head.iter() {
        let blob = first.find_blob(entry.id()).unwrap();
        assert!(!blob.content().is_empty());
    }
}

/// The upstream rewrote its history and the pinned commit is gone: a new
/// workspace says which commit and where, and leaves nothing half-made.
#[test]
fn a_remote_that_lost_the_pinned_commit() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let pinned = up.commit(&[("a", "1")], "to be lost");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["lock"]).success();
    // Force the branch back: the pinned commit is on no ref upstream now.
    let first = up.repo.find_commit(pinned).unwrap().parent(0).unwrap();
    up.repo
        .reference("refs/heads/master", first.id(), true, "rewind")
        .unwrap();
    up.repo.set_head("refs/heads/master").unwrap();
    let objects = up.path.join(".git/objects");
    // And the object itself is gone (a gc after the force-push).
    let hex = pinned.to_string();
    let _ = std::fs::remove_file(objects.join(&hex[..2]).join(&hex[2..]));
    let fresh_cache = ctx.dir("fresh-cache");
    let output = ctx
        .command(&ctx.work, &["fetch"])
        .env("XDG_CACHE_HOME", &fresh_cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&hex) && stderr.contains("is not there"), "{stderr}");
    assert!(!ctx.work.join("up").exists(), "no checkout of something else");
}
