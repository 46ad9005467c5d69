//! The shared cache: one bare object store per URL under
//! `$XDG_CACHE_HOME/sultana/git/`, shared by every workspace.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use git2::Repository;
use sha2::{Digest, Sha256};

use super::Oid;
use crate::fsutil::{self, FileLock};
use crate::printer::{Printer, Progress};
use crate::process::{Cmd, ProcessError};

const REFSPECS: &[&str] = &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Where a store keeps the names (branches, tags) a source told it. The
/// store's own url keeps git's usual places; each mirror gets its own, so a
/// name learned from a mirror never resolves a name for the url or another
/// mirror. Objects are shared: they are named by their content.
pub fn namespace_of(store_url: &str, source: &str) -> String {
    if source == store_url {
        "refs/".to_string()
    } else {
        let hash = Sha256::digest(source.as_bytes());
        let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("refs/mirrors/{hex}/")
    }
}

pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// `$XDG_CACHE_HOME/sultana/git`, else `$HOME/.cache/sultana/git`.
    pub fn locate() -> Result<Cache> {
        Ok(Cache {
            root: crate::fsutil::cache_home()?.join("git"),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `blktap-<16 hex of sha256(url)>`: readable, and distinct per URL.
    pub fn store_dir(&self, url: &str) -> PathBuf {
        let hash = Sha256::digest(url.as_bytes());
        let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let base = url
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("repo")
            .trim_end_matches(".git");
        let base: String = base
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(40)
            .collect();
        let base = if base.is_empty() || base.starts_with('.') {
            "repo".into()
        } else {
            base
        };
        self.root.join(format!("{base}-{hex}"))
    }

    /// The store for `url` if one was made already (read-only callers).
    pub fn existing_store(&self, url: &str) -> Option<Store> {
        let dir = self.store_dir(url);
        let repo = Repository::open_bare(&dir).ok()?;
        Some(Store {
            dir,
            url: url.to_string(),
            repo,
        })
    }

    /// The store for `url`, created (empty) on first use.
    pub fn store(&self, url: &str, printer: &Printer) -> Result<Store> {
        let dir = self.store_dir(url);
        if !dir.exists() {
            let _lock = lock_store(&dir, url, printer)?;
            if !dir.exists() {
                create_store(&dir, url)?;
            }
        }
        let repo = Repository::open_bare(&dir).with_context(|| {
            format!(
                "the cache store {} is not a git repository; remove it and run again",
                dir.display()
            )
        })?;
        Ok(Store {
            dir,
            url: url.to_string(),
            repo,
        })
    }
}

impl Cache {
    /// Replace a damaged store: it is moved aside, made again from `sources`
    /// (with `want` in it) and only then the damaged copy is removed.
    /// Checkouts that borrow its objects find them again at the same path.
    pub fn rebuild_store(
        &self,
        url: &str,
        sources: &[String],
        want: Option<Oid>,
        log: &Path,
        printer: &Printer,
    ) -> Result<Store> {
        let dir = self.store_dir(url);
        {
            let _lock = lock_store(&dir, url, printer)?;
            let mut aside = dir.as_os_str().to_owned();
            aside.push(format!(".damaged-{}", std::process::id()));
            let aside = PathBuf::from(aside);
            fsutil::remove_all(&aside)?;
            if dir.exists() {
                fs::rename(&dir, &aside).with_context(|| format!("cannot move {} aside", dir.display()))?;
            }
            create_store(&dir, url)?;
            let _ = fsutil::remove_all(&aside);
        }
        let store = self.store(url, printer)?;
        let progress = printer.progress("rebuild");
        store.fetch(sources, want, log, printer, &progress)?;
        Ok(store)
    }
}

/// Whether an error says objects of a store are damaged or missing (as
/// opposed to a tree with local work, or a bad revision).
pub fn is_damaged_store(err: &anyhow::Error) -> bool {
    if err.chain().any(|c| c.is::<super::checkout::DamagedObjects>()) {
        return true;
    }
    const SIGNS: &[&str] = &[
        "incorrect data check",
        "incorrect header check",
        "invalid distance",
        "invalid stored block",
        "invalid block type",
        "corrupt",
        "failed to inflate",
        "object not found",
        "packfile",
        "short read",
    ];
    let text = format!("{err:#}").to_lowercase();
    SIGNS.iter().any(|s| text.contains(s))
}

fn lock_store(dir: &Path, url: &str, printer: &Printer) -> Result<FileLock> {
    let mut name = dir.as_os_str().to_owned();
    name.push(".lock");
    FileLock::exclusive(Path::new(&name), &format!("the git cache of {url}"), printer)
}

/// Build the store in a temporary folder and rename it into place, so a killed
/// run never leaves a half-made store that the next run trusts.
fn create_store(dir: &Path, url: &str) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let mut tmp_name = dir.as_os_str().to_owned();
    tmp_name.push(".new");
    let tmp = PathBuf::from(tmp_name);
    fsutil::remove_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    let repo = Repository::init_bare(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut config = repo.config()?;
    config.set_str("sultana.url", url)?;
    // Objects are shared with checkouts through alternates: never prune them.
    config.set_i32("gc.auto", 0)?;
    config.set_bool("core.logAllRefUpdates", false)?;
    drop(repo);
    fs::rename(&tmp, dir).with_context(|| format!("cannot move {} into place", dir.display()))?;
    crate::fault::point("store-created");
    Ok(())
}

pub struct Store {
    pub dir: PathBuf,
    pub url: String,
    pub(super) repo: Repository,
}

impl Store {
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.dir.join("objects")
    }

    pub fn has_commit(&self, oid: Oid) -> bool {
        self.repo.find_commit(oid).is_ok()
    }

    /// Bring the store up to date with the first of `sources` that answers
    /// (mirrors first, then the URL), and make sure `want` is present.
    /// Returns the source used. The transfer runs `git fetch`: libgit2's
    /// local transport re-deltifies whole packs and its indexer is
    /// single-threaded (6x slower than git on xen.git), and git brings the
    /// user's proxies, `insteadOf` rules, credential helpers and ssh.
    pub fn fetch(
        &self,
        sources: &[String],
        want: Option<Oid>,
        log: &Path,
        printer: &Printer,
        progress: &Progress,
    ) -> Result<String> {
        let _lock = lock_store(&self.dir, &self.url, printer)?;
        // What a killed first fill left beside the store (under the lock, so
        // never another run's clone in progress).
        let _ = fsutil::remove_all(&self.clone_dir());
        let mut failures = Vec::new();
        for source in sources {
            match self.fetch_from(source, want, log, progress) {
                Ok(()) => {
                    crate::fault::point("store-fetched");
                    return Ok(source.clone());
                }
                Err(e) => {
                    if sources.len() > 1 {
                        printer.warn(format!("{source}: {}; trying the next source", first_line(&e)));
                    }
                    failures.push(format!("{source}: {e:#}"));
                }
            }
        }
        let hint = if failures.iter().any(|f| f.contains("No space left on device")) {
            format!(
                "the disk holding the cache ({}) is full: free some space and run again",
                self.dir.parent().unwrap_or(&self.dir).display()
            )
        } else {
            "no network here? `sultana demo` shows the whole job without it, and a `mirrors` \
             entry in sultana.toml gives another place to fetch from"
                .to_string()
        };
        bail!("could not fetch {}:\n  {}\n  ({hint})", self.url, failures.join("\n  "))
    }

    fn fetch_from(&self, source: &str, want: Option<Oid>, log: &Path, progress: &Progress) -> Result<()> {
        let already = want.is_some_and(|oid| self.has_commit(oid));
        let mut filled = false;
        let namespace = namespace_of(&self.url, source);
        if namespace != "refs/" {
            let heads = format!("+refs/heads/*:{namespace}heads/*");
            let tags = format!("+refs/tags/*:{namespace}tags/*");
            retry(|| self.git_fetch(source, &["--prune"], &[heads.as_str(), tags.as_str()], log, progress))?;
            filled = true;
        } else if self.is_empty()? {
            retry(|| self.fill_by_clone(source, log, progress))?;
            filled = !self.is_empty()?;
        }
        // A clone that brought no refs (an empty upstream) gets a normal fetch.
        if !filled {
            retry(|| self.git_fetch(source, &["--prune"], REFSPECS, log, progress))?;
        }
        self.repo.odb()?.refresh()?;
        if let Some(oid) = want.filter(|oid| !already && !self.has_commit(*oid)) {
            // A commit on no branch or tag: ask for the id itself (servers
            // that allow reachable-SHA1-in-want will send it).
            let spec = format!("+{oid}:refs/sultana/pins/{oid}");
            let by_id = retry(|| self.git_fetch(source, &[], &[spec.as_str()], log, progress));
            self.repo.odb()?.refresh()?;
            if by_id.is_err() || !self.has_commit(oid) {
                bail!("commit {oid} is not there (not on any branch or tag, and the server will not send it by id)");
            }
        }
        Ok(())
    }

    fn clone_dir(&self) -> PathBuf {
        let mut name = self.dir.as_os_str().to_owned();
        name.push(".clone");
        PathBuf::from(name)
    }

    /// Whether the store has no refs yet (its first fill).
    fn is_empty(&self) -> Result<bool> {
        Ok(self.repo.references()?.next().is_none())
    }

    /// The first fill of a store: `git clone --bare` (the same heads and tags
    /// as REFSPECS) into a folder beside it, then its packs and refs moved in.
    /// A clone trusts its self-contained pack and skips the connectivity walk
    /// that `git fetch` does over the whole history (about 1 s on xen.git).
    /// Killed half way, the store holds packs without refs: the next run
    /// fetches normally.
    fn fill_by_clone(&self, source: &str, log: &Path, progress: &Progress) -> Result<(), ProcessError> {
        let tmp = self.clone_dir();
        let io = |command: &str, source: std::io::Error| ProcessError::Io {
            command: command.to_string(),
            source,
        };
        fsutil::remove_all(&tmp).map_err(|e| io("remove the clone folder", e))?;
        let clone = super::transfer_command()
            .args(["clone", "--bare", "--no-hardlinks", "--progress", "--"])
            .arg(source)
            .arg(&tmp);
        run_showing_progress(clone, log, progress)?;
        let packs = tmp.join("objects/pack");
        let target = self.dir.join("objects/pack");
        std::fs::create_dir_all(&target).map_err(|e| io("create objects/pack", e))?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&packs)
            .map_err(|e| io("read the clone's packs", e))?
            .flatten()
            .map(|e| e.path())
            .collect();
        // A pack counts once its .idx is there: move the .pack first.
        files.sort_by_key(|f| (f.extension().is_none_or(|e| e != "pack"), f.clone()));
        for file in files {
            if let Some(name) = file.file_name() {
                std::fs::rename(&file, target.join(name)).map_err(|e| io("move a pack into the store", e))?;
            }
        }
        let refs = tmp.join("packed-refs");
        if refs.exists() {
            std::fs::rename(&refs, self.dir.join("packed-refs"))
                .map_err(|e| io("move packed-refs into the store", e))?;
        }
        crate::fault::point("cache-after-clone-fill");
        let _ = fsutil::remove_all(&tmp);
        Ok(())
    }

    fn git_fetch(
        &self,
        source: &str,
        flags: &[&str],
        refspecs: &[&str],
        log: &Path,
        progress: &Progress,
    ) -> Result<(), ProcessError> {
        let fetch = super::transfer_command()
            .arg("--git-dir")
            .arg(&self.dir)
            .args(["fetch", "--no-tags", "--no-write-fetch-head", "--progress"])
            .args(flags)
            .arg("--")
            .arg(source)
            .args(refspecs);
        run_showing_progress(fetch, log, progress)
    }
}

