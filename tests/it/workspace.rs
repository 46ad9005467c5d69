//! How a workspace is found, and what happens where there is none.

use crate::support::*;

/// Every file and folder below `dir`.
fn contents(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn outside_a_workspace_commands_refuse_and_touch_nothing() {
    let ctx = TestContext::new();
    let empty = ctx.root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let refused: &[&[&str]] = &[
        &["status"],
        &["fetch"],
        &["update"],
        &["lock"],
        &["build"],
        &["install"],
        &["clean"],
        &["distclean"],
        &["tarball"],
        &["gate", "blktap"],
        &["bisect", "blktap", "--test", "vhd"],
        &["ci", "gitlab", "blktap"],
        &["osstest", "flight", "blktap"],
        &["config-mk", "export"],
    ];
    for args in refused {
        let run = ctx.sultana_with(&empty, "022", &[], args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("could not find sultana.toml in") && run.stderr.contains("sultana init"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(
            contents(&empty),
            Vec::<std::path::PathBuf>::new(),
            "{args:?} created files"
        );
        assert_eq!(
            contents(&ctx.cache),
            Vec::<std::path::PathBuf>::new(),
            "{args:?} wrote to the cache"
        );
    }
    // These work anywhere.
    ctx.sultana_with(&empty, "022", &[], &["detect"]).success();
    ctx.sultana_with(&empty, "022", &[], &["deps"]).success();
    ctx.sultana_with(&empty, "022", &[], &["completions", "bash"]).success();
    ctx.sultana_with(&empty, "022", &[], &["init"]).success();
    assert!(empty.join("sultana.toml").is_file());
    // Below a workspace, its manifest is found.
    let below = empty.join("a/b");
    std::fs::create_dir_all(&below).unwrap();
    ctx.sultana_with(&below, "022", &[], &["status", "--json"]).success();
}

/// A local override says where to fetch from; the lock keeps the manifest's
/// url, and the checkout stays clean and current once the override is gone.
#[test]
fn a_local_override_url_never_reaches_the_lock() {
    let ctx = TestContext::new();
    let up = ctx.upstream("thing");
    up.commit(&[("a", "1")], "one");
    ctx.write("sultana.toml", &manifest(&[("thing", &up.url(), "master")]));
    // A mirror of it, as a developer keeps on a local disk.
    let mirror = ctx.root.join("mirror.git");
    let cloned = std::process::Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&up.path)
        .arg(&mirror)
        .status()
        .unwrap();
    assert!(cloned.success());
    let mirror_url = format!("file://{}", mirror.display());
    ctx.write(
        "sultana.local.toml",
        &format!("[components.thing]\nurl = \"{mirror_url}\"\n"),
    );
    let run = ctx.sultana(&["fetch"]).success();
    assert!(
        run.stderr.contains(&format!(
            "Fetching thing from {mirror_url} (local override of {})",
            up.url()
        )),
        "fetched from the override, and says so: {}",
        run.stderr
    );
    let lock = ctx.read("sultana.lock");
    assert!(lock.contains(&format!("url = \"{}\"", up.url())), "{lock}");
    assert!(!lock.contains("mirror.git"), "{lock}");
    let status = ctx.sultana(&["status", "--json"]).success().json();
    let row = &status["components"][0];
    assert_eq!(row["fetch_from"], mirror_url.as_str(), "{row}");
    assert_eq!(row["state"], "clean", "{row}");

    // The override gone: clean, current, and update works.
    std::fs::remove_file(ctx.work.join("sultana.local.toml")).unwrap();
    let status = ctx.sultana(&["status", "--json"]).success().json();
    let row = &status["components"][0];
    assert_eq!(row["state"], "clean", "{row}");
    assert_eq!(row["lock_stale"], false, "{row}");
    assert!(row["fetch_from"].is_null(), "{row}");
    ctx.sultana(&["update", "thing"]).success();
    // The same through --set: the lock does not move to it either.
    ctx.sultana(&["--set", &format!("thing.url={mirror_url}"), "lock"])
        .success();
    assert!(!ctx.read("sultana.lock").contains("mirror.git"));
}

/// A workspace of one component, `thing`, whose recipe builds with
/// commands (no toolchain needed).
fn one_command_component() -> (TestContext, Upstream) {
    let ctx = TestContext::new();
    let up = ctx.upstream("thing");
    ctx.write("sultana.toml", &manifest(&[("thing", &up.url(), "master")]));
    ctx.write(
        "recipes/thing.toml",
        "kind = \"command\"\ncommands = [[\"true\"]]\ninstall_commands = [[\"mkdir\", \"-p\", \"{destdir}{prefix}\"]]\n",
    );
    (ctx, up)
}

/// `-q`: a successful run prints no status lines; a table asked for still shows.
#[test]
fn quiet_silences_status_lines_not_what_was_asked_for() {
    let (ctx, _up) = one_command_component();
    for args in [
        &["-q", "lock"][..],
        &["-q", "fetch"],
        &["-q", "build"],
        &["-q", "update"],
        &["-q", "build"],
    ] {
        let run = ctx.sultana(args).success();
        assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""), "{args:?}");
    }
    // What a command is asked to show still shows, as with cargo's -q:
    // the status table on stdout, nothing on stderr.
    let run = ctx.sultana(&["-q", "status"]).success();
    assert!(run.stdout.starts_with("COMPONENT"), "{}", run.stdout);
    assert_eq!(run.stderr, "");
    let run = ctx.sultana(&["-q", "cache"]).success();
    assert!(!run.stdout.is_empty());
    assert_eq!(run.stderr, "");
    let fresh = ctx.root.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let run = ctx.sultana_with(&fresh, "022", &[], &["-q", "init"]).success();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""), "init");
    // Without -q the table is there.
    assert!(ctx.sultana(&["status"]).success().stdout.contains("COMPONENT"));
}

