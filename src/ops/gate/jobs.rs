//! A flight's jobs by name (`build-COMP`, `test-COMP-TEST`), whose they
//! are, and how many times a test runs.

use anyhow::Result;

use super::db::Revision;

/// How many times a test runs in a flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// Once.
    Once,
    /// Exactly this many times (the baseline's side of a fail-then-pass).
    Times(u32),
    /// Once; after a failure the baseline does not share, again; after a
    /// fail-then-pass, `flaky_runs` more times.
    Gate { flaky_runs: u32 },
}

pub fn build_job(component: &str) -> String {
    format!("build-{component}")
}

pub fn test_job(component: &str, test: &str) -> String {
    format!("test-{component}-{test}")
}

/// The component whose build or test `job` is, among `revisions`.
pub fn owner_of(job: &str, revisions: &[Revision]) -> Result<String> {
    let mut names: Vec<&str> = revisions.iter().map(|r| r.component.as_str()).collect();
    // Longest names first: `test-blktap-module-x` is blktap-module's.
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names
        .into_iter()
        .find(|n| job == build_job(n) || job.starts_with(&format!("test-{n}-")))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("`{job}` is not a job of this flight"))
}
