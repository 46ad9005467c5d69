//! The SPDX 2.3 software bill of materials beside a release tarball
//! (`NAME.spdx.json`): a package per component in it, with where it comes
//! from (url and commit), its version (describe) and the license its tree
//! declares. Everything in it comes from the lock and the trees' objects,
//! and its time is the root commit's, so two runs write the same bytes.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::license;
use super::plan::Repos;
use super::tree::{Entry, Kind};
use super::write::hex;
use crate::validate::redact_url;

/// One component of the tarball as the SBOM describes it.
pub struct Package {
    pub name: String,
    pub url: String,
    /// No branch or tag of `url` held the commit when the tarball was made
    /// (a fork's): the SBOM says NOASSERTION rather than send a reader to
    /// a place that does not have it.
    pub not_in_url: bool,
    pub commit: String,
    pub describe: String,
    /// Where its tree sits inside the tarball's top folder (empty: the root).
    pub at: Vec<u8>,
    /// The recipe's `license_files` (relative to its tree), or none for
    /// the usual top-level COPYING*, LICENSE*, LICENCE*.
    pub license_files: Vec<String>,
}

impl Package {
    /// The part of a tarball plan at its commit and describe, with the
    /// license files its recipe names.
    pub fn of(part: &super::Part, entry: &crate::lock::LockEntry, license_files: Vec<String>) -> Package {
        Package {
            name: part.name.clone(),
            url: part.url.clone(),
            not_in_url: entry.not_in_url,
            commit: entry.commit.clone(),
            describe: entry.describe.clone(),
            at: part.at.clone(),
            license_files,
        }
    }
}

impl Package {
    fn download_location(&self) -> String {
        if self.not_in_url {
            license::NOASSERTION.into()
        } else {
            download_location(&self.url, &self.commit)
        }
    }
}

