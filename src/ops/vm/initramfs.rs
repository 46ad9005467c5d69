//! The VM's root: an initramfs (cpio "newc", uncompressed: the kernel
//! unpacks it as fast as it reads it, and writing it is one pass over the
//! files). Written here rather than with a crate: the format is a fixed
//! 110-byte header per entry and host files go straight into it, one at a
//! time.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// One entry of the archive, by its path inside the VM.
#[derive(Clone, Debug)]
enum Entry {
    Dir,
    /// A host file's content (symlinks followed) with this mode.
    File(PathBuf, u32),
    Bytes(Vec<u8>, u32),
    Symlink(PathBuf),
}

#[derive(Default)]
pub struct Initramfs {
    entries: BTreeMap<PathBuf, Entry>,
    /// Paths a host tree never puts anything at or under (the VM's own:
    /// /init, the nonce, busybox, the loader's configuration).
    reserved: Vec<PathBuf>,
    /// A host file's size when listed: what its header says.
    sizes: BTreeMap<PathBuf, u64>,
    bytes: u64,
}

impl Initramfs {
    /// Content bytes so far (what the VM's memory must also hold).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The folders above `inside` become folders, whatever was there (a
    /// tree's symlink would have what comes later written through it).
    fn parents(&mut self, inside: &Path) {
        let mut at = PathBuf::new();
        if let Some(parent) = inside.parent() {
            for part in parent.components() {
                if let Component::Normal(p) = part {
                    at.push(p);
                    let entry = self.entries.entry(at.clone()).or_insert(Entry::Dir);
                    if !matches!(entry, Entry::Dir) {
                        *entry = Entry::Dir;
                    }
                }
            }
        }
    }

    /// No host tree added from now on puts anything at or under `inside`.
    pub fn reserve(&mut self, inside: &Path) {
        self.reserved.push(Self::key(inside));
    }

    fn is_reserved(&self, key: &Path) -> bool {
        self.reserved.iter().any(|r| key.starts_with(r))
    }

    fn key(inside: &Path) -> PathBuf {
        inside
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    pub fn dir(&mut self, inside: &Path) {
        let key = Self::key(inside);
        if key.as_os_str().is_empty() {
            return; // the root itself
        }
        self.parents(&key);
        self.entries.insert(key, Entry::Dir);
    }

    /// Bytes made here (the init script).
    pub fn bytes_file(&mut self, inside: &Path, data: Vec<u8>, mode: u32) {
        let key = Self::key(inside);
        self.parents(&key);
        self.bytes += data.len() as u64;
        self.entries.insert(key, Entry::Bytes(data, mode));
    }

    /// A host file at `inside`, its content read through symlinks (a
    /// library named by its soname link becomes that file).
    pub fn host_file(&mut self, inside: &Path, host: &Path) -> io::Result<()> {
        let meta = fs::metadata(host)?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a file", host.display()),
            ));
        }
        let key = Self::key(inside);
        self.parents(&key);
        self.bytes += meta.len();
        self.sizes.insert(key.clone(), meta.len());
        self.entries
            .insert(key, Entry::File(host.to_path_buf(), meta.permissions().mode() & 0o7777));
        Ok(())
    }

    /// A host folder at the same path inside, symlinks kept as symlinks;
    /// devices, FIFOs and sockets are left out. `skip` names entries (like
    /// `.git`) not to copy anywhere, `skip_top` entries of `dir` itself.
    pub fn host_tree(&mut self, dir: &Path, skip: &[&str], skip_top: &[&str]) -> io::Result<()> {
        self.host_tree_at(dir, dir, skip, skip_top)
    }

    /// `host_tree`, the folder's content put at `inside` (a staged install
    /// at `/`).
    pub fn host_tree_at(&mut self, dir: &Path, inside: &Path, skip: &[&str], skip_top: &[&str]) -> io::Result<()> {
        let at_inside = |path: &Path| Self::key(&inside.join(path.strip_prefix(dir).unwrap_or(path)));
        let meta = fs::symlink_metadata(dir)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a folder", dir.display()),
            ));
        }
        self.dir(inside);
        let mut stack = vec![dir.to_path_buf()];
        while let Some(at) = stack.pop() {
            for entry in fs::read_dir(&at)? {
                let entry = entry?;
                if skip.iter().any(|s| entry.file_name() == *s)
                    || (at == dir && skip_top.iter().any(|s| entry.file_name() == *s))
                {
                    continue;
                }
                let path = entry.path();
                let meta = fs::symlink_metadata(&path)?;
                let kind = meta.file_type();
                let key = at_inside(&path);
                if self.is_reserved(&key) {
                    continue;
                }
                if kind.is_symlink() {
                    let target = fs::read_link(&path)?;
                    self.entries.insert(key, Entry::Symlink(target));
                } else if kind.is_dir() {
                    self.entries.insert(key, Entry::Dir);
                    stack.push(path);
                } else if kind.is_file() {
                    self.bytes += meta.len();
                    self.sizes.insert(key.clone(), meta.len());
                    self.entries
                        .insert(key, Entry::File(path.clone(), meta.mode() & 0o7777));
                }
            }
        }
        Ok(())
    }

    /// Write the archive. Each file is copied as long as it was when
    /// listed: one that grew meanwhile is cut there, one that shrank is
    /// padded with zeros, so the archive stays consistent.
    pub fn write(&self, out: &Path) -> io::Result<()> {
        let file = fs::File::create(out)?;
        let mut w = Writer {
            out: BufWriter::with_capacity(1 << 20, file),
            ino: 1,
        };
        for (path, entry) in &self.entries {
            // Nothing is written through a symlink of the archive's own.
            if path
                .ancestors()
                .skip(1)
                .any(|a| matches!(self.entries.get(a), Some(Entry::Symlink(_))))
            {
                continue;
            }
            let name = path.to_string_lossy();
            match entry {
                Entry::Dir => w.entry(&name, 0o040755, &[])?,
                Entry::Bytes(data, mode) => w.entry(&name, 0o100000 | mode, data)?,
                Entry::Symlink(target) => {
                    w.entry(&name, 0o120777, target.as_os_str().as_encoded_bytes())?;
                }
                Entry::File(host, mode) => w.file(&name, 0o100000 | mode, host, self.sizes[path])?,
            }
        }
        w.entry("TRAILER!!!", 0, &[])?;
        w.out.flush()?;
        w.out.get_ref().sync_all()
    }
}

