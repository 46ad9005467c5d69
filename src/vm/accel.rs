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
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = crate::fsutil::atomic_write(&file, what.as_bytes());
    }
}

/// `$XDG_CACHE_HOME/sultana/vm/kvm-<boot id>`: valid until the host reboots.
fn verdict_file() -> Option<PathBuf> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let boot = boot.trim();
    if boot.is_empty() || !boot.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return None;
    }
    Some(crate::fsutil::cache_home().ok()?.join("vm").join(format!("kvm-{boot}")))
}
