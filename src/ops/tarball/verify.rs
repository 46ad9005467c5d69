//! `verify-tarball FILE`: make the tarball again from the manifest and lock
//! inside it (fetching commits the cache lacks) and compare byte for byte;
//! on a difference, name the first entry that differs.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::compress::{Format, ParallelWriter};
use super::tree;
use super::{add_extras, archive, embedded, hex, ExtraFile, Hashing, Inlined, Part, Plan, Repos};
use super::{sbom, sign};
use crate::git::{Cache, FetchMode, Need, Oid};
use crate::lock::Lock;
use crate::manifest::Manifest;
use crate::printer::Printer;

#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    pub session: crate::session::Session,
    /// Fetch from mirrors named inside the tarball too.
    pub use_mirrors: bool,
    /// Where to fetch a url from instead (`--url-rewrite`).
    pub rewrites: crate::manifest::UrlRewrites,
    /// How a missing locked tree is fetched (default: that commit only).
    pub mode: FetchMode,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub file: PathBuf,
    pub identical: bool,
    pub top: String,
    pub format: Format,
    pub entries: usize,
    pub sha256: String,
    /// The first difference, when not identical.
    pub difference: Option<String>,
    pub components: Vec<Inlined>,
    /// What was checked beside the file: its signature, SHA256SUMS (and its
    /// signature), the SBOM.
    pub beside: Vec<Beside>,
}

/// One check of a file found beside the tarball.
#[derive(Clone, Debug, Serialize)]
pub struct Beside {
    pub file: PathBuf,
    pub ok: bool,
    /// What was found, in words (a good signature names its key's fingerprint).
    pub detail: String,
}

impl Verdict {
    /// Whether anything failed: the tarball differs, or a check beside it.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self.difference.iter().cloned().collect();
        out.extend(
            self.beside
                .iter()
                .filter(|b| !b.ok)
                .map(|b| format!("{}: {}", b.file.display(), b.detail)),
        );
        out
    }
}

/// What the first reading of the tarball keeps.
struct Given {
    top: String,
    manifest: Vec<u8>,
    lock: Vec<u8>,
    /// Files under `recipes/`: written by sultana from the workspace, not
    /// from git, so taken as they are.
    recipes: Vec<ExtraFile>,
}

pub fn verify(file: &Path, options: &VerifyOptions, printer: &Printer) -> Result<Verdict> {
    let format = sniff(file)?;
    let name = file.display().to_string();
    let given = read_given(file, format)?;
    let manifest_name = format!("{name}:{}/sultana.toml", given.top);
    let (manifest, lock) = parse_given(&given, &name)?;
    let tarball = manifest
        .tarball
        .clone()
        .ok_or_else(|| anyhow!("{manifest_name} has no [tarball] table: not a tarball sultana made"))?;
    let desc = desc_of(&given.top, &tarball.name).ok_or_else(|| {
        anyhow!(
            "{name}: its folder `{}` does not match the name pattern `{}`",
            given.top,
            tarball.name
        )
    })?;
    printer.status("Verifying", format!("{name} ({}, description {desc})", given.top));

    let cache = Cache::locate()?
        .rewriting(&options.rewrites)
        .hinting(crate::git::Elsewhere::UrlRewriteOption);
    let log = cache
        .root()
        .parent()
        .unwrap_or(cache.root())
        .join("logs")
        .join("verify-tarball.log");
    let mut components: Vec<&crate::manifest::Component> = manifest.components.iter().collect();
    components.sort_by_key(|c| (c.name != tarball.root, c.name.clone()));
    let inside = Inside {
        name: &name,
        manifest_name: &manifest_name,
        root: &tarball.root,
        lock: &lock,
    };
    let fetched = fetch_parts(&inside, &components, &cache, &log, options, printer)?;
    let lock_entries: Vec<_> = lock.entries.values().cloned().collect();
    let mut repos = Repos::new(cache, options.session.offline(), options.mode, log, printer.clone());
    let parts = fetched.parts;
    let mtime = super::commit_time(repos.open_dir(&parts[0].repo_dir)?, parts[0].commit, &parts[0].url)?;
    let plan = Plan {
        top: given.top.clone(),
        mtime,
        parts,
        extra: embedded::files(&given.top, &manifest, &tarball, &components, &lock_entries),
    };
    let mut rebuilt = plan.git_entries(&mut repos)?;
    let mut extra = plan.extra.clone();
    extra.extend(
        given
            .recipes
            .iter()
            .filter(|(path, _, _)| !rebuilt.contains_key(path))
            .cloned(),
    );
    add_extras(&mut rebuilt, &extra)?;

    let (tar, rebuilt_sha) = write_again(&plan, &rebuilt, &repos, format, options.session.jobs, printer)?;
    let given_sha = sha256_of(file)?;
    let difference = if rebuilt_sha == given_sha {
        None
    } else {
        Some(difference(file, format, tar).with_context(|| format!("{name}: cannot read it"))?)
    };
    // Beside it: the SBOM sultana would write, SHA256SUMS, signatures.
    let packages: Vec<sbom::Package> = plan
        .parts
        .iter()
        .zip(&fetched.locked)
        .zip(&components)
        .map(|((part, entry), component)| {
            let recipe = recipe_of(&given, &component.recipe);
            sbom::Package::of(part, entry, recipe.as_ref(), component.supplier.clone())
        })
        .collect();
    let facts = sbom::facts(
        &plan.top,
        plan.mtime,
        tarball.creator.as_deref(),
        &packages,
        &rebuilt,
        &repos,
    );
    let artifacts = artifacts_beside(file, &plan.top)?;
    let documents = facts.documents(&artifacts)?;
    let sboms: Vec<(String, Vec<u8>)> = sbom::file_names(&plan.top)
        .into_iter()
        .zip([documents.spdx2, documents.spdx3, documents.cyclonedx])
        .collect();
    let beside = check_beside(file, &sboms)?;
    Ok(Verdict {
        beside,
        file: file.to_path_buf(),
        identical: difference.is_none(),
        top: plan.top,
        format,
        entries: rebuilt.len(),
        sha256: given_sha,
        difference,
        components: super::inlined_of(&plan.parts, &fetched.locked),
    })
}