struct Writer {
    out: BufWriter<fs::File>,
    ino: u32,
}

impl Writer {
    fn header(&mut self, name: &str, mode: u32, size: u64) -> io::Result<()> {
        let size = u32::try_from(size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{name} is over 4 GiB")))?;
        let name_size = name.len() + 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, name_size, 0
        );
        self.ino += 1;
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(110 + name_size as u64)
    }

    fn pad(&mut self, written: u64) -> io::Result<()> {
        let pad = (4 - written % 4) % 4;
        self.out.write_all(&[0u8; 3][..pad as usize])
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.header(name, mode, data.len() as u64)?;
        self.out.write_all(data)?;
        self.pad(data.len() as u64)
    }

    /// A host file of `size` bytes, streamed: cut or zero-padded to it.
    fn file(&mut self, name: &str, mode: u32, host: &Path, size: u64) -> io::Result<()> {
        use std::io::Read;
        self.header(name, mode, size)?;
        let file = fs::File::open(host)?;
        let copied = io::copy(&mut file.take(size), &mut self.out)?;
        io::copy(&mut io::repeat(0).take(size - copied), &mut self.out)?;
        self.pad(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names `cpio -t` lists of an archive.
    fn listed(out: &Path) -> Option<Vec<String>> {
        which::which("cpio").ok()?;
        let listed = std::process::Command::new("cpio")
            .args(["-it", "--quiet"])
            .stdin(fs::File::open(out).unwrap())
            .output()
            .unwrap();
        Some(
            String::from_utf8_lossy(&listed.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
        )
    }

    #[test]
    fn a_tree_at_the_root_cannot_replace_or_redirect_the_vm_s_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let stage = dir.path().join("stage");
        fs::create_dir_all(stage.join("etc")).unwrap();
        fs::write(stage.join("init"), "#!/bin/sh\necho STAGED\n").unwrap();
        fs::write(stage.join("etc/ld.so.preload"), "/evil.so\n").unwrap();
        std::os::unix::fs::symlink("/tmp/elsewhere", stage.join("busybox")).unwrap();
        std::os::unix::fs::symlink("/tmp/other", stage.join("lib")).unwrap();
        fs::create_dir_all(stage.join("kept")).unwrap();
        std::os::unix::fs::symlink("/", stage.join("kept/up")).unwrap();
        let mut archive = Initramfs::default();
        archive.reserve(Path::new("/init"));
        archive.reserve(Path::new("/etc/ld.so.preload"));
        archive.reserve(Path::new("/busybox"));
        archive.host_tree_at(&stage, Path::new("/"), &[], &[]).unwrap();
        // Later: the VM's own, under a path the tree made a symlink.
        archive.bytes_file(Path::new("/lib/libc.so.6"), b"ours".to_vec(), 0o644);
        archive.bytes_file(Path::new("/init"), b"#!/busybox/busybox sh\n".to_vec(), 0o755);
        archive.bytes_file(Path::new("/kept/up/x"), b"through a link".to_vec(), 0o644);
        assert!(matches!(archive.entries.get(Path::new("lib")), Some(Entry::Dir)));
        assert!(matches!(archive.entries.get(Path::new("kept/up")), Some(Entry::Dir)));
        assert!(!archive.entries.contains_key(Path::new("etc/ld.so.preload")));
        assert!(!archive.entries.contains_key(Path::new("busybox")));
        assert!(
            matches!(archive.entries.get(Path::new("init")), Some(Entry::Bytes(b, _)) if b.starts_with(b"#!/busybox"))
        );
        let out = dir.path().join("root.cpio");
        archive.write(&out).unwrap();
        if let Some(names) = listed(&out) {
            assert!(names.contains(&"lib/libc.so.6".to_string()), "{names:?}");
            assert!(names.contains(&"kept/up/x".to_string()), "{names:?}");
        }
    }

    #[test]
    fn the_archive_is_newc_that_cpio_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::write(tree.join("sub/a.txt"), "alpha\n").unwrap();
        std::os::unix::fs::symlink("sub/a.txt", tree.join("link")).unwrap();
        let mut archive = Initramfs::default();
        archive.host_tree(&tree, &[], &[]).unwrap();
        archive.bytes_file(Path::new("/init"), b"#!/bin/sh\n".to_vec(), 0o755);
        let out = dir.path().join("initrd.cpio");
        archive.write(&out).unwrap();
        let bytes = fs::read(&out).unwrap();
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(bytes.len() % 4, 0);
        if which::which("cpio").is_err() {
            return;
        }
        let listed = std::process::Command::new("cpio")
            .args(["-it", "--quiet"])
            .stdin(fs::File::open(&out).unwrap())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&listed.stdout);
        let inside = tree.strip_prefix("/").unwrap().display().to_string();
        for name in [
            "init".to_string(),
            format!("{inside}/sub/a.txt"),
            format!("{inside}/link"),
        ] {
            assert!(text.lines().any(|l| l == name), "{name} not in\n{text}");
        }
    }
}
