//! The flight history: `.sultana/flights.db` (SQLite), like osstest's
//! database reduced to what a push gate needs: flights with every revision
//! they tested, their jobs, and the steps of each job.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};

use super::status::{FlightKind, FlightOutcome, JobKind, JobStatus};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS flights (
    flight    INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL,        -- gate | baseline | bisect
    component TEXT NOT NULL,        -- the tree under test
    candidate TEXT NOT NULL,        -- its commit in this flight
    baseline  TEXT NOT NULL,        -- its tested (locked) commit
    revisions TEXT NOT NULL,        -- every revision: 'name=commit ...', sorted
    started   REAL NOT NULL,
    finished  REAL,                 -- NULL while running, or if killed
    outcome   TEXT NOT NULL DEFAULT 'running',
    pushed    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS flights_by_revisions ON flights (revisions);
CREATE TABLE IF NOT EXISTS revisions (
    flight    INTEGER NOT NULL REFERENCES flights (flight),
    component TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    describe  TEXT NOT NULL,
    PRIMARY KEY (flight, component)
);
CREATE TABLE IF NOT EXISTS jobs (
    flight    INTEGER NOT NULL REFERENCES flights (flight),
    job       TEXT NOT NULL,        -- build-<comp> | test-<comp>-<test>
    component TEXT NOT NULL,
    kind      TEXT NOT NULL,        -- build | test
    status    TEXT NOT NULL,        -- pass | fail | broken | skip | blocked
    seconds   REAL NOT NULL,
    -- what the result is a result of (see `gate::definition`); added later
    definition TEXT NOT NULL DEFAULT '',
    runs      INTEGER NOT NULL DEFAULT 1,   -- times a test ran in this job
    failed_runs INTEGER NOT NULL DEFAULT 0, -- of which failed
    PRIMARY KEY (flight, job)
);
CREATE TABLE IF NOT EXISTS steps (
    flight    INTEGER NOT NULL REFERENCES flights (flight),
    job       TEXT NOT NULL,
    stepno    INTEGER NOT NULL,
    testid    TEXT NOT NULL,
    status    TEXT NOT NULL,
    seconds   REAL NOT NULL,
    log       TEXT,
    detail    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (flight, job, stepno)
);
";

pub struct FlightDb {
    conn: Connection,
}

/// One revision a flight tested.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revision {
    pub component: String,
    pub commit: String,
    pub describe: String,
}

/// `name=commit` pairs, sorted: what identifies "the same trees".
pub fn revisions_key(revisions: &[Revision]) -> String {
    let mut pairs: Vec<String> = revisions
        .iter()
        .map(|r| format!("{}={}", r.component, r.commit))
        .collect();
    pairs.sort();
    pairs.join(" ")
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A job as the history keeps it.
#[derive(Clone, Debug)]
pub struct JobRow<'a> {
    pub job: &'a str,
    pub component: &'a str,
    pub kind: JobKind,
    pub status: JobStatus,
    pub seconds: f64,
    pub definition: &'a str,
    pub runs: u32,
    pub failed_runs: u32,
}

/// What every finished flight of some revisions says of a job as defined
/// now: its runs that passed and that failed, over all those flights. A
/// skip or a blocked job ran nothing and is no evidence; one unlucky run
/// does not outweigh the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// The newest flight that ran it.
    pub flight: i64,
    /// The newest such flight's status for it.
    pub status: JobStatus,
    pub passed: u32,
    pub failed: u32,
}

impl Known {
    /// It failed there every time, and more than once.
    pub fn fails_for_sure(&self) -> bool {
        self.passed == 0 && self.failed >= 2
    }

    /// It passed there some runs and failed others.
    pub fn flaky(&self) -> bool {
        self.passed > 0 && self.failed > 0
    }

    pub fn runs(&self) -> u32 {
        self.passed + self.failed
    }
}

/// What `FlightDb::prune` did.
#[derive(Clone, Debug, Default)]
pub struct Pruning {
    /// Oldest first.
    pub removed: Vec<i64>,
    /// Flights older than the newest kept because classification reads them.
    pub evidence: usize,
}

/// A flight as `sultana flights` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FlightRow {
    pub flight: i64,
    pub kind: FlightKind,
    pub component: String,
    pub candidate: String,
    pub describe: String,
    pub started: f64,
    pub finished: Option<f64>,
    pub outcome: FlightOutcome,
    pub pushed: bool,
    pub jobs: i64,
    pub failed: i64,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StepRow {
    pub stepno: i64,
    pub testid: String,
    pub status: JobStatus,
    pub seconds: f64,
    pub log: Option<String>,
    pub detail: String,
}

