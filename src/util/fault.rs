//! Deterministic crash points for the fault-injection tests.
//!
//! `SULTANA_TEST_CRASH_AT=<point>` (or `<point>#<n>`, the n-th time it is
//! reached) makes the process die there by SIGKILL, exactly as under
//! `kill -9`: no destructors, no cleanup, no core file. `SULTANA_TEST_TRACE=<file>` appends the name of
//! every point reached to the file, so a test can list the kill points of a
//! command before choosing some.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

fn counts() -> &'static Mutex<HashMap<String, usize>> {
    static COUNTS: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    COUNTS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Whether fault injection is on at all (read once: points sit in loops).
/// Never in a release build (what `cargo install` makes and users run): an
/// environment variable must not be able to kill it half way through.
fn active() -> bool {
    if !cfg!(debug_assertions) {
        return false;
    }
    static ACTIVE: OnceLock<bool> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        std::env::var_os("SULTANA_TEST_CRASH_AT").is_some() || std::env::var_os("SULTANA_TEST_TRACE").is_some()
    })
}

pub fn point(name: &str) {
    if !active() {
        return;
    }
    let crash = std::env::var("SULTANA_TEST_CRASH_AT").ok();
    let trace = std::env::var_os("SULTANA_TEST_TRACE");
    let n = {
        let Ok(mut counts) = counts().lock() else { return };
        let n = counts.entry(name.to_string()).or_insert(0);
        *n += 1;
        *n
    };
    if let Some(path) = trace {
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(file, "{name}#{n}");
        }
    }
    if let Some(wanted) = crash {
        let (wanted_name, wanted_n) = match wanted.split_once('#') {
            Some((w, k)) => (w.to_string(), k.parse().unwrap_or(1)),
            None => (wanted, 1),
        };
        if wanted_name == name && wanted_n == n {
            // SAFETY: sends a signal to this very process.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            std::process::abort();
        }
    }
}
