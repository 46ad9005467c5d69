//! Recipes: how a component is built, found on the system and (later) tested.
//! Shipped recipes are compiled in; a workspace's `recipes/<name>.toml` wins.

mod template;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

pub use template::{render, render_all, Vars};

use crate::manifest::Source;

/// Shipped recipes, by name.
pub const SHIPPED: &[(&str, &str)] = &[
    ("blktap", include_str!("../../recipes/blktap.toml")),
    ("blktap-module", include_str!("../../recipes/blktap-module.toml")),
    ("mini-os", include_str!("../../recipes/mini-os.toml")),
    ("ovmf", include_str!("../../recipes/ovmf.toml")),
    ("qemu-xen", include_str!("../../recipes/qemu-xen.toml")),
    (
        "qemu-xen-traditional",
        include_str!("../../recipes/qemu-xen-traditional.toml"),
    ),
    ("seabios", include_str!("../../recipes/seabios.toml")),
    ("xen", include_str!("../../recipes/xen.toml")),
];

/// Shipped test scripts: (recipe, file name, content).
pub const SHIPPED_TESTS: &[(&str, &str, &str)] = &[
    (
        "blktap",
        "mock-tests.sh",
        include_str!("../../recipes/tests/blktap/mock-tests.sh"),
    ),
    ("blktap", "vhd.sh", include_str!("../../recipes/tests/blktap/vhd.sh")),
    (
        "blktap",
        "tapdisk-nbd.sh",
        include_str!("../../recipes/tests/blktap/tapdisk-nbd.sh"),
    ),
    (
        "blktap",
        "tapdisk-xen.sh",
        include_str!("../../recipes/tests/blktap/tapdisk-xen.sh"),
    ),
    (
        "blktap",
        "tapdisk-xen-guest.sh",
        include_str!("../../recipes/tests/blktap/tapdisk-xen-guest.sh"),
    ),
    (
        "blktap-module",
        "kmod-build.sh",
        include_str!("../../recipes/tests/blktap-module/kmod-build.sh"),
    ),
    (
        "blktap-module",
        "kmod-load.sh",
        include_str!("../../recipes/tests/blktap-module/kmod-load.sh"),
    ),
    (
        "blktap-module",
        "kmod-load-prepare.sh",
        include_str!("../../recipes/tests/blktap-module/kmod-load-prepare.sh"),
    ),
];

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Autotools,
    Make,
    Cargo,
    Kbuild,
    Command,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BuildDir {
    /// In the source folder (projects without VPATH support).
    InTree,
    /// In `build/<component>`.
    OutOfTree,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    #[serde(skip)]
    pub name: String,
    /// Where the recipe came from, for messages.
    #[serde(skip)]
    pub origin: String,
    /// The recipe text, part of every build's fingerprint.
    #[serde(skip)]
    pub text: String,
    pub kind: Kind,
    #[serde(default)]
    pub description: String,
    pub build_dir: Option<BuildDir>,
    /// Extra dependencies, used when those components are in the manifest.
    #[serde(default)]
    pub depends: Vec<String>,
    /// Commands run in the source folder before anything else.
    #[serde(default)]
    pub prepare: Vec<Vec<String>>,
    /// autotools: run in the source folder, e.g. `./autogen.sh`.
    pub bootstrap: Option<Vec<String>>,
    /// autotools: arguments of `{src}/configure`.
    #[serde(default)]
    pub configure: Vec<String>,
    /// Configure arguments added when the named component is part of the build.
    #[serde(default)]
    pub dep_configure: BTreeMap<String, Vec<String>>,
    /// Configure arguments added when the named component is not part of the
    /// build (disabled, or not in the manifest), e.g. so that Xen's configure
    /// does not go and clone it.
    #[serde(default)]
    pub dep_absent: BTreeMap<String, Vec<String>>,
    /// Paths that must exist before the build when the named component is
    /// part of it (e.g. what Xen's configure takes on trust).
    #[serde(default)]
    pub dep_require: BTreeMap<String, Vec<String>>,
    /// make arguments for the build (default `-j{jobs}`).
    pub make: Option<Vec<String>>,
    /// make arguments for the install (default `install DESTDIR={destdir}`).
    pub install: Option<Vec<String>>,
    /// Run in the source folder by `sultana clean` (in-tree builds).
    pub clean: Option<Vec<String>>,
    /// Files an in-tree build writes that the project's `.gitignore` does not
    /// cover (git patterns): added to a managed checkout's `.git/info/exclude`
    /// so that building does not count as local work.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// The files of the tree that hold its license, for the release SBOM
    /// (relative paths; default: the top-level COPYING*, LICENSE*, LICENCE*),
    /// like Yocto's LIC_FILES_CHKSUM.
    #[serde(default)]
    pub license_files: Vec<String>,
    /// The license of the tree when detection cannot be sure (an SPDX
    /// expression, as Yocto's LICENSE): the SBOMs' concluded license,
    /// checked against what the license files say.
    pub license: Option<String>,
    /// The environment variables the build reads (e.g. Xen's `debug`,
    /// `XEN_TARGET_ARCH`): passed from sultana's environment when set, and
    /// part of the build's inputs. Nothing else of it reaches a build but
    /// the base (PATH, HOME, locale, …).
    #[serde(default)]
    pub env: Vec<String>,
    /// Variables set for every build step (values are templates).
    #[serde(default)]
    pub set_env: BTreeMap<String, String>,
    /// command: the build commands, in the build folder.
    #[serde(default)]
    pub commands: Vec<Vec<String>>,
    /// command: the install commands (write under `{destdir}{prefix}`).
    #[serde(default)]
    pub install_commands: Vec<Vec<String>>,
    pub kbuild: Option<Kbuild>,
    #[serde(default)]
    pub build_deps: BuildDeps,
    /// What the recipe's tests need besides (a VM test's QEMU, kernel and
    /// busybox come with `vm`).
    #[serde(default)]
    pub test_deps: BuildDeps,
    #[serde(default)]
    pub exports: Exports,
    /// Where `sultana run`/`env`/`shell` find the staged programs and
    /// libraries, beside bin, sbin, lib and lib64.
    #[serde(default)]
    pub run: RunPaths,
    #[serde(default)]
    pub probe: Vec<Probe>,
    /// Test suites run by `gate` and `bisect` (`[[test]]`).
    #[serde(default, rename = "test")]
    pub tests: Vec<TestSpec>,
}

