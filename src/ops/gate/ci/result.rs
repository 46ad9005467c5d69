//! What one CI job leaves for the deciding job, and how the decider reads
//! it: data from a CI engine's artifacts, bounded and vetted.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::Set;
use crate::gate::classify::JobOutcome;
use crate::gate::db::{Revision, StepRow};
use crate::workspace::Workspace;

/// What one CI job leaves for the deciding job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobResult {
    pub set: Set,
    pub component: String,
    pub candidate: String,
    pub revisions: Vec<Revision>,
    pub outcome: JobOutcome,
    pub steps: Vec<StepRow>,
}

pub fn results_dir(ws: &Workspace) -> PathBuf {
    ws.state_dir().join("ci")
}

pub(super) fn result_file(ws: &Workspace, set: Set, job: &str) -> PathBuf {
    results_dir(ws).join(set.name()).join(format!("{job}.json"))
}

/// A result file is CI data: read only up to this size.
const MAX_RESULT_BYTES: u64 = 4 << 20;

pub(super) fn read_result(path: &Path) -> Result<JobResult> {
    let bytes = crate::fsutil::read_bounded(path, MAX_RESULT_BYTES)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_result(&bytes).with_context(|| format!("{} is not a job result sultana wrote", path.display()))
}

/// A job result from a CI engine's artifacts: data, checked by `vet`.
pub fn parse_result(bytes: &[u8]) -> Result<JobResult> {
    Ok(serde_json::from_slice(bytes)?)
}

/// What the deciding job expects of one result file.
pub struct Expected<'a> {
    pub set: Set,
    pub component: &'a str,
    pub candidate: &'a str,
    pub job: &'a str,
    pub job_component: &'a str,
    /// Every involved component at its commit in the set: a result of other
    /// pins (the lock moved since the job ran) is of other trees.
    pub revisions: &'a [Revision],
}

/// A result counts only for the gate, the set and the job it is read for.
pub fn vet(result: &JobResult, expected: &Expected) -> Result<()> {
    if result.component != expected.component || result.candidate != expected.candidate || result.set != expected.set {
        bail!(
            "it is the result of another gate ({} {} as {}), not of {} {}",
            result.component,
            shown_id(&result.candidate),
            result.set.name(),
            expected.component,
            shown_id(expected.candidate)
        );
    }
    if crate::gate::db::revisions_key(&result.revisions) != crate::gate::db::revisions_key(expected.revisions) {
        bail!("it is the result of other revisions than this gate's (sultana.lock changed since the job ran)");
    }
    // A result stands for the job whose file it is, and only that one.
    if result.outcome.job != expected.job || result.outcome.component != expected.job_component {
        bail!(
            "it claims to be the result of job `{}` of `{}`, not of `{}`",
            result.outcome.job,
            result.outcome.component,
            expected.job
        );
    }
    Ok(())
}

/// The first characters of an id from a result file (by characters: it is
/// data, and may hold multibyte ones). The printer escapes what it shows.
fn shown_id(id: &str) -> String {
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::status::{JobKind, JobStatus};

    fn rev(component: &str, commit: &str) -> Revision {
        Revision {
            component: component.into(),
            commit: commit.into(),
            describe: commit.into(),
        }
    }

    fn result(revisions: Vec<Revision>) -> JobResult {
        JobResult {
            set: Set::Candidate,
            component: "tool".into(),
            candidate: "c".repeat(40),
            revisions,
            outcome: JobOutcome {
                job: "test-tool-news".into(),
                component: "tool".into(),
                kind: JobKind::Test,
                status: JobStatus::Pass,
                testid: "news".into(),
                seconds: 1.0,
                flaky: false,
                detail: String::new(),
                log: None,
                definition: "d".into(),
                runs: 1,
                failed_runs: 0,
            },
            steps: Vec::new(),
        }
    }

    #[test]
    fn a_result_counts_only_for_its_gate_set_job_and_pins() {
        let pins = vec![rev("libfix", "1"), rev("tool", &"c".repeat(40))];
        let candidate = "c".repeat(40);
        let expected = |set, job, revisions| Expected {
            set,
            component: "tool",
            candidate: &candidate,
            job,
            job_component: "tool",
            revisions,
        };
        let ok = result(pins.clone());
        assert!(vet(&ok, &expected(Set::Candidate, "test-tool-news", &pins)).is_ok());
        assert!(
            vet(&ok, &expected(Set::Baseline, "test-tool-news", &pins)).is_err(),
            "another set"
        );
        assert!(
            vet(&ok, &expected(Set::Candidate, "test-tool-other", &pins)).is_err(),
            "another job"
        );
        let moved = vec![rev("libfix", "2"), rev("tool", &"c".repeat(40))];
        let err = vet(&ok, &expected(Set::Candidate, "test-tool-news", &moved)).unwrap_err();
        assert!(err.to_string().contains("other revisions"), "{err}");
        // The same pins in another order are the same trees.
        let reordered = vec![rev("tool", &"c".repeat(40)), rev("libfix", "1")];
        assert!(vet(&ok, &expected(Set::Candidate, "test-tool-news", &reordered)).is_ok());
        assert!(parse_result(b"{").is_err());
    }
}
