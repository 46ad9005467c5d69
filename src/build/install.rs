//! `install`: copy what `build` staged into a DESTDIR (or the real root).

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::staging_root;
use crate::fsutil;
use crate::workspace::Workspace;

/// Copy each component's staging tree into `destdir`, in dependency order.
/// Returns (component, files) pairs.
pub fn install(ws: &Workspace, names: &[String], destdir: &Path) -> Result<Vec<(String, usize)>> {
    let components = ws.manifest.select(names, false)?;
    let mut missing = Vec::new();
    for component in &components {
        if !staging_root(ws, &component.name).is_dir() {
            missing.push(component.name.clone());
        }
    }
    if !missing.is_empty() {
        bail!("not built yet: {}; run `sultana build` first", missing.join(", "));
    }
    let mut done = Vec::new();
    for component in components {
        let staging = staging_root(ws, &component.name);
        let count = merge(&staging, destdir)
            .with_context(|| format!("cannot install {} into {}", component.name, destdir.display()))?;
        done.push((component.name.clone(), count));
    }
    Ok(done)
}

/// Merge `from` into `to`: folders created, files replaced atomically,
/// symlinks recreated.
fn merge(from: &Path, to: &Path) -> std::io::Result<usize> {
    fs::create_dir_all(to)?;
    let mut count = 0;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&source)?;
        if meta.is_dir() {
            count += merge(&source, &target)?;
        } else if meta.file_type().is_symlink() {
            let tmp = to.join(format!(".{}.sultana-new", entry.file_name().to_string_lossy()));
            fsutil::remove_all(&tmp)?;
            std::os::unix::fs::symlink(fs::read_link(&source)?, &tmp)?;
            fs::rename(&tmp, &target)?;
            count += 1;
        } else {
            let tmp = to.join(format!(".{}.sultana-new", entry.file_name().to_string_lossy()));
            fs::copy(&source, &tmp)?;
            fs::rename(&tmp, &target)?;
            count += 1;
        }
    }
    Ok(count)
}
