//! The entries libgit2 never writes into a checkout, found in the tree
//! before a checkout starts: a typed refusal naming the entry, instead of
//! libgit2's "invalid path" message (which it raises under several error
//! classes and no code of its own), and nothing written.
//!
//! The rules are libgit2 1.9's for a working tree on Linux
//! (`GIT_PATH_REJECT_WORKDIR_DEFAULTS` with `core.protectNTFS`, on by
//! default), per path component: `src/libgit2/path.c`.

/// An upstream tree's entry git never checks out.
#[derive(Debug, thiserror::Error)]
#[error(
    "the upstream tree has an entry git never checks out (`{}`: a `.git` entry or a path leaving \
     the checkout); nothing was written",
    .0.escape_debug()
)]
pub struct RefusedEntry(pub String);

/// The first entry of `tree` (with its path) that libgit2 refuses to check out.
pub fn refused_entry(tree: &git2::Tree) -> Option<RefusedEntry> {
    let mut found = None;
    let _ = tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let name = entry.name_bytes();
        let symlink = entry.filemode() == 0o120000;
        if is_refused(name, symlink) {
            found = Some(RefusedEntry(format!("{dir}{}", String::from_utf8_lossy(name))));
            return git2::TreeWalkResult::Abort;
        }
        git2::TreeWalkResult::Ok
    });
    found
}

/// One path component: empty, `.`, `..`, a `.git` NTFS would open (`.git`
/// in any case, its short name `git~1`, either with trailing dots and
/// spaces, or with a `\` or an alternate stream `:` after it), or a link
/// NTFS would open as `.gitmodules`.
pub fn is_refused(name: &[u8], symlink: bool) -> bool {
    if name.is_empty() || name == b"." || name == b".." {
        return true;
    }
    // libgit2's reserved names: the first one the name starts with decides.
    for reserved in [&b".git"[..], b"git~1"] {
        if name.len() >= reserved.len() && name[..reserved.len()].eq_ignore_ascii_case(reserved) {
            let rest = &name[reserved.len()..];
            if matches!(rest.first(), Some(b'\\' | b':')) || rest.iter().all(|c| matches!(c, b' ' | b'.')) {
                return true;
            }
            break;
        }
    }
    symlink && is_ntfs_gitmodules(name)
}

/// Whether NTFS would open `name` as `.gitmodules`: the name itself, its
/// short name `gitmod~N`, or the hashed fallback `gi7eba~N`, each followed
/// by nothing but dots and spaces up to the end or an alternate stream.
fn is_ntfs_gitmodules(name: &[u8]) -> bool {
    const FILE: &[u8] = b"gitmodules";
    const HASHED: &[u8] = b"gi7eba";
    let at = |i: usize| name.get(i).copied().unwrap_or(0);
    if at(0) == b'.' && name.len() > FILE.len() && name[1..=FILE.len()].eq_ignore_ascii_case(FILE) {
        return ntfs_end_of_name(&name[FILE.len() + 1..]);
    }
    if name.len() >= 8 && name[..6].eq_ignore_ascii_case(&FILE[..6]) && at(6) == b'~' && (b'1'..=b'4').contains(&at(7))
    {
        return ntfs_end_of_name(&name[8..]);
    }
    let mut saw_tilde = false;
    let mut i = 0;
    while i < 8 {
        let c = at(i);
        if c == 0 {
            return false;
        } else if saw_tilde {
            if !c.is_ascii_digit() {
                return false;
            }
        } else if c == b'~' {
            if !(b'1'..=b'9').contains(&at(i + 1)) {
                return false;
            }
            saw_tilde = true;
        } else if i >= 6 || c > 127 || c.to_ascii_lowercase() != HASHED[i] {
            return false;
        }
        i += 1;
    }
    ntfs_end_of_name(&name[i..])
}

