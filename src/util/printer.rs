//! The one output path: cargo-style status lines on stderr, progress bars on a
//! terminal, one JSON document on stdout with `--json`.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Clone)]
pub struct Printer {
    inner: Arc<Inner>,
}

struct Inner {
    verbosity: Verbosity,
    json: bool,
    color: bool,
    bars: Option<MultiProgress>,
    /// The `--json` document, built up by a run and written once at its end.
    document: std::sync::Mutex<Option<serde_json::Value>>,
}

impl Printer {
    pub fn new(verbosity: Verbosity, json: bool) -> Printer {
        let terminal = std::io::stderr().is_terminal();
        let color = terminal && std::env::var_os("NO_COLOR").is_none();
        let bars = (terminal && verbosity != Verbosity::Quiet)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Printer {
            inner: Arc::new(Inner {
                verbosity,
                json,
                color,
                bars,
                document: std::sync::Mutex::new(None),
            }),
        }
    }

    /// A printer that writes nothing but errors (for library callers and tests).
    pub fn quiet() -> Printer {
        Printer::new(Verbosity::Quiet, false)
    }

    pub fn is_json(&self) -> bool {
        self.inner.json
    }

    pub fn verbosity(&self) -> Verbosity {
        self.inner.verbosity
    }

    /// `    Fetching xen from https://…` — the verb right-aligned like cargo's.
    pub fn status(&self, verb: &str, message: impl Display) {
        if self.inner.verbosity == Verbosity::Quiet {
            return;
        }
        let verb = if self.inner.color {
            format!("\x1b[1;32m{verb:>12}\x1b[0m")
        } else {
            format!("{verb:>12}")
        };
        self.line(&format!("{verb} {}", clean(&message.to_string())));
    }

    /// A status line whose verb says something went wrong (`Failed`,
    /// `Skipped`): yellow rather than green, shown unless `-q`.
    pub fn trouble(&self, verb: &str, message: impl Display) {
        if self.inner.verbosity == Verbosity::Quiet {
            return;
        }
        let verb = if self.inner.color {
            format!("\x1b[1;33m{verb:>12}\x1b[0m")
        } else {
            format!("{verb:>12}")
        };
        self.line(&format!("{verb} {}", clean(&message.to_string())));
    }

    /// Shown only with `-v`.
    pub fn verbose(&self, verb: &str, message: impl Display) {
        if self.inner.verbosity == Verbosity::Verbose {
            self.status(verb, message);
        }
    }

    pub fn warn(&self, message: impl Display) {
        let head = if self.inner.color {
            "\x1b[1;33mwarning\x1b[0m"
        } else {
            "warning"
        };
        self.line(&format!("{head}: {}", clean(&message.to_string())));
    }

    pub fn error(&self, message: impl Display) {
        let head = if self.inner.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        self.line(&format!("{head}: {}", clean(&message.to_string())));
    }

    /// A summary for people on stdout (a run's report, hints): suppressed
    /// with `--json`, and with `-q`.
    pub fn report(&self, text: impl Display) {
        if self.inner.verbosity == Verbosity::Quiet {
            return;
        }
        self.out(text);
    }

    /// What the command was asked to print (a status or cache table, a
    /// pipeline, export lines, a package list): on stdout, suppressed with
    /// `--json` only; `-q` silences status lines, not this (as cargo's).
    pub fn out(&self, text: impl Display) {
        if self.inner.json {
            return;
        }
        let text = clean(&text.to_string());
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
    }

    /// Add `value` (an object) to the run's one JSON document; a later key
    /// replaces an earlier one. Written by `finish_json`, success or not.
    pub fn json<T: Serialize>(&self, value: &T) {
        if !self.inner.json {
            return;
        }
        let value = match serde_json::to_value(value) {
            Ok(v) => v,
            Err(e) => return self.error(format!("cannot encode JSON output: {e}")),
        };
        let Ok(mut document) = self.inner.document.lock() else {
            return;
        };
        match (document.as_mut(), value) {
            (Some(serde_json::Value::Object(have)), serde_json::Value::Object(more)) => have.extend(more),
            (_, value) => *document = Some(value),
        }
    }

    /// Write the one JSON document of a run: what it added, its `command`,
    /// and `error` (message, causes, exit code) when it failed.
    pub fn finish_json(&self, command: &str, error: Option<serde_json::Value>) {
        if !self.inner.json {
            return;
        }
        let document = self.inner.document.lock().ok().and_then(|mut d| d.take());
        let mut document = match document {
            Some(serde_json::Value::Object(map)) => map,
            Some(other) => {
                let mut map = serde_json::Map::new();
                map.insert("outcome".into(), other);
                map
            }
            None => serde_json::Map::new(),
        };
        if !command.is_empty() {
            document
                .entry("command")
                .or_insert_with(|| serde_json::Value::String(command.to_string()));
        }
        if let Some(error) = error {
            document.insert("error".into(), error);
        }
        let mut stdout = std::io::stdout().lock();
        match serde_json::to_string_pretty(&serde_json::Value::Object(document)) {
            Ok(text) => {
                // JSON escapes control characters itself; credentials it keeps.
                let text = crate::validate::redact_credentials(&text);
                let _ = writeln!(stdout, "{text}");
            }
            Err(e) => self.error(format!("cannot encode JSON output: {e}")),
        }
    }

    /// A progress bar for one long task; a no-op off a terminal.
    pub fn progress(&self, prefix: &str) -> Progress {
        let bar = self.inner.bars.as_ref().map(|bars| {
            let bar = bars.add(ProgressBar::new(0));
            bar.set_style(unsized_style());
            bar.set_prefix(prefix.to_string());
            bar
        });
        Progress {
            bar,
            sized: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn line(&self, text: &str) {
        let write = || {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "{text}");
        };
        match &self.inner.bars {
            // Not `println`: indicatif ends its last line with padding and
            // no newline, counting on the terminal's wrap, and a shell's
            // prompt then overwrites the run's last status line. The bars
            // step aside, the line is written whole, and they come back.
            Some(bars) if !bars.is_hidden() => bars.suspend(write),
            _ => write(),
        }
    }
}

/// A bar with its count, once there is something to count.
fn sized_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12.cyan.bold} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Before the total is known (or when it is 0): no bar, which indicatif
/// would draw full at 0/0, just what is going on.
fn unsized_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12.cyan.bold} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

pub struct Progress {
    bar: Option<ProgressBar>,
    sized: std::sync::atomic::AtomicBool,
}

impl Progress {
    /// Whether anything is drawn (a terminal): a caller can skip the work of
    /// making messages no one sees.
    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    pub fn update(&self, done: u64, total: u64, message: &str) {
        if let Some(bar) = &self.bar {
            use std::sync::atomic::Ordering;
            let sized = total > 0;
            if self.sized.swap(sized, Ordering::Relaxed) != sized {
                bar.set_style(if sized { sized_style() } else { unsized_style() });
            }
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(message.to_string());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What may reach a terminal: credentials stripped from urls, control
/// characters (from tree entry names, tarball names, upstream messages)
/// escaped, except line breaks and tabs. Applied to messages before the
/// printer adds its own colours.
fn clean(text: &str) -> String {
    crate::validate::redact_credentials(text)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped_and_colours_kept() {
        assert_eq!(super::clean("a\x1b]0;pwned\x07b"), "a\\u{1b}]0;pwned\\u{7}b");
        assert_eq!(super::clean("line\nnext\ttab"), "line\nnext\ttab");
        assert_eq!(super::clean("https://u:t0k@h/x"), "https://h/x");
    }
}
