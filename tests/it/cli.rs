//! `init`, `status` and the JSON contract.

use crate::support::*;

#[test]
fn init_writes_the_embedded_default_and_refuses_to_overwrite() {
    let ctx = TestContext::new();
    ctx.sultana(&["init"]).success().stderr_has("Created");
    let text = ctx.read("sultana.toml");
    assert!(text.contains("https://xenbits.xen.org/git-http/xen.git"));
    assert!(text.contains("revision = \"v4.0.8\""));
    // What sultana makes here stays out of git; a .gitignore of one's own stays.
    let ignore = ctx.read(".gitignore");
    for line in [
        "/.sultana/",
        "/build/",
        "/dist/",
        "/sultana.local.toml",
        "/xen/",
        "/blktap/",
    ] {
        assert!(ignore.lines().any(|l| l == line), "{line} in {ignore}");
    }
    assert!(!ignore.contains("sultana.lock"), "the lock is committed");
    ctx.write(".gitignore", "mine\n");
    ctx.sultana(&["init", "--force"]).success();
    assert_eq!(ctx.read(".gitignore"), "mine\n");
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

    // `deps COMP`: that component's and what it builds on, nothing else.
    let packages = |args: &[&str]| -> Vec<String> {
        let json = ctx.sultana(args).success().json();
        json["debian"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    };
    let xen = packages(&["deps", "--json", "xen"]);
    assert!(xen.contains(&"acpica-tools".to_string()), "{xen:?}");
    assert!(
        !xen.contains(&"libcmocka-dev".to_string()),
        "blktap's, not xen's: {xen:?}"
    );
    let blktap = packages(&["deps", "--json", "blktap"]);
    // xen's too: blktap builds on it.
    assert!(
        blktap.contains(&"libcmocka-dev".to_string()) && blktap.contains(&"acpica-tools".to_string()),
        "{blktap:?}"
    );
    ctx.sultana(&["deps", "blktp"])
        .code(2)
        .stderr_has("did you mean `blktap`?");
}

/// On a terminal, status lines share the screen with progress bars; the
/// run's last line still ends with a newline (a shell prompt would
/// otherwise overwrite it), and no bar is drawn full before it knows its
/// total (0/0).
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_gcc, have_make, have_script)),
    ignore = "needs autoreconf, gcc, make, script"
)]
fn on_a_terminal_the_last_line_ends_and_no_bar_shows_nothing_as_full() {
    require("script", "util-linux's script gives the run a terminal");
    for tool in ["autoreconf", "make", "gcc"] {
        require(tool, "building the autotools fixture");
    }
    let ctx = TestContext::new();
    ctx.fixture_workspace();
    for args in [&["fetch"][..], &["build", "libfix"][..], &["tarball"][..]] {
        let run = ctx.sultana_on_terminal(args).success();
        let screen = run.stdout.replace('\r', "");
        assert!(screen.contains("\x1b[1;32m"), "{args:?} ran on a terminal: {screen:?}");
        let last = screen
            .trim_end_matches('\n')
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        assert!(
            last.contains("Finished") || last.contains("Wrote"),
            "{args:?}: {screen:?}"
        );
        assert!(
            screen.ends_with(&format!("{last}\n")) && last.trim_end() == last,
            "{args:?}: the last line ends with a newline, not padding: {screen:?}"
        );
        assert!(!screen.contains("0/0"), "{args:?}: a bar full at 0/0: {screen:?}");
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

#[test]
fn status_fits_80_columns_and_an_empty_store_is_not_full() {
    let ctx = TestContext::new();
    let up = ctx.upstream("up");
    let pinned = up.head().to_string();
    let missing = format!("file://{}", ctx.upstreams.join("never-made").display());
    ctx.write(
        "sultana.toml",
        &manifest(&[("pinned", &up.url(), &pinned), ("gone", &missing, "master")]),
    );
    let _ = ctx.sultana(&["fetch"]);
    let run = ctx.sultana(&["status"]).success();
    for line in run.stdout.lines() {
        assert!(line.chars().count() <= 80, "{} columns: {line}", line.chars().count());
    }
    let gone = run.stdout.lines().find(|l| l.starts_with("gone")).unwrap();
    assert!(gone.contains(" empty "), "{gone}");
    let pinned_row = run.stdout.lines().find(|l| l.starts_with("pinned")).unwrap();
    assert_eq!(
        pinned_row.matches(&pinned[..12]).count(),
        3,
        "revision, pin and checkout once each: {pinned_row}"
    );
}
