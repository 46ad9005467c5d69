//! `sultana.lock`: the resolved commit of each component's intent.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml_edit::{value, ArrayOfTables, DocumentMut, Item, Table};

use crate::fsutil;
use crate::manifest::{Component, Source};
use crate::validate;

pub const FILE_NAME: &str = "sultana.lock";

const HEADER: &str = "# Written by sultana: the commit each component's revision resolved to.\n\
# Commit this file; `sultana update` and `sultana lock` rewrite it.\n\n";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockEntry {
    pub name: String,
    pub url: String,
    pub revision: String,
    pub commit: String,
    pub describe: String,
    /// `intree` in a release tarball's lock: the tree is inside the root tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A release tarball's lock: when it was made, no branch or tag of
    /// `url` held the commit (a fork's, fetched from a mirror or an
    /// override), so the SBOM names no place to download it from.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_in_url: bool,
}

impl LockEntry {
    /// The entry still pins what the manifest asks for.
    pub fn matches(&self, component: &Component) -> bool {
        validate::redact_url(&self.url) == validate::redact_url(&component.url) && self.revision == component.revision
    }

    pub fn short(&self) -> &str {
        &self.commit[..self.commit.len().min(12)]
    }
}

#[derive(Clone, Debug, Default)]
pub struct Lock {
    pub entries: BTreeMap<String, LockEntry>,
    doc: Option<DocumentMut>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    #[serde(default)]
    component: Vec<Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Spanned<String>,
    url: Spanned<String>,
    revision: Spanned<String>,
    commit: Spanned<String>,
    #[serde(default)]
    describe: String,
    source: Option<Spanned<String>>,
    #[serde(default)]
    not_in_url: bool,
}

impl Lock {
    /// Read the lock; a missing file is an empty lock.
    pub fn load(path: &Path) -> Result<Lock> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lock::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(Lock::parse(&text, &path.display().to_string())?)
    }

    pub fn parse(text: &str, name: &str) -> Result<Lock, crate::manifest::ManifestError> {
        let source = Source {
            name: name.to_string(),
            text,
        };
        let raw: RawLock = toml::from_str(text).map_err(|e| source.toml_error(e))?;
        let mut entries = BTreeMap::new();
        for entry in raw.component {
            let span = entry.span();
            let e = entry.into_inner();
            let check = |v: &Spanned<String>, r: Result<(), String>| r.map_err(|m| source.error(v.span(), m));
            check(&e.name, validate::check_name(e.name.get_ref()))?;
            check(&e.url, validate::check_url(e.url.get_ref()))?;
            check(&e.revision, validate::check_revision(e.revision.get_ref()))?;
            if !validate::is_full_sha(e.commit.get_ref()) {
                return Err(source.error(e.commit.span(), "`commit` must be a full 40-hex commit id"));
            }
            if let Some(s) = &e.source {
                if !["git", "intree"].contains(&s.get_ref().as_str()) {
                    return Err(source.error(s.span(), "`source` must be `git` or `intree`"));
                }
            }
            let name = e.name.into_inner();
            if entries.contains_key(&name) {
                return Err(source.error(span, format!("component `{name}` is locked twice")));
            }
            entries.insert(
                name.clone(),
                LockEntry {
                    name,
                    url: e.url.into_inner(),
                    revision: e.revision.into_inner(),
                    commit: e.commit.into_inner().to_ascii_lowercase(),
                    describe: e.describe,
                    source: e.source.map(Spanned::into_inner),
                    not_in_url: e.not_in_url,
                },
            );
        }
        let doc = text.parse::<DocumentMut>().ok();
        Ok(Lock { entries, doc })
    }

    pub fn get(&self, name: &str) -> Option<&LockEntry> {
        self.entries.get(name)
    }

    /// The text of the lock, keeping the comments and layout of the file it was
    /// read from where entries did not change.
    pub fn render(&self) -> String {
        let mut doc = self.doc.clone().unwrap_or_else(|| {
            let mut doc = DocumentMut::new();
            doc.decor_mut().set_prefix(HEADER);
            doc
        });
        let mut old: BTreeMap<String, Table> = BTreeMap::new();
        if let Some(tables) = doc.get("component").and_then(Item::as_array_of_tables) {
            for table in tables.iter() {
                if let Some(name) = table.get("name").and_then(Item::as_str) {
                    let mut table = table.clone();
                    // Read back, the header is the first table's prefix: it
                    // would move with that table when another sorts first.
                    let prefix = table
                        .decor()
                        .prefix()
                        .and_then(|p| p.as_str())
                        .unwrap_or_default()
                        .to_string();
                    if let Some(rest) = prefix.strip_prefix(HEADER) {
                        table.decor_mut().set_prefix(rest.to_string());
                    }
                    old.insert(name.to_string(), table);
                }
            }
        }
        // The file always opens with the header (an empty or headless file too).
        let prefix = doc
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .to_string();
        if !prefix.starts_with(HEADER) {
            doc.decor_mut().set_prefix(format!("{HEADER}{prefix}"));
        }
        let mut tables = ArrayOfTables::new();
        for entry in self.entries.values() {
            let mut table = old.remove(&entry.name).unwrap_or_default();
            set(&mut table, "name", &entry.name);
            // Credentials of a url never reach a file meant to be committed.
            set(&mut table, "url", &validate::redact_url(&entry.url));
            set(&mut table, "revision", &entry.revision);
            set(&mut table, "commit", &entry.commit);
            set(&mut table, "describe", &entry.describe);
            match &entry.source {
                Some(source) => set(&mut table, "source", source),
                None => {
                    table.remove("source");
                }
            }
            if entry.not_in_url {
                table.insert("not_in_url", value(true));
            } else {
                table.remove("not_in_url");
            }
            tables.push(table);
        }
        doc.insert("component", Item::ArrayOfTables(tables));
        doc.to_string()
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        fsutil::atomic_write(path, self.render().as_bytes())
    }
}

