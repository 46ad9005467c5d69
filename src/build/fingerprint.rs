//! What decides whether a component must be rebuilt: a hash of everything
//! that goes into its build, with the source tree's state taken after the
//! last build (so outputs an in-tree build leaves behind do not count as a
//! change) and written only once the staged install is in place.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Paths, sizes, modification times, modes and link targets of every file
/// below `dir`, skipping `.git` folders and the top-level folders named in
/// `skip` (a workspace's own `build/`, `dist/` and `.sultana/` when the root
/// tree is the workspace itself, as in an unpacked release tarball).
pub fn tree(dir: &Path, skip: &[&str]) -> std::io::Result<String> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if skip.iter().any(|s| entry.file_name() == *s) {
            continue;
        }
        walk_entry(dir, &entry, &mut entries)?;
    }
    entries.sort();
    let mut hash = Sha256::new();
    for entry in entries {
        hash.update(entry.as_bytes());
        hash.update(b"\n");
    }
    Ok(hex(&hash.finalize()))
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        walk_entry(base, &entry?, out)?;
    }
    Ok(())
}

fn walk_entry(base: &Path, entry: &fs::DirEntry, out: &mut Vec<String>) -> std::io::Result<()> {
    if entry.file_name() == ".git" {
        return Ok(());
    }
    let path = entry.path();
    let meta = fs::symlink_metadata(&path)?;
    let rel = path.strip_prefix(base).unwrap_or(&path).display().to_string();
    if meta.is_dir() {
        walk(base, &path, out)?;
    } else if meta.file_type().is_symlink() {
        out.push(format!("{rel}\0link\0{}", fs::read_link(&path)?.display()));
    } else {
        out.push(format!(
            "{rel}\0{}\0{}.{}\0{:o}",
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.mode()
        ));
    }
    Ok(())
}

pub fn combine(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hex(&hash.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_changes_with_content_but_not_git() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.c"), "1").unwrap();
        fs::create_dir(dir.path().join(".git")).unwrap();
        let before = tree(dir.path(), &[]).unwrap();
        fs::write(dir.path().join(".git/HEAD"), "x").unwrap();
        assert_eq!(tree(dir.path(), &[]).unwrap(), before);
        fs::create_dir(dir.path().join("dist")).unwrap();
        fs::write(dir.path().join("dist/out"), "x").unwrap();
        assert_eq!(tree(dir.path(), &["dist"]).unwrap(), before);
        fs::write(dir.path().join("a.c"), "22").unwrap();
        assert_ne!(tree(dir.path(), &["dist"]).unwrap(), before);
    }
}
