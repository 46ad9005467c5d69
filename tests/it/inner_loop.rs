//! The inner loop: content fingerprints (touch and commit round trips stay
//! fresh), incremental configure, `run`/`env`/`shell`, the shared build
//! cache and ccache, on the real autotools, make and cargo fixtures.

use std::path::{Path, PathBuf};

use git2::Repository;

use crate::support::*;

fn toolchain_present() {
    require("autoreconf", "the autotools fixture (Debian autoconf, automake)");
    require("make", "every fixture build");
    require("gcc", "every fixture build");
    require("cargo", "the cargo fixture");
}

fn status_of(run: &Run, name: &str) -> String {
    run.json()["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

fn staged(work: &Path, component: &str, path: &str) -> PathBuf {
    work.join("dist").join(component).join("usr/local").join(path)
}

fn logs(work: &Path, component: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(work.join(".sultana/logs/build").join(component))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

fn commit(dir: &Path, path: &'static str, content: &str, message: &str) -> git2::Oid {
    let clock = sultana::fixtures::Clock::default();
    sultana::fixtures::commit(dir, &[(path, content.to_string(), false)], message, &clock).unwrap()
}

/// A new workspace beside the test's own, at the same pins with the same
/// recipes (nothing fetched or built there yet).
fn same_pins(ctx: &TestContext, name: &str) -> PathBuf {
    let dir = ctx.dir(name);
    for file in ["sultana.toml", "sultana.lock"] {
        std::fs::copy(ctx.work.join(file), dir.join(file)).unwrap();
    }
    std::fs::create_dir_all(dir.join("recipes")).unwrap();
    for e in std::fs::read_dir(ctx.work.join("recipes")).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), dir.join("recipes").join(e.file_name())).unwrap();
        }
    }
    dir
}

