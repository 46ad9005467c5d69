//! A flown flight concluded: classified, closed in the history, its summary
//! and JUnit kept beside its logs, its report shown.

use anyhow::Result;

use super::classify;
use super::db::{FlightDb, Revision};
use super::flight;
use super::prepare::Prepared;
use super::report::FlightReport;
use super::status::FlightKind;
use crate::printer::Printer;
use crate::workspace::Workspace;

/// Which flight is concluded, and against what.
pub(crate) struct Concluded<'a> {
    pub kind: FlightKind,
    /// The gated component's revision in the flight.
    pub at: &'a Revision,
    pub revisions: Vec<Revision>,
    /// The baseline's revisions (`db::revisions_key`): where each failure's
    /// evidence is looked up.
    pub baseline_key: &'a str,
    /// The flight tested the baseline's own revisions.
    pub of_baseline: bool,
}

/// Classify a flown flight, close it in the history, keep its summary and
/// JUnit beside its logs, and show its report.
pub(crate) fn conclude_flight(
    ws: &Workspace,
    db: &FlightDb,
    prepared: &Prepared,
    concluded: Concluded,
    flown: flight::Flown,
    printer: &Printer,
) -> Result<FlightReport> {
    let history = classify::DbHistory {
        db,
        flight: flown.id,
        baseline_key: concluded.baseline_key,
    };
    let mut findings = classify::classify(&flown.jobs, &history, concluded.of_baseline, &prepared.allow)?;
    // A candidate that was never built was never tested: its build blocked
    // by a dependency (even one failing at the baseline too) blocks the
    // push, as osstest's blocked jobs alone would not.
    if !concluded.of_baseline {
        let own = flight::build_job(&prepared.component.name);
        for finding in findings
            .iter_mut()
            .filter(|f| f.job == own && f.class == classify::Class::Blocked)
        {
            finding.blocking = true;
            finding.summary = format!("the candidate was never built: {}", finding.summary);
        }
    }
    let outcome = classify::outcome(&findings);
    db.finish(flown.id, outcome)?;
    let baseline_flight = db.newest_with(concluded.baseline_key, None, Some(flown.id))?;
    let report = FlightReport {
        flight: flown.id,
        kind: concluded.kind,
        component: prepared.component.name.clone(),
        candidate: concluded.at.clone(),
        baseline: prepared.baseline.clone(),
        baseline_flight,
        revisions: concluded.revisions,
        jobs: flown.jobs,
        findings,
        outcome,
    };
    let dir = flight::flight_dir(ws, flown.id);
    crate::fsutil::atomic_write(&dir.join("summary"), report.summary().as_bytes())?;
    crate::fsutil::atomic_write(&dir.join("junit.xml"), report.junit().as_bytes())?;
    printer.report(report.human());
    Ok(report)
}
