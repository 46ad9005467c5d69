//! The one integration-test binary: real git repositories in temp folders,
//! the real `sultana` binary.

mod support;

mod build;
mod ci;
mod cli;
mod config_mk;
mod diskfull;
mod docs;
mod faults;
mod fetch;
mod flight_history;
mod fuzz;
mod gate;
mod gate_attacks;
mod gate_rules;
mod hostile;
mod inner_loop;
mod killpoints;
mod output;
mod partial;
mod provenance;
mod remote_cache;
mod sources;
mod submodules;
mod tarball;
mod trust;
mod update;
mod vm;
mod workspace;
