//! What sultana guarantees about a developer's work: a killed move, ignored
//! files, submodules and the index never lose it.

use std::os::unix::ffi::OsStrExt;
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

    // fetch leaves it, says why and where the earlier backup is; only
    // where the pins must hold (--locked) is that an error.
    ctx.sultana(&["--locked", "fetch"]).code(2).stderr_lacks("Repaired");
    ctx.sultana(&["fetch"])
        .success()
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

    let pinned = ctx.lock_commit("up");
    ctx.sultana(&["update"]).code(2).stderr_has("notes.txt");
    assert_eq!(ctx.read("up/notes.txt"), "my notes\n");
    assert_eq!(ctx.lock_commit("up"), pinned, "a refused update leaves the lock");
    // The lock moved on without the checkout: fetch does not follow it.
    ctx.sultana(&["lock"]).success();
    ctx.sultana(&["fetch"])
        .success()
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

/// A workspace whose component `top` has a submodule at ext/sub, fetched:
/// the upstream of `top`, and the submodule's checkout.
fn fetched_with_a_submodule(ctx: &TestContext) -> (Upstream, std::path::PathBuf) {
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
    (top, ctx.work.join("top/ext/sub"))
}

/// The tree's pin stays, but its submodule holds local work away from the
/// commit the tree records: `update` would move the submodule, so it is
/// refused before the lock changes, as for a dirty tree.
#[test]
fn a_dirty_submodule_away_from_its_commit_is_refused_though_the_tree_stays() {
    let ctx = TestContext::new();
    let (top, sub_path) = fetched_with_a_submodule(&ctx);
    let other = ctx.upstream("other");
    let text = ctx.read("sultana.toml");
    ctx.write(
        "sultana.toml",
        &format!(
            "{text}[components.other]\nurl = \"{}\"\nrevision = \"master\"\n",
            other.url()
        ),
    );
    ctx.sultana(&["fetch"]).success();
    sh(
        &ctx,
        &format!(
            "cd {} && echo committed > mine.c && git add mine.c && git commit -qm mine && echo edit >> README",
            sub_path.display()
        ),
    );
    other.commit(&[("a", "new")], "moves");
    let pinned = ctx.lock_commit("other");
    ctx.sultana(&["update"])
        .code(2)
        .stderr_has("submodule ext/sub has local work and is not at the commit");
    assert_eq!(ctx.lock_commit("other"), pinned, "the lock is untouched");
    assert_eq!(std::fs::read_to_string(sub_path.join("mine.c")).unwrap(), "committed\n");
    let _ = top;
    // Only the component that moves: fine.
    ctx.sultana(&["update", "other"]).success();
}

#[test]
fn a_dropped_submodule_keeps_its_commits_and_files() {
    let ctx = TestContext::new();
    let (top, sub_path) = fetched_with_a_submodule(&ctx);
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
    let (_top, sub_path) = fetched_with_a_submodule(&ctx);
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

fn git_env(ctx: &TestContext, script: &str) {
    sh(ctx, script);
}

#[test]
fn a_mirror_never_names_commits_for_another_workspace() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let good = up.commit(&[("a.c", "good\n")], "good");
    up.tag("v1", false);
    // A hostile mirror: the same history, plus its own v1.
    let mirror = ctx.upstreams.join("mirror");
    git_env(
        &ctx,
        &format!(
            "git clone -q {} {m} && cd {m} && echo evil > a.c && git commit -qam evil && git tag -f v1 >/dev/null",
            up.path.display(),
            m = mirror.display()
        ),
    );
    let with_mirror = format!(
        "[components.up]\nurl = \"{}\"\nmirrors = [\"file://{}\"]\nrevision = \"v1\"\n",
        up.url(),
        mirror.display()
    );
    let first = ctx.dir("trusting");
    std::fs::write(first.join("sultana.toml"), &with_mirror).unwrap();
    ctx.sultana_in(&first, &["fetch"]).success();
    assert_ne!(
        lock_commit_in(&first, "up"),
        good.to_string(),
        "it trusts its own mirror"
    );

    // Another workspace on the same cache, without the mirror.
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "v1")]));
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.lock_commit("up"), good.to_string());
    assert_eq!(ctx.read("up/a.c"), "good\n");
    ctx.sultana(&["lock", "--check"]).success();
    // Offline, from the cache alone, still the url's own tag.
    std::fs::remove_file(ctx.work.join("sultana.lock")).unwrap();
    std::fs::remove_dir_all(ctx.work.join("up")).unwrap();
    ctx.sultana(&["--offline", "fetch"]).success();
    assert_eq!(ctx.lock_commit("up"), good.to_string());
}

