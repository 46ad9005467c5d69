//! How a workspace is found, and what happens where there is none.

use crate::support::*;

/// Every file and folder below `dir`.
fn contents(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn outside_a_workspace_commands_refuse_and_touch_nothing() {
    let ctx = TestContext::new();
    let empty = ctx.root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let refused: &[&[&str]] = &[
        &["status"],
        &["fetch"],
        &["update"],
        &["lock"],
        &["build"],
        &["install"],
        &["clean"],
        &["distclean"],
        &["tarball"],
        &["gate", "blktap"],
        &["bisect", "blktap", "--test", "vhd"],
        &["ci", "gitlab", "blktap"],
        &["osstest", "flight", "blktap"],
        &["config-mk", "export"],
    ];
    for args in refused {
        let run = ctx.sultana_with(&empty, "022", &[], args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("could not find sultana.toml in") && run.stderr.contains("sultana init"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(
            contents(&empty),
            Vec::<std::path::PathBuf>::new(),
            "{args:?} created files"
        );
        assert_eq!(
            contents(&ctx.cache),
            Vec::<std::path::PathBuf>::new(),
            "{args:?} wrote to the cache"
        );
    }
    // These work anywhere.
    ctx.sultana_with(&empty, "022", &[], &["detect"]).success();
    ctx.sultana_with(&empty, "022", &[], &["deps"]).success();
    ctx.sultana_with(&empty, "022", &[], &["completions", "bash"]).success();
    ctx.sultana_with(&empty, "022", &[], &["init"]).success();
    assert!(empty.join("sultana.toml").is_file());
    // Below a workspace, its manifest is found.
    let below = empty.join("a/b");
    std::fs::create_dir_all(&below).unwrap();
    ctx.sultana_with(&below, "022", &[], &["status", "--json"]).success();
}
