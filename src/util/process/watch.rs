//! A command's process group never outlives sultana, even when sultana is
//! killed with SIGKILL (no handler runs then). Beside each command a small
//! watcher process waits on a pipe whose writing end only sultana holds:
//! when sultana dies, the kernel closes it, the watcher reads end-of-file
//! and kills the command's whole group (a make and every compiler it
//! started). When the command ends normally, sultana stops the watcher.
//! PR_SET_PDEATHSIG alone would stop only the direct child, not the
//! processes it started.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The watcher of one process group; stopped and reaped when dropped.
pub struct Watcher {
    pid: libc::pid_t,
    /// sultana's end of the pipe: closed by the kernel when sultana dies.
    _alive: OwnedFd,
}

/// Start a watcher that kills process group `group` when sultana dies.
/// None when it cannot be started (the command still runs; a SIGINT or
/// SIGTERM to sultana still stops it).
pub fn watch(group: libc::pid_t) -> Option<Watcher> {
    if group <= 1 {
        return None;
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills two descriptors, owned from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: fresh descriptors from pipe2.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let read_fd = read_end.as_raw_fd();
    // SAFETY: between fork and _exit the child calls only async-signal-safe
    // functions (close_range, signal, read, killpg, _exit) and touches no lock or
    // allocation of the parent's threads.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            // Keep only the read end: another watcher or a command holding
            // a copy of any writing end would keep this one from waking,
            // and a lock file's descriptor must not outlive sultana here.
            close_from_except(0, read_fd);
            // A ^C or a closed terminal reaches sultana's group, this one
            // too: sultana's own handler stops the commands then.
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::signal(libc::SIGQUIT, libc::SIG_IGN);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            let mut byte = 0u8;
            loop {
                let n = libc::read(read_fd, (&mut byte as *mut u8).cast(), 1);
                if n == 0 {
                    break;
                }
                if n < 0 && *libc::__errno_location() != libc::EINTR {
                    break;
                }
            }
            libc::killpg(group, libc::SIGKILL);
            libc::_exit(0);
        }
    }
    if pid < 0 {
        return None;
    }
    drop(read_end);
    Some(Watcher { pid, _alive: write_end })
}

/// Close every descriptor from `first` on but `keep`.
///
/// SAFETY: async-signal-safe (close_range, close).
unsafe fn close_from_except(first: libc::c_int, keep: libc::c_int) {
    let close_range = |low: libc::c_int, high: libc::c_uint| {
        if (low as libc::c_uint) > high {
            return;
        }
        let done = libc::syscall(libc::SYS_close_range, low as libc::c_uint, high, 0 as libc::c_uint) == 0;
        if !done {
            // Kernels before 5.9: one by one, up to a generous limit.
            let top = high.min(65_535) as libc::c_int;
            for fd in low..=top {
                libc::close(fd);
            }
        }
    };
    if keep > first {
        close_range(first, (keep - 1) as libc::c_uint);
    }
    close_range(keep + 1, libc::c_uint::MAX);
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // SAFETY: the watcher is sultana's own child; killing and reaping
        // it touches nothing else.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watcher_is_stopped_and_reaped_with_its_guard() {
        let watcher = watch(std::process::id() as i32 + 1_000_000).expect("a watcher starts");
        let pid = watcher.pid;
        // SAFETY: signal 0 only asks whether the process exists.
        assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "the watcher runs");
        drop(watcher);
        assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "stopped and reaped, no zombie left");
    }
}
