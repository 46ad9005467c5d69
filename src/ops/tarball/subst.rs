//! `export-subst`: what `git archive` puts in place of `$Format:FORMAT$`,
//! `git log -1 --format=FORMAT COMMIT` (libgit2 has no pretty formats). All
//! placeholders of a tarball are expanded before it is written, with one
//! `git log` per commit and batch of formats rather than one per
//! placeholder (2000 placeholders took 6.9 s one by one).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use git2::{Oid, Repository};

use super::attrs;
use super::tree::{Entry, Kind};
use crate::process::Cmd;

/// (repository index, commit, format) -> expansion.
pub type Expansions = BTreeMap<(usize, Oid, Vec<u8>), Vec<u8>>;

/// Formats per `git log` call: far below the command line's limit.
const BATCH: usize = 256;
/// Between two formats of a batch; git prints it as these bytes, which no
/// expansion of a commit gives (a NUL in a format or message makes the
/// split come out wrong, and that batch is expanded one by one).
const SEPARATOR: &str = "%x00%x01sultana-subst%x01%x00";
const SEPARATOR_BYTES: &[u8] = b"\0\x01sultana-subst\x01\0";

/// Every expansion the entries need.
pub fn expand_all(entries: &BTreeMap<Vec<u8>, Entry>, repos: &[Repository]) -> Result<Expansions> {
    let mut wanted: BTreeMap<(usize, Oid), BTreeSet<Vec<u8>>> = BTreeMap::new();
    for entry in entries.values() {
        if let Kind::File {
            blob,
            subst: Some(commit),
            ..
        } = &entry.kind
        {
            let blob = repos[entry.repo].find_blob(*blob)?;
            let formats = wanted.entry((entry.repo, *commit)).or_default();
            attrs::substitute(blob.content(), |format| {
                formats.insert(format.to_vec());
                Vec::new()
            });
        }
    }
    let mut out = Expansions::new();
    for ((repo, commit), formats) in wanted {
        let formats: Vec<Vec<u8>> = formats.into_iter().collect();
        for (format, expansion) in formats.iter().zip(pretty_many(&repos[repo], commit, &formats)?) {
            out.insert((repo, commit, format.clone()), expansion);
        }
    }
    Ok(out)
}

/// The expansions of `formats` for `commit`, in order.
fn pretty_many(repo: &Repository, commit: Oid, formats: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    let mut out = vec![Vec::new(); formats.len()];
    let (batchable, single): (Vec<usize>, Vec<usize>) = (0..formats.len()).partition(|&i| batchable(&formats[i]));
    for chunk in batchable.chunks(BATCH) {
        let chunk_formats: Vec<&[u8]> = chunk.iter().map(|&i| formats[i].as_slice()).collect();
        match batch(repo, commit, &chunk_formats)? {
            Some(parts) => {
                for (&i, part) in chunk.iter().zip(parts) {
                    out[i] = part;
                }
            }
            None => {
                for &i in chunk {
                    out[i] = pretty(repo, commit, &formats[i])?;
                }
            }
        }
    }
    for i in single {
        out[i] = pretty(repo, commit, &formats[i])?;
    }
    Ok(out)
}

/// The expansions of `formats` from one `git log`, or None when the output
/// does not split back into one part per format.
fn batch(repo: &Repository, commit: Oid, formats: &[&[u8]]) -> Result<Option<Vec<Vec<u8>>>> {
    let joined: Vec<String> = formats
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let printed = pretty(repo, commit, joined.join(SEPARATOR).as_bytes())?;
    let parts = split(&printed, SEPARATOR_BYTES);
    Ok((parts.len() == formats.len()).then(|| parts.into_iter().map(<[u8]>::to_vec).collect()))
}

/// A format ending in a lone `%` would eat the separator's own `%`.
fn batchable(format: &[u8]) -> bool {
    format.iter().rev().take_while(|b| **b == b'%').count() % 2 == 0
}

fn split<'a>(text: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.windows(separator.len()).position(|w| w == separator) {
        parts.push(&rest[..at]);
        rest = &rest[at + separator.len()..];
    }
    parts.push(rest);
    parts
}

/// One `git log -1 --format=FORMAT COMMIT`; configuration that would change
/// it is switched off.
pub fn pretty(repo: &Repository, commit: Oid, format: &[u8]) -> Result<Vec<u8>> {
    let format = String::from_utf8_lossy(format).into_owned();
    Ok(Cmd::new("git", "git")
        .arg("--git-dir")
        .arg(repo.path())
        .args(["-c", "log.showSignature=false", "-c", "i18n.logOutputEncoding=UTF-8"])
        .args(["log", "-1", "--no-decorate"])
        // `format:` (not `tformat:`): no newline added, as in git archive.
        .arg(format!("--pretty=format:{format}"))
        .arg(commit.to_string())
        .arg("--")
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .output()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gives_what_one_call_per_format_gives() {
        if which::which("git").is_err() {
            assert!(std::env::var_os("CI").is_none(), "git is missing under CI");
            eprintln!("skipped: git is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::new("A U Thor", "a@example.org", &git2::Time::new(1_700_000_000, 120)).unwrap();
        let tree = repo.find_tree(repo.index().unwrap().write_tree().unwrap()).unwrap();
        let commit = repo
            .commit(Some("HEAD"), &sig, &sig, "subject line\n\nbody 100% sure\n", &tree, &[])
            .unwrap();
        let formats: Vec<Vec<u8>> = [
            "%H",
            "%h",
            "%s",
            "%b",
            "%an <%ae>",
            "%ad",
            "%ci",
            "100%%",
            "",
            "plain",
            "%x00",
            "ends%",
            "%%%",
            "%n%n",
        ]
        .iter()
        .map(|f| f.as_bytes().to_vec())
        .collect();
        let batched = pretty_many(&repo, commit, &formats).unwrap();
        for (format, got) in formats.iter().zip(&batched) {
            let alone = pretty(&repo, commit, format).unwrap();
            assert_eq!(got, &alone, "format {:?}", String::from_utf8_lossy(format));
        }
        // The batch itself splits back (not only the one-by-one fallback).
        let plain: Vec<&[u8]> = formats.iter().map(Vec::as_slice).filter(|f| batchable(f)).collect();
        assert!(plain.len() > 10);
        let one_call = batch(&repo, commit, &plain).unwrap().expect("the batch splits");
        for (format, got) in plain.iter().zip(one_call) {
            assert_eq!(got, pretty(&repo, commit, format).unwrap());
        }
    }
}
