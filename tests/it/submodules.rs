//! Submodules (qemu-xen's way): fetched through the cache, recursively.

use crate::support::*;

fn manifest_with_submodules(url: &str) -> String {
    format!("[components.qemu]\nurl = \"{url}\"\nrevision = \"master\"\nsubmodules = true\n")
}

#[test]
fn submodules_are_fetched_and_checked_out_recursively() {
    let ctx = TestContext::new();
    let inner = ctx.upstream("inner");
    let inner_v1 = inner.commit(&[("inner.c", "inner v1\n")], "inner v1");
    let middle = ctx.upstream("middle");
    middle.add_submodule("inner", "deps/inner", "../inner", inner_v1);
    let middle_v1 = middle.head();
    let top = ctx.upstream("top");
    top.add_submodule("middle", "ext/middle", "../middle", middle_v1);
    ctx.write("sultana.toml", &manifest_with_submodules(&top.url()));

    ctx.sultana(&["fetch"]).success().stderr_has("submodule ext/middle");
    assert_eq!(ctx.head("qemu/ext/middle"), middle_v1);
    assert_eq!(ctx.head("qemu/ext/middle/deps/inner"), inner_v1);
    assert_eq!(ctx.read("qemu/ext/middle/deps/inner/inner.c"), "inner v1\n");
    ctx.sultana(&["status"]).success().stdout_has("clean");

    // The parent moves its gitlink: update moves the submodule with it.
    let inner_v2 = inner.commit(&[("inner.c", "inner v2\n")], "inner v2");
    middle.bump_submodule("deps/inner", inner_v2);
    top.bump_submodule("ext/middle", middle.head());
    ctx.sultana(&["update"]).success();
    assert_eq!(ctx.read("qemu/ext/middle/deps/inner/inner.c"), "inner v2\n");

    // Local work inside a submodule blocks the update like any other.
    ctx.write("qemu/ext/middle/deps/inner/inner.c", "hack\n");
    top.commit(&[("x", "x")], "unrelated");
    ctx.sultana(&["update"])
        .code(2)
        .stderr_has("changes in submodule(s) ext/middle");

    // A second workspace gets everything from the cache, offline.
    let second = ctx.dir("second");
    for file in ["sultana.toml", "sultana.lock"] {
        std::fs::copy(ctx.work.join(file), second.join(file)).unwrap();
    }
    ctx.sultana_in(&second, &["fetch", "--offline"]).success();
    assert_eq!(
        std::fs::read_to_string(second.join("qemu/ext/middle/deps/inner/inner.c")).unwrap(),
        "inner v2\n"
    );
}

#[test]
fn hostile_submodule_paths_and_urls_are_refused() {
    let ctx = TestContext::new();
    let inner = ctx.upstream("inner");
    let top = ctx.upstream("top");
    top.add_submodule("evil", "sub", "../inner", inner.head());
    // .gitmodules is upstream data: it claims the submodule lives outside.
    top.commit(
        &[(
            ".gitmodules",
            "[submodule \"evil\"]\n\tpath = ../escape\n\turl = ../inner\n",
        )],
        "evil",
    );
    ctx.write("sultana.toml", &manifest_with_submodules(&top.url()));
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("submodule `evil`")
        .stderr_has("..");
    assert!(!ctx.root.join("escape").exists());

    let top2 = ctx.upstream("top2");
    top2.add_submodule("evil", "sub", "ext::sh -c touch% pwned", inner.head());
    ctx.write("sultana.toml", &manifest_with_submodules(&top2.url()));
    std::fs::remove_dir_all(ctx.work.join("qemu")).ok();
    ctx.sultana(&["fetch"]).code(2).stderr_has("transport");

    // A `..` inside an absolute url climbs out of where it seems to point
    // (through a rewrite to a local mirror, anywhere on this machine).
    let private = ctx.upstream("private");
    let top3 = ctx.upstream("top3");
    top3.add_submodule(
        "evil",
        "sub",
        "https://example.invalid/mirror/../private",
        private.head(),
    );
    ctx.write("sultana.toml", &manifest_with_submodules(&top3.url()));
    std::fs::remove_dir_all(ctx.work.join("qemu")).ok();
    ctx.sultana(&["fetch"]).code(2).stderr_has("with `..` inside");
    assert!(!ctx.work.join("qemu/sub/README").exists());
}

/// `git daemon` serving `base` on a free loopback port, stopped on drop.
struct Daemon(std::process::Child, u16);

