//! `install`: copy what `build` staged into a DESTDIR (or the real root).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::staging_root;
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
    // Every folder written into is opened by the kernel below DESTDIR
    // (openat2 RESOLVE_BENEATH, links followed only while they stay in it),
    // and written through that handle: a link staged by one component, or
    // swapped in while the install runs, never carries files out of it.
    let root = fs::File::open(destdir).with_context(|| format!("cannot open {}", destdir.display()))?;
    let root = OwnedFd::from(root);
    let mut done = Vec::new();
    for component in components {
        let staging = staging_root(ws, &component.name);
        let target = Target { root: &root, destdir };
        let count = merge(&staging, &target, Path::new(""))
            .with_context(|| format!("cannot install {} into {}", component.name, destdir.display()))?;
        done.push((component.name.clone(), count));
    }
    Ok(done)
}

/// DESTDIR, opened once, and its path for messages.
struct Target<'a> {
    root: &'a OwnedFd,
    destdir: &'a Path,
}

impl Target<'_> {
    /// The folder `relative` below DESTDIR, as the kernel resolves it,
    /// refused when that leaves DESTDIR.
    fn open(&self, relative: &Path) -> io::Result<OwnedFd> {
        let text = if relative.as_os_str().is_empty() {
            CString::new(".")
        } else {
            CString::new(relative.as_os_str().as_bytes())
        }
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name holds a NUL byte"))?;
        // SAFETY: open_how is plain data; zero is "no flags".
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC) as u64;
        // As in a chroot at DESTDIR: an absolute link resolves against it
        // (Debian's /var/run -> /run), `..` stops at it.
        how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        let mut fd = -1;
        for _ in 0..16 {
            // SAFETY: a valid dirfd, a NUL-terminated path and open_how's size.
            fd = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    self.root.as_raw_fd(),
                    text.as_ptr(),
                    &how as *const libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            // EAGAIN: a rename ran beside the lookup; look again.
            if fd >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
                break;
            }
        }
        if fd < 0 {
            let error = io::Error::last_os_error();
            if matches!(error.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
                // No openat2 (a kernel before 5.6, a seccomp filter that
                // refuses it): the path resolved and checked, then opened.
                return self.open_resolved(relative);
            }
            if error.raw_os_error() == Some(libc::EXDEV) {
                return Err(self.outside(relative));
            }
            return Err(error);
        }
        // SAFETY: a descriptor openat2 just returned.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// `open` without openat2: resolved by path and checked to be below
    /// DESTDIR (a swap between the check and the open is not caught, and an
    /// absolute link is followed as on the running system).
    fn open_resolved(&self, relative: &Path) -> io::Result<OwnedFd> {
        let root = fs::canonicalize(self.destdir)?;
        let resolved = fs::canonicalize(self.destdir.join(relative))?;
        if !resolved.starts_with(&root) {
            return Err(self.outside(relative));
        }
        Ok(OwnedFd::from(fs::File::open(resolved)?))
    }

    fn outside(&self, relative: &Path) -> io::Error {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} resolves outside {} (a staged symlink points out): nothing is written there",
                self.destdir.join(relative).display(),
                self.destdir.display()
            ),
        )
    }

    /// The folder `relative`, made when missing (its parent resolved below
    /// DESTDIR first).
    fn make(&self, relative: &Path) -> io::Result<OwnedFd> {
        match self.open(relative) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = self.make(relative.parent().unwrap_or(Path::new("")))?;
                let name = c_name(relative.file_name().unwrap_or_default())?;
                // SAFETY: a valid dirfd and a NUL-terminated name.
                if unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) } != 0 {
                    let error = io::Error::last_os_error();
                    if error.kind() != io::ErrorKind::AlreadyExists {
                        return Err(error);
                    }
                }
                self.open(relative).map_err(|e| match e.kind() {
                    // There, but no folder it leads to: a link to nowhere.
                    io::ErrorKind::NotFound => io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "{} is a link that leads to no folder inside {} (read as in a chroot there): nothing is written through it",
                            self.destdir.join(relative).display(),
                            self.destdir.display()
                        ),
                    ),
                    _ => e,
                })
            }
            other => other,
        }
    }
}

fn c_name(name: &std::ffi::OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name holds a NUL byte"))
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Merge `from` into the folder `relative` below DESTDIR: folders made,
/// files and links written under a fresh name and renamed into place, all
/// through the folder's handle.
fn merge(from: &Path, target: &Target, relative: &Path) -> io::Result<usize> {
    let dir = target.make(relative)?;
    let mut count = 0;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let name = entry.file_name();
        let meta = fs::symlink_metadata(&source)?;
        if meta.is_dir() {
            count += merge(&source, target, &relative.join(&name))?;
            continue;
        }
        let final_name = c_name(&name)?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(&name);
        tmp_name.push(".sultana-new");
        let tmp = c_name(&tmp_name)?;
        // What a killed run left under the fresh name (a file, a link or
        // an empty folder); a missing one is no error here.
        // SAFETY: valid dirfd and names.
        unsafe {
            if libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) != 0 {
                libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), libc::AT_REMOVEDIR);
            }
        }
        if meta.file_type().is_symlink() {
            let link = c_name(fs::read_link(&source)?.as_os_str())?;
            // SAFETY: valid dirfd and NUL-terminated strings.
            check(unsafe { libc::symlinkat(link.as_ptr(), dir.as_raw_fd(), tmp.as_ptr()) })?;
        } else if meta.is_file() {
            // SAFETY: valid dirfd and name; O_EXCL|O_NOFOLLOW: a fresh file.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    tmp.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0o600,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a descriptor openat just returned.
            let mut output = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            io::copy(&mut fs::File::open(&source)?, &mut output)?;
            output.set_permissions(meta.permissions())?;
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a FIFO, socket or device: not installed", source.display()),
            ));
        }
        // SAFETY: valid dirfd and names.
        check(unsafe { libc::renameat(dir.as_raw_fd(), tmp.as_ptr(), dir.as_raw_fd(), final_name.as_ptr()) })?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_opened_below_destdir_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let destdir = dir.path().join("destdir");
        let outside = dir.path().join("outside");
        fs::create_dir_all(destdir.join("usr/data")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, destdir.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../outside", destdir.join("usr/up")).unwrap();
        std::os::unix::fs::symlink("data", destdir.join("usr/share")).unwrap();
        let root = OwnedFd::from(fs::File::open(&destdir).unwrap());
        let target = Target {
            root: &root,
            destdir: &destdir,
        };
        // Read as in a chroot at DESTDIR: an absolute link and a `..` that
        // climbs out lead to no folder there, and nothing goes outside.
        for out in ["abs/x", "usr/up/x"] {
            let err = target.make(Path::new(out)).unwrap_err();
            assert!(err.to_string().contains("leads to no folder inside"), "{out}: {err}");
        }
        assert!(fs::read_dir(&outside).unwrap().next().is_none());
        // An absolute link that leads inside DESTDIR (Debian's /var/run).
        fs::create_dir_all(destdir.join("run")).unwrap();
        fs::create_dir_all(destdir.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", destdir.join("var/run")).unwrap();
        target.make(Path::new("var/run/xen")).unwrap();
        assert!(destdir.join("run/xen").is_dir());
        // A link that stays inside is followed; missing folders are made.
        target.make(Path::new("usr/share/doc/x")).unwrap();
        assert!(destdir.join("usr/data/doc/x").is_dir());
    }
}
