//! Level 0: what every layer uses and that knows nothing of Xen's trees —
//! subprocesses, output, files, globs, times, errors and exit codes, the
//! checks of untrusted text, kill points for the tests.

pub mod error;
pub mod fault;
pub mod fsutil;
pub mod glob;
pub mod oci_url;
pub mod parallel;
pub mod printer;
pub mod process;
pub mod symlinks;
pub mod timefmt;
pub mod validate;
