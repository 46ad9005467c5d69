//! Release tarballs (what Xen's `tools/misc/mktarball` makes): the root
//! component's tree at `{name}/`, every other inlined component at its
//! `intree` path, read straight from the git object store at the locked
//! commits; byte-for-byte reproducible; a manifest and lock inside so the
//! unpacked tree builds offline; `SHA256SUMS` beside it.

mod archive;
pub(crate) mod attrs;
mod compress;
mod embedded;
mod license;
mod lzip;
mod plan;
mod sbom;
pub(crate) mod sign;
mod subst;
mod tree;
mod verify;
mod write;
mod xen_version;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

pub use compress::Format;
#[cfg(feature = "fuzzing")]
pub use verify::inspect;
pub use verify::{verify, VerifyOptions};

use crate::git::Oid;
use crate::manifest::Component;
use crate::printer::Printer;
use crate::process;
use crate::sync;
use crate::workspace::{SourceKind, Workspace};
use plan::{
    add_extras, check_desc, commit_time, pick_components, pin_of, workspace_recipes, ExtraFile, Part, Plan, Repos,
};
use sha2::Digest;
use write::{hex, new_sums, write_files, Hashing};

pub const SUMS_FILE: &str = "SHA256SUMS";

/// What the `{desc}` of a tarball's name is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Desc {
    /// `git describe --tags` of the root's pinned commit (`make src-tarball`).
    #[default]
    Describe,
    /// As given (`--desc`).
    Given(String),
    /// xen's own version, `make -C xen xenversion` (`make src-tarball-release`).
    XenVersion,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub desc: Desc,
    pub out: Option<PathBuf>,
    pub formats: Vec<Format>,
    /// Inline only these (the root always); default: every enabled
    /// component with an `intree` path.
    pub components: Vec<String>,
    pub session: crate::session::Session,
    /// Sign the tarballs and SHA256SUMS with this gpg key.
    pub sign: Option<String>,
    /// `--sbom-creator`: who makes the release (else `[tarball] creator`).
    pub creator: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Made {
    pub path: PathBuf,
    pub format: Format,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Inlined {
    pub name: String,
    /// Where it sits inside the tarball's top folder (`.` for the root).
    pub at: String,
    pub commit: String,
    pub describe: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub top: String,
    pub entries: usize,
    pub components: Vec<Inlined>,
    pub files: Vec<Made>,
    /// The SBOMs beside the tarballs: SPDX 2.3, SPDX 3.0, CycloneDX 1.6.
    pub sboms: Vec<PathBuf>,
    /// Detached signatures made (`--sign`).
    pub signatures: Vec<PathBuf>,
}

pub fn run(ws: &Workspace, options: &Options, printer: &Printer) -> Result<Outcome> {
    let tarball = ws.manifest.tarball.clone().ok_or_else(|| {
        anyhow!(
            "{} has no [tarball] table; add one naming the root component, e.g.\n  [tarball]\n  root = \"xen\"\n  name = \"xen-{{desc}}\"",
            ws.manifest.display_name
        )
    })?;
    let root = ws
        .manifest
        .component(&tarball.root)
        .ok_or_else(|| anyhow!("tarball root `{}` is not a component", tarball.root))?;
    let inlined = pick_components(&ws.manifest, &tarball, &options.components, printer)?;
    if let Some(key) = &options.sign {
        sign::check_key(key)?;
    }
    // Where each tree's license is, before anything is written: no recipe
    // means the usual license files; a recipe that is wrong is said.
    let mut recipes = Vec::new();
    for component in std::iter::once(root).chain(inlined.iter().copied()) {
        recipes.push(crate::recipe::Recipe::find(&ws.recipes_root, &component.recipe)?);
    }
    // `--sbom-creator` names who makes this release; the embedded manifest
    // records it, so a verifier writes the same SBOMs.
    let mut tarball = tarball.clone();
    if let Some(creator) = &options.creator {
        tarball.creator =
            Some(crate::manifest::check_party(creator).map_err(|m| anyhow!("--sbom-creator {creator}: {m}"))?);
    }
    let tarball = &tarball;

    // Pins and objects, without touching any checkout.
    let mut names: Vec<String> = vec![root.name.clone()];
    names.extend(inlined.iter().map(|c| c.name.clone()));
    let intree = std::iter::once(root)
        .chain(inlined.iter().copied())
        .find(|c| ws.source(c) == SourceKind::Intree);
    if let Some(component) = intree {
        bail!(
            "`{}` is an in-tree copy here (no git history to read): make tarballs from a workspace with git checkouts",
            component.name
        );
    }
    let sync_options = sync::Options {
        mode: sync::Mode::Resolve,
        session: options.session,
    };
    sync::run(ws, &names, true, &sync_options, printer)?;
    let cache = ws.git_cache()?;
    let (parts, entries) = pinned_parts(ws, &cache, root, &inlined, printer)?;
    let desc = desc_of(&options.desc, root, &parts[0], &entries[0], printer)?;
    let top = tarball.name.replace("{desc}", &desc);
    let mut embedded_components: Vec<&Component> = vec![root];
    embedded_components.extend(inlined.iter().copied());
    let mut extra = embedded::files(&top, &ws.manifest, tarball, &embedded_components, &entries);
    extra.extend(workspace_recipes(ws, &embedded_components)?);

    let log = process::log_path(&ws.state_dir(), "tarball");
    let mut repos = Repos::new(
        cache,
        options.session.offline(),
        ws.fetch_override.or(root.fetch).unwrap_or_default(),
        log,
        printer.clone(),
    );
    let mtime = commit_time(repos.open_dir(&parts[0].repo_dir)?, parts[0].commit, &parts[0].url)?;
    let plan = Plan {
        top: top.clone(),
        mtime,
        parts,
        extra,
    };
    let tree_entries = plan.entries(&mut repos)?;

    let formats = if options.formats.is_empty() {
        tarball
            .formats
            .iter()
            .filter_map(|f| Format::parse(f))
            .collect::<Vec<_>>()
    } else {
        options.formats.clone()
    };
    let out_dir = options.out.clone().unwrap_or_else(|| ws.root.join("dist"));
    let files = write_files(
        &plan,
        &tree_entries,
        &repos,
        &formats,
        &out_dir,
        options.session.jobs,
        printer,
    )?;
    crate::fault::point("tarball-written");
    let in_it: Vec<&Component> = std::iter::once(root).chain(inlined.iter().copied()).collect();
    let packages = packages_of(&plan.parts, &entries, &recipes, &in_it);
    let facts = sbom::facts(
        &top,
        mtime,
        tarball.creator.as_deref(),
        &packages,
        &tree_entries,
        &repos,
    );
    for note in &facts.notes {
        printer.warn(note);
    }
    let (sboms, signatures) = write_beside(&facts, &files, &out_dir, &top, options.sign.as_deref(), printer)?;

    Ok(Outcome {
        top,
        entries: tree_entries.len(),
        components: inlined_of(&plan.parts, &entries),
        files,
        sboms,
        signatures,
    })
}

/// Each tree's pin, read from the lock sync has just written, with where
/// its objects are and where it goes in the tarball.
fn pinned_parts(
    ws: &Workspace,
    cache: &crate::git::Cache,
    root: &Component,
    inlined: &[&Component],
    printer: &Printer,
) -> Result<(Vec<Part>, Vec<crate::lock::LockEntry>)> {
    let lock = ws.load_lock()?;
    let mut parts = Vec::new();
    let mut entries = Vec::new();
    for component in std::iter::once(root).chain(inlined.iter().copied()) {
        let (mut entry, repo_dir) = pin_of(ws, cache, component, lock.get(&component.name), printer)?;
        if ws.source(component) != SourceKind::Local {
            mark_foreign_pin(cache, component, &mut entry, printer)?;
        }
        let at = if component.name == root.name {
            Vec::new()
        } else {
            component
                .intree
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned().into_bytes())
                .unwrap_or_default()
        };
        parts.push(Part {
            name: component.name.clone(),
            url: component.url.clone(),
            commit: Oid::from_str(&entry.commit)?,
            repo_dir,
            at,
            submodules: component.submodules.clone(),
        });
        entries.push(entry);
    }
    Ok((parts, entries))
}

