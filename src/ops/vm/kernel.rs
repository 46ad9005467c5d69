//! The kernel a VM test boots: the one whose headers the build used (its
//! release read from them, its image and modules where Debian and Fedora
//! put them), or an image the recipe names.

use std::path::{Path, PathBuf};

use super::VmError;

#[derive(Clone, Debug)]
pub struct Kernel {
    pub image: PathBuf,
    /// `6.1.0-57-amd64`; empty for an image named by path whose release
    /// is unknown (no modules can then be loaded).
    pub release: String,
}

impl Kernel {
    /// `spec`: `"headers"` (or none) or an absolute path. `any`: with no
    /// headers chosen, any kernel will do (a Xen dom0 and its guests).
    pub fn resolve(spec: Option<&str>, headers: Option<&Path>, any: bool) -> Result<Kernel, VmError> {
        match spec {
            Some(path) if path != "headers" => {
                let image = PathBuf::from(path);
                readable(&image)?;
                Ok(Kernel {
                    release: release_of_image(&image).unwrap_or_default(),
                    image,
                })
            }
            None if headers.is_none() && any => Self::newest_installed(),
            _ => {
                let headers = headers.ok_or_else(|| {
                    VmError::Missing("the flight chose no kernel headers, so no kernel to boot".into())
                })?;
                let release = release_of_headers(headers)?;
                let candidates = [
                    PathBuf::from(format!("/boot/vmlinuz-{release}")),
                    PathBuf::from(format!("/lib/modules/{release}/vmlinuz")),
                ];
                let image = candidates.iter().find(|p| p.exists()).cloned().ok_or_else(|| {
                    VmError::Missing(format!(
                        "no kernel image for {release} (the kernel of {}): install it, e.g. Debian's linux-image-{release} (linux-image-amd64)",
                        headers.display()
                    ))
                })?;
                readable(&image)?;
                Ok(Kernel { image, release })
            }
        }
    }

    /// The newest `/boot/vmlinuz-RELEASE` whose modules are installed.
    fn newest_installed() -> Result<Kernel, VmError> {
        let mut found: Vec<(String, PathBuf)> = std::fs::read_dir("/boot")
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let image = e.path();
                        let release = release_of_image(&image)?;
                        Path::new("/lib/modules")
                            .join(&release)
                            .join("modules.dep")
                            .is_file()
                            .then_some((release, image))
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort_by_key(|(release, _)| super::xen::natural_key(release));
        let (release, image) = found.pop().ok_or_else(|| {
            VmError::Missing(
                "no kernel to boot: no /boot/vmlinuz-RELEASE with its /lib/modules/RELEASE (Debian's linux-image-amd64)"
                    .into(),
            )
        })?;
        readable(&image)?;
        Ok(Kernel { image, release })
    }

    /// Those of `names` that are modules of this kernel (the others are
    /// built in, or absent).
    pub fn present(&self, names: &[&str]) -> Vec<String> {
        names
            .iter()
            .filter(|n| self.modules(&[n.to_string()]).is_ok())
            .map(|n| n.to_string())
            .collect()
    }

    pub fn modules_dir(&self) -> PathBuf {
        PathBuf::from(format!("/lib/modules/{}", self.release))
    }

    /// The files of `names` and of the modules they need, in load order
    /// (what they need first), from `modules.dep`.
    pub fn modules(&self, names: &[String]) -> Result<Vec<PathBuf>, VmError> {
        modules_in(&self.modules_dir(), &self.release, &self.image, names)
    }
}

/// `Kernel::modules` in the modules folder `dir`.
fn modules_in(dir: &Path, release: &str, image: &Path, names: &[String]) -> Result<Vec<PathBuf>, VmError> {
    {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let dep_file = dir.join("modules.dep");
        let text = std::fs::read_to_string(&dep_file).map_err(|e| {
            VmError::Missing(format!(
                "cannot read {} ({e}): the modules of {} are needed",
                dep_file.display(),
                image.display()
            ))
        })?;
        let deps: std::collections::BTreeMap<String, (String, Vec<String>)> = text
            .lines()
            .filter_map(|line| {
                let (module, needs) = line.split_once(':')?;
                let name = module_name(module);
                Some((
                    name,
                    (
                        module.to_string(),
                        needs.split_whitespace().map(str::to_string).collect(),
                    ),
                ))
            })
            .collect();
        let mut order: Vec<String> = Vec::new();
        for name in names {
            let wanted = name.replace('-', "_");
            let (file, needs) = deps
                .get(&wanted)
                .ok_or_else(|| VmError::Missing(format!("kernel {release} has no module `{name}`")))?;
            // modules.dep lists what a module needs, the last to load first.
            for need in needs.iter().rev().chain(std::iter::once(file)) {
                if !order.contains(need) {
                    order.push(need.clone());
                }
            }
        }
        Ok(order.into_iter().map(|f| dir.join(f)).collect())
    }
}

fn module_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

fn readable(image: &Path) -> Result<(), VmError> {
    match std::fs::File::open(image) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(VmError::Missing(format!(
            "cannot read {} (Debian and Ubuntu install kernel images readable by root only): run as root, or `sudo chmod 0644 {}`",
            image.display(),
            image.display()
        ))),
        Err(e) => Err(VmError::Missing(format!("cannot read kernel image {}: {e}", image.display()))),
    }
}

/// The release a header tree is of (`include/generated/utsrelease.h`).
pub fn release_of_headers(headers: &Path) -> Result<String, VmError> {
    let file = headers.join("include/generated/utsrelease.h");
    let text =
        std::fs::read_to_string(&file).map_err(|e| VmError::Missing(format!("cannot read {}: {e}", file.display())))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("#define UTS_RELEASE \"")?
                .strip_suffix('"')
                .map(str::to_string)
        })
        .filter(|r| !r.is_empty() && !r.contains(['/', ' ']))
        .ok_or_else(|| VmError::Missing(format!("{} names no UTS_RELEASE", file.display())))
}

/// `vmlinuz-<release>` as Debian names images.
fn release_of_image(image: &Path) -> Option<String> {
    let name = image.file_name()?.to_str()?;
    name.strip_prefix("vmlinuz-").map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_come_with_what_they_need_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("modules.dep"),
            "kernel/fs/netfs/netfs.ko:\nkernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\nkernel/net/9p/9pnet.ko:\nkernel/drivers/block/loop.ko:\n",
        )
        .unwrap();
        let image = Path::new("/boot/vmlinuz-x");
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = modules_in(root, "x", image, &names(&["9p", "netfs", "loop"])).unwrap();
        let rel: Vec<String> = got
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(
            rel,
            [
                "kernel/fs/netfs/netfs.ko",
                "kernel/net/9p/9pnet.ko",
                "kernel/fs/9p/9p.ko",
                "kernel/drivers/block/loop.ko"
            ]
        );
        assert!(matches!(
            modules_in(root, "x", image, &names(&["nope"])),
            Err(VmError::Missing(_))
        ));
        assert_eq!(module_name("kernel/x/snd-hda.ko.xz"), "snd_hda");
    }
}
