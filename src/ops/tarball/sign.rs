//! Detached OpenPGP signatures through the user's gpg (and its agent): made
//! with `tarball --sign KEY`, checked by `verify-tarball`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::process::Cmd;

/// How much of gpg's status output is read (a signature has a few lines).
const MAX_STATUS: usize = 64 * 1024;

fn gpg() -> Cmd {
    Cmd::new("gpg", "gpg").args(["--batch", "--no-tty"])
}

/// Refuse a key gpg cannot sign with, before anything is written.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.starts_with('-') || key.chars().any(|c| c.is_control()) {
        bail!("--sign `{}`: give a key id, fingerprint or user id", key.escape_debug());
    }
    gpg()
        .args(["--list-secret-keys", "--with-colons", "--", key])
        .output()
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("no secret key `{key}` to sign with"))?;
    // A trial signature: an expired key, or a passphrase the agent cannot
    // ask for, fails here rather than after the tarballs are written.
    let trial = tempfile::NamedTempFile::new().context("cannot create a temporary file")?;
    gpg()
        .args(["--armor", "--local-user", key, "--detach-sign", "--output", "-", "--"])
        .arg(trial.path())
        .output()
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("gpg cannot sign with `{key}`"))?;
    Ok(())
}

/// `FILE.asc`, an armored detached signature of `file` by `key`, written
/// whole or not at all.
pub fn sign(file: &Path, key: &str) -> Result<PathBuf> {
    let name = file
        .file_name()
        .ok_or_else(|| anyhow!("{} has no file name", file.display()))?
        .to_string_lossy()
        .into_owned();
    let dir = file.parent().unwrap_or(Path::new("."));
    let signature = dir.join(format!("{name}.asc"));
    let temporary = dir.join(format!(".sultana-tmp-{name}.asc.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let made = gpg()
        .args(["--yes", "--armor", "--local-user", key, "--detach-sign", "--output"])
        .arg(&temporary)
        .arg("--")
        .arg(file)
        .output();
    if let Err(e) = made {
        let _ = std::fs::remove_file(&temporary);
        return Err(anyhow!("{e}")).with_context(|| format!("cannot sign {}", file.display()));
    }
    std::fs::rename(&temporary, &signature).with_context(|| format!("cannot write {}", signature.display()))?;
    Ok(signature)
}

/// What gpg says of a signature.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Checked {
    /// Good, by the key with this fingerprint (a subkey's, when a subkey
    /// signed), whose primary key has `primary`.
    Good { fingerprint: String, primary: String },
    /// Bad (the file changed, or the signature is of another file).
    Bad,
    /// No key to check it with, or not a signature gpg can read.
    Unknown { reason: String },
}

/// Check `signature` (detached, armored or binary) of `file`. Any key in
/// the user's keyring is accepted: which keys to trust is the keyring's.
pub fn check(file: &Path, signature: &Path) -> Result<Checked> {
    let (_, status) = gpg()
        .args(["--status-fd", "1", "--verify", "--"])
        .arg(signature)
        .arg(file)
        .output_with_code()
        .map_err(|e| anyhow!("{e}"))?;
    let status = String::from_utf8_lossy(&status[..status.len().min(MAX_STATUS)]).into_owned();
    Ok(parse_status(&status))
}

/// gpg's `--status-fd` lines: the verdict on one signature.
fn parse_status(status: &str) -> Checked {
    let mut fingerprint = None;
    let mut bad = false;
    let mut reason = None;
    for line in status.lines() {
        let mut words = line.split(' ');
        if words.next() != Some("[GNUPG:]") {
            continue;
        }
        match words.next() {
            Some("VALIDSIG") => {
                let fields: Vec<&str> = words.by_ref().collect();
                fingerprint = fields
                    .first()
                    .map(|f| (f.to_string(), fields.get(9).unwrap_or(f).to_string()));
            }
            Some("BADSIG") => bad = true,
            Some("NO_PUBKEY") => reason = Some("its key is not in your keyring".to_string()),
            Some("ERRSIG") if reason.is_none() => reason = Some("gpg cannot check it".to_string()),
            Some("NODATA") => reason = Some("it holds no OpenPGP signature".to_string()),
            Some("EXPKEYSIG") | Some("REVKEYSIG") => {
                reason = Some("its key is expired or revoked".to_string());
            }
            Some("EXPSIG") => reason = Some("the signature has expired".to_string()),
            _ => {}
        }
    }
    match (bad, fingerprint, reason) {
        (true, _, _) => Checked::Bad,
        (false, _, Some(reason)) => Checked::Unknown { reason },
        (false, Some((fingerprint, primary)), None) => Checked::Good { fingerprint, primary },
        (false, None, None) => Checked::Unknown {
            reason: "gpg gave no verdict".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_valid_unexpired_signature_is_good() {
        let good = "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 28DD890BD22BBE51 T <t@example.org>\n\
                    [GNUPG:] VALIDSIG 31E0CAEF14DA92BA5D267C9028DD890BD22BBE51 2026-12-03 1764720000 0 4 0 22 10 00 AAAACAEF14DA92BA5D267C9028DD890BD22BBE51\n";
        assert_eq!(
            parse_status(good),
            Checked::Good {
                fingerprint: "31E0CAEF14DA92BA5D267C9028DD890BD22BBE51".into(),
                primary: "AAAACAEF14DA92BA5D267C9028DD890BD22BBE51".into()
            }
        );
        let expired = format!("[GNUPG:] EXPSIG 28DD890BD22BBE51 T\n{good}");
        assert!(matches!(parse_status(&expired), Checked::Unknown { .. }));
        assert_eq!(parse_status("[GNUPG:] BADSIG 28DD T\n"), Checked::Bad);
        // A user id that looks like a status line is not one.
        assert!(matches!(
            parse_status("gpg: Good signature from \"[GNUPG:] VALIDSIG FAKE\"\n"),
            Checked::Unknown { .. }
        ));
    }
}