/// What the tarball's own manifest and lock say, named for messages.
struct Inside<'a> {
    name: &'a str,
    manifest_name: &'a str,
    root: &'a str,
    lock: &'a Lock,
}

/// Each component's locked commit, fetched into the cache where missing.
struct Fetched {
    parts: Vec<Part>,
    locked: Vec<crate::lock::LockEntry>,
}

fn fetch_parts(
    inside: &Inside,
    components: &[&crate::manifest::Component],
    cache: &Cache,
    log: &Path,
    options: &VerifyOptions,
    printer: &Printer,
) -> Result<Fetched> {
    let name = inside.name;
    let mut fetched = Fetched {
        parts: Vec::new(),
        locked: Vec::new(),
    };
    for component in components {
        let entry = inside
            .lock
            .get(&component.name)
            .ok_or_else(|| anyhow!("{name}: its lock has no entry for `{}`", component.name))?;
        fetched.locked.push(entry.clone());
        let commit = Oid::from_str(&entry.commit)?;
        let at = if component.name == inside.root {
            Vec::new()
        } else {
            component
                .intree
                .as_ref()
                .ok_or_else(|| anyhow!("{}: `{}` has no intree path", inside.manifest_name, component.name))?
                .to_string_lossy()
                .into_owned()
                .into_bytes()
        };
        let store = cache.store(&component.url, printer)?;
        // The mirrors come from the tarball under test: data, not a place
        // to fetch from unless the user says so.
        let mirrors = if options.use_mirrors {
            component.mirrors.clone()
        } else {
            Vec::new()
        };
        let sources: Vec<String> = mirrors.into_iter().chain([component.url.clone()]).collect();
        let progress = printer.progress(&component.name);
        let need = Need {
            sources: &sources,
            offline: options.session.offline(),
            log,
            printer,
            progress: &progress,
        };
        store.fetch_commit(commit, options.mode, &format!("`{}`", component.name), &need)?;
        fetched.parts.push(Part {
            name: component.name.clone(),
            url: component.url.clone(),
            commit,
            repo_dir: store.dir.clone(),
            at,
            submodules: component.submodules.clone(),
        });
    }
    Ok(fetched)
}

