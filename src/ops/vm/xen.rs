//! Xen under QEMU (`vm = { xen = true }`): the hypervisor QEMU boots by
//! multiboot with the test's kernel as dom0, the Xen tools dom0 runs, the
//! daemons started before the script (xenstored, xen-init-dom0,
//! xenconsoled), and the PV guests a script starts with `sultana-guest`.
//!
//! Xen comes from the flight when it built xen (its staged install is put
//! at `/` in dom0, as a real dom0 would have it installed), else from the
//! system: Debian's layout (`/usr/lib/xen-X.Y`, `/boot/xen-X.Y-amd64.gz`)
//! or a source install found by `xl` on PATH.

use std::path::{Path, PathBuf};

use super::VmError;

/// Where the Xen a VM boots comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XenOrigin {
    /// The staged install (DESTDIR) of the xen the flight built.
    Staged(PathBuf),
    System,
}

/// A Xen install, resolved on the host, to put into a VM.
#[derive(Clone, Debug)]
pub struct Xen {
    pub origin: XenOrigin,
    /// The hypervisor image (`xen.gz`, or the ELF itself).
    pub hypervisor: PathBuf,
    /// `4.17`, `4.21.0`: from the image's name, for the log.
    pub version: String,
    /// Host folders put into dom0: (host, inside).
    pub trees: Vec<(PathBuf, PathBuf)>,
    /// Host programs whose libraries dom0 needs (their loader's list).
    pub programs: Vec<PathBuf>,
    /// Where the staged libraries are on the host: `ldd` finds them there,
    /// and they are in the tree already.
    pub host_library_path: Vec<PathBuf>,
    /// Folders inside dom0 put first on PATH and LD_LIBRARY_PATH.
    pub path: Vec<PathBuf>,
    pub library_path: Vec<PathBuf>,
    /// Programs inside dom0.
    pub xenstored: PathBuf,
    pub xenconsoled: PathBuf,
    pub init_dom0: PathBuf,
}

/// dom0's kernel modules for Xen's devices (those that are modules in
/// the booted kernel; built-in ones need nothing).
pub const DOM0_MODULES: &[&str] = &[
    "xen-evtchn",
    "xen-gntdev",
    "xen-gntalloc",
    "xen-privcmd",
    "xenfs",
    "xen-blkback",
    "loop",
];

/// The most of a hypervisor image read, packed or not (Xen is a few MiB).
const MAX_IMAGE: u64 = 256 << 20;

/// What Xen's hotplug scripts run besides busybox's tools.
pub const DOM0_TOOLS: &[&str] = &["bash", "flock", "losetup"];

impl Xen {
    /// The Xen of a flight (`staged`: xen's staged install) or the system's.
    pub fn resolve(staged: Option<&Path>) -> Result<Xen, VmError> {
        match staged {
            Some(root) => Self::staged(root),
            None => Self::system(),
        }
    }

    /// The flight's own Xen: what it lacks is its build's fault, a broken
    /// test (never a skip, which would not block).
    fn staged(root: &Path) -> Result<Xen, VmError> {
        let hypervisor = hypervisor_in(&root.join("boot"), None).ok_or_else(|| {
            VmError::Broken(format!(
                "the xen built in this flight installed no hypervisor ({} has no xen.gz)",
                root.join("boot").display()
            ))
        })?;
        let files = files_below(root)?;
        let inside = |host: &Path| Path::new("/").join(host.strip_prefix(root).unwrap_or(host));
        let named = |name: &str| files.iter().find(|f| f.file_name().is_some_and(|n| n == name)).cloned();
        let need = |name: &str| {
            named(name).ok_or_else(|| {
                VmError::Broken(format!(
                    "the xen built in this flight installed no `{name}` under {}",
                    root.display()
                ))
            })
        };
        let xenstored = named("xenstored").or_else(|| named("oxenstored")).ok_or_else(|| {
            VmError::Broken(format!(
                "the xen built in this flight installed no xenstored under {}",
                root.display()
            ))
        })?;
        let xenconsoled = need("xenconsoled")?;
        let init_dom0 = need("xen-init-dom0")?;
        need("xl")?;
        let libdir = named("libxenctrl.so")
            .or_else(|| files.iter().find(|f| is_named_like(f, "libxenctrl.so.")).cloned())
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .ok_or_else(|| VmError::Broken(format!("no libxenctrl under {}", root.display())))?;
        let programs = files.iter().filter(|f| is_elf_program(f)).cloned().collect();
        Ok(Xen {
            origin: XenOrigin::Staged(root.to_path_buf()),
            version: version_of(&hypervisor),
            hypervisor,
            trees: vec![(root.to_path_buf(), PathBuf::from("/"))],
            programs,
            host_library_path: vec![libdir.clone()],
            path: vec![inside(&init_dom0).parent().map(Path::to_path_buf).unwrap_or_default()],
            library_path: vec![inside(&libdir)],
            xenstored: inside(&xenstored),
            xenconsoled: inside(&xenconsoled),
            init_dom0: inside(&init_dom0),
        })
    }