/// Nothing but dots and spaces up to the end or an alternate stream (`:`).
fn ntfs_end_of_name(rest: &[u8]) -> bool {
    for &c in rest {
        if c == b':' {
            return true;
        }
        if c != b' ' && c != b'.' {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::{Oid, Repository};

    #[test]
    fn the_names_libgit2_never_checks_out_are_found_in_the_tree() {
        for name in [
            &b".git"[..],
            b".GIT",
            b".Git. ",
            b".git:x",
            b".git\\x",
            b"git~1",
            b"GIT~1:x",
            b".",
            b"..",
            b"",
        ] {
            assert!(is_refused(name, false), "{}", String::from_utf8_lossy(name));
        }
        for name in [
            &b".gitignore"[..],
            b"git",
            b".github",
            b".gitx",
            b"git~2",
            b"README",
            b"a b",
        ] {
            assert!(!is_refused(name, false), "{}", String::from_utf8_lossy(name));
        }
        // `.gitmodules` as a link, in the names NTFS gives it; a file is fine.
        for name in [
            &b".gitmodules"[..],
            b".GITMODULES . ",
            b"gitmod~1",
            b"gi7eba~9",
            b".gitmodules:x",
        ] {
            assert!(is_refused(name, true), "{}", String::from_utf8_lossy(name));
            assert!(!is_refused(name, false), "{}", String::from_utf8_lossy(name));
        }
        for name in [&b".gitmodulesx"[..], b"gitmod~5", b"gi7eba~x", b"gi7ebb~1"] {
            assert!(!is_refused(name, true), "{}", String::from_utf8_lossy(name));
        }

        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        // A tree builder refuses `.git` too: the hostile trees are written raw.
        let raw = |entries: &[(&str, &[u8], Oid)]| {
            let mut bytes = Vec::new();
            for (mode, name, oid) in entries {
                bytes.extend(format!("{mode} ").as_bytes());
                bytes.extend(*name);
                bytes.push(0);
                bytes.extend_from_slice(oid.as_bytes());
            }
            repo.odb().unwrap().write(git2::ObjectType::Tree, &bytes).unwrap()
        };
        let clean = raw(&[("100644", b"README", blob)]);
        let sub = raw(&[("100644", b".git:x", blob), ("100644", b"README", blob)]);
        let top = raw(&[("100644", b"README", blob), ("40000", b"sub", sub)]);
        let found = refused_entry(&repo.find_tree(top).unwrap()).map(|r| r.0);
        assert_eq!(found.as_deref(), Some("sub/.git:x"));
        assert!(refused_entry(&repo.find_tree(clean).unwrap()).is_none());
        // A name holding a slash is checked out as the path it spells.
        let slashed = raw(&[("100644", b"a/b", blob)]);
        assert!(refused_entry(&repo.find_tree(slashed).unwrap()).is_none());
        let link = raw(&[("120000", b".gitmodules", blob)]);
        assert!(refused_entry(&repo.find_tree(link).unwrap()).is_some());
    }

    /// The rules against libgit2 itself: each name checked out for real.
    #[test]
    fn the_rules_are_libgit2_s_own() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path().join("w")).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let names: &[&[u8]] = &[
            b".git",
            b".GIT",
            b".git.",
            b".git ",
            b".git. . ",
            b".git:x",
            b".git\\x",
            b".gitx",
            b".git~1",
            b"git~1",
            b"GIT~1",
            b"git~1.",
            b"git~1:x",
            b"git~2",
            b"git~10",
            b".",
            b"..",
            b"...",
            b".gitmodules",
            b".gitmodules.",
            b".GitModules :x",
            b".gitmodulesx",
            b"gitmod~1",
            b"gitmod~4 .",
            b"gitmod~5",
            b"gi7eba~1",
            b"gi7eba~12",
            b"gi7eba~x",
            b"gi7eb~1",
            b".gitattributes",
            b"README",
            b"a b",
            b"x:y",
        ];
        for name in names {
            for (mode, symlink) in [("100644", false), ("120000", true)] {
                let mut bytes = format!("{mode} ").into_bytes();
                bytes.extend(*name);
                bytes.push(0);
                bytes.extend_from_slice(blob.as_bytes());
                let tree = repo.odb().unwrap().write(git2::ObjectType::Tree, &bytes).unwrap();
                let tree = repo.find_tree(tree).unwrap();
                let mut force = git2::build::CheckoutBuilder::new();
                force.force().remove_untracked(true);
                let refused_by_libgit2 = repo.checkout_tree(tree.as_object(), Some(&mut force)).is_err();
                let shown = String::from_utf8_lossy(name);
                assert_eq!(
                    is_refused(name, symlink),
                    refused_by_libgit2,
                    "{shown} (link: {symlink})"
                );
                // Clean up for the next name.
                let empty = repo.treebuilder(None).unwrap().write().unwrap();
                let empty = repo.find_tree(empty).unwrap();
                let mut force = git2::build::CheckoutBuilder::new();
                force.force().remove_untracked(true);
                repo.checkout_tree(empty.as_object(), Some(&mut force)).unwrap();
            }
        }
    }
}
