//! Why a command failed, read once from what it said, where it ran: the
//! callers decide on this enum, never on a message's text.

/// What a failed command's output says went wrong.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cause {
    /// The disk is full (ENOSPC, as every tool words it).
    DiskFull,
    /// A git server that sends only what its refs name, not a commit or
    /// object asked for by id (protocol v0's "unadvertised object"; v2's
    /// "not our ref" says only that the server lacks it).
    NotByObjectId,
    /// A git server without partial-clone filtering.
    FilterUnsupported,
    /// The network or the server could not be reached.
    Network,
    #[default]
    Other,
}

impl Cause {
    /// The cause one output line names, if any.
    pub fn of_line(line: &str) -> Option<Cause> {
        const NETWORK: &[&str] = &[
            "Could not resolve host",
            "Temporary failure in name resolution",
            "Failed to connect",
            "Connection refused",
            "Connection timed out",
            "Connection reset",
            "Network is unreachable",
            "No route to host",
            "unable to access",
            "Could not read from remote repository",
            "The remote end hung up unexpectedly",
            "early EOF",
            "SSL",
        ];
        if line.contains("No space left on device") {
            Some(Cause::DiskFull)
        } else if line.contains("unadvertised object") {
            Some(Cause::NotByObjectId)
        } else if line.contains("filtering not recognized by server") {
            Some(Cause::FilterUnsupported)
        } else if NETWORK.iter().any(|s| line.contains(s)) {
            Some(Cause::Network)
        } else {
            None
        }
    }

    /// The cause of a whole output: a full disk first (what else failed
    /// follows from it), else the first line that names one.
    pub fn of_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Cause {
        let mut found = None;
        for line in lines {
            match Cause::of_line(line) {
                Some(Cause::DiskFull) => return Cause::DiskFull,
                Some(cause) if found.is_none() => found = Some(cause),
                _ => {}
            }
        }
        found.unwrap_or_default()
    }

    /// The cause a line adds to what was seen so far (see `of_lines`).
    pub fn with_line(self, line: &str) -> Cause {
        match (self, Cause::of_line(line)) {
            (_, Some(Cause::DiskFull)) => Cause::DiskFull,
            (Cause::Other, Some(cause)) => cause,
            (seen, _) => seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_wins_and_the_first_named_cause_stays() {
        let lines = [
            "remote: Enumerating objects: 5",
            "error: Server does not allow request for unadvertised object 0123",
            "fatal: the remote end hung up unexpectedly",
        ];
        assert_eq!(Cause::of_lines(lines), Cause::NotByObjectId);
        let full = [
            "fatal: unable to access 'x'",
            "fatal: write error: No space left on device",
        ];
        assert_eq!(Cause::of_lines(full), Cause::DiskFull);
        assert_eq!(Cause::of_lines(["fatal: not a git repository"]), Cause::Other);
        assert_eq!(
            Cause::Other.with_line("warning: filtering not recognized by server, ignoring"),
            Cause::FilterUnsupported
        );
        assert_eq!(
            Cause::Network.with_line("fatal: No space left on device"),
            Cause::DiskFull
        );
        assert_eq!(
            Cause::of_line("error: not our ref 0123"),
            None,
            "v2: the server lacks it"
        );
        assert_eq!(
            Cause::Network.with_line("error: Server does not allow request for unadvertised object 0123"),
            Cause::Network,
            "the first cause stays"
        );
    }
}