/// The tar stream again, kept in a temporary file for comparing entries,
/// and compressed the same way for comparing the bytes of the file: the
/// stream and the compressed bytes' sha256.
fn write_again(
    plan: &Plan,
    rebuilt: &std::collections::BTreeMap<Vec<u8>, tree::Entry>,
    repos: &Repos,
    format: Format,
    jobs: usize,
    printer: &Printer,
) -> Result<(File, String)> {
    let tar = tempfile::tempfile().context("cannot create a temporary file")?;
    let compressed = ParallelWriter::new(
        format,
        jobs,
        Hashing {
            inner: io::sink(),
            hash: Sha256::new(),
        },
    );
    let archive = archive::Archive {
        top: &plan.top,
        mtime: plan.mtime,
        entries: rebuilt,
        repos: &repos.repos,
    };
    let progress = printer.progress("Verifying");
    let both = archive.write(Both(io::BufWriter::new(tar), compressed), |done, total| {
        progress.update(done, total, "entries")
    })?;
    drop(progress);
    let Both(buffered, compressed) = both;
    let tar = buffered
        .into_inner()
        .map_err(|e| anyhow!("cannot write a temporary file: {}", e.error()))?;
    Ok((tar, hex(&compressed.finish()?.0.hash.finalize())))
}

/// Why a tarball whose bytes differ from the rebuilt ones differs: the
/// first entry, or else the compressed stream.
fn difference(file: &Path, format: Format, mut tar: File) -> Result<String> {
    tar.rewind()?;
    let given_reader = format.decoder(BufReader::new(File::open(file)?))?;
    Ok(match first_difference(given_reader, BufReader::new(tar))? {
        Some(difference) => difference,
        // The tar ends before the compressed stream does: its rest (a
        // trailer, a check) is read too before the tool is blamed.
        None => match io::copy(&mut format.decoder(BufReader::new(File::open(file)?))?, &mut io::sink()) {
            Err(e) => format!("every entry is the same, but the compressed stream is damaged: {e}"),
            Ok(_) => {
                "every entry is the same, but the compressed bytes differ (compressed by another tool or sultana version)"
                    .to_string()
            }
        },
    })
}

struct Both<A: Write, B: Write>(A, B);

impl<A: Write, B: Write> Write for Both<A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

fn sniff(file: &Path) -> Result<Format> {
    let mut magic = [0u8; 6];
    let mut f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let n = f.read(&mut magic)?;
    Format::sniff(&magic[..n])
        .ok_or_else(|| anyhow!("{} is not a gzip, xz, zstd or lzip compressed tarball", file.display()))
}

fn sha512_of(file: &Path) -> Result<String> {
    crate::fsutil::file_digest::<sha2::Sha512>(file)
}

fn sha256_of(file: &Path) -> Result<String> {
    crate::fsutil::file_digest::<Sha256>(file)
}

/// `xen-{desc}` and `xen-4.21.0` give `4.21.0`.
fn desc_of(top: &str, pattern: &str) -> Option<String> {
    let (before, after) = pattern.split_once("{desc}")?;
    let desc = top.strip_prefix(before)?.strip_suffix(after)?;
    (!desc.is_empty()).then(|| desc.to_string())
}

/// Read the whole tarball once: its top folder, manifest, lock and recipes,
/// and refuse entries a tarball of sultana's never has.
fn read_given(file: &Path, format: Format) -> Result<Given> {
    let reader = format.decoder(BufReader::new(File::open(file)?))?;
    read_given_from(reader, &file.display().to_string())
}

/// What `verify-tarball` reads of an untrusted archive before any network or
/// disk work: its entries' paths and links, its folder, manifest and lock.
/// For fuzzing; `bytes` is a compressed tarball.
#[cfg(feature = "fuzzing")]
pub fn inspect(bytes: &[u8], name: &str) -> Result<(Manifest, Lock)> {
    let format =
        Format::sniff(bytes).ok_or_else(|| anyhow!("{name} is not a gzip, xz, zstd or lzip compressed tarball"))?;
    let given = read_given_from(format.decoder(bytes)?, name)?;
    parse_given(&given, name)
}

fn parse_given(given: &Given, name: &str) -> Result<(Manifest, Lock)> {
    let manifest_name = format!("{name}:{}/sultana.toml", given.top);
    let manifest_text =
        std::str::from_utf8(&given.manifest).map_err(|_| anyhow!("{manifest_name} is not UTF-8 text"))?;
    let manifest = Manifest::parse(manifest_text, &manifest_name, None)?;
    let lock_text = std::str::from_utf8(&given.lock)
        .map_err(|_| anyhow!("{name}: {}/sultana.lock is not UTF-8 text", given.top))?;
    let lock = Lock::parse(lock_text, &format!("{name}:{}/sultana.lock", given.top))?;
    Ok((manifest, lock))
}

