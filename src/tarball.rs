//! Release tarballs (what Xen's `tools/misc/mktarball` makes): the root
//! component's tree at `{name}/`, every other inlined component at its
//! `intree` path, read straight from the git object store at the locked
//! commits; byte-for-byte reproducible; a manifest and lock inside so the
//! unpacked tree builds offline; `SHA256SUMS` beside it.

mod archive;
pub(crate) mod attrs;
mod compress;
mod embedded;
mod subst;
mod tree;
mod verify;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use git2::Repository;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use compress::Format;
pub use verify::{inspect, verify, Verdict, VerifyOptions};

use crate::fsutil;
use crate::git::{self, Cache, Checkout, Oid, TreeState};
use crate::lock::LockEntry;
use crate::manifest::{Component, Manifest, Tarball};
use crate::printer::Printer;
use crate::process;
use crate::sync;
use crate::workspace::{SourceKind, Workspace};
use tree::{Entry, Kind};

pub const SUMS_FILE: &str = "SHA256SUMS";

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub desc: Option<String>,
    pub out: Option<PathBuf>,
    pub formats: Vec<Format>,
    /// Inline only these (the root always); default: every enabled
    /// component with an `intree` path.
    pub components: Vec<String>,
    pub offline: bool,
    pub locked: bool,
    pub jobs: usize,
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
}

/// One tree that goes in.
#[derive(Clone, Debug)]
struct Part {
    name: String,
    url: String,
    commit: Oid,
    /// The repository holding its objects: a cache store, or your checkout.
    repo_dir: PathBuf,
    /// Path bytes below the top folder; empty for the root.
    at: Vec<u8>,
    submodules: bool,
}

/// A file sultana writes into the tarball: path below the top folder,
/// content, executable.
type ExtraFile = (Vec<u8>, Vec<u8>, bool);

/// Everything the tarball is made of.
struct Plan {
    top: String,
    mtime: u64,
    parts: Vec<Part>,
    /// Files sultana writes: (path below the top, content, executable).
    extra: Vec<ExtraFile>,
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

    // Pins and objects, without touching any checkout.
    let mut names: Vec<String> = vec![root.name.clone()];
    names.extend(inlined.iter().map(|c| c.name.clone()));
    for component in std::iter::once(root).chain(inlined.iter().copied()) {
        if ws.source(component) == SourceKind::Intree {
            bail!(
                "`{}` is an in-tree copy here (no git history to read): make tarballs from a workspace with git checkouts",
                component.name
            );
        }
    }
    let sync_options = sync::Options {
        mode: sync::Mode::Resolve,
        offline: options.offline,
        locked: options.locked,
        jobs: options.jobs,
    };
    sync::run(ws, &names, true, &sync_options, printer)?;
    let lock = ws.load_lock()?;
    let cache = Cache::locate()?;

    let mut parts = Vec::new();
    let mut entries = Vec::new();
    for component in std::iter::once(root).chain(inlined.iter().copied()) {
        let (entry, repo_dir) = pin_of(ws, &cache, component, lock.get(&component.name), printer)?;
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
            submodules: component.submodules,
        });
        entries.push(entry);
    }

    let desc = match &options.desc {
        Some(desc) => desc.clone(),
        None => entries[0].describe.clone(),
    };
    check_desc(&desc)?;
    let top = tarball.name.replace("{desc}", &desc);
    let mut embedded_components: Vec<&Component> = vec![root];
    embedded_components.extend(inlined.iter().copied());
    let mut extra = vec![
        (
            b"sultana.toml".to_vec(),
            embedded::manifest_text(&top, &ws.manifest, &tarball, &embedded_components).into_bytes(),
            false,
        ),
        (
            b"sultana.lock".to_vec(),
            embedded::lock_text(&entries).into_bytes(),
            false,
        ),
    ];
    extra.extend(workspace_recipes(ws, &embedded_components)?);

    let log = process::log_path(&ws.state_dir(), "tarball");
    let mut repos = Repos::new(cache, options.offline, log, printer.clone());
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
    let files = write_files(&plan, &tree_entries, &repos, &formats, &out_dir, options.jobs, printer)?;
    crate::fault::point("tarball-written");
    update_sums(&out_dir, &files)?;

    let components = plan
        .parts
        .iter()
        .zip(&entries)
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
        .collect();
    Ok(Outcome {
        top,
        entries: tree_entries.len(),
        components,
        files,
    })
}

