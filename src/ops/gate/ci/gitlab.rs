//! The gate as a GitLab CI child pipeline.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_yaml_ng::{to_value, Mapping, Value};

use super::decide::expected_jobs;
use super::{area, Set};
use crate::build;
use crate::gate::flight::build_job;
use crate::gate::{prepare, Options};
use crate::printer::Printer;
use crate::workspace::Workspace;

/// The GitLab CI pipeline of the gate of `component` (a child pipeline):
/// for the baseline and the candidate, one job per build and per test with
/// `needs:` following the dependencies, and a job deciding the push.
/// `parent_job`: a job of the parent pipeline whose artifacts hold sultana
/// (`.sultana-bin/bin/sultana`), fetched by every job.
/// The job script's line that points the build cache's remote tier at the
/// project's own container registry when it has one.
const REMOTE_FROM_REGISTRY: &str = "if [ -n \"$CI_REGISTRY_IMAGE\" ] && [ -z \"$SULTANA_BUILD_CACHE_REMOTE\" ]; then export SULTANA_BUILD_CACHE_REMOTE=\"oci://$CI_REGISTRY_IMAGE/sultana-cache\"; fi";

pub fn gitlab(ws: &Workspace, options: &Options, parent_job: Option<&str>, printer: &Printer) -> Result<String> {
    let prepared = prepare(ws, options, printer)?;
    let from_parent = parent_job.map(|job| Need::Parent {
        pipeline: "$PARENT_PIPELINE_ID".into(),
        job: job.to_string(),
    });
    let needs_of = |names: Vec<String>| -> Vec<Need> {
        from_parent
            .iter()
            .cloned()
            .chain(names.into_iter().map(Need::Job))
            .collect()
    };
    let comp = &prepared.component.name;
    let binary = if parent_job.is_some() {
        "$CI_PROJECT_DIR/.sultana-bin/bin/sultana"
    } else {
        "sultana"
    };
    let mut doc = Mapping::new();
    let mut put = |key: &str, value: Value| {
        doc.insert(Value::String(key.to_string()), value);
    };
    put("stages", to_value(["build", "test", "gate"])?);
    put(
        "variables",
        to_value(BTreeMap::from([
            ("SULTANA", binary.to_string()),
            ("SULTANA_CANDIDATE", prepared.candidate.commit.clone()),
            ("SULTANA_GATE_ARGS", String::new()),
            ("XDG_CACHE_HOME", "$CI_PROJECT_DIR/.sultana-cache".to_string()),
        ]))?,
    );
    put(
        "cache",
        to_value(Cache {
            key: "sultana-git",
            paths: vec![".sultana-cache/".into()],
        })?,
    );

    let up_to_date = prepared.candidate.commit == prepared.baseline.commit;
    let mut all_jobs = Vec::new();
    if !up_to_date {
        for set in [Set::Baseline, Set::Candidate] {
            for (job, owner) in expected_jobs(ws, &prepared)? {
                let name = ci_name(set, &job);
                let spec = job_spec(ws, set, &job, &owner, comp, &needs_of)?;
                put(&name, to_value(spec)?);
                all_jobs.push(name);
            }
        }
    }
    let decider = Job {
        stage: "gate",
        when: Some("always"),
        needs: needs_of(all_jobs),
        allow_failure: None,
        interruptible: None,
        script: vec![format!(
            "$SULTANA --locked gate {comp} --candidate $SULTANA_CANDIDATE --results .sultana/ci --junit .sultana/ci/junit/gate.xml --summary .sultana/ci/summary $SULTANA_GATE_ARGS"
        )],
        artifacts: Artifacts {
            when: "always",
            paths: vec!["sultana.lock".into(), ".sultana/ci/".into()],
            reports: Reports {
                junit: ".sultana/ci/junit/gate.xml".into(),
            },
        },
    };
    put("gate", to_value(decider)?);
    let header = format!(
        "# The push gate of {comp} as a GitLab CI pipeline, written by `sultana ci gitlab {comp}`.\n\
         # Candidate {} ({}) against the locked {} ({}).\n\
         # Every job runs sultana in the project's checkout (sultana.toml, sultana.lock);\n\
         # results and build outputs pass between jobs as artifacts.\n",
        prepared.candidate.commit, prepared.candidate.describe, prepared.baseline.commit, prepared.baseline.describe
    );
    Ok(header + &serde_yaml_ng::to_string(&doc)?)
}

/// One build or test job of one set: what it needs, what it runs, and the
/// artifacts the jobs after it find (a build's tree, build folder, staged
/// install and stamp).
fn job_spec(
    ws: &Workspace,
    set: Set,
    job: &str,
    owner: &str,
    comp: &str,
    needs_of: &dyn Fn(Vec<String>) -> Vec<Need>,
) -> Result<Job> {
    let scratch = area(ws, set);
    let owner_component = ws.manifest.component(owner).context("no such component")?;
    let closure: Vec<String> = build::closure(ws, std::slice::from_ref(&owner.to_string()))?
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let is_build = job == build_job(owner);
    let needs: Vec<String> = closure
        .iter()
        .filter(|n| !(is_build && n.as_str() == owner))
        .map(|n| ci_name(set, &build_job(n)))
        .collect();
    let junit = format!(".sultana/ci/junit/{}-{job}.xml", set.name());
    let mut paths = vec![
        format!(".sultana/ci/{}/", set.name()),
        ".sultana/ci/logs/".to_string(),
        junit.clone(),
    ];
    if is_build {
        // What the jobs that need this build find in place.
        let rel = |p: &Path| ws.display_path(p);
        paths.push(format!("{}/", rel(&scratch.tree_path(owner_component))));
        paths.push(format!("{}/", rel(&build::build_dir(&scratch, owner))));
        paths.push(format!("{}/", rel(&build::staging_root(&scratch, owner))));
        paths.push(rel(&scratch.state_dir().join("build").join(format!("{owner}.stamp"))));
    }
    Ok(Job {
        stage: if is_build { "build" } else { "test" },
        when: None,
        needs: needs_of(needs),
        allow_failure: Some(true),
        interruptible: Some(true),
        script: vec![
            // The project's registry holds the build cache, unless
            // the project names another (builds pull from it; a
            // build job pushes when SULTANA_BUILD_CACHE_SIGN names a key).
            REMOTE_FROM_REGISTRY.to_string(),
            format!(
                "$SULTANA --locked gate {comp} --as {} --job {job} --candidate $SULTANA_CANDIDATE",
                set.name()
            ),
        ],
        artifacts: Artifacts {
            when: "always",
            paths,
            reports: Reports { junit },
        },
    })
}

/// A job's `needs:` entry: a job of this pipeline, or one of the parent's.
#[derive(Clone, Serialize)]
#[serde(untagged)]
enum Need {
    Job(String),
    Parent { pipeline: String, job: String },
}

#[derive(Serialize)]
struct Cache {
    key: &'static str,
    paths: Vec<String>,
}

/// The keys of a GitLab CI job the gate uses, in the order they are written.
#[derive(Serialize)]
struct Job {
    stage: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    when: Option<&'static str>,
    needs: Vec<Need>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_failure: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interruptible: Option<bool>,
    script: Vec<String>,
    artifacts: Artifacts,
}

#[derive(Serialize)]
struct Artifacts {
    when: &'static str,
    paths: Vec<String>,
    reports: Reports,
}

#[derive(Serialize)]
struct Reports {
    junit: String,
}

fn ci_name(set: Set, job: &str) -> String {
    match set {
        Set::Baseline => format!("baseline:{job}"),
        Set::Candidate => job.to_string(),
    }
}
