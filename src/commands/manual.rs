//! The manual pages: `sultana.1` and one page per command
//! (`sultana-fetch.1`, `sultana-ci-gitlab.1`), generated from the command
//! line's definition. clap_mangen writes the NAME, DESCRIPTION and OPTIONS
//! sections; the synopsis (with option values) and the sections it has no
//! notion of (EXAMPLES, EXIT STATUS, ENVIRONMENT, FILES, SEE ALSO) are
//! written here.

use anyhow::{bail, Context, Result};
use clap::{Arg, ArgAction, Command};
use roff::{bold, italic, roman, Inline, Roff};

use crate::cli;

/// One manual page: its file name and its roff text.
pub struct Page {
    pub file: String,
    pub text: Vec<u8>,
}

/// Every page: `sultana.1` first, then each command's and subcommand's.
pub fn pages() -> Result<Vec<Page>> {
    let root = built();
    let mut out = vec![render(&root, &[])?];
    for path in command_paths(&root) {
        let at = find(&root, &path)?;
        out.push(render(at, &path)?);
    }
    Ok(out)
}

/// The page of `sultana` (an empty path) or of one command (`["ci", "gitlab"]`).
pub fn page(path: &[String]) -> Result<Page> {
    let root = built();
    let at = find(&root, path)?;
    render(at, path)
}

fn built() -> Command {
    let mut root = cli::command().bin_name("sultana");
    root.build();
    root
}

fn find<'a>(root: &'a Command, path: &[String]) -> Result<&'a Command> {
    let mut at = root;
    for name in path {
        at = match at.find_subcommand(name) {
            Some(sub) => sub,
            None => bail!(
                "`sultana {}` is not a command; `sultana --help` lists them",
                path.join(" ")
            ),
        };
    }
    Ok(at)
}

/// `["fetch"]`, `["ci"]`, `["ci", "gitlab"]`, …: every command with a page.
fn command_paths(root: &Command) -> Vec<Vec<String>> {
    fn walk(at: &Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in at.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(root, &[], &mut out);
    out
}

fn page_name(path: &[String]) -> String {
    std::iter::once("sultana".to_string())
        .chain(path.iter().cloned())
        .collect::<Vec<_>>()
        .join("-")
}

fn render(cmd: &Command, path: &[String]) -> Result<Page> {
    let name = page_name(path);
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name.clone())
        .source(format!("sultana {}", env!("CARGO_PKG_VERSION")))
        .date("");
    let mut text = Vec::new();
    let context = || format!("cannot render the manual page {name}.1");
    man.render_title(&mut text).with_context(context)?;
    man.render_name_section(&mut text).with_context(context)?;
    text.extend(synopsis(cmd, path).render().into_bytes());
    man.render_description_section(&mut text).with_context(context)?;
    if path.is_empty() {
        text.extend(command_list().render().into_bytes());
    }
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut text).with_context(context)?;
    }
    if !path.is_empty() && cmd.has_subcommands() {
        man.render_subcommands_section(&mut text).with_context(context)?;
    }
    text.extend(closing_sections(cmd, path).render().into_bytes());
    Ok(Page {
        file: format!("{name}.1"),
        text,
    })
}

/// `sultana fetch [--with-system COMP[=PREFIX]]… [global options] [COMPONENTS]…`
fn synopsis(cmd: &Command, path: &[String]) -> Roff {
    let mut line: Vec<Inline> = vec![bold(format!(
        "sultana{}",
        path.iter().map(|p| format!(" {p}")).collect::<String>()
    ))];
    let own = |a: &&Arg| !a.is_hide_set() && !a.is_positional() && (path.is_empty() || !a.is_global_set());
    for arg in cmd.get_arguments().filter(own) {
        if matches!(arg.get_action(), ArgAction::Help | ArgAction::Version) {
            continue;
        }
        line.push(roman(" "));
        line.extend(option(arg));
    }
    if !path.is_empty() && cmd.get_arguments().any(|a| a.is_global_set() && !a.is_hide_set()) {
        line.push(roman(" ["));
        line.push(italic("global options"));
        line.push(roman("]"));
    }
    for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        let value = arg
            .get_value_names()
            .map(|v| v.join(" "))
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
        let many =
            matches!(arg.get_action(), ArgAction::Append) || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        line.push(roman(if arg.is_required_set() { " " } else { " [" }));
        line.push(italic(value));
        line.push(roman(if arg.is_required_set() { "" } else { "]" }));
        if many {
            line.push(roman("..."));
        }
    }
    if cmd.has_subcommands() {
        line.push(roman(" "));
        line.push(italic("COMMAND"));
        line.push(roman(" ..."));
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(line);
    roff
}

