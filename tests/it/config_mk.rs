//! Xen's make variables in and out: Config.mk import, export (intents and
//! locked commits), the environment in the make habit, shipped manifests.

use crate::support::*;

/// A Config.mk with every construct Xen's has used, pinning local upstreams.
fn config_mk(qemu: &str, seabios: &str, minios: &str, trad: &str) -> String {
    format!(
        "# -*- mode: Makefile; -*-\n\
         ifeq ($(filter /%,$(XEN_ROOT)),)\n\
         $(error XEN_ROOT must be absolute)\n\
         endif\n\
         -include $(XEN_ROOT)/.config\n\
         define cc-option\n\
         $(shell true)\n\
         endef\n\
         LOCAL := {local}\n\
         QEMU_UPSTREAM_INTREE ?= $(XEN_ROOT)/tools/qemu-xen\n\
         # Handle legacy options\n\
         ifneq (,$(SEABIOS_UPSTREAM_TAG))\n\
         SEABIOS_UPSTREAM_REVISION ?= $(SEABIOS_UPSTREAM_TAG)\n\
         endif\n\
         ifneq (,$(QEMU_REMOTE))\n\
         QEMU_TRADITIONAL_URL ?= $(QEMU_REMOTE)\n\
         endif\n\
         ifneq (,$(QEMU_TAG))\n\
         QEMU_TRADITIONAL_REVISION ?= $(QEMU_TAG)\n\
         endif\n\
         QEMU_UPSTREAM_URL ?= file://$(LOCAL)/qemu\n\
         QEMU_UPSTREAM_REVISION ?= \\\n    master\n\
         MINIOS_UPSTREAM_URL = file://${{LOCAL}}/minios\n\
         MINIOS_UPSTREAM_REVISION ?= {minios}  # pinned\n\
         SEABIOS_UPSTREAM_URL ?= file://$(LOCAL)/seabios\n\
         SEABIOS_UPSTREAM_TAG = {seabios}\n\
         QEMU_REMOTE = file://$(LOCAL)/trad\n\
         QEMU_TAG = {trad}\n\
         ifeq ($(QEMU_UPSTREAM_REVISION),master)\n\
         QEMU_UPSTREAM_REVISION = {qemu}\n\
         else\n\
         QEMU_UPSTREAM_REVISION = wrong\n\
         endif\n",
        local = "@LOCAL@"
    )
}

#[test]
fn import_then_export_gives_back_every_pin() {
    let ctx = TestContext::new();
    let qemu = ctx.upstream("qemu");
    let seabios = ctx.upstream("seabios");
    seabios.tag("rel-1.16.3", true);
    let minios = ctx.upstream("minios");
    let trad = ctx.upstream("trad");
    trad.tag("xen-4.20.0", false);
    let xen = ctx.upstream("xen");
    let text = config_mk(
        &qemu.head().to_string(),
        "rel-1.16.3",
        &minios.head().to_string(),
        "xen-4.20.0",
    )
    .replace("@LOCAL@", &ctx.upstreams.display().to_string());
    xen.commit(&[("Config.mk", &text)], "Config.mk");
    xen.repo
        .remote("origin", &format!("file://{}", ctx.upstreams.join("xen").display()))
        .unwrap();

    let run = ctx
        .sultana(&["config-mk", "import", "../upstreams/xen/Config.mk", "--json"])
        .success()
        .stderr_has("read the legacy")
        .stderr_lacks("error");
    assert_eq!(run.json()["pins"].as_array().unwrap().len(), 4, "{}", run.stdout);
    let manifest = ctx.read("sultana.toml");
    assert!(
        manifest.contains("[components.xen]")
            && manifest.contains("depends = [\"qemu-xen\", \"seabios\", \"mini-os\"]"),
        "{manifest}"
    );
    ctx.sultana(&["config-mk", "import", "../upstreams/xen/Config.mk"])
        .code(2)
        .stderr_has("already exists");

    // Every pair comes back exactly.
    let exported = ctx.sultana(&["config-mk", "export"]).success().stdout;
    let url = |name: &str| format!("file://{}/{name}", ctx.upstreams.display());
    for line in [
        format!("QEMU_UPSTREAM_URL ?= {}", url("qemu")),
        format!("QEMU_UPSTREAM_REVISION ?= {}", qemu.head()),
        format!("QEMU_TRADITIONAL_URL ?= {}", url("trad")),
        "QEMU_TRADITIONAL_REVISION ?= xen-4.20.0".to_string(),
        format!("SEABIOS_UPSTREAM_URL ?= {}", url("seabios")),
        "SEABIOS_UPSTREAM_REVISION ?= rel-1.16.3".to_string(),
        format!("MINIOS_UPSTREAM_URL ?= {}", url("minios")),
        format!("MINIOS_UPSTREAM_REVISION ?= {}", minios.head()),
    ] {
        assert!(exported.lines().any(|l| l == line), "missing `{line}` in:\n{exported}");
    }

    // --locked: the resolved commits, what osstest writes into .config.
    ctx.sultana(&["--locked", "config-mk", "export"])
        .code(2)
        .stderr_has("no current pin in sultana.lock");
    ctx.sultana(&["lock"]).success();
    let locked = ctx.sultana(&["--locked", "config-mk", "export"]).success().stdout;
    let seabios_tagged = seabios.head().to_string();
    assert!(
        locked.contains(&format!("SEABIOS_UPSTREAM_REVISION ?= {seabios_tagged}\n")),
        "{locked}"
    );
    assert!(
        locked.contains(&format!("QEMU_UPSTREAM_REVISION ?= {}\n", qemu.head())),
        "{locked}"
    );
    assert!(
        locked.contains("# QEMU_TRADITIONAL_*: qemu-xen-traditional is disabled"),
        "{locked}"
    );
    // Once fetched with --all-like intent (enabled on the command line), it is pinned too.
    ctx.sultana(&["--set", "qemu-xen-traditional.enabled=true", "lock"])
        .success();
    let locked = ctx
        .sultana(&[
            "--set",
            "qemu-xen-traditional.enabled=true",
            "--locked",
            "config-mk",
            "export",
        ])
        .success()
        .stdout;
    assert!(
        locked.contains(&format!("QEMU_TRADITIONAL_REVISION ?= {}\n", trad.head())),
        "{locked}"
    );
}

