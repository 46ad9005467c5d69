//! Release tarballs: the same bytes on every run, the content of `git archive`
//! of each pinned tree at its place, checked by `verify-tarball`, and an
//! unpacked tarball that builds offline.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::*;

const LONG: &str = "deep/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee/file.txt";

/// A root tree and two companions, one with a submodule, holding the awkward
/// cases: a symlink, an executable, a path over 100 bytes, a name that is not
/// UTF-8, `export-ignore` and `export-subst`.
fn setup(ctx: &TestContext) {
    let sub = ctx.upstream("sub");
    sub.commit(&[("sub.c", "sub\n")], "sub");
    let lib = ctx.upstream("lib");
    lib.commit(&[("lib.c", "lib\n")], "lib");
    lib.add_submodule("sub", "vendor/sub", "../sub", sub.head());
    lib.tag("v2.0", true);
    let tool = ctx.upstream("tool");
    tool.commit(
        &[
            ("tool.c", "int main(void) { return 0; }\n"),
            (".gitattributes", "secret.txt export-ignore\nVERSION export-subst\n"),
            ("secret.txt", "not for release\n"),
            ("VERSION", "commit $Format:%H$ of $Format:%cD$\n"),
        ],
        "tool",
    );
    let root = ctx.upstream("root");
    root.commit(&[("Makefile", "all:\n"), ("tools/README", "tools\n")], "root");
    root.commit_raw(b"tools/run.sh", b"#!/bin/sh\necho hi\n", 0o100755, "an executable");
    root.commit_raw(b"docs/link", b"../Makefile", 0o120000, "a symlink");
    root.commit_raw(LONG.as_bytes(), b"long\n", 0o100644, "a long path");
    root.commit_raw(b"caf\xe9.txt", b"latin-1 name\n", 0o100644, "a name that is not UTF-8");
    root.tag("v1.0", true);
    let other = ctx.upstream("other");
    ctx.write(
        "sultana.toml",
        &format!(
            "[tarball]\nroot = \"root\"\nname = \"root-{{desc}}\"\n\n\
             [components.root]\nurl = \"{}\"\nrevision = \"v1.0\"\ndepends = [\"lib\"]\n\n\
             [components.lib]\nurl = \"{}\"\nrevision = \"v2.0\"\nintree = \"extras/lib\"\nsubmodules = true\n\n\
             [components.tool]\nurl = \"{}\"\nrevision = \"master\"\nintree = \"tools/tool\"\n\n\
             [components.other]\nurl = \"{}\"\nrevision = \"master\"\n",
            root.url(),
            lib.url(),
            tool.url(),
            other.url()
        ),
    );
}

