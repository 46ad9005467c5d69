//! Recipe tests in a throwaway VM: QEMU boots the kernel the component was
//! built for with a root of our own (an initramfs: busybox, bash, the
//! test's tools and their libraries, the kernel modules it asks for, the
//! staged trees and the script at their host paths), runs the script as
//! root and brings back its exit status, its output and the kernel's log.
//!
//! Our own QEMU invocation rather than virtme-ng: virtme-ng shares the
//! host's root over 9p/virtiofs, so what a test sees depends on the host's
//! whole file system and on the kernel's 9p modules; here the VM holds only
//! what the test declares, and needs nothing but qemu-system-x86 and the
//! kernel image.
//!
//! Three serial ports, each a file: ttyS0 the console (the boot), ttyS1
//! the script's output ending in an exit line carrying a nonce (so nothing
//! the test prints can fake it), ttyS2 the kernel log after the script.

mod accel;
mod initramfs;
mod kernel;
pub mod xen;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fsutil;
use crate::printer::Printer;
use crate::process::{Cmd, Ended, Watch};
use crate::recipe::VmSpec;

pub use accel::Accel;
use initramfs::Initramfs;
pub use kernel::Kernel;
use xen::Xen;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// Something a VM needs is not on this host: the test is skipped and
    /// says what to install.
    #[error("{0}")]
    Missing(String),
    /// The VM could not be made or did not boot: the test is broken, not
    /// failed (QEMU refused, the root did not fit, the kernel did not start).
    #[error("{0}")]
    Broken(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// One run of a test's script in a VM.
pub struct VmTest<'a> {
    pub spec: &'a VmSpec,
    /// The kernel headers the flight built against (`kernel = "headers"`).
    pub headers: Option<&'a Path>,
    pub script: &'a Path,
    /// The test's environment (SULTANA_*), the same inside.
    pub env: &'a BTreeMap<String, String>,
    /// Host folders copied in at their own paths.
    pub trees: Vec<PathBuf>,
    /// Host folders copied in without their `.git` (the source tree), and
    /// entries of theirs left out (a workspace root's `.sultana`).
    pub sources: Vec<(PathBuf, Vec<&'static str>)>,
    pub work: &'a Path,
    /// Staged installs (DESTDIRs) a Xen dom0 has installed at `/` (their
    /// host paths link there); in a plain VM they are under `trees`.
    pub installs: Vec<PathBuf>,
    /// The staged install of the xen the flight built: a Xen VM boots it
    /// (else the system's Xen).
    pub xen_stage: Option<PathBuf>,
    /// The guest script `sultana-guest` runs (`vm.guest`).
    pub guest: Option<&'a Path>,
    /// Where the VM's own files go (initramfs, serial files).
    pub scratch: &'a Path,
    /// The test's log: the script's output is appended.
    pub log: &'a Path,
    /// The console and kernel logs, kept beside the test's log.
    pub console_log: PathBuf,
    pub kernel_log: PathBuf,
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct VmRun {
    /// The script's exit (Exited), or how the VM ended without one.
    pub ended: Ended,
    /// Why the VM ended without the script's exit status.
    pub detail: Option<String>,
    /// An oops, BUG, WARNING or panic line of the kernel's log.
    pub kernel_trouble: Option<String>,
    pub accel: Accel,
    /// Why this accelerator (e.g. KVM hangs on this host).
    pub accel_note: String,
    pub boot_seconds: Option<f64>,
    pub kernel: Kernel,
    /// The Xen booted, said in words (a Xen VM).
    pub xen: Option<String>,
}

/// How long a KVM guest may stay silent before KVM counts as hanging.
const KVM_SILENCE: Duration = Duration::from_secs(10);
/// The most the VM's root may hold (it lives in the VM's memory).
const MAX_ROOT: u64 = 4 << 30;
/// The most the VM may write to one serial file before it is stopped.
const MAX_SERIAL: u64 = 64 << 20;

pub fn run(test: &VmTest, printer: &Printer) -> Result<VmRun, VmError> {
    let qemu = which::which("qemu-system-x86_64")
        .map_err(|_| VmError::Missing("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)".into()))?;
    let xen = match test.spec.xen {
        true => Some(Xen::resolve(test.xen_stage.as_deref())?),
        false => None,
    };
    let kernel = Kernel::resolve(test.spec.kernel.as_deref(), test.headers, xen.is_some())?;
    let nonce = nonce();
    std::fs::create_dir_all(test.scratch)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", test.scratch.display()))?;
    let root = make_root(test, xen.as_ref(), &kernel, &nonce)?;
    let initrd = test.scratch.join("initramfs.cpio");
    root.write(&initrd)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", initrd.display()))?;
    // The root lives in the VM's memory (a ramfs, no size cap of its own)
    // beside the archive it was unpacked from and the test.
    let memory = test
        .spec
        .memory
        .unwrap_or(VmSpec::DEFAULT_MEMORY)
        .max(384 + u32::try_from((root.bytes() * 3) >> 20).unwrap_or(u32::MAX / 2));
    let hypervisor = match &xen {
        Some(xen) => {
            let image = test.scratch.join("xen");
            xen.unpack(&image)?;
            Some(image)
        }
        None => None,
    };
    let vm = Vm {
        test,
        qemu: &qemu,
        kernel: &kernel,
        initrd: &initrd,
        memory,
        nonce: &nonce,
        hypervisor: hypervisor.as_deref(),
    };
    let booted = vm.boot_falling_back(printer);
    let _ = std::fs::remove_file(&initrd);
    if let Some(image) = &hypervisor {
        let _ = std::fs::remove_file(image);
        let _ = std::fs::remove_file(test.scratch.join("guest.cpio"));
    }
    let (outcome, accel, accel_note) = booted?;
    if let Some(failure) = &outcome.qemu_failed {
        return Err(VmError::Broken(format!("QEMU did not start the VM: {failure}")));
    }
    let (ended, detail, kernel_trouble) = vm.results(&outcome, xen.is_some())?;
    Ok(VmRun {
        ended,
        detail,
        kernel_trouble,
        accel,
        accel_note,
        boot_seconds: outcome.booted,
        kernel,
        xen: xen.map(|x| x.describe()),
    })
}

/// The VM's root: busybox, bash, the tools and modules, the trees, the
/// work folder and script, the nonce and /init (and under Xen, dom0's).
fn make_root(test: &VmTest, xen: Option<&Xen>, kernel: &Kernel, nonce: &str) -> Result<Initramfs, VmError> {
    let mut module_names = test.spec.modules.clone();
    if xen.is_some() {
        module_names.extend(kernel.present(xen::DOM0_MODULES));
    }
    let modules = kernel.modules(&module_names)?;
    let mut root = Initramfs::default();
    // The VM's own files: no tree puts anything there.
    for own in [
        "/init",
        "/sultana-nonce",
        "/busybox",
        "/sultana",
        "/etc/ld.so.preload",
        "/etc/ld.so.cache",
    ] {
        root.reserve(Path::new(own));
    }
    let bash = which::which("bash").map_err(|_| VmError::Missing("bash is not on this host's PATH".into()))?;
    let mut env = test.env.clone();
    if let Some(xen) = xen {
        // First: what the VM's own files below must win over.
        add_xen(&mut root, xen, test, kernel)?;
        // The staged installs are at `/` in dom0: so are their paths.
        let roots: Vec<&Path> = test.installs.iter().map(PathBuf::as_path).collect();
        for value in env.values_mut() {
            *value = xen::relocate(value, &roots);
        }
    }
    let busybox = which::which("busybox")
        .map_err(|_| VmError::Missing("busybox is not installed (Debian package busybox-static)".into()))?;
    add_program(&mut root, &busybox, Some(Path::new("/busybox/busybox")))?;
    add_program(&mut root, &bash, None)?;
    let mut programs = test.spec.tools.clone();
    if xen.is_some() {
        programs.extend(xen::DOM0_TOOLS.iter().map(|t| t.to_string()));
    }
    for name in &programs {
        let path = which::which(name).map_err(|_| {
            VmError::Missing(format!(
                "the test's tool `{name}` is not installed on this host (it is copied into the VM)"
            ))
        })?;
        add_program(&mut root, &path, None)?;
    }
    for module in &modules {
        root.host_file(module, module)
            .map_err(|e| anyhow::anyhow!("cannot add module {}: {e}", module.display()))?;
    }
    let add_tree = |root: &mut Initramfs, tree: &Path, skip: &[&str], skip_top: &[&str]| {
        root.host_tree(tree, skip, skip_top)
            .map_err(|e| VmError::Other(anyhow::anyhow!("cannot add {} to the VM: {e}", tree.display())))
    };
    for tree in test.trees.iter().filter(|t| t.is_dir()) {
        add_tree(&mut root, tree, &[], &[])?;
    }
    for (tree, skip_top) in test.sources.iter().filter(|(t, _)| t.is_dir()) {
        add_tree(&mut root, tree, &[".git"], skip_top)?;
    }
    add_tree(&mut root, test.work, &[], &[])?;
    root.host_file(test.script, test.script)
        .map_err(|e| anyhow::anyhow!("cannot add {}: {e}", test.script.display()))?;
    // The nonce is a file /init reads and deletes before the script runs:
    // the script can read /init, never the nonce.
    root.bytes_file(Path::new("/sultana-nonce"), nonce.to_string().into_bytes(), 0o600);
    let init = Init {
        test,
        env: &env,
        bash: &bash,
        xen,
    };
    root.bytes_file(Path::new("/init"), init_script(&init, &modules).into_bytes(), 0o755);
    if root.bytes() > MAX_ROOT {
        return Err(VmError::Broken(format!(
            "the VM's root would hold {:.1} GiB (the staged trees, the work folder, the tools): over the {} GiB a VM's memory can carry",
            root.bytes() as f64 / f64::from(1u32 << 30),
            MAX_ROOT >> 30
        )));
    }
    Ok(root)
}

struct Boot {
    ended: Ended,
    out: PathBuf,
    /// KVM said nothing at all before `KVM_SILENCE`.
    silent: bool,
    /// Seconds to the /init's first line.
    booted: Option<f64>,
    /// QEMU ended before the guest said a word: its own error.
    qemu_failed: Option<String>,
    /// A serial file grew past `MAX_SERIAL`.
    overflow: Option<String>,
}

/// What every boot of one test's VM shares.
struct Vm<'a> {
    test: &'a VmTest<'a>,
    qemu: &'a Path,
    kernel: &'a Kernel,
    initrd: &'a Path,
    memory: u32,
    nonce: &'a str,
    /// Xen's ELF image, booted with the kernel as dom0.
    hypervisor: Option<&'a Path>,
}

impl Vm<'_> {
    /// Boot under the accelerator chosen; a KVM that hangs or fails here
    /// is remembered and the boot redone under TCG.
    fn boot_falling_back(&self, printer: &Printer) -> Result<(Boot, Accel, String), VmError> {
        let (mut accel, mut accel_note) = accel::choose();
        let deadline = Instant::now() + self.test.timeout;
        let mut outcome = self.boot(accel, deadline)?;
        if accel == Accel::Kvm && outcome.booted.is_none() && (outcome.silent || outcome.qemu_failed.is_some()) {
            accel::remember_hang();
            let why = match &outcome.qemu_failed {
                Some(failure) => format!("QEMU failed under KVM here ({failure})"),
                None => format!(
                    "KVM hung at boot here (no console output in {} s)",
                    KVM_SILENCE.as_secs()
                ),
            };
            printer.trouble("VM", format!("{why}; using TCG"));
            accel = Accel::Tcg;
            accel_note = why;
            outcome = self.boot(accel, deadline)?;
        } else if accel == Accel::Kvm && outcome.booted.is_some() {
            accel::remember_works();
        }
        Ok((outcome, accel, accel_note))
    }

    /// What the VM said: the script's output into the test's log, how it
    /// ended (the exit line counts only once /init finished), why it ended
    /// without one, and the kernel's trouble.
    fn results(&self, outcome: &Boot, xen: bool) -> Result<(Ended, Option<String>, Option<String>), VmError> {
        let (test, nonce) = (self.test, self.nonce);
        let raw = fsutil::read_tail(&outcome.out, 16 << 20).unwrap_or_default();
        let text = String::from_utf8_lossy(&raw).replace("\r\n", "\n");
        let booted = format!("SULTANA-VM-BOOTED-{nonce}");
        let exit = format!("SULTANA-VM-EXIT-{nonce} ");
        let body = text.split_once(&booted).map_or(text.as_str(), |(_, rest)| rest);
        let (output, code) = match body.rfind(&exit) {
            Some(at) => {
                let code = body[at + exit.len()..]
                    .lines()
                    .next()
                    .and_then(|c| c.trim().parse::<i32>().ok());
                (&body[..at], code)
            }
            None => (body, None),
        };
        let output = output.trim_start_matches('\n').trim_end_matches('\n');
        fsutil::append_log(test.log, format!("{output}\n").as_bytes());
        if xen {
            // dom0's kernel log came after the exit line, on the same port.
            let after = body.rfind(&exit).map_or("", |at| {
                let rest = &body[at..];
                rest.split_once('\n').map_or("", |(_, log)| log)
            });
            std::fs::write(&test.kernel_log, after)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", test.kernel_log.display()))?;
        }
        let _ = std::fs::remove_file(&outcome.out);
        let read = |p: &Path| {
            String::from_utf8_lossy(&fsutil::read_tail(p, 16 << 20).unwrap_or_default()).replace("\r\n", "\n")
        };
        let kernel_text = read(&test.kernel_log);
        let console_text = read(&test.console_log);
        if console_text.contains("Initramfs unpacking failed")
            || console_text.contains("Kernel panic - not syncing: VFS")
        {
            return Err(VmError::Broken(format!(
                "the VM's root did not unpack (memory {} MiB): {}",
                self.memory,
                console_text
                    .lines()
                    .find(|l| l.contains("nitramfs") || l.contains("panic"))
                    .unwrap_or_default()
                    .trim()
            )));
        }
        // The end line (after the kernel's log, past the script) carries
        // the nonce too.
        let finished = kernel_text.contains(&format!("SULTANA-VM-END-{nonce}"));
        let code = code.filter(|_| finished);
        let kernel_trouble = trouble_line(&kernel_text)
            .or_else(|| trouble_line(&console_text))
            .map(|line| format!("the kernel logged: {line}"))
            .or_else(|| new_taint(&kernel_text, nonce));
        let (ended, detail) = match (code, outcome.ended) {
            (_, _) if outcome.overflow.is_some() => (Ended::Stopped, outcome.overflow.clone()),
            (Some(code), _) => (Ended::Exited(code), None),
            (None, Ended::TimedOut) => (Ended::TimedOut, None),
            (None, _) => {
                let last = console_text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("(the console is empty)")
                    .trim()
                    .to_string();
                (
                    Ended::Stopped,
                    Some(format!(
                        "the VM ended without the test's exit status; its console's last line: {last}"
                    )),
                )
            }
        };
        Ok((ended, detail, kernel_trouble))
    }

    fn boot(&self, accel: Accel, deadline: Instant) -> Result<Boot, VmError> {
        let test = self.test;
        let started = Instant::now();
        let out = test.scratch.join("output.serial");
        let qemu_log = test.scratch.join("qemu.log");
        for file in [&out, &test.console_log, &test.kernel_log, &qemu_log] {
            std::fs::write(file, b"").map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
        }
        // QEMU's option syntax: a comma in a value is written twice.
        let chardev =
            |id: &str, path: &Path| format!("file,id={id},path={}", path.display().to_string().replace(',', ",,"));
        let cmd = Cmd::new(self.qemu, "qemu-system-x86").args(["-nodefaults", "-display", "none", "-no-reboot"]);
        let cmd = match self.hypervisor {
            None => cmd
                .args(accel.args())
                .args(["-m", &self.memory.to_string()])
                .arg("-kernel")
                .arg(&self.kernel.image)
                .arg("-initrd")
                .arg(self.initrd)
                .args([
                    "-append",
                    "console=ttyS0 loglevel=5 panic=-1 rootfstype=ramfs rdinit=/init",
                ]),
            Some(xen) => self.xen_args(cmd, accel, xen)?,
        };
        let cmd = cmd
            .args(["-chardev", &chardev("con", &test.console_log), "-serial", "chardev:con"])
            .args(["-chardev", &chardev("out", &out), "-serial", "chardev:out"])
            .args([
                "-chardev",
                &chardev("klog", &test.kernel_log),
                "-serial",
                "chardev:klog",
            ])
            .cwd(test.scratch)
            .log(&qemu_log);
        let end = format!("SULTANA-VM-END-{}", self.nonce);
        let booted_mark = format!("SULTANA-VM-BOOTED-{}", self.nonce);
        let mut silent = false;
        let mut booted = None;
        let mut overflow = None;
        let mut seen_klog = 0u64;
        // Under Xen dom0's kernel log follows the output on its port (a
        // third port shares the IRQ Xen's console holds).
        let end_file = if self.hypervisor.is_some() {
            &out
        } else {
            &test.kernel_log
        };
        let mut watch = || {
            let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
            if booted.is_none() && size(&out) > 0 {
                let head = fsutil::read_tail(&out, 4096).unwrap_or_default();
                if String::from_utf8_lossy(&head).contains(&booted_mark) {
                    booted = Some(started.elapsed().as_secs_f64());
                }
            }
            if accel == Accel::Kvm && started.elapsed() > KVM_SILENCE && size(&test.console_log) == 0 && size(&out) == 0
            {
                silent = true;
                return Watch::Stop;
            }
            for (file, what) in [
                (&test.console_log, "console"),
                (&out, "output"),
                (&test.kernel_log, "kernel log"),
            ] {
                if size(file) > MAX_SERIAL {
                    overflow = Some(format!(
                        "the VM wrote over {} MiB to its {what}; stopped",
                        MAX_SERIAL >> 20
                    ));
                    return Watch::Stop;
                }
            }
            let klog = size(end_file);
            if klog != seen_klog {
                seen_klog = klog;
                let tail = fsutil::read_tail(end_file, 256).unwrap_or_default();
                if String::from_utf8_lossy(&tail).contains(&end) {
                    return Watch::Stop;
                }
            }
            Watch::Continue
        };
        let limit = deadline.saturating_duration_since(Instant::now());
        let ended = cmd
            .run_watched(limit, &mut watch)
            .map_err(|e| VmError::Other(anyhow::Error::new(e)))?;
        let quiet = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) == 0;
        let qemu_failed = (booted.is_none()
            && !silent
            && matches!(ended, Ended::Exited(_) | Ended::Signaled(_))
            && quiet(&test.console_log))
        .then(|| {
            let tail = fsutil::read_tail(&qemu_log, 2048).unwrap_or_default();
            let text = String::from_utf8_lossy(&tail);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty() && !l.starts_with("$ "))
                .unwrap_or("no message");
            format!("{ended:?}: {}", last.trim())
        });
        Ok(Boot {
            ended,
            out,
            silent,
            booted,
            qemu_failed,
            overflow,
        })
    }
}

