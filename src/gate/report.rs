//! What a gate tells: a report for people, JUnit XML for GitLab, and
//! osstest's machine-readable summary (`flight N`, `version this|that …`,
//! `regression …`, `tolerable`, `perfect`).

use std::fmt::Write as _;

use serde::Serialize;

use super::classify::{Class, Finding, JobOutcome};
use super::db::Revision;

#[derive(Clone, Debug, Serialize)]
pub struct FlightReport {
    pub flight: i64,
    pub kind: String,
    pub component: String,
    pub candidate: Revision,
    pub baseline: Revision,
    /// The flight that tested the baseline, when one did.
    pub baseline_flight: Option<i64>,
    pub revisions: Vec<Revision>,
    pub jobs: Vec<JobOutcome>,
    pub findings: Vec<Finding>,
    pub outcome: String,
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
        let verdict = match self.outcome.as_str() {
            "perfect" => "Perfect :-)".to_string(),
            "tolerable" => "Failures :-/ but no regressions.".to_string(),
            "regressions" => "Regressions :-(".to_string(),
            _ => "Failures and problems with tests :-(".to_string(),
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

    /// JUnit XML: a testcase per build job and test; a failure carries the
    /// classification and the tail of its log.
    pub fn junit(&self) -> String {
        let mut cases = String::new();
        let (mut failures, mut errors, mut skipped) = (0, 0, 0);
        let total_time: f64 = self.jobs.iter().map(|j| j.seconds).sum();
        for job in &self.jobs {
            let classname = if job.kind == "build" {
                "build".to_string()
            } else {
                format!("test.{}", job.component)
            };
            let _ = write!(
                cases,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&classname),
                xml(&job.job),
                job.seconds
            );
            let finding = self.finding(&job.job);
            let tail = job.log.as_deref().map(log_tail).unwrap_or_default();
            match (job.status.as_str(), finding) {
                ("pass", None) => cases.push_str("/>\n"),
                ("skip", _) | ("blocked", _) => {
                    skipped += 1;
                    let message = match job.status.as_str() {
                        "blocked" => format!("blocked: {}", job.detail),
                        _ => job.detail.clone(),
                    };
                    let _ = writeln!(
                        cases,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(&message)
                    );
                }
                ("broken", f) => {
                    errors += 1;
                    let message = f.map_or(job.detail.clone(), |f| format!("{}: {}", f.summary, job.detail));
                    let _ = writeln!(
                        cases,
                        ">\n      <error type=\"broken\" message=\"{}\">{}</error>\n    </testcase>",
                        xml(&message),
                        xml(&tail)
                    );
                }
                (_, Some(f)) if job.flaky => {
                    let _ = writeln!(
                        cases,
                        ">\n      <system-out>{}</system-out>\n    </testcase>",
                        xml(&format!("{}\n{tail}", f.summary))
                    );
                }
                (_, f) => {
                    failures += 1;
                    let kind = f.map_or("fail".to_string(), |f| class_word(f.class).to_lowercase());
                    let message = f.map_or(job.detail.clone(), |f| format!("{} ({})", f.summary, job.detail));
                    let _ = writeln!(
                        cases,
                        ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                        xml(&kind),
                        xml(&message),
                        xml(&tail)
                    );
                }
            }
        }
        let name = format!(
            "flight {}: {} {} against {}",
            self.flight,
            self.component,
            short(&self.candidate.commit),
            short(&self.baseline.commit)
        );
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <testsuites name=\"sultana gate {comp}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n  \
             <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n\
             {cases}  </testsuite>\n</testsuites>\n",
            comp = xml(&self.component),
            tests = self.jobs.len(),
            time = total_time,
            name = xml(&name),
        )
    }
}

fn class_word(class: Class) -> &'static str {
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

/// The last lines of a log file, or of the last log in a folder of them.
fn log_tail(path: &str) -> String {
    let path = std::path::Path::new(path);
    let file = if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        match files.pop() {
            Some(f) => f,
            None => return String::new(),
        }
    } else {
        path.to_path_buf()
    };
    let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Text for XML attributes and content; characters XML 1.0 cannot hold are
/// dropped.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}
