//! Finding components already installed on the system (`--with-system`), and
//! what the host kernel offers blktap.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::process::Cmd;
use crate::recipe::{Probe, Recipe};

/// Where to look without an explicit prefix, in order.
pub const STANDARD_PREFIXES: &[&str] = &["/usr/local", "/usr"];
const LIB_DIRS: &[&str] = &["lib", "lib64", "lib/x86_64-linux-gnu"];
const PROGRAM_DIRS: &[&str] = &["bin", "sbin", "libexec"];

#[derive(Clone, Debug, Serialize)]
pub struct ProbeResult {
    pub probe: String,
    pub found: Option<PathBuf>,
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Detection {
    pub component: String,
    /// The prefix where every probe passed.
    pub prefix: Option<PathBuf>,
    /// The library folder found, for `{libdir}` of the exports.
    pub libdir: Option<PathBuf>,
    /// Results in the prefix that came closest (all, when found).
    pub probes: Vec<ProbeResult>,
}

impl Detection {
    pub fn found(&self) -> bool {
        self.prefix.is_some()
    }

    pub fn missing(&self) -> Vec<String> {
        self.probes
            .iter()
            .filter(|p| p.found.is_none())
            .map(|p| match &p.problem {
                Some(problem) => format!("{} ({problem})", p.probe),
                None => p.probe.clone(),
            })
            .collect()
    }
}

/// Run the recipe's probes in `prefix`, or in each standard prefix.
pub fn detect(component: &str, recipe: &Recipe, prefix: Option<&Path>) -> Detection {
    let candidates: Vec<PathBuf> = match prefix {
        Some(p) => vec![p.to_path_buf()],
        None => STANDARD_PREFIXES.iter().map(PathBuf::from).collect(),
    };
    let mut best: Option<(usize, Vec<ProbeResult>)> = None;
    for candidate in &candidates {
        let results: Vec<ProbeResult> = recipe.probe.iter().map(|p| run_probe(p, candidate)).collect();
        let passed = results.iter().filter(|r| r.found.is_some()).count();
        if passed == results.len() && !results.is_empty() {
            let libdir = results.iter().find_map(|r| {
                r.probe
                    .starts_with("library")
                    .then(|| r.found.as_ref().and_then(|f| f.parent()).map(Path::to_path_buf))
                    .flatten()
            });
            return Detection {
                component: component.to_string(),
                prefix: Some(candidate.clone()),
                libdir: libdir.or_else(|| Some(candidate.join("lib"))),
                probes: results,
            };
        }
        if best.as_ref().is_none_or(|(n, _)| passed > *n) {
            best = Some((passed, results));
        }
    }
    Detection {
        component: component.to_string(),
        prefix: None,
        libdir: None,
        probes: best.map(|(_, r)| r).unwrap_or_default(),
    }
}

fn run_probe(probe: &Probe, prefix: &Path) -> ProbeResult {
    let mut result = ProbeResult {
        probe: probe.to_string(),
        found: None,
        version: None,
        problem: None,
    };
    let first_existing = |paths: Vec<PathBuf>| paths.into_iter().find(|p| p.exists());
    match probe {
        Probe::Library { name } => {
            result.found = first_existing(
                LIB_DIRS
                    .iter()
                    .flat_map(|d| [format!("lib{name}.so"), format!("lib{name}.a")].map(|f| prefix.join(d).join(f)))
                    .collect(),
            );
        }
        Probe::Header { path } => result.found = first_existing(vec![prefix.join("include").join(path)]),
        Probe::File { path } => result.found = first_existing(vec![prefix.join(path)]),
        Probe::Program { name } => {
            result.found = PROGRAM_DIRS
                .iter()
                .map(|d| prefix.join(d).join(name))
                .find(|p| is_executable(p));
        }
        Probe::PkgConfig { module, min_version } => {
            let dirs: Vec<String> = LIB_DIRS
                .iter()
                .map(|d| prefix.join(d).join("pkgconfig"))
                .chain([prefix.join("share/pkgconfig")])
                .map(|p| p.display().to_string())
                .collect();
            let mut version = String::new();
            let run = Cmd::new("pkg-config", "pkgconf")
                .args(["--modversion", module.as_str()])
                .env("PKG_CONFIG_LIBDIR", dirs.join(":"))
                .env("PKG_CONFIG_PATH", "")
                .run_with(|line| version = line.trim().to_string());
            match run {
                Ok(()) => {
                    let ok = min_version.as_ref().is_none_or(|min| version_at_least(&version, min));
                    if ok {
                        result.found = Some(prefix.to_path_buf());
                    } else {
                        result.problem = Some(format!("version {version} is older"));
                    }
                    result.version = Some(version);
                }
                Err(e) => result.problem = Some(e.to_string().lines().next().unwrap_or_default().to_string()),
            }
        }
    }
    result
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `1.10.2 >= 1.9`: numeric comparison part by part.
pub fn version_at_least(version: &str, min: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.split(['.', '-', '+'])
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    let (a, b) = (parts(version), parts(min));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied().unwrap_or(0), b.get(i).copied().unwrap_or(0));
        if x != y {
            return x > y;
        }
    }
    true
}

/// What the running kernel offers blktap.
#[derive(Clone, Debug, Serialize)]
pub struct KernelSupport {
    pub release: String,
    /// A `blktap2`/`tapdev` block major in /proc/devices (blktap 3.x and older).
    pub blktap2_device: bool,
    /// /dev/xen/gntdev is there (tapback, blktap3).
    pub gntdev: bool,
    /// Grant copy (IOCTL_GNTDEV_GRANT_COPY) needs gntdev on Linux 4.5 or newer.
    pub gntdev_grant_copy: bool,
    pub notes: Vec<String>,
}

pub fn kernel_support() -> KernelSupport {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    let blktap2_device = devices.lines().any(|l| {
        l.split_whitespace()
            .nth(1)
            .is_some_and(|n| n.starts_with("blktap") || n == "tapdev")
    });
    let gntdev = Path::new("/dev/xen/gntdev").exists();
    let recent = version_at_least(&release, "4.5");
    let mut notes = Vec::new();
    if !blktap2_device {
        notes.push("no blktap2 device major: blktap 3.x needs the blktap-module component loaded; blktap 4.x serves NBD and needs none".into());
    }
    if !gntdev {
        notes.push("no /dev/xen/gntdev: not running as a Xen dom0 (or xen-gntdev is not loaded)".into());
    }
    KernelSupport {
        release,
        blktap2_device,
        gntdev,
        gntdev_grant_copy: gntdev && recent,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_at_least("2.74.6", "2.56"));
        assert!(version_at_least("1.10", "1.9"));
        assert!(!version_at_least("1.9", "1.10"));
        assert!(version_at_least("6.1.0-56-amd64", "4.5"));
        assert!(!version_at_least("3.16", "4.5"));
    }
}
