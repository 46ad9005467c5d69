//! Symlinks of a tree resolved as the kernel resolves them: one link's
//! target text may look harmless (`esc -> self/self/../..`) and still leave
//! the tree through another link (`self -> .`). Every link of a tarball is
//! followed through every other, and one that leads outside is refused.

use std::collections::{BTreeMap, VecDeque};

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

/// Follow the link at `path` to its end, every link on the way included.
fn resolve(links: &BTreeMap<Vec<u8>, Vec<u8>>, path: &[u8], target: &[u8]) -> Result<(), String> {
    let outside = || {
        format!(
            "points to `{}`, which leads outside the tree once its links are followed",
            String::from_utf8_lossy(target)
        )
    };
    if target.starts_with(b"/") {
        return Err(format!(
            "points to the absolute path `{}`, outside the tree",
            String::from_utf8_lossy(target)
        ));
    }
    // The link's own folder, then its target's parts still to walk.
    let mut at: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    at.pop();
    let mut pending: VecDeque<&[u8]> = target.split(|b| *b == b'/').collect();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        match part {
            b"" | b"." => continue,
            b".." => {
                if at.pop().is_none() {
                    return Err(outside());
                }
                continue;
            }
            _ => at.push(part),
        }
        let joined = at.join(&b'/');
        if let Some(next) = links.get(&joined) {
            hops += 1;
            if hops > MAX_HOPS {
                return Err(format!(
                    "points to `{}` through a loop of symlinks",
                    String::from_utf8_lossy(target)
                ));
            }
            if next.starts_with(b"/") {
                return Err(outside());
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
