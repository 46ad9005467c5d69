//! Running a git transfer: its progress meter shown on ours, and one more
//! try for a failure in passing.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::printer::Progress;
use crate::process::{Cause, Cmd, ProcessError};

/// Run a git transfer, its progress meter shown on ours.
pub(super) fn run_showing_progress(git: Cmd, log: &Path, progress: &Progress) -> Result<(), ProcessError> {
    git.log(log).run_with(|line| {
        if let Some((done, total, phase)) = parse_progress(line) {
            progress.update(done, total, phase);
        }
    })
}

/// `Receiving objects:  45% (1234/5678), 1.2 MiB | 2 MiB/s`
pub(super) fn parse_progress(line: &str) -> Option<(u64, u64, &str)> {
    let line = line.strip_prefix("remote: ").unwrap_or(line);
    let (name, rest) = line.split_once(':')?;
    let inner = rest.split_once('(')?.1.split_once(')')?.0;
    let (done, total) = inner.split_once('/')?;
    Some((
        done.trim().parse().ok()?,
        total.trim().parse().ok()?,
        name.trim_start_matches("remote: ").trim(),
    ))
}

/// One more try after a pause, for a transfer that may fail in passing
/// (never for a missing tool).
pub(super) fn retry(mut attempt: impl FnMut() -> Result<(), ProcessError>) -> Result<()> {
    match attempt() {
        Ok(()) => Ok(()),
        Err(e @ ProcessError::ToolMissing { .. }) => Err(e.into()),
        // A full disk stays full: say so at once.
        Err(e) if e.cause() == Cause::DiskFull => Err(e.into()),
        Err(_) => {
            std::thread::sleep(Duration::from_millis(500));
            Ok(attempt()?)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_lines() {
        assert_eq!(
            super::parse_progress("Receiving objects:  45% (1234/5678), 1.2 MiB | 2 MiB/s"),
            Some((1234, 5678, "Receiving objects"))
        );
        assert_eq!(
            super::parse_progress("remote: Counting objects: 100% (3/3), done."),
            Some((3, 3, "Counting objects"))
        );
        assert_eq!(super::parse_progress("From file:///x"), None);
    }
}
