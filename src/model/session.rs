//! What one run of sultana was asked for as a whole (`--offline`,
//! `--locked`, `-j`), resolved once at the command boundary and handed to
//! every operation as it is: cargo's `GlobalContext`, uv's settings.

/// Whether a run may use the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    #[default]
    Online,
    /// `--offline`: the cache and the trees only; a component that needs
    /// the network is an error naming it.
    Offline,
}

/// Whether a run may change `sultana.lock`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockMode {
    #[default]
    MayWrite,
    /// `--locked` (CI): a change to the lock is an error, and so is a tree
    /// left away from its pin.
    Locked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    pub network: Network,
    pub lock: LockMode,
    /// Parallel jobs, at least 1.
    pub jobs: usize,
}

impl Session {
    /// `jobs`: `-j N`; none or 0 is the number of CPUs.
    pub fn new(offline: bool, locked: bool, jobs: Option<usize>) -> Session {
        let jobs = jobs
            .filter(|j| *j > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        Session {
            network: if offline { Network::Offline } else { Network::Online },
            lock: if locked { LockMode::Locked } else { LockMode::MayWrite },
            jobs,
        }
    }

    pub fn offline(&self) -> bool {
        self.network == Network::Offline
    }

    pub fn locked(&self) -> bool {
        self.lock == LockMode::Locked
    }

    /// This session for work that must stay at its pins (a flight's
    /// scratch trees and builds), whatever the run allows.
    pub fn pinned(self) -> Session {
        Session {
            lock: LockMode::Locked,
            ..self
        }
    }
}

impl Default for Session {
    /// Online, the lock may change, one job per CPU.
    fn default() -> Session {
        Session::new(false, false, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_jobs_means_one_per_cpu_and_the_flags_are_typed() {
        let s = Session::new(true, true, Some(0));
        assert!(s.jobs >= 1);
        assert!(s.offline() && s.locked());
        assert_eq!(Session::new(false, false, Some(3)).jobs, 3);
        assert_eq!(Session::default().network, Network::Online);
        assert_eq!(Session::default().lock, LockMode::MayWrite);
        let pinned = Session::new(true, false, Some(3)).pinned();
        assert!(pinned.locked() && pinned.offline() && pinned.jobs == 3);
    }
}
