//! What sultana guarantees about a developer's work: a killed move, ignored
//! files, submodules and the index never lose it.

use std::path::Path;

use git2::Repository;

use crate::faults::crash;
use crate::support::*;

/// The content of `path` in the commit a ref names, in the repository at `repo`.
fn blob_at(repo: &Repository, reference: &str, path: &str) -> Option<String> {
    let commit = repo.revparse_single(reference).ok()?.peel_to_commit().ok()?;
    let entry = commit.tree().ok()?.get_path(Path::new(path)).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

fn backups(repo: &Repository) -> Vec<String> {
    let mut names: Vec<String> = repo
        .references_glob("refs/sultana/backup/*")
        .unwrap()
        .map(|r| r.unwrap().name().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn sh(ctx: &TestContext, script: &str) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", &ctx.home)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
}

/// The restore command printed after `Saved` for the checkout at `path`.
fn restore_command(stderr: &str, path: &Path) -> String {
    let needle = format!("git init -q {}", path.display());
    stderr
        .lines()
        .filter_map(|l| l.split_once("restore it with: ").map(|(_, c)| c.to_string()))
        .find(|c| c.starts_with(&needle) || c.starts_with(&format!("git -C {} ", path.display())))
        .unwrap_or_else(|| panic!("no restore command for {}:\n{stderr}", path.display()))
}

#[test]
fn a_move_killed_half_way_never_repairs_over_work_done_since() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let files: Vec<(String, String)> = (0..40).map(|i| (format!("f{i:02}.c"), format!("one {i}\n"))).collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    up.commit(&refs, "one");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let old = ctx.head("up");

    // Work that `update --force` saves, then a kill half way through the move.
    ctx.write("up/f00.c", "saved before the move\n");
    let files: Vec<(String, String)> = (0..40).map(|i| (format!("f{i:02}.c"), format!("two {i}\n"))).collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let new = up.commit(&refs, "two");
    crash(&ctx, "move-file#20", &["update", "--force"]);
    let repo = Repository::open(ctx.work.join("up")).unwrap();
    let earlier = backups(&repo);
    assert_eq!(earlier.len(), 1, "the backup was made before the move");
    assert_eq!(ctx.head("up"), old, "killed before HEAD moved");

    // The developer goes on working in the half-moved tree.
    ctx.write("up/f39.c", "edited after the kill\n");
    ctx.write("up/f01.c", "edited after the kill too\n");
    ctx.write("up/new-after-kill.txt", "new work\n");

    // fetch leaves it, says why and where the earlier backup is.
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("interrupted run left half done")
        .stderr_has(&earlier[0])
        .stderr_lacks("Repaired");
    assert_eq!(ctx.read("up/f39.c"), "edited after the kill\n");
    assert_eq!(ctx.read("up/new-after-kill.txt"), "new work\n");
    // update without --force refuses it too.
    ctx.sultana(&["update"]).code(2).stderr_has("half done");
    assert_eq!(ctx.read("up/f01.c"), "edited after the kill too\n");
    // status says so, and names the backup.
    ctx.sultana(&["status"])
        .success()
        .stdout_has("half moved")
        .stdout_has(&earlier[0]);

    // update --force saves the new work, then finishes the move.
    let run = ctx.sultana(&["update", "--force"]).success().stderr_has("Saved");
    assert_eq!(ctx.head("up"), new);
    assert_eq!(ctx.read("up/f39.c"), "two 39\n");
    assert!(!ctx.work.join("up/new-after-kill.txt").exists());
    let now = backups(&repo);
    assert_eq!(now.len(), 2, "{now:?}\n{}", run.stderr);
    let latest = &now[1];
    assert_eq!(
        blob_at(&repo, latest, "f39.c").as_deref(),
        Some("edited after the kill\n")
    );
    assert_eq!(
        blob_at(&repo, latest, "f01.c").as_deref(),
        Some("edited after the kill too\n")
    );
    assert_eq!(
        blob_at(&repo, latest, "new-after-kill.txt").as_deref(),
        Some("new work\n")
    );
    assert_eq!(
        blob_at(&repo, &earlier[0], "f00.c").as_deref(),
        Some("saved before the move\n")
    );
    let json = ctx.sultana(&["status", "--json"]).success().json();
    assert_eq!(json["components"][0]["state"], "clean", "{json}");
    assert_eq!(json["components"][0]["backups"].as_array().unwrap().len(), 2, "{json}");
}

#[test]
fn a_move_killed_half_way_with_no_work_since_is_finished() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let files: Vec<(String, String)> = (0..30).map(|i| (format!("f{i:02}.c"), format!("one {i}\n"))).collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    up.commit(&refs, "one");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let files: Vec<(String, String)> = (0..30).map(|i| (format!("f{i:02}.c"), format!("two {i}\n"))).collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let new = up.commit(&refs, "two");
    crash(&ctx, "move-file#12", &["update"]);
    // Build outputs the upstream ignores are nobody's edits to the move.
    ctx.sultana(&["update"]).success().stderr_has("Repaired");
    assert_eq!(ctx.head("up"), new);
    assert_eq!(ctx.read("up/f29.c"), "two 29\n");
    let json = ctx.sultana(&["status", "--json"]).success().json();
    assert_eq!(json["components"][0]["state"], "clean", "{json}");
}

