//! The flight history kept in bounds: the newest flights whole, older ones
//! only while classification reads them, leftovers of a killed prune gone,
//! nothing outside the history touched.

use crate::gate::{commit, finding, fixture, OFF_BY_ONE};

use crate::support::*;

fn flights(ctx: &TestContext) -> Vec<i64> {
    let run = ctx.sultana(&["flights", "--json"]).success();
    run.json()["flights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flight"].as_i64().unwrap())
        .collect()
}

fn folders(ctx: &TestContext) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ctx.work.join(".sultana/flights"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
#[cfg_attr(
    not(have_fixtures),
    ignore = "needs the fixture toolchain (autoreconf, cargo, gcc, make, qemu-img, qemu-io)"
)]
fn the_flight_history_keeps_its_newest_flights_and_what_judges_the_baseline() {
    let ctx = fixture();
    ctx.edit("sultana.toml", "[workspace]\n", "[workspace]\nkeep_flights = 2\n");
    ctx.sultana(&["gate", "libfix", "--always"]).success();
    let mut pruned = Vec::new();
    for i in 0..3 {
        commit(&ctx, "libfix", &[("NEWS", &format!("news {i}\n"))], "libfix: news");
        let run = ctx.sultana(&["gate", "libfix", "--json"]).success();
        pruned.push(run.json()["pruned"]["removed"].clone());
    }
    // Flight 1 tested the pins: every gate's baseline, kept as evidence.
    assert_eq!(
        pruned,
        [serde_json::json!([]), serde_json::json!([]), serde_json::json!([2])]
    );
    assert_eq!(flights(&ctx), [4, 3, 1]);
    assert_eq!(folders(&ctx), ["1", "3", "4"]);

    // A killed prune's folder without a row goes; a symlink planted as a
    // flight goes alone; what is not a flight stays.
    let outside = ctx.dir("outside");
    std::fs::write(outside.join("keep.txt"), "mine\n").unwrap();
    std::fs::create_dir_all(ctx.work.join(".sultana/flights/77/test-x")).unwrap();
    std::fs::write(ctx.work.join(".sultana/flights/77/test-x/log"), "old\n").unwrap();
    std::os::unix::fs::symlink(&outside, ctx.work.join(".sultana/flights/78")).unwrap();
    std::fs::create_dir_all(ctx.work.join(".sultana/flights/notes")).unwrap();
    let run = ctx
        .sultana(&["flights", "prune", "--keep", "1", "--json"])
        .success()
        .stderr_has("Pruned 1 flight(s) from the history");
    assert_eq!(run.json()["pruned"]["removed"], serde_json::json!([3]));
    assert_eq!(run.json()["pruned"]["evidence"], 1);
    assert_eq!(folders(&ctx), ["1", "4", "notes"]);
    assert_eq!(std::fs::read_to_string(outside.join("keep.txt")).unwrap(), "mine\n");

    // What is left still judges: a regression is found against flight 1
    // without testing the baseline again.
    commit(&ctx, "libfix", &[("fix.c", OFF_BY_ONE)], "libfix: off by one");
    let run = ctx.sultana(&["gate", "libfix", "--json"]).code(1);
    let gate = &run.json()["gate"];
    assert!(gate["baseline_report"].is_null(), "{gate}");
    let regressions: Vec<_> = gate["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["class"] == "regression")
        .collect();
    assert!(!regressions.is_empty(), "{gate}");
    assert_eq!(regressions[0]["reference"], 1);
    let job = regressions[0]["job"].as_str().unwrap();
    assert_eq!(finding(&gate["report"], job)["class"], "regression");
}

#[test]
fn bad_retention_is_refused_with_its_place() {
    let ctx = TestContext::new();
    ctx.write(
        "sultana.toml",
        "[workspace]\nkeep_flights = 0\n\n[components.a]\nurl = \"https://example.org/a\"\nrevision = \"master\"\n",
    );
    ctx.sultana(&["flights", "prune"])
        .code(2)
        .stderr_has("sultana.toml:2:16")
        .stderr_has("keep_flights = 0 keeps nothing");
    ctx.sultana(&["flights", "prune", "--keep", "0"]).code(2);
    ctx.edit("sultana.toml", "keep_flights = 0", "keep_flights = 3");
    ctx.sultana(&["flights"]).success().stdout_has("no flights yet");
}