/// `[-j|--jobs N]`, `[--with-system-blktap[=PREFIX]]`, `[--set COMP.KEY=VALUE]...`
fn option(arg: &Arg) -> Vec<Inline> {
    let mut out = vec![roman("[")];
    let names = match (arg.get_short(), arg.get_long()) {
        (Some(s), Some(l)) => format!("-{s}|--{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, Some(l)) => format!("--{l}"),
        (None, None) => arg.get_id().to_string(),
    };
    out.push(bold(names));
    let takes_value = !matches!(
        arg.get_action(),
        ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count | ArgAction::Help | ArgAction::Version
    );
    if takes_value {
        let value = arg
            .get_value_names()
            .map(|v| v.join(" "))
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
        let optional = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
        if optional {
            out.push(roman("[="));
            out.push(italic(value));
            out.push(roman("]"));
        } else {
            out.push(roman(if arg.is_require_equals_set() { "=" } else { " " }));
            out.push(italic(value));
        }
    }
    out.push(roman("]"));
    if matches!(arg.get_action(), ArgAction::Append | ArgAction::Count) {
        out.push(roman("..."));
    }
    out
}

/// The main page's COMMANDS: the grouped list `sultana --help` shows, each
/// with its page.
fn command_list() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for line in cli::COMMAND_GROUPS.lines() {
        match line.strip_prefix("  ") {
            Some(entry) => {
                let (name, about) = entry.split_once(' ').unwrap_or((entry, ""));
                roff.control("TP", []);
                roff.text([bold(name)]);
                let about = about.trim();
                let stop = if about.ends_with('.') { "" } else { "." };
                roff.text([roman(format!("{about}{stop} See sultana-{name}(1)."))]);
            }
            None => {
                roff.control("SS", [line.trim_end_matches(':')]);
            }
        }
    }
    roff
}

fn closing_sections(cmd: &Command, path: &[String]) -> Roff {
    let mut roff = Roff::new();
    if let Some(after) = cmd.get_after_help().map(|h| h.to_string()) {
        let (examples, notes): (Vec<&str>, Vec<&str>) = after.lines().partition(|l| l.starts_with("Example: "));
        let notes: Vec<&str> = notes.into_iter().skip_while(|l| l.trim().is_empty()).collect();
        if !notes.is_empty() {
            // Kept as laid out (columns of names and what they are).
            roff.control("SH", [if path.is_empty() { "GETTING STARTED" } else { "NOTES" }]);
            roff.control("nf", []);
            for line in notes
                .iter()
                .rev()
                .skip_while(|l| l.trim().is_empty())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                roff.text([roman(*line)]);
            }
            roff.control("fi", []);
        }
        if !examples.is_empty() {
            roff.control("SH", ["EXAMPLES"]);
            for line in examples {
                roff.text([roman(line.trim_start_matches("Example: "))]);
                roff.control("br", []);
            }
        }
    }

    roff.control("SH", ["EXIT STATUS"]);
    let one = path.first().map_or("", |p| p.as_str());
    let rows: [(&str, String); 3] = [
        ("0", "Success.".to_string()),
        ("1", when_one(one).to_string()),
        (
            "2",
            "A usage error, or an error in the manifest, lock or a recipe (named with file, line \
             and column), or a tool that is missing or failed (git, make, apt-get), or no \
             sultana.toml in the folder or any parent folder for a command that needs one."
                .to_string(),
        ),
    ];
    for (code, text) in rows {
        roff.control("TP", []);
        roff.text([bold(code)]);
        roff.text([roman(text)]);
    }

    roff.control("SH", ["ENVIRONMENT"]);
    let mut environment: Vec<(String, String)> = vec![
        (
            "XDG_CACHE_HOME".into(),
            "The shared cache lives in $XDG_CACHE_HOME/sultana (default: ~/.cache/sultana).".into(),
        ),
        (
            "HOME".into(),
            "Where ~/.cache is, when XDG_CACHE_HOME is not set.".into(),
        ),
        (
            "SULTANA_KERNEL_HEADERS".into(),
            "Kernel headers for kbuild components when --kernel-headers is not given.".into(),
        ),
        (
            "NO_COLOR".into(),
            "When set, status lines on a terminal are not coloured.".into(),
        ),
    ];
    for tree in crate::config_mk::TREES {
        environment.push((
            format!("{0}_URL, {0}_REVISION", tree.prefix),
            format!(
                "As Xen's make takes them: fetch {} from this url, or pin this revision, for this run \
                 (the lock keeps the manifest's url).",
                tree.component
            ),
        ));
    }
    for (name, text) in environment {
        roff.control("TP", []);
        roff.text([bold(name)]);
        roff.text([roman(text)]);
    }

    roff.control("SH", ["FILES"]);
    let files = [
        ("sultana.toml", "The workspace's manifest: components, urls, revisions, paths. Found in the current folder or a parent, or given with -C or --manifest."),
        ("sultana.local.toml", "Your own overrides, not committed: a component's url, mirrors, revision, or path (your own checkout, never fetched or reset)."),
        ("sultana.lock", "The resolved commit of each component, with the manifest's url and git describe."),
        ("recipes/NAME.toml", "A workspace's own recipe, used instead of the shipped one of that name."),
        ("build/COMPONENT, dist/COMPONENT", "Build folders and the staged prefix of each built component."),
        (".sultana/", "Logs of every step, the gate's flight history (flights.db) and its scratch trees."),
        ("$XDG_CACHE_HOME/sultana/git/", "One bare object store per url, shared by every workspace; local work saved before an overwrite is kept there under refs/sultana/backup/."),
    ];
    for (file, text) in files {
        roff.control("TP", []);
        roff.text([italic(file)]);
        roff.text([roman(text)]);
    }

    roff.control("SH", ["SEE ALSO"]);
    let mut see: Vec<String> = Vec::new();
    if path.is_empty() {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            see.push(format!("sultana-{}(1)", sub.get_name()));
        }
    } else {
        see.push("sultana(1)".into());
        if path.len() > 1 {
            see.push(format!("{}(1)", page_name(&path[..path.len() - 1])));
        }
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            see.push(format!("{}-{}(1)", page_name(path), sub.get_name()));
        }
    }
    see.push("git(1)".into());
    roff.text([roman(see.join(", "))]);
    roff
}