/// One test of a recipe: a script in `recipes/tests/<recipe>/`, run with
/// SULTANA_PREFIX, SULTANA_SRC, SULTANA_BUILD and SULTANA_WORK set; exit 0
/// pass, 77 skip, 99 broken, anything else fail.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The script's file name (default `<name>.sh`).
    pub script: Option<String>,
    /// Seconds before the test is stopped and counted as failed (default 900).
    pub timeout: Option<u64>,
    /// The test reads the component's build tree (SULTANA_BUILD), e.g. a
    /// `make check` there: the component is then built for it, never
    /// restored from the build cache (which keeps the staged prefix only).
    #[serde(default)]
    pub build_tree: bool,
    /// Run the script inside a throwaway VM (see `crate::vm`).
    pub vm: Option<VmSpec>,
}

/// `vm = {…}` of a `[[test]]`: the script runs as root in a VM booting the
/// kernel the component was built for.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    /// `"headers"` (the default): the kernel whose headers the build used;
    /// or the absolute path of a kernel image.
    pub kernel: Option<String>,
    /// Host programs the script runs, copied in with their libraries
    /// (bash and busybox's tools are always there).
    #[serde(default)]
    pub tools: Vec<String>,
    /// Modules of the booted kernel loaded before the script, with theirs.
    #[serde(default)]
    pub modules: Vec<String>,
    /// A script in the test's folder run on the host before the boot, with
    /// the test's environment: what it leaves in SULTANA_WORK goes in.
    pub prepare: Option<String>,
    /// The VM's memory in MiB (default 512).
    pub memory: Option<u32>,
    /// Also copy the source tree in (SULTANA_SRC; without `.git`).
    #[serde(default)]
    pub src: bool,
    /// Boot Xen with the kernel as its dom0 (`crate::vm::xen`): the Xen
    /// built in the flight, else the system's. The script runs in dom0
    /// with Xen's daemons started and `sultana-guest` on PATH.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub xen: bool,
    /// A script in the test's folder that `sultana-guest` runs as a PV
    /// guest's whole userspace (busybox sh), the same kernel booted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<String>,
    /// Modules the guest loads first (default: xen-blkfront).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_modules: Option<Vec<String>>,
    /// The memory of each guest in MiB (default 256), besides dom0's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_memory: Option<u32>,
}

