//! `build`, `install`, `clean`, `distclean`, `detect`, `deps` on real
//! autotools, make, cargo and kbuild fixture projects.

use std::path::{Path, PathBuf};

use crate::support::*;

fn toolchain_present() {
    require("autoreconf", "the autotools fixture (Debian autoconf, automake)");
    require("automake", "the autotools fixture");
    require("make", "every fixture build");
    require("gcc", "every fixture build");
    require("cargo", "the cargo fixture");
}

fn staged(ctx: &TestContext, component: &str, path: &str) -> PathBuf {
    ctx.work.join("dist").join(component).join("usr/local").join(path)
}

fn statuses(run: &Run) -> Vec<(String, String)> {
    run.json()["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status_of(run: &Run, name: &str) -> String {
    statuses(run)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
        .unwrap_or_default()
}

#[test]
#[cfg_attr(
    not(all(have_automake, have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs automake, autoreconf, cargo, gcc, make"
)]
fn builds_in_dependency_order_and_rebuilds_only_what_changed() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    let run = ctx.sultana(&["build", "-j2", "--json"]).success();
    for name in ["libfix", "tool", "rusty", "root"] {
        assert_eq!(status_of(&run, name), "built", "{}", run.stderr);
    }
    assert!(staged(&ctx, "libfix", "include/fix.h").is_file());
    assert!(staged(&ctx, "libfix", "lib/libfix.a").is_file());
    assert_eq!(
        run_program(&staged(&ctx, "root", "bin/rootapp")),
        "rootapp: 2 + 3 = 5\n"
    );
    assert_eq!(run_program(&staged(&ctx, "tool", "bin/fixtool")), "fixtool 1.0\n");
    assert_eq!(run_program(&staged(&ctx, "rusty", "bin/rusty")), "rusty 0.1.0\n");
    // Out of tree for autotools; one log per step.
    assert!(ctx.work.join("build/libfix/Makefile").is_file());
    assert!(ctx.work.join(".sultana/logs/build/libfix/02-configure.log").is_file());
    // The fixture's own test suite passes in the build folder.
    let check = std::process::Command::new("make")
        .arg("check")
        .current_dir(ctx.work.join("build/libfix"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    // Building leaves the checkouts clean (outputs are ignored or out of tree).
    let status = ctx.sultana(&["status", "--json"]).success().json();
    for row in status["components"].as_array().unwrap() {
        assert_eq!(row["state"], "clean", "{row}");
    }

    let again = ctx.sultana(&["build", "--json"]).success();
    assert!(
        statuses(&again).iter().all(|(_, s)| s == "fresh"),
        "{:?}",
        statuses(&again)
    );

    // A change in the library rebuilds it and its dependent, nothing else.
    ctx.write(
        "libfix/fix.c",
        "#include \"fix.h\"\n/* faster */\nint fix_add(int a, int b) { return b + a; }\n",
    );
    let after = ctx.sultana(&["build", "--json"]).success();
    assert_eq!(status_of(&after, "libfix"), "built");
    assert_eq!(status_of(&after, "root"), "built");
    assert_eq!(status_of(&after, "tool"), "fresh");
    assert_eq!(status_of(&after, "rusty"), "fresh");
    // So does a change of recipe; -j does not count.
    let recipe = ctx
        .read("recipes/tool.toml")
        .replace("make = [\"-j{jobs}\"]", "make = [\"-j{jobs}\", \"CFLAGS=-O1\"]");
    ctx.write("recipes/tool.toml", &recipe);
    let after = ctx.sultana(&["build", "-j1", "--json"]).success();
    assert_eq!(status_of(&after, "tool"), "built");
    assert_eq!(status_of(&after, "libfix"), "fresh");

    // install --destdir puts exactly the staged files there.
    let root = ctx.dir("root-fs");
    ctx.sultana(&["install", "--destdir", root.to_str().unwrap()])
        .success()
        .stderr_has("Installed libfix");
    assert_eq!(run_program(&root.join("usr/local/bin/fixtool")), "fixtool 1.0\n");
    assert!(root.join("usr/local/include/fix.h").is_file());

    // clean removes the outputs; the next build restores the clean tree's
    // build from the shared cache, or without it builds again.
    ctx.sultana(&["clean", "tool"]).success();
    assert!(!ctx.work.join("dist/tool").exists());
    let after = ctx.sultana(&["build", "--json"]).success();
    assert_ne!(status_of(&after, "tool"), "fresh");
    ctx.sultana(&["clean", "tool"]).success();
    let after = ctx.sultana(&["build", "--json", "--no-build-cache"]).success();
    assert_eq!(status_of(&after, "tool"), "built");
    assert_eq!(
        run_program(&ctx.work.join("dist/tool/usr/local/bin/fixtool")),
        "fixtool 1.0\n"
    );
}

#[test]
#[cfg_attr(
    not(all(have_automake, have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs automake, autoreconf, cargo, gcc, make"
)]
fn a_dependent_builds_against_a_system_copy_too() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    ctx.sultana(&["build", "libfix"]).success();
    let prefix_root = ctx.dir("installed");
    ctx.sultana(&["install", "libfix", "--destdir", prefix_root.to_str().unwrap()])
        .success();
    let prefix = prefix_root.join("usr/local");

    // A second workspace takes libfix from the "system" and never fetches it.
    let second = ctx.dir("second");
    std::fs::copy(ctx.work.join("sultana.toml"), second.join("sultana.toml")).unwrap();
    sultana::fixtures::write_recipes(&second).unwrap();
    let with = format!("libfix={}", prefix.display());
    let run = ctx
        .sultana_in(&second, &["build", "root", "--with-system", &with, "--json"])
        .success();
    assert_eq!(status_of(&run, "libfix"), "system");
    assert_eq!(status_of(&run, "root"), "built");
    assert!(!second.join("libfix").exists(), "a system component is not fetched");
    assert_eq!(
        run_program(&second.join("dist/root/usr/local/bin/rootapp")),
        "rootapp: 2 + 3 = 5\n"
    );

    ctx.sultana_in(&second, &["detect", "libfix", "--with-system", &with])
        .success()
        .stdout_has(&format!("found in {}", prefix.display()));
    let missing = ctx.dir("empty-prefix");
    let bad = format!("libfix={}", missing.display());
    ctx.sultana_in(&second, &["build", "root", "--with-system", &bad])
        .code(2)
        .stderr_has("not found in")
        .stderr_has("library libfix, header fix.h");
    ctx.sultana_in(&second, &["build", "--with-system-blktap"])
        .code(2)
        .stderr_has("blktap: no such component");
    ctx.sultana_in(
        &second,
        &["build", "--with-system", &with, "--without-system", "libfix"],
    )
    .code(2)
    .stderr_has("both");
}

#[test]
#[cfg_attr(
    not(all(have_automake, have_autoreconf, have_cargo, have_gcc, have_make)),
    ignore = "needs automake, autoreconf, cargo, gcc, make"
)]
fn a_failed_configure_blocks_its_dependents_but_not_the_rest() {
    toolchain_present();
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    let recipe = ctx.read("recipes/libfix.toml").replace(
        "\"--libdir={libdir}\"]",
        "\"--libdir={libdir}\", \"CC=/nonexistent/cc\"]",
    );
    ctx.write("recipes/libfix.toml", &recipe);
    let run = ctx.sultana(&["build", "--json"]).code(1);
    assert_eq!(status_of(&run, "libfix"), "failed");
    assert_eq!(status_of(&run, "root"), "blocked");
    assert_eq!(status_of(&run, "tool"), "built");
    assert_eq!(status_of(&run, "rusty"), "built");
    let run = run
        .stderr_has("libfix failed at configure")
        .stderr_has("failed (exit status")
        .stderr_has("  | ")
        .stderr_has("root not built: its dependency libfix failed");
    assert!(run.stderr.contains("configure.log"), "{}", run.stderr);
    assert!(!ctx.work.join("dist/libfix").exists(), "nothing half-installed");
}

