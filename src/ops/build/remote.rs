//! The remote tier of the build cache: entries in an OCI registry
//! (GitLab's, GHCR, Harbor, Debian's docker-registry), one artifact per
//! build key (`oci://HOST/REPO:KEY`), as Spack and Homebrew keep theirs.
//!
//! An artifact holds the entry's meta (its config), a statement naming the
//! key and the SHA-256 of the file list and of the prefix's tar, an OpenPGP
//! signature of that statement, the file list and the prefix as a tar. The
//! registry's content digests say a blob is the one the manifest names; the
//! signature says who made it. An entry restores only when its statement is
//! signed by a trusted key, names this key, and the file list and tar hash
//! to what it says; the unpacked files are then checked against the list
//! before the local cache takes them. Anything else is refused in one line
//! and the component builds.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cache::{BuildCache, Meta};
use super::entry_files;
use crate::fsutil::{self, hex};
use crate::oci_url::OciUrl;

const META: &str = "application/vnd.sultana.build.meta.v1+json";
const STATEMENT: &str = "application/vnd.sultana.build.statement.v1+json";
const SIGNATURE: &str = "application/vnd.sultana.build.signature.v1+pgp";
const FILES: &str = "application/vnd.sultana.build.files.v1+json";
const PREFIX: &str = "application/vnd.sultana.build.prefix.v1.tar";
/// Statements, signatures and metas are small; a file list is at most the
/// local cache's bound.
const MAX_SMALL: u64 = 1 << 20;
const MAX_FILES_JSON: u64 = 256 << 20;
/// A detached signature is a few hundred bytes, armored.
const MAX_SIGNATURE: u64 = 16 << 10;
/// Far above any prefix (xen's tools: a few thousand files).
const MAX_ENTRIES: usize = 1_000_000;

/// Where the remote tier is and whom it trusts, resolved once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `oci://HOST[:PORT]/REPO`.
    pub url: String,
    /// Fingerprints whose signatures make an entry restorable.
    pub trust: Vec<String>,
}

impl Settings {
    /// The command line's url, else `SULTANA_BUILD_CACHE_REMOTE`, else the
    /// manifest's; trust from `SULTANA_BUILD_CACHE_TRUST`, else the manifest's.
    pub fn resolve(
        given: Option<&str>,
        env: &std::collections::BTreeMap<String, String>,
        manifest_url: Option<&str>,
        manifest_trust: &[String],
    ) -> Result<Option<Settings>> {
        let url = given
            .map(str::to_string)
            .or_else(|| env.get("SULTANA_BUILD_CACHE_REMOTE").cloned().filter(|v| !v.is_empty()))
            .or_else(|| manifest_url.map(str::to_string));
        let Some(url) = url else { return Ok(None) };
        OciUrl::parse(&url)?;
        let trust: Vec<String> = match env.get("SULTANA_BUILD_CACHE_TRUST").filter(|v| !v.is_empty()) {
            Some(list) => list.split(',').map(normalize_fingerprint).collect(),
            None => manifest_trust.iter().map(|f| normalize_fingerprint(f)).collect(),
        };
        // Whole fingerprints only: a 64-bit key id can be forged.
        for fpr in &trust {
            if !matches!(fpr.len(), 40 | 64) || !fpr.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("build cache trust: `{fpr}` is not a whole key fingerprint (40 hex digits)");
            }
        }
        Ok(Some(Settings { url, trust }))
    }
}

impl Settings {
    /// `resolve` with the manifest's keys.
    pub fn for_manifest(
        given: Option<&str>,
        env: &std::collections::BTreeMap<String, String>,
        manifest: &crate::manifest::Manifest,
    ) -> Result<Option<Settings>> {
        Settings::resolve(
            given,
            env,
            manifest.build_cache_remote.as_deref(),
            &manifest.build_cache_trust,
        )
    }
}