#[test]
fn a_lock_that_contradicts_its_revision_is_caught() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let tagged = up.commit(&[("a.c", "tagged\n")], "tagged");
    up.tag("v1", true);
    up.switch_new_branch("other");
    let elsewhere = up.commit(&[("a.c", "other branch\n")], "elsewhere");
    up.switch("master");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "v1")]));
    ctx.sultana(&["fetch"]).success();
    ctx.sultana(&["lock", "--check"]).success();
    let lock = ctx
        .read("sultana.lock")
        .replace(&tagged.to_string(), &elsewhere.to_string());
    ctx.write("sultana.lock", &lock);
    ctx.sultana(&["lock", "--check"])
        .code(1)
        .stderr_has("up: sultana.lock pins")
        .stderr_has("tag `v1`");
    ctx.sultana(&["fetch"]).code(1).stderr_has("tag `v1`");
    ctx.sultana(&["--locked", "fetch"]).code(1);
    ctx.sultana(&["status"]).success().stdout_has("WRONG PIN");

    // A branch pin must be in the branch's history.
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["lock"]).success();
    ctx.sultana(&["lock", "--check"]).success();
    let lock = ctx.read("sultana.lock");
    let master = ctx.lock_commit("up");
    ctx.write("sultana.lock", &lock.replace(&master, &elsewhere.to_string()));
    ctx.sultana(&["lock", "--check"])
        .code(1)
        .stderr_has("not in the branch's history");
}

#[test]
fn credentials_in_a_url_are_never_written_or_printed() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.tag("v1", false);
    // The url carries a token; the mirror is what answers.
    let url = "https://builder:s3cr3t-t0ken@127.0.0.1:9/up.git";
    ctx.write(
        "sultana.toml",
        &format!(
            "[tarball]\nroot = \"up\"\nname = \"up-{{desc}}\"\n\n[components.up]\nurl = \"{url}\"\nmirrors = [\"{}\"]\nrevision = \"v1\"\n",
            up.url()
        ),
    );
    let mut seen = String::new();
    for args in [
        &["fetch"][..],
        &["status"],
        &["status", "--json"],
        &["-v", "update"],
        &["tarball", "--out", "dist-out"],
        &["config-mk", "export"],
    ] {
        let run = ctx.sultana(args);
        seen.push_str(&run.stdout);
        seen.push_str(&run.stderr);
    }
    // Without the mirror the url itself is tried: git's command line and its
    // error name it, in the log and in the message.
    let with_mirror = ctx.read("sultana.toml");
    ctx.write(
        "sultana.toml",
        &with_mirror.replace(&format!("mirrors = [\"{}\"]\n", up.url()), ""),
    );
    let run = ctx.sultana(&["update"]).code(2).stderr_has("127.0.0.1:9");
    seen.push_str(&run.stderr);
    let run = ctx.sultana(&["--json", "update"]).code(2);
    seen.push_str(&run.stdout);
    seen.push_str(&ctx.read("sultana.lock"));
    for file in files_below(&ctx.work.join(".sultana")) {
        seen.push_str(&std::fs::read_to_string(ctx.work.join(".sultana").join(&file)).unwrap_or_default());
    }
    let tarball = std::fs::read_dir(ctx.work.join("dist-out"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".tar.gz"))
        .expect("a tarball")
        .path();
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&tarball).unwrap()),
        &mut text,
    )
    .unwrap();
    seen.push_str(&String::from_utf8_lossy(&text));
    assert!(!seen.contains("s3cr3t"), "the token leaked:\n{seen}");
    assert!(seen.contains("https://127.0.0.1:9/up.git"), "{seen}");
}

