//! The license a tree declares: its license files' texts matched against
//! SPDX's license list (askalono, with the texts the spdx crate embeds).
//! Only a confident match names a license; anything else is NOASSERTION,
//! never a guess.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use askalono::{ScanMode, ScanStrategy, Store, TextData};

pub const NOASSERTION: &str = "NOASSERTION";

/// askalono's own threshold for "this is that license".
const CONFIDENT: f32 = 0.9;

/// A license file larger than this is no license text (and matching it
/// would cost seconds): it gives nothing.
pub const MAX_TEXT: usize = 512 * 1024;

/// The file names that hold a tree's license when its recipe names none:
/// at the top of the tree, as GitHub and Debian's licensecheck look.
pub fn is_license_file(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["COPYING", "LICENSE", "LICENCE"].iter().any(|p| upper.starts_with(p))
}

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        // One id per text: where SPDX gives several ids the same text
        // (MPL-2.0 and MPL-2.0-no-copyleft-exception, GPL-2.0-only and
        // -or-later, OFL-1.1 and its -RFN variants), askalono's tie would be
        // broken in hash order, so a run could name either. The shortest id
        // (then the first in order) stands for the text. `-or-later` ids
        // are left out: their text is their `-only` one's (whether later
        // versions apply is said in the files' headers, not by the license
        // text), so a GPL v2 text is GPL-2.0-only every time.
        let mut by_text: std::collections::BTreeMap<Vec<String>, (&str, TextData)> = Default::default();
        for license in spdx::identifiers::LICENSES {
            let Some(id) = spdx::license_id(license.name) else {
                continue;
            };
            if id.is_deprecated() || license.name.ends_with("-or-later") {
                continue;
            }
            let data = TextData::new(id.text());
            let key = data.lines().to_vec();
            match by_text.get(&key) {
                Some((kept, _)) if (kept.len(), *kept) <= (license.name.len(), license.name) => {}
                _ => {
                    by_text.insert(key, (license.name, data));
                }
            }
        }
        let mut store = Store::new();
        for (name, data) in by_text.into_values() {
            store.add_license(name.to_string(), data);
        }
        store
    })
}

/// At most this many license files of a tree are read, and this many bytes
/// of them in all: matching costs about a tenth of a second a file.
pub const MAX_FILES: usize = 16;
pub const MAX_TOTAL: usize = 1024 * 1024;

/// The SPDX expression the license files with `texts` declare: every
/// license found with confidence, joined by AND (a file holding two license
/// texts declares both), or NOASSERTION.
pub fn declared(texts: &[String]) -> String {
    let mut found = BTreeSet::new();
    let mut total = 0;
    for text in texts.iter().filter(|t| t.len() <= MAX_TEXT).take(MAX_FILES) {
        total += text.len();
        if total > MAX_TOTAL {
            break;
        }
        // Elimination: the best match, whited out, then the next; its cost
        // grows with the text's length only. (askalono's window-by-window
        // scan would also find two texts of which neither dominates, but its
        // cost grows with the cube of the line count: hours for a hostile
        // 8 KB file.)
        found.extend(scan(&TextData::new(&wrapped(text))));
    }
    if found.is_empty() {
        return NOASSERTION.to_string();
    }
    found.into_iter().collect::<Vec<_>>().join(" AND ")
}

/// At most this many copyright lines, each at most this long, go into an SBOM.
const MAX_NOTICES: usize = 16;
const MAX_NOTICE: usize = 200;

/// The copyright notices of license files with `texts`: their lines that
/// begin `Copyright (c) YEAR …` or `© YEAR …`, each once, in order, bounded;
/// `None` when there are none. A license's own text is not the tree's
/// notice: the GNU licenses' `Copyright (C) … Free Software Foundation` and
/// their `<name of author>` template are left out.
pub fn copyright(texts: &[String]) -> Option<String> {
    let mut found: Vec<String> = Vec::new();
    for text in texts.iter().filter(|t| t.len() <= MAX_TEXT).take(MAX_FILES) {
        for line in text.lines() {
            let line = line
                .trim()
                .trim_start_matches(['#', '*', '/', ';', ' '])
                .trim_end_matches(['*', '/', ' '])
                .trim();
            let lower = line.to_ascii_lowercase();
            let rest = if let Some(rest) = lower.strip_prefix("copyright") {
                rest.trim_start()
                    .trim_start_matches("(c)")
                    .trim_start_matches('©')
                    .trim_start()
            } else if let Some(rest) = line.strip_prefix('©') {
                rest.trim_start()
            } else {
                continue;
            };
            let dated = rest.chars().next().is_some_and(|c| c.is_ascii_digit());
            let template = line.contains('<') || lower.contains("free software foundation");
            if !dated || template || line.len() > MAX_NOTICE || found.iter().any(|f| f == line) {
                continue;
            }
            found.push(line.to_string());
            if found.len() >= MAX_NOTICES {
                return Some(found.join("\n"));
            }
        }
    }
    (!found.is_empty()).then(|| found.join("\n"))
}

