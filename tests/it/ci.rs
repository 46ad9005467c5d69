//! The gate on CI engines: the GitLab pipeline (golden output, valid YAML,
//! and a real run under gitlab-ci-local, green and red), the osstest job
//! lines, osstest's host-side script, and the shipped template.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// The fixture workspace with a new libfix commit upstream: `(workspace,
/// candidate)`.
/// What the gated fixture's builds need.
fn fixture_tools() {
    require("autoreconf", "the autotools fixture");
    require("make", "the fixture builds");
    require("gcc", "the fixture builds");
}

fn gated_fixture(ctx: &TestContext) -> String {
    ctx.fixture_workspace();
    ctx.sultana(&["fetch", "-q"]).success();
    let clock = sultana::fixtures::Clock::default();
    sultana::fixtures::commit(
        &ctx.upstreams.join("libfix"),
        &[("NEWS", "a change\n".to_string(), false)],
        "libfix: news",
        &clock,
    )
    .unwrap()
    .to_string()
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/golden").join(name);
    if std::env::var_os("SULTANA_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs (SULTANA_BLESS=1 rewrites it):\n{actual}",
        path.display()
    );
}

#[test]
fn the_gitlab_pipeline_is_stable_valid_and_follows_the_dependencies() {
    let ctx = TestContext::new();
    let candidate = gated_fixture(&ctx);
    let yaml = ctx.sultana(&["ci", "gitlab", "libfix"]).success().stdout;
    golden("gitlab-libfix.yml", &yaml);
    assert_eq!(
        ctx.sultana(&["ci", "gitlab", "libfix"]).success().stdout,
        yaml,
        "stable"
    );

    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    let map = doc.as_mapping().unwrap();
    assert_eq!(doc["variables"]["SULTANA_CANDIDATE"].as_str(), Some(candidate.as_str()));
    let stages: Vec<&str> = doc["stages"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let jobs: Vec<&str> = map
        .keys()
        .map(|k| k.as_str().unwrap())
        .filter(|k| !["stages", "variables", "cache"].contains(k))
        .collect();
    assert_eq!(jobs.len(), 2 * 8 + 1, "{jobs:?}");
    for job in &jobs {
        let spec = &doc[*job];
        assert!(stages.contains(&spec["stage"].as_str().unwrap()), "{job}");
        assert!(spec["script"].as_sequence().is_some_and(|s| !s.is_empty()), "{job}");
        for need in spec["needs"].as_sequence().unwrap() {
            assert!(jobs.contains(&need.as_str().unwrap()), "{job} needs {need:?}");
        }
    }
    let needs = |job: &str| -> Vec<String> {
        doc[job]["needs"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(needs("build-root"), ["build-libfix", "build-tool", "build-rusty"]);
    assert_eq!(needs("baseline:test-libfix-check"), ["baseline:build-libfix"]);
    assert_eq!(needs("gate").len(), 16);
    assert_eq!(
        doc["test-libfix-check"]["artifacts"]["reports"]["junit"],
        ".sultana/ci/junit/candidate-test-libfix-check.xml"
    );

    // With sultana from a parent pipeline, every job fetches it.
    let child = ctx
        .sultana(&["ci", "gitlab", "libfix", "--parent-job", "sultana:build"])
        .success()
        .stdout;
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&child).unwrap();
    assert_eq!(doc["build-libfix"]["needs"][0]["job"], "sultana:build");
    assert_eq!(doc["gate"]["needs"][0]["pipeline"], "$PARENT_PIPELINE_ID");
}

#[test]
fn the_osstest_flight_lines() {
    let ctx = TestContext::new();
    let candidate = gated_fixture(&ctx);
    let lines = ctx
        .sultana(&["osstest", "flight", "libfix", "--flight", "4242"])
        .success()
        .stdout
        .replace(&ctx.upstreams.display().to_string(), "@UPSTREAMS@");
    golden("osstest-libfix.txt", &lines);
    let jobs: Vec<&str> = lines.lines().filter(|l| l.starts_with("./cs-job-create")).collect();
    // The gated tree's build and its tests only: osstest builds Xen and the
    // rest with its own jobs and recipes.
    assert_eq!(jobs.len(), 3, "{lines}");
    for line in &jobs {
        assert!(line.starts_with("./cs-job-create 4242 "), "{line}");
        assert!(line.contains(&format!(" revision_libfix={candidate}")), "{line}");
        assert!(line.contains(" tree_libfix=file://@UPSTREAMS@/libfix"), "{line}");
        assert!(!line.contains("root"), "no job of what depends on it: {line}");
    }
    let build = jobs
        .iter()
        .find(|l| l.contains(" build-amd64-libfix build-libfix "))
        .unwrap();
    assert!(
        build.contains(" host_hostflags=share-build-bookworm-amd64,arch-amd64,suite-bookworm,purpose-build"),
        "{build}"
    );
    // As make-flight names test jobs, with the runvars its host steps read.
    let check = jobs
        .iter()
        .find(|l| l.contains(" test-amd64-amd64-libfix-check test-libfix "))
        .unwrap();
    for var in [
        " libfixbuildjob=build-amd64-libfix",
        " sultana_job=test-libfix-check",
        " toolstack=xl",
        " arch=amd64",
        " kernkind=pvops",
        " buildjob=build-amd64",
        " xenbuildjob=build-amd64",
        " kernbuildjob=build-amd64-pvops",
        " all_hostflags=arch-amd64,arch-xen-amd64,suite-bookworm,purpose-test",
    ] {
        assert!(check.contains(var), "{var} in {check}");
    }
}

/// The make-flight fragment and `sultana osstest flight` name the same jobs
/// with the same recipes: run the fragment with osstest's job creation
/// replaced by an echo.
#[test]
fn the_make_flight_fragment_and_the_generator_name_the_same_jobs() {
    let ctx = TestContext::new();
    gated_fixture(&ctx);
    let fragment = Path::new(env!("CARGO_MANIFEST_DIR")).join("osstest/make-flight.blktap");
    // osstest's ./cs-job-create becomes an echo; job_create_test (mfi-common)
    // passes its job and recipe on to it, as osstest's does.
    let fragment = std::fs::read_to_string(&fragment)
        .unwrap()
        .replace("./cs-job-create", "cs_job_create");
    let script = format!(
        "set -e\n\
         cs_job_create() {{ echo \"$2 $3\"; }}\n\
         job_create_test() {{ cs_job_create \"$flight\" \"$1\" \"$2\"; }}\n\
         flight=1 arch=amd64 xenarch=amd64 dom0arch=amd64 kern= bfi= build_hostflags=x most_hostflags=y\n\
         {fragment}\n\
         blktap_build_job\n\
         do_blktap_tests\n"
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&ctx.work)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let mut from_fragment: Vec<&str> = text.lines().collect();
    from_fragment.sort();
    assert_eq!(
        from_fragment,
        [
            "build-amd64-blktap build-blktap",
            "test-amd64-amd64-blktap-mock-tests test-blktap",
            "test-amd64-amd64-blktap-tapdisk-nbd test-blktap",
            "test-amd64-amd64-blktap-tapdisk-xen test-blktap",
            "test-amd64-amd64-blktap-vhd test-blktap",
        ]
    );
    // The generator on a workspace gating blktap names them alike.
    let shipped = sultana::recipe::Recipe::shipped("blktap").unwrap().unwrap();
    let tests: Vec<String> = shipped.tests.iter().map(|t| t.name.clone()).collect();
    assert_eq!(
        tests,
        ["mock-tests", "vhd", "tapdisk-nbd", "tapdisk-xen"],
        "the fragment lists blktap's tests"
    );
}

/// osstest's host-side script, on real builds: exit codes as osstest's
/// steps read them.
#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_gcc, have_make)),
    ignore = "needs autoreconf, gcc, make"
)]
fn the_osstest_host_script_maps_results_to_exit_codes() {
    fixture_tools();
    let ctx = TestContext::new();
    let candidate = gated_fixture(&ctx);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("osstest/sultana-job");
    let run = |args: &[&str]| -> i32 {
        let mut cmd = ctx.command(&ctx.work, &[]);
        let envs: Vec<_> = cmd
            .get_envs()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
            .collect();
        let mut sh = Command::new("sh");
        sh.arg(&script).args(args).current_dir(&ctx.work).env_clear();
        for (k, v) in envs {
            sh.env(k, v);
        }
        sh.env("SULTANA", env!("CARGO_BIN_EXE_sultana"));
        let _ = &mut cmd;
        let out = sh.output().unwrap();
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        out.status.code().unwrap_or(-1)
    };
    assert_eq!(run(&["lock"]), 0);
    assert_eq!(run(&["job", "libfix", "build-libfix", &candidate]), 0);
    assert_eq!(run(&["job", "libfix", "test-libfix-check", &candidate]), 0);
    // A test whose build did not run here is blocked: osstest's skip.
    assert_eq!(run(&["job", "libfix", "test-root-app", &candidate]), 77);
    assert_eq!(run(&["job", "libfix", "no-such-job", &candidate]), 2);
    assert_eq!(run(&["bogus"]), 2);
    // A sultana that fails is no answer, and no earlier result stands for one.
    let failing = Command::new("sh")
        .arg(&script)
        .args(["revision", "libfix"])
        .current_dir(&ctx.work)
        .env("SULTANA", "/bin/false")
        .output()
        .unwrap();
    assert_eq!(failing.status.code(), Some(2), "{failing:?}");
    assert!(failing.stdout.is_empty());
    let stale = Command::new("sh")
        .arg(&script)
        .args(["job", "libfix", "test-libfix-check", &candidate])
        .current_dir(&ctx.work)
        .env("SULTANA", "/bin/false")
        .output()
        .unwrap();
    assert_eq!(stale.status.code(), Some(1), "the earlier result is gone: {stale:?}");
}

