//! KVM when it works, TCG otherwise. `/dev/kvm` opening is not enough:
//! on some hosts it opens and guests hang at boot without a word, so a
//! KVM boot that stays silent is stopped and redone under TCG, and the
//! verdict is kept for the rest of the host's boot.

use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    }

    pub fn args(self) -> Vec<&'static str> {
        match self {
            Accel::Kvm => vec!["-accel", "kvm", "-cpu", "host", "-smp", "2"],
            // One vCPU: under TCG a second one makes the boot slower.
            Accel::Tcg => vec!["-accel", "tcg", "-smp", "1"],
        }
    }

    /// For Xen: a second vCPU, and under TCG the CPU xen.git's own CI
    /// boots Xen on (`qemu64,+svm`, so HVM guests could run too).
    pub fn xen_args(self) -> Vec<&'static str> {
        match self {
            Accel::Kvm => vec!["-accel", "kvm", "-cpu", "host", "-smp", "2"],
            Accel::Tcg => vec!["-accel", "tcg", "-cpu", "qemu64,+svm", "-smp", "2"],
        }
    }
}

/// The accelerator to try first, and why.
pub fn choose() -> (Accel, String) {
    match std::env::var("SULTANA_VM_ACCEL").ok().as_deref() {
        Some("tcg") => return (Accel::Tcg, "SULTANA_VM_ACCEL=tcg".into()),
        Some("kvm") => return (Accel::Kvm, "SULTANA_VM_ACCEL=kvm".into()),
        _ => {}
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return (Accel::Tcg, format!("no usable /dev/kvm ({e})"));
    }
    match verdict_file().and_then(|f| std::fs::read_to_string(f).ok()).as_deref() {
        Some("hangs\n") => (
            Accel::Tcg,
            "KVM hangs at boot on this host (seen earlier since it booted)".into(),
        ),
        _ => (Accel::Kvm, "/dev/kvm works".into()),
    }
}

pub fn remember_hang() {
    remember("hangs\n");
}

pub fn remember_works() {
    remember("works\n");
}

fn remember(what: &str) {
    if let Some(file) = verdict_file() {
        let _ = crate::fsutil::atomic_write(&file, what.as_bytes());
    }
}

/// `$TMPDIR/sultana-<uid>/kvm-<boot id>`: how KVM behaves is the host's,
/// not one cache's, and lasts until the host reboots. A folder of another
/// owner is not trusted (its verdict could only force TCG, but still).
fn verdict_file() -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let boot = boot.trim();
    if boot.is_empty() || !boot.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return None;
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("sultana-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    if !meta.is_dir() || meta.uid() != uid {
        return None;
    }
    Some(dir.join(format!("kvm-{boot}")))
}
