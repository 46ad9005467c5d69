//! Just enough of GNU make to read Xen's `Config.mk` (or a `.config`):
//! assignments (`?=`, `=`, `:=`, `::=`, `+=`, with `override`/`export`),
//! line continuations, comments, `ifeq`/`ifneq`/`ifdef`/`ifndef` … `else` …
//! `endif`, and `$(VAR)`/`${VAR}` references. Conditions that need more of
//! make (function calls) are not evaluated: they count as false, which takes
//! the branch used when nothing is configured, and are reported.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    /// `=`: expanded when used.
    Recursive(String),
    /// `:=`: expanded when assigned.
    Simple(String),
}

/// A condition that was not evaluated, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unevaluated {
    pub line: usize,
    pub text: String,
}

#[derive(Clone, Debug, Default)]
pub struct Makefile {
    vars: BTreeMap<String, Value>,
    /// The line each variable was last assigned on.
    pub lines: BTreeMap<String, usize>,
    pub unevaluated: Vec<Unevaluated>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Branch {
    /// This branch is being read.
    Active,
    /// Waiting for a true `else`.
    Pending,
    /// A branch was taken already, or the enclosing one is inactive.
    Done,
}

impl Makefile {
    /// Variables already set (from the environment or the command line),
    /// before the file is read.
    pub fn with(preset: &[(&str, &str)]) -> Makefile {
        let mut make = Makefile::default();
        for (name, value) in preset {
            make.vars.insert(name.to_string(), Value::Simple(value.to_string()));
        }
        make
    }

    pub fn read(&mut self, text: &str) -> Result<(), String> {
        let mut stack: Vec<Branch> = Vec::new();
        let mut in_define = false;
        for (number, line) in logical_lines(text) {
            let line = strip_comment(&line);
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let (word, rest) = split_word(trimmed);
            // A macro's body is text for `$(call …)`, not lines to read.
            if in_define {
                in_define = word != "endef";
                continue;
            }
            if word == "define" {
                in_define = true;
                continue;
            }
            let active = stack.iter().all(|b| *b == Branch::Active);
            match word {
                "ifeq" | "ifneq" | "ifdef" | "ifndef" => {
                    let branch = if active {
                        if self.condition(word, rest, number)? {
                            Branch::Active
                        } else {
                            Branch::Pending
                        }
                    } else {
                        Branch::Done
                    };
                    stack.push(branch);
                }
                "else" => {
                    let top = stack
                        .last_mut()
                        .ok_or_else(|| format!("line {number}: `else` without `if`"))?;
                    *top = match *top {
                        Branch::Active => Branch::Done,
                        Branch::Done => Branch::Done,
                        Branch::Pending => {
                            let rest = rest.trim();
                            if rest.is_empty() {
                                Branch::Active
                            } else {
                                // `else ifeq …`
                                let (word, cond) = split_word(rest);
                                if self.condition(word, cond, number)? {
                                    Branch::Active
                                } else {
                                    Branch::Pending
                                }
                            }
                        }
                    };
                }
                "endif" => {
                    stack
                        .pop()
                        .ok_or_else(|| format!("line {number}: `endif` without `if`"))?;
                }
                _ if !active => {}
                "include" | "-include" | "sinclude" | "define" | "endef" | "undefine" | "vpath" | "unexport" => {}
                _ => self.assignment(trimmed, number)?,
            }
        }
        if !stack.is_empty() {
            return Err(format!("{} `if` block(s) without `endif`", stack.len()));
        }
        Ok(())
    }