impl VmSpec {
    pub const DEFAULT_MEMORY: u32 = 512;
    pub const DEFAULT_GUEST_MEMORY: u32 = 256;
    /// Debian's Xen for a `xen = true` test booting the system's Xen.
    pub const DEBIAN_XEN: &[&str] = &["xen-hypervisor-4.17-amd64", "xen-utils-4.17"];

    pub fn guest_modules(&self) -> Vec<String> {
        self.guest_modules
            .clone()
            .unwrap_or_else(|| vec!["xen-blkfront".to_string()])
    }
    /// Debian's packages for a VM test: QEMU, the kernel image matching
    /// linux-headers-amd64, a static busybox for the root.
    pub const DEBIAN: &[&str] = &["qemu-system-x86", "linux-image-amd64", "busybox-static"];
}

impl TestSpec {
    pub const DEFAULT_TIMEOUT: u64 = 900;

    pub fn script_name(&self) -> String {
        self.script.clone().unwrap_or_else(|| format!("{}.sh", self.name))
    }

    pub fn timeout(&self) -> u64 {
        self.timeout.unwrap_or(Self::DEFAULT_TIMEOUT)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildDeps {
    #[serde(default)]
    pub debian: Vec<String>,
}

/// Folders of the staged prefix (relative to it) that `sultana run` adds
/// to PATH and LD_LIBRARY_PATH besides the usual ones, e.g. qemu-xen's
/// `lib/xen/bin` and `lib/xen/lib`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunPaths {
    #[serde(default)]
    pub program_dirs: Vec<String>,
    #[serde(default)]
    pub library_dirs: Vec<String>,
}

/// What dependents see as `{dep.NAME.cflags}` and `{dep.NAME.libs}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exports {
    #[serde(default)]
    pub cflags: String,
    #[serde(default)]
    pub libs: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kbuild {
    /// The module's folder inside the source.
    pub dir: String,
    /// Extra folders copied beside it (headers), relative to the source.
    #[serde(default)]
    pub copy: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// The `.ko` files the build must produce, relative to `dir`.
    pub modules: Vec<String>,
}

/// A typed check that a component is installed under a prefix.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Probe {
    /// `lib<name>.so` (or `.a`) in a library folder.
    Library { name: String },
    /// A header under `include/`.
    Header { path: String },
    /// An executable in `bin/`, `sbin/` or `libexec/`.
    Program { name: String },
    /// Any file, relative to the prefix.
    File { path: String },
    /// A pkg-config module, optionally with a minimum version.
    PkgConfig {
        module: String,
        min_version: Option<String>,
    },
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Library { name } => write!(f, "library lib{name}"),
            Probe::Header { path } => write!(f, "header {path}"),
            Probe::Program { name } => write!(f, "program {name}"),
            Probe::File { path } => write!(f, "file {path}"),
            Probe::PkgConfig { module, min_version } => match min_version {
                Some(v) => write!(f, "pkg-config {module} >= {v}"),
                None => write!(f, "pkg-config {module}"),
            },
        }
    }
}