fn checkout(dir: &Path, commit: git2::Oid) {
    let repo = Repository::open(dir).unwrap();
    let object = repo.find_object(commit, None).unwrap();
    repo.checkout_tree(&object, Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    repo.set_head_detached(commit).unwrap();
}

const FIX_C: &str = "#include \"fix.h\"\nint fix_add(int a, int b) { return a + b; }\n";
const FIX_C_PLUS_10: &str = "#include \"fix.h\"\nint fix_add(int a, int b) { return a + b + 10; }\n";

/// An edit to one source file runs make and the install only (configure's
/// output untouched), and the result has the edit; touching files or
/// moving the checkout to another commit and back leaves everything fresh;
/// a change to configure.ac runs bootstrap and configure again; `-v` says
/// why each component builds.
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs autoreconf, cargo, gcc, make"
)]
fn an_edit_rebuilds_without_configure_and_time_alone_changes_nothing() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    ctx.sultana(&["build", "--no-build-cache"]).success();
    let config_status = ctx.work.join("build/libfix/config.status");
    let configured_at = std::fs::metadata(&config_status).unwrap().modified().unwrap();

    // touch: fresh.
    let fix = ctx.work.join("libfix/fix.c");
    std::fs::File::options()
        .append(true)
        .open(&fix)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let run = ctx.sultana(&["build", "--json", "--no-build-cache"]).success();
    assert_eq!(status_of(&run, "libfix"), "fresh", "{}", run.stderr);

    // An edit: make and install only; the dependent rebuilds against it.
    std::fs::write(&fix, FIX_C_PLUS_10).unwrap();
    let run = ctx.sultana(&["build", "-v", "--json", "--no-build-cache"]).success();
    assert_eq!(status_of(&run, "libfix"), "built");
    assert_eq!(status_of(&run, "root"), "built");
    assert_eq!(status_of(&run, "tool"), "fresh");
    assert!(
        run.stderr.contains("Rebuilding libfix: source changed: fix.c"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Building libfix v1.0-dirty (autotools, -j"),
        "a build of a tree with changes says so: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Rebuilding root: dependency libfix changed"),
        "{}",
        run.stderr
    );
    assert_eq!(logs(&ctx.work, "libfix"), ["03-make.log", "04-install.log"]);
    assert_eq!(
        std::fs::metadata(&config_status).unwrap().modified().unwrap(),
        configured_at
    );
    assert_eq!(
        run_program(&staged(&ctx.work, "root", "bin/rootapp")),
        "rootapp: 2 + 3 = 15\n"
    );

    // Another commit and back, without building between: fresh.
    std::fs::write(&fix, FIX_C).unwrap();
    let libfix = ctx.work.join("libfix");
    let before = ctx.head("libfix");
    let other = commit(&ctx.upstreams.join("libfix"), "NEWS", "1.1\n", "news");
    ctx.sultana(&["update", "libfix"]).success();
    assert_eq!(ctx.head("libfix"), other);
    let run = ctx
        .sultana(&["build", "--json", "--no-build-cache", "libfix"])
        .success();
    assert_eq!(status_of(&run, "libfix"), "built", "NEWS is part of the tree");
    checkout(&libfix, before);
    checkout(&libfix, other);
    let run = ctx
        .sultana(&["build", "--json", "--no-build-cache", "libfix"])
        .success();
    assert_eq!(status_of(&run, "libfix"), "fresh", "a round trip: {}", run.stderr);

    // configure.ac: bootstrap and configure again.
    let configure_ac = ctx.work.join("libfix/configure.ac");
    let mut text = std::fs::read_to_string(&configure_ac).unwrap();
    text.push_str("dnl a comment\n");
    std::fs::write(&configure_ac, text).unwrap();
    let run = ctx
        .sultana(&["build", "-v", "--json", "--no-build-cache", "libfix"])
        .success();
    assert!(run.stderr.contains("source changed: configure.ac"), "{}", run.stderr);
    assert!(logs(&ctx.work, "libfix").contains(&"02-configure.log".to_string()));

    // A configure that failed runs again even though its inputs are back.
    std::fs::write(&configure_ac, "this is not autoconf(\n").unwrap();
    ctx.sultana(&["build", "--no-build-cache", "libfix"]).code(1);
    git(&libfix, &["checkout", "configure.ac"]);
    std::fs::write(&fix, FIX_C_PLUS_10).unwrap();
    ctx.sultana(&["build", "--no-build-cache", "libfix"]).success();
    assert!(logs(&ctx.work, "libfix").contains(&"02-configure.log".to_string()));
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// A make project with a shared library and a program linked to it, and
/// its pkg-config file: staged, the program cannot find its library.
fn shared_library_workspace(ctx: &TestContext) {
    let up = ctx.upstream("greet");
    up.commit(
        &[
            ("greet.c", "const char *greeting(void) { return \"hello from libgreet\"; }\n"),
            (
                "main.c",
                "#include <stdio.h>\nconst char *greeting(void);\nint main(void) { puts(greeting()); return 0; }\n",
            ),
            (
                "Makefile",
                "PREFIX ?= /usr/local\nall: greet\nlibgreet.so: greet.c\n\t$(CC) -shared -fPIC -o $@ greet.c\n\
                 greet: main.c libgreet.so\n\t$(CC) -o $@ main.c -L. -lgreet\n\
                 install: greet\n\tmkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig\n\
                 \tcp libgreet.so $(DESTDIR)$(PREFIX)/lib/\n\tcp greet $(DESTDIR)$(PREFIX)/bin/\n\
                 \tprintf 'Name: greet\\nDescription: g\\nVersion: 1.0\\nLibs: -lgreet\\n' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/greet.pc\n",
            ),
            (".gitignore", "greet\n*.so\n"),
        ],
        "greet",
    );
    ctx.write("sultana.toml", &manifest(&[("greet", &up.url(), "master")]));
    ctx.write(
        "recipes/greet.toml",
        "kind = \"make\"\ninstall = [\"install\", \"DESTDIR={destdir}\", \"PREFIX={prefix}\"]\n",
    );
}

/// `run`, `env` and `shell` find what was built: its program on PATH, its
/// library through LD_LIBRARY_PATH, its pkg-config file; `run` exits with
/// the command's status.
#[test]
#[cfg_attr(not(all(have_gcc, have_make)), ignore = "needs gcc, make")]
fn run_env_and_shell_find_the_built_program_and_its_library() {
    require("make", "the make fixture");
    require("gcc", "the make fixture");
    let ctx = TestContext::new();
    shared_library_workspace(&ctx);
    ctx.sultana(&["run", "true"])
        .success()
        .stderr_has("nothing is built here yet");
    ctx.sultana(&["build"]).success();
    let greet = staged(&ctx.work, "greet", "bin/greet");
    let alone = std::process::Command::new(&greet).output().unwrap();
    assert!(
        !alone.status.success(),
        "staged, its library is not found without `run`"
    );

    ctx.sultana(&["run", "greet"])
        .success()
        .stdout_has("hello from libgreet");
    ctx.sultana(&["run", "--", "false"]).code(1);
    ctx.sultana(&["run", "--", "sh", "-c", "exit 7"]).code(7);
    ctx.sultana(&["run", "--", "pkg-config", "--libs", "greet"])
        .success()
        .stdout_has("-lgreet");
    ctx.sultana(&["run", "no-such-program"])
        .code(2)
        .stderr_has("was not found");

    let exports = ctx.sultana(&["env"]).success().stdout;
    assert!(exports.contains("export LD_LIBRARY_PATH="), "{exports}");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{exports}\ngreet"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from libgreet\n");
    let fish = ctx.sultana(&["env", "--shell", "fish"]).success().stdout;
    assert!(fish.starts_with("set -gx PATH "), "{fish}");

    let shell = ctx
        .sultana_with(
            &ctx.work,
            "022",
            &[("SHELL", "/bin/sh")],
            &["shell", "-c", "greet; echo \"$PATH\""],
        )
        .success();
    assert!(shell.stdout.starts_with("hello from libgreet\n"), "{}", shell.stdout);
    assert!(shell.stdout.contains("dist/greet/usr/local/bin"), "{}", shell.stdout);

    // detect sees nothing of it: the built library is no system one.
    let detect = ctx
        .sultana_with(&ctx.work, "022", &[], &["--json", "detect", "greet"])
        .stdout;
    assert!(!detect.contains("dist/greet"), "{detect}");
}

