//! Only for sultana's own tests and demo: fixture projects in throwaway git
//! repositories, and the fuzzing entry points.

pub mod fixtures;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