impl Recipe {
    pub fn parse(name: &str, text: &str, origin: &str) -> Result<Recipe, crate::manifest::ManifestError> {
        let source = Source {
            name: origin.to_string(),
            text,
        };
        let mut recipe: Recipe = toml::from_str(text).map_err(|e| source.toml_error(e))?;
        recipe.name = name.to_string();
        recipe.origin = origin.to_string();
        recipe.text = text.to_string();
        if recipe.kind == Kind::Kbuild && recipe.kbuild.is_none() {
            return Err(crate::manifest::ManifestError::Other(format!(
                "{origin}: kind = \"kbuild\" needs a [kbuild] table"
            )));
        }
        // A relative path that stays inside (no `..`, no root, not empty).
        let inside = |path: &str| {
            !path.is_empty()
                && Path::new(path).is_relative()
                && Path::new(path)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
        };
        for dir in recipe.run.program_dirs.iter().chain(&recipe.run.library_dirs) {
            if !inside(dir) {
                return Err(crate::manifest::ManifestError::Other(format!(
                    "{origin}: [run] folder `{dir}` must be a relative path inside the prefix (no `..`)"
                )));
            }
        }
        if let Some(license) = &recipe.license {
            if let Err(e) = spdx::Expression::parse(license) {
                return Err(crate::manifest::ManifestError::Other(format!(
                    "{origin}: license `{license}` is not an SPDX license expression: {}",
                    e.reason
                )));
            }
        }
        if let Some(file) = recipe.license_files.iter().find(|f| !inside(f)) {
            return Err(crate::manifest::ManifestError::Other(format!(
                "{origin}: license_files `{file}` must be a relative path inside the tree (no `..`)"
            )));
        }
        for name in recipe.env.iter().chain(recipe.set_env.keys()) {
            crate::validate::check_env_name(name)
                .map_err(|m| crate::manifest::ManifestError::Other(format!("{origin}: env: {m}")))?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for test in &recipe.tests {
            let bad = |what: String| crate::manifest::ManifestError::Other(format!("{origin}: [[test]] {what}"));
            crate::validate::check_name(&test.name).map_err(&bad)?;
            if !seen.insert(test.name.clone()) {
                return Err(bad(format!("`{}` is declared twice", test.name)));
            }
            let script = test.script_name();
            let plain = !script.is_empty()
                && !script.starts_with('.')
                && script.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !plain {
                return Err(bad(format!(
                    "`{}`: script `{script}` must be a file name in recipes/tests/{name}/",
                    test.name
                )));
            }
            if test.timeout == Some(0) {
                return Err(bad(format!("`{}`: timeout must be at least 1 second", test.name)));
            }
            if let Some(vm) = &test.vm {
                check_vm(vm).map_err(|m| bad(format!("`{}`: vm: {m}", test.name)))?;
            }
        }
        Ok(recipe)
    }

    /// A file of a test's folder by name (a VM test's `prepare`): the
    /// workspace's, else the shipped one.
    pub fn test_file(&self, recipes_root: &Path, test: &TestSpec, name: &str) -> Result<(String, Vec<u8>)> {
        let spec = TestSpec {
            script: Some(name.to_string()),
            ..test.clone()
        };
        self.test_script(recipes_root, &spec)
    }

    /// The workspace's `recipes/<name>.toml`, else the shipped one.
    pub fn load(workspace: &Path, name: &str) -> Result<Recipe> {
        Recipe::find(workspace, name)?.with_context(|| {
            format!(
                "no recipe `{name}`: write {} (see the shipped recipes for examples)",
                workspace.join("recipes").join(format!("{name}.toml")).display()
            )
        })
    }

    /// Like `load`, but none when there is no such recipe at all (one that
    /// is there but wrong is still an error).
    pub fn find(workspace: &Path, name: &str) -> Result<Option<Recipe>> {
        let file = workspace.join("recipes").join(format!("{name}.toml"));
        if file.is_file() {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            return Ok(Some(Recipe::parse(name, &text, &file.display().to_string())?));
        }
        Ok(Recipe::shipped(name).transpose()?)
    }

    /// The shipped recipe `name`, if there is one.
    pub fn shipped(name: &str) -> Option<Result<Recipe, crate::manifest::ManifestError>> {
        let text = SHIPPED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)?;
        Some(Recipe::parse(name, text, &format!("<shipped recipes/{name}.toml>")))
    }

    /// A test's script: the workspace's `recipes/tests/<recipe>/<script>`,
    /// else the shipped one. Returns where it came from and its text.
    pub fn test_script(&self, recipes_root: &Path, test: &TestSpec) -> Result<(String, Vec<u8>)> {
        let script = test.script_name();
        let file = recipes_root
            .join("recipes")
            .join("tests")
            .join(&self.name)
            .join(&script);
        if file.is_file() {
            let text = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            return Ok((file.display().to_string(), text));
        }
        SHIPPED_TESTS
            .iter()
            .find(|(recipe, name, _)| *recipe == self.name && *name == script)
            .map(|(_, _, text)| {
                (
                    format!("<shipped recipes/tests/{}/{script}>", self.name),
                    text.as_bytes().to_vec(),
                )
            })
            .with_context(|| {
                format!(
                    "test `{}` of recipe `{}`: no script {}",
                    test.name,
                    self.name,
                    file.display()
                )
            })
    }

    pub fn build_dir(&self) -> BuildDir {
        self.build_dir.unwrap_or(match self.kind {
            Kind::Autotools | Kind::Cargo | Kind::Kbuild => BuildDir::OutOfTree,
            Kind::Make | Kind::Command => BuildDir::InTree,
        })
    }
}