/// A second workspace at the same pins restores every build from the
/// shared cache; a changed recipe, a changed dependency and a dirty tree
/// miss it (and a dirty tree does not fill it).
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs autoreconf, cargo, gcc, make"
)]
fn the_build_cache_serves_a_second_workspace_and_misses_what_differs() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    let first = ctx.sultana(&["build", "--json"]).success();
    assert_eq!(status_of(&first, "libfix"), "built");
    let entries = || std::fs::read_dir(ctx.cache.join("sultana/builds")).unwrap().count();
    assert_eq!(entries(), 4, "one entry per component");

    let second = same_pins(&ctx, "second");
    let run = ctx.sultana_in(&second, &["build", "--json"]).success();
    for name in ["libfix", "tool", "rusty", "root"] {
        assert_eq!(status_of(&run, name), "cached", "{name}: {}", run.stderr);
    }
    assert_eq!(
        run_program(&staged(&second, "root", "bin/rootapp")),
        "rootapp: 2 + 3 = 5\n"
    );
    // A copy, never a link into the cache.
    let restored = staged(&second, "libfix", "lib/libfix.a");
    assert!(!std::fs::symlink_metadata(&restored).unwrap().file_type().is_symlink());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&restored).unwrap().nlink(), 1);
    // Fresh afterwards.
    let run = ctx.sultana_in(&second, &["build", "--json"]).success();
    assert_eq!(status_of(&run, "root"), "fresh");

    // A dirty tree: built, not stored; its dependent misses too.
    std::fs::write(second.join("libfix/fix.c"), FIX_C_PLUS_10).unwrap();
    let run = ctx.sultana_in(&second, &["build", "--json"]).success();
    assert_eq!(status_of(&run, "libfix"), "built");
    assert_eq!(status_of(&run, "root"), "built");
    assert_eq!(entries(), 4, "a dirty tree never fills the cache");
    // Back to the commit: the cached build again.
    std::fs::write(second.join("libfix/fix.c"), FIX_C).unwrap();
    let run = ctx.sultana_in(&second, &["build", "--json"]).success();
    // What builds wrote into the trees (bootstrap's configure, root's
    // in-tree objects from the dirty build) are outputs, not inputs of the
    // key: the clean trees' builds come back from the cache.
    assert_eq!(status_of(&run, "libfix"), "cached", "{}", run.stderr);
    assert_eq!(status_of(&run, "root"), "cached", "{}", run.stderr);
    assert_eq!(
        run_program(&staged(&second, "root", "bin/rootapp")),
        "rootapp: 2 + 3 = 5\n"
    );
    let stored = entries();

    // A changed recipe misses, and its dependents with it.
    let recipe = second.join("recipes/libfix.toml");
    let text = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(
        &recipe,
        text.replace(
            "\"--libdir={libdir}\"",
            "\"--libdir={libdir}\", \"--disable-silent-rules\"",
        ),
    )
    .unwrap();
    let run = ctx.sultana_in(&second, &["build", "--json"]).success();
    assert_eq!(status_of(&run, "libfix"), "built");
    assert_eq!(status_of(&run, "root"), "built");
    assert_eq!(status_of(&run, "tool"), "fresh");
    assert!(entries() > stored, "the new recipe's builds are stored");

    // --no-build-cache: neither read nor filled.
    let third = same_pins(&ctx, "third");
    let run = ctx
        .sultana_in(&third, &["build", "--json", "--no-build-cache", "tool"])
        .success();
    assert_eq!(status_of(&run, "tool"), "built");

    // `cache` shows the entries; `cache prune --max-size 0` empties it.
    let shown = ctx.sultana(&["cache", "--json"]).success().json();
    let all = shown["builds"]["entries"].as_array().unwrap().len();
    assert_eq!(all, entries());
    ctx.sultana(&["cache", "prune", "--max-size", "0"])
        .success()
        .stderr_has(&format!("Pruned {all} build(s)"));
    assert_eq!(entries(), 0);
    ctx.sultana(&["cache", "prune", "--max-size", "lots"]).code(2);
}

