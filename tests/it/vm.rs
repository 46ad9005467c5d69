//! Recipe tests in a throwaway VM (QEMU booting the kernel the module was
//! built for): the fixture module loads, allocates and unloads; one whose
//! init fails is a regression the gate refuses while its build passes; a
//! kernel WARNING fails a test whose script passed; a missing kernel skips.

use std::path::{Path, PathBuf};

use crate::gate::{finding, job};
use crate::support::*;

const WARNS: &str = "#include <linux/module.h>\n#include <linux/init.h>\n\
static int __init hello_init(void) { WARN_ON(1); pr_info(\"hello: allocated 0 bytes\\n\"); return 0; }\n\
static void __exit hello_exit(void) { pr_info(\"hello: freed\\n\"); }\n\
module_init(hello_init);\nmodule_exit(hello_exit);\nMODULE_LICENSE(\"GPL\");\n";

const INIT_FAILS: &str = "#include <linux/module.h>\n#include <linux/init.h>\n\
static int __init hello_init(void) { pr_err(\"hello: refusing to start\\n\"); return -ENODEV; }\n\
static void __exit hello_exit(void) { }\n\
module_init(hello_init);\nmodule_exit(hello_exit);\nMODULE_LICENSE(\"GPL\");\n";

/// Debian's headers and the kernel image of the same release.
fn kernel() -> (PathBuf, String) {
    let headers = std::fs::read_dir("/usr/src").ok().and_then(|d| {
        let mut found: Vec<PathBuf> = d
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with("-amd64") && p.join("include/generated/utsrelease.h").is_file())
            .collect();
        found.sort();
        found.pop()
    });
    let Some(headers) = headers else {
        require_path(
            Path::new("/usr/src/linux-headers-amd64"),
            "the VM tests (Debian linux-headers-amd64)",
        );
        panic!("no Debian kernel headers under /usr/src with include/generated/utsrelease.h");
    };
    let uts = std::fs::read_to_string(headers.join("include/generated/utsrelease.h")).unwrap();
    let release = uts.split('"').nth(1).unwrap().to_string();
    require("qemu-system-x86_64", "the VM tests (Debian qemu-system-x86)");
    require("busybox", "the VM tests' root (Debian busybox-static)");
    require("make", "the kbuild fixture");
    require("gcc", "the kbuild fixture");
    require_path(
        &PathBuf::from(format!("/boot/vmlinuz-{release}")),
        "the VM tests (Debian linux-image-amd64, the kernel of linux-headers-amd64)",
    );
    (headers, release)
}

fn module_workspace() -> TestContext {
    kernel();
    let ctx = TestContext::new();
    ctx.hello_module_workspace();
    ctx
}

fn commit_module(ctx: &TestContext, source: &str, message: &str) {
    let clock = sultana::fixtures::Clock::default();
    sultana::fixtures::commit(
        &ctx.upstreams.join("hello-module"),
        &[("module/hello.c", source.to_string(), false)],
        message,
        &clock,
    )
    .unwrap();
}

#[test]
#[cfg_attr(
    not(all(
        have_kernel,
        have_kernel_headers,
        have_busybox,
        have_gcc,
        have_make,
        have_qemu_system_x86_64
    )),
    ignore = "needs linux-headers-amd64 with the linux-image of its release, linux-headers-amd64, busybox, gcc, make, qemu-system-x86_64"
)]
fn the_module_is_loaded_in_a_vm_and_a_failing_init_is_a_regression() {
    let ctx = module_workspace();
    let run = ctx.sultana(&["gate", "hello-module", "--always", "--json"]).success();
    let report = &run.json()["gate"]["report"];
    let load = job(report, "test-hello-module-load");
    assert_eq!(load["status"], "pass", "{report}\n{}", run.stderr);
    let log = std::fs::read_to_string(load["log"].as_str().unwrap()).unwrap();
    let second = log.lines().nth(1).unwrap_or_default();
    assert!(
        second.starts_with("# vm: TCG") || second.starts_with("# vm: KVM"),
        "the accelerator first: {log}"
    );
    assert!(log.contains("hello: loaded, allocated, freed, unloaded"), "{log}");
    let kernel_log = load["log"].as_str().unwrap().replace(".log", ".kernel.log");
    let kernel_log = std::fs::read_to_string(kernel_log).unwrap();
    assert!(kernel_log.contains("hello: allocated 4096 bytes"), "{kernel_log}");

    commit_module(&ctx, INIT_FAILS, "hello: init fails");
    let run = ctx.sultana(&["gate", "hello-module", "--push", "--json"]).code(1);
    let gate = &run.json()["gate"];
    assert_eq!(job(&gate["report"], "build-hello-module")["status"], "pass");
    let f = finding(&gate["report"], "test-hello-module-load");
    assert_eq!(f["class"], "regression", "{gate}");
    assert!(
        job(&gate["report"], "test-hello-module-load")["detail"]
            .as_str()
            .unwrap()
            .contains("the module's init failed"),
        "{gate}"
    );
    assert_eq!(gate["pushed"], false);
}