/// What exit status 1 means for a command.
fn when_one(command: &str) -> &'static str {
    match command {
        "lock" => "With --check: sultana.lock does not pin every enabled component's current intent, or a pin contradicts its revision. With --locked: the lock would have to change.",
        "fetch" | "update" | "status" => "With --locked: sultana.lock would have to change. Or a pin in sultana.lock contradicts its revision (a tag or commit id that names another commit).",
        "build" => "A component failed to build, or was blocked by a dependency that failed (a wrong recipe or configuration is 2). With --locked: sultana.lock would have to change.",
        "gate" => "Something blocks the push: a regression, a build that broke, or a failure not settled at the baseline. With --job: that job failed.",
        "bisect" => "The failure could not be reproduced: the bad revision passes, or the good one fails.",
        "verify-tarball" => "The tarball made again from its own lock differs from FILE.",
        "tarball" | "ci" | "osstest" | "install" | "config-mk" => "With --locked: sultana.lock would have to change.",
        _ => "Not used by this command.",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_has_a_page_the_main_page_names() {
        let pages = super::pages().unwrap();
        assert_eq!(pages[0].file, "sultana.1");
        let main = String::from_utf8(pages[0].text.clone()).unwrap();
        for sub in crate::cli::command().get_subcommands() {
            let page = format!("sultana-{}", sub.get_name());
            assert!(pages.iter().any(|p| p.file == format!("{page}.1")), "{page}.1");
            let reference = format!("{}(1)", page.replace('-', "\\-"));
            assert!(main.contains(&reference), "the main page names {page}(1)");
        }
        assert!(pages.iter().any(|p| p.file == "sultana-ci-gitlab.1"));
        for page in &pages {
            let text = String::from_utf8(page.text.clone()).unwrap();
            for section in ["SYNOPSIS", "EXIT STATUS", "ENVIRONMENT", "FILES", "SEE ALSO"] {
                assert!(
                    text.contains(&format!(".SH \"{section}\"")) || text.contains(&format!(".SH {section}")),
                    "{}: {section}",
                    page.file
                );
            }
            if page.file != "sultana.1" {
                assert!(text.contains("sultana(1)"), "{} refers back to sultana(1)", page.file);
            }
        }
        // Option values in the synopsis.
        let fetch = super::page(&["gate".to_string()]).unwrap();
        let text = String::from_utf8(fetch.text).unwrap();
        let synopsis = &text[text.find("SYNOPSIS").unwrap()..text.find("DESCRIPTION").unwrap()];
        assert!(
            synopsis.contains("\\fIREF\\fR") && synopsis.contains("\\fIN\\fR"),
            "{synopsis}"
        );
    }
}
