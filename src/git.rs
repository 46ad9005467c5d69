//! Everything sultana does with git, through libgit2.

mod cache;
mod checkout;
mod resolve;
pub mod submodule;

pub use cache::{is_damaged_store, Cache, Store};
pub use checkout::{tree_state, Checkout, Dirt, MoveMode, TreeState};
pub use resolve::{ResolveError, Resolved, RevKind};

pub use git2::Oid;

/// libgit2's message without its `; class=Net (12)` suffix.
pub fn message(err: &git2::Error) -> String {
    err.message().trim_end_matches('.').to_string()
}

pub fn short(oid: Oid) -> String {
    oid.to_string()[..12].to_string()
}