    fn assignment(&mut self, line: &str, number: usize) -> Result<(), String> {
        let mut line = line;
        loop {
            let (word, rest) = split_word(line);
            if word == "override" || word == "export" {
                line = rest.trim_start();
            } else {
                break;
            }
        }
        // The first operator outside references.
        let Some((name, op, value)) = split_assignment(line) else {
            return Ok(());
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('$') {
            return Ok(());
        }
        let expand = |text: &str| self.expand(text).map_err(|e| format!("line {number}: {name}: {e}"));
        let value = value.trim_start().to_string();
        match op {
            "?=" => {
                if !self.vars.contains_key(name) {
                    self.vars.insert(name.to_string(), Value::Recursive(value));
                    self.lines.insert(name.to_string(), number);
                }
                return Ok(());
            }
            "=" => {
                self.vars.insert(name.to_string(), Value::Recursive(value));
            }
            ":=" | "::=" => {
                let expanded = expand(&value)?;
                self.vars.insert(name.to_string(), Value::Simple(expanded));
            }
            "+=" => {
                let next = match self.vars.get(name).cloned() {
                    Some(Value::Simple(old)) => Value::Simple(join(&old, &expand(&value)?)),
                    Some(Value::Recursive(old)) => Value::Recursive(join(&old, &value)),
                    None => Value::Recursive(value),
                };
                self.vars.insert(name.to_string(), next);
            }
            _ => return Ok(()),
        }
        self.lines.insert(name.to_string(), number);
        Ok(())
    }

    fn condition(&mut self, word: &str, rest: &str, number: usize) -> Result<bool, String> {
        let rest = rest.trim();
        if word == "ifdef" || word == "ifndef" {
            let defined = match self.lookup(rest) {
                None => false,
                Some(Ok(e)) => !e.value.is_empty(),
                Some(Err(e)) => return Err(format!("line {number}: {rest}: {e}")),
            };
            return Ok(defined == (word == "ifdef"));
        }
        let (a, b) = condition_args(rest).ok_or_else(|| format!("line {number}: cannot read `{word} {rest}`"))?;
        if needs_make(&a) || needs_make(&b) {
            self.unevaluated.push(Unevaluated {
                line: number,
                text: format!("{word} {rest}"),
            });
            return Ok(false);
        }
        let expand = |text: &str| self.expand(text).map_err(|e| format!("line {number}: {e}"));
        let equal = expand(&a)?.trim() == expand(&b)?.trim();
        Ok(equal == (word == "ifeq"))
    }

    /// A variable's value, expanded; `None` when it is not set or cannot
    /// be expanded (see [`Makefile::lookup`]).
    pub fn get(&self, name: &str) -> Option<String> {
        self.lookup(name)?.ok().map(|e| e.value)
    }

    /// A variable's value, expanded, and whether a function call was left in
    /// it unevaluated (`$$(` is a literal `$(`, not a call). An error when
    /// make would refuse it too: a variable that references itself, or an
    /// expansion that grows without bound.
    pub fn lookup(&self, name: &str) -> Option<Result<Expanded, ExpandError>> {
        let mut state = Expansion::default();
        let value = self.get_in(name, &mut state)?;
        Some(state.finish(value))
    }

    /// `text` expanded.
    pub fn expand(&self, text: &str) -> Result<String, ExpandError> {
        let mut state = Expansion::default();
        let value = self.expand_in(text, &mut state);
        state.finish(value).map(|e| e.value)
    }

    fn get_in(&self, name: &str, state: &mut Expansion) -> Option<String> {
        match self.vars.get(name)? {
            Value::Simple(v) => {
                state.charge(v.len());
                Some(v.clone())
            }
            Value::Recursive(v) => {
                if state.active.iter().any(|a| a == name) {
                    state.fail(ExpandError::Loop(name.to_string()));
                    return Some(String::new());
                }
                state.active.push(name.to_string());
                let value = self.expand_in(v, state);
                state.active.pop();
                Some(value)
            }
        }
    }

    fn expand_in(&self, text: &str, state: &mut Expansion) -> String {
        let mut out = String::new();
        if state.error.is_some() {
            return out;
        }
        state.depth += 1;
        if state.depth > MAX_DEPTH {
            state.fail(ExpandError::TooLarge);
        }
        state.charge(text.len());
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() && state.error.is_none() {
            if chars[i] != '$' {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            match chars.get(i + 1) {
                Some('$') => {
                    out.push('$');
                    i += 2;
                }
                Some(open @ ('(' | '{')) => {
                    let close = if *open == '(' { ')' } else { '}' };
                    let mut level = 0;
                    let mut end = None;
                    for (j, c) in chars.iter().enumerate().skip(i + 1) {
                        if *c == *open {
                            level += 1;
                        } else if *c == close {
                            level -= 1;
                            if level == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                    }
                    let Some(end) = end else {
                        out.extend(&chars[i..]);
                        break;
                    };
                    let inner: String = chars[i + 2..end].iter().collect();
                    if inner.contains(char::is_whitespace) || inner.contains(',') {
                        // A function call: left as written.
                        state.calls = true;
                        out.extend(&chars[i..=end]);
                    } else {
                        let name = self.expand_in(&inner, state);
                        out.push_str(&self.get_in(&name, state).unwrap_or_default());
                    }
                    i = end + 1;
                }
                Some(c) => {
                    // `$X`: a one-letter variable.
                    out.push_str(&self.get_in(&c.to_string(), state).unwrap_or_default());
                    i += 2;
                }
                None => {
                    out.push('$');
                    i += 1;
                }
            }
        }
        state.depth -= 1;
        out
    }
}

/// Nesting of `$(…)` inside names, beyond which expansion stops.
const MAX_DEPTH: usize = 256;
/// Characters read and copied while expanding one value: far beyond any
/// real Config.mk, well before `A = $(B)$(B)` chains exhaust memory or time.
const MAX_WORK: usize = 4 << 20;

/// A value expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expanded {
    pub value: String,
    /// A function call was left in it as written.
    pub calls: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("recursive variable `{0}` references itself (eventually)")]
    Loop(String),
    #[error("expanding it grows past {} MiB or nests too deep", MAX_WORK >> 20)]
    TooLarge,
}

#[derive(Default)]
struct Expansion {
    calls: bool,
    /// Recursive variables being expanded, innermost last.
    active: Vec<String>,
    depth: usize,
    work: usize,
    error: Option<ExpandError>,
}

impl Expansion {
    fn charge(&mut self, chars: usize) {
        self.work = self.work.saturating_add(chars);
        if self.work > MAX_WORK {
            self.fail(ExpandError::TooLarge);
        }
    }