impl Vm<'_> {
    /// QEMU booting Xen by multiboot: the hypervisor as the kernel, dom0's
    /// kernel and root as its modules. Paths are relative to the scratch
    /// folder (QEMU's working folder): a comma separates modules.
    fn xen_args(&self, cmd: Cmd, accel: Accel, xen: &Path) -> Result<Cmd, VmError> {
        let dom0_kernel = self.test.scratch.join("dom0-kernel");
        let _ = std::fs::remove_file(&dom0_kernel);
        std::os::unix::fs::symlink(&self.kernel.image, &dom0_kernel)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", dom0_kernel.display()))?;
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        };
        let guest = self.test.spec.guest_memory.unwrap_or(VmSpec::DEFAULT_GUEST_MEMORY);
        // Xen itself and its heap besides dom0 and one guest.
        let total = self.memory + guest + 128;
        Ok(cmd
            .args(accel.xen_args())
            .args(["-m", &total.to_string()])
            .arg("-kernel")
            .arg(name(xen))
            .args(["-append", &Xen::command_line(self.memory)])
            .arg("-initrd")
            .arg(format!(
                "dom0-kernel console=hvc0 loglevel=5 panic=-1 rootfstype=ramfs rdinit=/init,{}",
                name(self.initrd)
            )))
    }
}

