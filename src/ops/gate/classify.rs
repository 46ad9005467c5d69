//! What a failure means for the push, as osstest's sg-report-flight decides
//! it: a step that passed in the flight that tested the baseline is a
//! regression (blocking); one that never passed, or failed the same way at
//! the baseline, is not; an allow file can excuse a regression.

use anyhow::{bail, Result};
use serde::Serialize;

use super::db::{FlightDb, Known};
use super::status::{FlightOutcome, JobKind, JobStatus};
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
    pub kind: JobKind,
    pub status: JobStatus,
    /// The step that failed (a build step, or the test's name).
    pub testid: String,
    pub seconds: f64,
    /// Failed, then passed when run again: intermittent.
    pub flaky: bool,
    /// Skip reason, blocking dependency, or the failure's last line.
    pub detail: String,
    pub log: Option<String>,
    /// What the result is a result of (`definition::of_test`, `of_build`).
    #[serde(default)]
    pub definition: String,
    /// How many times a test ran in this job, and how many of those failed.
    #[serde(default = "one")]
    pub runs: u32,
    #[serde(default)]
    pub failed_runs: u32,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Passed in the flight that tested the baseline.
    Regression,
    /// Failed again after a pass, or once in many runs, where the
    /// baseline passed every run.
    IntermittentRegression,
    /// Broken where the baseline passed.
    Broken,
    NeverPassed,
    SameAsBaseline,
    /// Failed differently at the baseline.
    BaselineFailed,
    /// No result at the baseline for the test as defined now: nothing tells
    /// it from a regression, so it blocks.
    NotAtBaseline,
    Allowed,
    /// Fails some runs at the baseline too.
    Flaky,
    Blocked,
    Skipped,
}

impl Class {
    /// The class as the junit report names it.
    pub fn word(self) -> &'static str {
        match self {
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
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub job: String,
    pub testid: String,
    pub status: JobStatus,
    pub class: Class,
    pub blocking: bool,
    /// The flight the classification refers to.
    pub reference: Option<i64>,
    pub summary: String,
}

/// Where a flight's failures are looked up: the baseline's result for the
/// job as defined now, and whether it ever passed so defined.
pub trait History {
    fn known(&self, job: &JobOutcome) -> Result<Option<Known>>;
    fn ever_passed(&self, job: &JobOutcome) -> Result<bool>;
}

/// The flight history seen from flight `flight`, its baseline the flights
/// of the revisions `baseline_key`.
pub struct DbHistory<'a> {
    pub db: &'a FlightDb,
    pub flight: i64,
    pub baseline_key: &'a str,
}

impl History for DbHistory<'_> {
    fn known(&self, job: &JobOutcome) -> Result<Option<Known>> {
        self.db.known(self.baseline_key, &job.job, &job.definition, self.flight)
    }

    fn ever_passed(&self, job: &JobOutcome) -> Result<bool> {
        self.db.ever_passed(&job.job, &job.definition, self.flight)
    }
}

/// Classify every job of a flight that did not pass, or passed only on a
/// second run. `of_baseline`: the flight tested the baseline's own
/// revisions, which cannot regress against themselves.
pub fn classify(
    jobs: &[JobOutcome],
    history: &dyn History,
    of_baseline: bool,
    allow: &AllowList,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for job in jobs.iter().filter(|j| j.status != JobStatus::Pass || j.flaky) {
        let (known, ever_passed) = match job.status {
            JobStatus::Blocked | JobStatus::Skip => (None, false),
            _ => (history.known(job)?, history.ever_passed(job)?),
        };
        let mut f = classify_one(job, known.as_ref(), ever_passed, of_baseline);
        if f.blocking && allow.matches(&f.job, &f.testid) {
            f.blocking = false;
            f.class = Class::Allowed;
            f.summary = format!("{} (allowed)", f.summary);
        }
        out.push(f);
    }
    Ok(out)
}