/// kill -9 while a build is stored into the cache, or restored from it:
/// the next run finishes with the same result, and no half entry is used.
#[test]
#[cfg_attr(not(all(have_gcc, have_make)), ignore = "needs gcc, make")]
fn the_build_cache_survives_kill_9_and_concurrent_fills() {
    require("make", "the make fixture");
    require("gcc", "the make fixture");
    let ctx = TestContext::new();
    shared_library_workspace(&ctx);
    let killed = ctx
        .command(&ctx.work, &["build"])
        .env("SULTANA_TEST_CRASH_AT", "build-cache-storing#1")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    let builds = ctx.cache.join("sultana/builds");
    let whole = || {
        std::fs::read_dir(&builds)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().join("meta.json").is_file())
            .count()
    };
    assert_eq!(whole(), 0, "nothing whole after a killed store");
    ctx.sultana(&["build"]).success();
    let copy = |to: &Path| {
        for file in ["sultana.toml", "sultana.lock", "recipes/greet.toml"] {
            std::fs::create_dir_all(to.join(file).parent().unwrap()).unwrap();
            std::fs::copy(ctx.work.join(file), to.join(file)).unwrap();
        }
    };
    // A pristine tree elsewhere builds and stores it.
    let first = ctx.dir("first");
    copy(&first);
    ctx.sultana_in(&first, &["build"]).success();
    assert_eq!(whole(), 1);

    // Restored in a second workspace, killed half way: the rerun restores.
    let second = ctx.dir("second");
    copy(&second);
    let killed = ctx
        .command(&second, &["build"])
        .env("SULTANA_TEST_CRASH_AT", "build-cache-restored#1")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    let run = ctx.sultana_in(&second, &["build", "--json"]).success();
    assert_eq!(status_of(&run, "greet"), "cached", "{}", run.stderr);
    ctx.sultana_in(&second, &["run", "greet"])
        .success()
        .stdout_has("hello from libgreet");

    // Killed once another commit's build is in place, before its stamp: the
    // lock moved back to the old commit (the stamp's) is not taken for fresh.
    let old_lock = ctx.read("sultana.lock");
    commit(
        &ctx.upstreams.join("greet"),
        "greet.c",
        "const char *greeting(void) { return \"hello again\"; }\n",
        "again",
    );
    ctx.sultana_in(&first, &["update", "greet"]).success();
    ctx.sultana_in(&first, &["build"]).success();
    ctx.sultana(&["update", "greet"]).success();
    let killed = ctx
        .command(&ctx.work, &["build"])
        .env("SULTANA_TEST_CRASH_AT", "build-restore-placed#1")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    ctx.write("sultana.lock", &old_lock);
    let run = ctx.sultana(&["build", "--json"]).success();
    assert_ne!(status_of(&run, "greet"), "fresh", "{}", run.stderr);
    ctx.sultana(&["run", "greet"])
        .success()
        .stdout_has("hello from libgreet");

    // Two workspaces filling one key at once: one entry, both builds fine.
    ctx.sultana(&["cache", "prune", "--max-size", "0"]).success();
    let spawn = |dir: &Path| ctx.command(dir, &["build", "--json"]).spawn().unwrap();
    std::fs::remove_dir_all(ctx.work.join("dist")).unwrap();
    std::fs::remove_dir_all(second.join("dist")).unwrap();
    std::fs::remove_file(ctx.work.join(".sultana/build/greet.stamp")).unwrap();
    std::fs::remove_file(second.join(".sultana/build/greet.stamp")).unwrap();
    let (a, b) = (spawn(&ctx.work), spawn(&second));
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    assert!(whole() >= 1);
    let leftovers: Vec<_> = std::fs::read_dir(&builds)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    // At most the folder of the run killed while storing (swept when old).
    assert!(leftovers.len() <= 1, "{leftovers:?}");
}

/// With ccache installed, a neighbour commit built in a fresh workspace
/// (no build cache) compiles what did not change from ccache.
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_ccache, have_gcc, have_make)),
    ignore = "needs autoreconf, cargo, ccache, gcc, make"
)]
fn ccache_serves_the_unchanged_files_of_a_neighbour_commit() {
    toolchain_present();
    require("ccache", "the compiler cache (Debian ccache)");
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    ctx.sultana(&["build", "--no-build-cache", "libfix"]).success();
    let stats = || -> u64 {
        let out = std::process::Command::new("ccache")
            .arg("--print-stats")
            .env("CCACHE_DIR", ctx.cache.join("sultana/ccache"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("direct_cache_hit") || l.starts_with("preprocessed_cache_hit"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    };
    let before = stats();
    // Only installed compilers are masqueraded: a link to a missing one
    // would make configure pick a compiler that is not there.
    let masquerade = ctx.cache.join("sultana/ccache-bin");
    assert!(masquerade.join("cc").exists());
    for compiler in ["clang", "clang++"] {
        let installed = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {compiler}")])
            .output()
            .unwrap()
            .status
            .success();
        assert_eq!(
            std::fs::symlink_metadata(masquerade.join(compiler)).is_ok(),
            installed,
            "{compiler}"
        );
    }
    commit(&ctx.upstreams.join("libfix"), "NEWS", "1.1\n", "news");
    let second = same_pins(&ctx, "second");
    ctx.sultana_in(&second, &["update", "libfix"]).success();
    ctx.sultana_in(&second, &["build", "--no-build-cache", "libfix"])
        .success();
    assert!(stats() > before, "ccache hits grew: {} -> {}", before, stats());
    // --no-ccache: none more.
    let third = stats();
    ctx.sultana_in(&second, &["clean", "libfix"]).success();
    ctx.sultana_in(&second, &["build", "--no-build-cache", "--no-ccache", "libfix"])
        .success();
    assert_eq!(stats(), third);
}

const TOOL_C_2: &str = "#include <stdio.h>\nint main(void) { puts(\"fixtool 2.0\"); return 0; }\n";

/// A tree that still holds another commit's in-tree build (a bisect or gate
/// scratch tree, a checkout moved by `update`) has the key of a fresh clone
/// at its commit: the build comes from the cache, and is that commit's.
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs autoreconf, cargo, gcc, make"
)]
fn a_tree_holding_another_commits_outputs_is_served_by_the_cache() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    ctx.sultana(&["build", "tool"]).success();
    let ran = |dir: &Path| run_program(&staged(dir, "tool", "bin/fixtool"));
    assert_eq!(ran(&ctx.work), "fixtool 1.0\n");
    assert!(ctx.work.join("tool/fixtool").is_file(), "an in-tree build");

    commit(&ctx.upstreams.join("tool"), "fixtool.c", TOOL_C_2, "2.0");
    let second = same_pins(&ctx, "second");
    ctx.sultana_in(&second, &["update", "tool"]).success();
    let run = ctx.sultana_in(&second, &["build", "--json", "tool"]).success();
    assert_eq!(status_of(&run, "tool"), "built");

    // The first workspace moves to 2.0 with 1.0's objects in its tree.
    ctx.sultana(&["update", "tool"]).success();
    let run = ctx.sultana(&["build", "--json", "-v", "tool"]).success();
    assert_eq!(status_of(&run, "tool"), "cached", "{}", run.stderr);
    assert_eq!(ran(&ctx.work), "fixtool 2.0\n");
    // An output edited by hand is content again: no restore.
    std::fs::write(ctx.work.join("tool/BUILD-INFO"), "by hand\n").unwrap();
    ctx.sultana(&["cache", "prune", "--max-size", "0"]).success();
    ctx.sultana_in(&second, &["build", "--no-build-cache", "tool"])
        .success();
    let run = ctx.sultana(&["build", "--json", "tool"]).success();
    assert_eq!(status_of(&run, "tool"), "built", "{}", run.stderr);
}

