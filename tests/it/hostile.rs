//! Hostile and broken manifests: exit 2, one line naming file:line:column,
//! nothing executed, nothing written.

use std::path::Path;

use crate::support::*;

fn assert_refused(ctx: &TestContext, text: &str, needle: &str) {
    ctx.write("sultana.toml", text);
    let run = ctx.sultana(&["fetch"]).code(2).stderr_has(needle);
    let first = run.stderr.lines().next().unwrap_or_default().to_string();
    assert!(first.starts_with("error: "), "{}", run.stderr);
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "{}",
        run.stderr
    );
    assert_eq!(
        files_below(&ctx.work),
        vec!["sultana.toml".to_string()],
        "nothing written"
    );
    assert!(files_below(&ctx.cache).is_empty(), "nothing cached");
}

#[test]
fn hostile_manifest_values_are_refused_before_any_git_call() {
    let ctx = TestContext::new();
    let pwned = ctx.root.join("pwned");
    let up = ctx.upstream("up");
    let url = up.url();
    let component = |body: &str| format!("[components.x]\n{body}\n");
    let cases: Vec<(String, &str)> = vec![
        (component(&format!("url = \"ext::sh -c touch% {}\"\nrevision = \"master\"", pwned.display())), "sultana.toml:2:7: URL `ext::sh"),
        (component("url = \"fd::7\"\nrevision = \"master\""), "`fd::` transport"),
        (component("url = \"--upload-pack=touch /tmp/x\"\nrevision = \"master\""), "looks like a command-line option"),
        (component(&format!("url = \"{url}\"\nrevision = \"--upload-pack=touch {}\"", pwned.display())), "sultana.toml:3:12: revision"),
        (component(&format!("url = \"{url}\"\nrevision = \"-b\"")), "looks like a command-line option"),
        (component(&format!("url = \"{url}\"\nrevision = \"HEAD~1\"")), "not a valid branch"),
        (component(&format!("url = \"{url}\"\nrevision = \"master\"\npath = \"/etc\"")), "sultana.toml:4:8: path `/etc` is absolute"),
        (component(&format!("url = \"{url}\"\nrevision = \"master\"\npath = \"../outside\"")), "contains `..`"),
        (component(&format!("url = \"{url}\"\nrevision = \"master\"\npath = \"a/.git/hooks\"")), "`.git` folder"),
        (component(&format!("url = \"{url}\"\nrevision = \"master\"\nintree = \"../../x\"")), "contains `..`"),
        (component(&format!("url = \"{url}\"\nrevision = \"master\"\nhooks = \"rm -rf /\"")), "sultana.toml:4:1: unknown field `hooks`"),
        (component(&format!("url = \"{url}\"\nrevision = 7")), "sultana.toml:3:12:"),
        (component(&format!("url = \"{url}\"\nrevision = \"master\"\nmirrors = [\"ext::sh\"]")), "transport"),
        (component(&format!("url = \"{url}\"")), "has no `revision`"),
        (component("revision = \"master\""), "has no `url`"),
        (format!("[components.Bad]\nurl = \"{url}\"\nrevision = \"master\"\n"), "sultana.toml:1:13: invalid component name"),
        (format!("[components.a]\nurl = \"{url}\"\nrevision = \"master\"\ndepends = [\"b\"]\n[components.b]\nurl = \"{url}\"\nrevision = \"master\"\ndepends = [\"a\"]\n"), "dependency cycle: a -> b -> a"),
        (format!("[components.a]\nurl = \"{url}\"\nrevision = \"master\"\npath = \"x\"\n[components.b]\nurl = \"{url}\"\nrevision = \"master\"\npath = \"x\"\n"), "both use path `x`"),
        (format!("[components.a]\nurl = \"{url}\"\nrevision = \"master\"\n[components.a]\nurl = \"{url}\"\n"), "sultana.toml:4:"),
        ("[workspace\nname = 1\n".to_string(), "sultana.toml:1:"),
        ("[tarball]\nroot = \"nothing\"\n".to_string(), "tarball root `nothing` is not a component"),
    ];
    for (text, needle) in &cases {
        assert_refused(&ctx, text, needle);
    }
    assert!(!pwned.exists(), "a manifest value was executed");
}

