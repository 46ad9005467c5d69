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

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::status::{JobKind, JobStatus};

    fn rev(commit: &str) -> Revision {
        Revision {
            component: "blktap".into(),
            commit: commit.into(),
            describe: "v4.0.8".into(),
        }
    }

    fn job(name: &str, status: JobStatus) -> JobOutcome {
        JobOutcome {
            job: name.into(),
            component: "blktap".into(),
            kind: JobKind::Test,
            status,
            testid: name.trim_start_matches("test-blktap-").into(),
            seconds: 1.0,
            flaky: false,
            detail: String::new(),
            log: None,
            definition: String::new(),
            runs: 1,
            failed_runs: u32::from(status.failed()),
        }
    }

    fn finding(job: &str, class: Class, blocking: bool) -> Finding {
        Finding {
            job: job.into(),
            testid: job.trim_start_matches("test-blktap-").into(),
            status: JobStatus::Fail,
            class,
            blocking,
            reference: Some(4),
            summary: "REGR. vs. 4".into(),
        }
    }

    fn report(findings: Vec<Finding>, outcome: FlightOutcome) -> FlightReport {
        FlightReport {
            flight: 7,
            kind: FlightKind::Gate,
            component: "blktap".into(),
            candidate: rev(&"c".repeat(40)),
            baseline: rev(&"b".repeat(40)),
            baseline_flight: Some(4),
            revisions: vec![rev(&"c".repeat(40))],
            jobs: vec![
                job("test-blktap-vhd", JobStatus::Pass),
                job("test-blktap-tapdisk-nbd", JobStatus::Fail),
                job("test-blktap-flip", JobStatus::Fail),
            ],
            findings,
            outcome,
        }
    }

    #[test]
    fn the_summary_is_what_osstest_push_scripts_read() {
        let r = report(
            vec![
                finding("test-blktap-tapdisk-nbd", Class::Regression, true),
                finding("test-blktap-flip", Class::Flaky, false),
            ],
            FlightOutcome::Regressions,
        );
        let summary = r.summary();
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(lines[0], "flight 7");
        assert_eq!(lines[1], format!("version this blktap {}", "c".repeat(40)));
        assert_eq!(lines[2], format!("version that blktap {}", "b".repeat(40)));
        assert!(
            lines.contains(&"regression test-blktap-tapdisk-nbd tapdisk-nbd 4"),
            "{summary}"
        );
        assert!(lines.contains(&"heisenbug test-blktap-flip flip"), "{summary}");
        assert!(
            !lines.contains(&"tolerable") && !lines.contains(&"perfect"),
            "{summary}"
        );
        let human = r.human();
        assert!(human.starts_with("flight 7 (gate blktap): cccccccccccc v4.0.8 against bbbbbbbbbbbb v4.0.8, baseline tested in flight 4\n"), "{human}");
        assert!(human.ends_with("Regressions :-(\n"), "{human}");

        let fine = report(
            vec![finding("test-blktap-flip", Class::Flaky, false)],
            FlightOutcome::Tolerable,
        );
        assert!(fine.summary().ends_with("heisenbug test-blktap-flip flip\ntolerable\n"));
        assert!(fine.human().ends_with("Failures :-/ but no regressions.\n"));
        let perfect = report(Vec::new(), FlightOutcome::Perfect);
        assert!(perfect.summary().ends_with("tolerable\nperfect\n"));
    }
}