impl FlightDb {
    /// Open (creating it if need be). Flights a killed run left `running`
    /// are marked `interrupted`: no later classification trusts them.
    pub fn open(path: &Path) -> Result<FlightDb> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let conn =
            Connection::open(path).with_context(|| format!("cannot open the flight history {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("{} is not a sultana flight history", path.display()))?;
        migrate(&conn).with_context(|| format!("cannot bring {} up to date", path.display()))?;
        conn.execute(
            "UPDATE flights SET outcome = ?1 WHERE finished IS NULL",
            [FlightOutcome::Interrupted],
        )?;
        Ok(FlightDb { conn })
    }

    pub fn begin(
        &self,
        kind: FlightKind,
        component: &str,
        candidate: &str,
        baseline: &str,
        revisions: &[Revision],
    ) -> Result<i64> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO flights (kind, component, candidate, baseline, revisions, started) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![kind, component, candidate, baseline, revisions_key(revisions), now()],
        )?;
        let flight = tx.last_insert_rowid();
        for r in revisions {
            tx.execute(
                "INSERT INTO revisions (flight, component, commit_id, describe) VALUES (?1, ?2, ?3, ?4)",
                params![flight, r.component, r.commit, r.describe],
            )?;
        }
        tx.commit()?;
        Ok(flight)
    }

    /// A job and its steps, in one transaction.
    pub fn record_job(&self, flight: i64, row: &JobRow, steps: &[StepRow]) -> Result<()> {
        let job = row.job;
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO jobs (flight, job, component, kind, status, seconds, definition, runs, failed_runs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                flight,
                job,
                row.component,
                row.kind,
                row.status,
                row.seconds,
                row.definition,
                row.runs,
                row.failed_runs
            ],
        )?;
        tx.execute("DELETE FROM steps WHERE flight = ?1 AND job = ?2", params![flight, job])?;
        for s in steps {
            tx.execute(
                "INSERT INTO steps (flight, job, stepno, testid, status, seconds, log, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![flight, job, s.stepno, s.testid, s.status, s.seconds, s.log, s.detail],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn finish(&self, flight: i64, outcome: FlightOutcome) -> Result<()> {
        self.conn.execute(
            "UPDATE flights SET finished = ?2, outcome = ?3 WHERE flight = ?1",
            params![flight, now(), outcome],
        )?;
        Ok(())
    }

    pub fn mark_pushed(&self, flight: i64) -> Result<()> {
        self.conn
            .execute("UPDATE flights SET pushed = 1 WHERE flight = ?1", params![flight])?;
        Ok(())
    }

    /// The newest finished flight that tested exactly these revisions and
    /// ran `job` (any job when None), other than `except`.
    pub fn newest_with(&self, key: &str, job: Option<&str>, except: Option<i64>) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT f.flight FROM flights f
                 WHERE f.revisions = ?1 AND f.finished IS NOT NULL AND f.flight != ?2
                   AND (?3 IS NULL OR EXISTS (SELECT 1 FROM jobs j WHERE j.flight = f.flight AND j.job = ?3))
                 ORDER BY f.flight DESC LIMIT 1",
                params![key, except.unwrap_or(-1), job],
                |row| row.get(0),
            )
            .optional()?)
    }

    #[cfg(test)]
    pub fn job_status(&self, flight: i64, job: &str) -> Result<Option<JobStatus>> {
        Ok(self
            .conn
            .query_row(
                "SELECT status FROM jobs WHERE flight = ?1 AND job = ?2",
                params![flight, job],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Whether `job`, as defined now, ever passed in a finished flight
    /// other than `except`.
    pub fn ever_passed(&self, job: &str, definition: &str, except: i64) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM jobs j JOIN flights f USING (flight)
                 WHERE j.job = ?1 AND j.definition = ?2 AND j.status = ?4 AND f.finished IS NOT NULL
                   AND f.flight != ?3 LIMIT 1",
                params![job, definition, except, JobStatus::Pass],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// What the finished flights of exactly these revisions (`key`), other
    /// than `except`, say of `job` as defined now (see `Known`).
    pub fn known(&self, key: &str, job: &str, definition: &str, except: i64) -> Result<Option<Known>> {
        let ran = "j.status IN ('pass', 'fail', 'broken')";
        let totals: (Option<i64>, Option<i64>, Option<i64>) = self.conn.query_row(
            &format!(
                "SELECT MAX(f.flight), SUM(j.runs - j.failed_runs), SUM(j.failed_runs)
                 FROM flights f JOIN jobs j USING (flight)
                 WHERE f.revisions = ?1 AND f.finished IS NOT NULL AND f.flight != ?2
                   AND j.job = ?3 AND j.definition = ?4 AND {ran}"
            ),
            params![key, except, job, definition],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;
        let (Some(flight), Some(passed), Some(failed)) = totals else {
            return Ok(None);
        };
        let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        let (passed, failed) = (count(passed), count(failed));
        if passed + failed == 0 {
            return Ok(None);
        }
        let status: JobStatus = self.conn.query_row(
            "SELECT status FROM jobs WHERE flight = ?1 AND job = ?2",
            params![flight, job],
            |row| row.get(0),
        )?;
        Ok(Some(Known {
            flight,
            status,
            passed,
            failed,
        }))
    }

    /// Remove every flight but the newest `keep` and those still evidence
    /// (see `gate::retention`), in one transaction; returns the removed
    /// flights and how many older ones were kept as evidence. `pins`: the
    /// lock's commit per component.
    pub fn prune(&self, keep: usize, pins: &[(String, String)]) -> Result<Pruning> {
        let tx = self.conn.unchecked_transaction()?;
        let ids = |sql: &str| -> Result<Vec<i64>> {
            let mut stmt = tx.prepare(sql)?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<Result<Vec<i64>, _>>()?)
        };
        let all = ids("SELECT flight FROM flights ORDER BY flight DESC")?;
        let mut kept: std::collections::BTreeSet<i64> = all.iter().take(keep).copied().collect();
        let newest = kept.clone();
        // The flights of the pinned revisions: what every gate's baseline
        // is judged by (their runs add up in `known`), the newest `keep`
        // of each set of revisions.
        tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS pins (component TEXT PRIMARY KEY, commit_id TEXT NOT NULL); DELETE FROM temp.pins;")?;
        for (component, commit) in pins {
            tx.execute(
                "INSERT OR REPLACE INTO temp.pins (component, commit_id) VALUES (?1, ?2)",
                params![component, commit],
            )?;
        }
        let mut stmt = tx.prepare(
            "SELECT f.flight, f.revisions FROM flights f
             WHERE f.finished IS NOT NULL AND NOT EXISTS (
                 SELECT 1 FROM revisions r LEFT JOIN temp.pins p ON p.component = r.component
                 WHERE r.flight = f.flight AND (p.commit_id IS NULL OR p.commit_id != r.commit_id))
             ORDER BY f.flight DESC",
        )?;
        let pinned = stmt
            .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        let mut per_key: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        for (flight, key) in pinned {
            let n = per_key.entry(key).or_default();
            if *n < keep {
                *n += 1;
                kept.insert(flight);
            }
        }
        // For each test as defined, the newest flight it passed in: what
        // tells a regression from a test that never passed.
        for flight in ids(&format!(
            "SELECT MAX(j.flight) FROM jobs j JOIN flights f USING (flight)
             WHERE j.status = '{}' AND f.finished IS NOT NULL GROUP BY j.job, j.definition",
            JobStatus::Pass
        ))? {
            kept.insert(flight);
        }
        let removed: Vec<i64> = all.iter().rev().copied().filter(|f| !kept.contains(f)).collect();
        for flight in &removed {
            for table in ["steps", "jobs", "revisions", "flights"] {
                tx.execute(&format!("DELETE FROM {table} WHERE flight = ?1"), [flight])?;
            }
        }
        tx.commit()?;
        Ok(Pruning {
            evidence: kept.difference(&newest).count(),
            removed,
        })
    }

    /// Give the pages of removed rows back to the file system.
    pub fn vacuum(&self) -> Result<()> {
        self.conn.execute_batch("VACUUM")?;
        Ok(())
    }

    /// Every flight id in the history.
    pub fn flight_ids(&self) -> Result<std::collections::BTreeSet<i64>> {
        let mut stmt = self.conn.prepare("SELECT flight FROM flights")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest `limit` flights, newest first, for `sultana flights`.
    pub fn list(&self, limit: usize) -> Result<Vec<FlightRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT f.flight, f.kind, f.component, f.candidate, f.started, f.finished, f.outcome, f.pushed,
                    COALESCE((SELECT r.describe FROM revisions r WHERE r.flight = f.flight AND r.component = f.component), ''),
                    (SELECT COUNT(*) FROM jobs j WHERE j.flight = f.flight),
                    (SELECT COUNT(*) FROM jobs j WHERE j.flight = f.flight AND j.status IN ('fail', 'broken'))
             FROM flights f ORDER BY f.flight DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            Ok(FlightRow {
                flight: row.get(0)?,
                kind: row.get(1)?,
                component: row.get(2)?,
                candidate: row.get(3)?,
                started: row.get(4)?,
                finished: row.get(5)?,
                outcome: row.get(6)?,
                pushed: row.get::<_, i64>(7)? != 0,
                describe: row.get(8)?,
                jobs: row.get(9)?,
                failed: row.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Counts for messages and tests: (flights, jobs, steps).
    #[cfg(test)]
    pub fn counts(&self) -> Result<(i64, i64, i64)> {
        let count = |table: &str| -> Result<i64> {
            Ok(self
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0))?)
        };
        Ok((count("flights")?, count("jobs")?, count("steps")?))
    }
}

/// Histories written before results carried their definition and runs:
/// their rows get an empty definition, which no current test has, so they
/// never count as evidence again.
fn migrate(conn: &Connection) -> Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('jobs')")?;
    let columns: Vec<String> = stmt.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
    for (column, decl) in [
        ("definition", "TEXT NOT NULL DEFAULT ''"),
        ("runs", "INTEGER NOT NULL DEFAULT 1"),
        ("failed_runs", "INTEGER NOT NULL DEFAULT 0"),
    ] {
        if !columns.iter().any(|c| c == column) {
            conn.execute_batch(&format!("ALTER TABLE jobs ADD COLUMN {column} {decl}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(component: &str, commit: &str) -> Revision {
        Revision {
            component: component.into(),
            commit: commit.into(),
            describe: commit.into(),
        }
    }

    #[test]
    fn history_finds_the_flight_of_the_same_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let db = FlightDb::open(&dir.path().join("flights.db")).unwrap();
        let base = [rev("a", "1"), rev("b", "2")];
        let cand = [rev("b", "2"), rev("a", "3")];
        let f1 = db.begin(FlightKind::Baseline, "a", "1", "1", &base).unwrap();
        let row = |status: JobStatus| JobRow {
            job: "test-a-x",
            component: "a",
            kind: JobKind::Test,
            status,
            seconds: 1.0,
            definition: "d1",
            runs: 1,
            failed_runs: u32::from(status.failed()),
        };
        db.record_job(f1, &row(JobStatus::Pass), &[]).unwrap();
        db.finish(f1, FlightOutcome::Perfect).unwrap();
        let f2 = db.begin(FlightKind::Gate, "a", "3", "1", &cand).unwrap();
        db.record_job(f2, &row(JobStatus::Fail), &[]).unwrap();
        assert_eq!(db.newest_with(&revisions_key(&base), None, None).unwrap(), Some(f1));
        assert_eq!(
            db.newest_with(&revisions_key(&cand), None, None).unwrap(),
            None,
            "f2 is unfinished"
        );
        assert_eq!(db.job_status(f1, "test-a-x").unwrap(), Some(JobStatus::Pass));
        assert!(db.ever_passed("test-a-x", "d1", f2).unwrap());
        assert!(
            !db.ever_passed("test-a-x", "d2", f2).unwrap(),
            "another definition never passed"
        );
        assert!(!db.ever_passed("test-a-x", "d1", f1).unwrap());
        let known = db.known(&revisions_key(&base), "test-a-x", "d1", f2).unwrap().unwrap();
        assert_eq!(
            (known.flight, known.status, known.passed, known.failed),
            (f1, JobStatus::Pass, 1, 0)
        );
        assert_eq!(
            db.known(&revisions_key(&base), "test-a-x", "d2", f2).unwrap(),
            None,
            "a result for another definition is no evidence"
        );
        drop(db);
        // A run killed in flight 2: reopening marks it interrupted.
        let db = FlightDb::open(&dir.path().join("flights.db")).unwrap();
        let outcome: String = db
            .conn
            .query_row("SELECT outcome FROM flights WHERE flight = ?1", [f2], |r| r.get(0))
            .unwrap();
        assert_eq!(outcome, "interrupted");
        assert_eq!(db.counts().unwrap(), (2, 2, 0));
    }

    #[test]
    fn every_run_at_the_baseline_counts_and_only_runs_count() {
        let dir = tempfile::tempdir().unwrap();
        let db = FlightDb::open(&dir.path().join("flights.db")).unwrap();
        let base = [rev("a", "1")];
        let key = revisions_key(&base);
        let flown = |status: JobStatus, runs: u32, failed_runs: u32| {
            let f = db.begin(FlightKind::Baseline, "a", "1", "1", &base).unwrap();
            let row = JobRow {
                job: "test-a-x",
                component: "a",
                kind: JobKind::Test,
                status,
                seconds: 1.0,
                definition: "d",
                runs,
                failed_runs,
            };
            db.record_job(f, &row, &[]).unwrap();
            db.finish(f, FlightOutcome::Tolerable).unwrap();
            f
        };
        flown(JobStatus::Pass, 1, 0);
        flown(JobStatus::Fail, 5, 1);
        flown(JobStatus::Skip, 1, 0);
        let last = flown(JobStatus::Blocked, 0, 0);
        let known = db.known(&key, "test-a-x", "d", -1).unwrap().unwrap();
        assert_eq!(
            (known.passed, known.failed),
            (5, 1),
            "skips and blocked jobs ran nothing"
        );
        assert!(known.flaky() && !known.fails_for_sure());
        assert_ne!(known.flight, last, "the newest flight that ran it");
        assert_eq!(known.status, JobStatus::Fail);
    }

    #[test]
    fn pruning_keeps_the_newest_the_pinned_and_the_last_pass_of_each_test() {
        let dir = tempfile::tempdir().unwrap();
        let db = FlightDb::open(&dir.path().join("flights.db")).unwrap();
        let flown = |commit: &str, status: JobStatus, definition: &str| {
            let revisions = [rev("a", commit), rev("b", "7")];
            let f = db.begin(FlightKind::Gate, "a", commit, "1", &revisions).unwrap();
            let row = JobRow {
                job: "test-a-x",
                component: "a",
                kind: JobKind::Test,
                status,
                seconds: 1.0,
                definition,
                runs: 1,
                failed_runs: u32::from(status.failed()),
            };
            let step = StepRow {
                stepno: 1,
                testid: "x".into(),
                status,
                seconds: 1.0,
                log: None,
                detail: String::new(),
            };
            db.record_job(f, &row, &[step]).unwrap();
            db.finish(f, FlightOutcome::Perfect).unwrap();
            f
        };
        let passed_once = flown("2", JobStatus::Pass, "d1");
        let pinned = flown("1", JobStatus::Fail, "d1");
        let old_definition = flown("3", JobStatus::Pass, "d0");
        let dropped: Vec<i64> = (4..8).map(|c| flown(&c.to_string(), JobStatus::Fail, "d1")).collect();
        let newest = flown("8", JobStatus::Fail, "d1");
        let pins = [("a".to_string(), "1".to_string()), ("b".to_string(), "7".to_string())];
        let pruning = db.prune(1, &pins).unwrap();
        assert_eq!(pruning.removed, dropped);
        assert_eq!(pruning.evidence, 3);
        let left: Vec<i64> = db.flight_ids().unwrap().into_iter().collect();
        assert_eq!(left, [passed_once, pinned, old_definition, newest]);
        assert_eq!(db.counts().unwrap(), (4, 4, 4), "their jobs and steps went with them");
        assert!(db.ever_passed("test-a-x", "d1", -1).unwrap());
        // Another lock: flight `pinned` is no longer evidence.
        let moved = [("a".to_string(), "8".to_string()), ("b".to_string(), "7".to_string())];
        assert_eq!(db.prune(1, &moved).unwrap().removed, [pinned]);
    }

    #[test]
    fn a_history_from_before_definitions_is_migrated_and_never_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flights.db");
        {
            let conn = Connection::open(&path).unwrap();
            let old = SCHEMA
                .replace("    definition TEXT NOT NULL DEFAULT '',\n", "")
                .replace(
                    "    runs      INTEGER NOT NULL DEFAULT 1,   -- times a test ran in this job\n",
                    "",
                )
                .replace("    failed_runs INTEGER NOT NULL DEFAULT 0, -- of which failed\n", "");
            assert!(!old.contains("failed_runs"), "{old}");
            conn.execute_batch(&old).unwrap();
            conn.execute_batch(
                "INSERT INTO flights (kind, component, candidate, baseline, revisions, started, finished, outcome)
                 VALUES ('baseline', 'a', '1', '1', 'a=1', 0, 1, 'perfect');
                 INSERT INTO jobs (flight, job, component, kind, status, seconds) VALUES (1, 'test-a-x', 'a', 'test', 'pass', 1);",
            )
            .unwrap();
        }
        let db = FlightDb::open(&path).unwrap();
        assert_eq!(db.known("a=1", "test-a-x", "d1", -1).unwrap(), None);
        assert!(
            db.known("a=1", "test-a-x", "", -1).unwrap().is_some(),
            "the row is kept"
        );
        let again = FlightDb::open(&path).unwrap();
        assert_eq!(again.counts().unwrap(), (1, 1, 0));
    }
}