#[test]
fn the_shipped_template_is_valid_and_its_commands_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("ci/gitlab-ci.yml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(
        doc["sultana:gate"]["trigger"]["include"][0]["artifact"],
        "gate-pipeline.yml"
    );
    assert_eq!(doc["sultana:gate"]["trigger"]["strategy"], "depend");
    for var in [
        "SULTANA_COMPONENT",
        "SULTANA_CANDIDATE",
        "SULTANA_PUSH",
        "SULTANA_PUSH_REF",
        "SULTANA_ALLOW",
    ] {
        assert!(doc["variables"].get(var).is_some(), "{var}");
        assert!(text.contains(&format!("#   {var}")), "{var} is documented");
    }
    assert!(sultana::accepts(&[
        "--locked",
        "ci",
        "gitlab",
        "blktap",
        "--parent-job",
        "sultana:build",
        "--candidate",
        "master"
    ])
    .is_ok());
    assert!(sultana::accepts(&[
        "--locked",
        "gate",
        "blktap",
        "--candidate",
        "x",
        "--results",
        ".sultana/ci",
        "--push",
        "--push-ref",
        "origin:r",
        "--allow",
        "a"
    ])
    .is_ok());
}

fn gitlab_ci_local(ctx: &TestContext, dir: &Path) -> (bool, String) {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_sultana"));
    let mut cmd = Command::new("gitlab-ci-local");
    cmd.args(["--shell-isolation", "--variable"])
        .arg(format!("SULTANA={}", exe.display()))
        .current_dir(dir)
        .env("HOME", &ctx.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("CI");
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn git(dir: &Path, args: &[&str], home: &Path) {
    git_stdout(dir, home, args);
}

/// For each job, the lines where it started and finished; every job starts
/// after all it needs have finished.
fn check_order(output: &str, yaml: &str) {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
    let line_of = |job: &str, what: &str| -> usize {
        output
            .lines()
            .position(|l| l.starts_with(job) && l[job.len()..].starts_with(' ') && l.contains(what))
            .unwrap_or_else(|| panic!("{job} never {what}:\n{output}"))
    };
    for (job, spec) in doc.as_mapping().unwrap() {
        let job = job.as_str().unwrap();
        let Some(needs) = spec.get("needs").and_then(|n| n.as_sequence()) else {
            continue;
        };
        let started = line_of(job, "starting shell");
        for need in needs {
            let need = need.as_str().unwrap();
            // (A failed job's "finished" line comes at the end; its
            // artifacts are exported as it ends.)
            assert!(
                line_of(need, "exported artifacts") < started,
                "{job} started before {need} finished:\n{output}"
            );
        }
    }
}

#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_gitlab_ci_local, have_qemu_img, have_rsync)),
    ignore = "needs autoreconf, gitlab-ci-local, qemu-img, rsync"
)]
fn the_pipeline_runs_under_gitlab_ci_local_green_then_red() {
    require(
        "gitlab-ci-local",
        "running the generated pipeline (npm install -g gitlab-ci-local)",
    );
    require("rsync", "gitlab-ci-local's shell isolation");
    require("autoreconf", "the autotools fixture");
    require("qemu-img", "the fixture's disk test");
    let ctx = TestContext::new();
    gated_fixture(&ctx);
    // The gate's project: the manifest, the lock, the recipes, the pipeline.
    ctx.write(
        ".gitignore",
        "/.sultana/\n/.sultana-cache/\n/.gitlab-ci-local/\n/dist/\n/build/\n/libfix/\n/tool/\n/rusty/\n/root/\n",
    );
    let yaml = ctx.sultana(&["ci", "gitlab", "libfix"]).success().stdout;
    ctx.write(".gitlab-ci.yml", &yaml);
    git(&ctx.work, &["init", "-q", "-b", "main", "."], &ctx.home);
    git(
        &ctx.work,
        &["remote", "add", "origin", "https://gitlab.example/xen/gate.git"],
        &ctx.home,
    );
    git(&ctx.work, &["add", "-A"], &ctx.home);
    git(&ctx.work, &["commit", "-q", "-m", "gate libfix"], &ctx.home);

    let (ok, output) = gitlab_ci_local(&ctx, &ctx.work);
    assert!(ok, "the pipeline failed:\n{output}");
    check_order(&output, &yaml);
    assert!(output.contains("PASS  gate"), "{output}");
    let artifacts = ctx.work.join(".gitlab-ci-local/artifacts");
    let gate_junit = artifacts.join("gate/.sultana/ci/junit/gate.xml");
    let junit =
        std::fs::read_to_string(&gate_junit).unwrap_or_else(|e| panic!("{}: {e}\n{output}", gate_junit.display()));
    assert!(junit.contains("name=\"test-libfix-disk\""), "{junit}");
    assert!(artifacts
        .join("test-libfix-check/.sultana/ci/junit/candidate-test-libfix-check.xml")
        .is_file());
    assert!(artifacts
        .join("build-libfix/.sultana/ci-area/candidate/dist/libfix/usr/local/lib/libfix.a")
        .is_file());
    assert!(std::fs::read_to_string(artifacts.join("gate/.sultana/ci/summary"))
        .unwrap()
        .contains("perfect"));

    // A candidate that breaks a test turns the pipeline red at the gate.
    let clock = sultana::fixtures::Clock::default();
    sultana::fixtures::commit(
        &ctx.upstreams.join("libfix"),
        &[(
            "fix.c",
            "#include \"fix.h\"\nint fix_add(int a, int b) { return a + b + 1; }\n".to_string(),
            false,
        )],
        "libfix: off by one",
        &clock,
    )
    .unwrap();
    let yaml = ctx.sultana(&["ci", "gitlab", "libfix"]).success().stdout;
    ctx.write(".gitlab-ci.yml", &yaml);
    git(
        &ctx.work,
        &["commit", "-q", "-am", "gate the next candidate"],
        &ctx.home,
    );
    std::fs::remove_dir_all(ctx.work.join(".gitlab-ci-local")).unwrap();
    let (ok, output) = gitlab_ci_local(&ctx, &ctx.work);
    assert!(!ok, "the pipeline passed a regression:\n{output}");
    assert!(output.contains("FAIL  gate"), "{output}");
    assert!(output.contains("REGR. vs."), "{output}");
    check_order(&output, &yaml);
}

