//! The software bills of materials beside a release tarball: what is known
//! of each component (the facts, gathered once) written three ways, for the
//! readers each format has: SPDX 2.3 (`NAME.spdx.json`), SPDX 3.0
//! (`NAME.spdx3.json`, the form NTIA/CISA/BSI checkers read a document's
//! type and completeness from) and CycloneDX 1.6 (`NAME.cdx.json`). A
//! package per component: where it comes from (url and commit), its version
//! (describe), its supplier, the license its tree declares and the one
//! concluded, its copyright notices. Everything comes from the manifest,
//! the lock, the recipes and the trees' objects, and the time is the root
//! commit's, so two runs write the same bytes.

mod cyclonedx;
mod spdx2;
mod spdx3;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::license;
use super::plan::Repos;
use super::tree::{Entry, Kind};
use super::write::hex;
use crate::validate::redact_url;

pub use spdx3::{artifacts_named, Artifact};

/// One component of the tarball as it goes into the facts.
pub struct Package {
    pub name: String,
    pub url: String,
    /// No branch or tag of `url` held the commit when the tarball was made
    /// (a fork's): the SBOMs say NOASSERTION rather than send a reader to
    /// a place that does not have it.
    pub not_in_url: bool,
    pub commit: String,
    pub describe: String,
    /// Where its tree sits inside the tarball's top folder (empty: the root).
    pub at: Vec<u8>,
    /// The recipe's `license_files` (relative to its tree), or none for
    /// the usual top-level COPYING*, LICENSE*, LICENCE*.
    pub license_files: Vec<String>,
    /// The recipe's `license`: concluded when given.
    pub license: Option<String>,
    /// The manifest's `supplier`.
    pub supplier: Option<String>,
}

impl Package {
    /// The part of a tarball plan at its lock entry, with its recipe's
    /// license facts and its manifest's supplier.
    pub fn of(
        part: &super::Part,
        entry: &crate::lock::LockEntry,
        recipe: Option<&crate::recipe::Recipe>,
        supplier: Option<String>,
    ) -> Package {
        Package {
            name: part.name.clone(),
            url: part.url.clone(),
            not_in_url: entry.not_in_url,
            commit: entry.commit.clone(),
            describe: entry.describe.clone(),
            at: part.at.clone(),
            license_files: recipe.map(|r| r.license_files.clone()).unwrap_or_default(),
            license: recipe.and_then(|r| r.license.clone()),
            supplier,
        }
    }

    fn download_location(&self) -> Option<String> {
        if self.not_in_url {
            return None;
        }
        let location = download_location(&self.url, &self.commit);
        (location != license::NOASSERTION).then_some(location)
    }
}

/// `NAME` or `NAME <email or url>`, as the manifest writes a supplier or
/// a creator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    pub contact: Option<String>,
}

impl Party {
    pub fn parse(text: &str) -> Party {
        match text.split_once('<') {
            Some((name, contact)) => Party {
                name: name.trim().to_string(),
                contact: Some(contact.trim_end_matches('>').trim().to_string()).filter(|c| !c.is_empty()),
            },
            None => Party {
                name: text.trim().to_string(),
                contact: None,
            },
        }
    }

    pub fn email(&self) -> Option<&str> {
        self.contact
            .as_deref()
            .filter(|c| c.contains('@') && !c.contains("://"))
    }

    pub fn url(&self) -> Option<&str> {
        self.contact
            .as_deref()
            .filter(|c| c.starts_with("https://") || c.starts_with("http://"))
    }
}

/// What the SBOMs say of one component.
pub struct Described {
    pub name: String,
    pub describe: String,
    pub commit: String,
    /// Without credentials.
    pub url: String,
    /// `git+URL@COMMIT`; none when no one could fetch it from there.
    pub download: Option<String>,
    pub supplier: Option<Party>,
    /// What its license files say (an SPDX expression or NOASSERTION).
    pub declared: String,
    /// The recipe's license, else the declared one.
    pub concluded: String,
    pub copyright: Option<String>,
    /// Its place below the top folder (`.` for the root).
    pub at: String,
}

/// What the SBOMs of one release say, and what the maker should hear.
pub struct Facts {
    pub top: String,
    /// The root commit's time.
    pub created: u64,
    pub creator: Option<Party>,
    /// The root first, then the others by name.
    pub packages: Vec<Described>,
    /// A content hash naming the document (its namespace, its serial).
    pub digest: String,
    /// Warnings for `tarball`: a missing supplier, a license disagreement.
    pub notes: Vec<String>,
    /// The `LicenseRef-…` ids the expressions use, with the license text
    /// (the tree's license files, bounded) that SPDX 2 must carry for each.
    pub extracted: BTreeMap<String, String>,
}

/// At most this much license text is carried for one `LicenseRef-…`.
const MAX_EXTRACTED: usize = 64 * 1024;

