//! A full disk and a read-only workspace: a clear error, nothing corrupted,
//! and once there is room again the same run finishes as if nothing had
//! happened. The workspace (or cache, or `dist/`) is a small tmpfs: the
//! tests run as root only (`have_root`; not root, they show as ignored, even
//! under CI, as the mechanism is not there), and as root a mount that fails
//! is a failure, never a silent skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A tmpfs mounted on a folder for the life of the value.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount ({e})"));
        // The tests run only as root (`have_root`), where mounting works.
        assert!(
            out.status.success(),
            "cannot mount a tmpfs as root ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(dir.to_path_buf())
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// Random bytes do not compress: they take their size on disk and in packs.
fn incompressible(size: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn big_upstream(ctx: &TestContext) -> Upstream {
    let up = ctx.upstream("up");
    up.commit_raw(b"blob.bin", &incompressible(2 << 20), 0o100644, "a big file");
    up
}

fn no_space(run: &Run) {
    let first = run.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(!first.is_empty(), "{}", run.stderr);
    assert!(run.stderr.contains("No space left on device"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
#[cfg_attr(not(have_mount), ignore = "needs mounting a tmpfs (CAP_SYS_ADMIN, root)")]
fn a_full_workspace_disk_fails_clearly_and_the_rerun_finishes() {
    let ctx = TestContext::new();
    let disk = Tmpfs::mount(&ctx.work, "1m");
    let up = big_upstream(&ctx);
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    let run = ctx.sultana(&["fetch"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    no_space(&run);
    assert!(!ctx.work.join("up").exists(), "a half-made checkout was left in place");
    let leftovers: Vec<String> = files_below(&ctx.work)
        .into_iter()
        .filter(|f| f.contains("sultana-new") || f.contains("sultana-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    disk.remount("size=16m");
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.head("up"), up.head());
    assert_eq!(
        std::fs::read(ctx.work.join("up/blob.bin")).unwrap(),
        incompressible(2 << 20)
    );
    ctx.sultana(&["fetch", "--offline", "--locked"]).success();
}

#[test]
#[cfg_attr(not(have_mount), ignore = "needs mounting a tmpfs (CAP_SYS_ADMIN, root)")]
fn a_full_cache_disk_fails_clearly_and_nothing_half_fetched_is_trusted() {
    let ctx = TestContext::new();
    let disk = Tmpfs::mount(&ctx.cache, "1m");
    let up = big_upstream(&ctx);
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    let run = ctx.sultana(&["fetch"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("No space left on device") && run.stderr.contains("is full: free some space"),
        "{}",
        run.stderr
    );
    assert!(!ctx.work.join("up").exists());

    disk.remount("size=16m");
    ctx.sultana(&["fetch"]).success();
    assert_eq!(ctx.head("up"), up.head());
    ctx.sultana(&["fetch", "--offline", "--locked"]).success();
}

#[test]
#[cfg_attr(not(have_mount), ignore = "needs mounting a tmpfs (CAP_SYS_ADMIN, root)")]
fn a_full_dist_disk_leaves_no_partial_tarball_and_keeps_the_old_one() {
    let ctx = TestContext::new();
    let up = big_upstream(&ctx);
    ctx.write(
        "sultana.toml",
        &format!(
            "[tarball]\nroot = \"up\"\nname = \"up-{{desc}}\"\nformats = [\"gz\"]\n\n[components.up]\nurl = \"{}\"\nrevision = \"master\"\n",
            up.url()
        ),
    );
    let dist = ctx.work.join("dist");
    let disk = Tmpfs::mount(&dist, "3m");
    ctx.sultana(&["tarball", "--desc", "1"]).success();
    let first = std::fs::read(dist.join("up-1.tar.gz")).unwrap();
    // A second, different tarball does not fit beside the first.
    up.commit_raw(b"more.bin", &incompressible(1 << 20), 0o100644, "more");
    ctx.sultana(&["update"]).success();
    let run = ctx.sultana(&["tarball", "--desc", "2"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    no_space(&run);
    assert_eq!(
        top_level_files(&dist),
        vec![
            "SHA256SUMS".to_string(),
            "up-1.cdx.json".to_string(),
            "up-1.spdx.json".to_string(),
            "up-1.spdx3.json".to_string(),
            "up-1.tar.gz".to_string()
        ],
        "no partial tarball"
    );
    assert_eq!(std::fs::read(dist.join("up-1.tar.gz")).unwrap(), first);

    disk.remount("size=16m");
    ctx.sultana(&["tarball", "--desc", "2"]).success();
    ctx.sultana(&["verify-tarball", dist.join("up-2.tar.gz").to_str().unwrap()])
        .success();
}

#[test]
#[cfg_attr(not(have_mount), ignore = "needs mounting a tmpfs (CAP_SYS_ADMIN, root)")]
fn a_read_only_workspace_is_refused_clearly_and_left_as_it_was() {
    let ctx = TestContext::new();
    let disk = Tmpfs::mount(&ctx.work, "16m");
    let up = ctx.upstream("up");
    let first = up.head();
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let lock = ctx.read("sultana.lock");
    up.commit(&[("README", "changed upstream\n")], "change");
    disk.remount("ro");
    // Reading works on a read-only workspace.
    ctx.sultana(&["status"]).success();
    for args in [&["update"][..], &["fetch"], &["build"]] {
        let run = ctx.sultana(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("Read-only file system"), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    disk.remount("rw");
    assert_eq!(ctx.read("sultana.lock"), lock);
    assert_eq!(ctx.head("up"), first);
    ctx.sultana(&["update"]).success();
    assert_eq!(ctx.read("up/README"), "changed upstream\n");
}

fn top_level_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}
