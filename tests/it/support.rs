//! Test support: every test gets its own temp root, HOME, XDG cache,
//! workspace and upstream repositories made with git2.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use git2::{IndexEntry, IndexTime, Oid, Repository, RepositoryInitOptions, Signature};

pub struct TestContext {
    _root: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub cache: PathBuf,
    /// The default workspace (current folder of `sultana` runs).
    pub work: PathBuf,
    pub upstreams: PathBuf,
}

impl TestContext {
    pub fn new() -> TestContext {
        let dir = tempfile::Builder::new()
            .prefix("sultana-it-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        let ctx = TestContext {
            home: root.join("home"),
            cache: root.join("cache"),
            work: root.join("work"),
            upstreams: root.join("upstreams"),
            root,
            _root: dir,
        };
        for d in [&ctx.home, &ctx.cache, &ctx.work, &ctx.upstreams] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        ctx
    }

    /// A new upstream repository with one commit (`README` = `name`).
    pub fn upstream(&self, name: &str) -> Upstream {
        let path = self.upstreams.join(name);
        let mut options = RepositoryInitOptions::new();
        options.initial_head("master");
        let repo = Repository::init_opts(&path, &options).expect("init upstream");
        let upstream = Upstream {
            repo,
            path,
            clock: sultana::fixtures::Clock::starting_at(1_700_000_000),
        };
        upstream.commit(&[("README", name)], "initial");
        upstream
    }

    pub fn sultana(&self, args: &[&str]) -> Run {
        self.sultana_in(&self.work, args)
    }

    /// What the shared git cache holds: stores, their locks, clone folders.
    pub fn cache_entries(&self) -> Vec<PathBuf> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(self.cache.join("sultana/git"))
            .expect("the git cache exists")
            .map(|e| e.expect("a cache entry").path())
            .collect();
        entries.sort();
        entries
    }

    /// The one store in the cache (a test with one upstream).
    pub fn cache_store(&self) -> PathBuf {
        let stores: Vec<PathBuf> = self.cache_entries().into_iter().filter(|p| p.is_dir()).collect();
        assert_eq!(stores.len(), 1, "one store in the cache: {stores:?}");
        stores[0].clone()
    }

    /// A run under `sh -c 'umask U; exec sultana …'` with extra variables.
    pub fn sultana_with(&self, dir: &Path, umask: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
        let inner = self.command(dir, args);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(inner.get_program())
            .args(args)
            .current_dir(dir)
            .env_clear()
            .stdin(Stdio::null());
        for (key, value) in inner.get_envs() {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        for (key, value) in env {
            cmd.env(key, value);
        }
        Run::new(args, cmd.output().expect("run sultana"))
    }

    /// A run on a terminal: under util-linux's `script`, which gives it a
    /// pseudo-terminal (80 columns) and copies what it drew to stdout.
    pub fn sultana_on_terminal(&self, args: &[&str]) -> Run {
        require("script", "a terminal for the run (util-linux's script)");
        let inner = self.command(&self.work, args);
        let line: Vec<String> = std::iter::once(inner.get_program().to_string_lossy().to_string())
            .chain(args.iter().map(|a| a.to_string()))
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        let mut cmd = Command::new("script");
        cmd.args([
            "-qfec",
            &format!("stty cols 80 rows 24; exec {}", line.join(" ")),
            "/dev/null",
        ])
        .current_dir(&self.work)
        .env_clear()
        .env("TERM", "xterm")
        .stdin(Stdio::null());
        for (key, value) in inner.get_envs() {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        Run::new(args, cmd.output().expect("run script"))
    }

    pub fn sultana_in(&self, dir: &Path, args: &[&str]) -> Run {
        let output = self.command(dir, args).output().expect("run sultana");
        Run::new(args, output)
    }

    /// The command, ready to spawn (for tests that kill or race it).
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sultana"));
        cmd.args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CACHE_HOME", &self.cache)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LANG", "C")
            .stdin(Stdio::null());
        // rustup's cargo proxy finds its toolchains through these, not HOME.
        let real_home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        for (var, default) in [("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")] {
            match std::env::var_os(var) {
                Some(value) => {
                    cmd.env(var, value);
                }
                None if real_home.join(default).is_dir() => {
                    cmd.env(var, real_home.join(default));
                }
                None => {}
            }
        }
        if let Some(toolchain) = std::env::var_os("RUSTUP_TOOLCHAIN") {
            cmd.env("RUSTUP_TOOLCHAIN", toolchain);
        }
        cmd
    }

    /// The demo's fixture upstreams, manifest and recipes in the workspace.
    pub fn fixture_workspace(&self) -> Vec<(&'static str, PathBuf)> {
        let clock = sultana::fixtures::Clock::default();
        let upstreams = sultana::fixtures::create_upstreams(&self.upstreams, &clock).unwrap();
        std::fs::write(
            self.work.join("sultana.toml"),
            sultana::fixtures::manifest(&self.upstreams),
        )
        .unwrap();
        sultana::fixtures::write_recipes(&self.work).unwrap();
        upstreams
    }

    /// A workspace of the kbuild fixture alone (`hello-module`).
    pub fn hello_module_workspace(&self) {
        let clock = sultana::fixtures::Clock::default();
        let path = self.upstreams.join("hello-module");
        sultana::fixtures::create(&path, &sultana::fixtures::hello_module(), &clock).unwrap();
        self.write(
            "sultana.toml",
            &manifest(&[("hello-module", &format!("file://{}", path.display()), "master")]),
        );
        sultana::fixtures::write_recipes(&self.work).unwrap();
    }

    /// A workspace of the xen-guest fixture: a Xen VM test of a PV guest.
    pub fn xen_guest_workspace(&self) {
        let clock = sultana::fixtures::Clock::default();
        let path = self.upstreams.join("xen-guest");
        sultana::fixtures::create(&path, &sultana::fixtures::xen_guest(), &clock).unwrap();
        self.write(
            "sultana.toml",
            &manifest(&[("xen-guest", &format!("file://{}", path.display()), "master")]),
        );
        sultana::fixtures::write_recipes(&self.work).unwrap();
    }

    /// Commit to a fixture upstream its `path` with `from` replaced by `to`.
    pub fn edit_upstream(&self, upstream: &str, path: &'static str, from: &str, to: &str, message: &str) {
        let dir = self.upstreams.join(upstream);
        let text = std::fs::read_to_string(dir.join(path)).unwrap();
        let edited = text.replace(from, to);
        assert_ne!(edited, text, "{from:?} is not in {upstream}/{path}");
        let clock = sultana::fixtures::Clock::default();
        sultana::fixtures::commit(&dir, &[(path, edited, false)], message, &clock).unwrap();
    }

    /// The workspace file `relative` with `from` replaced by `to`.
    pub fn edit(&self, relative: &str, from: &str, to: &str) {
        let text = self.read(relative);
        let edited = text.replace(from, to);
        assert_ne!(edited, text, "{from:?} is not in {relative}");
        self.write(relative, &edited);
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.work.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.work.join(relative)).unwrap_or_else(|e| panic!("read {relative}: {e}"))
    }

    /// A new empty folder under the temp root (a second workspace).
    pub fn dir(&self, name: &str) -> PathBuf {
        let path = self.root.join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// HEAD commit of a checkout in the workspace.
    pub fn head(&self, relative: &str) -> Oid {
        head_of(&self.work.join(relative))
    }

    pub fn lock_commit(&self, name: &str) -> String {
        lock_commit_in(&self.work, name)
    }
}

