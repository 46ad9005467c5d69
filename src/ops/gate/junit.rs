//! JUnit XML, what GitLab renders in a merge request: one test case per job,
//! written by quick-junit (escaping and the counts in one kept place).

use std::time::Duration;

use anyhow::Result;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::classify::{Finding, JobOutcome};
use super::status::{JobKind, JobStatus};

/// A document of one suite holding `cases`.
pub fn document(report_name: &str, suite_name: &str, cases: Vec<TestCase>) -> Result<String> {
    let total: f64 = cases.iter().filter_map(|c| c.time).map(|t| t.as_secs_f64()).sum();
    let mut suite = TestSuite::new(suite_name);
    suite.add_test_cases(cases);
    suite.set_time(Duration::from_secs_f64(total));
    let mut report = Report::new(report_name);
    report.add_test_suite(suite);
    report.set_time(Duration::from_secs_f64(total));
    Ok(report.to_string()?)
}

/// A job as a test case: a pass (or a flaky pass that does not block) is a
/// success; skip and blocked are skipped; broken is an error; anything else
/// a failure typed by its classification, carrying the log's last lines.
pub fn case(job: &JobOutcome, finding: Option<&Finding>) -> TestCase {
    let tail = job.log.as_deref().map(log_tail).unwrap_or_default();
    let non_success = |kind: NonSuccessKind, ty: &str, message: String| {
        let mut status = TestCaseStatus::non_success(kind);
        status
            .set_type(ty)
            .set_message(clean(&message))
            .set_description(clean(&tail));
        status
    };
    let mut out_note = None;
    let status = match (job.status, finding) {
        (JobStatus::Pass, None) => TestCaseStatus::success(),
        (JobStatus::Skip | JobStatus::Blocked, _) => {
            let message = match job.status {
                JobStatus::Blocked => format!("blocked: {}", job.detail),
                _ => job.detail.clone(),
            };
            let mut status = TestCaseStatus::skipped();
            status.set_message(clean(&message));
            status
        }
        (JobStatus::Broken, f) => {
            let message = f.map_or(job.detail.clone(), |f| format!("{}: {}", f.summary, job.detail));
            non_success(NonSuccessKind::Error, "broken", message)
        }
        (_, Some(f)) if job.flaky && !f.blocking => {
            out_note = Some(format!("{}\n{tail}", f.summary));
            TestCaseStatus::success()
        }
        (_, f) => {
            let ty = f.map_or("fail".to_string(), |f| f.class.word().to_lowercase());
            let message = f.map_or(job.detail.clone(), |f| format!("{} ({})", f.summary, job.detail));
            non_success(NonSuccessKind::Failure, &ty, message)
        }
    };
    let mut case = TestCase::new(clean(&job.job), status);
    let classname = match job.kind {
        JobKind::Build => "build".to_string(),
        JobKind::Test => format!("test.{}", job.component),
    };
    case.set_classname(clean(&classname));
    case.set_time(Duration::from_secs_f64(job.seconds.max(0.0)));
    if let Some(note) = out_note {
        case.set_system_out(clean(&note));
    }
    case
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
    let bytes = crate::fsutil::read_tail(&file, 64 << 10).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Text XML 1.0 can hold: the characters it cannot are dropped (a test's
/// log may print anything; quick-junit escapes the rest).
fn clean(text: &str) -> String {
    text.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r') || (c as u32 >= 0x20 && c != '\u{fffe}' && c != '\u{ffff}'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::classify::Class;

    fn job(status: JobStatus, flaky: bool) -> JobOutcome {
        JobOutcome {
            job: "test-a-t".into(),
            component: "a".into(),
            kind: JobKind::Test,
            status,
            testid: "t".into(),
            seconds: 1.5,
            flaky,
            detail: "exit 1: bad \u{1} <thing>".into(),
            log: None,
            definition: String::new(),
            runs: 1,
            failed_runs: 1,
        }
    }

    fn finding(class: Class, blocking: bool) -> Finding {
        Finding {
            job: "test-a-t".into(),
            testid: "t".into(),
            status: JobStatus::Fail,
            class,
            blocking,
            reference: Some(3),
            summary: "REGR. vs. 3".into(),
        }
    }

    #[test]
    fn each_job_becomes_the_case_gitlab_shows() {
        let regression = finding(Class::Regression, true);
        let flaky = finding(Class::Flaky, false);
        let cases = vec![
            case(&job(JobStatus::Pass, false), None),
            case(&job(JobStatus::Fail, false), Some(&regression)),
            case(&job(JobStatus::Blocked, false), None),
            case(&job(JobStatus::Broken, false), None),
            case(&job(JobStatus::Fail, true), Some(&flaky)),
        ];
        let xml = document("sultana gate a", "flight 1", cases).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
        assert_eq!(suite.attribute("tests"), Some("5"));
        assert_eq!(suite.attribute("failures"), Some("1"));
        assert_eq!(suite.attribute("errors"), Some("1"));
        assert_eq!(suite.attribute("skipped"), Some("1"));
        let failure = doc.descendants().find(|n| n.has_tag_name("failure")).unwrap();
        assert_eq!(failure.attribute("type"), Some("regression"));
        assert_eq!(failure.attribute("message"), Some("REGR. vs. 3 (exit 1: bad  <thing>)"));
        let skipped = doc.descendants().find(|n| n.has_tag_name("skipped")).unwrap();
        assert_eq!(skipped.attribute("message"), Some("blocked: exit 1: bad  <thing>"));
        assert!(
            xml.contains("<system-out>REGR. vs. 3"),
            "a non-blocking flaky job passes with its note: {xml}"
        );
    }
}
