//! The gate as osstest job lines (`cs-job-create`).

use std::fmt::Write as _;

use anyhow::Result;

use super::decide::expected_jobs;
use crate::gate::flight::build_job;
use crate::gate::{prepare, Options};
use crate::printer::Printer;
use crate::process::shell_quote;
use crate::workspace::Workspace;

/// The flight as osstest job lines: one `cs-job-create` per build and test
/// job, with the runvars osstest's scripts read.
pub fn osstest_flight(
    ws: &Workspace,
    options: &Options,
    flight: &str,
    arch: &str,
    printer: &Printer,
) -> Result<String> {
    let prepared = prepare(ws, options, printer)?;
    let comp = &prepared.component.name;
    let mut out = format!(
        "# The push gate of {comp} as osstest jobs (`sultana osstest flight {comp}`):\n\
         # candidate {} ({}), everything else at its locked revision.\n",
        prepared.candidate.commit, prepared.candidate.describe
    );
    let revisions = prepared.with(&prepared.candidate);
    let runvars = |extra: &[(String, String)]| -> String {
        let mut vars: Vec<(String, String)> = Vec::new();
        for r in &revisions {
            let c = ws.manifest.component(&r.component);
            let name = r.component.replace('-', "_");
            if let Some(c) = c {
                vars.push((format!("tree_{name}"), c.url.clone()));
            }
            vars.push((format!("revision_{name}"), r.commit.clone()));
        }
        vars.extend(extra.iter().cloned());
        vars.sort();
        vars.iter().map(|(k, v)| format!(" {k}={}", shell_quote(v))).collect()
    };
    for (job, owner) in expected_jobs(ws, &prepared)? {
        let owner_var = owner.replace('-', "_");
        if job == build_job(&owner) {
            let name = format!("build-{arch}-{owner}");
            let _ = writeln!(
                out,
                "./cs-job-create {flight} {name} build-{owner}{}",
                runvars(&[
                    ("arch".into(), arch.into()),
                    ("sultana_job".into(), job.clone()),
                    ("sultana_gated".into(), comp.clone()),
                ])
            );
        } else {
            let test = job.trim_start_matches(&format!("test-{owner}-")).to_string();
            let name = format!("test-{arch}-{owner}-{test}");
            let _ = writeln!(
                out,
                "./cs-job-create {flight} {name} test-{owner}{}",
                runvars(&[
                    ("arch".into(), arch.into()),
                    ("sultana_job".into(), job.clone()),
                    ("sultana_gated".into(), comp.clone()),
                    (format!("{owner_var}buildjob"), format!("build-{arch}-{owner}")),
                ])
            );
        }
    }
    Ok(out)
}
