//! Everything sultana does with git: through libgit2, and the git command
//! for transfers (its protocol support and progress are what users know).

mod cache;
mod checkout;
mod fetch_mode;
pub mod links;
mod on_demand;
mod resolve;
pub mod store_users;
pub mod submodule;
mod transfer;

pub use cache::{is_damaged_store, Cache, Elsewhere, FetchRequest, Store};
pub use checkout::{preview, tree_state, Checkout, Dirt, MoveMode, TreeState};
pub use fetch_mode::{FetchMode, Filter};
pub use on_demand::Need;
pub use resolve::{ResolveError, RevKind};

pub use git2::Oid;

/// libgit2's message without its `; class=Net (12)` suffix.
pub fn message(err: &git2::Error) -> String {
    err.message().trim_end_matches('.').to_string()
}

/// The git command for talking to a remote: `ext::` and `fd::` transports
/// off whatever a URL says, and never a password prompt.
pub fn transfer_command() -> crate::process::Cmd {
    crate::process::Cmd::new("git", "git")
        .args(["-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .in_foreground()
        .dies_with_sultana()
}

pub fn short(oid: Oid) -> String {
    oid.to_string()[..12].to_string()
}