fn read_given_from<'a>(reader: Box<dyn Read + 'a>, name: &str) -> Result<Given> {
    let mut archive = tar::Archive::new(reader);
    let mut top: Option<Vec<u8>> = None;
    let mut symlinks = std::collections::BTreeMap::new();
    let mut paths: Vec<Vec<u8>> = Vec::new();
    let mut embedded_bytes = 0u64;
    let mut manifest = None;
    let mut lock = None;
    let mut recipes = Vec::new();
    for entry in archive
        .entries()
        .with_context(|| format!("{name} is not a tar archive"))?
    {
        let mut entry = entry.with_context(|| format!("{name}: a damaged tar entry"))?;
        if paths.len() >= MAX_ENTRIES {
            bail!("{name} has more than {MAX_ENTRIES} entries: not a release tarball sultana made");
        }
        let path = entry.path_bytes().into_owned();
        let trimmed: Vec<u8> = path.strip_suffix(b"/").unwrap_or(&path).to_vec();
        check_entry_path(&trimmed).map_err(|m| anyhow!("{name}: entry `{}` {m}", String::from_utf8_lossy(&path)))?;
        let (first, rest) = match trimmed.iter().position(|b| *b == b'/') {
            Some(i) => (trimmed[..i].to_vec(), trimmed[i + 1..].to_vec()),
            None => (trimmed.clone(), Vec::new()),
        };
        match &top {
            None => top = Some(first.clone()),
            Some(t) if *t != first => bail!(
                "{name}: entry `{}` is outside the tarball's folder `{}`",
                String::from_utf8_lossy(&path),
                String::from_utf8_lossy(t)
            ),
            _ => {}
        }
        if entry.header().entry_type().is_symlink() {
            let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
            tree::check_symlink(&rest, &target)
                .map_err(|m| anyhow!("{name}: symlink `{}` {m}", String::from_utf8_lossy(&path)))?;
            symlinks.insert(rest.clone(), target);
        }
        if !rest.is_empty() {
            paths.push(rest.clone());
        }
        let kind = entry.header().entry_type();
        if kind.is_file() {
            let executable = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
            let shown = String::from_utf8_lossy(&path).into_owned();
            let mut read = |entry: &mut tar::Entry<'_, _>| -> Result<Vec<u8>> {
                let content = read_bounded(entry, &shown)?;
                embedded_bytes += content.len() as u64;
                if embedded_bytes > MAX_EMBEDDED_TOTAL {
                    bail!("{name}: its manifest, lock and recipes take more than {MAX_EMBEDDED_TOTAL} bytes");
                }
                Ok(content)
            };
            if rest == b"sultana.toml" {
                manifest = Some(read(&mut entry)?);
            } else if rest == b"sultana.lock" {
                lock = Some(read(&mut entry)?);
            } else if rest.starts_with(b"recipes/") {
                let content = read(&mut entry)?;
                recipes.push((rest.clone(), content, executable));
            }
        }
    }
    // Links are resolved through each other, as the kernel would after
    // unpacking: a chain that leaves the folder is refused.
    crate::symlinks::check_all(&symlinks, paths.iter().map(Vec::as_slice))
        .map_err(|(path, m)| anyhow!("{name}: symlink or entry `{}` {m}", String::from_utf8_lossy(&path)))?;
    let top = top.ok_or_else(|| anyhow!("{name} is an empty archive"))?;
    let top = String::from_utf8(top).map_err(|_| anyhow!("{name}: its folder name is not UTF-8"))?;
    Ok(Given {
        manifest: manifest.ok_or_else(|| anyhow!("{name} has no {top}/sultana.toml: not a tarball sultana made"))?,
        lock: lock.ok_or_else(|| anyhow!("{name} has no {top}/sultana.lock: not a tarball sultana made"))?,
        top,
        recipes,
    })
}