/// A source edited while the build runs (here by the build itself, after
/// the compiler read it), or a new one written where git would show it, is
/// built again next time, and that build never reaches the shared cache.
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs autoreconf, cargo, gcc, make"
)]
fn an_edit_made_during_the_build_builds_again_and_is_never_stored() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    let makefile = std::fs::read_to_string(ctx.upstreams.join("tool/Makefile")).unwrap();
    // Another process than the build's (no tracer: `env -u LD_PRELOAD`)
    // edits a source and writes a new one while the build runs.
    let hook = "\t$(CC) $(CFLAGS) -o $@ fixtool.c\n\tif [ -n \"$(EDIT_DURING_BUILD)\" ]; then env -u LD_PRELOAD sh -c \"echo '/* edit */' >> fixtool.c; echo 'int extra;' > extra.c\"; fi\n";
    let edited = makefile.replace("\t$(CC) $(CFLAGS) -o $@ fixtool.c\n", hook);
    assert_ne!(edited, makefile);
    let upstream = ctx.upstreams.join("tool");
    let clock = sultana::fixtures::Clock::default();
    sultana::fixtures::commit(&upstream, &[("Makefile", edited, false)], "hook", &clock).unwrap();
    let builds = || -> Vec<String> {
        let shown = ctx.sultana(&["cache", "--json"]).success().json();
        shown["builds"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["component"].as_str().unwrap().to_string())
            .collect()
    };

    let run = ctx
        .sultana(&["build", "--json", "--env", "EDIT_DURING_BUILD=1", "tool"])
        .success();
    assert_eq!(status_of(&run, "tool"), "built");
    assert!(
        run.stderr
            .contains("tool: extra.c, fixtool.c changed while it was building; it builds again next time"),
        "{}",
        run.stderr
    );
    assert!(
        builds().is_empty(),
        "a build that may hold an unkeyed edit is not stored"
    );
    let run = ctx.sultana(&["build", "--json", "-v", "tool"]).success();
    assert_eq!(status_of(&run, "tool"), "built", "the edit is built: {}", run.stderr);
    assert!(
        run.stderr.contains("source changed: extra.c, fixtool.c"),
        "{}",
        run.stderr
    );
    assert!(builds().is_empty(), "a dirty tree is not stored");
    let run = ctx.sultana(&["build", "--json", "tool"]).success();
    assert_eq!(status_of(&run, "tool"), "fresh");

    // Back to the commit: built, stored, then fresh.
    git(&ctx.work.join("tool"), &["checkout", "fixtool.c"]);
    std::fs::remove_file(ctx.work.join("tool/extra.c")).unwrap();
    let run = ctx.sultana(&["build", "--json", "tool"]).success();
    assert_eq!(status_of(&run, "tool"), "built");
    assert_eq!(builds(), ["tool"]);
    let run = ctx.sultana(&["build", "--json", "tool"]).success();
    assert_eq!(status_of(&run, "tool"), "fresh");
}