impl Daemon {
    fn serve(base: &std::path::Path) -> Option<Daemon> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        // The daemon itself (not `git daemon`, which leaves it behind when
        // killed), from the exec path of the git on PATH.
        let exec_path = std::process::Command::new("git").arg("--exec-path").output().ok()?;
        let exec_path = String::from_utf8(exec_path.stdout).ok()?;
        let child = std::process::Command::new(std::path::Path::new(exec_path.trim()).join("git-daemon"))
            .args(["--export-all", "--listen=127.0.0.1", "--reuseaddr"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Daemon(child, port));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_remote_tree_never_pulls_in_a_local_repository_as_a_submodule() {
    let ctx = TestContext::new();
    let private = ctx.upstream("private");
    private.commit(&[("secret.txt", "private\n")], "private");
    let top = ctx.upstream("top");
    top.add_submodule(
        "private",
        "ext/private",
        &private.path.display().to_string(),
        private.head(),
    );
    let daemon = Daemon::serve(&ctx.upstreams).expect("git daemon on loopback");
    let remote = format!("git://127.0.0.1:{}/top", daemon.1);
    ctx.write("sultana.toml", &manifest_with_submodules(&remote));
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("points at a repository on this machine");
    assert!(!ctx.work.join("qemu/ext/private/secret.txt").exists());
    // Given as a local url itself, the same tree may use local submodules.
    ctx.write("sultana.toml", &manifest_with_submodules(&top.url()));
    let _ = std::fs::remove_dir_all(ctx.work.join("qemu"));
    let _ = std::fs::remove_file(ctx.work.join("sultana.lock"));
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.read("qemu/ext/private/secret.txt"), "private\n");
}

/// qemu-xen's case: its submodules name `git://` hosts a firewall drops.
/// A `[url_rewrites]` rule in sultana.local.toml sends the component and
/// its submodules elsewhere; the lock, the checkout's own config and the
/// tarball keep the urls as written.
#[test]
fn url_rewrites_reach_components_and_submodules_and_a_list_picks_submodules() {
    let ctx = TestContext::new();
    // Nothing listens on the discard port: every fetch there fails at once.
    let dead = "git://127.0.0.1:9/";
    let inner = ctx.upstream("inner");
    let other = ctx.upstream("other");
    let top = ctx.upstream("top");
    top.add_submodule("inner", "ext/inner", &format!("{dead}inner"), inner.head());
    top.add_submodule("other", "ext/other", &format!("{dead}other"), other.head());
    let manifest = |submodules: &str| {
        format!(
            "[tarball]\nroot = \"qemu\"\n\n[components.qemu]\nurl = \"{dead}top\"\nrevision = \"master\"\nsubmodules = {submodules}\n"
        )
    };
    ctx.write("sultana.toml", &manifest("true"));
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("could not fetch git://127.0.0.1:9/top")
        .stderr_has("[url_rewrites]");

    let to = format!("{}/", ctx.upstreams.display());
    ctx.write(
        "sultana.local.toml",
        &format!("[url_rewrites]\n\"{dead}\" = \"{to}\"\n"),
    );
    ctx.write("sultana.toml", &manifest("[\"ext/inner\"]"));
    ctx.sultana(&["fetch"])
        .success()
        .stderr_has(&format!("(rewritten to {to}"));
    assert_eq!(ctx.read("qemu/ext/inner/README"), "inner");
    // Not asked for: an empty folder, as git leaves an inactive submodule.
    assert!(!ctx.work.join("qemu/ext/other/README").exists());
    let lock = ctx.read("sultana.lock");
    assert!(lock.contains(&format!("url = \"{dead}top\"")), "{lock}");
    assert!(!lock.contains(&to), "the rewrite stays out of the lock:\n{lock}");
    let config = ctx.read("qemu/.git/config");
    assert!(config.contains(&format!("url = {dead}inner")), "{config}");
    // git in the checkout fetches as sultana does, and has origin's names.
    assert!(config.contains(&format!("insteadOf = {dead}")), "{config}");
    let origin = std::process::Command::new("git")
        .args(["rev-parse", "--verify", "-q", "origin/master"])
        .current_dir(ctx.work.join("qemu"))
        .output()
        .unwrap();
    assert!(origin.status.success(), "no origin/master in the checkout");

    // The tarball holds only the submodule asked for, and its manifest the list.
    ctx.sultana(&["tarball", "--desc", "1.0"]).success();
    let listing = tar_listing(&ctx.work.join("dist/qemu-1.0.tar.gz"));
    assert!(listing.iter().any(|p| p == "qemu-1.0/ext/inner/README"), "{listing:?}");
    assert!(!listing.iter().any(|p| p == "qemu-1.0/ext/other/README"), "{listing:?}");
    let embedded = tar_file(&ctx.work.join("dist/qemu-1.0.tar.gz"), "qemu-1.0/sultana.toml");
    assert!(embedded.contains("submodules = [\"ext/inner\"]"), "{embedded}");
    assert!(!embedded.contains(&to), "{embedded}");

    // Another machine without the network: verify-tarball is told where
    // the mirror is; without it, the hint names the option, not a file.
    let fresh = ctx.dir("fresh-cache");
    let file = ctx.work.join("dist/qemu-1.0.tar.gz");
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify-tarball", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        ctx.sultana_with(&ctx.root, "022", &[("XDG_CACHE_HOME", fresh.to_str().unwrap())], &args)
    };
    verify(&[])
        .code(2)
        .stderr_has("--url-rewrite FROM=TO")
        .stderr_lacks("sultana.toml");
    let rule = format!("{dead}={to}");
    verify(&["--url-rewrite", &rule]).success().stdout_has("identical");
    // A value it cannot honour is refused, not ignored.
    verify(&["--set", "qemu.url=/elsewhere"])
        .code(2)
        .stderr_has("cannot apply");

