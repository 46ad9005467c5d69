//! Small real projects in local git repositories: an autotools C library
//! with `make check`, a make-only tool, a cargo project with no dependencies,
//! a kbuild module, and a root tree whose build uses the library through
//! `{dep.NAME.*}`. `sultana demo` and the integration tests use the same ones.
//! Their files, recipes and test scripts are data under `fixtures/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::{Oid, Repository, RepositoryInitOptions, Signature, Time};

/// One file of a fixture: path, content, executable.
pub type File = (&'static str, String, bool);

pub struct Project {
    pub name: &'static str,
    pub files: Vec<File>,
    pub recipe: &'static str,
    /// Test scripts for `recipes/tests/<name>/`: (file name, content).
    pub tests: Vec<(&'static str, &'static str)>,
}

/// A fixture file from `fixtures/<project>/tree/` (dotfiles are stored
/// without their dot, so the project's own git never reads them).
macro_rules! tree_file {
    ($project:literal, $path:literal, $stored:literal, $exec:literal) => {
        (
            $path,
            include_str!(concat!("../../fixtures/", $project, "/tree/", $stored)).to_string(),
            $exec,
        )
    };
}

/// A test script from `fixtures/<project>/tests/`.
macro_rules! test_script {
    ($project:literal, $file:literal) => {
        (
            $file,
            include_str!(concat!("../../fixtures/", $project, "/tests/", $file)),
        )
    };
}

pub fn libfix() -> Project {
    Project {
        name: "libfix",
        files: vec![
            tree_file!("libfix", "configure.ac", "configure.ac", false),
            tree_file!("libfix", "Makefile.am", "Makefile.am", false),
            tree_file!("libfix", "fix.h", "fix.h", false),
            tree_file!("libfix", "fix.c", "fix.c", false),
            tree_file!("libfix", "test-fix.c", "test-fix.c", false),
            tree_file!("libfix", ".gitignore", "gitignore", false),
        ],
        recipe: include_str!("../../fixtures/libfix/recipe.toml"),
        tests: vec![test_script!("libfix", "check.sh"), test_script!("libfix", "disk.sh")],
    }
}

pub fn tool() -> Project {
    Project {
        name: "tool",
        files: vec![
            tree_file!("tool", "Makefile", "Makefile", false),
            tree_file!("tool", "fixtool.c", "fixtool.c", false),
            tree_file!("tool", ".gitignore", "gitignore", false),
        ],
        recipe: include_str!("../../fixtures/tool/recipe.toml"),
        tests: vec![test_script!("tool", "version.sh")],
    }
}

/// A seed file installed for a Xen VM test: a PV guest's file-backed disk
/// served by Xen's own backend (no blktap).
pub fn xen_guest() -> Project {
    Project {
        name: "xen-guest",
        files: vec![tree_file!("xen-guest", "seed", "seed", false)],
        recipe: include_str!("../../fixtures/xen-guest/recipe.toml"),
        tests: vec![
            test_script!("xen-guest", "disk.sh"),
            test_script!("xen-guest", "disk-guest.sh"),
        ],
    }
}

pub fn rusty() -> Project {
    Project {
        name: "rusty",
        files: vec![
            tree_file!("rusty", "Cargo.toml", "Cargo.toml", false),
            tree_file!("rusty", "Cargo.lock", "Cargo.lock", false),
            tree_file!("rusty", "src/main.rs", "src/main.rs", false),
            tree_file!("rusty", ".gitignore", "gitignore", false),
        ],
        recipe: include_str!("../../fixtures/rusty/recipe.toml"),
        tests: Vec::new(),
    }
}

pub fn hello_module() -> Project {
    Project {
        name: "hello-module",
        files: vec![
            tree_file!("hello-module", "module/Kbuild", "module/Kbuild", false),
            tree_file!("hello-module", "module/hello.c", "module/hello.c", false),
        ],
        recipe: include_str!("../../fixtures/hello-module/recipe.toml"),
        tests: vec![test_script!("hello-module", "load.sh")],
    }
}

/// The root tree (Xen's place in the demo): its program links libfix.
pub fn root() -> Project {
    Project {
        name: "root",
        files: vec![
            tree_file!("root", "Makefile", "Makefile", false),
            tree_file!("root", "main.c", "main.c", false),
            tree_file!("root", "README", "README", false),
            tree_file!("root", "tools/version.sh", "tools/version.sh", true),
            tree_file!("root", ".gitignore", "gitignore", false),
        ],
        recipe: include_str!("../../fixtures/root/recipe.toml"),
        tests: vec![test_script!("root", "app.sh")],
    }
}

/// Fixed author and clock so fixture commits have the same ids everywhere.
pub struct Clock(std::cell::Cell<i64>);

impl Default for Clock {
    fn default() -> Self {
        Clock(std::cell::Cell::new(1_767_225_600)) // 2026-01-01
    }
}

impl Clock {
    /// A clock starting at `seconds` since the epoch (each commit a minute on).
    pub fn starting_at(seconds: i64) -> Clock {
        Clock(std::cell::Cell::new(seconds))
    }

    /// The fixed author, a minute after the last.
    pub fn signature(&self) -> Result<Signature<'static>> {
        let t = self.0.get() + 60;
        self.0.set(t);
        Ok(Signature::new(
            "sultana demo",
            "demo@sultana.invalid",
            &Time::new(t, 0),
        )?)
    }
}