fn git(ctx: &TestContext, dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", &ctx.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn untar(archive: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let status = Command::new("tar")
        .arg("xf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success(), "tar xf {}", archive.display());
}

/// `git archive HEAD` of the checkout at `dir`, unpacked at `into`.
fn git_archive(ctx: &TestContext, dir: &Path, into: &Path) {
    let tar = ctx
        .root
        .join(format!("archive-{}.tar", into.file_name().unwrap().to_string_lossy()));
    std::fs::write(&tar, git(ctx, dir, &["archive", "--format=tar", "HEAD"])).unwrap();
    untar(&tar, into);
}

#[derive(Debug, PartialEq, Eq)]
enum Item {
    Dir,
    File { executable: bool, content: Vec<u8> },
    Link(Vec<u8>),
}

/// Everything below `dir` by relative path bytes.
fn listing(dir: &Path) -> BTreeMap<Vec<u8>, Item> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<Vec<u8>, Item>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(base).unwrap().as_os_str().as_bytes().to_vec();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, Item::Link(target.as_os_str().as_bytes().to_vec()));
            } else if meta.is_dir() {
                out.insert(rel, Item::Dir);
                walk(base, &path, out);
            } else {
                let executable = meta.permissions().mode() & 0o111 != 0;
                out.insert(
                    rel,
                    Item::File {
                        executable,
                        content: std::fs::read(&path).unwrap(),
                    },
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
#[cfg_attr(not(all(have_git, have_tar)), ignore = "needs git, tar")]
fn the_same_bytes_every_time_and_the_content_of_git_archive() {
    require("tar", "unpacking tarballs");
    require("git", "the git archive comparison");
    let ctx = TestContext::new();
    setup(&ctx);
    ctx.sultana(&["fetch"]).success();
    let run = ctx
        .sultana(&["tarball", "--json"])
        .success()
        .stderr_has("`other` is not in the tarball: it has no `intree` path");
    let json = run.json();
    let made = PathBuf::from(json["tarball"]["files"][0]["path"].as_str().unwrap());
    assert_eq!(made, ctx.work.join("dist/root-v1.0.tar.gz"));
    let first = std::fs::read(&made).unwrap();

    // SHA256SUMS beside it, in sha256sum's format.
    let sums = ctx.read("dist/SHA256SUMS");
    let sbom = |ext: &str| ctx.work.join(format!("dist/root-v1.0.{ext}"));
    assert_eq!(
        sums,
        format!(
            "{}  root-v1.0.cdx.json\n{}  root-v1.0.spdx.json\n{}  root-v1.0.spdx3.json\n{}  root-v1.0.tar.gz\n",
            sha256_hex(&sbom("cdx.json")),
            sha256_hex(&sbom("spdx.json")),
            sha256_hex(&sbom("spdx3.json")),
            sha256_hex(&made)
        )
    );
    assert_eq!(json["tarball"]["files"][0]["sha256"], sha256_hex(&made));

    // Again under another umask, time zone and locale: the same bytes.
    let out = ctx.dir("out2");
    ctx.sultana_with(
        &ctx.work,
        "077",
        &[("TZ", "Asia/Tokyo"), ("LC_ALL", "C.UTF-8")],
        &["tarball", "--out", out.to_str().unwrap()],
    )
    .success();
    assert!(
        std::fs::read(out.join("root-v1.0.tar.gz")).unwrap() == first,
        "not reproducible"
    );
    assert_eq!(
        std::fs::metadata(out.join("root-v1.0.tar.gz"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );

    // The content: git archive of each pinned tree (and the submodule) at its place.
    let expected = ctx.dir("expected");
    git_archive(&ctx, &ctx.work.join("root"), &expected);
    git_archive(&ctx, &ctx.work.join("lib"), &expected.join("extras/lib"));
    git_archive(
        &ctx,
        &ctx.work.join("lib/vendor/sub"),
        &expected.join("extras/lib/vendor/sub"),
    );
    git_archive(&ctx, &ctx.work.join("tool"), &expected.join("tools/tool"));
    let actual = ctx.dir("actual");
    untar(&made, &actual);
    let mut ours = listing(&actual.join("root-v1.0"));
    for extra in [&b"sultana.toml"[..], b"sultana.lock"] {
        assert!(
            ours.remove(extra).is_some(),
            "{} inside",
            String::from_utf8_lossy(extra)
        );
    }
    let theirs = listing(&expected);
    let keys = |m: &BTreeMap<Vec<u8>, Item>| {
        m.keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&ours), keys(&theirs));
    assert!(ours == theirs, "same paths, but contents, modes or links differ");
    // The awkward cases are really in there.
    assert!(ours.contains_key(LONG.as_bytes()));
    assert!(ours.contains_key(&b"caf\xe9.txt"[..]));
    assert_eq!(ours[&b"docs/link"[..]], Item::Link(b"../Makefile".to_vec()));
    assert!(matches!(
        ours[&b"tools/run.sh"[..]],
        Item::File { executable: true, .. }
    ));
    assert!(!ours.contains_key(&b"tools/tool/secret.txt"[..]), "export-ignore");
    let Item::File { content, .. } = &ours[&b"tools/tool/VERSION"[..]] else {
        panic!()
    };
    let tool_head = ctx.lock_commit("tool");
    assert!(
        String::from_utf8_lossy(content).starts_with(&format!("commit {tool_head} of ")),
        "export-subst"
    );
    assert!(
        ours.contains_key(&b"extras/lib/vendor/sub/sub.c"[..]),
        "submodule content"
    );

    // Headers: fixed owner, time and modes, whatever the files on disk say.
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(&first[..]));
    let root_time = git(&ctx, &ctx.work.join("root"), &["log", "-1", "--format=%ct"]);
    let root_time: u64 = String::from_utf8_lossy(&root_time).trim().parse().unwrap();
    let mut previous: Vec<u8> = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        let path = entry.path_bytes().into_owned();
        assert!(previous < path, "sorted entries");
        previous = path.clone();
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.mtime().unwrap(), root_time);
        let mode = h.mode().unwrap();
        match h.entry_type() {
            tar::EntryType::Directory => assert_eq!(mode, 0o755),
            tar::EntryType::Symlink => assert_eq!(mode, 0o777),
            _ => assert!(mode == 0o644 || mode == 0o755, "{mode:o}"),
        }
    }

    // The lock inside records every tree as in-tree, at its pinned commit.
    let lock = std::fs::read_to_string(actual.join("root-v1.0/sultana.lock")).unwrap();
    let lock: toml::Value = lock.parse().unwrap();
    for entry in lock["component"].as_array().unwrap() {
        assert_eq!(entry["source"].as_str(), Some("intree"), "{entry}");
        let name = entry["name"].as_str().unwrap();
        assert_eq!(entry["commit"].as_str().unwrap(), ctx.lock_commit(name));
    }
}