/// One job against what the baseline did (`known`: every run of the job,
/// as defined now, at the baseline's revisions). Judged by runs: a job that
/// failed where the baseline always passed is a regression (intermittent
/// when it passed some runs); where the baseline passes only sometimes, one
/// that never passed is a regression and one that passed some runs is
/// flaky; where the baseline always fails, it is no regression.
pub fn classify_one(job: &JobOutcome, known: Option<&Known>, ever_passed: bool, of_baseline: bool) -> Finding {
    let finding = |class: Class, blocking: bool, reference: Option<i64>, summary: String| Finding {
        job: job.job.clone(),
        testid: job.testid.clone(),
        status: job.status,
        class,
        blocking: blocking && !of_baseline,
        reference,
        summary,
    };
    let failed = job.failed_runs;
    let passed = job.runs.saturating_sub(failed);
    let here = format!("failed {failed} of {} runs", job.runs);
    match (job.status, known) {
        (JobStatus::Blocked, _) => finding(Class::Blocked, false, None, format!("n/a ({})", job.detail)),
        (JobStatus::Skip, _) => finding(Class::Skipped, false, None, job.detail.clone()),
        // A flight of the baseline's own revisions cannot regress against itself.
        _ if of_baseline && passed > 0 => finding(Class::Flaky, false, None, format!("flaky: {here}")),
        (_, Some(k)) if of_baseline && k.passed > 0 => finding(
            Class::Flaky,
            false,
            Some(k.flight),
            format!(
                "failed here, passed {} of {} runs at the same revisions",
                k.passed,
                k.runs()
            ),
        ),
        (_, None) if of_baseline && !ever_passed => finding(Class::NeverPassed, false, None, "never pass".into()),
        (_, None) if of_baseline => finding(
            Class::NotAtBaseline,
            false,
            None,
            "passed only at other revisions".into(),
        ),
        // Nothing ran at the baseline: nothing tells this from a regression.
        (_, None) if passed > 0 => finding(
            Class::NotAtBaseline,
            true,
            None,
            format!("intermittent ({here}), not tested at the baseline"),
        ),
        (_, None) => finding(Class::NotAtBaseline, true, None, "not tested at the baseline".into()),
        (_, Some(k)) if k.failed == 0 && passed > 0 => finding(
            Class::IntermittentRegression,
            true,
            Some(k.flight),
            format!(
                "intermittent REGR. vs. {}: {here}, the baseline passed {} of {}",
                k.flight, k.passed, k.passed
            ),
        ),
        (JobStatus::Broken, Some(k)) if k.failed == 0 => {
            finding(Class::Broken, true, Some(k.flight), format!("BROKEN vs. {}", k.flight))
        }
        (_, Some(k)) if k.failed == 0 => finding(
            Class::Regression,
            true,
            Some(k.flight),
            format!("REGR. vs. {}", k.flight),
        ),
        (_, Some(k)) if k.passed > 0 && passed > 0 => finding(
            Class::Flaky,
            false,
            Some(k.flight),
            format!(
                "flaky: {here}, and {} of {} at the baseline in {}",
                k.failed,
                k.runs(),
                k.flight
            ),
        ),
        (_, Some(k)) if k.passed > 0 => finding(
            Class::Regression,
            true,
            Some(k.flight),
            format!(
                "REGR. vs. {}: {here}, where the baseline passed {} of {}",
                k.flight,
                k.passed,
                k.runs()
            ),
        ),
        // One failed run there settles nothing (a chance failure, a run the
        // gate could not repeat): as good as no evidence.
        (_, Some(k)) if !k.fails_for_sure() => finding(
            Class::NotAtBaseline,
            true,
            Some(k.flight),
            format!("failed only once at the baseline (in {}): not settled", k.flight),
        ),
        _ if !ever_passed => finding(Class::NeverPassed, false, None, "never pass".into()),
        (status, Some(k)) if k.status == status => finding(
            Class::SameAsBaseline,
            false,
            Some(k.flight),
            format!("like {}", k.flight),
        ),
        (_, Some(k)) => finding(
            Class::BaselineFailed,
            false,
            Some(k.flight),
            format!("{} in {}", k.status, k.flight),
        ),
    }
}