#[test]
#[cfg_attr(
    not(all(have_autoreconf, have_gcc, have_make)),
    ignore = "needs autoreconf, gcc, make"
)]
fn a_result_file_counts_only_for_its_own_job() {
    fixture_tools();
    let ctx = TestContext::new();
    let candidate = gated_fixture(&ctx);
    for set in ["baseline", "candidate"] {
        ctx.sultana(&[
            "--locked",
            "gate",
            "libfix",
            "--job",
            "build-libfix",
            "--as",
            set,
            "--candidate",
            &candidate,
        ]);
    }
    let results = ctx.work.join(".sultana/ci");
    let build = results.join("candidate/build-libfix.json");
    let good = std::fs::read_to_string(&build).expect("the build job left a result");
    let decide = || {
        ctx.sultana(&[
            "--locked",
            "gate",
            "libfix",
            "--candidate",
            &candidate,
            "--results",
            results.to_str().unwrap(),
        ])
    };
    // The build's result copied in as a test's: refused, not counted.
    let mut test_jobs: Vec<String> = std::fs::read_dir(results.join("candidate"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("test-"))
        .collect();
    test_jobs.sort();
    let forged = match test_jobs.first() {
        Some(name) => results.join("candidate").join(name),
        None => results.join("candidate/test-libfix-check.json"),
    };
    std::fs::write(&forged, &good).unwrap();
    decide()
        .code(2)
        .stderr_has("claims to be the result of job `build-libfix`");
    // A candidate field with multibyte characters: refused, no panic.
    let mut value: serde_json::Value = serde_json::from_str(&good).unwrap();
    value["candidate"] = serde_json::Value::String("ééééééééééé\u{1b}]0;x\u{7}".into());
    std::fs::write(&build, value.to_string()).unwrap();
    std::fs::remove_file(&forged).unwrap();
    decide()
        .code(2)
        .stderr_has("result of another gate")
        .stderr_lacks("panicked")
        .stderr_lacks("\u{1b}");
}
