//! The model: what the user's files say — the manifest (`sultana.toml`,
//! `sultana.local.toml`), the lock, the recipes — and the workspace they
//! make (where each tree, build and staged install is).

pub mod lock;
pub mod manifest;
pub mod recipe;
pub mod session;
pub mod workspace;