/// `--json` writes exactly one document, on failure too: the command, what
/// it got done, and the error with its exit code.
#[test]
fn one_json_document_also_on_failure() {
    let (ctx, up) = one_command_component();
    ctx.sultana(&["fetch"]).success();
    let first = ctx.lock_commit("thing");
    let second = up.commit(&[("README", "changed upstream")], "two").to_string();
    ctx.write("sultana.lock", &ctx.read("sultana.lock").replace(&first, &second));
    ctx.write("thing/README", "my own work");
    // Where the pins must hold, a tree left with local work is an error.
    let run = ctx.sultana(&["--locked", "build", "--json"]).code(2);
    let documents: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&run.stdout)
        .into_iter::<serde_json::Value>()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(documents.len(), 1, "{}", run.stdout);
    let doc = &documents[0];
    assert_eq!(doc["command"], "build", "{doc}");
    assert_eq!(doc["error"]["exit_code"], 2, "{doc}");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("local work"),
        "{doc}"
    );
    assert_eq!(
        doc["components"][0]["action"], "left-dirty",
        "the partial outcome: {doc}"
    );
    // Success: one document too, with its command.
    let run = ctx.sultana(&["status", "--json"]).success();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["command"], "status");
    assert!(doc.get("error").is_none());
}

/// One component that cannot be fetched does not cost the others: they are
/// cloned, checked out and locked, and every failure is named at the end.
#[test]
fn a_failing_component_does_not_stop_the_others() {
    let ctx = TestContext::new();
    let a = ctx.upstream("a");
    let c = ctx.upstream("c");
    let gone = format!("file://{}", ctx.root.join("no-such-repo").display());
    ctx.write(
        "sultana.toml",
        &manifest(&[
            ("a", &a.url(), "master"),
            ("b", &gone, "master"),
            ("c", &c.url(), "master"),
        ]),
    );
    let run = ctx.sultana(&["fetch", "--json"]).code(2);
    assert!(run.stderr.contains("`b`"), "{}", run.stderr);
    assert!(ctx.work.join("a/README").is_file() && ctx.work.join("c/README").is_file());
    let lock = ctx.read("sultana.lock");
    assert!(lock.contains("name = \"a\"") && lock.contains("name = \"c\""), "{lock}");
    assert!(!lock.contains("name = \"b\""), "{lock}");
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["failed"][0]["name"], "b", "{doc}");
    assert_eq!(doc["components"].as_array().unwrap().len(), 2, "{doc}");

    // Two failing: both named.
    let gone2 = format!("file://{}", ctx.root.join("no-such-repo-2").display());
    ctx.write(
        "sultana.toml",
        &manifest(&[
            ("a", &a.url(), "master"),
            ("b", &gone, "master"),
            ("c", &gone2, "master"),
        ]),
    );
    let run = ctx.sultana(&["update", "--force"]).code(2);
    assert!(
        run.stderr.contains("2 component(s) could not be brought to their pins"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("\n  b: ") && run.stderr.contains("\n  c: "),
        "{}",
        run.stderr
    );

    // Offline with nothing in the cache: it says so.
    let fresh = ctx.root.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("sultana.toml"), manifest(&[("b", &gone, "master")])).unwrap();
    let run = ctx.sultana_with(
        &fresh,
        "022",
        &[("XDG_CACHE_HOME", ctx.root.join("empty-cache").to_str().unwrap())],
        &["--offline", "fetch"],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("run without --offline"), "{}", run.stderr);
    assert!(!run.stderr.contains("is not a branch, tag or commit"), "{}", run.stderr);
}

