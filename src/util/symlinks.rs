//! Symlinks of a tree resolved as the kernel resolves them: one link's
//! target text may look harmless (`esc -> self/self/../..`) and still leave
//! the tree through another link (`self -> .`). Every link of a tree (a
//! tarball, an upstream commit before it is checked out, a source folder
//! before an offline build) is followed through every other, and one that
//! leads outside is refused.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

/// Links followed in one resolution before giving up, as Linux's MAXSYMLINKS.
const MAX_HOPS: usize = 40;

/// Check every link in `links` (path below the top -> target, both as
/// bytes), and that no entry of `paths` sits below a link (extracting it
/// would write through the link). The error names the path and why.
pub fn check_all<'a>(
    links: &BTreeMap<Vec<u8>, Vec<u8>>,
    paths: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(), (Vec<u8>, String)> {
    for path in paths {
        let mut prefix = Vec::new();
        let parts: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(part);
            if links.contains_key(&prefix) {
                return Err((
                    path.to_vec(),
                    format!("lies below the symlink `{}`", String::from_utf8_lossy(&prefix)),
                ));
            }
        }
    }
    for (path, target) in links {
        resolve(links, path, target).map_err(|m| (path.clone(), m))?;
    }
    Ok(())
}

/// The symlinks below `root` on disk (path below it -> target), not looking
/// into `.git` folders nor into the top-level folders named in `skip`; at
/// most `limit` entries are visited.
pub fn on_disk(root: &Path, skip: &[&str], limit: usize) -> std::io::Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    let mut links = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    let mut seen = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            seen += 1;
            if seen > limit {
                return Err(std::io::Error::other(format!(
                    "{} has more than {limit} entries",
                    root.display()
                )));
            }
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                let rel = entry.path();
                let rel = rel.strip_prefix(root).unwrap_or(&rel);
                let target = std::fs::read_link(entry.path())?;
                links.insert(
                    rel.as_os_str().as_bytes().to_vec(),
                    target.as_os_str().as_bytes().to_vec(),
                );
            } else if kind.is_dir() && entry.file_name() != ".git" {
                let skipped = dir == root && skip.iter().any(|s| entry.file_name() == *s);
                if !skipped {
                    pending.push(entry.path());
                }
            }
        }
    }
    Ok(links)
}

/// One link on its own: its target text must stay inside the tree.
pub fn check_one(path: &[u8], target: &[u8]) -> Result<(), String> {
    resolve(&BTreeMap::new(), path, target)
}

/// Follow the link at `path` to its end, every link on the way included.
fn resolve(links: &BTreeMap<Vec<u8>, Vec<u8>>, path: &[u8], target: &[u8]) -> Result<(), String> {
    let shown = String::from_utf8_lossy(target);
    if target.is_empty() {
        return Err("has an empty target".into());
    }
    if target.starts_with(b"/") {
        return Err(format!("points to the absolute path `{shown}`, outside the tarball"));
    }
    let mut hops = 0;
    let outside = |hops: usize| {
        if hops == 0 {
            format!("points to `{shown}`, outside the tarball")
        } else {
            format!("points to `{shown}`, which leads outside the tree once its links are followed")
        }
    };
    // The link's own folder, then its target's parts still to walk.
    let mut at: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    at.pop();
    let mut pending: VecDeque<&[u8]> = target.split(|b| *b == b'/').collect();
    while let Some(part) = pending.pop_front() {
        match part {
            b"" | b"." => continue,
            b".." => {
                if at.pop().is_none() {
                    return Err(outside(hops));
                }
                continue;
            }
            _ => at.push(part),
        }
        let joined = at.join(&b'/');
        if let Some(next) = links.get(&joined) {
            hops += 1;
            if hops > MAX_HOPS {
                return Err(format!("points to `{shown}` through a loop of symlinks"));
            }
            if next.starts_with(b"/") {
                return Err(outside(hops));
            }
            at.pop();
            for piece in next.split(|b| *b == b'/').rev() {
                pending.push_front(piece);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(pairs: &[(&str, &str)]) -> BTreeMap<Vec<u8>, Vec<u8>> {
        pairs
            .iter()
            .map(|(p, t)| (p.as_bytes().to_vec(), t.as_bytes().to_vec()))
            .collect()
    }

    fn check(pairs: &[(&str, &str)]) -> Result<(), String> {
        check_all(&links(pairs), std::iter::empty()).map_err(|(p, m)| format!("{}: {m}", String::from_utf8_lossy(&p)))
    }

    #[test]
    fn chains_that_leave_are_refused() {
        assert!(check(&[("self", "."), ("esc", "self/self/../..")]).is_err());
        assert!(check(&[("a/up", ".."), ("a/esc", "up/a/up/..")]).is_err());
        assert!(check(&[("a/b", "../c"), ("c", "/etc")]).is_err());
        assert!(check(&[("loop1", "loop2"), ("loop2", "loop1")]).is_err());
        assert!(check(&[("x", "../etc/passwd")]).is_err());
    }

    #[test]
    fn links_inside_pass() {
        assert!(check(&[("self", "."), ("ok", "self/self/README")]).is_ok());
        assert!(check(&[("tools/x", "../README"), ("tools/a/y", "../../xen/include")]).is_ok());
        assert!(check(&[("a/up", ".."), ("a/in", "up/a/file")]).is_ok());
        assert!(check(&[("dangling", "missing/file")]).is_ok());
    }

    #[test]
    fn entries_below_a_link_are_refused() {
        let l = links(&[("dir", "elsewhere")]);
        assert!(check_all(&l, [&b"dir/file"[..]]).is_err());
        assert!(check_all(&l, [&b"dirfile"[..], b"dir"]).is_ok());
    }
}