#[test]
fn ignored_files_the_new_commit_tracks_are_local_work() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit(&[(".gitignore", "notes.txt\nbuild/\n")], "ignore notes");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    ctx.write("up/notes.txt", "my notes\n");
    ctx.write("up/build/out.o", "a build output\n");
    // The upstream starts tracking notes.txt, and a file where build/ was.
    up.commit(&[("notes.txt", "upstream notes\n")], "track notes");

    ctx.sultana(&["update"]).code(2).stderr_has("notes.txt");
    assert_eq!(ctx.read("up/notes.txt"), "my notes\n");
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("ignored file(s) the new commit tracks");
    assert_eq!(ctx.read("up/notes.txt"), "my notes\n", "fetch never overwrites it");

    let run = ctx.sultana(&["update", "--force"]).success().stderr_has("Saved");
    assert_eq!(ctx.read("up/notes.txt"), "upstream notes\n");
    let repo = Repository::open(ctx.work.join("up")).unwrap();
    let saved = backups(&repo);
    assert_eq!(saved.len(), 1, "{}", run.stderr);
    assert_eq!(blob_at(&repo, &saved[0], "notes.txt").as_deref(), Some("my notes\n"));
    // An ignored file nothing touches stays where it is, unsaved.
    assert_eq!(ctx.read("up/build/out.o"), "a build output\n");

    // A file where an ignored folder is: its files are at risk too.
    up.commit(&[("build", "now a file\n")], "build is a file");
    ctx.sultana(&["update"]).code(2).stderr_has("build/out.o");
    ctx.sultana(&["update", "--force"]).success();
    let saved = backups(&repo);
    assert_eq!(
        blob_at(&repo, &saved[1], "build/out.o").as_deref(),
        Some("a build output\n")
    );
}

