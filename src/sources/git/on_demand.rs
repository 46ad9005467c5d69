//! What a partial or shallow store lacks, fetched when a job needs it: the
//! trees and blobs of a commit about to be checked out or archived, and the
//! history `git describe` or a bisect walks. git's own lazy fetching asks
//! for one object at a time and only from one remote; this asks for all of
//! a commit's missing objects at once, from the component's own sources.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::transfer::{retry, run_showing_progress};
use super::{FetchMode, FetchRequest, Oid, Store};
use crate::printer::{Printer, Progress};
use crate::process::Cmd;

/// The scratch repositories describe makes inside a store.
pub(super) const SCRATCH_PREFIX: &str = "sultana-describe-";

/// Deepening stops growing here and fetches the whole history instead.
const DEEPEN_LIMIT: u32 = 1 << 14;

/// Where one on-demand fetch reports.
pub struct Need<'a> {
    /// Mirrors first, then the url.
    pub sources: &'a [String],
    pub offline: bool,
    pub log: &'a Path,
    pub printer: &'a Printer,
    pub progress: &'a Progress,
}

impl Store {
    /// Make `commit` and its whole tree present: fetched by id when missing
    /// (a new store made as `mode` says), its tree filled in a partial store.
    pub fn fetch_commit(&self, commit: Oid, mode: FetchMode, what: &str, need: &Need) -> Result<()> {
        if !self.has_commit(commit) {
            if need.offline {
                bail!(
                    "{what} needs commit {commit} from {}, which is not in the cache, but --offline was given",
                    self.url
                );
            }
            need.printer
                .status("Fetching", format!("{what} from {}", self.describe_source(&self.url)));
            let request = FetchRequest {
                sources: need.sources,
                want: Some(commit),
                revision: None,
                mode,
            };
            self.fetch(&request, need.log, need.printer, need.progress)?;
        }
        self.ensure_tree(commit, need)
    }

    /// Make sure every tree and blob of `commit` is in a partial store
    /// (nothing to do in a full or shallow one: they hold whole trees).
    pub fn ensure_tree(&self, commit: Oid, need: &Need) -> Result<()> {
        // A store that was ever partial (its promisor packs stay when it is
        // completed) may lack the tree of a commit no branch names any more.
        if !self.ever_partial() {
            return Ok(());
        }
        let marker = format!("refs/sultana/trees/{commit}");
        if self.repo.refname_to_id(&marker).is_ok() {
            return Ok(());
        }
        let mut said = false;
        // Commits only: the root tree (with its subtrees), then its blobs.
        for round in 0..3 {
            let missing = self.missing_objects(commit)?;
            if missing.is_empty() {
                // Checked once: objects never leave a store.
                let _ = self.repo.reference(&marker, commit, true, "sultana: tree complete");
                return Ok(());
            }
            if need.offline {
                bail!(
                    "{} objects of commit {} are not in the cache of {} (it is {}), but --offline was given",
                    missing.len(),
                    super::short(commit),
                    self.url,
                    self.kind()
                );
            }
            if !said {
                need.printer.status(
                    "Fetching",
                    format!(
                        "the tree of {} from {} (the cache is {})",
                        super::short(commit),
                        self.url,
                        self.kind()
                    ),
                );
                said = true;
            }
            let _lock = self.lock(need.printer)?;
            let wants = self.dir.join("sultana-wants");
            let mut text = missing.join("\n");
            text.push('\n');
            crate::fsutil::atomic_write(&wants, text.as_bytes())?;
            let mut failures = Vec::new();
            let mut refused_by_id = false;
            let mut done = false;
            for source in need.sources {
                // Asked by id, with no history sent either way; the filter
                // keeps a tree's blobs out until they are asked for.
                let fetch = super::transfer_command()
                    .args(["-c", "fetch.negotiationAlgorithm=noop", "--git-dir"])
                    .arg(&self.dir)
                    .args([
                        "fetch",
                        "--no-tags",
                        "--no-write-fetch-head",
                        "--progress",
                        "--filter=blob:none",
                        "--stdin",
                        "--",
                    ])
                    .arg(self.remote(source))
                    .stdin_file(&wants);
                match retry(|| run_showing_progress(fetch.clone(), need.log, need.progress)) {
                    Ok(()) => {
                        done = true;
                        break;
                    }
                    Err(e) => {
                        refused_by_id |=
                            crate::process::ProcessError::cause_of(&e) == crate::process::Cause::NotByObjectId;
                        failures.push(format!("{}: {e:#}", self.describe_source(source)));
                    }
                }
            }
            let _ = std::fs::remove_file(&wants);
            self.repo.odb()?.refresh()?;
            if !done && round == 0 && refused_by_id {
                // An older server sends only what its refs name: the store
                // is made whole instead, once.
                need.printer.warn(format!(
                    "{}: the server will not send objects by id; fetching all of it instead",
                    self.url
                ));
                drop(_lock);
                let request = FetchRequest {
                    sources: need.sources,
                    want: None,
                    revision: None,
                    mode: FetchMode::Full,
                };
                self.fetch(&request, need.log, need.printer, need.progress)?;
                continue;
            }
            if !done {
                bail!(
                    "could not fetch the tree of {} for {}:\n  {}",
                    commit,
                    self.url,
                    failures.join("\n  ")
                );
            }
        }
        bail!(
            "the cache of {} still lacks objects of commit {commit} after fetching them",
            self.url
        )
    }