fn normalize_fingerprint(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// What a pull did.
#[derive(Debug)]
pub enum Pulled {
    /// Now in the local cache.
    Stored,
    /// The registry has no entry for the key.
    Missing,
    /// There, but not restorable: why, in words.
    Refused(String),
}

/// The statement a signature covers: the key and the content's hashes.
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct Statement {
    key: String,
    component: String,
    files_sha256: String,
    prefix_sha256: String,
    /// The tar's size: what a pull accepts of it, no more.
    prefix_bytes: u64,
}

pub struct Remote {
    target: OciUrl,
    settings: Settings,
    client: Client,
    auth: RegistryAuth,
    runtime: tokio::runtime::Runtime,
}

impl Remote {
    pub fn open(settings: &Settings, env: &std::collections::BTreeMap<String, String>) -> Result<Remote> {
        let target = OciUrl::parse(&settings.url)?;
        // Plain HTTP only to this machine: anything else goes over TLS.
        let protocol = if target.loopback {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        // A registry that stops answering is a miss, never a hung build.
        let client = Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..Default::default()
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the registry client")?;
        Ok(Remote {
            // Credentials only over TLS: a loopback registry gets none.
            auth: if target.loopback {
                RegistryAuth::Anonymous
            } else {
                credentials(&target.host, env)
            },
            target,
            settings: settings.clone(),
            client,
            runtime,
        })
    }

    pub fn url(&self) -> &str {
        &self.settings.url
    }

    fn reference(&self, key: &str) -> Result<Reference> {
        Reference::try_from(format!("{}/{}:{key}", self.target.host, self.target.repository))
            .map_err(|e| anyhow!("{}: {e}", self.settings.url))
    }

    /// Whether the registry holds an entry for `key`.
    pub fn has(&self, key: &str) -> Result<bool> {
        let reference = self.reference(key)?;
        match self
            .runtime
            .block_on(self.client.fetch_manifest_digest(&reference, &self.auth))
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(anyhow!(
                "{}: {}",
                self.settings.url,
                crate::validate::redact_credentials(&e.to_string())
            )),
        }
    }

    /// Bring the entry of `key` into `cache` when the registry has one the
    /// trusted keys vouch for.
    pub fn pull(&self, key: &str, cache: &BuildCache) -> Result<Pulled> {
        if self.settings.trust.is_empty() {
            return Ok(Pulled::Refused(
                "no key is trusted (set SULTANA_BUILD_CACHE_TRUST to the fingerprints that sign entries)".into(),
            ));
        }
        let reference = self.reference(key)?;
        let manifest = match self
            .runtime
            .block_on(self.client.pull_image_manifest(&reference, &self.auth))
        {
            Ok((manifest, _)) => manifest,
            Err(e) if is_not_found(&e) => return Ok(Pulled::Missing),
            Err(e) => bail!(
                "{}: {}",
                self.settings.url,
                crate::validate::redact_credentials(&e.to_string())
            ),
        };
        // In the cache's own folder, named as its temporaries are: a run
        // killed here leaves what a later store sweeps.
        let work = tempfile::Builder::new()
            .prefix(".tmp-pull-")
            .tempdir_in(cache.ensure_root()?)
            .context("cannot create a temporary folder")?;
        let layers = Layers {
            remote: self,
            reference: &reference,
            manifest: &manifest,
            work: work.path(),
        };
        let statement = match layers.statement(key)? {
            Ok(statement) => statement,
            Err(why) => return Ok(Pulled::Refused(why)),
        };
        let unpacked = match layers.files(&statement)? {
            Ok(unpacked) => unpacked,
            Err(why) => return Ok(Pulled::Refused(why)),
        };
        let meta = Meta {
            component: statement.component.clone(),
            describe: String::new(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        cache.store(key, &unpacked, &meta)?;
        Ok(Pulled::Stored)
    }

    /// Upload the local entry of `key`, its statement signed with `sign_key`.
    pub fn push(&self, key: &str, cache: &BuildCache, sign_key: &str) -> Result<()> {
        let entry = cache.entry_dir(key);
        if !cache.has(key) {
            bail!("the build cache has no entry for {key}");
        }
        // Never sign a damaged entry: its files against its list first.
        let listed: entry_files::Files =
            serde_json::from_slice(&fsutil::read_bounded(&entry.join("files.json"), MAX_FILES_JSON)?)
                .context("its file list is unreadable")?;
        let found = entry_files::take(&entry.join("prefix"), entry_files::Depth::Hashed)?;
        if let Some(difference) = entry_files::first_difference(&listed, &found) {
            bail!("the local entry of {key} is damaged ({difference}): not pushed");
        }
        let meta = fsutil::read_bounded(&entry.join("meta.json"), MAX_SMALL)?;
        let parsed: Meta = serde_json::from_slice(&meta).context("its meta.json is unreadable")?;
        let files = fsutil::read_bounded(&entry.join("files.json"), MAX_FILES_JSON)?;
        let work = tempfile::tempdir().context("cannot create a temporary folder")?;
        let tar_path = work.path().join("prefix.tar");
        pack(&entry.join("prefix"), &tar_path)?;
        let tar = std::fs::read(&tar_path)?;
        let statement = Statement {
            key: key.to_string(),
            component: parsed.component,
            files_sha256: hex(&Sha256::digest(&files)),
            prefix_sha256: hex(&Sha256::digest(&tar)),
            prefix_bytes: tar.len() as u64,
        };
        let statement_path = work.path().join("statement.json");
        std::fs::write(&statement_path, serde_json::to_vec_pretty(&statement)?)?;
        let signature = crate::tarball::sign::sign(&statement_path, sign_key)?;
        let layers = vec![
            ImageLayer::new(std::fs::read(&statement_path)?, STATEMENT.to_string(), None),
            ImageLayer::new(std::fs::read(&signature)?, SIGNATURE.to_string(), None),
            ImageLayer::new(files, FILES.to_string(), None),
            ImageLayer::new(tar, PREFIX.to_string(), None),
        ];
        let config = Config::new(meta, META.to_string(), None);
        let reference = self.reference(key)?;
        self.runtime
            .block_on(self.client.push(&reference, &layers, config, &self.auth, None))
            .map_err(|e| {
                anyhow!(
                    "{}: {}",
                    self.settings.url,
                    crate::validate::redact_credentials(&e.to_string())
                )
            })?;
        Ok(())
    }
}

/// Whether `bytes` (armored or binary OpenPGP) hold signature packets only.
fn only_signatures(bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    let binary = if text.trim_start().starts_with("-----BEGIN PGP SIGNATURE-----") {
        use base64::Engine;
        let body: String = text
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .skip_while(|l| l.contains(':'))
            .take_while(|l| !l.starts_with("-----END"))
            .filter(|l| !l.starts_with('='))
            .map(str::trim)
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| "bad armor".to_string())?
    } else {
        bytes.to_vec()
    };
    let mut at = 0;
    if binary.is_empty() {
        return Err("empty".into());
    }
    while at < binary.len() {
        let head = binary[at];
        if head & 0x80 == 0 {
            return Err("not OpenPGP".into());
        }
        let (tag, length, header) = if head & 0x40 != 0 {
            let tag = head & 0x3f;
            let first = *binary.get(at + 1).ok_or("truncated")? as usize;
            match first {
                0..=191 => (tag, first, 2),
                192..=223 => {
                    let second = *binary.get(at + 2).ok_or("truncated")? as usize;
                    (tag, ((first - 192) << 8) + second + 192, 3)
                }
                255 => {
                    let b = binary.get(at + 2..at + 6).ok_or("truncated")?;
                    (tag, u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize, 6)
                }
                _ => return Err("partial lengths".into()),
            }
        } else {
            let tag = (head >> 2) & 0x0f;
            match head & 3 {
                0 => (tag, *binary.get(at + 1).ok_or("truncated")? as usize, 2),
                1 => {
                    let b = binary.get(at + 1..at + 3).ok_or("truncated")?;
                    (tag, u16::from_be_bytes([b[0], b[1]]) as usize, 3)
                }
                2 => {
                    let b = binary.get(at + 1..at + 5).ok_or("truncated")?;
                    (tag, u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize, 5)
                }
                _ => return Err("indeterminate length".into()),
            }
        };
        if tag != 2 {
            return Err(format!("a packet of type {tag}"));
        }
        at = at
            .checked_add(header)
            .and_then(|a| a.checked_add(length))
            .ok_or("too long")?;
        if at > binary.len() {
            return Err("truncated".into());
        }
    }
    Ok(())
}

/// Why a registry's entry is refused (the pull goes on without it), where
/// an outer error is one of this machine's (a disk, a temporary folder).
type Refusal<T> = std::result::Result<T, String>;

/// One entry's layers in a registry, fetched into `work` one at a time,
/// each checked before the next is trusted.
struct Layers<'a> {
    remote: &'a Remote,
    reference: &'a Reference,
    manifest: &'a oci_client::manifest::OciImageManifest,
    work: &'a Path,
}

impl Layers<'_> {
    fn layer(&self, media: &str) -> Result<oci_client::manifest::OciDescriptor> {
        (self.manifest.layers.iter())
            .find(|l| l.media_type == media)
            .cloned()
            .ok_or_else(|| anyhow!("its manifest has no {media} layer"))
    }

    /// The layer of type `media`, refused when it is larger than `max`.
    fn fetch(&self, media: &str, max: u64) -> Result<PathBuf> {
        let descriptor = self.layer(media)?;
        if u64::try_from(descriptor.size).unwrap_or(u64::MAX) > max {
            bail!("its {media} layer is larger than {max} bytes");
        }
        let name: String = media
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = self.work.join(name);
        self.remote.runtime.block_on(async {
            let file = tokio::fs::File::create(&path).await?;
            // Never more than `max` bytes on disk, whatever the registry
            // streams (its digest is checked at the end).
            let limited = Limited { inner: file, left: max };
            self.remote
                .client
                .pull_blob(self.reference, &descriptor, limited)
                .await
                .map_err(|e| anyhow!("{}", crate::validate::redact_credentials(&e.to_string())))
        })?;
        Ok(path)
    }

    /// The entry's statement, signed by a trusted key and for this build.
    fn statement(&self, key: &str) -> Result<Refusal<Statement>> {
        let statement_path = match self.fetch(STATEMENT, MAX_SMALL) {
            Ok(p) => p,
            Err(e) => return Ok(Err(format!("{e:#}"))),
        };
        let signature_path = match self.fetch(SIGNATURE, MAX_SIGNATURE) {
            Ok(p) => p,
            Err(_) => return Ok(Err("it is not signed".into())),
        };
        // Only signature packets reach gpg: a compressed packet there would
        // make gpg inflate whatever it holds.
        if let Err(why) = only_signatures(&fsutil::read_bounded(&signature_path, MAX_SIGNATURE)?) {
            return Ok(Err(format!("its signature layer is no detached signature ({why})")));
        }
        let signer = match crate::tarball::sign::check(&statement_path, &signature_path)? {
            // The primary key's fingerprint: a key that signs with a subkey
            // is trusted by its own.
            crate::tarball::sign::Checked::Good { primary, .. } => normalize_fingerprint(&primary),
            crate::tarball::sign::Checked::Bad => return Ok(Err("its signature does not match its statement".into())),
            crate::tarball::sign::Checked::Unknown { reason } => {
                return Ok(Err(format!("its signature cannot be checked ({reason})")))
            }
        };
        if !self.remote.settings.trust.contains(&signer) {
            return Ok(Err(format!("it is signed by key {signer}, which is not trusted")));
        }
        let statement: Statement = match serde_json::from_slice(&fsutil::read_bounded(&statement_path, MAX_SMALL)?) {
            Ok(s) => s,
            Err(_) => return Ok(Err("its statement is unreadable".into())),
        };
        if crate::validate::check_name(&statement.component).is_err() {
            return Ok(Err("its statement names no valid component".into()));
        }
        if statement.key != key {
            return Ok(Err(format!(
                "its signed statement is for another build ({})",
                statement.key
            )));
        }
        Ok(Ok(statement))
    }

    /// The entry's files unpacked, each as its signed list says.
    fn files(&self, statement: &Statement) -> Result<Refusal<PathBuf>> {
        let files_path = match self.fetch(FILES, MAX_FILES_JSON) {
            Ok(p) => p,
            Err(e) => return Ok(Err(format!("{e:#}"))),
        };
        if sha256_file(&files_path)? != statement.files_sha256 {
            return Ok(Err("its file list is not the one its statement signs".into()));
        }
        let declared = self.layer(PREFIX).map(|l| l.size).unwrap_or(-1);
        if u64::try_from(declared).ok() != Some(statement.prefix_bytes) {
            return Ok(Err("its files' size is not the one its statement signs".into()));
        }
        let prefix_path = match self.fetch(PREFIX, statement.prefix_bytes) {
            Ok(p) => p,
            Err(e) => return Ok(Err(format!("{e:#}"))),
        };
        if sha256_file(&prefix_path)? != statement.prefix_sha256 {
            return Ok(Err("its files are not the ones its statement signs".into()));
        }
        let listed: entry_files::Files =
            match serde_json::from_slice(&fsutil::read_bounded(&files_path, MAX_FILES_JSON)?) {
                Ok(l) => l,
                Err(_) => return Ok(Err("its file list is unreadable".into())),
            };
        let unpacked = self.work.join("prefix");
        if let Err(e) = unpack(&prefix_path, &unpacked) {
            return Ok(Err(format!("its files cannot be unpacked: {e:#}")));
        }
        let found = match entry_files::take(&unpacked, entry_files::Depth::Hashed) {
            Ok(f) => f,
            Err(e) => return Ok(Err(format!("{e:#}"))),
        };
        if let Some(difference) = entry_files::first_difference(&listed, &found) {
            return Ok(Err(format!("its files differ from its list ({difference})")));
        }
        Ok(Ok(unpacked))
    }
}

