//! The build cache's remote tier in a real OCI registry (Debian's
//! docker-registry on loopback): entries pushed signed from one machine's
//! cache restore into another's only when a trusted key signed them and
//! every blob is the one named; anything else is said and the component
//! builds.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::*;

/// A docker-registry on a free loopback port, its storage in `dir`.
struct Registry {
    child: Child,
    port: u16,
    storage: PathBuf,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        // Ready when it answers (a handshake, not a sleep).
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Registry { child, port, storage };
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("docker-registry did not listen on {port}");
    }

    fn url(&self, repo: &str) -> String {
        format!("oci://127.0.0.1:{}/{repo}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A component whose build writes a file; its build counts its runs.
fn workspace(ctx: &TestContext, dir: &Path, up: &Upstream) {
    std::fs::write(dir.join("sultana.toml"), manifest(&[("thing", &up.url(), "master")])).unwrap();
    std::fs::create_dir_all(dir.join("recipes")).unwrap();
    std::fs::write(
        dir.join("recipes/thing.toml"),
        format!(
            "kind = \"command\"\ncommands = [[\"sh\", \"-c\", \"echo built >> {}\"]]\n\
             install_commands = [[\"sh\", \"-c\", \"mkdir -p {{destdir}}{{prefix}}/bin && printf '#!/bin/sh\\\\necho thing\\\\n' > {{destdir}}{{prefix}}/bin/thing && chmod 755 {{destdir}}{{prefix}}/bin/thing && mkdir -p {{destdir}}{{prefix}}/etc && echo secret > {{destdir}}{{prefix}}/etc/thing.conf && chmod 600 {{destdir}}{{prefix}}/etc/thing.conf\"]]\n",
            ctx.root.join("builds.log").display()
        ),
    )
    .unwrap();
}

#[test]
#[cfg_attr(not(all(have_docker_registry, have_gpg)), ignore = "needs docker-registry, gpg")]
fn signed_builds_travel_through_a_registry_and_nothing_else_restores() {
    require(
        "docker-registry",
        "the build cache's remote tier (Debian's docker-registry)",
    );
    require("gpg", "signing build cache entries (Debian gpg)");
    let ctx = TestContext::new();
    let mut registry = Registry::start(&ctx.dir("registry"));
    let gpg = Gpg::new(&ctx);
    let fprs = [
        gpg.new_key("Signer", "ci@example.org"),
        gpg.new_key("Signer", "stranger@example.org"),
    ];
    let home = gpg.home.to_str().unwrap().to_string();
    let up = ctx.upstream("thing");
    let builds = || {
        std::fs::read_to_string(ctx.root.join("builds.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };

    // The CI baseline job: build, push signed.
    let a = ctx.dir("ws-a");
    workspace(&ctx, &a, &up);
    let cache_a = ctx.dir("cache-a");
    let run = |dir: &Path, cache: &Path, env: &[(&str, &str)], args: &[&str]| {
        let mut all = vec![
            ("GNUPGHOME", home.as_str()),
            ("XDG_CACHE_HOME", cache.to_str().unwrap()),
        ];
        all.extend_from_slice(env);
        ctx.sultana_with(dir, "022", &all, args)
    };
    run(&a, &cache_a, &[], &["build"]).success();
    assert_eq!(builds(), 1);
    let good = registry.url("sultana/cache");
    run(
        &a,
        &cache_a,
        &[],
        &[
            "cache",
            "push",
            "--sign",
            "ci@example.org",
            "--build-cache-remote",
            &good,
        ],
    )
    .success()
    .stderr_has("Pushed thing");
    run(&a, &cache_a, &[("SULTANA_BUILD_CACHE_REMOTE", &good)], &["cache"])
        .success()
        .stdout_has("remote")
        .stdout_has("of this workspace's 1 builds");

    // Another machine: a fresh cache restores it, trusting that key.
    let b = ctx.dir("ws-b");
    workspace(&ctx, &b, &up);
    std::fs::copy(a.join("sultana.lock"), b.join("sultana.lock")).unwrap();
    let trusted = [
        ("SULTANA_BUILD_CACHE_REMOTE", good.as_str()),
        ("SULTANA_BUILD_CACHE_TRUST", fprs[0].as_str()),
    ];
    let cache_b = ctx.dir("cache-b");
    run(&b, &cache_b, &trusted, &["build"])
        .success()
        .stderr_has("Pulled thing");
    assert_eq!(builds(), 1, "restored, not built");
    // Modes as they were (a 0600 file too).
    let mode = std::fs::metadata(b.join("dist/thing/usr/local/etc/thing.conf"))
        .unwrap()
        .permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(b.join("dist/thing/usr/local/bin/thing")).unwrap(),
        "#!/bin/sh\necho thing\n"
    );

    // Trusting only another key: refused, built.
    let cache_c = ctx.dir("cache-c");
    std::fs::remove_dir_all(b.join("dist")).unwrap();
    let _ = std::fs::remove_dir_all(b.join("build"));
    let other = [
        ("SULTANA_BUILD_CACHE_REMOTE", good.as_str()),
        ("SULTANA_BUILD_CACHE_TRUST", fprs[1].as_str()),
    ];
    run(&b, &cache_c, &other, &["build"])
        .success()
        .stderr_has(&format!("signed by key {}, which is not trusted", fprs[0]));
    assert_eq!(builds(), 2);

    // Signed by the stranger, trusted key expected: refused too.
    let strange = registry.url("sultana/strange");
    run(
        &a,
        &cache_a,
        &[],
        &[
            "cache",
            "push",
            "--sign",
            "stranger@example.org",
            "--build-cache-remote",
            &strange,
        ],
    )
    .success();
    let cache_d = ctx.dir("cache-d");
    std::fs::remove_dir_all(b.join("dist")).unwrap();
    let strange_env = [
        ("SULTANA_BUILD_CACHE_REMOTE", strange.as_str()),
        ("SULTANA_BUILD_CACHE_TRUST", fprs[0].as_str()),
    ];
    run(&b, &cache_d, &strange_env, &["build"])
        .success()
        .stderr_has("which is not trusted");
    assert_eq!(builds(), 3);

    // A GitLab CI build job pushes what it built when the project gives
    // it a key; the next machine pulls that.
    let ci = registry.url("sultana/ci");
    let head = up.head().to_string();
    let cache_g = ctx.dir("cache-g");
    let ci_env = [
        ("SULTANA_BUILD_CACHE_REMOTE", ci.as_str()),
        ("SULTANA_BUILD_CACHE_SIGN", "ci@example.org"),
    ];
    run(
        &a,
        &cache_g,
        &ci_env,
        &[
            "--locked",
            "gate",
            "thing",
            "--as",
            "baseline",
            "--job",
            "build-thing",
            "--candidate",
            &head,
        ],
    )
    .success()
    .stderr_has("Pushed thing");
    // A candidate's build job never pushes: its build steps are not
    // trusted with the key.
    let cache_cand = ctx.dir("cache-cand");
    let cand = run(
        &a,
        &cache_cand,
        &ci_env,
        &[
            "--locked",
            "gate",
            "thing",
            "--as",
            "candidate",
            "--job",
            "build-thing",
            "--candidate",
            &head,
        ],
    );
    assert!(!cand.stderr.contains("Pushed"), "{}", cand.stderr);
    let cache_h = ctx.dir("cache-h");
    std::fs::remove_dir_all(b.join("dist")).unwrap();
    let from_ci = [
        ("SULTANA_BUILD_CACHE_REMOTE", ci.as_str()),
        ("SULTANA_BUILD_CACHE_TRUST", fprs[0].as_str()),
    ];
    let before = builds();
    run(&b, &cache_h, &from_ci, &["build"])
        .success()
        .stderr_has("Pulled thing");
    assert_eq!(builds(), before);

    // A tampered blob in the registry's storage: its digest gives it away.
    let mut tampered = 0;
    for data in walk_files(&registry.storage) {
        let bytes = std::fs::read(&data).unwrap();
        // The prefix tar (it holds the script), not the json layers.
        if data.ends_with("data") && bytes.windows(10).any(|w| w == b"echo thing") {
            let text = String::from_utf8_lossy(&bytes)
                .replace("echo thing", "echo PWNED")
                .into_bytes();
            std::fs::write(&data, text).unwrap();
            tampered += 1;
        }
    }
    assert!(tampered > 0, "no prefix blob found in the registry's storage");
    let cache_e = ctx.dir("cache-e");
    std::fs::remove_dir_all(b.join("dist")).unwrap();
    let before = builds();
    run(&b, &cache_e, &trusted, &["build"])
        .success()
        .stderr_has("building it instead");
    assert_eq!(builds(), before + 1);
    assert!(!std::fs::read_to_string(b.join("dist/thing/usr/local/bin/thing"))
        .unwrap()
        .contains("PWNED"));

    // The registry gone: said, and the component builds.
    registry.stop();
    let cache_f = ctx.dir("cache-f");
    std::fs::remove_dir_all(b.join("dist")).unwrap();
    run(&b, &cache_f, &trusted, &["build"])
        .success()
        .stderr_has("building it instead");
    assert_eq!(builds(), before + 2);
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}