/// The tarball's description: given, `git describe` of the root, or the
/// root's Xen version.
fn desc_of(
    desc: &Desc,
    root: &Component,
    part: &Part,
    entry: &crate::lock::LockEntry,
    printer: &Printer,
) -> Result<String> {
    let desc = match desc {
        Desc::Given(desc) => desc.clone(),
        Desc::Describe => entry.describe.clone(),
        Desc::XenVersion => {
            let repo = git2::Repository::open(&part.repo_dir)?;
            let version = xen_version::of(&repo, part.commit, &format!("`{}`", root.name), |name| {
                std::env::var(name).ok()
            })?;
            printer.status(
                "Version",
                format!("{version} (`make -C xen xenversion` of {})", entry.short()),
            );
            version
        }
    };
    check_desc(&desc)?;
    Ok(desc)
}

/// What goes beside the tarballs: the SBOMs, SHA256SUMS, and with a key
/// the detached signatures of the tarballs and the sums.
fn write_beside(
    facts: &sbom::Facts,
    files: &[Made],
    out_dir: &Path,
    top: &str,
    sign: Option<&str>,
    printer: &Printer,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let documents = facts.documents(&artifacts_of(files)?)?;
    let mut sums: Vec<(String, String)> = files.iter().map(|f| (file_name(&f.path), f.sha256.clone())).collect();
    let sboms = write_sboms(out_dir, top, &documents, &mut sums)?;
    write_sums(out_dir, &sums, sign.is_some(), printer)?;
    let mut signatures = Vec::new();
    if let Some(key) = sign {
        for path in files.iter().map(|f| f.path.clone()).chain([out_dir.join(SUMS_FILE)]) {
            signatures.push(sign::sign(&path, key)?);
        }
    }
    Ok((sboms, signatures))
}