/// The root's companions: named ones (each needs an `intree`), or every
/// enabled component that has one.
fn pick_components<'a>(
    manifest: &'a Manifest,
    tarball: &Tarball,
    names: &[String],
    printer: &Printer,
) -> Result<Vec<&'a Component>> {
    if !names.is_empty() {
        let mut out = Vec::new();
        for component in manifest.select(names, true)? {
            if component.name == tarball.root {
                continue;
            }
            if component.intree.is_none() {
                bail!(
                    "`{}` has no `intree` path, so it has no place inside the tarball; add e.g. `intree = \"tools/{}\"` under [components.{}]",
                    component.name,
                    component.name,
                    component.name
                );
            }
            out.push(component);
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for component in manifest
        .components
        .iter()
        .filter(|c| c.enabled && c.name != tarball.root)
    {
        if component.intree.is_some() {
            out.push(component);
        } else {
            printer.warn(format!(
                "`{}` is not in the tarball: it has no `intree` path",
                component.name
            ));
        }
    }
    Ok(out)
}

/// The lock entry and object store of a component; your own checkout (a
/// local override) is taken at its HEAD.
fn pin_of(
    ws: &Workspace,
    cache: &Cache,
    component: &Component,
    locked: Option<&LockEntry>,
    printer: &Printer,
) -> Result<(LockEntry, PathBuf)> {
    let path = ws.tree_path(component);
    if ws.source(component) == SourceKind::Local {
        let checkout = Checkout::open(&path)?;
        let head = checkout
            .head()
            .ok_or_else(|| anyhow!("{} has no commit checked out", path.display()))?;
        warn_local_changes(ws, cache, component, &checkout, printer);
        printer.warn(format!(
            "`{}` comes from your checkout {} at {} (a local override), not from a pin",
            component.name,
            path.display(),
            git::short(head)
        ));
        let describe = describe_in(checkout.repo(), head);
        let entry = LockEntry {
            name: component.name.clone(),
            url: component.url.clone(),
            revision: component.revision.clone(),
            commit: head.to_string(),
            describe,
            source: None,
        };
        return Ok((entry, checkout.repo().path().to_path_buf()));
    }
    let entry = locked
        .cloned()
        .ok_or_else(|| anyhow!("`{}` is not in sultana.lock", component.name))?;
    if git::tree_state(&path) == TreeState::Git {
        if let Ok(checkout) = Checkout::open(&path) {
            if checkout.head().map(|h| h.to_string()) != Some(entry.commit.clone()) {
                printer.warn(format!(
                    "{} is not checked out at its pin; the tarball has the pinned commit {}",
                    ws.display_path(&path),
                    entry.short()
                ));
            } else {
                warn_local_changes(ws, cache, component, &checkout, printer);
            }
        }
    }
    let store = cache
        .existing_store(&component.url)
        .ok_or_else(|| anyhow!("the cache has no store for {}", component.url))?;
    Ok((entry, store.dir.clone()))
}

fn warn_local_changes(ws: &Workspace, cache: &Cache, component: &Component, checkout: &Checkout, printer: &Printer) {
    let store = cache.existing_store(&component.url);
    if let Ok(dirt) = checkout.dirt(store.as_ref(), None) {
        if dirt.changed > 0 || dirt.untracked > 0 {
            printer.warn(format!(
                "{} has local changes ({}); they are not in the tarball, which is made from commits",
                ws.display_path(&checkout.path),
                dirt.summary()
            ));
        }
    }
}

fn describe_in(repo: &Repository, oid: Oid) -> String {
    repo.find_commit(oid)
        .and_then(|commit| {
            let mut options = git2::DescribeOptions::new();
            options.describe_tags();
            commit.as_object().describe(&options)?.format(None)
        })
        .unwrap_or_else(|_| git::short(oid))
}

fn commit_time(repo: &Repository, commit: Oid, url: &str) -> Result<u64> {
    let commit = repo
        .find_commit(commit)
        .with_context(|| format!("commit {commit} of {url} is not in the cache"))?;
    let seconds = commit.committer().when().seconds();
    Ok(seconds.max(0) as u64)
}

/// A description that is safe in a file name.
fn check_desc(desc: &str) -> Result<()> {
    let ok = !desc.is_empty()
        && desc.len() <= 100
        && !desc.starts_with(['.', '-'])
        && desc.chars().all(|c| c.is_ascii_alphanumeric() || "._+-~".contains(c));
    if !ok {
        bail!(
            "tarball description `{desc}` may only use letters, digits and `._+-~`, and must not start with `.` or `-`"
        );
    }
    Ok(())
}

/// The workspace's own recipes (and their test scripts) for the components
/// inside, so the unpacked tree builds with the same recipes.
fn workspace_recipes(ws: &Workspace, components: &[&Component]) -> Result<Vec<ExtraFile>> {
    let mut out = Vec::new();
    let dir = ws.recipes_root.join("recipes");
    let mut recipes: Vec<&str> = components.iter().map(|c| c.recipe.as_str()).collect();
    recipes.sort();
    recipes.dedup();
    for recipe in recipes {
        let file = dir.join(format!("{recipe}.toml"));
        if file.is_file() {
            out.push(read_extra(&file, &format!("recipes/{recipe}.toml"))?);
        }
        let tests = dir.join("tests").join(recipe);
        if tests.is_dir() {
            let mut files = Vec::new();
            walk_files(&tests, &mut files)?;
            for file in files {
                let rel = file.strip_prefix(&dir).unwrap_or(&file);
                out.push(read_extra(&file, &format!("recipes/{}", rel.display()))?);
            }
        }
    }
    Ok(out)
}

fn read_extra(file: &Path, at: &str) -> Result<ExtraFile> {
    let meta = std::fs::symlink_metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a plain file; recipes go into the tarball as files",
            file.display()
        );
    }
    let content = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok((at.as_bytes().to_vec(), content, meta.permissions().mode() & 0o111 != 0))
}

fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

impl Plan {
    /// Every entry, sorted, with the folders their paths imply.
    fn entries(&self, repos: &mut Repos) -> Result<BTreeMap<Vec<u8>, Entry>> {
        let mut out = self.git_entries(repos)?;
        add_extras(&mut out, &self.extra)?;
        Ok(out)
    }

    /// The entries of the parts' git trees.
    fn git_entries(&self, repos: &mut Repos) -> Result<BTreeMap<Vec<u8>, Entry>> {
        let mut out: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
        for part in &self.parts {
            if !part.at.is_empty() {
                let mut below = part.at.clone();
                below.push(b'/');
                let taken = out.contains_key(&part.at)
                    || out
                        .range(below.clone()..)
                        .next()
                        .is_some_and(|(k, _)| k.starts_with(&below));
                if taken {
                    bail!(
                        "the root tree already has `{}`, where `{}` would go (its `intree` path); pick a path the root tree does not have",
                        String::from_utf8_lossy(&part.at),
                        part.name
                    );
                }
            }
            repos.open_dir(&part.repo_dir)?;
            let index = repos.index_of(&part.repo_dir);
            tree::collect(
                repos,
                index,
                &part.url,
                part.commit,
                &part.at,
                part.submodules,
                &mut out,
            )?;
        }
        add_parents(&mut out)?;
        check_links(&out)?;
        Ok(out)
    }
}

/// Every symlink of the tarball resolved through the others: none leaves it.
fn check_links(out: &BTreeMap<Vec<u8>, Entry>) -> Result<()> {
    let symlinks: BTreeMap<Vec<u8>, Vec<u8>> = out
        .iter()
        .filter_map(|(path, e)| match &e.kind {
            Kind::Symlink { target } => Some((path.clone(), target.clone())),
            _ => None,
        })
        .collect();
    crate::symlinks::check_all(&symlinks, out.keys().map(Vec::as_slice)).map_err(|(path, m)| {
        anyhow!(
            "the tree has a symlink that is refused: `{}` {m}",
            String::from_utf8_lossy(&path)
        )
    })
}

/// Files sultana writes, and the folders they need.
fn add_extras(out: &mut BTreeMap<Vec<u8>, Entry>, extra: &[ExtraFile]) -> Result<()> {
    for (path, content, executable) in extra {
        let kind = Kind::Extra {
            content: content.clone(),
            executable: *executable,
        };
        tree::insert(out, path.clone(), kind, 0, "sultana").map_err(|_| {
            anyhow!(
                "the root tree already has `{}`, which sultana writes into the tarball",
                String::from_utf8_lossy(path)
            )
        })?;
    }
    add_parents(out)
}