    fn system() -> Result<Xen, VmError> {
        let missing = || {
            VmError::Missing(
                "no Xen on this host to boot: install Debian's xen-hypervisor-4.17-amd64 and xen-utils-4.17, or build xen in the flight"
                    .into(),
            )
        };
        // Debian: the tools of each version in /usr/lib/xen-X.Y, the newest.
        let mut debian: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib")
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().to_string();
                        let version = name.strip_prefix("xen-")?;
                        let parts: Option<Vec<u32>> = version.split('.').map(|p| p.parse().ok()).collect();
                        let dir = e.path();
                        dir.join("bin/xl").is_file().then_some((parts?, dir))
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Debian's tools without their hypervisor: not a Xen to boot.
        debian.retain(|(_, dir)| {
            let version = dir
                .file_name()
                .map(|n| n.to_string_lossy().trim_start_matches("xen-").to_string());
            version.is_some_and(|v| hypervisor_in(Path::new("/boot"), Some(&v)).is_some())
        });
        debian.sort();
        if let Some((_, dir)) = debian.pop() {
            let version = dir
                .file_name()
                .map(|n| n.to_string_lossy().trim_start_matches("xen-").to_string())
                .unwrap_or_default();
            let hypervisor = hypervisor_in(Path::new("/boot"), Some(&version)).ok_or_else(missing)?;
            let bin = dir.join("bin");
            let xenstored = ["oxenstored", "xenstored"]
                .iter()
                .map(|n| bin.join(n))
                .find(|p| p.is_file())
                .ok_or_else(missing)?;
            let mut programs = elf_files(&dir)?;
            programs.extend(xenstore_clients(Path::new("/usr/bin")));
            let mut trees = vec![(dir.clone(), dir.clone())];
            for extra in ["/usr/lib/xen-common", "/etc/xen"] {
                if Path::new(extra).is_dir() {
                    trees.push((PathBuf::from(extra), PathBuf::from(extra)));
                }
            }
            return Ok(Xen {
                origin: XenOrigin::System,
                version,
                hypervisor,
                trees,
                programs,
                host_library_path: Vec::new(),
                path: vec![bin.clone()],
                library_path: Vec::new(),
                xenconsoled: bin.join("xenconsoled"),
                init_dom0: bin.join("xen-init-dom0"),
                xenstored,
            });
        }
        // A source install: `xl` on PATH is the program itself.
        let xl = which::which("xl").map_err(|_| missing())?;
        let xl = xl.canonicalize().unwrap_or(xl);
        if !is_elf_program(&xl) {
            return Err(missing());
        }
        let prefix = xl.parent().and_then(Path::parent).ok_or_else(missing)?.to_path_buf();
        let hypervisor = hypervisor_in(Path::new("/boot"), None).ok_or_else(missing)?;
        let mut trees = Vec::new();
        let mut programs = vec![xl];
        for dir in ["lib/xen", "lib64/xen", "libexec/xen"].map(|d| prefix.join(d)) {
            if dir.is_dir() {
                programs.extend(elf_files(&dir)?);
                trees.push((dir.clone(), dir));
            }
        }
        if Path::new("/etc/xen").is_dir() {
            trees.push((PathBuf::from("/etc/xen"), PathBuf::from("/etc/xen")));
        }
        let sbin = prefix.join("sbin");
        let found = |name: &str| {
            [
                sbin.join(name),
                prefix.join("lib/xen/bin").join(name),
                prefix.join("libexec/xen/bin").join(name),
            ]
            .into_iter()
            .find(|p| p.is_file())
        };
        let xenstored = found("xenstored").or_else(|| found("oxenstored")).ok_or_else(missing)?;
        let xenconsoled = found("xenconsoled").ok_or_else(missing)?;
        let init_dom0 = found("xen-init-dom0").ok_or_else(missing)?;
        programs.extend([xenstored.clone(), xenconsoled.clone()]);
        programs.extend(xenstore_clients(&prefix.join("bin")));
        Ok(Xen {
            origin: XenOrigin::System,
            version: version_of(&hypervisor),
            hypervisor,
            trees,
            programs,
            host_library_path: Vec::new(),
            path: init_dom0.parent().map(Path::to_path_buf).into_iter().collect(),
            library_path: Vec::new(),
            xenstored,
            xenconsoled,
            init_dom0,
        })
    }

