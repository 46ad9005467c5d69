//! The operations the commands run: build (with its caches), tarball (and
//! its SBOMs and verification), gate (flights, history, CI engines), VM
//! tests, detection of installed components, Config.mk, the demo.

pub mod build;
pub mod config_mk;
pub mod demo;
pub mod detect;
pub mod gate;
pub mod tarball;
pub mod vm;