/// A new repository at `dir` holding the project as its first commit on `master`.
pub fn create(dir: &Path, project: &Project, clock: &Clock) -> Result<Oid> {
    let mut options = RepositoryInitOptions::new();
    options.initial_head("master");
    Repository::init_opts(dir, &options).with_context(|| format!("cannot create {}", dir.display()))?;
    commit(
        dir,
        &project.files,
        &format!("{}: initial version", project.name),
        clock,
    )
}

/// Write `files` into the repository at `dir` and commit them on HEAD.
pub fn commit(dir: &Path, files: &[File], message: &str, clock: &Clock) -> Result<Oid> {
    commit_in(&Repository::open(dir)?, files, message, clock)
}

/// `commit` with a repository already open (the tests' upstreams keep
/// theirs: one handle a repository, so its index is never read stale).
pub fn commit_in<P: AsRef<Path>>(
    repo: &Repository,
    files: &[(P, String, bool)],
    message: &str,
    clock: &Clock,
) -> Result<Oid> {
    use std::os::unix::fs::PermissionsExt;
    let dir = repo.workdir().context("a bare repository has no files to commit")?;
    let mut index = repo.index()?;
    for (path, content, executable) in files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, content)?;
        let mode = if *executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode))?;
        index.add_path(path.as_ref())?;
    }
    commit_index(repo, &mut index, message, clock)
}

/// Commit what `index` holds on HEAD.
pub fn commit_index(repo: &Repository, index: &mut git2::Index, message: &str, clock: &Clock) -> Result<Oid> {
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let signature = clock.signature()?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    Ok(repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &parents)?)
}

/// Tag HEAD (annotated).
pub fn tag(dir: &Path, name: &str, clock: &Clock) -> Result<Oid> {
    let repo = Repository::open(dir)?;
    let head = repo.head()?.peel(git2::ObjectType::Commit)?;
    Ok(repo.tag(name, &head, &clock.signature()?, name, false)?)
}

/// The demo's upstreams under `dir`: (name, path) of each repository.
pub fn create_upstreams(dir: &Path, clock: &Clock) -> Result<Vec<(&'static str, PathBuf)>> {
    let mut out = Vec::new();
    for project in [libfix(), tool(), rusty(), root()] {
        let path = dir.join(project.name);
        create(&path, &project, clock)?;
        tag(&path, "v1.0", clock)?;
        out.push((project.name, path));
    }
    Ok(out)
}

/// A manifest for the demo upstreams: the root tree inlines the others.
pub fn manifest(upstreams: &Path) -> String {
    // A TOML string, escaped: the folder may hold quotes or backslashes.
    let url = |name: &str| toml::Value::String(format!("file://{}", upstreams.join(name).display())).to_string();
    format!(
        "[workspace]\nname = \"demo\"\n\n[tarball]\nroot = \"root\"\nname = \"root-{{desc}}\"\nformats = [\"gz\"]\n\n\
[components.libfix]\nurl = {}\nrevision = \"master\"\nintree = \"extras/libfix\"\n\n\
[components.tool]\nurl = {}\nrevision = \"master\"\nintree = \"tools/tool\"\n\n\
[components.rusty]\nurl = {}\nrevision = \"master\"\nintree = \"tools/rusty\"\n\n\
[components.root]\nurl = {}\nrevision = \"master\"\ndepends = [\"libfix\", \"tool\", \"rusty\"]\n",
        url("libfix"),
        url("tool"),
        url("rusty"),
        url("root")
    )
}

/// The fixtures' recipes into `workspace/recipes/`.
pub fn write_recipes(workspace: &Path) -> Result<()> {
    let dir = workspace.join("recipes");
    std::fs::create_dir_all(&dir)?;
    for project in [libfix(), tool(), rusty(), root(), hello_module(), xen_guest()] {
        crate::fsutil::atomic_write(&dir.join(format!("{}.toml", project.name)), project.recipe.as_bytes())?;
        for (file, content) in &project.tests {
            crate::fsutil::atomic_write(&dir.join("tests").join(project.name).join(file), content.as_bytes())?;
        }
    }
    Ok(())
}
