//! Exit-code classification shared by every command.
//!
//! As the README's "Exit codes": 0 ok; 1 a check, gate or test failed; 2
//! usage, manifest or tool error.

/// A check the user asked for did not hold (lock out of date, dirty tree left
/// behind, gate regression). Exits 1 rather than 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckFailed(pub String);

pub const EXIT_OK: i32 = 0;
pub const EXIT_CHECK_FAILED: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|cause| cause.is::<CheckFailed>()) {
        EXIT_CHECK_FAILED
    } else {
        EXIT_ERROR
    }
}
