//! What a build's own processes wrote in its tree, known from what they did
//! rather than from timing: a small shared object preloaded into every
//! build step (`trace/sultana_trace.c`, built by build.rs and embedded)
//! appends each path a process opens for writing, creates, renames,
//! links, removes or changes the mode of. A file that changed during the
//! build but that no build process wrote (a `.config` written in another
//! terminal) is then an edit, never an output, however many builds in a
//! row it happens in.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

const SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libsultana_trace.so"));
/// A trace larger than this is not read (and not trusted).
const MAX_TRACE: u64 = 256 << 20;

/// The tracer of one build: its preloaded object and the log it writes.
pub struct Trace {
    shim: PathBuf,
    log: PathBuf,
}

impl Trace {
    /// A tracer writing to `log` (emptied now); None when the tracer cannot
    /// be used here (it does not load, or its path cannot be preloaded),
    /// and the build then judges by timing as before.
    pub fn start(log: &Path) -> Option<Trace> {
        let shim = working_shim()?.clone();
        // The log is there, empty, before any step: a trace that is gone
        // at the end is not trusted (and a missing folder would have lost
        // every line).
        std::fs::create_dir_all(log.parent()?).ok()?;
        crate::fsutil::atomic_write(log, b"").ok()?;
        Some(Trace {
            shim,
            log: log.to_path_buf(),
        })
    }

    /// The variables a build step gets for the tracer (not inputs of the
    /// build: tracing changes nothing it makes).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), self.shim.display().to_string()),
            ("SULTANA_TRACE".into(), self.log.display().to_string()),
        ]
    }

    /// The paths below `tree` (relative, as the file index names them) the
    /// build's processes wrote; None when the trace cannot be trusted (too
    /// large, or a name it could not write down).
    pub fn written(&self, tree: &Path) -> Option<HashSet<String>> {
        let text = crate::fsutil::read_bounded(&self.log, MAX_TRACE).ok()?;
        let root = std::fs::canonicalize(tree).ok()?;
        let mut parents: HashMap<PathBuf, Option<PathBuf>> = HashMap::new();
        let mut out = HashSet::new();
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if line == b"?incomplete" {
                return None;
            }
            let path = PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(line));
            let path = lexical(&path);
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                continue;
            };
            // The folder as the kernel resolves it (a tree reached through a
            // symlink, a `..`); the file itself may be gone.
            let resolved = parents
                .entry(parent.to_path_buf())
                .or_insert_with(|| std::fs::canonicalize(parent).ok())
                .clone()
                .unwrap_or_else(|| parent.to_path_buf());
            let full = resolved.join(name);
            if let Ok(relative) = full.strip_prefix(&root) {
                if let Some(text) = relative.to_str() {
                    out.insert(text.to_string());
                }
            }
        }
        Some(out)
    }
}

/// `.` and `..` taken out without looking at the disk.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The shim written once into the cache and shown to work (a shell writing
/// one file is traced); None when it does not load here.
fn working_shim() -> Option<&'static PathBuf> {
    static SHIM_PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    SHIM_PATH
        .get_or_init(|| {
            let dir = crate::fsutil::cache_home().ok()?.join("trace").join(short_hash(SHIM));
            let shim = dir.join("libsultana_trace.so");
            // LD_PRELOAD splits at spaces and colons.
            if shim.to_string_lossy().contains([' ', ':', '\t', '\n']) {
                return None;
            }
            if std::fs::read(&shim).ok().as_deref() != Some(SHIM) {
                std::fs::create_dir_all(&dir).ok()?;
                crate::fsutil::atomic_write(&shim, SHIM).ok()?;
            }
            let probe = tempfile::tempdir().ok()?;
            let log = probe.path().join("trace");
            let written = probe.path().join("written");
            crate::process::Cmd::new("sh", "dash")
                .args(["-c", ": > \"$1\"", "sh"])
                .arg(&written)
                .env("LD_PRELOAD", &shim)
                .env("SULTANA_TRACE", &log)
                .run()
                .ok()?;
            let traced = std::fs::read_to_string(&log).ok()?;
            traced.lines().any(|l| Path::new(l) == written).then_some(shim)
        })
        .as_ref()
}

fn short_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    super::fingerprint::hex(&sha2::Sha256::digest(bytes))[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_traced_process_writes_is_known_and_nothing_else() {
        let logs = tempfile::tempdir().unwrap();
        // In a folder that is not there yet (a new workspace).
        let Some(trace) = Trace::start(&logs.path().join("new/folder/t")) else {
            panic!("the tracer does not load");
        };
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir(tree.path().join("sub")).unwrap();
        std::fs::write(tree.path().join("old"), "x").unwrap();
        // Written by hand beside the traced process: not in the trace.
        std::fs::write(tree.path().join(".config"), "by hand").unwrap();
        let mut cmd = crate::process::Cmd::new("sh", "dash")
            .args([
                "-c",
                "echo a > out.o; cd sub && echo b > ../sub/deep.o; mv ../old ../moved; ln -s x ../link",
            ])
            .cwd(tree.path());
        for (k, v) in trace.env() {
            cmd = cmd.env(k, v);
        }
        cmd.run().unwrap();
        let mut written: Vec<String> = trace.written(tree.path()).unwrap().into_iter().collect();
        written.sort();
        assert_eq!(written, ["link", "moved", "old", "out.o", "sub/deep.o"]);
    }
}
