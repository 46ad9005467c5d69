//! Where trees come from: the shared git cache (stores, pins, partial and
//! shallow fetches, submodules, checkouts) and the sync that fetches,
//! resolves and places each component's tree.

pub mod git;
pub mod sync;
