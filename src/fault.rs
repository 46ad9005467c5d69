//! Deterministic crash points for the fault-injection tests: with
//! `SULTANA_TEST_CRASH_AT=<point>` the process dies at that point as abruptly
//! as under `kill -9` (no destructors, no cleanup).

pub fn point(name: &str) {
    if let Some(wanted) = std::env::var_os("SULTANA_TEST_CRASH_AT") {
        if wanted == name {
            std::process::abort();
        }
    }
}