#[test]
fn hostile_lock_and_local_override_values_are_refused() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    let commit = up.head();
    ctx.write(
        "sultana.lock",
        &format!(
            "[[component]]\nname = \"up\"\nurl = \"ext::sh -c id\"\nrevision = \"master\"\ncommit = \"{commit}\"\n"
        ),
    );
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("sultana.lock:3:7:")
        .stderr_has("transport");
    ctx.write(
        "sultana.lock",
        "[[component]]\nname = \"up\"\nurl = \"https://h/x\"\nrevision = \"master\"\ncommit = \"abc\"\n",
    );
    ctx.sultana(&["fetch"]).code(2).stderr_has("40-hex");
    std::fs::remove_file(ctx.work.join("sultana.lock")).unwrap();

    ctx.write("sultana.local.toml", "[components.up]\nrevision = \"--all\"\n");
    ctx.sultana(&["fetch"]).code(2).stderr_has("sultana.local.toml:2:12:");
    ctx.write("sultana.local.toml", "[components.nope]\nrevision = \"master\"\n");
    ctx.sultana(&["fetch"]).code(2).stderr_has("no component `nope`");
    ctx.write(
        "sultana.local.toml",
        "[components.up]\npath = \"/x\"\nurl = \"https://h/x\"\n",
    );
    ctx.sultana(&["fetch"]).code(2).stderr_has("cannot be combined");
    std::fs::remove_file(ctx.work.join("sultana.local.toml")).unwrap();

    for bad in [
        "up.revision=-x",
        "up.url=ext::sh",
        "up.colour=red",
        "nope.revision=x",
        "junk",
    ] {
        ctx.sultana(&["fetch", "--set", bad]).code(2).stderr_has("--set");
    }
    assert!(!ctx.work.join("up").exists());
}

#[test]
fn a_path_occupied_by_something_else_is_not_overwritten() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.write("up/precious.txt", "mine\n");
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("exists but is not a git checkout");
    assert_eq!(ctx.read("up/precious.txt"), "mine\n");
}

#[test]
fn bad_command_lines_exit_2_and_help_exits_0() {
    let ctx = TestContext::new();
    ctx.sultana(&["frobnicate"]).code(2);
    ctx.sultana(&["fetch", "--no-such-flag"]).code(2);
    ctx.sultana(&["--help"]).success().stdout_has("fetch");
    ctx.sultana(&["help", "update"]).success().stdout_has("--force");
}

