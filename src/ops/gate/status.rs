//! The gate's states as types: a job's status and kind, a flight's kind and
//! outcome. Each converts to and from its word (JSON, SQLite, reports) here
//! and nowhere else.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// Declares an enum with one word per variant, and its conversions: serde,
/// SQLite, `as_str`/`parse`, Display.
macro_rules! worded {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }

            pub fn parse(word: &str) -> Option<$name> {
                match word {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let word = value.as_str()?;
                $name::parse(word).ok_or_else(|| FromSqlError::Other(format!("`{word}` is not a {}", stringify!($name)).into()))
            }
        }
    };
}

worded! {
    /// What became of a job or one of its steps (automake's words).
    JobStatus {
        Pass = "pass",
        Fail = "fail",
        /// The test itself could not run (exit 99, a missing script, no result).
        Broken = "broken",
        Skip = "skip",
        /// A job it needs did not pass.
        Blocked = "blocked",
    }
}

impl JobStatus {
    /// A failure of what was tested (not a skip, not blocked).
    pub fn failed(self) -> bool {
        matches!(self, JobStatus::Fail | JobStatus::Broken)
    }
}

worded! {
    JobKind {
        Build = "build",
        Test = "test",
    }
}

worded! {
    /// Why a flight was flown.
    FlightKind {
        /// A candidate against the baseline.
        Gate = "gate",
        /// The baseline's own revisions.
        Baseline = "baseline",
        /// One commit of a bisection.
        Bisect = "bisect",
    }
}

worded! {
    /// A flight's verdict, osstest's words; `running` until it ends, and
    /// `interrupted` when a killed run left it unfinished.
    FlightOutcome {
        Running = "running",
        Interrupted = "interrupted",
        Perfect = "perfect",
        Tolerable = "tolerable",
        Regressions = "regressions",
        Failures = "failures",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_its_state() {
        for status in [
            JobStatus::Pass,
            JobStatus::Fail,
            JobStatus::Broken,
            JobStatus::Skip,
            JobStatus::Blocked,
        ] {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
            assert_eq!(serde_json::from_str::<JobStatus>(&json).unwrap(), status);
        }
        assert_eq!(JobStatus::parse("PASS"), None);
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let back: FlightOutcome = conn
            .query_row("SELECT ?1", [FlightOutcome::Regressions], |r| r.get(0))
            .unwrap();
        assert_eq!(back, FlightOutcome::Regressions);
        let bad: rusqlite::Result<JobKind> = conn.query_row("SELECT 'nope'", [], |r| r.get(0));
        assert!(bad.is_err());
    }
}