#[test]
fn config_mk_export_refuses_values_the_shell_would_run() {
    let ctx = TestContext::new();
    let up = ctx.upstream("blktap");
    ctx.write(
        "sultana.toml",
        &format!(
            "[components.blktap]\nurl = \"{}\"\nrevision = \"x;touch${{IFS}}pwned;#\"\n",
            up.url()
        ),
    );
    ctx.sultana(&["config-mk", "export"])
        .code(2)
        .stderr_has("BLKTAP_UPSTREAM_REVISION")
        .stderr_has("';'");
}

#[test]
fn symlink_chains_out_of_the_tree_are_refused_in_tarballs() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit_symlink_chain_out();
    ctx.write(
        "sultana.toml",
        &format!(
            "[tarball]\nroot = \"up\"\nname = \"up-{{desc}}\"\n\n[components.up]\nurl = \"{}\"\nrevision = \"master\"\n",
            up.url()
        ),
    );
    ctx.sultana(&["tarball"])
        .code(2)
        .stderr_has("`esc`")
        .stderr_has("outside the tree");
    assert!(!ctx.work.join("dist").exists() || files_below(&ctx.work.join("dist")).is_empty());

    // A forged tarball with the same chain is refused by verify-tarball.
    let forged = ctx.root.join("forged.tar.gz");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&forged).unwrap(),
        flate2::Compression::default(),
    ));
    for (path, target) in [("up-1/self", "."), ("up-1/esc", "self/self/../..")] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder.append_link(&mut header, path, target).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
    ctx.sultana(&["verify-tarball", forged.to_str().unwrap()])
        .code(2)
        .stderr_has("outside the tree");
}

#[test]
fn verify_tarball_reads_embedded_files_in_bounded_memory() {
    let ctx = TestContext::new();
    let forged = ctx.root.join("bomb.tar.gz");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&forged).unwrap(),
        flate2::Compression::best(),
    ));
    let huge = vec![b'#'; 64 << 20];
    let mut header = tar::Header::new_gnu();
    header.set_size(huge.len() as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "x-1/sultana.toml", huge.as_slice())
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap();
    assert!(std::fs::metadata(&forged).unwrap().len() < 1 << 20, "a small file");
    ctx.sultana(&["verify-tarball", forged.to_str().unwrap()])
        .code(2)
        .stderr_has("larger than");
}

#[test]
fn clean_never_runs_an_upstream_clean_in_a_tree_it_did_not_build() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit(
        &[("Makefile", "all:\n\ttrue\nclean:\n\ttouch cleaned-by-make\n")],
        "make",
    );
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.write(
        "recipes/up.toml",
        "kind = \"make\"\nmake = [\"all\"]\ninstall = [\"all\"]\nclean = [\"make\", \"clean\"]\n",
    );
    ctx.sultana(&["fetch"]).success();
    ctx.sultana(&["clean"]).success();
    assert!(!ctx.work.join("up/cleaned-by-make").exists());
}

#[test]
fn planted_symlinks_below_build_and_logs_are_refused() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let outside = ctx.dir("outside");
    std::fs::write(outside.join("precious"), "keep\n").unwrap();
    std::fs::create_dir_all(ctx.work.join("build")).unwrap();
    std::os::unix::fs::symlink(&outside, ctx.work.join("build/up")).unwrap();
    ctx.write("recipes/up.toml", "kind = \"command\"\ncommands = [[\"true\"]]\n");
    for args in [&["clean"][..], &["build"], &["fetch"]] {
        ctx.sultana(args).code(2).stderr_has("outside the workspace");
    }
    assert_eq!(files_below(&outside), ["precious"]);
    std::fs::remove_file(ctx.work.join("build/up")).unwrap();
    let _ = std::fs::remove_dir_all(ctx.work.join(".sultana/logs"));
    std::os::unix::fs::symlink(&outside, ctx.work.join(".sultana/logs")).unwrap();
    ctx.sultana(&["build"]).code(2).stderr_has("outside the workspace");
    assert_eq!(files_below(&outside), ["precious"]);
}