#[test]
#[cfg_attr(not(have_gzip), ignore = "needs gzip")]
fn verify_tarball_passes_and_names_what_differs() {
    require("gzip", "recompressing a doctored tarball");
    let ctx = TestContext::new();
    setup(&ctx);
    ctx.sultana(&["tarball", "--format", "gz", "--format", "xz", "--format", "zst"])
        .success();
    for ext in ["gz", "xz", "zst"] {
        let file = ctx.work.join(format!("dist/root-v1.0.tar.{ext}"));
        ctx.sultana(&["verify-tarball", file.to_str().unwrap()])
            .success()
            .stdout_has("identical");
    }
    let good = ctx.work.join("dist/root-v1.0.tar.gz");
    // From an empty cache (another machine): the commits are fetched again.
    let other_cache = ctx.dir("other-cache");
    let run = ctx
        .command(&ctx.root, &["verify-tarball", good.to_str().unwrap()])
        .env("XDG_CACHE_HOME", &other_cache)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    // One changed byte of content, recompressed: the entry is named.
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&good).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    let at = tar.windows(6).position(|w| w == b"tools\n").unwrap();
    tar[at + 3] = b'L';
    let doctored = ctx.root.join("doctored.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&doctored).unwrap(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap();
    ctx.sultana(&["verify-tarball", doctored.to_str().unwrap()])
        .code(1)
        .stderr_has("root-v1.0/tools/README`: its content differs");

    // The same tar recompressed by another tool: named as such.
    let mut tar_same = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&good).unwrap())
        .read_to_end(&mut tar_same)
        .unwrap();
    let recompressed = ctx.root.join("recompressed.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&recompressed).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&tar_same).unwrap();
    gz.finish().unwrap();
    ctx.sultana(&["verify-tarball", recompressed.to_str().unwrap()])
        .code(1)
        .stderr_has("compressed bytes differ");

    // A flipped byte of the compressed file, and a truncated file: errors, not panics.
    let mut bytes = std::fs::read(&good).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let flipped = ctx.root.join("flipped.tar.gz");
    std::fs::write(&flipped, &bytes).unwrap();
    let run = ctx.sultana(&["verify-tarball", flipped.to_str().unwrap()]);
    assert!(matches!(run.code, Some(1) | Some(2)), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let truncated = ctx.root.join("truncated.tar.gz");
    std::fs::write(&truncated, &std::fs::read(&good).unwrap()[..middle]).unwrap();
    let run = ctx.sultana(&["verify-tarball", truncated.to_str().unwrap()]);
    assert!(matches!(run.code, Some(1) | Some(2)), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    ctx.write("not-a-tarball.tar.gz", "hello\n");
    ctx.sultana(&["verify-tarball", "not-a-tarball.tar.gz"])
        .code(2)
        .stderr_has("is not a gzip, xz, zstd or lzip compressed tarball");
}

/// A gzip tarball with one raw entry, to forge what `tar::Builder` refuses.
fn forged(ctx: &TestContext, name: &str, entries: &[(&[u8], tar::EntryType, &[u8])]) -> PathBuf {
    let path = ctx.root.join(name);
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (entry_path, kind, data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..entry_path.len()].copy_from_slice(entry_path);
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        if *kind == tar::EntryType::Symlink {
            header.as_old_mut().linkname[..data.len()].copy_from_slice(data);
            header.set_size(0);
            header.set_cksum();
            builder.append(&header, std::io::empty()).unwrap();
        } else {
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
    }
    builder.into_inner().unwrap().finish().unwrap();
    path
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let ctx = TestContext::new();
    setup(&ctx);
    // A named component with no place in the tarball.
    ctx.sultana(&["tarball", "other"])
        .code(2)
        .stderr_has("`other` has no `intree` path");
    ctx.sultana(&["tarball", "--desc", "../x"])
        .code(2)
        .stderr_has("tarball description `../x`");
    ctx.sultana(&["tarball", "--format", "rar"])
        .code(2)
        .stderr_has("invalid value 'rar' for '--format <F>'")
        .stderr_has("[possible values: gz, xz, zst, lz]");
    // A component placed over a path the root tree has.
    let text = ctx
        .read("sultana.toml")
        .replace("intree = \"tools/tool\"", "intree = \"tools\"");
    ctx.write("sultana.toml", &text);
    ctx.sultana(&["tarball"])
        .code(2)
        .stderr_has("the root tree already has `tools`, where `tool` would go");
    // No [tarball] table.
    let no_table = ctx
        .read("sultana.toml")
        .replace("[tarball]\nroot = \"root\"\nname = \"root-{desc}\"\n", "");
    ctx.write("sultana.toml", &no_table);
    ctx.sultana(&["tarball"]).code(2).stderr_has("has no [tarball] table");

    // An upstream symlink pointing outside the tarball.
    let ctx = TestContext::new();
    let root = ctx.upstream("evil");
    root.commit_raw(b"tools/passwd", b"../../../etc/passwd", 0o120000, "escape");
    ctx.write(
        "sultana.toml",
        &format!(
            "[tarball]\nroot = \"evil\"\n\n[components.evil]\nurl = \"{}\"\nrevision = \"master\"\n",
            root.url()
        ),
    );
    ctx.sultana(&["tarball"])
        .code(2)
        .stderr_has("symlink `tools/passwd`: points to `../../../etc/passwd`, outside the tarball");
    assert!(!ctx.work.join("dist/evil-").exists());
    let leftovers: Vec<_> = std::fs::read_dir(ctx.work.join("dist"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "nothing half-written: {leftovers:?}");

    // Hostile archives given to verify-tarball: refused before anything.
    let climbing = forged(
        &ctx,
        "climb.tar.gz",
        &[(b"x-1/../../etc/cron", tar::EntryType::Regular, b"boom\n")],
    );
    ctx.sultana(&["verify-tarball", climbing.to_str().unwrap()])
        .code(2)
        .stderr_has("climbs out of the archive");
    let linking = forged(
        &ctx,
        "link.tar.gz",
        &[
            (b"x-1/", tar::EntryType::Directory, b""),
            (b"x-1/etc", tar::EntryType::Symlink, b"../../etc"),
        ],
    );
    ctx.sultana(&["verify-tarball", linking.to_str().unwrap()])
        .code(2)
        .stderr_has("outside the tarball");
    let two_tops = forged(
        &ctx,
        "tops.tar.gz",
        &[
            (b"a-1/x", tar::EntryType::Regular, b"x"),
            (b"b-1/y", tar::EntryType::Regular, b"y"),
        ],
    );
    ctx.sultana(&["verify-tarball", two_tops.to_str().unwrap()])
        .code(2)
        .stderr_has("is outside the tarball's folder");
    let foreign = forged(
        &ctx,
        "foreign.tar.gz",
        &[(b"x-1/README", tar::EntryType::Regular, b"x")],
    );
    ctx.sultana(&["verify-tarball", foreign.to_str().unwrap()])
        .code(2)
        .stderr_has("not a tarball sultana made");
}

/// What building the unpacked fixture tarball needs.
fn offline_build_tools() {
    require("tar", "unpacking tarballs");
    require("autoreconf", "the autotools fixture (Debian autoconf, automake)");
    require("make", "the fixture builds");
    require("gcc", "the fixture builds");
    require("cargo", "the cargo fixture");
}

/// The fixture workspace's release tarball, unpacked: its top folder.
fn unpacked_fixture_tarball(ctx: &TestContext) -> PathBuf {
    ctx.fixture_workspace();
    ctx.sultana(&["tarball"]).success();
    let unpacked = ctx.dir("unpacked");
    untar(&ctx.work.join("dist/root-v1.0.tar.gz"), &unpacked);
    unpacked.join("root-v1.0")
}

#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make, have_tar)),
    ignore = "needs autoreconf, cargo, gcc, make, tar"
)]
fn an_unpacked_tarball_builds_offline() {
    offline_build_tools();
    let ctx = TestContext::new();
    let tree = unpacked_fixture_tarball(&ctx);
    // No network, no git, not even the cache: every component is in the tree.
    let empty_cache = ctx.dir("empty-cache");
    let cache = empty_cache.to_str().unwrap();
    let env = [("XDG_CACHE_HOME", cache)];
    let fetch = ctx
        .sultana_with(&tree, "022", &env, &["--locked", "fetch", "--offline", "--json"])
        .success();
    for component in fetch.json()["components"].as_array().unwrap() {
        assert_eq!(component["source"], "intree", "{component}");
    }
    ctx.sultana_with(&tree, "022", &env, &["status"])
        .success()
        .stdout_has("intree");
    ctx.sultana_with(&tree, "022", &env, &["build", "--offline"]).success();
    assert_eq!(
        run_program(&tree.join("dist/root/usr/local/bin/rootapp")),
        "rootapp: 2 + 3 = 5\n"
    );
    // Built once, fresh after: the tree's own build outputs do not count.
    let again = ctx
        .sultana_with(&tree, "022", &env, &["build", "--offline", "--json"])
        .success();
    for component in again.json()["components"].as_array().unwrap() {
        assert_eq!(component["status"], "fresh", "{component}");
    }
    assert!(!empty_cache.join("sultana/git").exists(), "no git store was made");
}

#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_cargo, have_gcc, have_make, have_tar)),
    ignore = "needs autoreconf, cargo, gcc, make, tar"
)]
fn an_unpacked_tree_with_a_symlink_chain_out_is_not_built() {
    // The root's dependencies build first, then the root is refused.
    offline_build_tools();
    let ctx = TestContext::new();
    let tree = unpacked_fixture_tarball(&ctx);
    // Planted after unpacking (a tarball never verified): a chain out.
    std::os::unix::fs::symlink(".", tree.join("self")).unwrap();
    std::os::unix::fs::symlink("self/self/../..", tree.join("esc")).unwrap();
    let empty_cache = ctx.dir("empty-cache");
    let env = [("XDG_CACHE_HOME", empty_cache.to_str().unwrap())];
    ctx.sultana_with(&tree, "022", &env, &["build", "--offline", "root"])
        .code(2)
        .stderr_has("symlink that is refused: `esc`");
    assert!(!tree.join("dist/root").exists());
}