/// A VM test's settings are names and a path: nothing option-like, no
/// folder walking for tools, modules and the prepare script.
fn check_vm(vm: &VmSpec) -> Result<(), String> {
    let plain = |s: &str| {
        !s.is_empty()
            && !s.starts_with(['.', '-'])
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
    };
    if let Some(kernel) = &vm.kernel {
        let path_ok =
            kernel.starts_with('/') && !kernel.split('/').any(|p| p == "..") && !kernel.chars().any(|c| c.is_control());
        if kernel != "headers" && !path_ok {
            return Err(format!(
                "kernel `{kernel}` must be \"headers\" or the absolute path of a kernel image"
            ));
        }
    }
    if let Some(tool) = vm.tools.iter().find(|t| !plain(t)) {
        return Err(format!("tool `{tool}` must be a program name (found on PATH)"));
    }
    if let Some(module) = vm.modules.iter().find(|m| !plain(m)) {
        return Err(format!("module `{module}` must be a module name, e.g. `loop`"));
    }
    if let Some(prepare) = vm.prepare.as_deref().filter(|p| !plain(p)) {
        return Err(format!("prepare `{prepare}` must be a file name in the test's folder"));
    }
    if let Some(memory) = vm.memory.filter(|m| !(64..=65536).contains(m)) {
        return Err(format!("memory = {memory} MiB: give 64 to 65536"));
    }
    if let Some(guest) = vm.guest.as_deref().filter(|g| !plain(g)) {
        return Err(format!("guest `{guest}` must be a file name in the test's folder"));
    }
    if let Some(module) = vm.guest_modules.iter().flatten().find(|m| !plain(m)) {
        return Err(format!(
            "guest module `{module}` must be a module name, e.g. `xen-blkfront`"
        ));
    }
    if let Some(memory) = vm.guest_memory.filter(|m| !(64..=16384).contains(m)) {
        return Err(format!("guest_memory = {memory} MiB: give 64 to 16384"));
    }
    if !vm.xen && (vm.guest.is_some() || vm.guest_modules.is_some() || vm.guest_memory.is_some()) {
        return Err("guest, guest_modules and guest_memory need `xen = true` (guests run under Xen)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_needs_xen_and_names_a_file_beside_the_test() {
        let recipe = |vm: &str| {
            let text = format!(
                "description = \"d\"\nkind = \"make\"\n[[test]]\nname = \"t\"\ndescription = \"t\"\nvm = {{ {vm} }}\n"
            );
            Recipe::parse("r", &text, "r.toml").map_err(|e| e.to_string())
        };
        let ok = recipe("xen = true, guest = \"g.sh\", guest_memory = 128").unwrap();
        let vm = ok.tests[0].vm.clone().unwrap();
        assert_eq!(vm.guest_modules(), ["xen-blkfront"]);
        for (vm, says) in [
            ("guest = \"g.sh\"", "need `xen = true`"),
            ("xen = true, guest = \"../g.sh\"", "guest `../g.sh` must be a file name"),
            ("xen = true, guest_modules = [\"-x\"]", "guest module `-x`"),
            ("xen = true, guest_memory = 1", "guest_memory = 1 MiB"),
        ] {
            let e = recipe(vm).unwrap_err();
            assert!(e.contains(says), "{vm}: {e}");
        }
        // A test without the new fields hashes as before (its earlier
        // results stand).
        let plain = VmSpec::default();
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"kernel":null,"tools":[],"modules":[],"prepare":null,"memory":null,"src":false}"#
        );
    }

    #[test]
    fn shipped_recipes_parse() {
        for (name, text) in SHIPPED {
            let recipe = Recipe::parse(name, text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!recipe.description.is_empty(), "{name} has a description");
        }
        let blktap = Recipe::load(Path::new("/nonexistent"), "blktap").unwrap();
        assert_eq!(blktap.build_dir(), BuildDir::InTree);
        let tests: Vec<&str> = blktap.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(tests, ["mock-tests", "vhd", "tapdisk-nbd", "tapdisk-xen"]);
        for (name, _) in SHIPPED {
            let recipe = Recipe::load(Path::new("/nonexistent"), name).unwrap();
            for test in &recipe.tests {
                recipe
                    .test_script(Path::new("/nonexistent"), test)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        assert!(blktap.build_deps.debian.contains(&"libcmocka-dev".to_string()));
    }

    #[test]
    fn unknown_keys_are_refused_with_a_position() {
        let e = Recipe::parse("x", "kind = \"make\"\nmakee = []\n", "recipes/x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("recipes/x.toml:2:1:"), "{e}");
        let e = Recipe::parse("x", "kind = \"scons\"\n", "recipes/x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("recipes/x.toml:1:8"), "{e}");
    }
}
