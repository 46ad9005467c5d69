//! Every process group sultana starts is known here, so that SIGINT,
//! SIGTERM or SIGHUP to sultana stops them all before it exits: a terminated gate
//! leaves no test script running, a ^C leaves no make behind.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Slots for the processes alive at once (jobs × nested steps is far
/// below). A slot holds a process group id, or minus the pid of a process
/// left in sultana's own group.
const SLOTS: usize = 256;
static GROUPS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Set when SIGINT, SIGTERM or SIGHUP reached sultana: what fails from then
/// on was stopped, not broken.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether sultana is being stopped by a signal (Ctrl-C, SIGTERM, SIGHUP).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A started group, forgotten when dropped (the command has ended).
pub struct Registered(usize);

impl Drop for Registered {
    fn drop(&mut self) {
        GROUPS[self.0].store(0, Ordering::SeqCst);
    }
}

/// What to stop on SIGINT/SIGTERM.
#[derive(Clone, Copy, Debug)]
pub enum Started {
    /// A command in a process group of its own (the group's id).
    Group(i32),
    /// A command left in sultana's group, for the terminal (its pid).
    Process(i32),
}

/// Remember a started command to stop on SIGINT/SIGTERM.
pub fn register(started: Started) -> Option<Registered> {
    let value = match started {
        Started::Group(group) if group > 1 => group,
        Started::Process(pid) if pid > 1 => -pid,
        _ => return None,
    };
    install();
    for (i, slot) in GROUPS.iter().enumerate() {
        if slot
            .compare_exchange(0, value, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return Some(Registered(i));
        }
    }
    None
}

fn install() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    // SAFETY: the handler only calls async-signal-safe functions (killpg,
    // waitpid, nanosleep, signal, raise) and reads atomics.
    unsafe {
        // A closed terminal or a dropped ssh (SIGHUP): as SIGTERM. A signal
        // sultana was started ignoring (`nohup`, a background job's SIGINT)
        // stays ignored.
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            let before = libc::signal(signal, on_signal as *const () as libc::sighandler_t);
            if before == libc::SIG_IGN {
                libc::signal(signal, libc::SIG_IGN);
            }
        }
    }
}

/// Send `signal` to what a slot holds: its group, or its one process.
///
/// SAFETY: async-signal-safe (kill, killpg).
unsafe fn send(value: i32, signal: libc::c_int) -> bool {
    if value > 1 {
        libc::killpg(value, signal) == 0
    } else if value < -1 {
        libc::kill(-value, signal) == 0
    } else {
        false
    }
}

extern "C" fn on_signal(signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // SAFETY: async-signal-safe calls only; see `install`.
    unsafe {
        for slot in &GROUPS {
            send(slot.load(Ordering::SeqCst), libc::SIGTERM);
        }
        // A moment for TERM traps to clean up, reaping as they end.
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        for _ in 0..60 {
            let mut alive = false;
            for slot in &GROUPS {
                let value = slot.load(Ordering::SeqCst);
                // waitpid's own spelling: -group for a group, pid for one.
                let wait_for = -value;
                if !(-1..=1).contains(&value) {
                    while libc::waitpid(wait_for, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
                }
                alive |= send(value, 0);
            }
            if !alive {
                break;
            }
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
        for slot in &GROUPS {
            send(slot.load(Ordering::SeqCst), libc::SIGKILL);
        }
        // Die of the signal itself, as the caller expects.
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}