fn set(table: &mut Table, key: &str, text: &str) {
    if table.get(key).and_then(Item::as_str) != Some(text) {
        table[key] = value(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: &str = "0123456789abcdef0123456789abcdef01234567";
    const C2: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn entry(name: &str, commit: &str) -> LockEntry {
        LockEntry {
            name: name.into(),
            url: format!("https://h/{name}.git"),
            revision: "master".into(),
            commit: commit.into(),
            describe: "v1".into(),
            source: None,
            not_in_url: false,
        }
    }

    #[test]
    fn the_header_stays_first_whatever_sorts_first() {
        let mut lock = Lock::default();
        lock.entries.insert("xen".into(), entry("xen", C1));
        let mut again = Lock::parse(&lock.render(), "sultana.lock").unwrap();
        again.entries.insert("blktap".into(), entry("blktap", C2));
        let text = again.render();
        assert!(text.starts_with(HEADER), "{text}");
        assert_eq!(text.matches("# Written by sultana").count(), 1, "{text}");
        let empty = Lock::parse("", "sultana.lock").unwrap();
        let mut from_empty = empty.clone();
        from_empty.entries.insert("xen".into(), entry("xen", C1));
        assert!(from_empty.render().starts_with(HEADER));
    }

    #[test]
    fn round_trip_keeps_comments() {
        let mut lock = Lock::default();
        lock.entries.insert("xen".into(), entry("xen", C1));
        lock.entries.insert("blktap".into(), entry("blktap", C1));
        let text = lock.render().replace(
            "[[component]]\nname = \"xen\"",
            "# tested by flight 42\n[[component]]\nname = \"xen\"",
        );
        let mut again = Lock::parse(&text, "sultana.lock").unwrap();
        assert_eq!(again.entries, lock.entries);
        again.entries.get_mut("xen").unwrap().commit = C2.into();
        let out = again.render();
        assert!(out.contains("# tested by flight 42"), "{out}");
        assert!(out.contains(C2));
        assert_eq!(out.lines().count(), text.lines().count(), "{out}");
    }

    #[test]
    fn refuses_bad_entries() {
        let bad = format!("[[component]]\nname = \"xen\"\nurl = \"ext::sh\"\nrevision = \"m\"\ncommit = \"{C1}\"\n");
        let e = Lock::parse(&bad, "sultana.lock").unwrap_err().to_string();
        assert!(e.starts_with("sultana.lock:3:7:"), "{e}");
        let short = "[[component]]\nname = \"xen\"\nurl = \"https://h/x\"\nrevision = \"m\"\ncommit = \"abc\"\n";
        assert!(Lock::parse(short, "l").unwrap_err().to_string().contains("40-hex"));
    }
}