/// Run a git transfer, its progress meter shown on ours.
fn run_showing_progress(git: Cmd, log: &Path, progress: &Progress) -> Result<(), ProcessError> {
    git.log(log).run_with(|line| {
        if let Some((done, total, phase)) = parse_progress(line) {
            progress.update(done, total, phase);
        }
    })
}

/// `Receiving objects:  45% (1234/5678), 1.2 MiB | 2 MiB/s`
fn parse_progress(line: &str) -> Option<(u64, u64, &str)> {
    let line = line.strip_prefix("remote: ").unwrap_or(line);
    let (name, rest) = line.split_once(':')?;
    let inner = rest.split_once('(')?.1.split_once(')')?.0;
    let (done, total) = inner.split_once('/')?;
    Some((
        done.trim().parse().ok()?,
        total.trim().parse().ok()?,
        name.trim_start_matches("remote: ").trim(),
    ))
}

fn first_line(err: &anyhow::Error) -> String {
    format!("{err:#}").lines().next().unwrap_or_default().to_string()
}

/// One more try after a pause, for a transfer that may fail in passing
/// (never for a missing tool).
fn retry(mut attempt: impl FnMut() -> Result<(), ProcessError>) -> Result<()> {
    match attempt() {
        Ok(()) => Ok(()),
        Err(e @ ProcessError::ToolMissing { .. }) => Err(e.into()),
        // A full disk stays full: say so at once.
        Err(e @ ProcessError::Failed { .. }) if e.to_string().contains("No space left on device") => Err(e.into()),
        Err(_) => {
            std::thread::sleep(Duration::from_millis(500));
            Ok(attempt()?)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_lines() {
        assert_eq!(
            super::parse_progress("Receiving objects:  45% (1234/5678), 1.2 MiB | 2 MiB/s"),
            Some((1234, 5678, "Receiving objects"))
        );
        assert_eq!(
            super::parse_progress("remote: Counting objects: 100% (3/3), done."),
            Some((3, 3, "Counting objects"))
        );
        assert_eq!(super::parse_progress("From file:///x"), None);
    }
}