/// The most entries a tarball under verification may have (a Xen release
/// has some twenty thousand): a bound on the memory its list of paths takes.
const MAX_ENTRIES: usize = 2_000_000;
/// The most one embedded file (manifest, lock, a recipe or its script) may
/// take: such files are a few KiB.
const MAX_EMBEDDED_FILE: u64 = 1 << 20;
/// The most all embedded files together may take.
const MAX_EMBEDDED_TOTAL: u64 = 16 << 20;

/// Whether two readers give the same bytes, compared a block at a time (an
/// entry may be large: never read whole).
fn same_content(x: &mut impl Read, y: &mut impl Read) -> Result<bool> {
    let (mut a, mut b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(x, &mut a)?;
        let m = read_full(y, &mut b)?;
        if n != m || a[..n] != b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// An embedded file, read into memory only up to MAX_EMBEDDED_FILE bytes.
fn read_bounded(entry: &mut impl Read, shown: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    entry.take(MAX_EMBEDDED_FILE + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_EMBEDDED_FILE {
        bail!(
            "`{}` is larger than {MAX_EMBEDDED_FILE} bytes: too large for a file sultana embeds; refused",
            shown
        );
    }
    Ok(out)
}

/// A relative path whose parts stay inside.
fn check_entry_path(path: &[u8]) -> Result<(), String> {
    if path.starts_with(b"/") {
        return Err("is an absolute path".into());
    }
    for part in path.split(|b| *b == b'/') {
        if part == b".." {
            return Err("climbs out of the archive with `..`".into());
        }
        if part.eq_ignore_ascii_case(b".git") {
            return Err("is a `.git` entry".into());
        }
    }
    if path.is_empty() {
        return Err("has an empty path".into());
    }
    Ok(())
}

/// What is compared of a header besides the path.
#[derive(Clone, PartialEq, Eq)]
struct Fields {
    kind: tar::EntryType,
    mode: Option<u32>,
    mtime: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    user: Option<Vec<u8>>,
    group: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: u64,
}

fn fields<R: Read>(e: &tar::Entry<R>) -> Fields {
    let h = e.header();
    Fields {
        kind: h.entry_type(),
        mode: h.mode().ok(),
        mtime: h.mtime().ok(),
        uid: h.uid().ok(),
        gid: h.gid().ok(),
        user: h.username_bytes().map(<[u8]>::to_vec),
        group: h.groupname_bytes().map(<[u8]>::to_vec),
        link: e.link_name_bytes().map(|l| l.into_owned()),
        size: e.size(),
    }
}

/// The fields of `given` that differ from `rebuilt`, in words: "size 4661
/// instead of 4660, owner name `alice` instead of none".
fn header_differences(given: &Fields, rebuilt: &Fields) -> String {
    fn kind(k: tar::EntryType) -> String {
        match k {
            tar::EntryType::Regular => "a file".into(),
            tar::EntryType::Directory => "a folder".into(),
            tar::EntryType::Symlink => "a symbolic link".into(),
            tar::EntryType::Link => "a hard link".into(),
            other => format!("an entry of type {}", other.as_byte() as char),
        }
    }
    fn number(n: Option<u64>) -> String {
        n.map_or("unreadable".into(), |n| n.to_string())
    }
    fn text(t: &Option<Vec<u8>>) -> String {
        match t {
            Some(t) if !t.is_empty() => format!("`{}`", String::from_utf8_lossy(t)),
            _ => "none".into(),
        }
    }
    let mut out = Vec::new();
    if given.kind != rebuilt.kind {
        out.push(format!("{} instead of {}", kind(given.kind), kind(rebuilt.kind)));
    }
    if given.mode != rebuilt.mode {
        let mode = |m: Option<u32>| m.map_or("unreadable".into(), |m| format!("{m:04o}"));
        out.push(format!("mode {} instead of {}", mode(given.mode), mode(rebuilt.mode)));
    }
    if given.mtime != rebuilt.mtime {
        out.push(format!(
            "time {} instead of {}",
            number(given.mtime),
            number(rebuilt.mtime)
        ));
    }
    if given.uid != rebuilt.uid {
        out.push(format!(
            "owner id {} instead of {}",
            number(given.uid),
            number(rebuilt.uid)
        ));
    }
    if given.gid != rebuilt.gid {
        out.push(format!(
            "group id {} instead of {}",
            number(given.gid),
            number(rebuilt.gid)
        ));
    }
    if given.user != rebuilt.user {
        out.push(format!(
            "owner name {} instead of {}",
            text(&given.user),
            text(&rebuilt.user)
        ));
    }
    if given.group != rebuilt.group {
        out.push(format!(
            "group name {} instead of {}",
            text(&given.group),
            text(&rebuilt.group)
        ));
    }
    if given.link != rebuilt.link {
        out.push(format!(
            "link target {} instead of {}",
            text(&given.link),
            text(&rebuilt.link)
        ));
    }
    if given.size != rebuilt.size {
        out.push(format!("size {} instead of {}", given.size, rebuilt.size));
    }
    out.join(", ")
}

/// Walk both tar streams in step and describe the first entry that differs.
fn first_difference<A: Read, B: Read>(given: A, rebuilt: B) -> Result<Option<String>> {
    let mut given = tar::Archive::new(given);
    let mut rebuilt = tar::Archive::new(rebuilt);
    let mut a = given.entries()?;
    let mut b = rebuilt.entries()?;
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ok(None),
            (Some(entry), None) => {
                let entry = entry?;
                return Ok(Some(format!(
                    "`{}` is in the tarball but not in what its lock gives",
                    String::from_utf8_lossy(&entry.path_bytes())
                )));
            }
            (None, Some(entry)) => {
                let entry = entry?;
                return Ok(Some(format!(
                    "`{}` is missing from the tarball",
                    String::from_utf8_lossy(&entry.path_bytes())
                )));
            }
            (Some(x), Some(y)) => {
                let mut x = x?;
                let mut y = y?;
                let path = String::from_utf8_lossy(&x.path_bytes()).into_owned();
                if x.path_bytes() != y.path_bytes() {
                    return Ok(Some(format!(
                        "at `{path}` the tarball has a different entry than `{}`",
                        String::from_utf8_lossy(&y.path_bytes())
                    )));
                }
                let (fx, fy) = (fields(&x), fields(&y));
                if fx != fy {
                    return Ok(Some(format!("`{path}`: {}", header_differences(&fx, &fy))));
                }
                if !same_content(&mut x, &mut y)? {
                    return Ok(Some(format!("`{path}`: its content differs")));
                }
            }
        }
    }
}

/// The recipe a component of the tarball was made with: the one inside it
/// (a workspace's own), else the shipped one.
fn recipe_of(given: &Given, name: &str) -> Option<crate::recipe::Recipe> {
    let path = format!("recipes/{name}.toml").into_bytes();
    match given.recipes.iter().find(|(p, _, _)| *p == path) {
        Some((_, text, _)) => {
            let text = std::str::from_utf8(text).ok()?;
            crate::recipe::Recipe::parse(name, text, &format!("recipes/{name}.toml")).ok()
        }
        None => crate::recipe::Recipe::shipped(name)?.ok(),
    }
}

/// A failed check for something beside the tarball that is there but is
/// no regular file (a folder, a FIFO, a device): never read, never passed.
fn not_regular(path: &Path) -> Option<Beside> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let regular = meta.is_file() || (meta.file_type().is_symlink() && path.is_file());
    (!regular).then(|| Beside {
        file: path.to_path_buf(),
        ok: false,
        detail: "is not a regular file".into(),
    })
}