    /// What the log says of it.
    pub fn describe(&self) -> String {
        match &self.origin {
            XenOrigin::Staged(root) => format!("Xen {} built in the flight ({})", self.version, root.display()),
            XenOrigin::System => format!("the system's Xen {} ({})", self.version, self.hypervisor.display()),
        }
    }

    /// The hypervisor as QEMU's multiboot loader takes it: the ELF,
    /// unpacked into `dest` when it is gzipped.
    pub fn unpack(&self, dest: &Path) -> Result<(), VmError> {
        use std::io::Read;
        if let XenOrigin::Staged(root) = &self.origin {
            let real = self.hypervisor.canonicalize().unwrap_or_default();
            if !real.starts_with(root.canonicalize().unwrap_or_default()) {
                return Err(VmError::Broken(format!(
                    "{} leads out of the flight's xen install",
                    self.hypervisor.display()
                )));
            }
        }
        let mut bytes = Vec::new();
        std::fs::File::open(&self.hypervisor)
            .and_then(|f| f.take(MAX_IMAGE).read_to_end(&mut bytes))
            .map_err(|e| VmError::Broken(format!("cannot read {}: {e}", self.hypervisor.display())))?;
        let elf = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            // The hypervisor is a few MiB; a bomb stops at the cap.
            flate2::read::GzDecoder::new(&bytes[..])
                .take(MAX_IMAGE)
                .read_to_end(&mut out)
                .map_err(|e| VmError::Broken(format!("cannot unpack {}: {e}", self.hypervisor.display())))?;
            out
        } else {
            bytes
        };
        if !elf.starts_with(b"\x7fELF") {
            return Err(VmError::Broken(format!(
                "{} is not a Xen image (neither gzip nor ELF)",
                self.hypervisor.display()
            )));
        }
        std::fs::write(dest, elf).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", dest.display()))?;
        Ok(())
    }

    /// Xen's command line: its console on the first serial port, dom0's
    /// memory fixed (the rest is for guests). A crash of dom0 or Xen
    /// reboots, which ends QEMU (`-no-reboot`) rather than halting it.
    pub fn command_line(dom0_memory: u32) -> String {
        format!(
            "console=com1 com1=115200,8n1 dom0_mem={dom0_memory}M,max:{dom0_memory}M loglvl=warning guest_loglvl=warning"
        )
    }

    /// The part of dom0's /init that starts Xen's daemons, in the shell of
    /// `super::init_script`; it sets `xen_ready` to 0 or a failure code.
    /// `bash`: the host's, which Xen's `#!/bin/bash` scripts get.
    pub fn dom0_prelude(&self, bash: &Path) -> String {
        use crate::process::shell_quote as q;
        let join = |dirs: &[PathBuf]| {
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        };
        let mut s = String::new();
        s.push_str("mkdir -p /var /run/xen /run/xenstored\n[ -e /var/run ] || ln -s /run /var/run\n");
        s.push_str("mkdir -p /var/lib/xen /var/log/xen/console /var/lib/xenstored\n");
        // Xen's scripts and wrappers start with #!/bin/bash and #!/bin/sh.
        s.push_str(&format!(
            "mkdir -p /bin\n[ -e /bin/bash ] || ln -s {} /bin/bash\n[ -e /bin/sh ] || ln -s /busybox/busybox /bin/sh\n",
            q(&bash.display().to_string())
        ));
        // Xen's hotplug scripts lock with `stat /dev/stdin`.
        s.push_str("ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin; ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr\n");
        s.push_str(&format!("export PATH=/sultana/bin:{}:$PATH\n", q(&join(&self.path))));
        if !self.library_path.is_empty() {
            s.push_str(&format!(
                "export LD_LIBRARY_PATH={}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}\n",
                q(&join(&self.library_path))
            ));
        }
        s.push_str(&format!("export SULTANA_XEN_VERSION={}\n", q(&self.version)));
        s.push_str("xen_ready=0\nxen_fail() { echo \"dom0: $*\"; xen_ready=99; }\n");
        s.push_str("[ -d /proc/xen ] && mount -t xenfs xenfs /proc/xen 2>/dev/null\n");
        s.push_str(
            "[ -e /proc/xen/capabilities ] || xen_fail 'not running as a Xen dom0 (no /proc/xen/capabilities)'\n",
        );
        s.push_str(&format!(
            "[ $xen_ready = 0 ] && {{ {} --pid-file /run/xenstored.pid || xen_fail 'xenstored did not start'; }}\n",
            q(&self.xenstored.display().to_string())
        ));
        // A handshake: xenstored answers before anything uses it.
        s.push_str("if [ $xen_ready = 0 ]; then\n  i=0; until xenstore-exists / 2>/dev/null; do i=$((i+1)); [ $i -ge 300 ] && { xen_fail 'xenstored does not answer'; break; }; sleep 0.1; done\nfi\n");
        s.push_str(&format!(
            "[ $xen_ready = 0 ] && {{ {} >/dev/null || xen_fail 'xen-init-dom0 failed'; }}\n",
            q(&self.init_dom0.display().to_string())
        ));
        s.push_str(&format!(
            "[ $xen_ready = 0 ] && {{ {} --log=guest --pid-file=/run/xenconsoled.pid || xen_fail 'xenconsoled did not start'; }}\n",
            q(&self.xenconsoled.display().to_string())
        ));
        s.push_str("[ $xen_ready = 0 ] && echo \"# xen: $SULTANA_XEN_VERSION, dom0 ready at $(cut -d' ' -f1 /proc/uptime) s of dom0's uptime\"\n");
        s
    }
}