/// An `AsyncWrite` that takes at most `left` bytes, then fails.
struct Limited<W> {
    inner: W,
    left: u64,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Limited<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if buf.len() as u64 > self.left {
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "the registry sent more than the layer's size",
            )));
        }
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &polled {
            self.left -= *n as u64;
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A registry's "no such manifest", by the error's kind (never its text).
fn is_not_found(e: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode};
    match e {
        E::ImageManifestNotFoundError(_) => true,
        E::ServerError { code, .. } => *code == 404,
        E::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown)),
        _ => false,
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    fsutil::file_digest::<Sha256>(path)
}

/// The prefix as a tar: sorted, owner 0, no times (the same bytes for the
/// same files).
fn pack(prefix: &Path, out: &Path) -> Result<()> {
    let mut builder = tar::Builder::new(std::fs::File::create(out)?);
    builder.follow_symlinks(false);
    // Modes as they are (the file list has them); owners and times are not
    // restored, and the tar's bytes are signed whatever they are.
    builder.mode(tar::HeaderMode::Complete);
    let mut paths = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            out.push(path.strip_prefix(base).unwrap_or(&path).to_path_buf());
            if entry.file_type()?.is_dir() {
                walk(base, &path, out)?;
            }
        }
        Ok(())
    }
    walk(prefix, prefix, &mut paths)?;
    for path in paths {
        builder.append_path_with_name(prefix.join(&path), &path)?;
    }
    builder.into_inner()?;
    Ok(())
}