    fn fail(&mut self, error: ExpandError) {
        self.error.get_or_insert(error);
    }

    fn finish(self, value: String) -> Result<Expanded, ExpandError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(Expanded {
                value,
                calls: self.calls,
            }),
        }
    }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a} {b}")
    }
}

/// Lines with backslash continuations joined, numbered by where they start.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (i, line) in text.lines().enumerate() {
        // A continued line joins with one space, as make does.
        let line = if current.is_empty() {
            start = i + 1;
            line
        } else {
            line.trim_start()
        };
        match line.strip_suffix('\\') {
            Some(head) if !head.ends_with('\\') => {
                current.push_str(head.trim_end());
                current.push(' ');
            }
            _ => {
                current.push_str(line);
                out.push((start, std::mem::take(&mut current)));
            }
        }
    }
    if !current.is_empty() {
        out.push((start, current));
    }
    out
}

/// Everything before an unescaped `#`; rule recipes (tab-led) are dropped.
fn strip_comment(line: &str) -> String {
    if line.starts_with('\t') {
        return String::new();
    }
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'#') => {
                out.push('#');
                chars.next();
            }
            '#' => break,
            c => out.push(c),
        }
    }
    out
}

fn split_word(line: &str) -> (&str, &str) {
    match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], &line[i..]),
        None => (line, ""),
    }
}

/// `NAME OP VALUE` with the operator found outside `$(…)`.
fn split_assignment(line: &str) -> Option<(&str, &'static str, &str)> {
    let bytes = line.as_bytes();
    let mut level = 0i32;
    for i in 0..bytes.len() {
        match bytes[i] {
            b'(' | b'{' => level += 1,
            b')' | b'}' => level -= 1,
            _ if level > 0 => {}
            b'=' => {
                for op in ["::=", ":=", "?=", "+="] {
                    if i + 1 >= op.len() && &bytes[i + 1 - op.len()..=i] == op.as_bytes() {
                        return Some((&line[..i + 1 - op.len()], op, &line[i + 1..]));
                    }
                }
                return Some((&line[..i], "=", &line[i + 1..]));
            }
            b':' if bytes.get(i + 1) != Some(&b'=') && bytes.get(i + 1) != Some(&b':') => return None, // a rule
            _ => {}
        }
    }
    None
}

/// `(a,b)`, `"a" "b"` or `'a' 'b'`.
fn condition_args(rest: &str) -> Option<(String, String)> {
    if let Some(inner) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        let mut level = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '(' | '{' => level += 1,
                ')' | '}' => level -= 1,
                ',' if level == 0 => return Some((inner[..i].to_string(), inner[i + 1..].to_string())),
                _ => {}
            }
        }
        return None;
    }
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    let end = rest.find(quote)?;
    let a = rest[..end].to_string();
    let rest = rest[end + 1..].trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    let end = rest.find(quote)?;
    Some((a, rest[..end].to_string()))
}