/// The guest's /init: busybox, its modules, the test's guest script, its
/// exit status on the console, power off.
pub fn guest_init(modules: &[PathBuf]) -> String {
    use crate::process::shell_quote as q;
    let mut s = String::from("#!/bin/busybox sh\n/bin/busybox --install -s /bin\nexport PATH=/bin\n");
    s.push_str("mkdir -p /proc /sys /dev /tmp\nmount -t proc proc /proc\nmount -t sysfs sysfs /sys\nmount -t devtmpfs devtmpfs /dev\n");
    s.push_str("loaded=0\n");
    for module in modules {
        s.push_str(&format!(
            "[ $loaded = 0 ] && {{ insmod {} || loaded=99; }}\n",
            q(&module.display().to_string())
        ));
    }
    s.push_str("echo SULTANA-GUEST-BOOTED\n");
    s.push_str("if [ $loaded = 0 ]; then cd /tmp && sh /guest-test </dev/null; code=$?; else echo 'the guest cannot load its modules'; code=99; fi\n");
    s.push_str("echo \"SULTANA-GUEST-EXIT $code\"\nsync\npoweroff -f\n");
    s
}

/// `sultana-guest NAME [DISK…]`, on dom0's PATH: boot a PV guest running
/// the test's guest script with these `xl` disk specifications, print its
/// console, and end with the script's exit status (99 when the guest ended
/// without one, 124 when it outlived SULTANA_GUEST_TIMEOUT seconds).
pub const GUEST_HELPER: &str = r#"#!/bin/bash
set -u
# Busybox's tools by their own path: an install's `sed` never judges.
bb=/busybox/busybox
[ $# -ge 1 ] || { echo "usage: sultana-guest NAME [DISK...]"; exit 99; }
name=$1; shift
case $name in ''|-*|*[!A-Za-z0-9_-]*) echo "guest: the name must be letters, digits, - and _, not first -"; exit 99;; esac
[ -n "${SULTANA_GUEST_KERNEL:-}" ] || { echo "guest $name: the test declares no guest (vm.guest)"; exit 99; }
cfg=/run/sultana-guest-$name.cfg
{
    echo "name = \"$name\""
    echo 'type = "pv"'
    echo "kernel = \"$SULTANA_GUEST_KERNEL\""
    echo "ramdisk = \"$SULTANA_GUEST_RAMDISK\""
    echo 'extra = "console=hvc0 loglevel=4 panic=-1 rdinit=/init"'
    echo "memory = ${SULTANA_GUEST_MEMORY:-256}"
    echo 'vcpus = 1'
    echo 'on_poweroff = "destroy"'
    echo 'on_reboot = "destroy"'
    echo 'on_crash = "destroy"'
    printf 'disk = ['
    sep=
    for disk in "$@"; do
        case $disk in *[\"\\]*) echo "guest $name: a disk with a quote or backslash: $disk"; exit 99;; esac
        printf '%s"%s"' "$sep" "$disk"
        sep=', '
    done
    echo ']'
} >"$cfg"
log=/var/log/xen/console/guest-$name.log
$bb rm -f "$log"
started=$SECONDS
echo "+ xl create ($*)"
xl create "$cfg" || { echo "guest $name: xl create failed"; exit 99; }
deadline=$((SECONDS + ${SULTANA_GUEST_TIMEOUT:-600}))
timed_out=
while xl domid "$name" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
        timed_out=yes
        xl destroy "$name"
        break
    fi
    $bb sleep 0.5
done
echo "--- guest $name's console"
$bb tr -d '\r' <"$log" 2>/dev/null
echo "--- guest $name ran $((SECONDS - started)) s"
[ -z "$timed_out" ] || { echo "guest $name: still ran after ${SULTANA_GUEST_TIMEOUT:-600} s; destroyed"; exit 124; }
console=$($bb tr -d '\r' <"$log" 2>/dev/null)
code=$(printf '%s\n' "$console" | $bb sed -n 's/^SULTANA-GUEST-EXIT \([0-9][0-9]*\)$/\1/p' | $bb tail -n 1)
[ -n "$code" ] || { echo "guest $name: ended without its exit status"; exit 99; }
# The script's last words: its last line before the exit line, not the kernel's.
last=$(printf '%s\n' "$console" | $bb sed -n '/^SULTANA-GUEST-BOOTED$/,/^SULTANA-GUEST-EXIT /p' | $bb grep -v -e '^SULTANA-GUEST-' -e '^\[ *[0-9.]*\]' | $bb tail -n 1)
echo "guest $name: exit $code${last:+: $last}"
exit "$code"
"#;

/// The newest `xen*.gz` in `dir` (of `version` when given: Debian's
/// `xen-4.17-amd64.gz`), `xen.gz` first when there is one.
fn hypervisor_in(dir: &Path, version: Option<&str>) -> Option<PathBuf> {
    if version.is_none() && dir.join("xen.gz").is_file() {
        return Some(dir.join("xen.gz"));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            name.ends_with(".gz")
                && match version {
                    // `xen-4.1` is not `xen-4.17-amd64.gz`.
                    Some(v) => name
                        .strip_prefix(&format!("xen-{v}"))
                        .is_some_and(|rest| rest.starts_with(['-', '.'])),
                    None => name.starts_with("xen-"),
                }
                && p.is_file()
        })
        .collect();
    found.sort_by_key(|p| natural_key(&p.to_string_lossy()));
    found.pop()
}

