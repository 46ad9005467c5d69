//! Builds the write tracer preloaded into build steps
//! (src/ops/build/trace/sultana_trace.c) as a shared object the binary embeds,
//! and finds what the integration tests need (see `NEEDS`).

fn main() {
    let source = "src/ops/build/trace/sultana_trace.c";
    println!("cargo:rerun-if-changed={source}");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let object = out.join("libsultana_trace.so");
    let compiler = cc::Build::new().get_compiler();
    let status = compiler
        .to_command()
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
        .arg(&object)
        .arg(source)
        .arg("-ldl")
        .status()
        .expect("a C compiler for the write tracer");
    assert!(status.success(), "cannot build {source}");
    needs::probe();
}

/// The tools and files the integration tests need, each a `have_NAME` cfg
/// when found. A test needing one that is missing is marked
/// `#[cfg_attr(not(have_NAME), ignore = "needs …")]`, so libtest reports it
/// as ignored, not as passed. Under `CI` every cfg is set: a missing tool
/// then fails its tests (CI must install it), never skips them.
mod needs {
    use std::path::Path;

    enum Probe {
        /// A program on PATH.
        Tool(&'static str),
        /// A file or folder: in `dir`, a name with this start and end.
        Entry(&'static str, &'static str, &'static str),
        /// Mounting is allowed: CAP_SYS_ADMIN (root outside a container
        /// that drops it).
        Mount,
        /// Debian's kernel headers with the kernel image of their release.
        KernelPair,
    }

    const NEEDS: &[(&str, Probe)] = &[
        ("autoreconf", Probe::Tool("autoreconf")),
        ("automake", Probe::Tool("automake")),
        ("busybox", Probe::Tool("busybox")),
        ("cargo", Probe::Tool("cargo")),
        ("ccache", Probe::Tool("ccache")),
        ("docker_registry", Probe::Tool("docker-registry")),
        ("gcc", Probe::Tool("gcc")),
        ("git", Probe::Tool("git")),
        ("gitlab_ci_local", Probe::Tool("gitlab-ci-local")),
        ("gpg", Probe::Tool("gpg")),
        ("gzip", Probe::Tool("gzip")),
        ("lzip", Probe::Tool("lzip")),
        ("make", Probe::Tool("make")),
        ("perlcritic", Probe::Tool("perlcritic")),
        ("pyspdxtools", Probe::Tool("pyspdxtools")),
        ("qemu_img", Probe::Tool("qemu-img")),
        ("qemu_io", Probe::Tool("qemu-io")),
        ("qemu_nbd", Probe::Tool("qemu-nbd")),
        ("qemu_system_x86_64", Probe::Tool("qemu-system-x86_64")),
        ("rsync", Probe::Tool("rsync")),
        ("sbomcheck", Probe::Tool("sbomcheck")),
        ("script", Probe::Tool("script")),
        ("shellcheck", Probe::Tool("shellcheck")),
        ("tar", Probe::Tool("tar")),
        ("xz", Probe::Tool("xz")),
        ("kernel_headers", Probe::Entry("/usr/src", "linux-headers-", "amd64")),
        ("kernel", Probe::KernelPair),
        ("linux_image", Probe::Entry("/boot", "vmlinuz-", "")),
        ("xen_4_17", Probe::Entry("/usr/lib/xen-4.17/bin", "xl", "")),
        ("xen_hypervisor_4_17", Probe::Entry("/boot", "xen-4.17", ".gz")),
        (
            "python3_libnbd",
            Probe::Entry("/usr/lib/python3/dist-packages", "nbd.py", ""),
        ),
        ("mount", Probe::Mount),
    ];

    const DPKG_STATUS: &str = "/var/lib/dpkg/status";

    /// A `/usr/src/linux-headers-*amd64` whose release has its
    /// `/boot/vmlinuz-RELEASE`: what the VM tests boot.
    fn kernel_pair() -> bool {
        let Ok(entries) = std::fs::read_dir("/usr/src") else {
            return false;
        };
        entries.flatten().any(|e| {
            let uts = e.path().join("include/generated/utsrelease.h");
            let release = std::fs::read_to_string(uts).ok();
            let release = release.as_deref().and_then(|t| t.split('"').nth(1));
            e.file_name().to_string_lossy().ends_with("amd64")
                && release.is_some_and(|r| Path::new(&format!("/boot/vmlinuz-{r}")).is_file())
        })
    }

    /// Needs that go together, as one cfg: `have_fixtures` is the fixture
    /// projects' toolchain (autotools, make, C, cargo, qemu-utils).
    const GROUPS: &[(&str, &[&str])] = &[(
        "fixtures",
        &["autoreconf", "cargo", "gcc", "make", "qemu_img", "qemu_io"],
    )];

    pub fn probe() {
        println!("cargo:rerun-if-env-changed=CI");
        println!("cargo:rerun-if-env-changed=PATH");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs: Vec<_> = std::env::split_paths(&path).filter(|d| d.is_dir()).collect();
        // A tool installed or removed changes its folder; a Debian package
        // (headers, a kernel, Xen) changes dpkg's status. Never the files'
        // own folders: cargo reads a folder whole, and /usr/src is large.
        for dir in &dirs {
            println!("cargo:rerun-if-changed={}", dir.display());
        }
        if Path::new(DPKG_STATUS).is_file() {
            println!("cargo:rerun-if-changed={DPKG_STATUS}");
        }
        let ci = std::env::var_os("CI").is_some();
        let mut have = Vec::new();
        for (name, probe) in NEEDS {
            println!("cargo::rustc-check-cfg=cfg(have_{name})");
            let found = match probe {
                Probe::Tool(tool) => dirs.iter().any(|d| d.join(tool).is_file()),
                Probe::Entry(dir, start, end) => std::fs::read_dir(dir).is_ok_and(|entries| {
                    entries.flatten().any(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.starts_with(start) && name.ends_with(end)
                    })
                }),
                Probe::Mount => std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
                    let effective = s.lines().find_map(|l| l.strip_prefix("CapEff:"));
                    effective
                        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                        .is_some_and(|caps| caps & (1 << 21) != 0)
                }),
                Probe::KernelPair => kernel_pair(),
            };
            // Mounting is a way of running, not something CI installs.
            if found || (ci && !matches!(probe, Probe::Mount)) {
                println!("cargo::rustc-cfg=have_{name}");
                have.push(*name);
            }
        }
        for (name, members) in GROUPS {
            println!("cargo::rustc-check-cfg=cfg(have_{name})");
            if members.iter().all(|m| have.contains(m)) {
                println!("cargo::rustc-cfg=have_{name}");
            }
        }
    }
}
