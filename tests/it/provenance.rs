//! Release provenance: the SPDX SBOM beside every tarball (checked by the
//! SPDX project's own validator), OpenPGP signatures made through gpg, and
//! what `verify-tarball` checks beside a tarball.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn license_text(id: &str) -> String {
    spdx::license_id(id).unwrap().text().to_string()
}

/// A root tree under GPL v2 (a notice, then the text), a companion under
/// BSD-3-Clause and one under a license nobody knows; the root's url holds
/// credentials (fetched from a mirror).
fn setup(ctx: &TestContext) {
    let root = ctx.upstream("root");
    let copying = format!(
        "XEN NOTICE\n==========\nGuests are not derived works.\n\n{}",
        license_text("GPL-2.0-only")
    );
    root.commit(&[("COPYING", &copying), ("Makefile", "all:\n")], "root");
    root.tag("v1.0", true);
    let blk = ctx.upstream("blk");
    let bsd = format!(
        "All files in this package are licensed under the following 3-clause BSD license.\n\n{}",
        license_text("BSD-3-Clause")
    );
    blk.commit(&[("LICENSE", &bsd)], "blk");
    let odd = ctx.upstream("odd");
    odd.commit(
        &[("LICENSE", "You may do as you like with this, but do not sue me.\n")],
        "odd",
    );
    ctx.write(
        "sultana.toml",
        &format!(
            "[tarball]\nroot = \"root\"\nname = \"root-{{desc}}\"\n\n\
             [components.root]\nurl = \"https://builder:s3cret@example.org/root.git?private_token=T0KEN\"\nmirrors = [\"{}\"]\nrevision = \"v1.0\"\n\n\
             [components.blk]\nurl = \"{}\"\nrevision = \"master\"\nintree = \"tools/blk\"\n\n\
             [components.odd]\nurl = \"{}\"\nrevision = \"master\"\nintree = \"extras/odd\"\n",
            root.url(),
            blk.url(),
            odd.url()
        ),
    );
}

fn validate(sbom: &Path) {
    require(
        "pyspdxtools",
        "the SPDX validator (spdx-tools from PyPI, in .ci/run's virtualenv)",
    );
    let out = Command::new("pyspdxtools").arg("-i").arg(sbom).output().unwrap();
    assert!(
        out.status.success(),
        "the SPDX validator refuses {}:\n{}{}",
        sbom.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The SBOM names each component with its version, commit and declared
/// license (NOASSERTION when no license is recognised), never credentials;
/// the SPDX validator accepts it; two runs write the same bytes; it is in
/// SHA256SUMS and `--json`; verify-tarball compares it with its own.
#[test]
#[cfg_attr(not(have_pyspdxtools), ignore = "needs pyspdxtools")]
fn the_sbom_names_each_component_and_its_license_and_validates() {
    require(
        "pyspdxtools",
        "the SPDX validator (spdx-tools from PyPI, in .ci/run's virtualenv)",
    );
    let ctx = TestContext::new();
    setup(&ctx);
    let run = ctx.sultana(&["tarball", "--json"]).success();
    let json = run.json();
    let sbom = PathBuf::from(json["tarball"]["sboms"][0].as_str().unwrap());
    assert_eq!(sbom, ctx.work.join("dist/root-v1.0.spdx.json"));
    validate(&sbom);
    let bytes = std::fs::read(&sbom).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    for sbom in ["root-v1.0.spdx.json", "root-v1.0.spdx3.json", "root-v1.0.cdx.json"] {
        let text = ctx.read(&format!("dist/{sbom}"));
        assert!(!text.contains("s3cret") && !text.contains("builder"), "{sbom}: {text}");
    }
    // Nor a token in the url's query: not in the SBOM, the lock, the output
    // or the tarball's embedded manifest and lock.
    let tarball = std::fs::read(ctx.work.join("dist/root-v1.0.tar.gz")).unwrap();
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&tarball[..]), &mut unpacked).unwrap();
    let spdx3 = ctx.read("dist/root-v1.0.spdx3.json");
    let cdx = ctx.read("dist/root-v1.0.cdx.json");
    for (what, bytes) in [
        ("the SBOM", text.as_bytes()),
        ("the SPDX 3 SBOM", spdx3.as_bytes()),
        ("the CycloneDX SBOM", cdx.as_bytes()),
        ("the lock", ctx.read("sultana.lock").as_bytes()),
        ("stderr", run.stderr.as_bytes()),
        ("the tarball", &unpacked[..]),
    ] {
        let found = bytes.windows(5).any(|w| w == b"T0KEN");
        assert!(!found, "the token is in {what}");
    }
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let packages = doc["packages"].as_array().unwrap();
    let of = |name: &str| packages.iter().find(|p| p["name"] == name).unwrap().clone();
    assert_eq!(of("root")["licenseDeclared"], "GPL-2.0-only");
    assert_eq!(of("blk")["licenseDeclared"], "BSD-3-Clause");
    assert_eq!(of("odd")["licenseDeclared"], "NOASSERTION");
    let commit = ctx.lock_commit("root");
    // Fetched only from its mirror: the url itself never showed the commit,
    // so no one is sent there for it (the form of a location is unit-tested).
    assert_eq!(of("root")["downloadLocation"], "NOASSERTION");
    assert!(
        run.stderr.contains("was never seen holding this commit"),
        "{}",
        run.stderr
    );
    assert_eq!(of("root")["versionInfo"], "v1.0");
    assert_eq!(
        of("root")["externalRefs"][0]["referenceLocator"],
        format!("swh:1:rev:{commit}")
    );
    let rels = doc["relationships"].as_array().unwrap();
    assert_eq!(rels.len(), 3, "DESCRIBES the root, which CONTAINS the two others");
    assert!(rels
        .iter()
        .any(|r| r["relationshipType"] == "DESCRIBES" && r["relatedSpdxElement"] == of("root")["SPDXID"]));
    let sums = ctx.read("dist/SHA256SUMS");
    assert!(sums.contains("  root-v1.0.spdx.json\n"), "{sums}");

    // The same bytes again, also after the lock moved nothing.
    ctx.sultana(&["tarball"]).success();
    assert_eq!(std::fs::read(&sbom).unwrap(), bytes);
    let verified = ctx
        .sultana(&["verify-tarball", "--use-mirrors", "dist/root-v1.0.tar.gz"])
        .success();
    assert!(
        verified.stderr.contains("the SBOM sultana writes for this tarball"),
        "{}",
        verified.stderr
    );
    // A changed SBOM is refused.
    std::fs::write(&sbom, text.replace("BSD-3-Clause", "MIT")).unwrap();
    ctx.sultana(&["verify-tarball", "--use-mirrors", "dist/root-v1.0.tar.gz"])
        .code(1)
        .stderr_has("differs from the SBOM sultana writes");
}

