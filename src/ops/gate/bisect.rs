//! `bisect COMP --test JOB`: the first bad commit of COMP for one job, by
//! binary search over its first-parent history (osstest's
//! cs-bisection-step). A commit whose flight history already has a result
//! for the job with the same other revisions is not built again; the answer
//! is given only once it reproduces: the job fails at the commit and passes
//! at its parent, both seen in real flights.

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::db::{self, FlightDb, Revision};
use super::flight::{self, Plan, Settings};
use super::prepare::{check_revisions, gated_component, involved, pin_everything, refresh, revision_of};
use super::status::{FlightKind, FlightOutcome, JobStatus};

use crate::git::Oid;
use crate::printer::Printer;
use crate::workspace::Workspace;

pub struct BisectOptions {
    pub component: String,
    /// A job (`build-X`, `test-X-Y`) or a test name of the component's recipe.
    pub test: String,
    pub good: Option<String>,
    pub bad: Option<String>,
    pub settings: Settings,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tried {
    pub commit: String,
    pub describe: String,
    pub status: JobStatus,
    pub flight: i64,
    /// Taken from an earlier flight, not run again.
    pub reused: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct BisectOutcome {
    pub component: String,
    pub job: String,
    pub good: Revision,
    pub bad: Revision,
    pub first_bad: Option<Revision>,
    pub first_bad_subject: Option<String>,
    /// The parent it passes at.
    pub last_good: Option<Revision>,
    pub reproduced: bool,
    /// Flights run (each one builds), against results reused.
    pub builds: usize,
    pub tried: Vec<Tried>,
    pub message: String,
}

pub fn bisect(ws: &Workspace, options: &BisectOptions, printer: &Printer) -> Result<BisectOutcome> {
    check_revisions(&[&options.good, &options.bad])?;
    let component = gated_component(ws, &options.component)?;
    let names = involved(ws, &component.name)?;
    let job = job_name(ws, &component.name, &names, &options.test)?;
    let pins = pin_everything(ws, &names, &options.settings, printer)?;
    let cache = ws.git_cache()?;
    let store = cache.store(&component.url, printer)?;
    let (good, bad, sources) = ends(ws, &store, component, &pins, options, printer)?;

    // A shallow store gets the history between them first.
    if store.is_shallow() {
        let (bad_oid, good_oid) = (Oid::from_str(&bad.commit)?, Oid::from_str(&good.commit)?);
        let source = sources.first().cloned().unwrap_or_else(|| component.url.clone());
        crate::sync::with_need(ws, component, options.settings.session.offline(), printer, |need| {
            store.ensure_ancestry(bad_oid, good_oid, &source, need)
        })?;
    }
    let fresh;
    let repo = if store.is_shallow() {
        // libgit2 keeps commits parsed with the old shallow boundary.
        fresh = git2::Repository::open_bare(&store.dir)?;
        &fresh
    } else {
        store.repo()
    };
    let chain = first_parent_chain(repo, &good, &bad)?;
    printer.status(
        "Bisecting",
        format!(
            "{job}: {} commit(s) of {} between {} (good) and {} (bad)",
            chain.len(),
            component.name,
            good.describe,
            bad.describe
        ),
    );

    let db = FlightDb::open(&super::db_path(ws))?;
    let owner = flight::owner_of(&job, &pins)?;
    let definition = super::definition::of_job(ws, &owner, &job)?;
    let mut tester = Tester {
        ws,
        db: &db,
        component: &component.name,
        job: &job,
        definition: &definition,
        pins: &pins,
        baseline: &good,
        settings: &options.settings,
        printer,
        builds: 0,
        tried: Vec::new(),
    };
    let rev = |oid: Oid| Revision {
        component: component.name.clone(),
        commit: oid.to_string(),
        describe: super::prepare::describe_commit(ws, &store, component, oid, &options.settings, printer),
    };
    let mut outcome = BisectOutcome {
        component: component.name.clone(),
        job: job.clone(),
        good: good.clone(),
        bad: bad.clone(),
        first_bad: None,
        first_bad_subject: None,
        last_good: None,
        reproduced: false,
        builds: 0,
        tried: Vec::new(),
        message: String::new(),
    };
    let finish = |mut outcome: BisectOutcome, tester: Tester, message: String| {
        outcome.builds = tester.builds;
        outcome.tried = tester.tried;
        outcome.message = message;
        outcome
    };

    // The bad end first: a bad commit that passes ends it at once.
    let at_bad = tester.status(&bad)?;
    if !at_bad.failed() {
        let message = format!(
            "{job} does not fail at the bad commit {} ({at_bad}): it does not reproduce",
            bad.describe
        );
        return Ok(finish(outcome, tester, message));
    }
    let at_good = tester.status(&good)?;
    if at_good != JobStatus::Pass {
        let message = format!(
            "{job} does not pass at the good commit {} ({at_good}): nothing to bisect",
            good.describe
        );
        return Ok(finish(outcome, tester, message));
    }

    let (lo, hi) = narrow(chain.len(), |i| tester.status(&rev(chain[i])))?;
    let first = rev(chain[hi as usize]);
    let parent = if hi == 0 {
        good.clone()
    } else {
        rev(chain[hi as usize - 1])
    };
    let subject = repo
        .find_commit(Oid::from_str(&first.commit)?)
        .ok()
        .and_then(|c| c.summary().map(str::to_string));
    let seen = |r: &Revision, want: &dyn Fn(JobStatus) -> bool| {
        tester.tried.iter().any(|t| t.commit == r.commit && want(t.status))
    };
    outcome.reproduced = hi - lo == 1 && seen(&first, &JobStatus::failed) && seen(&parent, &|s| s == JobStatus::Pass);
    let message = answer(&job, &first, &parent, subject.as_deref(), outcome.reproduced);
    outcome.first_bad = Some(first);
    outcome.first_bad_subject = subject;
    outcome.last_good = Some(parent);
    Ok(finish(outcome, tester, message))
}

/// The good and bad revisions, and where the component's commits are
/// fetched from.
fn ends(
    ws: &Workspace,
    store: &crate::git::Store,
    component: &crate::manifest::Component,
    pins: &[Revision],
    options: &BisectOptions,
    printer: &Printer,
) -> Result<(Revision, Revision, Vec<String>)> {
    let settings = &options.settings;
    let sources = refresh(ws, store, component, options.bad.as_deref(), settings, printer)?;
    let good = match &options.good {
        Some(rev) => revision_of(ws, store, component, rev, &sources, settings, printer)?,
        None => pins
            .iter()
            .find(|r| r.component == component.name)
            .cloned()
            .context("no pin for the component")?,
    };
    let bad = revision_of(
        ws,
        store,
        component,
        options.bad.as_deref().unwrap_or(&component.revision),
        &sources,
        settings,
        printer,
    )?;
    if good.commit == bad.commit {
        bail!("the good and bad revisions are the same commit {}", good.commit);
    }
    Ok((good, bad, sources))
}

/// The first-parent history from `bad` back to `good`, oldest first,
/// without `good`.
fn first_parent_chain(repo: &git2::Repository, good: &Revision, bad: &Revision) -> Result<Vec<Oid>> {
    let good_oid = Oid::from_str(&good.commit)?;
    let mut chain = Vec::new();
    let mut at = repo.find_commit(Oid::from_str(&bad.commit)?)?;
    while at.id() != good_oid {
        chain.push(at.id());
        if chain.len() > 100_000 {
            bail!(
                "{} is not within 100000 first-parent commits of {}",
                good.commit,
                bad.commit
            );
        }
        at = at.parent(0).map_err(|_| {
            anyhow!(
                "{} ({}) is not a first-parent ancestor of {} ({}); give --good a commit on {}'s first-parent history",
                &good.commit[..12],
                good.describe,
                &bad.commit[..12],
                bad.describe,
                bad.describe
            )
        })?;
    }
    chain.reverse();
    Ok(chain)
}

/// The bisection's answer in words.
fn answer(job: &str, first: &Revision, parent: &Revision, subject: Option<&str>, reproduced: bool) -> String {
    if !reproduced {
        return format!(
            "{job}: could not narrow it down past untestable commits; the first bad commit is between {} and {}",
            parent.describe, first.describe
        );
    }
    // A describe that is only the short hash is not said twice.
    let named = if first.commit.starts_with(&first.describe) {
        first.commit[..12].to_string()
    } else {
        format!("{} ({})", &first.commit[..12], first.describe)
    };
    format!(
        "first bad commit: {named} {}: {job} fails there and passes at its parent {}",
        subject.unwrap_or(""),
        parent.describe
    )
}

/// Binary search over `len` commits whose last one fails and whose parent
/// of the first passes: `(lo, hi)` with commit `lo` passing (-1: the good
/// one) and `hi` failing, next to each other unless untestable commits (a
/// skip, a blocked build) are all that is left between them.
fn narrow(len: usize, mut status_at: impl FnMut(usize) -> Result<JobStatus>) -> Result<(isize, isize)> {
    let mut lo: isize = -1;
    let mut hi: isize = len as isize - 1;
    let mut untestable = std::collections::BTreeSet::new();
    while hi - lo > 1 {
        let Some(mid) = pick(lo, hi, &untestable) else { break };
        let status = status_at(mid as usize)?;
        if status == JobStatus::Pass {
            lo = mid;
        } else if status.failed() {
            hi = mid;
        } else {
            untestable.insert(mid);
        }
    }
    Ok((lo, hi))
}

/// The middle of (lo, hi), or the nearest testable commit to it.
fn pick(lo: isize, hi: isize, untestable: &std::collections::BTreeSet<isize>) -> Option<isize> {
    let mid = lo + (hi - lo) / 2;
    (0..hi - lo)
        .flat_map(|d| [mid + d, mid - d])
        .find(|m| *m > lo && *m < hi && !untestable.contains(m))
}

/// `build-X`, `test-X-Y`, or a test name of the component's recipe (or of
/// one of its dependents' when only one has it).
fn job_name(ws: &Workspace, component: &str, involved: &[String], name: &str) -> Result<String> {
    let mut known = Vec::new();
    for comp in involved {
        known.push(flight::build_job(comp));
        if let Some(c) = ws.manifest.component(comp) {
            for test in ws.recipe(c)?.tests {
                known.push(flight::test_job(comp, &test.name));
            }
        }
    }
    if known.iter().any(|k| k == name) {
        return Ok(name.to_string());
    }
    let own = flight::test_job(component, name);
    if known.contains(&own) {
        return Ok(own);
    }
    let others: Vec<&String> = known
        .iter()
        .filter(|k| k.ends_with(&format!("-{name}")) && k.starts_with("test-"))
        .collect();
    match others.as_slice() {
        [one] => Ok(one.to_string()),
        _ => bail!(
            "no job `{name}` in {component}'s flights; they are: {}",
            known.join(", ")
        ),
    }
}

/// Runs (or looks up) the job at one commit of the component.
struct Tester<'a> {
    ws: &'a Workspace,
    db: &'a FlightDb,
    component: &'a str,
    job: &'a str,
    /// The job's definition now (`definition::of_job`).
    definition: &'a str,
    pins: &'a [Revision],
    baseline: &'a Revision,
    settings: &'a Settings,
    printer: &'a Printer,
    builds: usize,
    tried: Vec<Tried>,
}

impl Tester<'_> {
    fn status(&mut self, at: &Revision) -> Result<JobStatus> {
        let revisions: Vec<Revision> = self
            .pins
            .iter()
            .map(|r| {
                if r.component == self.component {
                    at.clone()
                } else {
                    r.clone()
                }
            })
            .collect();
        let key = db::revisions_key(&revisions);
        // Only a result for the job as defined now counts.
        if let Some(known) = self.db.known(&key, self.job, self.definition, -1)? {
            {
                let (flight, status) = (known.flight, known.status);
                self.printer.status(
                    "Known",
                    format!("{} at {}: {status} (flight {flight})", self.job, at.describe),
                );
                self.tried.push(Tried {
                    commit: at.commit.clone(),
                    describe: at.describe.clone(),
                    status,
                    flight,
                    reused: true,
                });
                return Ok(status);
            }
        }
        let plan = Plan {
            kind: FlightKind::Bisect,
            component: self.component.to_string(),
            candidate: at.commit.clone(),
            baseline: self.baseline.commit.clone(),
            revisions,
            scratch: flight::Scratch::Candidate,
            only: Some([(self.job.to_string(), flight::Runs::Once)].into()),
        };
        let flown = flight::fly(self.ws, self.db, &plan, self.settings, &|_, _| None, self.printer)?;
        if flown.built {
            self.builds += 1;
        }
        let status = flown
            .jobs
            .iter()
            .find(|j| j.job == self.job)
            .map(|j| j.status)
            .unwrap_or(JobStatus::Blocked);
        let verdict = if status == JobStatus::Pass {
            FlightOutcome::Perfect
        } else {
            FlightOutcome::Failures
        };
        self.db.finish(flown.id, verdict)?;
        self.printer.status(
            "Tried",
            format!("{} at {}: {status} (flight {})", self.job, at.describe, flown.id),
        );
        self.tried.push(Tried {
            commit: at.commit.clone(),
            describe: at.describe.clone(),
            status,
            flight: flown.id,
            reused: false,
        });
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_finds_the_first_bad_commit_in_few_tries() {
        for first_bad in [0, 1, 19, 31] {
            let mut tried = Vec::new();
            let (lo, hi) = narrow(32, |i| {
                tried.push(i);
                Ok(if i >= first_bad {
                    JobStatus::Fail
                } else {
                    JobStatus::Pass
                })
            })
            .unwrap();
            assert_eq!((lo, hi), (first_bad as isize - 1, first_bad as isize));
            assert!(tried.len() <= 5, "{first_bad}: {tried:?}");
        }
    }

    #[test]
    fn untestable_commits_are_stepped_around_or_reported() {
        // 19 is the first bad one; 17 and 18 do not build.
        let (lo, hi) = narrow(32, |i| {
            Ok(match i {
                17 | 18 => JobStatus::Blocked,
                i if i >= 19 => JobStatus::Fail,
                _ => JobStatus::Pass,
            })
        })
        .unwrap();
        assert_eq!((lo, hi), (16, 19), "the range it cannot narrow further");
        // Around an untestable middle, its neighbours are tried.
        let (lo, hi) = narrow(8, |i| {
            Ok(match i {
                3 => JobStatus::Skip,
                i if i >= 5 => JobStatus::Fail,
                _ => JobStatus::Pass,
            })
        })
        .unwrap();
        assert_eq!((lo, hi), (4, 5));
        let mut none = std::collections::BTreeSet::new();
        none.insert(1);
        assert_eq!(pick(0, 2, &none), None, "nothing testable left");
    }
}