#[test]
fn the_same_manifest_in_another_folder_gives_the_same_bytes() {
    let ctx = TestContext::new();
    setup(&ctx);
    ctx.sultana(&["fetch"]).success();
    ctx.sultana(&["tarball"]).success();
    let first = std::fs::read(ctx.work.join("dist/root-v1.0.tar.gz")).unwrap();
    // A folder of another name (the name a manifest without one would
    // otherwise take), with the same manifest and lock.
    let other = ctx.dir("release-checkout-2");
    for file in ["sultana.toml", "sultana.lock"] {
        std::fs::copy(ctx.work.join(file), other.join(file)).unwrap();
    }
    ctx.sultana_in(&other, &["fetch"]).success();
    ctx.sultana_in(&other, &["tarball"]).success();
    let second = std::fs::read(other.join("dist/root-v1.0.tar.gz")).unwrap();
    assert!(first == second, "the folder's name reached the tarball");
    ctx.sultana_in(&other, &["verify-tarball", "dist/root-v1.0.tar.gz"])
        .success();
}

/// Xen's three release formats (mktarball's gz, xz and lzip -9): each holds
/// exactly `git archive --prefix=xen-$desc/` of the pin, entry for entry and
/// byte for byte in content, besides the two files sultana embeds; the name
/// comes from xen's own `make xenversion`, as `make src-tarball-release`.
#[test]
#[cfg_attr(not(have_lzip), ignore = "needs lzip")]
fn every_format_holds_git_archive_of_the_pin_and_lzip_reads_ours() {
    let ctx = TestContext::new();
    require("lzip", "checking .tar.lz with the lzip tool");
    let xen = ctx.upstream("xen");
    xen.commit(
        &[
            (
                "xen/Makefile",
                "export XEN_VERSION       = 4\nexport XEN_SUBVERSION    = 23\n\
                 export XEN_EXTRAVERSION ?= -unstable$(XEN_VENDORVERSION)\n\
                 export XEN_FULLVERSION   = $(XEN_VERSION).$(XEN_SUBVERSION)$(XEN_EXTRAVERSION)\n\
                 -include xen-version\n\nxenversion:\n\t@echo $(XEN_FULLVERSION)\n",
            ),
            ("tools/README", "tools\n"),
        ],
        "xen",
    );
    xen.commit_raw(b"tools/run.sh", b"#!/bin/sh\necho hi\n", 0o100755, "an executable");
    xen.commit_raw(b"docs/link", b"../tools/README", 0o120000, "a symlink");
    xen.commit_raw(LONG.as_bytes(), b"long\n", 0o100644, "a long path");
    // Large enough for two lzip members (16 MiB each).
    // (Repetitive, so compressing it takes no time.)
    let noise = b"xen\n".repeat(17 << 18);
    xen.commit_raw(b"big.bin", &noise, 0o100644, "a big file");
    ctx.write(
        "sultana.toml",
        &format!(
            "[tarball]\nroot = \"xen\"\nname = \"xen-{{desc}}\"\n\n[components.xen]\nurl = \"{}\"\nrevision = \"master\"\n",
            xen.url()
        ),
    );
    ctx.sultana(&[
        "tarball",
        "--xen-version",
        "--format",
        "gz",
        "--format",
        "xz",
        "--format",
        "lz",
    ])
    .success()
    .stderr_has("4.23-unstable");
    let top = "xen-4.23-unstable";
    let archive = Command::new("git")
        .args(["archive", "--format=tar", &format!("--prefix={top}/"), "HEAD"])
        .current_dir(&xen.path)
        .output()
        .unwrap();
    assert!(archive.status.success());
    let expected = tar_contents(&archive.stdout);
    for (ext, tool) in [("gz", "gzip"), ("xz", "xz"), ("lz", "lzip")] {
        let file = ctx.work.join(format!("dist/{top}.tar.{ext}"));
        let test = Command::new(tool).arg("-t").arg(&file).status().unwrap();
        assert!(test.success(), "{tool} -t {}", file.display());
        let out = Command::new(tool).arg("-dc").arg(&file).output().unwrap();
        assert!(out.status.success(), "{tool} -dc");
        let mut got = tar_contents(&out.stdout);
        for embedded in ["sultana.toml", "sultana.lock"] {
            assert!(got.remove(&format!("{top}/{embedded}")).is_some(), "{ext}: {embedded}");
        }
        assert_eq!(got.len(), expected.len(), "{ext}: the same entries");
        for (path, entry) in &expected {
            assert!(
                got.get(path) == Some(entry),
                "{ext}: `{path}` differs from git archive's"
            );
        }
        ctx.sultana(&["verify-tarball", file.to_str().unwrap()])
            .success()
            .stdout_has("identical");
    }
    let sums = ctx.read("dist/SHA256SUMS");
    assert!(sums.contains(&format!("{top}.tar.lz")), "{sums}");
    // The same bytes on the next run.
    let first = std::fs::read(ctx.work.join(format!("dist/{top}.tar.lz"))).unwrap();
    ctx.sultana(&["tarball", "--xen-version", "--format", "lz"]).success();
    assert!(first == std::fs::read(ctx.work.join(format!("dist/{top}.tar.lz"))).unwrap());
    // A damaged lzip trailer (its CRC) is named as damage, not as another tool.
    let mut bytes = first.clone();
    let at = bytes.len() - 20;
    bytes[at] ^= 0xff;
    let damaged = ctx.root.join(format!("{top}.tar.lz"));
    std::fs::write(&damaged, &bytes).unwrap();
    ctx.sultana(&["verify-tarball", damaged.to_str().unwrap()])
        .code(1)
        .stderr_has("compressed stream is damaged: lzip: CRC mismatch");
    // --xen-version and --desc together make no sense.
    ctx.sultana(&["tarball", "--xen-version", "--desc", "1"]).code(2);
    // The version lines are upstream data: nothing in them runs.
    let marker = ctx.root.join("pwned");
    for hostile in [
        format!("XEN_FULLVERSION = 4.21; touch {}", marker.display()),
        format!("XEN_FULLVERSION = `touch {}`4.21", marker.display()),
        format!(
            "XEN_VERSION := $(file >{},x)\nXEN_FULLVERSION = $(XEN_VERSION)",
            marker.display()
        ),
        format!("XEN_FULLVERSION = $(call shell,touch {})4.21", marker.display()),
    ] {
        xen.commit(
            &[(
                "xen/Makefile",
                &format!("{hostile}\nxenversion:\n\t@echo $(XEN_FULLVERSION)\n"),
            )],
            "hostile",
        );
        ctx.sultana(&["update"]).success();
        ctx.sultana(&["tarball", "--xen-version", "--format", "gz"])
            .code(2)
            .stderr_has("refusing");
        assert!(!marker.exists(), "{hostile} ran");
    }
}

/// A tar's entries: path → (type, content or link target).
fn tar_contents(bytes: &[u8]) -> BTreeMap<String, (u8, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue; // git archive's commit id comment
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut content = Vec::new();
        if kind == tar::EntryType::Symlink {
            content = entry.link_name_bytes().unwrap().into_owned();
        } else {
            entry.read_to_end(&mut content).unwrap();
        }
        out.insert(path, (kind.as_byte(), content));
    }
    out
}