/// Whether evaluating needs more than variable references (a function).
fn needs_make(text: &str) -> bool {
    let mut rest = text;
    while let Some(i) = rest.find("$(").or_else(|| rest.find("${")) {
        let after = &rest[i + 2..];
        let name_end = after.find([')', '}']).unwrap_or(after.len());
        if after[..name_end].contains(char::is_whitespace) || after[..name_end].contains(',') {
            return true;
        }
        rest = &after[name_end.min(after.len())..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_config_mk_uses() {
        let mut make = Makefile::with(&[("FROM_ENV", "env")]);
        make.read(
            "# a comment\n\
             ROOT := /src\n\
             URL_BASE = https://example.org/git  # trailing comment\n\
             A_URL ?= $(URL_BASE)/a.git\n\
             A_URL ?= ignored\n\
             B = one\n\
             B += two\n\
             C := $(B) \\\n    three\n\
             LATE = $(LATER)\n\
             LATER = late\n\
             override export D = d\n\
             FROM_ENV ?= file\n\
             HASH = a\\#b\n\
             define macro\n\
             IN_MACRO = no\n\
             ifeq ($$(x),y)\n\
             endef\n\
             target: dep\n\
             \tsome recipe = not an assignment\n",
        )
        .unwrap();
        assert_eq!(make.get("A_URL").as_deref(), Some("https://example.org/git/a.git"));
        assert_eq!(make.get("B").as_deref(), Some("one two"));
        assert_eq!(make.get("C").as_deref(), Some("one two three"));
        assert_eq!(make.get("LATE").as_deref(), Some("late"), "recursive expansion");
        assert_eq!(make.get("D").as_deref(), Some("d"));
        assert_eq!(make.get("FROM_ENV").as_deref(), Some("env"), "?= yields to what is set");
        assert_eq!(make.get("HASH").as_deref(), Some("a#b"));
        assert_eq!(make.lines.get("A_URL"), Some(&4));
        assert!(make.get("some").is_none());
        assert!(make.get("IN_MACRO").is_none(), "a define body is not read");
    }

    #[test]
    fn conditions() {
        let mut make = Makefile::default();
        make.read(
            "TAG = rel-1.0\n\
             ifneq (,$(TAG))\n\
             REV ?= $(TAG)\n\
             endif\n\
             ifeq ($(MISSING),y)\n\
             X = wrong\n\
             else ifeq \"$(TAG)\" \"rel-1.0\"\n\
             X = right\n\
             else\n\
             X = wrong too\n\
             endif\n\
             ifdef TAG\n\
             ifndef MISSING\n\
             Y = nested\n\
             endif\n\
             endif\n\
             ifeq ($(origin CC), undefined)\n\
             Z = not taken\n\
             else\n\
             Z = default\n\
             endif\n\
             ifeq ($(call ld-ver,$(LD)),n)\n\
             W = x\n\
             endif\n",
        )
        .unwrap();
        assert_eq!(make.get("REV").as_deref(), Some("rel-1.0"));
        assert_eq!(make.get("X").as_deref(), Some("right"));
        assert_eq!(make.get("Y").as_deref(), Some("nested"));
        assert_eq!(make.get("Z").as_deref(), Some("default"));
        assert!(make.get("W").is_none());
        let lines: Vec<usize> = make.unevaluated.iter().map(|u| u.line).collect();
        assert_eq!(lines, [17, 22]);
        assert!(Makefile::default().read("ifeq (a,b)\n").is_err());
        assert!(Makefile::default().read("endif\n").is_err());
    }

    #[test]
    fn self_references_and_runaway_expansions_are_refused_not_followed() {
        let mut make = Makefile::default();
        make.read("A = x$(B)\nB = $(A)\nSELF = $(SELF)\n").unwrap();
        assert_eq!(make.lookup("A"), Some(Err(ExpandError::Loop("A".into()))));
        assert_eq!(make.lookup("SELF"), Some(Err(ExpandError::Loop("SELF".into()))));
        assert!(make.get("A").is_none());
        let err = Makefile::default().read("A = $(A)\nB := $(A)\n").unwrap_err();
        assert_eq!(err, "line 2: B: recursive variable `A` references itself (eventually)");
        let err = Makefile::default().read("A = $(A)\nifdef A\nendif\n").unwrap_err();
        assert!(err.starts_with("line 2: A: recursive"), "{err}");

        // Each level doubles the one below: 2^40 characters if followed.
        let mut text = String::from("V0 = xxxxxxxx\n");
        for n in 1..=40 {
            text.push_str(&format!("V{n} = $(V{m})$(V{m})\n", m = n - 1));
        }
        let mut make = Makefile::default();
        make.read(&text).unwrap();
        assert_eq!(make.lookup("V40"), Some(Err(ExpandError::TooLarge)));
        assert_eq!(make.get("V3").map(|v| v.len()), Some(64), "small chains still expand");
        text.push_str("ifeq ($(V40),x)\nendif\n");
        assert!(Makefile::default().read(&text).unwrap_err().contains("grows past"));
        let deep = format!("{}X{}", "$(".repeat(2000), ")".repeat(2000));
        assert_eq!(Makefile::default().expand(&deep), Err(ExpandError::TooLarge));
    }
}