/// A Xen dom0's part of the root: the staged installs at `/` (the tested
/// component's last, so its files win), Xen's files, the host libraries
/// their programs load, and the guest's kernel, root and runner.
fn add_xen(root: &mut Initramfs, xen: &Xen, test: &VmTest, kernel: &Kernel) -> Result<(), VmError> {
    let add = |e: std::io::Error, what: &Path| anyhow::anyhow!("cannot add {} to the VM: {e}", what.display());
    for (host, inside) in &xen.trees {
        root.host_tree_at(host, inside, &[], &[]).map_err(|e| add(e, host))?;
    }
    let mut installs: Vec<&Path> = test.installs.iter().map(PathBuf::as_path).collect();
    if let xen::XenOrigin::Staged(stage) = &xen.origin {
        installs.retain(|i| *i != stage.as_path());
    }
    for install in installs.iter().rev().filter(|i| i.is_dir()) {
        root.host_tree_at(install, Path::new("/"), &[], &[])
            .map_err(|e| add(e, install))?;
    }
    // The host's libraries their programs load (what the installs hold is
    // in already). `ldd` runs the flight's own builds' loader requests, as
    // the build ran their makefiles: no new trust.
    let staged: Vec<&Path> = installs
        .iter()
        .copied()
        .chain(xen.trees.iter().map(|(h, _)| h.as_path()))
        .collect();
    let mut programs: Vec<(PathBuf, bool)> = xen.programs.iter().map(|p| (p.clone(), true)).collect();
    let mut library_path = xen.host_library_path.clone();
    for install in &installs {
        let elf = xen::elf_files(install)?;
        library_path.extend(xen::library_dirs(&elf));
        // An install's program that cannot load is the test's finding, not
        // a reason to skip it.
        programs.extend(elf.into_iter().map(|p| (p, false)));
    }
    let mut libraries_seen = std::collections::BTreeSet::new();
    for (program, strict) in &programs {
        if !staged.iter().any(|s| program.starts_with(s)) {
            root.host_file(program, program).map_err(|e| add(e, program))?;
        }
        for library in libraries_with(program, &library_path, *strict)? {
            if staged.iter().any(|s| library.starts_with(s)) || !libraries_seen.insert(library.clone()) {
                continue;
            }
            root.host_file(&library, &library).map_err(|e| add(e, &library))?;
        }
    }
    // glibc loads libgcc_s itself when a thread is cancelled (xl does).
    if let Some(libc) = libraries_seen
        .iter()
        .find(|l| l.file_name().is_some_and(|n| n == "libc.so.6"))
    {
        let gcc_s = libc.with_file_name("libgcc_s.so.1");
        if gcc_s.is_file() {
            root.host_file(&gcc_s, &gcc_s).map_err(|e| add(e, &gcc_s))?;
        }
    }
    if let Some(guest) = test.guest {
        let image = test.scratch.join("guest.cpio");
        let modules = match &test.spec.guest_modules {
            Some(names) => kernel.modules(names)?,
            // The default where it is a module (built in, it needs nothing).
            None => kernel.modules(&kernel.present(&["xen-blkfront"]))?,
        };
        let mut initrd = Initramfs::default();
        let busybox = which::which("busybox")
            .map_err(|_| VmError::Missing("busybox is not installed (Debian package busybox-static)".into()))?;
        add_program(&mut initrd, &busybox, Some(Path::new("/bin/busybox")))?;
        for module in &modules {
            initrd.host_file(module, module).map_err(|e| add(e, module))?;
        }
        initrd
            .host_file(Path::new("/guest-test"), guest)
            .map_err(|e| add(e, guest))?;
        initrd.bytes_file(Path::new("/init"), xen::guest_init(&modules).into_bytes(), 0o755);
        initrd.write(&image).map_err(|e| add(e, &image))?;
        root.host_file(Path::new("/sultana/guest/initrd.cpio"), &image)
            .map_err(|e| add(e, &image))?;
        root.host_file(Path::new("/sultana/guest/vmlinuz"), &kernel.image)
            .map_err(|e| add(e, &kernel.image))?;
    }
    root.bytes_file(
        Path::new("/sultana/bin/sultana-guest"),
        xen::GUEST_HELPER.as_bytes().to_vec(),
        0o755,
    );
    Ok(())
}

