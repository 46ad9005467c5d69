//! The gate as osstest job lines (`cs-job-create`), named and with the
//! runvars as osstest's make-flight and the `make-flight.blktap` fragment
//! write them: the gated tree's own build job (`build-ARCH-COMP`, recipe
//! `build-COMP`) and one test job per test of its recipe
//! (`test-ARCH-ARCH-COMP-TEST`, recipe `test-COMP`). What depends on the
//! tree (Xen's own builds) is osstest's own jobs, not these.

use std::fmt::Write as _;

use anyhow::Result;

use super::decide::expected_jobs;
use crate::gate::flight::build_job;
use crate::gate::{prepare, Options};
use crate::printer::Printer;
use crate::process::shell_quote;
use crate::workspace::Workspace;

/// Where the jobs go: the flight, the architecture, the hosts' suite.
pub struct OsstestTarget<'a> {
    pub flight: &'a str,
    pub arch: &'a str,
    pub suite: &'a str,
}

/// osstest's name of a tree (`tree_X`, `revision_X`, `XbuildJob`): its own
/// short names where sultana's components differ from them.
pub fn osstest_tree(component: &str) -> String {
    match component {
        "qemu-xen" => "qemuu".into(),
        "qemu-xen-traditional" => "qemu".into(),
        "mini-os" => "minios".into(),
        other => other.replace('-', ""),
    }
}

/// The flight as osstest job lines: one `cs-job-create` per build and test
/// job of the gated component, with the runvars osstest's scripts read.
pub fn osstest_flight(ws: &Workspace, options: &Options, target: &OsstestTarget, printer: &Printer) -> Result<String> {
    let prepared = prepare(ws, options, printer)?;
    let comp = prepared.component.name.clone();
    let tree = osstest_tree(&comp);
    let OsstestTarget { flight, arch, suite } = *target;
    let mut out = format!(
        "# The push gate of {comp} as osstest jobs (`sultana osstest flight {comp}`):\n\
         # candidate {} ({}); osstest's own jobs build Xen.\n",
        prepared.candidate.commit, prepared.candidate.describe
    );
    let tree_vars = vec![
        (format!("tree_{tree}"), prepared.component.url.clone()),
        (format!("revision_{tree}"), prepared.candidate.commit.clone()),
    ];
    let line = |name: &str, recipe: &str, extra: Vec<(String, String)>| -> String {
        let mut vars = tree_vars.clone();
        vars.extend(extra);
        vars.sort();
        let vars: String = vars.iter().map(|(k, v)| format!(" {k}={}", shell_quote(v))).collect();
        format!("./cs-job-create {flight} {name} {recipe}{vars}\n")
    };
    let build_name = format!("build-{arch}-{comp}");
    for (job, owner) in expected_jobs(ws, &prepared)? {
        if owner != comp {
            continue;
        }
        let common = vec![
            ("sultana_job".to_string(), job.clone()),
            ("sultana_gated".to_string(), comp.clone()),
        ];
        if job == build_job(&owner) {
            let mut vars = common;
            vars.push(("arch".into(), arch.into()));
            vars.push((
                "host_hostflags".into(),
                format!("share-build-{suite}-{arch},arch-{arch},suite-{suite},purpose-build"),
            ));
            let _ = write!(out, "{}", line(&build_name, &format!("build-{comp}"), vars));
        } else {
            let test = job.trim_start_matches(&format!("test-{owner}-")).to_string();
            let mut vars = common;
            vars.extend([
                // What make-flight's job_create_test and $most_runvars add.
                ("arch".to_string(), arch.to_string()),
                ("kernkind".to_string(), "pvops".to_string()),
                ("toolstack".to_string(), "xl".to_string()),
                ("xenbuildjob".into(), format!("build-{arch}")),
                ("buildjob".into(), format!("build-{arch}")),
                ("kernbuildjob".into(), format!("build-{arch}-pvops")),
                (format!("{tree}buildjob"), build_name.clone()),
                (
                    "all_hostflags".into(),
                    format!("arch-{arch},arch-xen-{arch},suite-{suite},purpose-test"),
                ),
            ]);
            let name = format!("test-{arch}-{arch}-{comp}-{test}");
            let _ = write!(out, "{}", line(&name, &format!("test-{comp}"), vars));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn trees_have_osstest_s_names() {
        assert_eq!(super::osstest_tree("qemu-xen"), "qemuu");
        assert_eq!(super::osstest_tree("mini-os"), "minios");
        assert_eq!(super::osstest_tree("blktap"), "blktap");
        assert_eq!(super::osstest_tree("blktap-module"), "blktapmodule");
    }
}