#[test]
fn a_missing_tool_is_named_with_its_package() {
    let ctx = TestContext::new();
    let up = ctx.upstream("thing");
    ctx.write("sultana.toml", &manifest(&[("thing", &up.url(), "master")]));
    ctx.write(
        "recipes/thing.toml",
        "description = \"x\"\nkind = \"command\"\ncommands = [[\"sultana-no-such-tool\", \"--x\"]]\n",
    );
    ctx.sultana(&["build"])
        .code(2)
        .stderr_has("`sultana-no-such-tool` is not installed");
    ctx.write(
        "recipes/thing.toml",
        "description = \"x\"\nkind = \"make\"\nmakee = []\n",
    );
    ctx.sultana(&["build"]).code(2).stderr_has("recipes/thing.toml:3:1:");
    ctx.write(
        "recipes/thing.toml",
        "description = \"x\"\nkind = \"command\"\ncommands = [[\"echo\", \"{dep.nothing.prefix}\"]]\n",
    );
    ctx.sultana(&["build"]).code(2).stderr_has("not part of this build");
}

#[test]
#[cfg_attr(
    not(all(have_kernel_headers, have_gcc, have_make)),
    ignore = "needs linux-headers-amd64, gcc, make"
)]
fn a_kbuild_module_builds_against_the_debian_headers() {
    let headers = std::fs::read_dir("/usr/src").ok().and_then(|d| {
        d.flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-amd64"))
    });
    let Some(headers) = headers else {
        require_path(Path::new("/usr/src/linux-headers-amd64"), "the kbuild fixture");
        panic!("no Debian kernel headers under /usr/src");
    };
    require("make", "the kbuild fixture");
    require("gcc", "the kbuild fixture");
    let ctx = TestContext::new();
    ctx.hello_module_workspace();
    let uts = std::fs::read_to_string(headers.join("include/generated/utsrelease.h")).unwrap();
    let release = uts.split('"').nth(1).unwrap().to_string();
    let run = ctx
        .sultana(&["build", "--kernel-headers", headers.to_str().unwrap()])
        .success()
        .stderr_has("Using kernel headers");
    let module = ctx.work.join(format!(
        "dist/hello-module/lib/modules/{}/extra/hello.ko",
        release.trim()
    ));
    assert!(module.is_file(), "{}", run.stderr);
    ctx.sultana(&["build", "--json"]).success();
    ctx.sultana(&["clean"]).success();
    ctx.sultana(&["build", "--kernel-headers", "/nonexistent"])
        .code(2)
        .stderr_has("not a prepared kernel header tree");
}