/// A name's sort key with its numbers compared as numbers (4.9 before
/// 4.17, 6.1.0-9 before 6.1.0-28).
pub fn natural_key(name: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut digits = String::new();
    let mut text = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !text.is_empty() {
                key.push((0, std::mem::take(&mut text)));
            }
            digits.push(c);
        } else {
            if !digits.is_empty() {
                key.push((digits.parse().unwrap_or(u64::MAX), String::new()));
                digits.clear();
            }
            text.push(c);
        }
    }
    if !digits.is_empty() {
        key.push((digits.parse().unwrap_or(u64::MAX), String::new()));
    }
    if !text.is_empty() {
        key.push((0, text));
    }
    key
}

/// `value` with each staged install's host path made the path inside a
/// dom0 that has it installed at `/`.
pub fn relocate(value: &str, roots: &[&Path]) -> String {
    for root in roots {
        let root = root.display().to_string();
        if value == root {
            return "/".to_string();
        }
        if let Some(rest) = value.strip_prefix(&root).filter(|r| r.starts_with('/')) {
            return rest.to_string();
        }
    }
    value.to_string()
}

/// The ELF files of an install (its programs and libraries).
pub fn elf_files(root: &Path) -> Result<Vec<PathBuf>, VmError> {
    Ok(files_below(root)?.into_iter().filter(|f| is_elf_program(f)).collect())
}