/// Only the base, what a recipe declares and `--env` reach a build step,
/// and each of them is an input: a declared variable that changes builds
/// again (`-v` names it), a second workspace on the same cache never gets
/// the other value's build, an undeclared one never reaches the build.
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs autoreconf, cargo, gcc, make"
)]
fn what_reaches_a_build_is_its_input_and_nothing_else_reaches_it() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    let install = "\tinstall -D -m 0755 fixtool $(DESTDIR)$(PREFIX)/bin/fixtool\n";
    ctx.edit_upstream(
        "tool",
        "Makefile",
        install,
        &format!("{install}\tprintf 'flavour=%s undeclared=%s term=%s\\n' '$(FLAVOUR)' '$(UNDECLARED)' \"$$TERM\" > $(DESTDIR)$(PREFIX)/flavour\n"),
        "flavour",
    );
    ctx.edit("recipes/tool.toml", "env = [\"CC\"", "env = [\"FLAVOUR\", \"CC\"");
    let flavour = |work: &Path| std::fs::read_to_string(staged(work, "tool", "flavour")).unwrap();
    let build = |work: &Path, env: &[(&str, &str)], args: &[&str]| {
        let mut all = vec!["build", "--json", "-v"];
        all.extend_from_slice(args);
        all.push("tool");
        ctx.sultana_with(work, "022", env, &all).success()
    };

    let run = build(
        &ctx.work,
        &[("FLAVOUR", "plain"), ("UNDECLARED", "leak"), ("TERM", "xterm")],
        &[],
    );
    assert_eq!(status_of(&run, "tool"), "built");
    assert_eq!(
        flavour(&ctx.work),
        "flavour=plain undeclared= term=\n",
        "only the declared reach it"
    );

    // An undeclared variable that changes is no input: fresh.
    let run = build(&ctx.work, &[("FLAVOUR", "plain"), ("UNDECLARED", "other")], &[]);
    assert_eq!(status_of(&run, "tool"), "fresh", "{}", run.stderr);

    // A declared one is: built again, and named.
    let run = build(&ctx.work, &[("FLAVOUR", "debug")], &[]);
    assert_eq!(status_of(&run, "tool"), "built", "{}", run.stderr);
    assert!(
        run.stderr.contains("the environment changed: FLAVOUR"),
        "{}",
        run.stderr
    );
    assert_eq!(flavour(&ctx.work), "flavour=debug undeclared= term=\n");

    // --env wins over the environment, and is an input too.
    let run = build(&ctx.work, &[("FLAVOUR", "debug")], &["--env", "FLAVOUR=cli"]);
    assert_eq!(status_of(&run, "tool"), "built", "{}", run.stderr);
    assert_eq!(flavour(&ctx.work), "flavour=cli undeclared= term=\n");
    let run = build(&ctx.work, &[], &["--env", "UNDECLARED=given"]);
    assert!(run.stderr.contains("FLAVOUR (now unset)"), "{}", run.stderr);
    assert!(run.stderr.contains("UNDECLARED (was unset)"), "{}", run.stderr);
    assert_eq!(flavour(&ctx.work), "flavour= undeclared=given term=\n");

    // A second workspace on the same cache: each value gets its own build.
    let second = same_pins(&ctx, "second");
    let run = build(&second, &[("FLAVOUR", "plain")], &[]);
    assert_eq!(
        status_of(&run, "tool"),
        "cached",
        "the plain build is in the cache: {}",
        run.stderr
    );
    assert_eq!(flavour(&second), "flavour=plain undeclared= term=\n");
    let run = build(&second, &[("FLAVOUR", "release")], &[]);
    assert_eq!(status_of(&run, "tool"), "built", "{}", run.stderr);
    assert_eq!(flavour(&second), "flavour=release undeclared= term=\n");

    // Bad --env values are usage errors.
    ctx.sultana(&["build", "--env", "MAKEFLAGS=-j9"])
        .code(2)
        .stderr_has("set by sultana itself");
    ctx.sultana(&["build", "--env", "novalue"])
        .code(2)
        .stderr_has("is not NAME=VALUE");
}