/// A fork's commit (fetched from a mirror, an override or a rewritten
/// url, never seen in the url itself): the tarball's lock says so, and its
/// SBOMs then name no download place.
fn mark_foreign_pin(
    cache: &crate::git::Cache,
    component: &Component,
    entry: &mut crate::lock::LockEntry,
    printer: &Printer,
) -> Result<()> {
    let commit = Oid::from_str(&entry.commit)?;
    let url = crate::validate::redact_url(&component.url);
    let why = match cache.store(&component.url, printer)?.url_has(commit) {
        Some(true) => None,
        Some(false) => Some(format!("no branch or tag of {url} holds this commit (a fork's)")),
        None => Some(format!(
            "{url} itself was never seen holding this commit (it came from a mirror, an override or a rewritten url)"
        )),
    };
    if let Some(why) = why {
        entry.not_in_url = true;
        printer.warn(format!(
            "`{}` {}: {why}; the SBOMs give no download location for it",
            component.name,
            entry.short(),
        ));
    }
    Ok(())
}

/// What the tarball holds, as its outcome says: each tree, where, at which commit.
fn inlined_of(parts: &[Part], entries: &[crate::lock::LockEntry]) -> Vec<Inlined> {
    parts
        .iter()
        .zip(entries)
        .map(|(part, entry)| Inlined {
            name: part.name.clone(),
            at: if part.at.is_empty() {
                ".".into()
            } else {
                String::from_utf8_lossy(&part.at).into_owned()
            },
            commit: entry.commit.clone(),
            describe: entry.describe.clone(),
        })
        .collect()
}

/// Each tree as an SBOM package: its pin, its license (from its recipe)
/// and its supplier (from the manifest).
fn packages_of(
    parts: &[Part],
    entries: &[crate::lock::LockEntry],
    recipes: &[Option<crate::recipe::Recipe>],
    components: &[&Component],
) -> Vec<sbom::Package> {
    parts
        .iter()
        .zip(entries)
        .zip(recipes)
        .map(|((part, entry), recipe)| {
            let supplier = components
                .iter()
                .find(|c| c.name == part.name)
                .and_then(|c| c.supplier.clone());
            sbom::Package::of(part, entry, recipe.as_ref(), supplier)
        })
        .collect()
}

/// The tarballs as the SBOMs name them, with both digests, by name.
fn artifacts_of(files: &[Made]) -> Result<Vec<sbom::Artifact>> {
    let mut artifacts = Vec::new();
    for made in files {
        artifacts.push(sbom::Artifact {
            name: file_name(&made.path),
            sha256: made.sha256.clone(),
            sha512: crate::fsutil::file_digest::<sha2::Sha512>(&made.path)?,
        });
    }
    artifacts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(artifacts)
}

/// The three SBOM files beside the tarballs, each added to `sums`.
fn write_sboms(
    out_dir: &std::path::Path,
    top: &str,
    documents: &sbom::Documents,
    sums: &mut Vec<(String, String)>,
) -> Result<Vec<std::path::PathBuf>> {
    let mut sboms = Vec::new();
    for (name, bytes) in
        sbom::file_names(top)
            .into_iter()
            .zip([&documents.spdx2, &documents.spdx3, &documents.cyclonedx])
    {
        let path = out_dir.join(&name);
        crate::fsutil::atomic_write(&path, bytes)?;
        sums.push((name, hex(&sha2::Sha256::digest(bytes))));
        sboms.push(path);
    }
    Ok(sboms)
}

/// SHA256SUMS, written once the signatures of files rewritten with other
/// bytes are gone: it still held what they were, so a run killed after
/// it never leaves a wrong signature behind. `signing`: this run signs
/// again (nothing to warn of).
fn write_sums(out_dir: &std::path::Path, sums: &[(String, String)], signing: bool, printer: &Printer) -> Result<()> {
    let (sums_text, changed) = new_sums(out_dir, sums);
    for name in changed {
        for ext in ["asc", "sig"] {
            let stale = out_dir.join(format!("{name}.{ext}"));
            if stale.is_file() && std::fs::remove_file(&stale).is_ok() && !signing {
                printer.warn(format!(
                    "removed {}: {name} was rewritten with other bytes since it was signed (sign again with --sign KEY)",
                    stale.display()
                ));
            }
        }
    }
    crate::fsutil::atomic_write(&out_dir.join(SUMS_FILE), sums_text.as_bytes())?;
    crate::fault::point("tarball-sums-written");
    Ok(())
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