#[test]
fn sigterm_stops_every_process_group_sultana_started() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let pidfile = ctx.root.join("child.pid");
    up.commit(
        &[(
            "Makefile",
            &format!("all:\n\tsh -c 'echo $$$$ > {}; exec sleep 300'\n", pidfile.display()),
        )],
        "slow",
    );
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.write("recipes/up.toml", "kind = \"make\"\nmake = [\"all\"]\n");
    ctx.sultana(&["fetch"]).success();
    let mut child = ctx.command(&ctx.work, &["build"]).spawn().unwrap();
    let started = std::time::Instant::now();
    while !pidfile.exists() && started.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    // SAFETY: signals to processes this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = || unsafe { libc::kill(pid, 0) } == 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!alive(), "the build's sleep {pid} outlived sultana");
}

#[test]
fn work_after_a_killed_move_in_ignored_files_modes_and_odd_names_is_never_repaired_over() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit(
        &[
            (".gitignore", "gen.txt\nbuild/\n"),
            ("a.txt", "one\n"),
            ("s.sh", "echo\n"),
        ],
        "one",
    );
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    // The new commit tracks gen.txt and puts a file where build/ was.
    up.commit(
        &[("gen.txt", "upstream\n"), ("build", "a file now\n"), ("a.txt", "two\n")],
        "two",
    );
    crash(&ctx, "move-after-marker", &["update"]);
    ctx.write("up/gen.txt", "MYWORK\n");
    ctx.write("up/build/out.o", "OBJ\n");
    let script = ctx.work.join("up/s.sh");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let odd = ctx.work.join("up").join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    std::fs::write(&odd, "odd name\n").unwrap();

    ctx.sultana(&["update"]).code(2);
    ctx.sultana(&["fetch"]).success().stderr_lacks("Repaired");
    assert_eq!(ctx.read("up/gen.txt"), "MYWORK\n");
    assert_eq!(ctx.read("up/build/out.o"), "OBJ\n");
    assert!(odd.exists());

    ctx.sultana(&["update", "--force"]).success();
    let repo = Repository::open(ctx.work.join("up")).unwrap();
    let saved = backups(&repo);
    let last = saved.last().expect("a backup");
    assert_eq!(blob_at(&repo, last, "gen.txt").as_deref(), Some("MYWORK\n"));
    assert_eq!(blob_at(&repo, last, "build/out.o").as_deref(), Some("OBJ\n"));
    let tree = repo
        .revparse_single(last)
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .tree()
        .unwrap();
    assert!(tree
        .get_path(Path::new(std::ffi::OsStr::from_bytes(b"caf\xe9")))
        .is_ok());
    assert_eq!(tree.get_path(Path::new("s.sh")).unwrap().filemode(), 0o100755);
}

#[test]
fn a_repository_nested_after_a_killed_move_is_never_removed() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit(&[("a.txt", "one\n")], "one");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    up.commit(&[("a.txt", "two\n")], "two");
    crash(&ctx, "move-after-marker", &["update"]);
    let nested = ctx.work.join("up/mine");
    sh(
        &ctx,
        &format!(
            "git init -q {n} && cd {n} && echo mine > mine.c && git add mine.c && git commit -qm mine && echo draft > draft.txt",
            n = nested.display()
        ),
    );
    ctx.sultana(&["fetch"]).success().stderr_has("local work");
    assert_eq!(std::fs::read_to_string(nested.join("draft.txt")).unwrap(), "draft\n");
    let run = ctx.sultana(&["update", "--force"]).success();
    assert_eq!(ctx.read("up/a.txt"), "two\n");
    if !nested.join("draft.txt").exists() {
        sh(&ctx, &restore_command(&run.stderr, &nested));
    }
    assert_eq!(std::fs::read_to_string(nested.join("draft.txt")).unwrap(), "draft\n");
    assert_eq!(std::fs::read_to_string(nested.join("mine.c")).unwrap(), "mine\n");
}