fn scan(data: &TextData) -> BTreeSet<String> {
    let strategy = ScanStrategy::new(store())
        .mode(ScanMode::Elimination)
        .confidence_threshold(CONFIDENT)
        .optimize(true)
        .max_passes(4);
    let mut found = BTreeSet::new();
    let Ok(result) = strategy.scan(data) else {
        return found;
    };
    if let Some(license) = result.license.filter(|_| result.score >= CONFIDENT) {
        found.insert(license.name.to_string());
    }
    for contained in result.containing.iter().filter(|c| c.score >= CONFIDENT) {
        found.insert(contained.license.name.to_string());
    }
    found
}

/// The text with its long lines broken at spaces: askalono finds a license
/// inside a longer file by windows of lines, which a license written a
/// paragraph a line does not have.
fn wrapped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 60);
    for line in text.lines() {
        let mut width = 0;
        for word in line.split(' ') {
            if width > 0 && width + word.len() > 78 {
                out.push('\n');
                width = 0;
            } else if width > 0 {
                out.push(' ');
                width += 1;
            }
            out.push_str(word);
            width += word.len();
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copyright_lines_are_the_trees_own_notices() {
        let bsd = "BSD 2-Clause License\n\nCopyright (c) 2016, Citrix Systems, Inc.\nAll rights reserved.\n\
                   1. Redistributions of source code must retain the above copyright\n";
        let gpl = "Copyright (C) 1989, 1991 Free Software Foundation, Inc.\n\
                   Copyright (C) <year>  <name of author>\n";
        let notes = "/* Copyright 2024 Xen Project */\n© 2025 Someone\nCopyright (c) 2016, Citrix Systems, Inc.\n";
        assert_eq!(
            copyright(&[bsd.into(), gpl.into(), notes.into()]).as_deref(),
            Some("Copyright (c) 2016, Citrix Systems, Inc.\nCopyright 2024 Xen Project\n© 2025 Someone")
        );
        assert_eq!(copyright(&[gpl.into()]), None);
    }

    fn text(id: &str) -> String {
        spdx::license_id(id).unwrap().text().to_string()
    }

    #[test]
    fn known_texts_are_named_and_others_are_not_guessed() {
        assert_eq!(declared(&[text("GPL-2.0-only")]), "GPL-2.0-only");
        let bsd = format!(
            "All files here are under the following BSD license.\n\n{}",
            text("BSD-3-Clause")
        );
        assert_eq!(
            declared(&[bsd]),
            "BSD-3-Clause",
            "a line before a text a paragraph a line"
        );
        let notice = format!(
            "XEN NOTICE\n==========\nThis does not cover guests.\n\n{}",
            text("GPL-2.0-only")
        );
        assert_eq!(declared(&[notice]), "GPL-2.0-only", "a notice before the text");
        assert_eq!(declared(&[text("BSD-3-Clause"), text("MIT")]), "BSD-3-Clause AND MIT");
        assert_eq!(
            declared(&["Do what you like with this, but do not sue me.\n".into()]),
            NOASSERTION
        );
        // Texts SPDX gives several ids: the same one every time.
        assert_eq!(declared(&[text("MPL-2.0")]), "MPL-2.0");
        assert_eq!(declared(&[text("MPL-2.0-no-copyleft-exception")]), "MPL-2.0");
        assert_eq!(declared(&[text("GPL-2.0-or-later")]), "GPL-2.0-only");
        // Hostile texts match nothing, and quickly: a long text of license
        // words, and many one-character lines (which a window-by-window scan
        // would take hours over).
        let words = [
            "the",
            "software",
            "license",
            "copyright",
            "permission",
            "notice",
            "free",
        ];
        let long: String = (0..40_000)
            .map(|i| words[(i * 7 + i / 3) % words.len()])
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(declared(&[long]), NOASSERTION);
        assert_eq!(declared(&[vec!["x"; 4000].join("\n")]), NOASSERTION);
        assert_eq!(declared(&[]), NOASSERTION);
        assert_eq!(declared(&["x".repeat(MAX_TEXT + 1)]), NOASSERTION);
        assert!(is_license_file("COPYING") && is_license_file("LICENSE.md") && is_license_file("Licence"));
        assert!(!is_license_file("README"));
    }
}
