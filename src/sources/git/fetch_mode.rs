//! How much of a repository a job fetches: everything, the commit graph
//! without trees or blobs (`--filter`), or the last commits only
//! (`--depth`). git's own spelling, so people know it.

use std::fmt;

/// A partial clone's filter (the two that keep the whole commit graph).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    /// Commits only: trees and blobs come when a commit is checked out.
    TreeZero,
    /// Commits and trees: blobs come when a commit is checked out.
    BlobNone,
}

impl Filter {
    pub fn as_str(self) -> &'static str {
        match self {
            Filter::TreeZero => "tree:0",
            Filter::BlobNone => "blob:none",
        }
    }

    pub fn parse(text: &str) -> Result<Filter, String> {
        match text {
            "tree:0" => Ok(Filter::TreeZero),
            "blob:none" => Ok(Filter::BlobNone),
            other => Err(format!(
                "filter `{}` is not one sultana uses: `tree:0` (commits only) or `blob:none` (commits and trees)",
                other.escape_debug()
            )),
        }
    }
}

/// What a job asks of a store, and what a store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FetchMode {
    #[default]
    Full,
    Filter(Filter),
    /// Shallow: this many commits of each fetched revision.
    Depth(u32),
}

/// The deepest `--depth` taken: deeper than any real history, and in git's range.
pub const MAX_DEPTH: u32 = 1 << 30;

impl FetchMode {
    /// From `filter` and `depth` as a command line or a manifest gives them.
    pub fn from_parts(filter: Option<&str>, depth: Option<i64>) -> Result<Option<FetchMode>, String> {
        match (filter, depth) {
            (Some(_), Some(_)) => Err("give `filter` or `depth`, not both".into()),
            (Some(f), None) => Ok(Some(FetchMode::Filter(Filter::parse(f)?))),
            (None, Some(d)) if d >= 1 && d <= i64::from(MAX_DEPTH) => Ok(Some(FetchMode::Depth(d as u32))),
            (None, Some(d)) => Err(format!("depth {d} is not a number of commits from 1 to {MAX_DEPTH}")),
            (None, None) => Ok(None),
        }
    }

    pub fn is_shallow(self) -> bool {
        matches!(self, FetchMode::Depth(_))
    }

    pub fn filter(self) -> Option<Filter> {
        match self {
            FetchMode::Filter(f) => Some(f),
            _ => None,
        }
    }
}

impl fmt::Display for FetchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchMode::Full => write!(f, "full"),
            FetchMode::Filter(filter) => write!(f, "partial ({})", filter.as_str()),
            FetchMode::Depth(n) => write!(f, "shallow (depth {n})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        assert_eq!(FetchMode::from_parts(None, None), Ok(None));
        assert_eq!(
            FetchMode::from_parts(Some("tree:0"), None),
            Ok(Some(FetchMode::Filter(Filter::TreeZero)))
        );
        assert_eq!(FetchMode::from_parts(None, Some(1)), Ok(Some(FetchMode::Depth(1))));
        assert!(FetchMode::from_parts(Some("blob:limit=1k"), None).is_err());
        assert!(FetchMode::from_parts(Some("tree:0"), Some(1)).is_err());
        assert!(FetchMode::from_parts(None, Some(0)).is_err());
        assert!(FetchMode::from_parts(None, Some(-1)).is_err());
        assert!(FetchMode::from_parts(None, Some(i64::MAX)).is_err());
    }
}
