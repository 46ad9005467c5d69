//! Compiling through ccache when it is installed: its store under
//! `$XDG_CACHE_HOME/sultana/ccache`, shared by every workspace, gate flight
//! and bisect step, so neighbouring commits recompile only what changed.
//!
//! The compilers are masqueraded (a folder of `cc`, `gcc`, … links to
//! ccache put first on PATH, as Debian's /usr/lib/ccache does), which
//! reaches every way a build names its compiler: configure's `CC`, make's
//! default `cc`, kbuild's `gcc`. ccache finds the real compiler further on
//! PATH. Turning it on or off changes no build's inputs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

const COMPILERS: &[&str] = &["cc", "gcc", "c++", "g++", "clang", "clang++", "x86_64-linux-gnu-gcc"];

/// The variables a build step gets to compile through ccache (none when
/// ccache is not installed).
/// `path` is the build's PATH, which the masquerade goes in front of.
pub fn environment(workspace_root: &Path, path: &str) -> Result<Vec<(String, String)>> {
    let Ok(ccache) = which::which("ccache") else {
        return Ok(Vec::new());
    };
    let home = crate::fsutil::cache_home()?;
    let store = home.join("ccache");
    let masquerade = home.join("ccache-bin");
    std::fs::create_dir_all(&masquerade).with_context(|| format!("cannot create {}", masquerade.display()))?;
    for compiler in COMPILERS {
        let at = masquerade.join(compiler);
        // Only compilers that are installed: a link to a missing one would
        // make configure pick a compiler that is not there.
        let installed = which::which_all(compiler)
            .map(|mut found| found.any(|p| !p.starts_with(&masquerade)))
            .unwrap_or(false);
        if installed {
            link(&ccache, &at)?;
        } else if std::fs::symlink_metadata(&at).is_ok() {
            let _ = std::fs::remove_file(&at);
        }
    }
    Ok(vec![
        ("PATH".into(), format!("{}:{path}", masquerade.display())),
        ("CCACHE_DIR".into(), store.display().to_string()),
        // Paths below the workspace are hashed relative to it, and the
        // build folder is not hashed: another workspace or a gate's scratch
        // tree at the same source hits too.
        ("CCACHE_BASEDIR".into(), workspace_root.display().to_string()),
        ("CCACHE_NOHASHDIR".into(), "1".into()),
    ])
}

/// `at` -> `target`, made atomically (another run may be making it too).
fn link(target: &Path, at: &Path) -> Result<()> {
    if std::fs::read_link(at).ok().as_deref() == Some(target) {
        return Ok(());
    }
    // Unique per process and thread: builds that start together set up at once.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary: PathBuf = at.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    std::os::unix::fs::symlink(target, &temporary)
        .and_then(|_| std::fs::rename(&temporary, at))
        .with_context(|| format!("cannot link {} to ccache", at.display()))
}

/// Drop the compiler-cache results unused for `unused` (ccache's own
/// `--evict-older-than`). Returns its size before and after; None when
/// ccache is not on PATH (a cron job's, say): then nothing is touched.
pub fn prune(unused: std::time::Duration) -> Result<Option<(u64, u64)>> {
    let store = crate::fsutil::cache_home()?.join("ccache");
    let Ok(ccache) = which::which("ccache") else {
        return Ok(None);
    };
    let before = crate::fsutil::size_of(&store);
    if store.is_dir() {
        crate::process::Cmd::new(ccache, "ccache")
            .env("CCACHE_DIR", &store)
            .arg("--evict-older-than")
            .arg(format!("{}s", unused.as_secs()))
            .output()
            .context("ccache could not trim its cache")?;
    }
    Ok(Some((before, crate::fsutil::size_of(&store))))
}