/// The `LicenseRef-…` ids in an SPDX expression.
fn license_refs(expression: &str) -> Vec<String> {
    let Ok(parsed) = spdx::Expression::parse(expression) else {
        return Vec::new();
    };
    parsed
        .requirements()
        .filter_map(|r| match &r.req.license {
            spdx::LicenseItem::Other(other) if other.doc_ref.is_none() => Some(format!("LicenseRef-{}", other.lic_ref)),
            _ => None,
        })
        .collect()
}

/// The facts of the tarball whose top folder is `top`.
pub fn facts(
    top: &str,
    created: u64,
    creator: Option<&str>,
    packages: &[Package],
    entries: &BTreeMap<Vec<u8>, Entry>,
    repos: &Repos,
) -> Facts {
    // The root first, then the others by name: the same order whichever
    // way they were listed (the workspace's manifest, the embedded one).
    let mut packages: Vec<&Package> = packages.iter().collect();
    if packages.len() > 1 {
        packages[1..].sort_by(|a, b| a.name.cmp(&b.name));
    }
    let mut notes = Vec::new();
    let mut described = Vec::new();
    let mut extracted = BTreeMap::new();
    for package in packages {
        let texts = license_texts(package, entries, repos);
        let declared = license::declared(&texts);
        let concluded = match &package.license {
            Some(given) => {
                if declared != license::NOASSERTION && !same_expression(given, &declared) {
                    notes.push(format!(
                        "`{}`: its recipe's license `{given}` is not what its license files say (`{declared}`); \
                         the SBOMs conclude the recipe's and declare the files'",
                        package.name
                    ));
                }
                given.clone()
            }
            None => declared.clone(),
        };
        for id in license_refs(&concluded).into_iter().chain(license_refs(&declared)) {
            let mut text = texts.join("\n\n");
            if text.trim().is_empty() {
                text = format!(
                    "The license of {} as its recipe names it; the tree holds no license file.",
                    package.name
                );
            }
            if text.len() > MAX_EXTRACTED {
                let mut cut = MAX_EXTRACTED;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            extracted.entry(id).or_insert(text);
        }
        if package.supplier.is_none() {
            notes.push(format!(
                "`{}` has no supplier: the SBOMs say NOASSERTION (give it `supplier = \"NAME <url>\"` in sultana.toml)",
                package.name
            ));
        }
        described.push(Described {
            name: package.name.clone(),
            describe: package.describe.clone(),
            commit: package.commit.clone(),
            // Without credentials, nor a query or fragment (a token, a branch).
            url: redact_url(&package.url)
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_string(),
            download: package.download_location(),
            supplier: package.supplier.as_deref().map(Party::parse),
            declared,
            concluded,
            copyright: license::copyright(&texts),
            at: if package.at.is_empty() {
                ".".into()
            } else {
                String::from_utf8_lossy(&package.at).into_owned()
            },
        });
    }
    // A name unique to this content (what it says, not a local path it was
    // fetched from): the same document, the same name.
    let mut hash = Sha256::new();
    hash.update(top.as_bytes());
    hash.update([0]);
    hash.update(creator.unwrap_or_default().as_bytes());
    for p in &described {
        let supplier = p.supplier.as_ref().map(|s| format!("{s:?}")).unwrap_or_default();
        let location = p.download.clone().unwrap_or_default();
        let copyright = p.copyright.clone().unwrap_or_default();
        for part in [
            &p.name,
            &p.commit,
            &p.describe,
            &p.declared,
            &p.concluded,
            &location,
            &supplier,
            &copyright,
        ] {
            hash.update([0]);
            hash.update(part.as_bytes());
        }
    }
    Facts {
        top: top.to_string(),
        created,
        creator: creator.map(Party::parse),
        packages: described,
        digest: hex(&hash.finalize()),
        notes,
        extracted,
    }
}

/// Whether two SPDX expressions say the same (their parsed forms agree).
fn same_expression(a: &str, b: &str) -> bool {
    match (spdx::Expression::parse(a), spdx::Expression::parse(b)) {
        (Ok(x), Ok(y)) => x.to_string() == y.to_string() || a.trim() == b.trim(),
        _ => a.trim() == b.trim(),
    }
}

/// The three documents of a release.
pub struct Documents {
    pub spdx2: Vec<u8>,
    pub spdx3: Vec<u8>,
    pub cyclonedx: Vec<u8>,
}

impl Facts {
    /// The documents; `artifacts` are the tarball files (with their
    /// SHA-512) each component is distributed in.
    pub fn documents(&self, artifacts: &[Artifact]) -> anyhow::Result<Documents> {
        Ok(Documents {
            spdx2: spdx2::document(self)?,
            spdx3: spdx3::document(self, artifacts)?,
            cyclonedx: cyclonedx::document(self)?,
        })
    }
}

/// The file names of a release's SBOMs, by top folder.
pub fn file_names(top: &str) -> [String; 3] {
    [
        format!("{top}.spdx.json"),
        format!("{top}.spdx3.json"),
        format!("{top}.cdx.json"),
    ]
}

/// Pretty JSON with a final newline: the one way a document is written.
fn to_bytes(value: &serde_json::Value) -> anyhow::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
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