/// `clean` and `distclean` report only what they removed: no "Cleaned" for
/// a tree never built, and a word when there is nothing at all.
#[test]
fn distclean_names_only_what_it_removed() {
    let (ctx, _up) = one_command_component();
    ctx.sultana(&["fetch"]).success();
    ctx.sultana(&["distclean"])
        .success()
        .stderr_has("Removed thing")
        .stderr_lacks("Cleaned");
    ctx.sultana(&["distclean"]).success().stderr_has("nothing to remove");
    ctx.sultana(&["clean"]).success().stderr_has("nothing to remove");
    ctx.sultana(&["build"]).success();
    let json = ctx.sultana(&["distclean", "--json"]).success().json();
    assert_eq!(
        json["components"],
        serde_json::json!(["thing"]),
        "once, though cleaned and removed"
    );
    assert_eq!(json["command"], "distclean");
    // What a component dropped from the manifest left: removed, and said.
    ctx.write("dist/old/usr/f", "x");
    ctx.sultana(&["distclean"])
        .success()
        .stderr_has("Removed dist/")
        .stderr_lacks("nothing to remove");
    assert!(!ctx.work.join("dist").exists());
    // Release artefacts stay: a signature cannot be made again without its key.
    ctx.sultana(&["build"]).success();
    for file in [
        "root-1.0.tar.gz",
        "root-1.0.tar.gz.asc",
        "root-1.0.spdx.json",
        "SHA256SUMS",
    ] {
        ctx.write(&format!("dist/{file}"), "release\n");
    }
    ctx.sultana(&["distclean"])
        .success()
        .stderr_has("Kept 4 release file(s) in dist/");
    assert!(!ctx.work.join("dist/thing").exists(), "the staged build went");
    assert_eq!(ctx.read("dist/root-1.0.tar.gz.asc"), "release\n");
    assert_eq!(ctx.read("dist/SHA256SUMS"), "release\n");
}