/// The folders of these ELF files holding shared libraries (for `ldd`).
pub fn library_dirs(elf: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = elf
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy().contains(".so")))
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// `xen-4.21.0.gz` → `4.21.0`, `xen-4.17-amd64.gz` → `4.17-amd64`.
fn version_of(image: &Path) -> String {
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = std::fs::canonicalize(image)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or(name);
    name.trim_start_matches("xen-")
        .trim_start_matches("xen")
        .trim_end_matches(".gz")
        .trim_start_matches('.')
        .to_string()
}

fn xenstore_clients(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| is_named_like(p, "xenstore") && is_elf_program(p))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn is_named_like(path: &Path, prefix: &str) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
}

/// An executable ELF file (programs and shared libraries alike).
fn is_elf_program(path: &Path) -> bool {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return false;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// Every regular file under `dir`, symlinks not followed: the staged
/// prefix's own reader (a FIFO, socket or device, or a name that is not
/// UTF-8, was already refused when the install was staged).
fn files_below(dir: &Path) -> Result<Vec<PathBuf>, VmError> {
    use crate::build::entry_files::{take, Depth, Kind};
    let files = take(dir, Depth::KindsOnly).map_err(|e| VmError::Broken(e.to_string()))?;
    Ok(files
        .items
        .into_iter()
        .filter(|i| i.kind == Kind::File)
        .map(|i| dir.join(i.path))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sort_as_numbers_and_paths_move_inside() {
        let mut names = vec!["xen-4.17.gz", "xen-4.9.gz", "xen-4.21.0.gz"];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(names, ["xen-4.9.gz", "xen-4.17.gz", "xen-4.21.0.gz"]);
        let mut releases = vec!["6.1.0-28-amd64", "6.1.0-9-amd64"];
        releases.sort_by_key(|n| natural_key(n));
        assert_eq!(releases, ["6.1.0-9-amd64", "6.1.0-28-amd64"]);
        let roots = [Path::new("/w/dist/blktap")];
        assert_eq!(relocate("/w/dist/blktap/usr/local", &roots), "/usr/local");
        assert_eq!(relocate("/w/dist/blktap", &roots), "/");
        assert_eq!(
            relocate("/w/dist/blktap-module/usr", &roots),
            "/w/dist/blktap-module/usr"
        );
        assert_eq!(relocate("/w/work", &roots), "/w/work");
    }

    #[test]
    fn a_version_names_its_own_image_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["xen-4.17-amd64.gz", "xen-4.1.gz"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(
            hypervisor_in(dir.path(), Some("4.1")),
            Some(dir.path().join("xen-4.1.gz"))
        );
        std::fs::remove_file(dir.path().join("xen-4.1.gz")).unwrap();
        assert_eq!(hypervisor_in(dir.path(), Some("4.1")), None, "4.17 is not 4.1");
    }

    #[test]
    fn versions_come_from_image_names() {
        assert_eq!(version_of(Path::new("/nonexistent/xen-4.21.0.gz")), "4.21.0");
        assert_eq!(version_of(Path::new("/nonexistent/xen-4.17-amd64.gz")), "4.17-amd64");
    }

    /// A staged install laid out as Xen's `make install` does.
    fn stage(root: &Path) {
        use std::io::Write;
        let elf = std::fs::read("/bin/true").unwrap();
        for (path, exec) in [
            ("usr/local/sbin/xl", true),
            ("usr/local/sbin/xenstored", true),
            ("usr/local/sbin/xenconsoled", true),
            ("usr/local/libexec/xen/bin/xen-init-dom0", true),
            ("usr/local/lib/libxenctrl.so.4.21.0", true),
            ("etc/xen/scripts/block-tap", false),
        ] {
            let file = root.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &elf).unwrap();
            if exec {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        std::fs::create_dir_all(root.join("boot")).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"\x7fELF and the rest of Xen").unwrap();
        std::fs::write(root.join("boot/xen-4.21.0.gz"), gz.finish().unwrap()).unwrap();
        std::os::unix::fs::symlink("xen-4.21.0.gz", root.join("boot/xen.gz")).unwrap();
    }

    #[test]
    fn a_staged_xen_is_found_where_make_install_put_it_and_runs_at_the_root() {
        let dir = tempfile::tempdir().unwrap();
        stage(dir.path());
        let xen = Xen::resolve(Some(dir.path())).unwrap();
        assert_eq!(xen.origin, XenOrigin::Staged(dir.path().to_path_buf()));
        assert_eq!(xen.version, "4.21.0");
        assert_eq!(xen.trees, [(dir.path().to_path_buf(), PathBuf::from("/"))]);
        assert_eq!(xen.xenstored, Path::new("/usr/local/sbin/xenstored"));
        assert_eq!(xen.init_dom0, Path::new("/usr/local/libexec/xen/bin/xen-init-dom0"));
        assert_eq!(xen.library_path, [PathBuf::from("/usr/local/lib")]);
        assert_eq!(xen.host_library_path, [dir.path().join("usr/local/lib")]);
        assert!(xen.programs.contains(&dir.path().join("usr/local/sbin/xl")));
        assert!(!xen.programs.iter().any(|p| p.ends_with("block-tap")), "not a program");
        let prelude = xen.dom0_prelude(Path::new("/usr/bin/bash"));
        assert!(prelude.contains("ln -s /usr/bin/bash /bin/bash"), "{prelude}");
        assert!(
            prelude.contains("export PATH=/sultana/bin:"),
            "the runner first: {prelude}"
        );
        assert!(prelude.contains("export LD_LIBRARY_PATH=/usr/local/lib"), "{prelude}");
        assert!(prelude.contains("/usr/local/sbin/xenstored --pid-file"), "{prelude}");

        let image = dir.path().join("unpacked");
        xen.unpack(&image).unwrap();
        assert_eq!(std::fs::read(&image).unwrap(), b"\x7fELF and the rest of Xen");

        // No xenconsoled: the flight's xen is broken (never a skip), said
        // with the install's path.
        std::fs::remove_file(dir.path().join("usr/local/sbin/xenconsoled")).unwrap();
        match Xen::resolve(Some(dir.path())) {
            Err(VmError::Broken(why)) => assert!(why.contains("no `xenconsoled`"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_image_that_is_not_xen_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        stage(dir.path());
        std::fs::remove_file(dir.path().join("boot/xen.gz")).unwrap();
        std::fs::write(dir.path().join("boot/xen.gz"), b"#!/bin/sh\n").unwrap();
        let xen = Xen::resolve(Some(dir.path())).unwrap();
        match xen.unpack(&dir.path().join("unpacked")) {
            Err(VmError::Broken(why)) => assert!(why.contains("not a Xen image"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_staged_install_without_a_hypervisor_is_a_broken_xen() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/local/sbin")).unwrap();
        match Xen::resolve(Some(dir.path())) {
            Err(VmError::Broken(why)) => assert!(why.contains("no hypervisor"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