/// `--sign KEY` signs each tarball and SHA256SUMS through gpg; verify-tarball
/// names the signer and refuses a signature of another file, a flipped byte
/// and a wrong SHA256SUMS line; a key gpg lacks is refused before anything
/// is written.
#[test]
#[cfg_attr(not(have_gpg), ignore = "needs gpg")]
fn signatures_are_made_and_checked_with_a_throwaway_key() {
    require("gpg", "signing release tarballs (Debian gpg)");
    let ctx = TestContext::new();
    setup(&ctx);
    let keyring = Gpg::new(&ctx);
    let home = keyring.home.clone();
    let gpg = |args: &[&str]| keyring.run(args);
    let fingerprint = keyring.new_key("Release Tester", "rel@example.org");
    let home_text = home.to_str().unwrap();
    let with_gpg = |args: &[&str]| ctx.sultana_with(&ctx.work, "022", &[("GNUPGHOME", home_text)], args);

    // A key gpg does not have, or one that expired: exit 2, no tarball.
    with_gpg(&["tarball", "--sign", "nobody@example.org"])
        .code(2)
        .stderr_has("no secret key `nobody@example.org`");
    // Made in 2020 (gpg's own clock, frozen there) and expired a second
    // later: expired now, with no wait.
    gpg(&[
        "--faked-system-time",
        "20200101T000000!",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Expired <exp@example.org>",
        "ed25519",
        "sign",
        "seconds=1",
    ]);
    with_gpg(&["tarball", "--sign", "exp@example.org"])
        .code(2)
        .stderr_has("gpg cannot sign with `exp@example.org`");
    assert!(!ctx.work.join("dist").exists(), "nothing written");

    let run = with_gpg(&["tarball", "--sign", "rel@example.org", "--json"]).success();
    let signatures: Vec<String> = run.json()["tarball"]["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let dist = ctx.work.join("dist");
    assert_eq!(
        signatures,
        [
            dist.join("root-v1.0.tar.gz.asc").display().to_string(),
            dist.join("SHA256SUMS.asc").display().to_string()
        ]
    );
    let verify = || with_gpg(&["verify-tarball", "--use-mirrors", "dist/root-v1.0.tar.gz"]);
    let good = verify().success();
    assert!(
        good.stderr.contains(&format!("good signature by key {fingerprint}")),
        "{}",
        good.stderr
    );

    // A signature of another file.
    let tar_asc = dist.join("root-v1.0.tar.gz.asc");
    let kept = std::fs::read(&tar_asc).unwrap();
    std::fs::copy(dist.join("SHA256SUMS.asc"), &tar_asc).unwrap();
    verify().code(1).stderr_has("BAD signature of root-v1.0.tar.gz");
    std::fs::write(&tar_asc, &kept).unwrap();
    verify().success();

    // A wrong SHA256SUMS line (its signature is then bad too).
    let sums = dist.join("SHA256SUMS");
    let text = std::fs::read_to_string(&sums).unwrap();
    let wrong: String = text
        .lines()
        .map(|l| match l.split_once("  ") {
            Some((_, name)) if name == "root-v1.0.tar.gz" => format!("{}  {name}\n", "0".repeat(64)),
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&sums, wrong).unwrap();
    verify()
        .code(1)
        .stderr_has("its line for root-v1.0.tar.gz does not match the file")
        .stderr_has("BAD signature of SHA256SUMS");
    std::fs::write(&sums, &text).unwrap();

    // A second, wrong line for the tarball (sha256sum -c checks each).
    let mut doubled = text.clone();
    doubled.push_str(&format!("{}  root-v1.0.tar.gz\n", "1".repeat(64)));
    std::fs::write(&sums, doubled).unwrap();
    verify()
        .code(1)
        .stderr_has("its line for root-v1.0.tar.gz does not match");
    std::fs::write(&sums, &text).unwrap();

    // Something beside it that is no regular file is a failed check.
    std::fs::create_dir(dist.join("root-v1.0.tar.gz.sig")).unwrap();
    verify()
        .code(1)
        .stderr_has("root-v1.0.tar.gz.sig: is not a regular file");
    std::fs::remove_dir(dist.join("root-v1.0.tar.gz.sig")).unwrap();
    verify().success();

    // Another tarball made without --sign rewrites SHA256SUMS: its old
    // signature is removed (and said), not left to be found BAD.
    with_gpg(&["tarball", "--desc", "rc2"])
        .success()
        .stderr_has("SHA256SUMS was rewritten with other bytes since it was signed");
    assert!(!dist.join("SHA256SUMS.asc").exists());
    assert!(tar_asc.exists(), "the unchanged tarball keeps its signature");
    verify().success();

    // A flipped byte in the tarball.
    let tarball = dist.join("root-v1.0.tar.gz");
    let mut bytes = std::fs::read(&tarball).unwrap();
    let last = bytes.len() - 9;
    bytes[last] ^= 0x01;
    std::fs::write(&tarball, bytes).unwrap();
    verify().code(1);
    let _ = Command::new("gpgconf")
        .args(["--kill", "all"])
        .env("GNUPGHOME", &home)
        .status();
}

/// A recipe's `license_files` names where a tree's license is (Xen's
/// COPYING is prose pointing at LICENSES/); one that climbs out of the tree
/// is refused before any tarball is written.
#[test]
fn a_recipes_license_files_are_read_and_checked() {
    let ctx = TestContext::new();
    setup(&ctx);
    let odd = ctx.upstreams.join("odd");
    let clock = sultana::fixtures::Clock::default();
    sultana::fixtures::commit(
        &odd,
        &[("LICENSES/MIT", license_text("MIT"), false)],
        "the license, elsewhere",
        &clock,
    )
    .unwrap();
    ctx.write(
        "recipes/odd.toml",
        "kind = \"make\"\nlicense_files = [\"../../COPYING\"]\n",
    );
    ctx.sultana(&["tarball"])
        .code(2)
        .stderr_has("license_files `../../COPYING` must be a relative path inside the tree");
    assert!(!ctx.work.join("dist").exists(), "nothing written");
    ctx.write(
        "recipes/odd.toml",
        "kind = \"make\"\nlicense_files = [\"LICENSES/MIT\"]\n",
    );
    ctx.sultana(&["tarball"]).success();
    let doc: serde_json::Value = serde_json::from_str(&ctx.read("dist/root-v1.0.spdx.json")).unwrap();
    let odd = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "odd")
        .unwrap()
        .clone();
    assert_eq!(odd["licenseDeclared"], "MIT");
    // verify-tarball reads the recipe the tarball embeds: the same SBOM.
    ctx.sultana(&["verify-tarball", "--use-mirrors", "dist/root-v1.0.tar.gz"])
        .success()
        .stderr_has("the SBOM sultana writes for this tarball");
}

/// A release rewritten with other bytes (another commit under the same
/// description) loses its old signatures before SHA256SUMS changes: killed
/// right after SHA256SUMS is written, the rerun leaves no wrong signature.
#[test]
#[cfg_attr(not(have_gpg), ignore = "needs gpg")]
fn a_rewritten_release_never_keeps_a_wrong_signature_even_when_killed() {
    require("gpg", "signing release tarballs (Debian gpg)");
    let ctx = TestContext::new();
    setup(&ctx);
    let home = ctx.dir("gnupg");
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let out = Command::new("gpg")
        .args(["--batch", "--no-tty", "--passphrase", ""])
        .args([
            "--quick-gen-key",
            "Release Tester <rel@example.org>",
            "ed25519",
            "sign",
            "never",
        ])
        .env("GNUPGHOME", &home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let home_text = home.to_str().unwrap().to_string();
    let env = [("GNUPGHOME", home_text.as_str())];
    ctx.sultana_with(
        &ctx.work,
        "022",
        &env,
        &["tarball", "--desc", "1.0", "--sign", "rel@example.org"],
    )
    .success();
    let dist = ctx.work.join("dist");
    assert!(dist.join("root-1.0.tar.gz.asc").is_file());

    let clock = sultana::fixtures::Clock::default();
    sultana::fixtures::commit(
        &ctx.upstreams.join("blk"),
        &[("NEWS", "2\n".into(), false)],
        "news",
        &clock,
    )
    .unwrap();
    ctx.sultana(&["update", "blk"]).success();
    let killed = ctx
        .command(&ctx.work, &["tarball", "--desc", "1.0"])
        .env("GNUPGHOME", &home)
        .env("SULTANA_TEST_CRASH_AT", "tarball-sums-written")
        .output()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&killed.status), Some(9));
    for stale in ["root-1.0.tar.gz.asc", "SHA256SUMS.asc"] {
        assert!(!dist.join(stale).exists(), "{stale} survived the rewrite");
    }
    ctx.sultana_with(&ctx.work, "022", &env, &["tarball", "--desc", "1.0"])
        .success();
    ctx.sultana_with(
        &ctx.work,
        "022",
        &env,
        &["verify-tarball", "--use-mirrors", "dist/root-1.0.tar.gz"],
    )
    .success();
    let _ = Command::new("gpgconf")
        .args(["--kill", "all"])
        .env("GNUPGHOME", &home)
        .status();
}