pub fn head_of(path: &Path) -> Oid {
    let repo = Repository::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let id = repo.head().unwrap().peel_to_commit().unwrap().id();
    id
}

pub fn lock_commit_in(workspace: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(workspace.join("sultana.lock")).expect("sultana.lock");
    let value: toml::Value = text.parse().unwrap();
    value["component"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{name} not locked:\n{text}"))["commit"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A test's upstream repository: the fixtures' commits (one author, a
/// fixed clock), and raw trees and paths git itself refuses.
pub struct Upstream {
    pub repo: Repository,
    pub path: PathBuf,
    clock: sultana::fixtures::Clock,
}

impl Upstream {
    /// An existing repository (e.g. a clone) to commit to.
    pub fn open(path: &Path) -> Upstream {
        Upstream {
            repo: Repository::open(path).expect("open upstream"),
            path: path.to_path_buf(),
            clock: sultana::fixtures::Clock::starting_at(1_700_100_000),
        }
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    fn signature(&self) -> Signature<'static> {
        self.clock.signature().unwrap()
    }

    /// Commit `files` (path, content) on top of HEAD.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> Oid {
        let files: Vec<(&str, String, bool)> = files
            .iter()
            .map(|(path, content)| {
                // A file made executable before stays so.
                let executable = std::fs::metadata(self.path.join(path))
                    .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0);
                (*path, content.to_string(), executable)
            })
            .collect();
        sultana::fixtures::commit_in(&self.repo, &files, message, &self.clock).unwrap()
    }

    /// Commit one file whose path is raw bytes (e.g. not UTF-8), with a mode.
    pub fn commit_raw(&self, path: &[u8], content: &[u8], mode: u32, message: &str) -> Oid {
        use std::os::unix::ffi::OsStrExt;
        let mut index = self.repo.index().unwrap();
        let blob = self.repo.blob(content).unwrap();
        let entry = IndexEntry {
            ctime: IndexTime::new(0, 0),
            mtime: IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode,
            uid: 0,
            gid: 0,
            file_size: content.len() as u32,
            id: blob,
            flags: 0,
            flags_extended: 0,
            path: path.to_vec(),
        };
        index.add(&entry).unwrap();
        let full = self.path.join(std::ffi::OsStr::from_bytes(path));
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        if mode == 0o120000 {
            let _ = std::fs::remove_file(&full);
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(content), &full).unwrap();
        } else {
            std::fs::write(&full, content).unwrap();
        }
        self.commit_index(&mut index, message)
    }

    fn commit_index(&self, index: &mut git2::Index, message: &str) -> Oid {
        sultana::fixtures::commit_index(&self.repo, index, message, &self.clock).unwrap()
    }

    pub fn blob(&self, content: &[u8]) -> Oid {
        self.repo.blob(content).unwrap()
    }

    /// A tree object written byte by byte, so names git itself refuses
    /// (`.git`) can be committed. Entries: (mode, name, id), in git's order.
    pub fn raw_tree(&self, entries: &[(u32, &[u8], Oid)]) -> Oid {
        let mut bytes = Vec::new();
        for (mode, name, id) in entries {
            bytes.extend(format!("{mode:o} ").as_bytes());
            bytes.extend(*name);
            bytes.push(0);
            bytes.extend(id.as_bytes());
        }
        self.repo.odb().unwrap().write(git2::ObjectType::Tree, &bytes).unwrap()
    }

    /// Commit `tree` on top of HEAD without touching the index or files.
    pub fn commit_tree(&self, tree: Oid, message: &str) -> Oid {
        let tree = self.repo.find_tree(tree).unwrap();
        let sig = self.signature();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
    }

    /// Record `sub` at `commit` as a submodule at `path` with `.gitmodules` url `url`.
    pub fn add_submodule(&self, name: &str, path: &str, url: &str, commit: Oid) -> Oid {
        let gitmodules = self.path.join(".gitmodules");
        let mut text = std::fs::read_to_string(&gitmodules).unwrap_or_default();
        text.push_str(&format!("[submodule \"{name}\"]\n\tpath = {path}\n\turl = {url}\n"));
        std::fs::write(&gitmodules, text).unwrap();
        let mut index = self.repo.index().unwrap();
        index.add_path(Path::new(".gitmodules")).unwrap();
        self.set_gitlink(&mut index, path, commit);
        self.commit_index(&mut index, &format!("add submodule {name}"))
    }

    /// A commit whose links each stay inside but together lead out:
    /// `self -> .` and `esc -> self/self/../..`.
    pub fn commit_symlink_chain_out(&self) -> Oid {
        let readme = self.blob(b"up");
        let dot = self.blob(b".");
        let esc = self.blob(b"self/self/../..");
        self.commit_tree(
            self.raw_tree(&[
                (0o100644, b"README", readme),
                (0o120000, b"esc", esc),
                (0o120000, b"self", dot),
            ]),
            "a chain out",
        )
    }

    /// Move an existing submodule's gitlink to `commit`.
    pub fn bump_submodule(&self, path: &str, commit: Oid) -> Oid {
        let mut index = self.repo.index().unwrap();
        self.set_gitlink(&mut index, path, commit);
        self.commit_index(&mut index, &format!("bump {path}"))
    }

    fn set_gitlink(&self, index: &mut git2::Index, path: &str, commit: Oid) {
        let entry = IndexEntry {
            ctime: IndexTime::new(0, 0),
            mtime: IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o160000,
            uid: 0,
            gid: 0,
            file_size: 0,
            id: commit,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add(&entry).unwrap();
    }

    pub fn tag(&self, name: &str, annotated: bool) -> Oid {
        let head = self.repo.head().unwrap().peel(git2::ObjectType::Commit).unwrap();
        if annotated {
            self.repo.tag(name, &head, &self.signature(), name, false).unwrap()
        } else {
            self.repo.tag_lightweight(name, &head, false).unwrap()
        }
    }

    /// Create `name` at HEAD and switch HEAD to it.
    pub fn switch_new_branch(&self, name: &str) {
        let head = self.repo.head().unwrap().peel_to_commit().unwrap();
        self.repo.branch(name, &head, false).unwrap();
        self.repo.set_head(&format!("refs/heads/{name}")).unwrap();
    }

    pub fn switch(&self, name: &str) {
        self.repo.set_head(&format!("refs/heads/{name}")).unwrap();
        self.repo
            .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .unwrap();
    }

    pub fn head(&self) -> Oid {
        self.repo.head().unwrap().peel_to_commit().unwrap().id()
    }
}