    // Another choice: the one no longer asked for is emptied (as git's
    // `submodule deinit`), the new one checked out; local work would stay.
    ctx.write("sultana.toml", &manifest("[\"ext/other\"]"));
    ctx.sultana(&["fetch"]).success().stderr_has("Emptied");
    assert!(!ctx.work.join("qemu/ext/inner/README").exists());
    assert!(ctx.work.join("qemu/ext/inner").is_dir());
    assert_eq!(ctx.read("qemu/ext/other/README"), "other");
    ctx.write("qemu/ext/other/mine.txt", "work\n");
    ctx.write("sultana.toml", &manifest("[\"ext/inner\"]"));
    ctx.sultana(&["fetch"]).success().stderr_has("has local work");
    assert_eq!(ctx.read("qemu/ext/other/mine.txt"), "work\n");
    std::fs::remove_file(ctx.work.join("qemu/ext/other/mine.txt")).unwrap();

    // A listed path the tree does not have: said, with what it has.
    ctx.write("sultana.toml", &manifest("[\"ext/nope\"]"));
    ctx.sultana(&["fetch"])
        .code(2)
        .stderr_has("ext/nope")
        .stderr_has("it has: ext/inner, ext/other");
    // A rewrite that would make an option or a transport: refused with its place.
    ctx.write(
        "sultana.local.toml",
        &format!("[url_rewrites]\n\"{dead}\" = \"ext::sh\"\n"),
    );
    ctx.sultana(&["fetch"]).code(2).stderr_has("sultana.local.toml:2:");
}

/// What a workspace learns through its rewrite rule is that place's, not
/// the url's: another workspace on the same cache that fetches the url
/// itself never resolves a tag to the other place's commit, and a release
/// made from the rewritten place sends no one to the url for it.
#[test]
fn names_learned_through_a_rewrite_stay_apart_from_the_urls() {
    let ctx = TestContext::new();
    let real = ctx.upstream("real");
    real.tag("v1", false);
    let good = real.head();
    let fork_path = ctx.upstreams.join("fork");
    git2::Repository::clone(&real.url(), &fork_path).unwrap();
    let fork = Upstream::open(&fork_path);
    let evil = fork.commit(&[("evil", "x\n")], "evil");
    fork.repo
        .tag_lightweight("v1", &fork.repo.find_object(evil, None).unwrap(), true)
        .unwrap();
    let manifest = format!(
        "[tarball]\nroot = \"c\"\nname = \"c-{{desc}}\"\n\n[components.c]\nurl = \"{}\"\nrevision = \"v1\"\n",
        real.url()
    );
    let a = ctx.dir("ws-a");
    let b = ctx.dir("ws-b");
    for ws in [&a, &b] {
        std::fs::write(ws.join("sultana.toml"), &manifest).unwrap();
    }
    std::fs::write(
        a.join("sultana.local.toml"),
        format!("[url_rewrites]\n\"{}\" = \"{}\"\n", real.url(), fork.url()),
    )
    .unwrap();
    ctx.sultana_in(&a, &["fetch"]).success().stderr_has("rewritten to");
    assert_eq!(
        git2::Repository::open(a.join("c"))
            .unwrap()
            .head()
            .unwrap()
            .target()
            .unwrap(),
        evil
    );
    // The rewritten place's commit: the SBOMs name no download location.
    ctx.sultana_in(&a, &["tarball", "--desc", "1"])
        .success()
        .stderr_has("itself was never seen holding this commit");
    let sbom: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("dist/c-1.spdx.json")).unwrap()).unwrap();
    assert_eq!(sbom["packages"][0]["downloadLocation"], "NOASSERTION");
    // The other workspace fetches the url: its v1, not the fork's.
    ctx.sultana_in(&b, &["fetch"]).success();
    assert_eq!(
        git2::Repository::open(b.join("c"))
            .unwrap()
            .head()
            .unwrap()
            .target()
            .unwrap(),
        good
    );
    assert!(!b.join("c/evil").exists());
    ctx.sultana_in(&b, &["lock", "--check"]).success();
}