/// A program and the libraries its loader names, each at its host path
/// (or at `inside`), symlinks followed.
fn add_program(root: &mut Initramfs, program: &Path, inside: Option<&Path>) -> Result<(), VmError> {
    root.host_file(inside.unwrap_or(program), program)
        .map_err(|e| anyhow::anyhow!("cannot add {}: {e}", program.display()))?;
    for library in libraries(program)? {
        root.host_file(&library, &library)
            .map_err(|e| anyhow::anyhow!("cannot add {}: {e}", library.display()))?;
    }
    Ok(())
}

/// What `ldd` says a program loads: none for a static one.
fn libraries(program: &Path) -> Result<Vec<PathBuf>, VmError> {
    libraries_with(program, &[], true)
}

/// `libraries`, the staged libraries in `library_path` found too; `strict`:
/// a library this host lacks makes the VM impossible (else it is left out).
fn libraries_with(program: &Path, library_path: &[PathBuf], strict: bool) -> Result<Vec<PathBuf>, VmError> {
    let mut cmd = Cmd::new("ldd", "libc-bin").arg(program);
    if !library_path.is_empty() {
        let joined = std::env::join_paths(library_path).map_err(|e| anyhow::anyhow!("{e}"))?;
        cmd = cmd.env("LD_LIBRARY_PATH", joined);
    }
    let output = cmd.output_with_code();
    let Ok((_, bytes)) = output else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`, or the
        // loader itself: `/lib64/ld-linux-x86-64.so.2 (0x…)`.
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next().filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            found.push(PathBuf::from(path));
        } else if line.contains("not found") && strict {
            return Err(VmError::Missing(format!(
                "{} needs a library this host lacks: {line}",
                program.display()
            )));
        }
    }
    Ok(found)
}

/// What the VM's /init is made of.
struct Init<'a> {
    test: &'a VmTest<'a>,
    /// The test's environment as the VM sees it.
    env: &'a BTreeMap<String, String>,
    /// The host's bash, by its own path: a staged one never runs the script.
    bash: &'a Path,
    xen: Option<&'a Xen>,
}

/// The VM's /init (busybox sh): mount the usual file systems, load the
/// modules, run the script as the host would, report, power off.
fn init_script(init: &Init, modules: &[PathBuf]) -> String {
    use crate::process::shell_quote as q;
    let (test, xen) = (init.test, init.xen);
    let mut s = String::from("#!/busybox/busybox sh\n");
    s.push_str("/busybox/busybox --install -s /busybox\n");
    s.push_str("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox\n");
    s.push_str("nonce=$(cat /sultana-nonce)\nrm -f /sultana-nonce\n");
    s.push_str("mkdir -p /proc /sys /dev /tmp /run /root\n");
    s.push_str("mount -t proc proc /proc\nmount -t sysfs sysfs /sys\nmount -t devtmpfs devtmpfs /dev\n");
    s.push_str("mkdir -p /dev/pts /dev/shm\nmount -t devpts devpts /dev/pts\n");
    // The root is a RAM file system already: a tmpfs on /tmp would hide
    // the trees copied there (a workspace under /tmp).
    s.push_str("mount -t tmpfs tmpfs /dev/shm\nchmod 1777 /tmp\n");
    s.push_str("ip link set lo up 2>/dev/null\nhostname sultana-vm\n");
    s.push_str("export HOME=/root TMPDIR=/tmp LANG=C.UTF-8\n");
    for (key, value) in init.env {
        s.push_str(&format!("export {key}={}\n", q(value)));
    }
    if test.guest.is_some() {
        s.push_str(
            "export SULTANA_GUEST_KERNEL=/sultana/guest/vmlinuz SULTANA_GUEST_RAMDISK=/sultana/guest/initrd.cpio\n",
        );
        s.push_str(&format!(
            "export SULTANA_GUEST_MEMORY={}\n",
            test.spec.guest_memory.unwrap_or(VmSpec::DEFAULT_GUEST_MEMORY)
        ));
    }
    // Under Xen, a third serial port shares its IRQ with Xen's console:
    // the kernel's log follows the output on the second.
    let klog = if xen.is_some() { "/dev/ttyS1" } else { "/dev/ttyS2" };
    s.push_str("echo SULTANA-VM-BOOTED-$nonce >/dev/ttyS1\n");
    s.push_str("taint_before=$(cat /proc/sys/kernel/tainted)\n");
    s.push_str("{\n  loaded=0\n");
    for module in modules {
        let m = q(&module.display().to_string());
        s.push_str(&format!(
            "  [ $loaded = 0 ] && {{ insmod {m} || {{ echo \"cannot load the kernel module {}\"; loaded=99; }}; }}\n",
            module.display()
        ));
    }
    if let Some(xen) = xen {
        s.push_str("  if [ $loaded = 0 ]; then\n");
        for line in xen.dom0_prelude(init.bash).lines() {
            s.push_str(&format!("    {line}\n"));
        }
        s.push_str("    loaded=$xen_ready\n  fi\n");
    }
    s.push_str(&format!(
        "  if [ $loaded = 0 ]; then cd {} && {} {} </dev/null; code=$?; else code=$loaded; fi\n",
        q(&test.work.display().to_string()),
        q(&init.bash.display().to_string()),
        q(&test.script.display().to_string())
    ));
    s.push_str("  printf '\\nSULTANA-VM-EXIT-%s %d\\n' \"$nonce\" \"$code\"\n");
    s.push_str("} >/dev/ttyS1 2>&1\n");
    // Under Xen the guests' consoles follow dom0's log: their kernels'
    // trouble is looked for there too.
    let guests = if xen.is_some() {
        "for g in /var/log/xen/console/guest-*.log; do [ -f \"$g\" ] && { echo \"--- $g\"; tr -d '\\r' <\"$g\"; }; done; "
    } else {
        ""
    };
    s.push_str(&format!(
        "{{ dmesg; {guests}echo \"SULTANA-VM-TAINT-$nonce $taint_before $(cat /proc/sys/kernel/tainted)\"; echo \"SULTANA-VM-END-$nonce\"; }} >{klog} 2>&1\nsync\npoweroff -f\n",
    ));
    s
}

/// Taint flags the test set that mean trouble (a module's own O and E do
/// not): the kernel keeps them even when its log is cleared.
fn new_taint(kernel_log: &str, nonce: &str) -> Option<String> {
    let mark = format!("SULTANA-VM-TAINT-{nonce} ");
    let line = kernel_log.lines().rev().find_map(|l| l.strip_prefix(&mark))?;
    let mut parts = line.split_whitespace().map(|v| v.parse::<u64>().ok());
    let (Some(Some(before)), Some(Some(after))) = (parts.next(), parts.next()) else {
        return None;
    };
    const FLAGS: &[(u32, &str)] = &[
        (5, "B (a bad page)"),
        (7, "D (an oops)"),
        (9, "W (a WARNING)"),
        (14, "L (a soft lockup)"),
    ];
    let new = after & !before;
    let named: Vec<&str> = FLAGS
        .iter()
        .filter(|(bit, _)| new & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect();
    (!named.is_empty()).then(|| format!("the kernel was tainted during the test: {}", named.join(", ")))
}

/// The first line of a kernel log that says the kernel is in trouble.
fn trouble_line(log: &str) -> Option<String> {
    const SIGNS: &[&str] = &[
        // Xen's own (the console carries the hypervisor's log).
        "Xen WARN at",
        "Xen BUG at",
        "Panic on CPU",
        "Xen call trace",
        "Assertion '",
        "Oops:",
        "BUG:",
        "kernel BUG at",
        "WARNING:",
        "Kernel panic",
        "general protection fault",
        "UBSAN:",
        "KASAN:",
        "Call Trace:",
    ];
    log.lines()
        .find(|l| SIGNS.iter().any(|s| l.contains(s)))
        .map(|l| l.trim().to_string())
}

/// 16 hex digits no test output can guess.
fn nonce() -> String {
    let mut bytes = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = u64::from_le_bytes(bytes) ^ t ^ u64::from(std::process::id());
    format!("{mixed:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_trouble_is_found_and_a_quiet_log_is_not() {
        let log = "[    1.0] hello\n[    2.0] WARNING: CPU: 0 PID: 1 at drivers/x.c:10 f+0x1/0x2\n[ 2.1] Call Trace:\n";
        assert_eq!(
            trouble_line(log).as_deref(),
            Some("[    2.0] WARNING: CPU: 0 PID: 1 at drivers/x.c:10 f+0x1/0x2")
        );
        assert_eq!(trouble_line("[ 1.0] blktap: loaded\n"), None);
    }

    #[test]
    fn a_taint_the_test_added_is_trouble_and_a_module_s_own_is_not() {
        let log = |before: u64, after: u64| format!("[ 1.0] x\nSULTANA-VM-TAINT-abc {before} {after}\n");
        // O (12) and E (13): an out-of-tree, unsigned module.
        assert_eq!(new_taint(&log(0, (1 << 12) | (1 << 13)), "abc"), None);
        assert_eq!(
            new_taint(&log(0, (1 << 9) | (1 << 12)), "abc").as_deref(),
            Some("the kernel was tainted during the test: W (a WARNING)")
        );
        assert_eq!(new_taint(&log(1 << 9, 1 << 9), "abc"), None, "set before the test");
        assert_eq!(
            new_taint(&log(0, 1 << 7), "other"),
            None,
            "another nonce is no evidence"
        );
    }
}
