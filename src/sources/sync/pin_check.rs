//! Whether a lock entry's commit is what its revision names in the cache: a
//! lock saying tag v1 is a commit of another branch is caught, not trusted.

use serde::Serialize;

use crate::git::{Oid, RevKind, Store};
use crate::lock::LockEntry;

/// How a pinned commit relates to what its revision resolves to now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum PinCheck {
    /// The tag or commit is exactly the pin, or the branch's tip is.
    Exact,
    /// The pin is an older commit of the branch (the branch moved on).
    OnBranch { behind: usize },
    /// The pin is not in the branch's history (rewritten, or a wrong lock).
    NotOnBranch { branch: String, tip: String },
    /// The tag names another commit than the pin.
    TagDiffers { tag: String, commit: String },
    /// The revision is a commit id, and the lock pins another commit.
    CommitDiffers,
    /// The cache cannot say (never fetched, or the revision is unknown there).
    Unknown { reason: String },
}

impl PinCheck {
    /// A pin that cannot be what its revision says.
    pub fn contradicts(&self) -> bool {
        matches!(
            self,
            PinCheck::NotOnBranch { .. } | PinCheck::TagDiffers { .. } | PinCheck::CommitDiffers
        )
    }

    pub fn describe(&self, entry: &LockEntry) -> String {
        match self {
            PinCheck::Exact => format!("{} is `{}`", entry.short(), entry.revision),
            PinCheck::OnBranch { behind } => format!(
                "{} is on branch `{}`, {behind} commit(s) behind its tip",
                entry.short(),
                entry.revision
            ),
            PinCheck::NotOnBranch { branch, tip } => format!(
                "sultana.lock pins {} for branch `{branch}`, but that commit is not in the branch's history (tip {})",
                entry.short(),
                &tip[..12.min(tip.len())]
            ),
            PinCheck::TagDiffers { tag, commit } => format!(
                "sultana.lock pins {} for tag `{tag}`, but the tag is commit {}",
                entry.short(),
                &commit[..12.min(commit.len())]
            ),
            PinCheck::CommitDiffers => format!(
                "sultana.lock pins {} for revision {}, another commit",
                entry.short(),
                entry.revision
            ),
            PinCheck::Unknown { reason } => format!("not verified: {reason}"),
        }
    }
}

/// Check `entry` against the names `sources` gave the store.
pub fn check(store: &Store, sources: &[String], entry: &LockEntry) -> PinCheck {
    let Ok(pin) = Oid::from_str(&entry.commit) else {
        return PinCheck::Unknown {
            reason: "the locked commit is not a commit id".into(),
        };
    };
    let (resolved, _) = match store.resolve_among(&entry.revision, sources) {
        Ok(r) => r,
        Err(e) => return PinCheck::Unknown { reason: e.to_string() },
    };
    if resolved.commit == pin {
        return PinCheck::Exact;
    }
    match resolved.kind {
        RevKind::Tag(tag) => PinCheck::TagDiffers {
            tag,
            commit: resolved.commit.to_string(),
        },
        RevKind::Commit => PinCheck::CommitDiffers,
        RevKind::Branch(branch) => {
            let on_branch = store.repo().graph_descendant_of(resolved.commit, pin).unwrap_or(false);
            if on_branch {
                let behind = store
                    .repo()
                    .graph_ahead_behind(resolved.commit, pin)
                    .map(|(a, _)| a)
                    .unwrap_or(0);
                PinCheck::OnBranch { behind }
            } else if store.is_shallow() {
                PinCheck::Unknown {
                    reason: "the cache is shallow: the branch's history is not all there".into(),
                }
            } else {
                PinCheck::NotOnBranch {
                    branch,
                    tip: resolved.commit.to_string(),
                }
            }
        }
    }
}