#[test]
#[cfg_attr(
    not(all(
        have_kernel,
        have_kernel_headers,
        have_busybox,
        have_gcc,
        have_make,
        have_qemu_system_x86_64
    )),
    ignore = "needs linux-headers-amd64 with the linux-image of its release, linux-headers-amd64, busybox, gcc, make, qemu-system-x86_64"
)]
fn sultana_test_fails_a_passing_script_when_the_kernel_warns() {
    let ctx = module_workspace();
    commit_module(&ctx, WARNS, "hello: warn at init");
    let junit = ctx.work.join("test.xml");
    let run = ctx
        .sultana(&["test", "hello-module", "--json", "--junit", junit.to_str().unwrap()])
        .code(1)
        .stderr_has("1 test(s) failed: test-hello-module-load (fail)");
    let jobs = &run.json()["test"]["jobs"];
    let detail = jobs[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the kernel logged: ") && detail.contains("WARNING"),
        "{detail}"
    );
    assert!(std::fs::read_to_string(&junit).unwrap().contains("failures=\"1\""));

    // A script cannot fake the exit line: the nonce is not in /init.
    ctx.write(
        "recipes/tests/hello-module/forge.sh",
        "#!/bin/bash\necho 'FAIL: this test fails'\nn=$(grep -o 'SULTANA-VM-EXIT-[0-9a-f]\\{16\\}' /init | head -n 1)\nprintf '\\n%s 0\\n' \"$n\"\npoweroff -f\nexit 1\n",
    );
    ctx.edit(
        "recipes/hello-module.toml",
        "vm = { kernel = \"headers\" }",
        "vm = { kernel = \"headers\" }\n\n[[test]]\nname = \"forge\"\ntimeout = 120\nvm = {}",
    );
    let run = ctx.sultana(&["test", "--test", "forge", "--json"]).code(1);
    assert_eq!(run.json()["test"]["jobs"][0]["status"], "fail", "{}", run.stdout);

    // A kernel that is not there skips, and says what to install.
    ctx.edit(
        "recipes/hello-module.toml",
        "vm = { kernel = \"headers\" }",
        "vm = { kernel = \"/nonexistent/vmlinuz-0.0\" }",
    );
    let run = ctx.sultana(&["test", "--test", "load", "--json"]).success();
    let job = &run.json()["test"]["jobs"][0];
    assert_eq!(job["status"], "skip", "{job}");
    assert!(
        job["detail"].as_str().unwrap().contains("/nonexistent/vmlinuz-0.0"),
        "{job}"
    );
    ctx.sultana(&["test", "--test", "nope"])
        .code(2)
        .stderr_has("no test `nope`");

    // A QEMU that cannot start the VM: the test is broken, with QEMU's words.
    ctx.edit(
        "recipes/hello-module.toml",
        "vm = { kernel = \"/nonexistent/vmlinuz-0.0\" }",
        "vm = { kernel = \"headers\" }",
    );
    let fake = ctx.dir("fake-qemu");
    let qemu = fake.join("qemu-system-x86_64");
    std::fs::write(
        &qemu,
        "#!/bin/sh\necho 'qemu-system-x86_64: failed to initialize kvm: Device or resource busy' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&qemu, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
    let run = ctx
        .sultana_with(
            &ctx.work,
            "022",
            &[("PATH", &path), ("SULTANA_VM_ACCEL", "tcg")],
            &["test", "--test", "load", "--json"],
        )
        .code(1);
    let job = &run.json()["test"]["jobs"][0];
    assert_eq!(job["status"], "broken", "{job}");
    assert!(
        job["detail"].as_str().unwrap().contains("failed to initialize kvm"),
        "{job}"
    );
}

/// QEMU processes whose command line names `needle` (the test's folder).
fn qemus(needle: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains("qemu-system") && text.contains(needle.to_str().unwrap()) {
            found.push(text);
        }
    }
    found
}