/// `NAME.spdx.json` for the tarball whose top folder is `top`: the first
/// package is the root, the others are inside it.
pub fn document(
    top: &str,
    created: u64,
    packages: &[Package],
    entries: &BTreeMap<Vec<u8>, Entry>,
    repos: &Repos,
) -> Result<Vec<u8>> {
    // The root first, then the others by name: the same order whichever
    // way they were listed (the workspace's manifest, the embedded one).
    let mut packages: Vec<&Package> = packages.iter().collect();
    packages[1..].sort_by(|a, b| a.name.cmp(&b.name));
    let mut ids: Vec<String> = Vec::new();
    let mut described = Vec::new();
    let mut declared_all = Vec::new();
    for package in &packages {
        let id = spdx_id(&package.name, &ids);
        let texts = license_texts(package, entries, repos);
        let declared = license::declared(&texts);
        declared_all.push(declared.clone());
        described.push(json!({
            "SPDXID": id,
            "name": package.name,
            "versionInfo": package.describe,
            "downloadLocation": package.download_location(),
            "externalRefs": [{
                // A git commit id is the Software Heritage id of that revision.
                "referenceCategory": "PERSISTENT-ID",
                "referenceType": "swh",
                "referenceLocator": format!("swh:1:rev:{}", package.commit),
            }],
            "filesAnalyzed": false,
            "licenseConcluded": license::NOASSERTION,
            "licenseDeclared": declared,
            "copyrightText": license::NOASSERTION,
            "supplier": license::NOASSERTION,
            "originator": license::NOASSERTION,
        }));
        ids.push(id);
    }
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": ids[0],
    })];
    for id in &ids[1..] {
        relationships.push(json!({
            "spdxElementId": ids[0],
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    // A namespace unique to this content (what it says, not a local path it
    // was fetched from): the same document, the same one.
    let mut hash = Sha256::new();
    hash.update(top.as_bytes());
    for (p, declared) in packages.iter().zip(&declared_all) {
        let location = p.download_location();
        for part in [&p.name, &p.commit, &p.describe, declared, &location] {
            hash.update([0]);
            hash.update(part.as_bytes());
        }
    }
    let document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": top,
        "documentNamespace": format!("https://spdx.org/spdxdocs/{top}-{}", &hex(&hash.finalize())[..32]),
        "creationInfo": {
            "created": crate::timefmt::rfc3339(created),
            "creators": [format!("Tool: sultana-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": described,
        "relationships": relationships,
    });
    let mut bytes = serde_json::to_vec_pretty(&document)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// `SPDXRef-Package-NAME`, with what SPDX ids cannot hold replaced, and a
/// number added when that made it one of the `taken`.
fn spdx_id(name: &str, taken: &[String]) -> String {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut id = format!("SPDXRef-Package-{plain}");
    let mut n = 2;
    while taken.contains(&id) {
        id = format!("SPDXRef-Package-{plain}.{n}");
        n += 1;
    }
    id
}

/// SPDX's VCS form, `git+URL@COMMIT`, without credentials, for the
/// transports SPDX names for git (git, http, https, ssh, and scp-like
/// `git@host:path`); NOASSERTION for others (file:// and plain paths, which
/// say nothing to whoever reads the SBOM elsewhere).
fn download_location(url: &str, commit: &str) -> String {
    let url = redact_url(url);
    // A query or fragment (a token, a branch) has no place before `@COMMIT`.
    let url = url.split(['?', '#']).next().unwrap_or_default();
    if !url.contains("://") {
        // scp-like `user@host:path`; a `user:password@` keeps the user only.
        return match url.split_once('@') {
            Some((user, rest)) if rest.contains(':') && !user.contains('/') => {
                let user = user.split(':').next().unwrap_or_default();
                format!("git+{user}@{rest}@{commit}")
            }
            _ => license::NOASSERTION.into(),
        };
    }
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("https" | "http" | "ssh" | "git") => format!("git+{url}@{commit}"),
        Some(s) if s.starts_with("git+") && !s.ends_with("file") => format!("{url}@{commit}"),
        _ => license::NOASSERTION.into(),
    }
}

/// The texts of a package's license files, read from the tarball's entries.
fn license_texts(package: &Package, entries: &BTreeMap<Vec<u8>, Entry>, repos: &Repos) -> Vec<String> {
    let prefix = if package.at.is_empty() {
        Vec::new()
    } else {
        let mut p = package.at.clone();
        p.push(b'/');
        p
    };
    let wanted = |path: &[u8]| -> bool {
        let Some(rest) = path.strip_prefix(prefix.as_slice()) else {
            return false;
        };
        let Ok(rest) = std::str::from_utf8(rest) else {
            return false;
        };
        if package.license_files.is_empty() {
            !rest.contains('/') && license::is_license_file(rest)
        } else {
            package.license_files.iter().any(|f| f == rest)
        }
    };
    let mut texts = Vec::new();
    for (_, entry) in entries.iter().filter(|(p, _)| wanted(p)) {
        if texts.len() >= license::MAX_FILES {
            break;
        }
        // Files only: a link is not followed.
        let Kind::File { blob, .. } = &entry.kind else { continue };
        let Some(repo) = repos.repos.get(entry.repo) else {
            continue;
        };
        // The size from the object's header: a huge blob is never inflated.
        let small = repo
            .odb()
            .and_then(|odb| odb.read_header(*blob))
            .is_ok_and(|(size, _)| size <= license::MAX_TEXT);
        if !small {
            continue;
        }
        let Ok(object) = repo.find_blob(*blob) else { continue };
        texts.push(String::from_utf8_lossy(object.content()).into_owned());
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_locations_are_spdx_vcs_forms_without_credentials() {
        assert_eq!(
            download_location("https://user:secret@example.org/xen.git", "abc"),
            "git+https://example.org/xen.git@abc"
        );
        assert_eq!(download_location("file:///srv/x", "abc"), "NOASSERTION");
        assert_eq!(
            download_location("git@example.org:xen.git", "abc"),
            "git+git@example.org:xen.git@abc"
        );
        assert_eq!(download_location("/srv/x", "abc"), "NOASSERTION");
        assert_eq!(
            download_location("https://example.org/x.git?private_token=T#main", "abc"),
            "git+https://example.org/x.git@abc"
        );
        assert_eq!(
            download_location("alice:pw123@example.org:rusty.git", "abc"),
            "git+alice@example.org:rusty.git@abc"
        );
        assert_eq!(spdx_id("qemu-xen", &[]), "SPDXRef-Package-qemu-xen");
        let taken = vec!["SPDXRef-Package-a-b".to_string()];
        assert_eq!(spdx_id("a_b", &taken), "SPDXRef-Package-a-b.2");
    }
}
