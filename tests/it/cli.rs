//! `init`, `status` and the JSON contract.

use crate::support::*;

#[test]
fn init_writes_the_embedded_default_and_refuses_to_overwrite() {
    let ctx = TestContext::new();
    ctx.sultana(&["init"]).success().stderr_has("Created");
    let text = ctx.read("sultana.toml");
    assert!(text.contains("https://xenbits.xen.org/git-http/xen.git"));
    assert!(text.contains("revision = \"v4.0.8\""));
    ctx.sultana(&["init"]).code(2).stderr_has("already exists");
    ctx.sultana(&["init", "--force", "--from", "xen-unstable"]).success();
    ctx.sultana(&["init", "--from", "nonsense"])
        .code(2)
        .stderr_has("neither a shipped manifest");

    let custom = ctx.root.join("custom.toml");
    std::fs::write(
        &custom,
        "[components.a]\nurl = \"https://h/a.git\"\nrevision = \"main\"\n",
    )
    .unwrap();
    ctx.sultana(&["init", "--force", "--from", custom.to_str().unwrap()])
        .success();
    assert!(ctx.read("sultana.toml").contains("https://h/a.git"));
    std::fs::write(&custom, "[components.a]\nurl = \"ext::sh\"\nrevision = \"main\"\n").unwrap();
    ctx.sultana(&["init", "--force", "--from", custom.to_str().unwrap()])
        .code(2);
    assert!(
        ctx.read("sultana.toml").contains("https://h/a.git"),
        "a bad manifest is not written"
    );
}

#[test]
fn without_a_manifest_status_refuses_and_deps_uses_the_default() {
    let ctx = TestContext::new();
    ctx.sultana(&["status", "--json"])
        .code(2)
        .stderr_has("could not find sultana.toml");
    // A command that works anywhere reads the embedded default manifest.
    let json = ctx.sultana(&["deps", "--json"]).success().json();
    let packages: Vec<&str> = json["debian"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    for package in ["libaio-dev", "uuid-dev"] {
        assert!(packages.contains(&package), "blktap's build dependencies: {packages:?}");
    }
}

#[test]
fn status_reports_pins_checkouts_and_drift() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let pinned = up.head();
    ctx.write("sultana.toml", &manifest(&[("up", &up.url(), "master")]));
    ctx.sultana(&["fetch"]).success();
    let json = ctx.sultana(&["status", "--json"]).success().json();
    let row = &json["components"][0];
    assert_eq!(row["state"], "clean");
    assert_eq!(row["locked_commit"], pinned.to_string());
    assert_eq!(row["checkout_commit"], pinned.to_string());
    assert_eq!(row["ahead"], 0);

    ctx.write("up/new-file", "x");
    let run = ctx
        .sultana(&["status"])
        .success()
        .stdout_has("dirty: 1 untracked file(s)");
    assert!(run.stdout.starts_with("COMPONENT"), "{}", run.stdout);
    // -C runs in another folder.
    let elsewhere = ctx.dir("elsewhere");
    let run = ctx
        .sultana_in(&elsewhere, &["-C", ctx.work.to_str().unwrap(), "status", "--json"])
        .success();
    assert_eq!(run.json()["components"][0]["name"], "up");
    // A sub-folder of the workspace finds sultana.toml upwards.
    let run = ctx.sultana_in(&ctx.work.join("up"), &["status", "--json"]).success();
    assert_eq!(run.json()["components"][0]["name"], "up");
}

#[test]
fn errors_are_json_too_with_json() {
    let ctx = TestContext::new();
    ctx.write("sultana.toml", "[components.x]\nurl = \"ext::sh\"\nrevision = \"m\"\n");
    let run = ctx.sultana(&["fetch", "--json"]).code(2);
    let json = run.json();
    assert_eq!(json["error"]["exit_code"], 2);
    assert!(
        json["error"]["message"].as_str().unwrap().contains("sultana.toml:2:7"),
        "{json}"
    );
}