/// What the SBOMs' readers check beyond syntax: the SPDX project's
/// `sbomcheck` finds the SPDX documents conformant to NTIA's minimum
/// elements, CISA's FSCT minimum and BSI TR-03183-2, and CycloneDX's own
/// strict schema accepts the CycloneDX one. A component without a supplier,
/// and a recipe license its files contradict, are said when the tarball is made.
#[test]
#[cfg_attr(not(all(have_pyspdxtools, have_sbomcheck)), ignore = "needs pyspdxtools, sbomcheck")]
fn the_sboms_pass_their_readers_checks() {
    require(
        "sbomcheck",
        "checking SBOMs (ntia-conformance-checker from PyPI, in .ci/run's virtualenv)",
    );
    let ctx = TestContext::new();
    let root = ctx.upstream("root");
    let copying = format!(
        "Copyright (c) 2003-2026 The Root Project\n\n{}",
        license_text("GPL-2.0-only")
    );
    root.commit(&[("COPYING", &copying), ("Makefile", "all:\n")], "root");
    root.tag("v1.0", true);
    let blk = ctx.upstream("blk");
    let bsd = license_text("BSD-2-Clause").replace("<year> <owner>", "2016, Citrix Systems, Inc.");
    let bsd = format!("Copyright (c) 2016, Citrix Systems, Inc.\n\n{bsd}");
    blk.commit(&[("LICENSE", &bsd)], "blk");
    let odd = ctx.upstream("odd");
    odd.commit(
        &[(
            "LICENSE",
            "Copyright 2020 Odd Person\nYou may do as you like with this, but do not sue me.\n",
        )],
        "odd",
    );
    let manifest = |blk_supplier: &str| {
        format!(
            "[tarball]\nroot = \"root\"\nname = \"root-{{desc}}\"\ncreator = \"Root Release Team <releases@example.org>\"\n\n\
             [components.root]\nurl = \"{}\"\nrevision = \"v1.0\"\nsupplier = \"Root Project <https://example.org/root>\"\n\n\
             [components.blk]\nurl = \"{}\"\nrevision = \"master\"\nintree = \"tools/blk\"\n{blk_supplier}\n\
             [components.odd]\nurl = \"{}\"\nrevision = \"master\"\nintree = \"extras/odd\"\nsupplier = \"Odd Person <odd@example.org>\"\n",
            root.url(),
            blk.url(),
            odd.url()
        )
    };
    ctx.write(
        "sultana.toml",
        &manifest("supplier = \"xapi-project <https://github.com/xapi-project>\"\n"),
    );
    // The recipe says what detection cannot: odd's license.
    ctx.write(
        "recipes/odd.toml",
        "kind = \"command\"\ncommands = [[\"true\"]]\nlicense = \"LicenseRef-Odd\"\n",
    );
    let run = ctx.sultana(&["tarball", "--format", "gz", "--format", "xz"]).success();
    assert!(!run.stderr.contains("no supplier"), "{}", run.stderr);
    let dist = ctx.work.join("dist");
    let check = |args: &[&str], file: &str| {
        let out = Command::new("sbomcheck")
            .args(args)
            .arg(dist.join(file))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains("Conformant: True"),
            "sbomcheck {args:?} {file}:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    check(&["-c", "ntia"], "root-v1.0.spdx.json");
    for standard in ["ntia", "fsct3-min", "bsi"] {
        check(&["-s", "spdx3", "-c", standard], "root-v1.0.spdx3.json");
    }
    validate(&dist.join("root-v1.0.spdx.json"));
    let cdx = dist.join("root-v1.0.cdx.json");
    let script = "import sys\n\
        from cyclonedx.validation.json import JsonStrictValidator\n\
        from cyclonedx.schema import SchemaVersion\n\
        e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
        sys.exit(str(e) if e else 0)\n";
    let out = Command::new("python3").args(["-c", script]).arg(&cdx).output().unwrap();
    assert!(
        out.status.success(),
        "CycloneDX's schema refuses {}: {}",
        cdx.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // The same facts in each: suppliers, licenses, copyright, containment.
    let bom: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cdx).unwrap()).unwrap();
    assert_eq!(bom["metadata"]["component"]["name"], "root");
    assert_eq!(
        bom["metadata"]["component"]["licenses"][0]["expression"],
        "GPL-2.0-only"
    );
    assert_eq!(bom["metadata"]["manufacturer"]["name"], "Root Release Team");
    let odd_c = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "odd")
        .unwrap();
    assert_eq!(odd_c["licenses"][0]["expression"], "LicenseRef-Odd");
    assert_eq!(odd_c["copyright"], "Copyright 2020 Odd Person");
    let spdx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dist.join("root-v1.0.spdx.json")).unwrap()).unwrap();
    let blk_p = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "blk")
        .unwrap();
    assert_eq!(
        blk_p["supplier"],
        "Organization: xapi-project (https://github.com/xapi-project)"
    );
    assert_eq!(blk_p["licenseConcluded"], "BSD-2-Clause");
    assert_eq!(blk_p["copyrightText"], "Copyright (c) 2016, Citrix Systems, Inc.");
    assert!(ctx.read("dist/SHA256SUMS").contains("  root-v1.0.cdx.json\n"));
    // verify-tarball writes the same three.
    let verified = ctx.sultana(&["verify-tarball", "dist/root-v1.0.tar.xz"]).success();
    for file in ["root-v1.0.spdx.json", "root-v1.0.spdx3.json", "root-v1.0.cdx.json"] {
        assert!(
            verified.stderr.contains(&format!("{file}: the SBOM sultana writes")),
            "{file}: {}",
            verified.stderr
        );
    }

    // No supplier, and a recipe license the files contradict: both said.
    ctx.write("sultana.toml", &manifest(""));
    ctx.write(
        "recipes/blk.toml",
        "kind = \"command\"\ncommands = [[\"true\"]]\nlicense = \"MIT\"\n",
    );
    ctx.sultana(&["tarball"])
        .success()
        .stderr_has("`blk` has no supplier")
        .stderr_has("`blk`: its recipe's license `MIT` is not what its license files say (`BSD-2-Clause`)");
}
