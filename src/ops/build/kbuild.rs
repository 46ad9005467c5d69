//! Kernel modules: which headers to build against, and whether a built
//! module matches them (vermagic).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::detect::version_at_least;

pub struct Headers {
    pub dir: PathBuf,
    pub release: String,
    /// Why this folder was chosen, said to the user.
    pub reason: String,
}

/// `--kernel-headers`, else `SULTANA_KERNEL_HEADERS`, else the running
/// kernel's `/lib/modules/$(uname -r)/build`, else the newest
/// `/usr/src/linux-headers-*`.
pub fn headers(explicit: Option<&Path>) -> Result<Headers> {
    let (dir, reason) = if let Some(dir) = explicit {
        (dir.to_path_buf(), "--kernel-headers".to_string())
    } else if let Some(dir) = std::env::var_os("SULTANA_KERNEL_HEADERS").filter(|v| !v.is_empty()) {
        (PathBuf::from(dir), "SULTANA_KERNEL_HEADERS".to_string())
    } else {
        let running = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let build = Path::new("/lib/modules").join(running.trim()).join("build");
        if build.join("Makefile").is_file() {
            (build, "the running kernel's".to_string())
        } else {
            let newest = newest_installed(Path::new("/usr/src")).with_context(|| {
                format!(
                    "no kernel headers: neither {} nor /usr/src/linux-headers-* exists; install linux-headers-amd64 or pass --kernel-headers DIR",
                    build.display()
                )
            })?;
            (
                newest,
                format!(
                    "the newest in /usr/src (the running kernel {} has none)",
                    running.trim()
                ),
            )
        }
    };
    let release = release_of(&dir)?;
    Ok(Headers { dir, release, reason })
}

/// The release modules built here get in their vermagic: `UTS_RELEASE`
/// (Debian's `include/config/kernel.release` holds the upstream version).
fn release_of(dir: &Path) -> Result<String> {
    let uts = dir.join("include/generated/utsrelease.h");
    if let Ok(text) = std::fs::read_to_string(&uts) {
        if let Some(release) = text.lines().find_map(|l| l.strip_prefix("#define UTS_RELEASE ")) {
            return Ok(release.trim().trim_matches('"').to_string());
        }
    }
    let release_file = dir.join("include/config/kernel.release");
    Ok(std::fs::read_to_string(&release_file)
        .with_context(|| {
            format!(
                "{} is not a prepared kernel header tree (no {})",
                dir.display(),
                uts.display()
            )
        })?
        .trim()
        .to_string())
}

fn newest_installed(root: &Path) -> Option<PathBuf> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix("linux-headers-")?.to_string();
            e.path().join("Makefile").is_file().then(|| (version, e.path()))
        })
        .filter(|(v, _)| !v.ends_with("-common"))
        .collect();
    found.sort_by(|a, b| {
        if version_at_least(&a.0, &b.0) && a.0 != b.0 {
            std::cmp::Ordering::Greater
        } else if a.0 == b.0 {
            std::cmp::Ordering::Equal
        } else {
            std::cmp::Ordering::Less
        }
    });
    found.pop().map(|(_, p)| p)
}

/// The kernel release a module was built for, from its `.modinfo` vermagic.
pub fn vermagic(module: &Path) -> Result<String> {
    let bytes = std::fs::read(module).with_context(|| format!("cannot read {}", module.display()))?;
    let key = b"vermagic=";
    let Some(start) = bytes.windows(key.len()).position(|w| w == key) else {
        bail!("{} has no vermagic: not a kernel module", module.display());
    };
    let value = &bytes[start + key.len()..];
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    let text = String::from_utf8_lossy(&value[..end]);
    Ok(text.split_whitespace().next().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vermagic_and_picks_the_newest_headers() {
        let dir = tempfile::tempdir().unwrap();
        let ko = dir.path().join("m.ko");
        std::fs::write(
            &ko,
            b"\x7fELF junk\0license=GPL\0vermagic=6.1.0-56-amd64 SMP preempt mod_unload modversions \0",
        )
        .unwrap();
        assert_eq!(vermagic(&ko).unwrap(), "6.1.0-56-amd64");
        for v in ["6.1.0-9-amd64", "6.1.0-56-amd64", "6.1.0-56-common", "5.10.0-1-amd64"] {
            let d = dir.path().join(format!("linux-headers-{v}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("Makefile"), "").unwrap();
        }
        assert!(newest_installed(dir.path())
            .unwrap()
            .ends_with("linux-headers-6.1.0-56-amd64"));
    }
}
