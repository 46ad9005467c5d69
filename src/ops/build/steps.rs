//! The steps of one component's build, by recipe kind.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use crate::recipe::{render, render_all, BuildDir, Kind, Recipe, Vars};

/// What `{jobs}` renders to in the steps that run: filled in (or, as
/// make's `-j{jobs}`, dropped for the jobserver) when each runs.
pub const JOBS_SLOT: &str = "\u{1}jobs\u{1}";

pub enum Action {
    Run {
        argv: Vec<String>,
        dir: PathBuf,
    },
    /// kbuild: copy the module's folders out of the source.
    CopyModuleSource {
        from: Vec<(PathBuf, PathBuf)>,
    },
    /// kbuild: every module built, for the kernel the headers are for.
    CheckModules {
        modules: Vec<PathBuf>,
        release: String,
    },
    /// kbuild: modules into `{destdir}/lib/modules/<release>/extra`.
    InstallModules {
        modules: Vec<PathBuf>,
        target: PathBuf,
    },
}

pub struct Step {
    pub name: String,
    pub action: Action,
    /// Part of the install: runs with the temporary staging folder.
    pub install: bool,
}

impl Step {
    fn run(name: &str, argv: Vec<String>, dir: &Path, install: bool) -> Step {
        Step {
            name: name.to_string(),
            action: Action::Run {
                argv,
                dir: dir.to_path_buf(),
            },
            install,
        }
    }

    /// A stable text of the step for the fingerprint.
    pub fn describe(&self) -> String {
        match &self.action {
            Action::Run { argv, dir } => format!("{}: {} in {}", self.name, argv.join(" "), dir.display()),
            Action::CopyModuleSource { from } => {
                let pairs: Vec<String> = from
                    .iter()
                    .map(|(a, b)| format!("{} -> {}", a.display(), b.display()))
                    .collect();
                format!("{}: {}", self.name, pairs.join(", "))
            }
            Action::CheckModules { modules, release } => {
                format!("{}: {} for {release}", self.name, paths(modules))
            }
            Action::InstallModules { modules, target } => {
                format!("{}: {} into {}", self.name, paths(modules), target.display())
            }
        }
    }
}

fn paths(list: &[PathBuf]) -> String {
    list.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a step is part of the configure phase (prepare, bootstrap,
/// configure), which runs again only when what it reads changed.
pub fn configures(step: &str) -> bool {
    step.starts_with("prepare-") || step == "bootstrap" || step == "configure"
}

/// The files an autotools configure phase reads: configure.ac, the
/// Makefile.am/.in files and other `.in` templates, m4 macros, the
/// bootstrap scripts.
pub fn configure_reads(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        name,
        "configure.ac" | "configure.in" | "Makefile.am" | "acinclude.m4" | "autogen.sh" | "bootstrap" | "VERSION"
    ) || name.ends_with(".in")
        || name.ends_with(".m4")
        || name.ends_with(".am")
        || path.starts_with("m4/")
        || path.contains("/m4/")
}

/// What a unit's steps are made from besides the template values: its
/// recipe, the dependencies in this build (for `dep_configure`), its
/// folders, and whether the run may use the network. Planned with the
/// values of the moment (`{jobs}` a slot, `{destdir}` the new staging
/// folder).
pub struct Planner<'a> {
    pub recipe: &'a Recipe,
    pub present: &'a [String],
    pub src: &'a Path,
    pub build: &'a Path,
    pub network: crate::session::Network,
}

impl Planner<'_> {
    pub fn plan(&self, vars: &Vars) -> Result<Vec<Step>> {
        plan(self, vars)
    }
}