#[test]
#[cfg_attr(
    not(all(
        have_kernel,
        have_kernel_headers,
        have_busybox,
        have_gcc,
        have_make,
        have_qemu_system_x86_64
    )),
    ignore = "needs linux-headers-amd64 with the linux-image of its release, linux-headers-amd64, busybox, gcc, make, qemu-system-x86_64"
)]
fn a_vm_never_outlives_its_test() {
    let ctx = module_workspace();
    // A script that never ends: stopped at the timeout, with its VM.
    ctx.write(
        "recipes/tests/hello-module/load.sh",
        "#!/bin/bash\necho started\nwhile :; do sleep 1; done\n",
    );
    ctx.edit("recipes/hello-module.toml", "timeout = 180", "timeout = 20");
    let run = ctx.sultana(&["test", "--json"]).code(1);
    let job = &run.json()["test"]["jobs"][0];
    assert_eq!(job["detail"], "timed out after 20s", "{job}");
    assert!(qemus(&ctx.work).is_empty(), "{:?}", qemus(&ctx.work));

    // sultana killed with SIGKILL while the VM runs: the VM goes too.
    let mut child = ctx
        .command(&ctx.work, &["test"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while qemus(&ctx.work).is_empty() {
        assert!(started.elapsed().as_secs() < 60, "no VM started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = std::time::Instant::now();
    while !qemus(&ctx.work).is_empty() {
        assert!(killed.elapsed().as_secs() < 10, "{:?}", qemus(&ctx.work));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The system's Xen (Debian's 4.17 packages) and a kernel to boot as its
/// dom0 and guest.
fn xen_workspace() -> TestContext {
    let kernel = std::fs::read_dir("/boot").ok().and_then(|d| {
        d.flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
    });
    require("qemu-system-x86_64", "the Xen VM tests (Debian qemu-system-x86)");
    require("busybox", "the Xen VM tests' roots (Debian busybox-static)");
    require_path(
        Path::new("/boot/xen-4.17-amd64.gz"),
        "the Xen VM tests (Debian xen-hypervisor-4.17-amd64)",
    );
    require_path(
        Path::new("/usr/lib/xen-4.17/bin/xl"),
        "the Xen VM tests (Debian xen-utils-4.17)",
    );
    if kernel.is_none() {
        require_path(
            Path::new("/boot/vmlinuz-amd64"),
            "the Xen VM tests (Debian linux-image-amd64)",
        );
    }
    let ctx = TestContext::new();
    ctx.xen_guest_workspace();
    ctx
}

#[test]
#[cfg_attr(
    not(all(
        have_linux_image,
        have_xen_4_17,
        have_xen_hypervisor_4_17,
        have_busybox,
        have_qemu_system_x86_64
    )),
    ignore = "needs a kernel in /boot, xen-utils-4.17, xen-hypervisor-4.17-amd64, busybox, qemu-system-x86_64"
)]
fn xen_boots_and_its_backend_serves_a_pv_guest_s_disk_and_a_bad_read_fails() {
    let ctx = xen_workspace();
    ctx.sultana(&["build"]).success();
    let run = ctx.sultana(&["test", "xen-guest", "--json"]).success();
    let job = &run.json()["test"]["jobs"][0];
    assert_eq!(job["status"], "pass", "{job}\n{}", run.stderr);
    let log = std::fs::read_to_string(job["log"].as_str().unwrap()).unwrap();
    let second = log.lines().nth(1).unwrap_or_default();
    assert!(
        second.contains("the system's Xen 4.17 (/boot/xen-4.17-amd64.gz), dom0 kernel /boot/vmlinuz-"),
        "which Xen, in the log's second line: {log}"
    );
    for line in [
        "# xen: 4.17, dom0 ready at ",
        "SULTANA-GUEST-EXIT 0",
        "guest: seed sultana-xen-guest-fixture",
        "guest: 4 MiB in 1 MiB requests and 3 sectors at sector 20481 written and read back",
        "dom0: disk.img holds what the guest wrote",
    ] {
        assert!(log.contains(line), "{line:?} not in\n{log}");
    }
    // dom0's own kernel log, apart from the script's output.
    let kernel_log = std::fs::read_to_string(job["log"].as_str().unwrap().replace(".log", ".kernel.log")).unwrap();
    assert!(kernel_log.contains("Xen"), "{kernel_log}");
    assert!(!kernel_log.contains("SULTANA-VM-EXIT"), "{kernel_log}");
    let console = std::fs::read_to_string(job["log"].as_str().unwrap().replace(".log", ".console.log")).unwrap();
    assert!(console.contains("(XEN)"), "Xen's console: {console}");

    // A guest that reads back other sectors than it wrote: the test fails
    // and says what the guest saw.
    ctx.edit(
        "recipes/tests/xen-guest/disk-guest.sh",
        "of=/tmp/big.back bs=1M skip=1 count=4",
        "of=/tmp/big.back bs=1M skip=2 count=4",
    );
    let run = ctx.sultana(&["test", "xen-guest", "--json"]).code(1);
    let job = &run.json()["test"]["jobs"][0];
    assert_eq!(job["status"], "fail", "{job}");
    assert_eq!(
        job["detail"], "exit 1: FAIL: guest disk: exit 1: FAIL: the 4 MiB read back differ",
        "{job}"
    );
    let log = std::fs::read_to_string(job["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("FAIL: the 4 MiB read back differ"), "{log}");
    assert!(log.contains("SULTANA-GUEST-EXIT 1"), "{log}");
}