/// Build-cache entries carry a sha256 list of their files: a tampered,
/// truncated or partial entry is refused, removed and the component
/// builds; a prefix inside a workspace keys that workspace's build only.
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs autoreconf, cargo, gcc, make"
)]
fn a_damaged_entry_is_refused_and_a_prefix_inside_a_workspace_is_its_own() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    ctx.sultana(&["build", "tool"]).success();
    let entry_of = |component: &str| -> PathBuf {
        let shown = ctx.sultana(&["cache", "--json"]).success().json();
        let key = shown["builds"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["component"] == component)
            .map(|e| e["key"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no entry for {component}: {shown}"));
        ctx.cache.join("sultana/builds").join(key)
    };
    let program = "prefix/usr/local/bin/fixtool";
    type Damage<'a> = (&'a str, &'a dyn Fn(&Path));
    let damages: [Damage; 3] = [
        ("has other content", &|e: &Path| {
            let mut bytes = std::fs::read(e.join(program)).unwrap();
            bytes[100] ^= 0xff;
            std::fs::write(e.join(program), bytes).unwrap();
        }),
        ("has another size", &|e: &Path| {
            let bytes = std::fs::read(e.join(program)).unwrap();
            std::fs::write(e.join(program), &bytes[..bytes.len() / 2]).unwrap();
        }),
        ("is missing", &|e: &Path| std::fs::remove_file(e.join(program)).unwrap()),
    ];
    for (i, (said, damage)) in damages.iter().enumerate() {
        let entry = entry_of("tool");
        damage(&entry);
        let second = same_pins(&ctx, &format!("second-{i}"));
        let run = ctx.sultana_in(&second, &["build", "--json", "tool"]).success();
        assert_eq!(status_of(&run, "tool"), "built", "{}", run.stderr);
        assert!(
            run.stderr.contains("is damaged (usr/local/bin/fixtool ") && run.stderr.contains(said),
            "{said}: {}",
            run.stderr
        );
        assert_eq!(
            run_program(&staged(&second, "tool", "bin/fixtool")),
            run_program(&staged(&ctx.work, "tool", "bin/fixtool")),
            "the rebuilt program runs"
        );
    }
    // An entry without its file list (an older or half-made one) is none.
    let entry = entry_of("tool");
    std::fs::remove_file(entry.join("files.json")).unwrap();
    let second = same_pins(&ctx, "second-partial");
    let run = ctx.sultana_in(&second, &["build", "--json", "tool"]).success();
    assert_eq!(status_of(&run, "tool"), "built", "{}", run.stderr);

    // A prefix inside the workspace: another workspace never gets a build
    // configured for the first one's path.
    let inside = |dir: &Path| {
        let manifest = std::fs::read_to_string(dir.join("sultana.toml")).unwrap();
        let manifest = manifest.replacen(
            "[workspace]\n",
            &format!("[workspace]\nprefix = \"{}/inst\"\n", dir.display()),
            1,
        );
        assert!(manifest.contains("/inst\""));
        std::fs::write(dir.join("sultana.toml"), manifest).unwrap();
    };
    let first = same_pins(&ctx, "inside-1");
    inside(&first);
    let run = ctx.sultana_in(&first, &["build", "--json", "tool"]).success();
    assert_eq!(status_of(&run, "tool"), "built", "{}", run.stderr);
    let other = same_pins(&ctx, "inside-2");
    inside(&other);
    let run = ctx.sultana_in(&other, &["build", "--json", "tool"]).success();
    assert_eq!(
        status_of(&run, "tool"),
        "built",
        "not the first workspace's build: {}",
        run.stderr
    );
}

/// A FIFO the install leaves in the staged prefix is refused with a clear
/// error, never opened (that would hang the build for ever).
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs autoreconf, cargo, gcc, make"
)]
fn a_fifo_in_the_staged_prefix_is_refused_not_opened() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    let recipe = ctx
        .read("recipes/tool.toml")
        .replace("install = [", "install_commands = [[\"sh\", \"-c\", \"make install DESTDIR=$1 PREFIX=$2 && mkfifo $1$2/bin/pipe\", \"sh\", \"{destdir}\", \"{prefix}\"]]\nold_install = [");
    let recipe = recipe.replace(
        "old_install = [\"install\", \"DESTDIR={destdir}\", \"PREFIX={prefix}\"]\n",
        "",
    );
    assert!(recipe.contains("mkfifo") && !recipe.contains("old_install"), "{recipe}");
    ctx.write("recipes/tool.toml", &recipe);
    ctx.sultana(&["build", "tool"])
        .code(1)
        .stderr_has("bin/pipe in ")
        .stderr_has("is a FIFO");
}

/// A workspace whose path holds a `:` (or ld.so's `;`) would put relative
/// entries on PATH and LD_LIBRARY_PATH: `run`, `env` and `shell` refuse it.
#[test]
#[cfg_attr(not(all(have_gcc, have_make)), ignore = "needs gcc, make")]
fn a_workspace_path_with_a_separator_is_refused_for_run() {
    require("make", "the make fixture");
    require("gcc", "the make fixture");
    let ctx = TestContext::new();
    shared_library_workspace(&ctx);
    ctx.sultana(&["build"]).success();
    for (i, odd) in ["ws:bin", "ws;lib"].iter().enumerate() {
        let moved = ctx.root.join(format!("{i}")).join(odd);
        std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(&ctx.work)
            .arg(&moved)
            .status()
            .unwrap();
        assert!(status.success());
        for args in [&["run", "true"][..], &["env"][..]] {
            let run = ctx
                .sultana_in(&moved, args)
                .code(2)
                .stderr_has("which PATH and LD_LIBRARY_PATH cannot hold");
            assert!(!run.stdout.contains("export PATH"), "{}", run.stdout);
        }
    }
}

