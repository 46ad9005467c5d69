//! The part of `.gitattributes` that `git archive` obeys and a release tarball
//! must too: `export-ignore` (leave the path out) and `export-subst` (expand
//! `$Format:…$` placeholders). Each `.gitattributes` in the archived tree
//! applies below its own folder; later lines and deeper files win, as in git.

use crate::glob::{self, Token};

/// One attribute setting from one line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    /// The folder of the `.gitattributes` file, with a trailing `/` (or empty).
    base: Vec<u8>,
    pattern: Vec<u8>,
    /// Pattern has a `/` before its end: matched against the path relative to
    /// `base`, else against the last path component.
    anchored: bool,
    attr: Attr,
    set: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attr {
    ExportIgnore,
    ExportSubst,
}

#[derive(Clone, Debug, Default)]
pub struct Attributes {
    rules: Vec<Rule>,
}

impl Attributes {
    /// Add the lines of the `.gitattributes` found in folder `dir` (relative
    /// path bytes, empty for the top). Must be called shallow folders first.
    pub fn add_file(&mut self, dir: &[u8], content: &[u8]) {
        let mut base = dir.to_vec();
        if !base.is_empty() {
            base.push(b'/');
        }
        for line in content.split(|b| *b == b'\n') {
            let line = trim(line);
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            let mut words = line
                .split(|b| *b == b' ' || *b == b'\t' || *b == b'\r')
                .filter(|w| !w.is_empty());
            let Some(pattern) = words.next() else { continue };
            // Quoted patterns and macros are rare in attributes for export;
            // they are skipped rather than half understood.
            if pattern.starts_with(b"\"") || pattern.starts_with(b"[attr]") {
                continue;
            }
            let mut pattern = pattern.to_vec();
            let trimmed_leading = pattern.first() == Some(&b'/');
            if trimmed_leading {
                pattern.remove(0);
            }
            let anchored = trimmed_leading || pattern[..pattern.len().saturating_sub(1)].contains(&b'/');
            for word in words {
                let (name, set) = match word.first() {
                    Some(b'-') | Some(b'!') => (&word[1..], false),
                    _ => (word.split(|b| *b == b'=').next().unwrap_or(word), true),
                };
                let attr = match name {
                    b"export-ignore" => Attr::ExportIgnore,
                    b"export-subst" => Attr::ExportSubst,
                    _ => continue,
                };
                self.rules.push(Rule {
                    base: base.clone(),
                    pattern: pattern.clone(),
                    anchored,
                    attr,
                    set,
                });
            }
        }
    }

    /// Whether `attr` is set for `path` (relative, no leading `/`); `is_dir`
    /// for folders (a pattern ending in `/` matches only those).
    pub fn get(&self, path: &[u8], is_dir: bool, attr: Attr) -> bool {
        let mut value = false;
        for rule in self.rules.iter().filter(|r| r.attr == attr) {
            let Some(rel) = path.strip_prefix(rule.base.as_slice()) else {
                continue;
            };
            let (pattern, dir_only) = match rule.pattern.strip_suffix(b"/") {
                Some(p) => (p, true),
                None => (rule.pattern.as_slice(), false),
            };
            if dir_only && !is_dir {
                continue;
            }
            let subject = if rule.anchored {
                rel
            } else {
                rel.rsplit(|b| *b == b'/').next().unwrap_or(rel)
            };
            if wildmatch(pattern, subject, rule.anchored) {
                value = rule.set;
            }
        }
        value
    }
}