fn plan(input: &Planner, vars: &Vars) -> Result<Vec<Step>> {
    let (recipe, present) = (input.recipe, input.present);
    let r = |items: &[String]| render_all(items, vars).map_err(|e| anyhow!("{}: {e}", recipe.origin));
    let one = |item: &str| render(item, vars).map_err(|e| anyhow!("{}: {e}", recipe.origin));
    let (src, build) = (input.src.to_path_buf(), input.build.to_path_buf());
    let dir = match recipe.build_dir() {
        BuildDir::InTree => src.clone(),
        BuildDir::OutOfTree => build.clone(),
    };
    let mut steps = Vec::new();
    for (i, argv) in recipe.prepare.iter().enumerate() {
        steps.push(Step::run(&format!("prepare-{}", i + 1), r(argv)?, &src, false));
    }
    let default_make = vec!["-j{jobs}".to_string()];
    let default_install = vec!["install".to_string(), "DESTDIR={destdir}".to_string()];
    let make = |args: &Option<Vec<String>>, default: &Vec<String>| -> Result<Vec<String>> {
        Ok(std::iter::once("make".to_string())
            .chain(r(args.as_ref().unwrap_or(default))?)
            .collect())
    };
    match recipe.kind {
        Kind::Autotools => {
            if let Some(bootstrap) = &recipe.bootstrap {
                steps.push(Step::run("bootstrap", r(bootstrap)?, &src, false));
            }
            let mut configure = vec![src.join("configure").display().to_string()];
            configure.extend(r(&recipe.configure)?);
            for dep in present {
                if let Some(args) = recipe.dep_configure.get(dep) {
                    configure.extend(r(args)?);
                }
            }
            for (dep, args) in &recipe.dep_absent {
                if !present.contains(dep) {
                    configure.extend(r(args)?);
                }
            }
            steps.push(Step::run("configure", configure, &dir, false));
            steps.push(Step::run("make", make(&recipe.make, &default_make)?, &dir, false));
        }
        Kind::Make => steps.push(Step::run("make", make(&recipe.make, &default_make)?, &dir, false)),
        Kind::Command => {
            for (i, argv) in recipe.commands.iter().enumerate() {
                steps.push(Step::run(&format!("command-{}", i + 1), r(argv)?, &dir, false));
            }
        }
        Kind::Cargo => {
            let mut argv: Vec<String> = ["cargo", "install", "--locked", "--no-track", "--path"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            argv.extend([src.display().to_string(), "--root".into(), one("{destdir}{prefix}")?]);
            argv.extend(["--target-dir".into(), build.display().to_string()]);
            if input.network == crate::session::Network::Offline || src.join("vendor").is_dir() {
                argv.push("--offline".into());
            }
            argv.extend(r(recipe.make.as_deref().unwrap_or_default())?);
            steps.push(Step::run("cargo-install", argv, &src, true));
            return Ok(steps);
        }
        Kind::Kbuild => {
            let kbuild = recipe
                .kbuild
                .as_ref()
                .ok_or_else(|| anyhow!("{}: no [kbuild] table", recipe.origin))?;
            let module_dir = build.join(&kbuild.dir);
            let mut copies = vec![(src.join(&kbuild.dir), module_dir.clone())];
            copies.extend(kbuild.copy.iter().map(|c| (src.join(c), build.join(c))));
            steps.push(Step {
                name: "copy-source".into(),
                action: Action::CopyModuleSource { from: copies },
                install: false,
            });
            let mut argv = vec!["make".to_string(), "-C".into(), one("{kernel_headers}")?];
            argv.push(format!("M={}", module_dir.display()));
            argv.extend(r(&kbuild.args)?);
            argv.push("modules".into());
            steps.push(Step::run("kbuild", argv, &module_dir, false));
            let modules: Vec<PathBuf> = kbuild.modules.iter().map(|m| module_dir.join(m)).collect();
            let release = one("{kernel_release}")?;
            steps.push(Step {
                name: "vermagic".into(),
                action: Action::CheckModules {
                    modules: modules.clone(),
                    release: release.clone(),
                },
                install: false,
            });
            steps.push(Step {
                name: "install".into(),
                action: Action::InstallModules {
                    modules,
                    target: PathBuf::from(one(&format!("{{destdir}}/lib/modules/{release}/extra"))?),
                },
                install: true,
            });
            return Ok(steps);
        }
    }
    if !recipe.install_commands.is_empty() {
        for (i, argv) in recipe.install_commands.iter().enumerate() {
            steps.push(Step::run(&format!("install-{}", i + 1), r(argv)?, &dir, true));
        }
    } else if recipe.kind != Kind::Command {
        steps.push(Step::run(
            "install",
            make(&recipe.install, &default_install)?,
            &dir,
            true,
        ));
    }
    Ok(steps)
}
