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
    std::fs::create_dir_all(destdir).with_context(|| format!("cannot create {}", destdir.display()))?;
    // Every folder written into is resolved as the kernel would (links
    // followed) and must stay below this: a link staged by one component
    // never carries another's files out of DESTDIR.
    let root = fs::canonicalize(destdir).with_context(|| format!("cannot resolve {}", destdir.display()))?;
    let mut done = Vec::new();
    for component in components {
        let staging = staging_root(ws, &component.name);
        let count = merge(&staging, destdir, &root)
            .with_context(|| format!("cannot install {} into {}", component.name, destdir.display()))?;
        done.push((component.name.clone(), count));
    }
    Ok(done)
}

/// Merge `from` into `to`: folders created, files replaced atomically,
/// symlinks recreated (never followed when written); `to` must resolve to
/// a folder below `root`.
fn merge(from: &Path, to: &Path, root: &Path) -> std::io::Result<usize> {
    fs::create_dir_all(to)?;
    let resolved = fs::canonicalize(to)?;
    if !resolved.starts_with(root) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} resolves to {}, outside {} (a staged symlink points out): nothing is written there",
                to.display(),
                resolved.display(),
                root.display()
            ),
        ));
    }
    let mut count = 0;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&source)?;
        let tmp = to.join(format!(".{}.sultana-new", entry.file_name().to_string_lossy()));
        if meta.is_dir() {
            count += merge(&source, &target, root)?;
        } else if meta.file_type().is_symlink() {
            fsutil::remove_all(&tmp)?;
            std::os::unix::fs::symlink(fs::read_link(&source)?, &tmp)?;
            fs::rename(&tmp, &target)?;
            count += 1;
        } else if meta.is_file() {
            fsutil::remove_all(&tmp)?;
            copy_new(&source, &tmp, meta.permissions())?;
            fs::rename(&tmp, &target)?;
            count += 1;
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is a FIFO, socket or device: not installed", source.display()),
            ));
        }
    }
    Ok(count)
}

/// Copy a file to a name that must not exist yet (a link planted there is
/// never followed).
fn copy_new(from: &Path, to: &Path, permissions: fs::Permissions) -> std::io::Result<()> {
    let mut input = fs::File::open(from)?;
    let mut output = fs::File::options().write(true).create_new(true).open(to)?;
    std::io::copy(&mut input, &mut output)?;
    output.set_permissions(permissions)?;
    Ok(())
}
