//! Every process group sultana starts is known here, so that SIGINT or
//! SIGTERM to sultana stops them all before it exits: a terminated gate
//! leaves no test script running, a ^C leaves no make behind.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Slots for the groups alive at once (jobs × nested steps is far below).
const SLOTS: usize = 256;
static GROUPS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A started group, forgotten when dropped (the command has ended).
pub struct Registered(usize);

impl Drop for Registered {
    fn drop(&mut self) {
        GROUPS[self.0].store(0, Ordering::SeqCst);
    }
}

/// Remember a process group to stop on SIGINT/SIGTERM.
pub fn register(group: i32) -> Option<Registered> {
    if group <= 1 {
        return None;
    }
    install();
    for (i, slot) in GROUPS.iter().enumerate() {
        if slot
            .compare_exchange(0, group, Ordering::SeqCst, Ordering::SeqCst)
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
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: async-signal-safe calls only; see `install`.
    unsafe {
        for slot in &GROUPS {
            let group = slot.load(Ordering::SeqCst);
            if group > 1 {
                libc::killpg(group, libc::SIGTERM);
            }
        }
        // A moment for TERM traps to clean up, reaping as they end.
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        for _ in 0..60 {
            let mut alive = false;
            for slot in &GROUPS {
                let group = slot.load(Ordering::SeqCst);
                if group > 1 {
                    while libc::waitpid(-group, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
                    if libc::killpg(group, 0) == 0 {
                        alive = true;
                    }
                }
            }
            if !alive {
                break;
            }
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
        for slot in &GROUPS {
            let group = slot.load(Ordering::SeqCst);
            if group > 1 {
                libc::killpg(group, libc::SIGKILL);
            }
        }
        // Die of the signal itself, as the caller expects.
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}
