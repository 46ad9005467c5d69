//! What a failure means for the push, as osstest's sg-report-flight decides
//! it: a step that passed in the flight that tested the baseline is a
//! regression (blocking); one that never passed, or failed the same way at
//! the baseline, is not; an allow file can excuse a regression.

use anyhow::{bail, Result};
use serde::Serialize;

use super::db::FlightDb;
use crate::glob::{self, Token};

/// An osstest allow file: lines `[!]JOB-PATTERN [TESTID-PATTERN]`, where
/// `@@` matches any run of non-space characters and `@` any run without
/// space, `-` or `/`; a missing testid pattern is `@@`; `!` takes back an
/// identical earlier line; `#` starts a comment.
#[derive(Clone, Debug, Default)]
pub struct AllowList {
    rules: Vec<String>,
}

impl AllowList {
    pub fn parse(text: &str, origin: &str) -> Result<AllowList> {
        let mut rules: Vec<String> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (remove, line) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim_start()),
                None => (false, line),
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let rule = match words.as_slice() {
                [job] => format!("{job} @@"),
                [job, testid] => format!("{job} {testid}"),
                _ => bail!("{origin}:{}: an allow line is `JOB-PATTERN [TESTID-PATTERN]`", i + 1),
            };
            if remove {
                rules.retain(|r| *r != rule);
            } else {
                rules.push(rule);
            }
        }
        Ok(AllowList { rules })
    }

    pub fn matches(&self, job: &str, testid: &str) -> bool {
        let subject = format!("{job} {testid}");
        self.rules
            .iter()
            .any(|rule| glob::matches(&tokens(rule), subject.as_bytes()))
    }
}

/// `@@` is any run without a space; `@` any run without space, `-` or `/`.
fn tokens(rule: &str) -> Vec<Token> {
    let mut bytes = rule.as_bytes();
    let mut out = Vec::new();
    while let Some((b, rest)) = bytes.split_first() {
        bytes = rest;
        out.push(match b {
            b'@' if rest.first() == Some(&b'@') => {
                bytes = &rest[1..];
                Token::Many { stops: b" " }
            }
            b'@' => Token::Many { stops: b" -/" },
            other => Token::Byte(*other),
        });
    }
    out
}

/// What became of one job.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct JobOutcome {
    pub job: String,
    pub component: String,
    pub kind: String,
    pub status: String,
    /// The step that failed (a build step, or the test's name).
    pub testid: String,
    pub seconds: f64,
    /// Failed, then passed when run again.
    pub flaky: bool,
    /// Skip reason, blocking dependency, or the failure's last line.
    pub detail: String,
    pub log: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Passed in the flight that tested the baseline.
    Regression,
    /// Broken where the baseline passed.
    Broken,
    NeverPassed,
    SameAsBaseline,
    /// Failed differently at the baseline.
    BaselineFailed,
    /// The baseline flight did not run it.
    NotAtBaseline,
    Allowed,
    Flaky,
    Blocked,
    Skipped,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub job: String,
    pub testid: String,
    pub status: String,
    pub class: Class,
    pub blocking: bool,
    /// The flight the classification refers to.
    pub reference: Option<i64>,
    pub summary: String,
}

/// Classify every job of `flight` that did not pass.
pub fn classify(
    db: &FlightDb,
    flight: i64,
    jobs: &[JobOutcome],
    baseline: Option<i64>,
    allow: &AllowList,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for job in jobs.iter().filter(|j| j.status != "pass" || j.flaky) {
        let finding = |class: Class, blocking: bool, reference: Option<i64>, summary: String| Finding {
            job: job.job.clone(),
            testid: job.testid.clone(),
            status: job.status.clone(),
            class,
            blocking,
            reference,
            summary,
        };
        let mut f = match job.status.as_str() {
            "blocked" => finding(Class::Blocked, false, None, format!("n/a ({})", job.detail)),
            "skip" => finding(Class::Skipped, false, None, job.detail.clone()),
            _ if job.flaky => finding(Class::Flaky, false, None, "failed, then passed when run again".into()),
            _ if !db.ever_passed(&job.job, flight)? => finding(Class::NeverPassed, false, None, "never pass".into()),
            status => match baseline {
                None => finding(Class::NotAtBaseline, false, None, "baseline untested".into()),
                Some(base) => match db.job_status(base, &job.job)?.as_deref() {
                    Some("pass") if status == "broken" => {
                        finding(Class::Broken, true, Some(base), format!("BROKEN vs. {base}"))
                    }
                    Some("pass") => finding(Class::Regression, true, Some(base), format!("REGR. vs. {base}")),
                    Some(then) if then == status => {
                        finding(Class::SameAsBaseline, false, Some(base), format!("like {base}"))
                    }
                    Some(then) => finding(Class::BaselineFailed, false, Some(base), format!("{then} in {base}")),
                    None => finding(Class::NotAtBaseline, false, Some(base), format!("not run in {base}")),
                },
            },
        };
        if f.blocking && allow.matches(&f.job, &f.testid) {
            f.blocking = false;
            f.class = Class::Allowed;
            f.summary = format!("{} (allowed)", f.summary);
        }
        out.push(f);
    }
    Ok(out)
}

/// osstest's words for a flight: perfect, tolerable, regressions, failures.
pub fn outcome(findings: &[Finding]) -> &'static str {
    if findings.is_empty() {
        "perfect"
    } else if findings.iter().any(|f| f.blocking && f.class == Class::Regression) {
        "regressions"
    } else if findings.iter().any(|f| f.blocking) {
        "failures"
    } else {
        "tolerable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_files_read_like_osstest() {
        let allow = AllowList::parse(
            "# comment\n\
             test-@@-sedf@@\n\
             build-@@     logs-capture@@\n\
             test-blktap-@   tapdisk-nbd\n\
             test-xen-boot\n\
             !test-xen-boot\n",
            "allow",
        )
        .unwrap();
        assert!(allow.matches("test-amd64-sedf-pin", "anything"));
        assert!(allow.matches("build-amd64", "logs-capture(2)"));
        assert!(!allow.matches("build-amd64", "make"));
        assert!(allow.matches("test-blktap-nbd", "tapdisk-nbd"));
        assert!(!allow.matches("test-blktap-x-y", "tapdisk-nbd"), "@ stops at -");
        assert!(!allow.matches("test-xen-boot", "boot"), "taken back with !");
        assert!(AllowList::parse("a b c\n", "allow").is_err());
    }
}