/// How much of a SHA256SUMS or SBOM beside the tarball is read.
const MAX_BESIDE: u64 = 16 * 1024 * 1024;

/// Check what lies beside `file`: its signature (`.asc` or `.sig`), the
/// SHA256SUMS line of it and of the SBOM (and SHA256SUMS's signature), and
/// the SBOM against the one sultana writes for this tarball.
/// The tarball files the SPDX 3 document beside names, each hashed again
/// when it is there (the given one always is); those not beside are taken
/// as the document says, so one format downloaded alone still checks.
fn artifacts_beside(file: &Path, top: &str) -> Result<Vec<sbom::Artifact>> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let spdx3 = dir.join(format!("{top}.spdx3.json"));
    let mut artifacts = if spdx3.is_file() {
        sbom::artifacts_named(&crate::fsutil::read_bounded(&spdx3, MAX_BESIDE).unwrap_or_default())
    } else {
        Vec::new()
    };
    let given = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !artifacts.iter().any(|a| a.name == given) {
        artifacts.push(sbom::Artifact {
            name: given,
            sha256: String::new(),
            sha512: String::new(),
        });
    }
    for artifact in &mut artifacts {
        let path = dir.join(&artifact.name);
        if path.is_file() {
            artifact.sha256 = sha256_of(&path)?;
            artifact.sha512 = sha512_of(&path)?;
        }
    }
    artifacts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(artifacts)
}