fn add_parents(out: &mut BTreeMap<Vec<u8>, Entry>) -> Result<()> {
    let parents: Vec<Vec<u8>> = out
        .keys()
        .flat_map(|path| {
            path.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'/')
                .map(|(i, _)| path[..i].to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    for parent in parents {
        tree::insert(out, parent, Kind::Dir, 0, "sultana")?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Repositories whose objects the tarball reads, opened once each; fetches
/// submodule commits the cache lacks.
struct Repos {
    cache: Cache,
    offline: bool,
    log: PathBuf,
    printer: Printer,
    dirs: Vec<PathBuf>,
    repos: Vec<Repository>,
}

impl Repos {
    fn new(cache: Cache, offline: bool, log: PathBuf, printer: Printer) -> Repos {
        Repos {
            cache,
            offline,
            log,
            printer,
            dirs: Vec::new(),
            repos: Vec::new(),
        }
    }

    fn index_of(&self, dir: &Path) -> usize {
        self.dirs.iter().position(|d| d == dir).unwrap_or(0)
    }

    fn open_dir(&mut self, dir: &Path) -> Result<&Repository> {
        if let Some(i) = self.dirs.iter().position(|d| d == dir) {
            return Ok(&self.repos[i]);
        }
        let repo = Repository::open(dir).map_err(|e| anyhow!("cannot open {}: {}", dir.display(), git::message(&e)))?;
        self.dirs.push(dir.to_path_buf());
        self.repos.push(repo);
        Ok(&self.repos[self.repos.len() - 1])
    }
}

impl tree::SubmoduleStores for Repos {
    fn open(&mut self, url: &str, commit: Oid, path: &str) -> Result<usize> {
        let store = self.cache.store(url, &self.printer)?;
        if !store.has_commit(commit) {
            if self.offline {
                bail!("submodule {path} needs commit {commit} from {url}, which is not in the cache, but --offline was given");
            }
            self.printer.status("Fetching", format!("submodule {path} from {url}"));
            let progress = self.printer.progress(path);
            store.fetch(&[url.to_string()], Some(commit), &self.log, &self.printer, &progress)?;
        }
        let dir = store.dir.clone();
        self.open_dir(&dir)?;
        Ok(self.index_of(&dir))
    }

    fn repo(&self, index: usize) -> &Repository {
        &self.repos[index]
    }
}

/// sha256 of what passes through, and a count.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One tar stream into every format's compressor at once.
struct Tee<W: Write>(Vec<compress::ParallelWriter<W>>);

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for writer in &mut self.0 {
            writer.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Write the tar stream compressed in every format into `out_dir`, each
/// through a temporary file renamed into place when complete.
fn write_files(
    plan: &Plan,
    entries: &BTreeMap<Vec<u8>, Entry>,
    repos: &Repos,
    formats: &[Format],
    out_dir: &Path,
    jobs: usize,
    printer: &Printer,
) -> Result<Vec<Made>> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    // What a killed run left: temporary files (of tarballs, of SHA256SUMS),
    // never taken for the real thing.
    let stale = format!(".{}.", plan.top);
    for entry in std::fs::read_dir(out_dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&stale) || name.starts_with(".sultana-tmp-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let mut formats = formats.to_vec();
    formats.sort();
    formats.dedup();
    if formats.is_empty() {
        bail!("no tarball format: give --format gz, xz or zst");
    }
    let mut temps = Vec::new();
    let mut writers = Vec::new();
    for format in &formats {
        let final_path = out_dir.join(format!("{}.{}", plan.top, format.extension()));
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", plan.top))
            .tempfile_in(out_dir)
            .with_context(|| format!("cannot create a temporary file in {}", out_dir.display()))?;
        let file = temp.reopen()?;
        writers.push(compress::ParallelWriter::new(
            *format,
            jobs,
            Hashing {
                inner: io::BufWriter::new(file),
                hash: Sha256::new(),
            },
        ));
        temps.push((temp, final_path, *format));
        printer.status("Packing", format!("{}.{}", plan.top, format.extension()));
    }
    let progress = printer.progress("Packing");
    let archive = archive::Archive {
        top: &plan.top,
        mtime: plan.mtime,
        entries,
        repos: &repos.repos,
    };
    let tee = archive.write(Tee(writers), |done, total| progress.update(done, total, "entries"))?;
    drop(progress);
    let mut made = Vec::new();
    for (writer, (temp, final_path, format)) in tee.0.into_iter().zip(temps) {
        let (hashing, bytes) = writer.finish().context("cannot compress the tarball")?;
        let sha256 = hex(&hashing.hash.finalize());
        let file = hashing
            .inner
            .into_inner()
            .map_err(|e| anyhow!("cannot write the tarball: {}", e.error()))?;
        file.sync_all()?;
        drop(file);
        crate::fault::point("tarball-before-rename");
        let mut permissions = std::fs::metadata(temp.path())?.permissions();
        permissions.set_mode(0o644);
        std::fs::set_permissions(temp.path(), permissions)?;
        temp.persist(&final_path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", final_path.display()))?;
        made.push(Made {
            path: final_path,
            format,
            bytes,
            sha256,
        });
    }
    Ok(made)
}

/// Add or replace the lines of `files` in `SHA256SUMS` (sha256sum's format),
/// keeping those of other files.
fn update_sums(out_dir: &Path, files: &[Made]) -> Result<()> {
    let path = out_dir.join(SUMS_FILE);
    let mut lines: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&path) {
        for line in text.lines() {
            if let Some((hash, name)) = line.split_once("  ") {
                lines.insert(name.to_string(), hash.to_string());
            }
        }
    }
    for file in files {
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        lines.insert(name, file.sha256.clone());
    }
    let text: String = lines.iter().map(|(name, hash)| format!("{hash}  {name}\n")).collect();
    fsutil::atomic_write(&path, text.as_bytes())
}