/// What a build reads through a symlink that leads out of the tree is an
/// input (the file's content, not the link's text); a link to a folder
/// outside is refused, saying so; empty folders and folder modes are
/// content too.
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs autoreconf, cargo, gcc, make"
)]
fn links_out_of_the_tree_and_folders_are_inputs() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    ctx.sultana(&["build", "tool"]).success();
    let shared = ctx.root.join("shared.config");
    std::fs::write(&shared, "CONFIG_A=y\n").unwrap();
    let tree = ctx.work.join("tool");
    std::os::unix::fs::symlink(&shared, tree.join(".config")).unwrap();
    let build = || ctx.sultana(&["build", "--json", "-v", "tool"]).success();
    assert_eq!(status_of(&build(), "tool"), "built");
    assert_eq!(status_of(&build(), "tool"), "fresh");
    // The shared file changes, the link does not.
    std::fs::write(&shared, "CONFIG_A=n\n").unwrap();
    let run = build();
    assert_eq!(status_of(&run, "tool"), "built", "{}", run.stderr);
    assert!(run.stderr.contains("source changed: .config"), "{}", run.stderr);
    assert_eq!(status_of(&build(), "tool"), "fresh");

    // An empty folder, then its mode.
    std::fs::create_dir(tree.join("empty")).unwrap();
    let run = build();
    assert_eq!(status_of(&run, "tool"), "built", "{}", run.stderr);
    assert!(run.stderr.contains("source changed: empty/"), "{}", run.stderr);
    assert_eq!(status_of(&build(), "tool"), "fresh");
    std::fs::set_permissions(tree.join("empty"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    assert_eq!(status_of(&build(), "tool"), "built");

    // A link to a device (never opened): its text stands.
    std::os::unix::fs::symlink("/dev/null", tree.join("null.config")).unwrap();
    assert_eq!(status_of(&build(), "tool"), "built");
    assert_eq!(status_of(&build(), "tool"), "fresh");

    // A link to a folder outside: refused, named.
    let outside = ctx.dir("outside-folder");
    std::os::unix::fs::symlink(&outside, tree.join("linked")).unwrap();
    ctx.sultana(&["build", "tool"])
        .code(2)
        .stderr_has("outside the tree, which is a folder");
}

/// A file git ignores that a developer writes while builds run (Xen's
/// `.config`, written in another terminal) is an edit every time, however
/// many builds in a row it happens in: what the build wrote is known from
/// what its own processes did, not from timing.
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs autoreconf, cargo, gcc, make"
)]
fn an_ignored_file_written_beside_running_builds_is_never_their_output() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    // The build waits, after compiling, until the test lets it go.
    let compile = "\t$(CC) $(CFLAGS) -o $@ fixtool.c\n";
    let hook =
        "\tif [ -n \"$(GO)\" ]; then touch $(GO).waiting; while [ ! -e $(GO) ]; do sleep 0.05; done; rm -f $(GO); fi\n";
    ctx.edit_upstream("tool", "Makefile", compile, &format!("{compile}{hook}"), "wait");
    ctx.edit(
        "recipes/tool.toml",
        "ignore = [\"/BUILD-INFO\"]",
        "ignore = [\"/BUILD-INFO\", \"/.config\"]",
    );
    ctx.sultana(&["build", "tool"]).success();
    let go = ctx.root.join("go");
    let waiting = ctx.root.join("go.waiting");
    let config = ctx.work.join("tool/.config");
    for round in 0..3 {
        // Something to build: the program's source is touched by content.
        std::fs::write(
            ctx.work.join("tool/fixtool.c"),
            std::fs::read_to_string(ctx.upstreams.join("tool/fixtool.c")).unwrap() + &format!("/* {round} */\n"),
        )
        .unwrap();
        let _ = std::fs::remove_file(&waiting);
        let go_arg = format!("GO={}", go.display());
        let child = ctx
            .command(&ctx.work, &["build", "--json", "--env", &go_arg, "tool"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !waiting.exists() {
            assert!(std::time::Instant::now() < deadline, "the build never reached its wait");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::fs::write(&config, format!("CONFIG_ROUND={round}\n")).unwrap();
        std::fs::write(&go, "").unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(".config changed while it was building; it builds again next time"),
            "round {round}: {stderr}"
        );
    }
    // The edit is built; then nothing changes.
    let run = ctx.sultana(&["build", "--json", "-v", "tool"]).success();
    assert_eq!(status_of(&run, "tool"), "built", "{}", run.stderr);
    assert!(run.stderr.contains("source changed: .config"), "{}", run.stderr);
    assert_eq!(
        status_of(&ctx.sultana(&["build", "--json", "tool"]).success(), "tool"),
        "fresh"
    );
}

/// The toolchain is the one the build's own PATH finds (`--env PATH=…`):
/// another compiler there builds again; a restore under another umask is
/// the same tree, not a damaged entry.
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs autoreconf, cargo, gcc, make"
)]
fn the_build_path_names_the_toolchain_and_a_umask_is_no_damage() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    let bin = ctx.dir("fake-bin");
    let fake = |version: &str| {
        let cc = bin.join("cc");
        std::fs::write(
            &cc,
            format!("#!/bin/sh\ncase \"$1\" in --version) echo 'fakecc {version}'; exit 0;; esac\nexec gcc \"$@\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(&cc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    fake("1.0");
    let path = format!("PATH={}:/usr/bin:/bin", bin.display());
    let build = |args: &[&str]| {
        let mut all = vec!["build", "--json", "-v", "--no-ccache", "--env", &path];
        all.extend_from_slice(args);
        all.push("tool");
        ctx.sultana(&all).success()
    };
    assert_eq!(status_of(&build(&[]), "tool"), "built");
    assert_eq!(status_of(&build(&[]), "tool"), "fresh");
    fake("2.0");
    let run = build(&[]);
    assert_eq!(status_of(&run, "tool"), "built", "{}", run.stderr);
    assert!(
        run.stderr.contains("the toolchain changed (now fakecc 2.0"),
        "{}",
        run.stderr
    );

    // Stored under umask 022; a second workspace under 002 restores it.
    let second = same_pins(&ctx, "second");
    let run = ctx
        .sultana_with(
            &second,
            "002",
            &[],
            &["build", "--json", "--no-ccache", "--env", &path, "tool"],
        )
        .success();
    assert_eq!(status_of(&run, "tool"), "cached", "{}", run.stderr);
    assert!(!run.stderr.contains("damaged"), "{}", run.stderr);
}
