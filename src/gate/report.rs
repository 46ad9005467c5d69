//! What a gate tells: a report for people, JUnit XML for GitLab, and
//! osstest's machine-readable summary (`flight N`, `version this|that …`,
//! `regression …`, `tolerable`, `perfect`).

use std::fmt::Write as _;

use serde::Serialize;

use super::classify::{Class, Finding, JobOutcome};
use super::db::Revision;
use super::junit;
use super::status::{FlightKind, FlightOutcome};

#[derive(Clone, Debug, Serialize)]
pub struct FlightReport {
    pub flight: i64,
    pub kind: FlightKind,
    pub component: String,
    pub candidate: Revision,
    pub baseline: Revision,
    /// The flight that tested the baseline, when one did.
    pub baseline_flight: Option<i64>,
    pub revisions: Vec<Revision>,
    pub jobs: Vec<JobOutcome>,
    pub findings: Vec<Finding>,
    pub outcome: FlightOutcome,
}

impl FlightReport {
    pub fn blocking(&self) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.blocking).collect()
    }

    fn finding(&self, job: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.job == job)
    }

    /// The table and verdict shown on a terminal.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "flight {} ({} {}): {} {} against {} {}{}",
            self.flight,
            self.kind,
            self.component,
            short(&self.candidate.commit),
            self.candidate.describe,
            short(&self.baseline.commit),
            self.baseline.describe,
            match self.baseline_flight {
                Some(f) => format!(", baseline tested in flight {f}"),
                None => String::new(),
            }
        );
        for job in &self.jobs {
            let note = match self.finding(&job.job) {
                Some(f) => f.summary.clone(),
                None => job.detail.clone(),
            };
            let _ = writeln!(
                out,
                "  {:<40} {:<8} {:>7.1}s  {}",
                job.job,
                if job.flaky { "flaky" } else { job.status.as_str() },
                job.seconds,
                note.trim()
            );
        }
        let verdict = match self.outcome {
            FlightOutcome::Perfect => "Perfect :-)",
            FlightOutcome::Tolerable => "Failures :-/ but no regressions.",
            FlightOutcome::Regressions => "Regressions :-(",
            _ => "Failures and problems with tests :-(",
        };
        let _ = writeln!(out, "{verdict}");
        out
    }

    /// osstest's machine-readable output (sg-report-flight
    /// --machine-readable-output), what push scripts read.
    pub fn summary(&self) -> String {
        let mut out = format!("flight {}\n", self.flight);
        let _ = writeln!(out, "version this {} {}", self.component, self.candidate.commit);
        let _ = writeln!(out, "version that {} {}", self.component, self.baseline.commit);
        for f in &self.findings {
            let line = match f.class {
                Class::Regression | Class::IntermittentRegression => {
                    format!("regression {} {} {}", f.job, f.testid, f.reference.unwrap_or(0))
                }
                Class::Broken => format!("broken-step {} {}", f.job, f.testid),
                Class::NeverPassed => format!("never-passed {} {} {}", f.job, f.testid, f.status),
                Class::Blocked => format!("blocked {} {}", f.job, f.testid),
                Class::Skipped => format!("skipped {} {}", f.job, f.testid),
                Class::Flaky => format!("heisenbug {} {}", f.job, f.testid),
                Class::Allowed => format!("allowed {} {} {}", f.job, f.testid, f.reference.unwrap_or(0)),
                Class::SameAsBaseline | Class::BaselineFailed | Class::NotAtBaseline => {
                    format!("nonblocking {} {} {}", f.job, f.testid, f.status)
                }
            };
            out.push_str(&line);
            out.push('\n');
        }
        if !self.findings.iter().any(|f| f.blocking) {
            out.push_str("tolerable\n");
        }
        if self.findings.is_empty() {
            out.push_str("perfect\n");
        }
        out
    }

    /// JUnit XML: a test case per build job and test; a failure carries
    /// the classification and the tail of its log.
    pub fn junit(&self) -> String {
        let cases = self
            .jobs
            .iter()
            .map(|job| junit::case(job, self.finding(&job.job)))
            .collect();
        let name = format!(
            "flight {}: {} {} against {}",
            self.flight,
            self.component,
            short(&self.candidate.commit),
            short(&self.baseline.commit)
        );
        // Only strings go in: serialising them cannot fail.
        junit::document(&format!("sultana gate {}", self.component), &name, cases).unwrap_or_default()
    }
}

pub(super) fn class_word(class: Class) -> &'static str {
    match class {
        Class::Regression => "REGRESSION",
        Class::IntermittentRegression => "INTERMITTENT-REGRESSION",
        Class::Broken => "BROKEN",
        Class::NeverPassed => "never-passed",
        Class::SameAsBaseline => "same-as-baseline",
        Class::BaselineFailed => "baseline-failed",
        Class::NotAtBaseline => "not-at-baseline",
        Class::Allowed => "allowed",
        Class::Flaky => "flaky",
        Class::Blocked => "blocked",
        Class::Skipped => "skipped",
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}