fn check_beside(file: &Path, sboms: &[(String, Vec<u8>)]) -> Result<Vec<Beside>> {
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    let signature_check = |signed: &Path, out: &mut Vec<Beside>| -> Result<()> {
        let signed_name = signed
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for ext in ["asc", "sig"] {
            let signature = dir.join(format!("{signed_name}.{ext}"));
            if !signature.is_file() {
                out.extend(not_regular(&signature));
                continue;
            }
            let (ok, detail) = match sign::check(signed, &signature)? {
                sign::Checked::Good { fingerprint, .. } => (true, format!("good signature by key {fingerprint}")),
                sign::Checked::Bad => (false, format!("BAD signature of {signed_name}")),
                sign::Checked::Unknown { reason } => (false, format!("signature not checked: {reason}")),
            };
            out.push(Beside {
                file: signature,
                ok,
                detail,
            });
        }
        Ok(())
    };
    signature_check(file, &mut out)?;

    let mut there_sboms = Vec::new();
    for (sbom_name, sbom_bytes) in sboms {
        let sbom_path = dir.join(sbom_name);
        if !sbom_path.is_file() {
            out.extend(not_regular(&sbom_path));
            continue;
        }
        let there = crate::fsutil::read_bounded(&sbom_path, MAX_BESIDE)
            .with_context(|| format!("cannot read {}", sbom_path.display()))?;
        let ok = &there == sbom_bytes;
        out.push(Beside {
            file: sbom_path.clone(),
            ok,
            detail: if ok {
                "the SBOM sultana writes for this tarball".into()
            } else {
                "differs from the SBOM sultana writes for this tarball".into()
            },
        });
        there_sboms.push((sbom_name.clone(), sbom_path));
    }

    let sums = dir.join(super::SUMS_FILE);
    out.extend(not_regular(&sums));
    if sums.is_file() {
        let text = crate::fsutil::read_bounded(&sums, MAX_BESIDE)
            .with_context(|| format!("cannot read {}", sums.display()))?;
        let text = String::from_utf8_lossy(&text).into_owned();
        // Every line for the name (sha256sum -c checks each).
        let lines_of = |wanted: &str| -> Vec<String> {
            text.lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter_map(|l| l.split_once("  ").or_else(|| l.split_once(" *")))
                .filter(|(_, n)| *n == wanted)
                .map(|(hash, _)| hash.to_ascii_lowercase())
                .collect()
        };
        let mut listed = vec![(name.clone(), sha256_of(file)?)];
        for (sbom_name, sbom_path) in &there_sboms {
            listed.push((sbom_name.clone(), sha256_of(sbom_path)?));
        }
        for (listed_name, actual) in listed {
            let hashes = lines_of(&listed_name);
            let (ok, detail) = if hashes.is_empty() {
                (false, format!("has no line for {listed_name}"))
            } else if hashes.iter().all(|h| *h == actual) {
                (true, format!("{listed_name} matches"))
            } else {
                (false, format!("its line for {listed_name} does not match the file"))
            };
            out.push(Beside {
                file: sums.clone(),
                ok,
                detail,
            });
        }
        signature_check(&sums, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn desc_from_the_folder_name() {
        assert_eq!(super::desc_of("xen-4.21.0", "xen-{desc}").as_deref(), Some("4.21.0"));
        assert_eq!(super::desc_of("a-1-b", "a-{desc}-b").as_deref(), Some("1"));
        assert_eq!(super::desc_of("qemu-1", "xen-{desc}"), None);
    }

    #[test]
    fn a_differing_header_is_said_in_words() {
        let base = super::Fields {
            kind: tar::EntryType::Regular,
            mode: Some(0o644),
            mtime: Some(1),
            uid: Some(0),
            gid: Some(0),
            user: None,
            group: None,
            link: None,
            size: 4660,
        };
        let given = super::Fields {
            size: 4661,
            user: Some(b"alice".to_vec()),
            mode: Some(0o755),
            ..base.clone()
        };
        assert_eq!(
            super::header_differences(&given, &base),
            "mode 0755 instead of 0644, owner name `alice` instead of none, size 4661 instead of 4660"
        );
    }
}