#[test]
fn a_dropped_submodule_keeps_its_commits_and_files() {
    let ctx = TestContext::new();
    let sub = ctx.upstream("sub");
    let top = ctx.upstream("top");
    top.add_submodule("sub", "ext/sub", "../sub", sub.head());
    ctx.write(
        "sultana.toml",
        &format!(
            "[components.top]\nurl = \"{}\"\nrevision = \"master\"\nsubmodules = true\n",
            top.url()
        ),
    );
    ctx.sultana(&["fetch"]).success();
    let sub_path = ctx.work.join("top/ext/sub");
    // A local commit, an edit and a new file in the submodule.
    sh(
        &ctx,
        &format!(
            "cd {} && echo committed > mine.c && git add mine.c && git commit -qm mine && echo edit >> README && echo new > untracked.txt",
            sub_path.display()
        ),
    );
    let local_commit = head_of(&sub_path);

    // The upstream drops the submodule.
    let repo = &top.repo;
    let mut index = repo.index().unwrap();
    index.remove_path(Path::new("ext/sub")).unwrap();
    index.remove_path(Path::new(".gitmodules")).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::new("t", "t@t", &git2::Time::new(1_800_000_000, 0)).unwrap();
    let parent = repo.head().unwrap().peel_to_commit().unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "drop sub", &tree, &[&parent])
        .unwrap();

    ctx.sultana(&["update"]).code(2).stderr_has("ext/sub");
    let run = ctx.sultana(&["update", "--force"]).success();
    // The cache store of the submodule keeps the local commit reachable.
    let store = ctx
        .cache_entries()
        .into_iter()
        .find(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("sub-"))
        .expect("the submodule's store");
    let store_repo = Repository::open_bare(&store).unwrap();
    let refs = backups(&store_repo);
    assert!(!refs.is_empty(), "{}", run.stderr);
    let saved = store_repo.revparse_single(&refs[0]).unwrap().peel_to_commit().unwrap();
    assert_eq!(saved.parent_id(0).unwrap(), local_commit);

    // The printed restore command brings all of it back.
    let _ = std::fs::remove_dir_all(&sub_path);
    sh(&ctx, &restore_command(&run.stderr, &sub_path));
    assert_eq!(std::fs::read_to_string(sub_path.join("mine.c")).unwrap(), "committed\n");
    assert_eq!(
        std::fs::read_to_string(sub_path.join("untracked.txt")).unwrap(),
        "new\n"
    );
    assert!(std::fs::read_to_string(sub_path.join("README"))
        .unwrap()
        .ends_with("edit\n"));
}

#[test]
fn distclean_force_saves_work_inside_submodules() {
    let ctx = TestContext::new();
    let sub = ctx.upstream("sub");
    let top = ctx.upstream("top");
    top.add_submodule("sub", "ext/sub", "../sub", sub.head());
    ctx.write(
        "sultana.toml",
        &format!(
            "[components.top]\nurl = \"{}\"\nrevision = \"master\"\nsubmodules = true\n",
            top.url()
        ),
    );
    ctx.sultana(&["fetch"]).success();
    let sub_path = ctx.work.join("top/ext/sub");
    ctx.write("top/ext/sub/README", "edited in the submodule\n");
    ctx.write("top/ext/sub/new.c", "new in the submodule\n");
    ctx.sultana(&["distclean"]).code(2).stderr_has("submodule");
    let run = ctx.sultana(&["distclean", "--force"]).success();
    assert!(!ctx.work.join("top").exists());
    sh(&ctx, &restore_command(&run.stderr, &sub_path));
    assert_eq!(
        std::fs::read_to_string(sub_path.join("README")).unwrap(),
        "edited in the submodule\n"
    );
    assert_eq!(
        std::fs::read_to_string(sub_path.join("new.c")).unwrap(),
        "new in the submodule\n"
    );
}

#[test]
fn a_forced_move_leaves_the_index_at_the_new_commit() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit(&[("same.c", "same\n"), ("b.c", "one\n")], "one");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    // `git rm --cached` of a file that both commits have alike.
    let repo = Repository::open(ctx.work.join("up")).unwrap();
    let mut index = repo.index().unwrap();
    index.remove_path(Path::new("same.c")).unwrap();
    index.write().unwrap();
    let new = up.commit(&[("b.c", "two\n")], "two");
    ctx.sultana(&["update", "--force"]).success();
    assert_eq!(ctx.head("up"), new);
    let json = ctx.sultana(&["status", "--json"]).success().json();
    assert_eq!(json["components"][0]["state"], "clean", "{json}");
    ctx.sultana(&["update"]).success();
}