/// `cache prune --git` removes only stores nobody uses: no checkout borrows
/// their objects and no run opened them for 30 days. A store made before
/// sultana recorded its users is kept (who borrows from it is unknown).
#[test]
fn cache_prune_removes_only_git_stores_no_checkout_borrows_from() {
    let ctx = TestContext::new();
    let kept = ctx.upstream("kept");
    let gone = ctx.upstream("gone");
    let unknown = ctx.upstream("unknown");
    ctx.write("sultana.toml", &manifest(&[("kept", &kept.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    // Two other workspaces, removed afterwards: their checkouts are gone.
    for (name, up) in [("gone", &gone), ("unknown", &unknown)] {
        let other = ctx.dir(&format!("ws-{name}"));
        std::fs::write(other.join("sultana.toml"), manifest(&[(name, &up.url(), "master")])).unwrap();
        ctx.sultana_in(&other, &["fetch"]).success();
        std::fs::remove_dir_all(&other).unwrap();
    }
    let store_of = |up: &Upstream| {
        let name = up.path.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::read_dir(ctx.cache.join("sultana/git"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.is_dir()
                    && p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .strip_prefix(&format!("{name}-"))
                        .is_some_and(|hex| hex.len() == 16)
            })
            .unwrap()
    };
    let (kept_store, gone_store, unknown_store) = (store_of(&kept), store_of(&gone), store_of(&unknown));
    // As made by an older sultana: no record of its users. A checkout made
    // from it now does not start one (the older checkouts are in none).
    std::fs::remove_dir_all(unknown_store.join("sultana-users")).unwrap();
    let later = ctx.dir("ws-later");
    std::fs::write(
        later.join("sultana.toml"),
        manifest(&[("unknown", &unknown.url(), "master")]),
    )
    .unwrap();
    ctx.sultana_in(&later, &["fetch"]).success();
    std::fs::remove_dir_all(&later).unwrap();
    assert!(!unknown_store.join("sultana-users").exists());
    // Saved work: a checkout removed by `distclean --force` keeps its
    // local changes in its store, which no prune takes.
    let saved = ctx.upstream("saved");
    let keep = ctx.dir("ws-saved");
    std::fs::write(
        keep.join("sultana.toml"),
        manifest(&[("saved", &saved.url(), "master")]),
    )
    .unwrap();
    ctx.sultana_in(&keep, &["fetch"]).success();
    std::fs::write(keep.join("saved/work.txt"), "mine\n").unwrap();
    ctx.sultana_in(&keep, &["distclean", "--force"]).success();
    let saved_store = store_of(&saved);

    // Opened today: every store stays.
    ctx.sultana(&["cache", "prune", "--git"])
        .success()
        .stderr_has("0 git store(s)")
        .stderr_has("1 older store(s) kept");
    assert!(gone_store.is_dir());

    // Forty days later.
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 24 * 3600);
    for store in [&kept_store, &gone_store, &unknown_store, &saved_store] {
        let stamp = store.join("sultana-used");
        std::fs::write(&stamp, b"").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&stamp)
            .unwrap()
            .set_modified(past)
            .unwrap();
    }
    let run = ctx.sultana(&["--json", "cache", "prune", "--git"]).success();
    let removed = &run.json()["git"]["removed"];
    assert_eq!(removed.as_array().unwrap().len(), 1, "{removed}");
    assert_eq!(removed[0]["url"], serde_json::json!(gone.url()));
    assert!(!gone_store.exists());
    assert!(kept_store.is_dir(), "the workspace's checkout borrows from it");
    assert!(unknown_store.is_dir(), "its users are unknown");
    assert!(saved_store.is_dir(), "it holds saved work");
    // The checkout that borrows from the kept store still reads everything.
    git_stdout(
        &ctx.work.join("kept"),
        std::path::Path::new("/nonexistent"),
        &["fsck", "--no-dangling"],
    );
    // A removed store is fetched again when wanted.
    let again = ctx.dir("ws-again");
    std::fs::write(again.join("sultana.toml"), manifest(&[("gone", &gone.url(), "master")])).unwrap();
    ctx.sultana_in(&again, &["fetch"]).success();
    assert_eq!(std::fs::read_to_string(again.join("gone/README")).unwrap(), "gone");

    // A symlink planted among the stores is never followed.
    let outside = ctx.dir("outside-0123456789abcdef");
    std::fs::write(outside.join("keep"), "x").unwrap();
    std::os::unix::fs::symlink(&outside, ctx.cache.join("sultana/git/evil-0123456789abcdef")).unwrap();
    ctx.sultana(&["cache", "prune", "--git", "--ccache"])
        .success()
        .stderr_has("the compiler cache");
    assert!(outside.join("keep").exists());
}