/// Every file of `tests/corpus/hostile/` is placed where its name says
/// (`manifest-` → sultana.toml, `lock-` → sultana.lock, `local-` →
/// sultana.local.toml, `recipe-` → recipes/up.toml) and must be refused with
/// exit 2, one `error:` line holding the file's `# expect:` needle, nothing
/// executed and nothing written outside the workspace.
#[test]
fn the_hostile_corpus_is_refused() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/hostile");
    let mut entries: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    assert!(entries.len() >= 70, "the corpus lost files");
    let mut failures = Vec::new();
    for path in &entries {
        let file_name = path.file_name().unwrap().to_string_lossy().to_string();
        let ctx = TestContext::new();
        let up = ctx.upstream("up");
        let pwned = ctx.root.join("pwned");
        let raw = std::fs::read_to_string(path).unwrap();
        let needle = raw
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{file_name}: first line must be `# expect: …`"))
            .to_string();
        // The expectation line is dropped so line numbers in needles match the body.
        let body = raw
            .split_once('\n')
            .map(|(_, rest)| rest)
            .unwrap_or_default()
            .replace("@URL@", &up.url())
            .replace("@COMMIT@", &up.head().to_string())
            .replace("@PWNED@", &pwned.display().to_string());
        let plain_manifest = manifest(&[("up", &up.url(), "master")]);
        let (target, command) = match file_name.split('-').next() {
            Some("manifest") => ("sultana.toml", "fetch"),
            Some("lock") => ("sultana.lock", "fetch"),
            Some("local") => ("sultana.local.toml", "fetch"),
            Some("recipe") => ("recipes/up.toml", "build"),
            _ => panic!("{file_name}: unknown corpus kind"),
        };
        if target != "sultana.toml" {
            ctx.write("sultana.toml", &plain_manifest);
        }
        ctx.write(target, &body);
        let run = ctx.sultana_with(&ctx.work, "022", &[], &[command]);
        let first = run.stderr.lines().next().unwrap_or_default();
        let problems = [
            (run.code != Some(2), format!("exit {:?}", run.code)),
            (!first.starts_with("error: "), "first line is not `error:`".into()),
            (!run.stderr.contains(&needle), format!("no `{needle}`")),
            (run.stderr.contains("panicked"), "panicked".into()),
            (pwned.exists(), "a value was executed".into()),
            (
                top_level(&ctx.root) != ["cache", "home", "upstreams", "work"],
                "wrote outside".into(),
            ),
            (!files_below(&ctx.cache).is_empty(), "cached before refusing".into()),
        ];
        for (bad, what) in problems {
            if bad {
                failures.push(format!("{file_name}: {what}\n{}", run.stderr));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn top_level(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

/// No `.sultana-new` or other half-made checkout is left in the workspace.
fn no_half_made_checkouts(ctx: &TestContext) {
    let leftovers: Vec<String> = top_level(&ctx.work)
        .into_iter()
        .filter(|name| name.contains("sultana-new") || name.starts_with(".sultana-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_upstream_tree_with_a_git_entry_is_refused_and_nothing_is_written() {
    let ctx = TestContext::new();
    let outside = ctx.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let up = ctx.upstream("up");
    let good = up.head();
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();

    let readme = up.blob(b"evil\n");
    let gitdir = up.blob(format!("gitdir: {}\n", outside.display()).as_bytes());
    let hook = up.blob(format!("#!/bin/sh\ntouch {}/pwned\n", outside.display()).as_bytes());
    let hooks = up.raw_tree(&[(0o100755, b"post-checkout", hook)]);
    let dot_git_dir = up.raw_tree(&[(0o40000, b"hooks", hooks)]);
    let nested = up.raw_tree(&[(0o100644, b".git", gitdir), (0o100644, b"README", readme)]);
    let hostile_trees = [
        (
            "a `.git` file",
            up.raw_tree(&[(0o100644, b".git", gitdir), (0o100644, b"README", readme)]),
            "`.git`",
        ),
        (
            "a `.git` folder with a hook",
            up.raw_tree(&[(0o40000, b".git", dot_git_dir), (0o100644, b"README", readme)]),
            "`.git`",
        ),
        (
            "a `.git` file in a subfolder",
            up.raw_tree(&[(0o100644, b"README", readme), (0o40000, b"sub", nested)]),
            "`sub/.git`",
        ),
    ];
    let mut refused = Vec::new();
    for (what, tree, entry) in hostile_trees {
        let bad = up.commit_tree(tree, what);
        refused.push(bad);
        // An existing checkout moved to it: refused, left where it was,
        // naming the entry.
        ctx.sultana(&["update"])
            .code(2)
            .stderr_has("git never checks out")
            .stderr_has(entry);
        assert_eq!(ctx.head("up"), good, "{what}");
        assert_eq!(ctx.read("up/README"), "up", "{what}");
        no_half_made_checkouts(&ctx);
        // A new checkout of it: refused, nothing placed.
        let fresh = TestContext::new();
        fresh.write(
            "sultana.toml",
            &format!("[components.up]\nurl = \"{}\"\nrevision = \"{bad}\"\n", up.url()),
        );
        fresh.sultana(&["fetch"]).code(2).stderr_has("git never checks out");
        assert!(!fresh.work.join("up").exists(), "{what}");
        no_half_made_checkouts(&fresh);
        assert!(files_below(&outside).is_empty(), "{what}: written outside");
        // Back to the good commit for the next case.
        up.repo.reference("refs/heads/master", good, true, "reset").unwrap();
    }
    // No refused move leaves a marker behind, and one a run killed right
    // after writing it left (as an older sultana wrote it first) is void.
    let marker = ctx.work.join("up/.git/sultana-moving");
    assert!(!marker.exists(), "a refused move left its marker");
    std::fs::write(&marker, format!("from {good}\nto {}\n", refused[0])).unwrap();
    let status = ctx.sultana(&["status", "--json"]).success().json();
    assert!(status["components"][0]["interrupted_move"].is_null(), "{status}");
    // Upstream fixed: the checkout moves on, never stuck on a refused move.
    let fixed = up.commit(&[("README", "fixed\n")], "fixed");
    ctx.sultana(&["update"]).success();
    assert!(!marker.exists());
    assert_eq!(ctx.head("up"), fixed);
    assert_eq!(ctx.read("up/README"), "fixed\n");
}

#[test]
fn an_upstream_symlink_escaping_the_checkout_is_refused_and_never_followed() {
    let ctx = TestContext::new();
    let outside = ctx.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let up = ctx.upstream("up");
    // A folder that becomes a link out of the checkout (and back): the link
    // is refused, so nothing is ever written through it.
    up.commit(&[("dir/file", "inside\n")], "a folder");
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let before = ctx.head("up");
    let target = outside.display().to_string();
    let link = up.blob(target.as_bytes());
    let readme = up.blob(b"up");
    up.commit_tree(
        up.raw_tree(&[(0o100644, b"README", readme), (0o120000, b"dir", link)]),
        "dir becomes a link out",
    );
    ctx.sultana(&["update"])
        .code(2)
        .stderr_has("symlink that is refused: `dir`");
    assert_eq!(ctx.head("up"), before, "the checkout did not move");
    assert!(std::fs::symlink_metadata(ctx.work.join("up/dir")).unwrap().is_dir());
    // A fresh checkout of it is refused too, and nothing half made is left.
    let second = ctx.dir("second");
    std::fs::copy(ctx.work.join("sultana.toml"), second.join("sultana.toml")).unwrap();
    ctx.sultana_in(&second, &["fetch"])
        .code(2)
        .stderr_has("symlink that is refused");
    assert!(!second.join("up").exists());
    let file = up.blob(b"through the link?\n");
    let dir = up.raw_tree(&[(0o100644, b"file", file)]);
    up.commit_tree(
        up.raw_tree(&[(0o100644, b"README", readme), (0o40000, b"dir", dir)]),
        "dir is a folder again",
    );
    ctx.sultana(&["update"]).success();
    assert!(std::fs::symlink_metadata(ctx.work.join("up/dir")).unwrap().is_dir());
    assert_eq!(ctx.read("up/dir/file"), "through the link?\n");
    assert!(files_below(&outside).is_empty(), "written through the link");
    no_half_made_checkouts(&ctx);
}

#[test]
fn a_symlink_chain_out_of_an_upstream_tree_is_refused() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    up.commit_symlink_chain_out();
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("`esc` points to `self/self/../..`, which leads outside the tree");
    assert!(!ctx.work.join("up").exists());
    no_half_made_checkouts(&ctx);
}

#[test]
fn symlinked_workspace_folders_pointing_outside_are_refused() {
    let ctx = TestContext::new();
    let outside = ctx.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let up = ctx.upstream("up");
    let text = format!(
        "[components.up]\nurl = \"{}\"\nrevision = \"master\"\n\n[components.deep]\nurl = \"{}\"\nrevision = \"master\"\npath = \"sub/deep\"\n",
        up.url(),
        up.url()
    );
    ctx.write("sultana.toml", &text);
    for place in ["up", "sub", "build", "dist", ".sultana"] {
        let link = ctx.work.join(place);
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        ctx.sultana(&["fetch"]).code(2).stderr_has(&format!(
            "`{place}` is a symlink to `{}`, outside the workspace",
            outside.display()
        ));
        assert!(files_below(&outside).is_empty(), "{place}: written outside");
        std::fs::remove_file(&link).unwrap();
    }
    // A dangling link is refused too; a link that stays inside is followed.
    std::os::unix::fs::symlink(ctx.root.join("nowhere"), ctx.work.join("build")).unwrap();
    ctx.sultana(&["fetch"]).code(2).stderr_has("which does not exist");
    std::fs::remove_file(ctx.work.join("build")).unwrap();
    std::fs::create_dir(ctx.work.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("elsewhere", ctx.work.join("sub")).unwrap();
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.read("elsewhere/deep/README"), "up");
    assert!(files_below(&outside).is_empty());
}

/// The demo's manifest names its folder in file:// URLs: a folder with a
/// quote still gives a manifest that parses and fetches; one a URL cannot
/// hold (a space) is refused before anything is made.
#[test]
fn a_demo_folder_with_quotes_works_and_one_with_a_space_is_refused() {
    let ctx = TestContext::new();
    let quoted = ctx.root.join("it's \"quoted\"".replace(' ', "_"));
    let run = ctx.sultana_in(&ctx.root, &["demo", "--setup-only", quoted.to_str().unwrap()]);
    let run = run.success();
    assert!(run.stderr.contains("Created"), "{}", run.stderr);
    ctx.sultana_in(&quoted.join("workspace"), &["fetch"]).success();

    let spaced = ctx.root.join("with space");
    ctx.sultana_in(&ctx.root, &["demo", "--setup-only", spaced.to_str().unwrap()])
        .code(2)
        .stderr_has("contains the character ' '; give `sultana demo` another folder");
    assert!(!spaced.exists(), "nothing is made");
}