#[test]
fn ignored_files_where_the_move_needs_a_folder_or_a_file_are_local_work() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit(&[(".gitignore", "*.log\nnotes\n"), ("gen/keep.c", "tracked\n")], "one");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    // An ignored file where the new commit puts a folder, and ignored files
    // in a tracked folder that the new commit turns into a file.
    ctx.write("up/notes", "my notes\n");
    ctx.write("up/gen/run.log", "a log I want\n");
    let readme = up.blob(b"up");
    let inside = up.blob(b"upstream\n");
    let notes_dir = up.raw_tree(&[(0o100644, b"todo", inside)]);
    let ignore = up.blob(b"*.log\nnotes\n");
    let gen_file = up.blob(b"gen is a file now\n");
    up.commit_tree(
        up.raw_tree(&[
            (0o100644, b".gitignore", ignore),
            (0o100644, b"README", readme),
            (0o100644, b"gen", gen_file),
            (0o40000, b"notes", notes_dir),
        ]),
        "folders and files swap",
    );
    ctx.sultana(&["update"])
        .code(2)
        .stderr_has("notes")
        .stderr_has("gen/run.log");
    assert_eq!(ctx.read("up/notes"), "my notes\n");
    ctx.sultana(&["update", "--force"]).success();
    let checkout = Repository::open(ctx.work.join("up")).unwrap();
    let saved = backups(&checkout);
    assert_eq!(blob_at(&checkout, &saved[0], "notes").as_deref(), Some("my notes\n"));
    assert_eq!(
        blob_at(&checkout, &saved[0], "gen/run.log").as_deref(),
        Some("a log I want\n")
    );
}

#[test]
fn staged_content_that_differs_from_the_file_is_kept_too() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit(&[("b.txt", "one\n")], "one");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    ctx.write("up/b.txt", "STAGED\n");
    let checkout = Repository::open(ctx.work.join("up")).unwrap();
    let mut index = checkout.index().unwrap();
    index.add_path(Path::new("b.txt")).unwrap();
    index.write().unwrap();
    ctx.write("up/b.txt", "WORKTREE\n");
    up.commit(&[("b.txt", "two\n")], "two");
    ctx.sultana(&["update", "--force"]).success();
    let saved = backups(&checkout);
    assert_eq!(blob_at(&checkout, &saved[0], "b.txt").as_deref(), Some("WORKTREE\n"));
    assert_eq!(
        blob_at(&checkout, &format!("{}^2", saved[0]), "b.txt").as_deref(),
        Some("STAGED\n")
    );
}

#[test]
fn a_restored_backup_is_local_work_and_is_not_moved() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    ctx.write("up/mine.txt", "my work\n");
    up.commit(&[("README", "two\n")], "two");
    let run = ctx.sultana(&["update", "--force"]).success().stderr_has("Saved");
    let moved_to = ctx.head("up");
    // The printed command brings the work back (its commit lives in the
    // cache store too, but it is no upstream commit).
    sh(&ctx, &restore_command(&run.stderr, &ctx.work.join("up")));
    assert_eq!(ctx.read("up/mine.txt"), "my work\n");
    let restored = ctx.head("up");
    assert_ne!(restored, moved_to);
    up.commit(&[("README", "three\n")], "three");
    ctx.sultana(&["lock"]).success();
    ctx.sultana(&["fetch"])
        .success()
        .stderr_has("commits not in the upstream");
    assert_eq!(ctx.head("up"), restored, "fetch left the restored work where it is");
    assert_eq!(ctx.read("up/mine.txt"), "my work\n");
}