#[test]
fn distclean_refuses_local_work_and_force_saves_it_in_the_cache() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    ctx.write("up/mine.txt", "precious\n");
    ctx.sultana(&["distclean"])
        .code(2)
        .stderr_has("refusing to remove")
        .stderr_has("1 untracked file(s)");
    assert_eq!(ctx.read("up/mine.txt"), "precious\n");
    let run = ctx
        .sultana(&["distclean", "--force"])
        .success()
        .stderr_has("restore it with: git init -q");
    assert!(!ctx.work.join("up").exists());
    // The saved commit is in the cache store, holding the file.
    let store = ctx.cache_store();
    let repo = git2::Repository::open_bare(&store).unwrap();
    let saved = repo
        .references_glob("refs/sultana/backup/up/*")
        .unwrap()
        .next()
        .expect("a backup ref")
        .unwrap();
    let tree = saved.peel_to_commit().unwrap().tree().unwrap();
    let blob = repo.find_blob(tree.get_name("mine.txt").unwrap().id()).unwrap();
    assert_eq!(blob.content(), b"precious\n", "{}", run.stderr);
}

#[test]
fn deps_lists_the_debian_packages_of_enabled_components() {
    let ctx = TestContext::new();
    let run = ctx.sultana(&["deps", "--json"]).success();
    let packages: Vec<String> = run.json()["debian"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    for expected in ["libcmocka-dev", "libaio-dev", "autoconf", "libyajl-dev"] {
        assert!(packages.contains(&expected.to_string()), "{packages:?}");
    }
    assert!(
        !packages.contains(&"nasm".to_string()),
        "ovmf is disabled by default: {packages:?}"
    );
    let plain = ctx.sultana(&["deps"]).success();
    assert!(plain.stdout.lines().any(|l| l == "uuid-dev"), "{}", plain.stdout);
    // What the tests need is said apart, and listed with --tests.
    let tests: Vec<String> = run.json()["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    for expected in ["qemu-utils", "python3-libnbd"] {
        assert!(tests.contains(&expected.to_string()), "{tests:?}");
    }
    assert!(
        !plain.stdout.contains("qemu-utils"),
        "the build's list alone: {}",
        plain.stdout
    );
    let with_tests = ctx.sultana(&["deps", "--tests"]).success();
    assert!(
        with_tests.stdout.lines().any(|l| l == "qemu-utils"),
        "{}",
        with_tests.stdout
    );
    assert!(
        with_tests.stdout.lines().any(|l| l == "uuid-dev"),
        "{}",
        with_tests.stdout
    );

    // --install installs only what is missing: here nothing, so no apt-get
    // (and no root) is needed.
    if std::path::Path::new("/etc/debian_version").exists() {
        let up = ctx.upstream("tool");
        ctx.write("sultana.toml", &manifest(&[("tool", &up.url(), "master")]));
        ctx.write(
            "recipes/tool.toml",
            "kind = \"make\"\n[build_deps]\ndebian = [\"coreutils\", \"bash\"]\n",
        );
        ctx.sultana(&["deps", "--install"])
            .success()
            .stderr_has("nothing to do: all 2 package(s) are there")
            .stderr_lacks("Installing");
    }
}

#[test]
fn detect_reports_kernel_support() {
    let ctx = TestContext::new();
    let json = ctx.sultana(&["detect", "blktap", "--json"]).success().json();
    assert!(
        json["kernel"]["release"].as_str().is_some_and(|r| !r.is_empty()),
        "{json}"
    );
    assert!(json["kernel"]["gntdev_grant_copy"].is_boolean());
    assert_eq!(json["components"][0]["component"], "blktap");
}

/// A recipe's `depends` orders the build as the manifest's does: `a`,
/// listed first, needs `b` through its recipe and is built after it even at
/// -j1; a cycle through a recipe is refused, naming it.
#[test]
fn recipe_dependencies_order_the_build_and_cycles_are_named() {
    let ctx = TestContext::new();
    let a = ctx.upstream("a");
    let b = ctx.upstream("b");
    ctx.write(
        "sultana.toml",
        &manifest(&[("a", &a.url(), "master"), ("b", &b.url(), "master")]),
    );
    let stage = "[\"sh\", \"-c\", \"mkdir -p \\\"$1\\\" && touch \\\"$1/$2-built\\\"\", \"sh\", \"{destdir}{prefix}\"";
    ctx.write(
        "recipes/a.toml",
        &format!("kind = \"command\"\ndepends = [\"b\"]\ncommands = [[\"test\", \"-e\", \"{{dep.b.prefix}}/b-built\"]]\ninstall_commands = [{stage}, \"a\"]]\n"),
    );
    let b_recipe = format!("kind = \"command\"\ncommands = [[\"true\"]]\ninstall_commands = [{stage}, \"b\"]]\n");
    ctx.write("recipes/b.toml", &b_recipe);
    let run = ctx.sultana(&["-j1", "build"]).success();
    let (built_b, built_a) = (run.stderr.find("Built b").unwrap(), run.stderr.find("Built a").unwrap());
    assert!(built_b < built_a, "{}", run.stderr);

    ctx.write("recipes/b.toml", &format!("depends = [\"a\"]\n{b_recipe}"));
    ctx.sultana(&["build"])
        .code(2)
        .stderr_has("a dependency cycle: a → b → a");
    // A recipe that does not load is an error, not a component without dependencies.
    ctx.write("recipes/b.toml", "kind = \"nonsense\"\n");
    ctx.sultana(&["build", "a"]).code(2).stderr_has("recipes/b.toml");
}

/// One make jobserver for the whole build: `-j4` is four jobs in all, and a
/// component that starts beside another gets its slots when that one ends
/// (each used to keep the share it started with).
#[test]
#[cfg_attr(not(have_make), ignore = "needs make")]
fn one_jobserver_shares_the_slots_of_the_whole_build() {
    require("make", "the jobserver test");
    let ctx = TestContext::new();
    let running = ctx.dir("running");
    let counts = ctx.root.join("counts");
    // Each job registers while it runs and writes how many run at once.
    let job = |name: &str, seconds: &str| {
        format!(
            "{name}:\n\t@touch $(RUNNING)/$@-$(WHO); echo \"$(WHO) $$(ls $(RUNNING) | wc -l) $$(ls $(RUNNING) | grep -c -- -$(WHO))\" >> $(COUNTS); sleep {seconds}; rm $(RUNNING)/$@-$(WHO)\n"
        )
    };
    let quick = ctx.upstream("quick");
    // The quick one also says what make passes down.
    let flags = ctx.root.join("makeflags");
    quick.commit(
        &[(
            "Makefile",
            &format!(
                "all: q1\n\t@echo '$(MAKEFLAGS)' > {}\n{}install:\n.PHONY: all install q1\n",
                flags.display(),
                job("q1", "0.2")
            ),
        )],
        "quick",
    );
    let slow_jobs: Vec<String> = (1..=8).map(|i| format!("s{i}")).collect();
    let mut makefile = format!("all: {}\n", slow_jobs.join(" "));
    for j in &slow_jobs {
        makefile.push_str(&job(j, "1"));
    }
    makefile.push_str(&format!("install:\n.PHONY: all install {}\n", slow_jobs.join(" ")));
    let slow = ctx.upstream("slow");
    slow.commit(&[("Makefile", &makefile)], "slow");
    ctx.write(
        "sultana.toml",
        &format!(
            "[components.quick]\nurl = \"{}\"\nrevision = \"master\"\nrecipe = \"counted\"\n\n\
             [components.slow]\nurl = \"{}\"\nrevision = \"master\"\nrecipe = \"counted\"\n",
            quick.url(),
            slow.url()
        ),
    );
    ctx.write(
        "recipes/counted.toml",
        "kind = \"make\"\nbuild_dir = \"in-tree\"\nenv = [\"RUNNING\", \"COUNTS\"]\nset_env = { WHO = \"{name}\" }\nmake = [\"-j{jobs}\"]\ninstall = [\"install\"]\n",
    );
    let run = ctx
        .sultana_with(
            &ctx.work,
            "022",
            &[
                ("RUNNING", running.to_str().unwrap()),
                ("COUNTS", counts.to_str().unwrap()),
            ],
            &["-j", "4", "build", "--no-build-cache", "--no-ccache"],
        )
        .success()
        .stderr_has("-j4 shared");
    let counts = std::fs::read_to_string(&counts).unwrap();
    // (who, jobs of the whole build at once, its own at once)
    let at_once: Vec<(String, usize, usize)> = counts
        .lines()
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (
                words[0].to_string(),
                words[1].parse().unwrap(),
                words[2].parse().unwrap(),
            )
        })
        .collect();
    let most = at_once.iter().map(|(_, n, _)| *n).max().unwrap();
    assert!(most <= 4, "more than -j4 at once: {counts}\n{}", run.stderr);
    let slow_most = at_once
        .iter()
        .filter(|(w, _, _)| w == "slow")
        .map(|(_, _, n)| *n)
        .max()
        .unwrap();
    assert!(
        slow_most >= 3,
        "the slow build kept its first share after the quick one ended: {counts}"
    );
    // The count beside the jobserver, as make passes it down (QEMU hands
    // it to ninja).
    let flags = std::fs::read_to_string(&flags).unwrap();
    assert!(flags.contains("-j4") && flags.contains("--jobserver-auth="), "{flags}");
}