#[test]
fn make_variables_in_the_environment_override_like_set() {
    let ctx = TestContext::new();
    let qemu = ctx.upstream("qemu");
    let first = qemu.head();
    qemu.commit(&[("a", "2")], "second");
    ctx.write(
        "sultana.toml",
        &format!(
            "[components.qemu-xen]\nurl = \"{}\"\nrevision = \"master\"\n",
            qemu.url()
        ),
    );
    let output = ctx
        .command(&ctx.work, &["fetch"])
        .env("QEMU_UPSTREAM_REVISION", first.to_string())
        .env("BLKTAP_UPSTREAM_REVISION", "not-in-this-manifest")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("QEMU_UPSTREAM_REVISION from the environment"),
        "{stderr}"
    );
    assert_eq!(ctx.head("qemu-xen"), first);
    // --set wins over the environment; a bad value is refused like --set's.
    let output = ctx
        .command(&ctx.work, &["--set", "qemu-xen.revision=master", "status", "--json"])
        .env("QEMU_UPSTREAM_REVISION", first.to_string())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["components"][0]["revision"], "master");
    let output = ctx
        .command(&ctx.work, &["status"])
        .env("QEMU_UPSTREAM_URL", "ext::sh -c touch% /tmp/pwned")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("QEMU_UPSTREAM_URL in the environment"));
}

#[test]
fn shipped_release_manifests_and_bad_files() {
    let ctx = TestContext::new();
    ctx.sultana(&["init", "--from", "xen-4.21"]).success();
    let text = ctx.read("sultana.toml");
    assert!(
        text.contains("revision = \"qemu-xen-4.21.0\"") && text.contains("revision = \"rel-1.16.3\""),
        "{text}"
    );
    let exported = ctx.sultana(&["config-mk", "export"]).success().stdout;
    assert!(
        exported.contains("MINIOS_UPSTREAM_REVISION ?= xen-RELEASE-4.21.0"),
        "{exported}"
    );
    let other = ctx.dir("old");
    ctx.sultana_in(&other, &["init", "--from", "xen-4.20"]).success();
    assert!(std::fs::read_to_string(other.join("sultana.toml"))
        .unwrap()
        .contains("[components.qemu-xen-traditional]"));

    ctx.write("empty.mk", "CC = gcc\n");
    ctx.sultana(&["config-mk", "import", "empty.mk", "--out", "x.toml"])
        .code(2)
        .stderr_has("sets no *_UPSTREAM_URL");
    ctx.write("broken.mk", "ifeq (a,b)\nQEMU_UPSTREAM_URL = x\n");
    ctx.sultana(&["config-mk", "import", "broken.mk", "--out", "x.toml"])
        .code(2)
        .stderr_has("broken.mk: 1 `if` block(s) without `endif`");
    ctx.write(
        "hostile.mk",
        "QEMU_UPSTREAM_URL = ext::sh -c evil\nQEMU_UPSTREAM_REVISION = --upload-pack=evil\n",
    );
    ctx.sultana(&["config-mk", "import", "hostile.mk", "--out", "x.toml"])
        .code(2)
        .stderr_has("transport");
    assert!(!ctx.work.join("x.toml").exists(), "nothing written");
}