fn trim(mut line: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = line {
        if first.is_ascii_whitespace() {
            line = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = line {
        if last.is_ascii_whitespace() {
            line = rest;
        } else {
            break;
        }
    }
    line
}

/// git's wildmatch: `*` (not across `/` when `pathname`), `**` across folders,
/// `?`, `[…]` classes with ranges and `!`/`^` negation, `\` escapes.
pub fn wildmatch(pattern: &[u8], text: &[u8], pathname: bool) -> bool {
    glob::matches(&compile(pattern, pathname), text)
}

fn compile(mut pattern: &[u8], pathname: bool) -> Vec<Token> {
    let slash: &'static [u8] = if pathname { b"/" } else { b"" };
    let mut tokens = Vec::new();
    while let Some((p, rest)) = pattern.split_first() {
        pattern = rest;
        tokens.push(match p {
            b'*' if rest.starts_with(b"*/") => {
                pattern = &rest[2..];
                Token::Folders
            }
            b'*' if rest.starts_with(b"*") => {
                pattern = &rest[1..];
                Token::Many { stops: b"" }
            }
            b'*' => Token::Many { stops: slash },
            b'?' => Token::One { stops: slash },
            b'[' => match class(rest, 0) {
                Some((_, after)) => {
                    let mut set = Box::new([false; 256]);
                    for (c, member) in set.iter_mut().enumerate() {
                        let c = c as u8;
                        *member = !slash.contains(&c) && class(rest, c).is_some_and(|(m, _)| m);
                    }
                    pattern = after;
                    Token::Set(set)
                }
                // No closing `]`: a literal `[`.
                None => Token::Byte(b'['),
            },
            b'\\' if !rest.is_empty() => {
                pattern = &rest[1..];
                Token::Byte(rest[0])
            }
            other => Token::Byte(*other),
        });
    }
    tokens
}

/// Match `c` against the class starting after `[`; returns whether it
/// matched and the pattern after `]`.
fn class(pattern: &[u8], c: u8) -> Option<(bool, &[u8])> {
    let (negate, mut rest) = match pattern.first() {
        Some(b'!') | Some(b'^') => (true, &pattern[1..]),
        _ => (false, pattern),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let (p, after) = rest.split_first()?;
        if *p == b']' && !first {
            return Some((matched != negate, after));
        }
        first = false;
        let (lo, after) = if *p == b'\\' { after.split_first()? } else { (p, after) };
        if after.first() == Some(&b'-') && after.get(1).is_some_and(|h| *h != b']') {
            let hi = after[1];
            matched |= (*lo..=hi).contains(&c);
            rest = &after[2..];
        } else {
            matched |= *lo == c;
            rest = after;
        }
    }
}

/// Expand `$Format:…$` in `content` with `expand(format)`, as `export-subst`
/// does; text without a closing `$` is left alone.
pub fn substitute(content: &[u8], mut expand: impl FnMut(&[u8]) -> Vec<u8>) -> Vec<u8> {
    const OPEN: &[u8] = b"$Format:";
    let mut out = Vec::with_capacity(content.len());
    let mut rest = content;
    while let Some(start) = find(rest, OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.iter().position(|b| *b == b'$') else {
            break;
        };
        out.extend_from_slice(&rest[..start]);
        out.extend_from_slice(&expand(&after[..end]));
        rest = &after[end + 1..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backtracking matcher this one replaced, as the reference.
    fn naive(pattern: &[u8], text: &[u8], pathname: bool) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => {
                let double = rest.first() == Some(&b'*');
                if double {
                    let rest = &rest[1..];
                    // `**/` also matches no folder at all.
                    if let Some(after) = rest.strip_prefix(b"/") {
                        if naive(after, text, pathname) {
                            return true;
                        }
                    }
                    (0..=text.len()).any(|i| naive(rest, &text[i..], pathname))
                } else {
                    for i in 0..=text.len() {
                        if naive(rest, &text[i..], pathname) {
                            return true;
                        }
                        if pathname && text.get(i) == Some(&b'/') {
                            return false;
                        }
                    }
                    false
                }
            }
            Some((b'?', rest)) => match text.split_first() {
                Some((c, text_rest)) if !(pathname && *c == b'/') => naive(rest, text_rest, pathname),
                _ => false,
            },
            Some((b'[', rest)) => {
                let Some((c, text_rest)) = text.split_first() else {
                    return false;
                };
                match class(rest, *c) {
                    Some((true, after)) if !(pathname && *c == b'/') => naive(after, text_rest, pathname),
                    Some(_) => false,
                    // No closing `]`: a literal `[`.
                    None => *c == b'[' && naive(rest, text_rest, pathname),
                }
            }
            Some((b'\\', rest)) if !rest.is_empty() => {
                text.first() == Some(&rest[0]) && naive(&rest[1..], &text[1..], pathname)
            }
            Some((p, rest)) => text.first() == Some(p) && naive(rest, &text[1..], pathname),
        }
    }

    #[test]
    fn compiled_patterns_match_like_backtracking() {
        // Few letters and many metacharacters, so the tricky cases come up.
        let alphabet = b"a*/*?[]!-\\";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..100_000 {
            let pattern: Vec<u8> = (0..next(8)).map(|_| alphabet[next(alphabet.len())]).collect();
            let text: Vec<u8> = (0..next(8)).map(|_| b"ab/"[next(3)]).collect();
            for pathname in [false, true] {
                assert_eq!(
                    wildmatch(&pattern, &text, pathname),
                    naive(&pattern, &text, pathname),
                    "{:?} {:?} {pathname}",
                    String::from_utf8_lossy(&pattern),
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }

    #[test]
    fn wildmatch_like_git() {
        assert!(wildmatch(b"*.c", b"a.c", true));
        assert!(!wildmatch(b"*.c", b"d/a.c", true));
        assert!(wildmatch(b"d/**/x", b"d/x", true));
        assert!(wildmatch(b"d/**/x", b"d/a/b/x", true));
        assert!(wildmatch(b"**/x", b"a/x", true));
        assert!(wildmatch(b"d/**", b"d/a/b", true));
        assert!(wildmatch(b"f?o", b"foo", true));
        assert!(!wildmatch(b"f?o", b"f/o", true));
        assert!(wildmatch(b"[a-c]x", b"bx", true));
        assert!(!wildmatch(b"[!a-c]x", b"bx", true));
        assert!(wildmatch(b"[]]x", b"]x", true));
        assert!(wildmatch(b"\\*x", b"*x", true));
        assert!(!wildmatch(b"\\*x", b"ax", true));
    }

    #[test]
    fn rules_follow_folders_and_order() {
        let mut attrs = Attributes::default();
        attrs.add_file(
            b"",
            b"# comment\n.gitarchive-info export-subst\n*.tmp export-ignore\n/ci/ export-ignore\n",
        );
        attrs.add_file(b"sub", b"keep.tmp -export-ignore\nlocal export-ignore\n");
        assert!(attrs.get(b".gitarchive-info", false, Attr::ExportSubst));
        assert!(!attrs.get(b".gitarchive-info", false, Attr::ExportIgnore));
        assert!(attrs.get(b"a/b/x.tmp", false, Attr::ExportIgnore));
        assert!(!attrs.get(b"sub/keep.tmp", false, Attr::ExportIgnore));
        assert!(attrs.get(b"ci", true, Attr::ExportIgnore));
        assert!(!attrs.get(b"ci", false, Attr::ExportIgnore), "dir-only pattern");
        assert!(!attrs.get(b"x/ci", true, Attr::ExportIgnore), "anchored at its folder");
        assert!(attrs.get(b"sub/local", false, Attr::ExportIgnore));
        assert!(!attrs.get(b"local", false, Attr::ExportIgnore), "only below its folder");
    }

    #[test]
    fn substitutes_placeholders() {
        let out = substitute(b"Changeset: $Format:%H$\nx $Format:%cD$ y $ z\nno $Format:end", |f| {
            format!("<{}>", String::from_utf8_lossy(f)).into_bytes()
        });
        assert_eq!(out, b"Changeset: <%H>\nx <%cD> y $ z\nno $Format:end".to_vec());
    }
}