/// `install --destdir` resolves every folder it writes into as the kernel
/// would: a symlink staged by one component (absolute, or relative and
/// climbing out) never carries another component's files out of DESTDIR.
#[test]
fn install_never_follows_a_staged_symlink_out_of_destdir() {
    let ctx = TestContext::new();
    let a = ctx.upstream("a");
    a.commit(&[("Makefile", "all:\ninstall:\n")], "a");
    let b = ctx.upstream("b");
    b.commit(&[("Makefile", "all:\ninstall:\n")], "b");
    ctx.write(
        "sultana.toml",
        &format!(
            "[components.a]\nurl = \"{}\"\nrevision = \"master\"\nrecipe = \"plain\"\n\n\
             [components.b]\nurl = \"{}\"\nrevision = \"master\"\nrecipe = \"plain\"\ndepends = [\"a\"]\n",
            a.url(),
            b.url()
        ),
    );
    ctx.write("recipes/plain.toml", "kind = \"make\"\nbuild_dir = \"in-tree\"\n");
    ctx.sultana(&["build"]).success();
    let outside = ctx.dir("outside");
    let prefix = |c: &str| ctx.work.join("dist").join(c).join("usr/local");
    for (i, link) in [
        outside.display().to_string(),
        "../../../../../../../../../../../..".to_string() + &outside.display().to_string(),
    ]
    .iter()
    .enumerate()
    {
        let _ = std::fs::remove_file(prefix("a").join("share"));
        std::fs::create_dir_all(prefix("a")).unwrap();
        std::os::unix::fs::symlink(link, prefix("a").join("share")).unwrap();
        std::fs::create_dir_all(prefix("b").join("share/doc")).unwrap();
        std::fs::write(prefix("b").join("share/doc/evil"), "x").unwrap();
        let destdir = ctx.root.join(format!("destdir-{i}"));
        ctx.sultana(&["install", "--destdir", destdir.to_str().unwrap()])
            .code(2)
            .stderr_has("leads to no folder inside");
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "{link}: something was written outside DESTDIR"
        );
    }
    // A link that stays inside is followed as it always was.
    let _ = std::fs::remove_file(prefix("a").join("share"));
    std::fs::create_dir_all(prefix("a").join("data")).unwrap();
    std::os::unix::fs::symlink("data", prefix("a").join("share")).unwrap();
    let destdir = ctx.root.join("destdir-ok");
    ctx.sultana(&["install", "--destdir", destdir.to_str().unwrap()])
        .success();
    assert!(destdir.join("usr/local/data/doc/evil").is_file());
}