/// Run git in `dir` (the system config left out, `HOME` as given) and
/// return its standard output, trimmed; a failure fails the test.
pub fn git_stdout(dir: &Path, home: &Path, args: &[&str]) -> String {
    git_stdout_with(dir, home, &[], args)
}

/// `git_stdout` with more variables (dates, say).
pub fn git_stdout_with(dir: &Path, home: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@example.org"])
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The result of one `sultana` run.
pub struct Run {
    pub args: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn new(args: &[&str], output: Output) -> Run {
        Run {
            args: args.join(" "),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn context(&self) -> String {
        format!(
            "sultana {}\nexit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(self.code, Some(0), "expected success\n{}", self.context());
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(self.code, Some(code), "expected exit {code}\n{}", self.context());
        self
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.context()
        );
        self
    }

    #[track_caller]
    pub fn stderr_lacks(self, needle: &str) -> Run {
        assert!(
            !self.stderr.contains(needle),
            "stderr has {needle:?}\n{}",
            self.context()
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.context()
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.context()))
    }
}

/// A manifest with one `[components.NAME]` table per (name, url, revision).
pub fn manifest(components: &[(&str, &str, &str)]) -> String {
    let mut text = String::from("[workspace]\nname = \"test\"\n");
    for (name, url, revision) in components {
        text.push_str(&format!(
            "\n[components.{name}]\nurl = \"{url}\"\nrevision = \"{revision}\"\n"
        ));
    }
    text
}

/// Every file below `dir` (not `.git`), relative, sorted — to prove nothing
/// was written where it should not be.
pub fn files_below(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `tool` must be on PATH. A test that needs one says so with
/// `#[cfg_attr(not(have_TOOL), ignore = "needs TOOL")]` (build.rs sets
/// `have_TOOL` when it finds it, and every `have_*` under CI), so a missing
/// tool shows as an ignored test, never as a pass. Reaching here without it
/// means the test does not declare its need, or the tool went away since
/// the build: a failure, said as such.
pub fn require(tool: &str, why: &str) {
    if !which(tool) {
        missing(&format!("`{tool}` is not installed; it is needed for {why}"));
    }
}

/// A file the test needs; the same rule as `require`.
pub fn require_path(path: &Path, why: &str) {
    if !path.exists() {
        missing(&format!("{} does not exist; it is needed for {why}", path.display()));
    }
}

fn missing(message: &str) -> ! {
    if std::env::var_os("CI").is_some() {
        panic!("{message} (CI is set: install it in .ci/run)");
    }
    panic!("{message} (declare it with #[cfg_attr(not(have_…), ignore = \"needs …\")]; build.rs finds it)");
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

/// Run a built program and return its stdout.
pub fn run_program(path: &Path) -> String {
    let output = Command::new(path)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    assert!(output.status.success(), "{} failed", path.display());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The paths of a .tar.gz, in order.
pub fn tar_listing(file: &Path) -> Vec<String> {
    let gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(file).expect("open tarball"));
    let mut archive = tar::Archive::new(gz);
    archive
        .entries()
        .expect("read tarball")
        .map(|e| String::from_utf8_lossy(&e.expect("entry").path_bytes()).into_owned())
        .collect()
}

/// One file's text from a .tar.gz.
pub fn tar_file(file: &Path, path: &str) -> String {
    use std::io::Read;
    let gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(file).expect("open tarball"));
    let mut archive = tar::Archive::new(gz);
    for entry in archive.entries().expect("read tarball") {
        let mut entry = entry.expect("entry");
        if entry.path_bytes().as_ref() == path.as_bytes() {
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("read entry");
            return text;
        }
    }
    panic!("{path} is not in {}", file.display())
}

/// A throwaway gpg home (mode 0700) below a test's root.
pub struct Gpg {
    pub home: PathBuf,
}

impl Gpg {
    pub fn new(ctx: &TestContext) -> Gpg {
        let home = ctx.dir("gnupg");
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        Gpg { home }
    }

    /// gpg in batch mode with this home; its stdout (a failure panics).
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("gpg")
            .args(["--batch", "--no-tty"])
            .args(args)
            .env("GNUPGHOME", &self.home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new signing key (no passphrase) for `user`; its fingerprint.
    pub fn new_key(&self, user: &str, email: &str) -> String {
        self.run(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            &format!("{user} <{email}>"),
            "ed25519",
            "sign",
            "never",
        ]);
        self.run(&["--with-colons", "--list-keys", email])
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_string()
    }
}
