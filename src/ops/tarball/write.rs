//! Writing the tarballs: every format at once from one stream of entries,
//! each hashed as it is written, and `SHA256SUMS` updated beside them.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::printer::Printer;

use super::plan::{Plan, Repos};
use super::tree::Entry;
use super::{archive, compress, Format, Made, SUMS_FILE};

pub(super) use crate::fsutil::hex;

/// sha256 of what passes through, and a count.
pub(super) struct Hashing<W: Write> {
    pub(super) inner: W,
    pub(super) hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One tar stream into every format's compressor at once.
pub(super) struct Tee<W: Write>(Vec<compress::ParallelWriter<W>>);

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for writer in &mut self.0 {
            writer.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Write the tar stream compressed in every format into `out_dir`, each
/// through a temporary file renamed into place when complete.
pub(super) fn write_files(
    plan: &Plan,
    entries: &BTreeMap<Vec<u8>, Entry>,
    repos: &Repos,
    formats: &[Format],
    out_dir: &Path,
    jobs: usize,
    printer: &Printer,
) -> Result<Vec<Made>> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    // What a killed run left: temporary files (of tarballs, of SHA256SUMS),
    // never taken for the real thing.
    let stale = format!(".{}.", plan.top);
    for entry in std::fs::read_dir(out_dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&stale) || name.starts_with(".sultana-tmp-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let mut formats = formats.to_vec();
    formats.sort();
    formats.dedup();
    if formats.is_empty() {
        bail!("no tarball format: give --format gz, xz or zst");
    }
    let mut temps = Vec::new();
    let mut writers = Vec::new();
    for format in &formats {
        let final_path = out_dir.join(format!("{}.{}", plan.top, format.extension()));
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", plan.top))
            .tempfile_in(out_dir)
            .with_context(|| format!("cannot create a temporary file in {}", out_dir.display()))?;
        let file = temp.reopen()?;
        writers.push(compress::ParallelWriter::new(
            *format,
            jobs,
            Hashing {
                inner: io::BufWriter::new(file),
                hash: Sha256::new(),
            },
        ));
        temps.push((temp, final_path, *format));
        printer.status("Packing", format!("{}.{}", plan.top, format.extension()));
    }
    let progress = printer.progress("Packing");
    let archive = archive::Archive {
        top: &plan.top,
        mtime: plan.mtime,
        entries,
        repos: &repos.repos,
    };
    let tee = archive.write(Tee(writers), |done, total| progress.update(done, total, "entries"))?;
    drop(progress);
    let mut made = Vec::new();
    for (writer, (temp, final_path, format)) in tee.0.into_iter().zip(temps) {
        let (hashing, bytes) = writer.finish().context("cannot compress the tarball")?;
        let sha256 = hex(&hashing.hash.finalize());
        let file = hashing
            .inner
            .into_inner()
            .map_err(|e| anyhow!("cannot write the tarball: {}", e.error()))?;
        file.sync_all()?;
        drop(file);
        crate::fault::point("tarball-before-rename");
        let mut permissions = std::fs::metadata(temp.path())?.permissions();
        permissions.set_mode(0o644);
        std::fs::set_permissions(temp.path(), permissions)?;
        temp.persist(&final_path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", final_path.display()))?;
        made.push(Made {
            path: final_path,
            format,
            bytes,
            sha256,
        });
    }
    Ok(made)
}

/// The text of `SHA256SUMS` in `out_dir` with the lines of `files` (name,
/// sha256) added or replaced, keeping those of other files (sha256sum's
/// format); and which names' lines it changes, with `SHA256SUMS` itself
/// when its bytes change: their old signatures no longer hold.
pub(super) fn new_sums(out_dir: &Path, files: &[(String, String)]) -> (String, Vec<String>) {
    let mut lines: BTreeMap<String, String> = BTreeMap::new();
    let old_text = std::fs::read_to_string(out_dir.join(SUMS_FILE)).unwrap_or_default();
    for line in old_text.lines() {
        if let Some((hash, name)) = line.split_once("  ") {
            lines.insert(name.to_string(), hash.to_string());
        }
    }
    let mut changed = Vec::new();
    for (name, sha256) in files {
        if lines.insert(name.clone(), sha256.clone()).as_ref() != Some(sha256) {
            changed.push(name.clone());
        }
    }
    let text: String = lines.iter().map(|(name, hash)| format!("{hash}  {name}\n")).collect();
    if text != old_text {
        changed.push(SUMS_FILE.to_string());
    }
    (text, changed)
}