/// Unpack a registry's tar into `into`: files, folders and links only,
/// every path inside (the tar crate refuses `..` and absolute names, and
/// writes nothing through a link it made).
fn unpack(tar_path: &Path, into: &Path) -> Result<()> {
    std::fs::create_dir_all(into)?;
    let mut archive = tar::Archive::new(std::fs::File::open(tar_path)?);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(false);
    for (n, entry) in archive.entries()?.enumerate() {
        if n >= MAX_ENTRIES {
            bail!("more than {MAX_ENTRIES} entries");
        }
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            bail!("an entry of type {} is no part of a prefix", kind.as_byte() as char);
        }
        if !entry.unpack_in(into)? {
            bail!("`{}` points outside", String::from_utf8_lossy(&entry.path_bytes()));
        }
        let mut rest = Vec::new();
        let _ = entry.read_to_end(&mut rest);
    }
    Ok(())
}

/// The registry's credentials: `SULTANA_BUILD_CACHE_USER`/`_PASSWORD`,
/// GitLab CI's own for its registry, else docker's config.json; never
/// printed.
fn credentials(host: &str, env: &std::collections::BTreeMap<String, String>) -> RegistryAuth {
    if let (Some(user), Some(password)) = (
        env.get("SULTANA_BUILD_CACHE_USER"),
        env.get("SULTANA_BUILD_CACHE_PASSWORD"),
    ) {
        return RegistryAuth::Basic(user.clone(), password.clone());
    }
    if env.get("CI_REGISTRY").map(String::as_str) == Some(host) {
        if let (Some(user), Some(password)) = (env.get("CI_REGISTRY_USER"), env.get("CI_REGISTRY_PASSWORD")) {
            return RegistryAuth::Basic(user.clone(), password.clone());
        }
    }
    let config = env
        .get("DOCKER_CONFIG")
        .map(|d| PathBuf::from(d).join("config.json"))
        .or_else(|| env.get("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")));
    if let Some(config) = config {
        if let Ok(bytes) = fsutil::read_bounded(&config, 1 << 20) {
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                let auth = json["auths"][host]["auth"].as_str().map(str::to_string);
                if let Some(decoded) = auth.and_then(|a| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.decode(a).ok()
                }) {
                    let text = String::from_utf8_lossy(&decoded).into_owned();
                    if let Some((user, password)) = text.split_once(':') {
                        return RegistryAuth::Basic(user.to_string(), password.to_string());
                    }
                }
            }
        }
    }
    RegistryAuth::Anonymous
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signature_packets_reach_gpg() {
        // Old format, tag 2, one-byte length: a signature packet.
        assert!(only_signatures(&[0x88, 3, 1, 2, 3]).is_ok());
        // New format, tag 2.
        assert!(only_signatures(&[0xC2, 2, 9, 9]).is_ok());
        // A compressed packet (tag 8), a literal one (tag 11): refused.
        assert!(only_signatures(&[0xC8, 2, 1, 0]).is_err());
        assert!(only_signatures(&[0xA3, 0x01]).is_err());
        assert!(only_signatures(&[0xCB, 1, 0]).is_err());
        // Lies about lengths, junk, nothing.
        assert!(only_signatures(&[0x88, 200, 1]).is_err());
        assert!(only_signatures(b"hello").is_err());
        assert!(only_signatures(&[]).is_err());
        // Armored: the same rules.
        let armored = "-----BEGIN PGP SIGNATURE-----\n\niAMBAgM=\n=abcd\n-----END PGP SIGNATURE-----\n";
        assert!(only_signatures(armored.as_bytes()).is_ok());
        let compressed = "-----BEGIN PGP SIGNATURE-----\n\nyAIBAA==\n-----END PGP SIGNATURE-----\n";
        assert!(only_signatures(compressed.as_bytes()).is_err());
    }
}
