//! `[url_rewrites]`: url prefixes fetched from somewhere else, as git's
//! `url.<base>.insteadOf` (qemu-xen's submodules name `git://` hosts that
//! firewalls drop). Applied where git is run, to component urls, mirrors and
//! submodule urls alike; the lock, the cache's names and every file sultana
//! writes keep the url as written.

use std::collections::BTreeMap;

use crate::validate;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlRewrites {
    /// Prefix → replacement.
    map: BTreeMap<String, String>,
}

impl UrlRewrites {
    /// Add (or replace) one rule, checked: a replacement must itself be a
    /// url or an absolute path, so that every url it makes is one too.
    pub fn insert(&mut self, from: &str, to: &str) -> Result<(), String> {
        if from.is_empty() {
            return Err("an empty prefix would rewrite every url".into());
        }
        if let Some(c) = from.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("prefix `{}` contains the character {c:?}", from.escape_debug()));
        }
        // Checked with something after it, as it is used: `git@host:`
        // alone has no path yet.
        let probe = format!("{to}x");
        validate::check_url(&probe).map_err(|m| format!("replacement for `{from}`: {}", m.replace(&probe, to)))?;
        // scp-like `host:` alone would let `host` + `::rest` read as a
        // transport; a scheme, a path or `user@host:` cannot.
        if !(to.contains("://") || to.starts_with('/') || to.split(':').next().is_some_and(|h| h.contains('@'))) {
            return Err(format!(
                "replacement `{to}` for `{from}` must start with a scheme (https://…), a `/` or `user@host:`"
            ));
        }
        self.map.insert(from.to_string(), to.to_string());
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Where git goes for `url`: the longest matching prefix replaced, as
    /// git chooses among `insteadOf` rules; `url` itself when none matches.
    pub fn apply(&self, url: &str) -> String {
        self.map
            .iter()
            .filter(|(from, _)| url.starts_with(from.as_str()))
            .max_by_key(|(from, _)| from.len())
            .map(|(from, to)| format!("{to}{}", &url[from.len()..]))
            .unwrap_or_else(|| url.to_string())
    }

    /// The rule that applies to `url` (the longest matching prefix).
    pub fn rule_for(&self, url: &str) -> Option<(&str, &str)> {
        self.map
            .iter()
            .filter(|(from, _)| url.starts_with(from.as_str()))
            .max_by_key(|(from, _)| from.len())
            .map(|(a, b)| (a.as_str(), b.as_str()))
    }

    /// `url` as printed in a message: with where it was fetched from when a
    /// rule moved it.
    pub fn describe(&self, url: &str) -> String {
        let to = self.apply(url);
        if to == url {
            validate::redact_credentials(url)
        } else {
            format!(
                "{} (rewritten to {})",
                validate::redact_credentials(url),
                validate::redact_credentials(&to)
            )
        }
    }

    pub fn rules(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(a, b)| (a.as_str(), b.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_others_pass_through() {
        let mut r = UrlRewrites::default();
        r.insert("git://git.qemu-project.org/", "https://gitlab.com/qemu-project/")
            .unwrap();
        r.insert("git://git.qemu-project.org/keycodemapdb", "/srv/mirror/keycodemapdb")
            .unwrap();
        assert_eq!(
            r.apply("git://git.qemu-project.org/dtc.git"),
            "https://gitlab.com/qemu-project/dtc.git"
        );
        assert_eq!(
            r.apply("git://git.qemu-project.org/keycodemapdb.git"),
            "/srv/mirror/keycodemapdb.git"
        );
        assert_eq!(r.apply("https://example.org/x.git"), "https://example.org/x.git");
        assert!(r
            .describe("git://git.qemu-project.org/dtc.git")
            .contains("rewritten to https://"));
    }

    #[test]
    fn refuses_what_could_make_a_bad_url() {
        let mut r = UrlRewrites::default();
        assert!(r.insert("", "https://x/").is_err());
        assert!(r.insert("git://a/", "ext::sh -c x").is_err());
        assert!(r.insert("git://a/", "-uoption").is_err());
        assert!(r.insert("git://a/", "host:").is_err());
        assert!(r.insert("git://a/", "fancy://x/").is_err());
        assert!(r.insert("git://a/", "git@host:").is_ok());
        for rewritten in ["git://a/::x", "git://a/x"].map(|u| r.apply(u)) {
            validate::check_url(&rewritten).unwrap();
        }
    }
}
