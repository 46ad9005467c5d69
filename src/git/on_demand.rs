//! What a partial or shallow store lacks, fetched when a job needs it: the
//! trees and blobs of a commit about to be checked out or archived, and the
//! history `git describe` or a bisect walks. git's own lazy fetching asks
//! for one object at a time and only from one remote; this asks for all of
//! a commit's missing objects at once, from the component's own sources.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::cache::{lock_store, retry};
use super::{FetchMode, FetchRequest, Oid, Store};
use crate::printer::{Printer, Progress};
use crate::process::Cmd;

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
            need.printer.status("Fetching", format!("{what} from {}", self.url));
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
        if self.kind().filter().is_none() {
            return Ok(());
        }
        let mut said = false;
        // Commits only: the root tree (with its subtrees), then its blobs.
        for _ in 0..3 {
            let missing = self.missing_objects(commit)?;
            if missing.is_empty() {
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
            let _lock = lock_store(&self.dir, &self.url, need.printer)?;
            let wants = self.dir.join("sultana-wants");
            let mut text = missing.join("\n");
            text.push('\n');
            crate::fsutil::atomic_write(&wants, text.as_bytes())?;
            let mut failures = Vec::new();
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
                    .arg(source)
                    .stdin_file(&wants);
                match retry(|| super::cache::run_showing_progress(fetch.clone(), need.log, need.progress)) {
                    Ok(()) => {
                        done = true;
                        break;
                    }
                    Err(e) => failures.push(format!("{source}: {e:#}")),
                }
            }
            let _ = std::fs::remove_file(&wants);
            self.repo.odb()?.refresh()?;
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

    /// `git describe --tags` of `oid` as a full clone of `source` says it;
    /// a shallow store is deepened until its history below the tag found is
    /// all there (then no older commit can change the answer).
    pub fn describe_deepening(&self, oid: Oid, source: &str, need: &Need) -> Result<String> {
        if !self.is_shallow() {
            return Ok(self.describe_from(oid, source));
        }
        let tags = self.remote_tags(source, need.log)?;
        let mut answer = None;
        self.deepen_until(oid, source, need, "to describe it", |graph| {
            let found = graph.describe(oid, &tags);
            let settled = graph.settled_below(found.as_ref().map(|f| f.1));
            answer = found.map(|f| f.0);
            settled
        })?;
        Ok(answer.unwrap_or_else(|| super::short(oid)))
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
            let _lock = lock_store(&self.dir, &self.url, need.printer)?;
            let how = if step >= DEEPEN_LIMIT {
                "--unshallow".to_string()
            } else {
                format!("--deepen={step}")
            };
            let spec = format!("+{tip}:refs/sultana/pins/{tip}");
            let fetch = super::transfer_command()
                .arg("--git-dir")
                .arg(&self.dir)
                .args(["fetch", "--no-tags", "--no-write-fetch-head", "--progress", &how, "--"])
                .arg(source)
                .arg(&spec);
            retry(|| super::cache::run_showing_progress(fetch.clone(), need.log, need.progress))?;
            crate::fault::point("store-deepened");
            if !self.is_shallow() {
                let _ = self.config()?.remove("sultana.depth");
            }
            self.repo.odb()?.refresh()?;
            step = step.saturating_mul(4);
        }
    }

    /// The tags `source` has, by the commit each names.
    fn remote_tags(&self, source: &str, log: &Path) -> Result<HashMap<Oid, Vec<String>>> {
        let out = super::transfer_command()
            .args(["ls-remote", "--tags", "--"])
            .arg(source)
            .log(log)
            .output()
            .with_context(|| {
                format!(
                    "cannot list the tags of {}",
                    crate::validate::redact_credentials(source)
                )
            })?;
        Ok(parse_tags(&String::from_utf8_lossy(&out)))
    }
}

/// `ls-remote --tags` lines, an annotated tag by the commit it peels to.
fn parse_tags(listing: &str) -> HashMap<Oid, Vec<String>> {
    let mut by_name: HashMap<&str, Oid> = HashMap::new();
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
                by_name.insert(tag, oid);
            }
            None => {
                by_name.entry(name).or_insert(oid);
            }
        }
    }
    let mut tags: HashMap<Oid, Vec<String>> = HashMap::new();
    for (name, oid) in by_name {
        tags.entry(oid).or_default().push(name.to_string());
    }
    tags
}

/// The history of one commit as a shallow store holds it, read with git
/// (libgit2's graph walks stop with "object not found" at a shallow
/// boundary instead of taking it for a root).
struct Graph {
    /// Newest first, as `git rev-list --date-order` gives it.
    order: Vec<Oid>,
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
            .args(["rev-list", "--parents", "--date-order"])
            .arg(tip.to_string())
            .output()
            .with_context(|| format!("cannot read the history of {tip} in {}", dir.display()))?;
        let mut graph = Graph {
            order: Vec::new(),
            parents: HashMap::new(),
            boundary: Vec::new(),
        };
        for line in String::from_utf8_lossy(&out).lines() {
            let mut ids = line.split(' ').filter_map(|id| Oid::from_str(id).ok());
            let Some(commit) = ids.next() else { continue };
            graph.order.push(commit);
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

    /// `git describe --tags` over this history.
    fn describe(&self, oid: Oid, tags: &HashMap<Oid, Vec<String>>) -> Option<(String, Oid)> {
        let all = self.order.len();
        super::resolve::describe_rule(oid, self.order.iter().copied(), tags, |commit| {
            Some(all - self.ancestors(commit).len())
        })
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
        let listing = format!("{a}\trefs/tags/v1\n{b}\trefs/tags/v1^{{}}\n{c}\trefs/tags/light\nbad line\n");
        let tags = super::parse_tags(&listing);
        assert_eq!(tags[&super::Oid::from_str(&b).unwrap()], vec!["v1".to_string()]);
        assert_eq!(tags[&super::Oid::from_str(&c).unwrap()], vec!["light".to_string()]);
        assert!(!tags.contains_key(&super::Oid::from_str(&a).unwrap()));
    }
}