/// osstest's verdict on a flight: perfect, tolerable, regressions, failures.
pub fn outcome(findings: &[Finding]) -> FlightOutcome {
    if findings.is_empty() {
        FlightOutcome::Perfect
    } else if findings
        .iter()
        .any(|f| f.blocking && matches!(f.class, Class::Regression | Class::IntermittentRegression))
    {
        FlightOutcome::Regressions
    } else if findings.iter().any(|f| f.blocking) {
        FlightOutcome::Failures
    } else {
        FlightOutcome::Tolerable
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

    fn job(status: &str, flaky: bool, runs: u32, failed_runs: u32) -> JobOutcome {
        JobOutcome {
            job: "test-a-t".into(),
            component: "a".into(),
            kind: JobKind::Test,
            status: JobStatus::parse(status).unwrap(),
            testid: "t".into(),
            seconds: 1.0,
            flaky,
            detail: String::new(),
            log: None,
            definition: "d".into(),
            runs,
            failed_runs,
        }
    }

    fn known(status: &str, runs: u32, failed: u32) -> Known {
        Known {
            flight: 7,
            status: JobStatus::parse(status).unwrap(),
            passed: runs - failed,
            failed,
        }
    }

    fn class(job: &JobOutcome, known: Option<&Known>, ever_passed: bool, of_baseline: bool) -> (Class, bool) {
        let f = classify_one(job, known, ever_passed, of_baseline);
        (f.class, f.blocking)
    }

    #[test]
    fn a_failure_blocks_unless_the_baseline_fails_it_too() {
        let fail = job("fail", false, 2, 2);
        // No result at the baseline for the test as defined now: blocks.
        assert_eq!(class(&fail, None, false, false), (Class::NotAtBaseline, true));
        assert_eq!(class(&fail, None, true, false), (Class::NotAtBaseline, true));
        assert_eq!(
            class(&fail, Some(&known("pass", 1, 0)), true, false),
            (Class::Regression, true)
        );
        assert_eq!(
            class(&job("broken", false, 1, 1), Some(&known("pass", 1, 0)), true, false),
            (Class::Broken, true)
        );
        assert_eq!(
            class(&fail, Some(&known("fail", 2, 2)), false, false),
            (Class::NeverPassed, false)
        );
        assert_eq!(
            class(&fail, Some(&known("fail", 2, 2)), true, false),
            (Class::SameAsBaseline, false)
        );
        // One failed run at the baseline settles nothing.
        assert_eq!(
            class(&fail, Some(&known("fail", 1, 1)), false, false),
            (Class::NotAtBaseline, true)
        );
        assert_eq!(
            class(&fail, Some(&known("broken", 2, 2)), true, false),
            (Class::BaselineFailed, false)
        );
        // A flight of the baseline itself never regresses against itself.
        assert_eq!(
            class(&fail, Some(&known("pass", 1, 0)), true, true),
            (Class::Flaky, false)
        );
        assert_eq!(class(&fail, None, false, true), (Class::NeverPassed, false));
        assert!(!class(&fail, None, true, true).1);
        let blocked = job("blocked", false, 0, 0);
        assert_eq!(class(&blocked, None, false, false), (Class::Blocked, false));
        // The baseline passes only sometimes: failing every run regresses.
        let sometimes = known("fail", 7, 1);
        assert_eq!(class(&fail, Some(&sometimes), true, false), (Class::Regression, true));
        assert_eq!(
            class(&job("fail", true, 7, 4), Some(&sometimes), true, false),
            (Class::Flaky, false)
        );
    }

    #[test]
    fn an_intermittent_failure_is_flaky_only_when_the_baseline_fails_too() {
        // Failed, passed, then failed again in the extra runs.
        let again = job("fail", true, 7, 3);
        assert_eq!(
            class(&again, Some(&known("pass", 5, 0)), true, false),
            (Class::IntermittentRegression, true)
        );
        // Failed once in seven runs, the baseline passed five of five.
        let once = job("pass", true, 7, 1);
        assert_eq!(
            class(&once, Some(&known("pass", 5, 0)), true, false),
            (Class::IntermittentRegression, true)
        );
        assert_eq!(
            class(&again, Some(&known("fail", 5, 2)), true, false),
            (Class::Flaky, false)
        );
        assert_eq!(class(&once, None, true, false), (Class::NotAtBaseline, true));
        let f = classify_one(&again, Some(&known("pass", 5, 0)), true, false);
        assert_eq!(
            f.summary,
            "intermittent REGR. vs. 7: failed 3 of 7 runs, the baseline passed 5 of 5"
        );
        assert_eq!(outcome(&[f]), FlightOutcome::Regressions);
    }
}