    /// Whether the store holds (or held) objects fetched with a filter.
    fn ever_partial(&self) -> bool {
        if self.kind().filter().is_some() {
            return true;
        }
        std::fs::read_dir(self.objects_dir().join("pack")).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "promisor"))
        })
    }

    /// The objects of `commit`'s tree the store does not have (git's list,
    /// without its lazy fetching).
    fn missing_objects(&self, commit: Oid) -> Result<Vec<String>> {
        let out = Cmd::new("git", "git")
            .env("GIT_NO_LAZY_FETCH", "1")
            .arg("--git-dir")
            .arg(&self.dir)
            .args(["rev-list", "--objects", "--no-walk", "--missing=print"])
            .arg(commit.to_string())
            .output()
            .with_context(|| format!("cannot list the objects of {commit} in {}", self.dir.display()))?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.strip_prefix('?'))
            .filter(|id| id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string)
            .collect())
    }

    /// `git describe --tags` of `oid` as a full clone of `source` says it.
    /// A shallow store (or one holding only the names shallow fetches asked
    /// for) takes the tags the source lists, and is deepened until its
    /// history below the tag found is all there: then no older commit can
    /// change the answer, which git itself gives.
    pub fn describe_deepening(&self, oid: Oid, source: &str, need: &Need) -> Result<String> {
        if !self.is_shallow() && !self.has_some_names() {
            return Ok(self.describe_from(oid, source));
        }
        let tags = if need.offline {
            self.local_tags(source)
        } else {
            self.remote_tags(source, need.log)?
        };
        let mut answer = None;
        let mut failure = None;
        self.deepen_until(oid, source, need, "to describe it", |graph| {
            match self.git_describe(oid, graph, &tags) {
                Ok(found) => {
                    let settled = graph.settled_below(found.as_ref().map(|f| f.1));
                    answer = found.map(|f| f.0);
                    settled
                }
                Err(e) => {
                    failure = Some(e);
                    true
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(answer.unwrap_or_else(|| super::short(oid)))
    }

    /// git's own `describe --tags` of `oid` over the history the store
    /// holds, with `tags` (in a scratch repository borrowing the store's
    /// objects: the store's own names are not the source's). The text and
    /// the tagged commit.
    fn git_describe(&self, oid: Oid, graph: &Graph, tags: &[Tag]) -> Result<Option<(String, Oid)>> {
        let present: Vec<&Tag> = tags.iter().filter(|t| graph.parents.contains_key(&t.commit)).collect();
        if present.is_empty() {
            return Ok(None);
        }
        // Under the store's lock, which clears what a killed run left; named
        // apart from any other process's (pids repeat across containers).
        let _lock = self.lock(&Printer::quiet())?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let scratch = self.dir.join(format!("{SCRATCH_PREFIX}{}-{nanos}", std::process::id()));
        let result = self.describe_in(&scratch, oid, &present);
        let _ = crate::fsutil::remove_all(&scratch);
        result
    }

    fn describe_in(&self, scratch: &Path, oid: Oid, present: &[&Tag]) -> Result<Option<(String, Oid)>> {
        crate::fsutil::remove_all(scratch)?;
        let git = |args: &[&str]| {
            Cmd::new("git", "git")
                .env("GIT_NO_LAZY_FETCH", "1")
                .arg("--git-dir")
                .arg(scratch)
                .args(args)
        };
        Cmd::new("git", "git")
            .args(["init", "-q", "--bare"])
            .arg(scratch)
            .run()?;
        std::fs::write(
            scratch.join("objects/info/alternates"),
            format!("{}\n", self.objects_dir().display()),
        )?;
        if let Ok(shallow) = std::fs::read(self.dir.join("shallow")) {
            std::fs::write(scratch.join("shallow"), shallow)?;
        }
        // Annotated tags as tag objects (git prefers them), made here: the
        // source's own may not be in the store.
        let annotated: Vec<&&Tag> = present.iter().filter(|t| t.annotated).collect();
        let mut objects = Vec::new();
        if !annotated.is_empty() {
            let mut list = String::new();
            for (i, tag) in annotated.iter().enumerate() {
                let path = scratch.join(format!("tag-{i}"));
                let text = format!(
                    "object {}\ntype commit\ntag {}\ntagger sultana <sultana@localhost> 0 +0000\n\n{}\n",
                    tag.commit, tag.name, tag.name
                );
                std::fs::write(&path, text)?;
                list.push_str(&format!("{}\n", path.display()));
            }
            let paths = scratch.join("tag-paths");
            std::fs::write(&paths, list)?;
            let out = git(&["hash-object", "-t", "tag", "-w", "--stdin-paths"])
                .stdin_file(&paths)
                .output()?;
            objects = String::from_utf8_lossy(&out)
                .lines()
                .filter_map(|l| Oid::from_str(l.trim()).ok())
                .collect();
            if objects.len() != annotated.len() {
                bail!("cannot make the tags to describe {oid} with");
            }
        }
        let mut refs: Vec<String> = Vec::new();
        let mut made = objects.iter();
        for tag in present {
            let target = if tag.annotated {
                *made.next().unwrap_or(&tag.commit)
            } else {
                tag.commit
            };
            refs.push(format!("{target} refs/tags/{}", tag.name));
        }
        refs.sort_by(|a, b| a.split_once(' ').map(|x| x.1).cmp(&b.split_once(' ').map(|x| x.1)));
        refs.dedup_by(|a, b| a.split_once(' ').map(|x| x.1) == b.split_once(' ').map(|x| x.1));
        std::fs::write(scratch.join("packed-refs"), refs.join("\n") + "\n")?;
        let (code, out) = git(&["describe", "--tags", "--abbrev=7"])
            .arg(oid.to_string())
            .output_with_code()?;
        if code != Some(0) {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out).trim().to_string();
        // `NAME` or `NAME-DEPTH-gHEX`, NAME possibly holding dashes.
        let (name, depth) = match present.iter().find(|t| t.name == text) {
            Some(_) => (text.clone(), 0),
            None => {
                let Some((rest, _hex)) = text.rsplit_once("-g") else {
                    return Ok(None);
                };
                let Some((name, depth)) = rest.rsplit_once('-') else {
                    return Ok(None);
                };
                let Ok(depth) = depth.parse::<usize>() else {
                    return Ok(None);
                };
                (name.to_string(), depth)
            }
        };
        let Some(tag) = present.iter().find(|t| t.name == name) else {
            return Ok(None);
        };
        let text = if depth == 0 {
            name
        } else {
            format!("{name}-{depth}-g{}", &oid.to_string()[..7])
        };
        Ok(Some((text, tag.commit)))
    }

    /// Make sure `older` is in the history of `newer` as the store holds
    /// it (a bisect walks from one to the other).
    pub fn ensure_ancestry(&self, newer: Oid, older: Oid, source: &str, need: &Need) -> Result<()> {
        self.deepen_until(newer, source, need, "for its history", |graph| {
            graph.ancestors(newer).contains(&older)
        })
    }

    /// Deepen a shallow store's history of `tip` until `done` says so (or
    /// the history is whole), each step four times the last.
    fn deepen_until(
        &self,
        tip: Oid,
        source: &str,
        need: &Need,
        why: &str,
        mut done: impl FnMut(&Graph) -> bool,
    ) -> Result<()> {
        let mut step: u32 = 64;
        let mut said = false;
        loop {
            let graph = Graph::read(&self.dir, tip)?;
            if done(&graph) || !self.is_shallow() {
                return Ok(());
            }
            if need.offline {
                bail!(
                    "the cache of {} is {} and lacks the history of {} {why}, but --offline was given",
                    self.url,
                    self.kind(),
                    super::short(tip)
                );
            }
            if !said {
                need.printer.status(
                    "Deepening",
                    format!(
                        "the cache of {} ({}) {why}: {}",
                        self.url,
                        self.kind(),
                        super::short(tip)
                    ),
                );
                said = true;
            }
            let _lock = self.lock(need.printer)?;
            let how = if step >= DEEPEN_LIMIT {
                "--unshallow".to_string()
            } else {
                format!("--deepen={step}")
            };
            let spec = format!("+{tip}:{}sultana/pins/{tip}", self.namespace(source));
            let fetch = super::transfer_command()
                .arg("--git-dir")
                .arg(&self.dir)
                .args(["fetch", "--no-tags", "--no-write-fetch-head", "--progress", &how, "--"])
                .arg(self.remote(source))
                .arg(&spec);
            retry(|| run_showing_progress(fetch.clone(), need.log, need.progress))?;
            crate::fault::point("store-deepened");
            if !self.is_shallow() {
                let _ = self.config()?.remove("sultana.depth");
            }
            self.repo.odb()?.refresh()?;
            step = step.saturating_mul(4);
        }
    }

    /// The tags `source` has, also kept in the store for a run without
    /// the network.
    fn remote_tags(&self, source: &str, log: &Path) -> Result<Vec<Tag>> {
        let out = super::transfer_command()
            .args(["ls-remote", "--tags", "--"])
            .arg(self.remote(source))
            .log(log)
            .output()
            .with_context(|| {
                format!(
                    "cannot list the tags of {}",
                    crate::validate::redact_credentials(source)
                )
            })?;
        let _ = crate::fsutil::atomic_write(&self.tags_file(source), &out);
        Ok(parse_tags(&String::from_utf8_lossy(&out)))
    }

    /// Where the last listing of `source`'s tags is kept.
    fn tags_file(&self, source: &str) -> std::path::PathBuf {
        let namespace = self.namespace(source);
        let key = if namespace == "refs/" {
            "url".to_string()
        } else {
            namespace.trim_end_matches('/').replace('/', "-")
        };
        self.dir.join(format!("sultana-tags-{key}"))
    }

    /// The tags the store holds from `source` (offline).
    fn local_tags(&self, source: &str) -> Vec<Tag> {
        // The last listing (bounded: a few hundred KiB even for xen).
        if let Ok(text) = std::fs::read(self.tags_file(source)) {
            if text.len() < 64 << 20 {
                return parse_tags(&String::from_utf8_lossy(&text));
            }
        }
        let prefix = format!("{}tags/", self.namespace(source));
        let mut tags = Vec::new();
        let Ok(references) = self.repo.references_glob(&format!("{prefix}*")) else {
            return tags;
        };
        for reference in references.flatten() {
            let (Some(name), Ok(commit)) = (reference.name(), reference.peel(git2::ObjectType::Commit)) else {
                continue;
            };
            let annotated = reference.peel(git2::ObjectType::Tag).is_ok();
            tags.push(Tag {
                name: name.trim_start_matches(&prefix).to_string(),
                commit: commit.id(),
                annotated,
            });
        }
        tags
    }
}

/// A tag as a source lists it.
struct Tag {
    name: String,
    /// The commit it peels to.
    commit: Oid,
    annotated: bool,
}

/// `ls-remote --tags` lines: an annotated tag shows `NAME^{}` too.
fn parse_tags(listing: &str) -> Vec<Tag> {
    let mut by_name: std::collections::BTreeMap<&str, (Oid, bool)> = std::collections::BTreeMap::new();
    for line in listing.lines() {
        let Some((id, name)) = line.split_once('\t') else {
            continue;
        };
        let Ok(oid) = Oid::from_str(id) else { continue };
        let Some(name) = name.strip_prefix("refs/tags/") else {
            continue;
        };
        match name.strip_suffix("^{}") {
            Some(tag) => {
                by_name.insert(tag, (oid, true));
            }
            None => {
                by_name.entry(name).or_insert((oid, false));
            }
        }
    }
    by_name
        .into_iter()
        .filter(|(name, _)| git2::Reference::is_valid_name(&format!("refs/tags/{name}")))
        .map(|(name, (commit, annotated))| Tag {
            name: name.to_string(),
            commit,
            annotated,
        })
        .collect()
}

/// The history of one commit as a shallow store holds it, read with git
/// (libgit2's graph walks stop with "object not found" at a shallow
/// boundary instead of taking it for a root).
struct Graph {
    parents: HashMap<Oid, Vec<Oid>>,
    /// The shallow boundary within this history.
    boundary: Vec<Oid>,
}

impl Graph {
    fn read(dir: &Path, tip: Oid) -> Result<Graph> {
        let out = Cmd::new("git", "git")
            .env("GIT_NO_LAZY_FETCH", "1")
            .arg("--git-dir")
            .arg(dir)
            .args(["rev-list", "--parents"])
            .arg(tip.to_string())
            .output()
            .with_context(|| format!("cannot read the history of {tip} in {}", dir.display()))?;
        let mut graph = Graph {
            parents: HashMap::new(),
            boundary: Vec::new(),
        };
        for line in String::from_utf8_lossy(&out).lines() {
            let mut ids = line.split(' ').filter_map(|id| Oid::from_str(id).ok());
            let Some(commit) = ids.next() else { continue };
            graph.parents.insert(commit, ids.collect());
        }
        let shallow = std::fs::read_to_string(dir.join("shallow")).unwrap_or_default();
        graph.boundary = shallow
            .lines()
            .filter_map(|l| Oid::from_str(l.trim()).ok())
            .filter(|b| graph.parents.contains_key(b))
            .collect();
        Ok(graph)
    }

    fn ancestors(&self, start: Oid) -> std::collections::HashSet<Oid> {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![start];
        while let Some(commit) = stack.pop() {
            if !self.parents.contains_key(&commit) || !seen.insert(commit) {
                continue;
            }
            stack.extend(self.parents[&commit].iter().copied());
        }
        seen
    }

    /// Whether the history missing below the shallow boundary lies below
    /// `tag` too: then every commit between them is here, and no hidden tag
    /// can be nearer.
    fn settled_below(&self, tag: Option<Oid>) -> bool {
        match tag {
            None => self.boundary.is_empty(),
            Some(t) => {
                let below = self.ancestors(t);
                self.boundary.iter().all(|b| below.contains(b))
            }
        }
    }
}

impl FetchMode {
    /// What verify-tarball fetches when not told: the locked trees only.
    pub fn for_verify() -> FetchMode {
        FetchMode::Depth(1)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_peel() {
        let a = "1".repeat(40);
        let b = "2".repeat(40);
        let c = "3".repeat(40);
        let listing = format!(
            "{a}\trefs/tags/v1\n{b}\trefs/tags/v1^{{}}\n{c}\trefs/tags/light\nbad line\n{c}\trefs/tags/bad..name\n"
        );
        let tags = super::parse_tags(&listing);
        assert_eq!(tags.len(), 2);
        assert_eq!(
            (tags[0].name.as_str(), tags[0].commit.to_string(), tags[0].annotated),
            ("light", c, false)
        );
        assert_eq!(
            (tags[1].name.as_str(), tags[1].commit.to_string(), tags[1].annotated),
            ("v1", b, true)
        );
    }
}
