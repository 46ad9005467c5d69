//! The gate on CI engines (GitLab CI, osstest): each build job and each test
//! of a flight runs as its own CI job (`gate COMP --as SET --job JOB`), its
//! result and outputs passed on as artifacts under `.sultana/ci/` and
//! `.sultana/ci-area/`; a last job decides from all of them (`gate COMP
//! --results .sultana/ci`) exactly as a local gate would. Both the baseline
//! and the candidate are tested in the same pipeline, so no history has to
//! survive between pipelines.

mod decide;
mod gitlab;
mod job;
mod osstest;
mod result;

use serde::{Deserialize, Serialize};

use crate::workspace::Workspace;

pub use decide::decide;
pub use gitlab::gitlab;
pub use job::run_job;
pub use osstest::{osstest_flight, OsstestTarget};
#[cfg(feature = "fuzzing")]
pub use result::{parse_result, vet, Expected};

/// Which revisions a CI job tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Set {
    Baseline,
    Candidate,
}

impl Set {
    pub fn name(self) -> &'static str {
        match self {
            Set::Baseline => "baseline",
            Set::Candidate => "candidate",
        }
    }
}

/// The scratch workspace of one set, under `.sultana/ci-area/SET/`.
pub fn area(ws: &Workspace, set: Set) -> Workspace {
    ws.derived(ws.state_dir().join("ci-area").join(set.name()))
}
