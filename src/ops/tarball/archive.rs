//! Writing the tar stream: sorted entries, one fixed mtime, uid/gid 0 with no
//! user or group names, modes 0644/0755 (symlinks 0777), GNU long-name
//! records for paths over 100 bytes. Nothing of the machine, the user, the
//! umask, the time zone or the locale gets in.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use git2::Repository;
use tar::{EntryType, Header};

use super::tree::{Entry, Kind};
use super::{attrs, subst};

pub struct Archive<'a> {
    /// The top folder, e.g. `xen-4.21.0`.
    pub top: &'a str,
    pub mtime: u64,
    pub entries: &'a BTreeMap<Vec<u8>, Entry>,
    pub repos: &'a [Repository],
}

impl Archive<'_> {
    /// Write the whole archive; `progress(done, total)` after each entry.
    pub fn write<W: Write>(&self, out: W, mut progress: impl FnMut(u64, u64)) -> Result<W> {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        let top = self.top.as_bytes().to_vec();
        self.append(&mut builder, &top, &Kind::Dir)?;
        let total = self.entries.len() as u64;
        let mut substituted = subst::expand_all(self.entries, self.repos)?;
        for (i, entry) in self.entries.values().enumerate() {
            let mut path = top.clone();
            path.push(b'/');
            path.extend_from_slice(&entry.path);
            self.append_entry(&mut builder, &path, entry, &mut substituted)?;
            crate::fault::point("tarball-entry");
            progress(i as u64 + 1, total);
        }
        builder.into_inner().context("cannot finish the tar stream")
    }

    fn append_entry<W: Write>(
        &self,
        builder: &mut tar::Builder<W>,
        path: &[u8],
        entry: &Entry,
        substituted: &mut subst::Expansions,
    ) -> Result<()> {
        match &entry.kind {
            Kind::File {
                blob,
                executable,
                subst,
            } => {
                let repo = &self.repos[entry.repo];
                let blob = repo
                    .find_blob(*blob)
                    .with_context(|| format!("cannot read {}", String::from_utf8_lossy(path)))?;
                let mode = if *executable { 0o755 } else { 0o644 };
                match subst {
                    Some(commit) => {
                        let content = attrs::substitute(blob.content(), |format| {
                            let key = (entry.repo, *commit, format.to_vec());
                            substituted
                                .entry(key)
                                .or_insert_with(|| subst::pretty(repo, *commit, format).unwrap_or_default())
                                .clone()
                        });
                        self.file(builder, path, &content, mode)
                    }
                    None => self.file(builder, path, blob.content(), mode),
                }
            }
            Kind::Extra { content, executable } => {
                self.file(builder, path, content, if *executable { 0o755 } else { 0o644 })
            }
            kind => self.append(builder, path, kind),
        }
    }

    fn header(&self, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.mtime);
        header.set_size(size);
        // Empty user and group names (the GNU header starts them zeroed).
        header
    }

    fn file<W: Write>(&self, builder: &mut tar::Builder<W>, path: &[u8], content: &[u8], mode: u32) -> Result<()> {
        let mut header = self.header(EntryType::Regular, mode, content.len() as u64);
        builder
            .append_data(&mut header, as_path(path), content)
            .with_context(|| format!("cannot add {}", String::from_utf8_lossy(path)))
    }

    fn append<W: Write>(&self, builder: &mut tar::Builder<W>, path: &[u8], kind: &Kind) -> Result<()> {
        match kind {
            Kind::Dir => {
                let mut header = self.header(EntryType::Directory, 0o755, 0);
                let mut dir = path.to_vec();
                dir.push(b'/');
                builder
                    .append_data(&mut header, as_path(&dir), std::io::empty())
                    .with_context(|| format!("cannot add {}", String::from_utf8_lossy(path)))
            }
            Kind::Symlink { target } => {
                let mut header = self.header(EntryType::Symlink, 0o777, 0);
                builder
                    .append_link(&mut header, as_path(path), as_path(target))
                    .with_context(|| format!("cannot add the symlink {}", String::from_utf8_lossy(path)))
            }
            _ => Err(anyhow!("internal: not a folder or symlink")),
        }
    }
}

#[cfg(unix)]
fn as_path(bytes: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}