#[test]
#[cfg_attr(not(have_script), ignore = "needs script")]
fn a_long_step_shows_where_it_is_and_ctrl_c_is_an_interruption() {
    let ctx = TestContext::new();
    let up = ctx.upstream("slow");
    ctx.write("sultana.toml", &manifest(&[("slow", &up.url(), "master")]));
    let running = ctx.root.join("step-running");
    let recipe = |seconds: u32| {
        format!(
            "kind = \"command\"\ncommands = [[\"sh\", \"-c\", \"echo work42; touch {}; sleep {seconds}\"]]\n\
             install_commands = [[\"mkdir\", \"-p\", \"{{destdir}}{{prefix}}\"]]\n",
            running.display()
        )
    };
    // On a terminal the step shows its time and its log's last line (short
    // here: the line is cut to the terminal's 80 columns).
    ctx.write("recipes/slow.toml", &recipe(3));
    let run = ctx.sultana_on_terminal(&["build", "--no-build-cache"]).success();
    assert!(run.stdout.contains("s: work42"), "{}", run.stdout);

    // Ctrl-C in a step: said as an interruption, not as a failure of it.
    ctx.write("recipes/slow.toml", &recipe(30));
    let child = ctx
        .command(&ctx.work, &["build", "--no-build-cache"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A handshake: the step has started.
    let _ = std::fs::remove_file(&running);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !running.exists() {
        assert!(std::time::Instant::now() < deadline, "the step never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("slow: interrupted at"), "{stderr}");
    assert!(!stderr.contains("failed at"), "{stderr}");
}
