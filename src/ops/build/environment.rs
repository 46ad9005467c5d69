//! The environment a build step runs in: never sultana's whole
//! environment (as Bazel's strict action environment and Nix do), but a
//! small base, the variables the recipe declares it reads (`env = [...]`),
//! the recipe's own settings (`set_env`) and those given with `--env`.
//! Every variable that reaches a step is an input of its build, so a
//! `debug=y` or another `CC` is another build, never "fresh".

use std::collections::BTreeMap;

/// What every build step gets from sultana's environment when set: where
/// programs are, the home and scratch folder (not the user's name, which
/// would make every user's builds different), and the locale and
/// time zone (which tools' messages and timestamps follow), where the Rust
/// toolchain is. `TERM` and the rest never reach a build.
pub const BASE: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "TZ",
    "SOURCE_DATE_EPOCH",
    // Where rustup's proxies find the Rust toolchain.
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "CARGO_HOME",
];

pub use crate::validate::RESERVED_ENV as RESERVED;

/// The resolved environment of one component's build steps, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildEnv {
    vars: BTreeMap<String, String>,
}

/// Where the values come from, in rising priority.
pub struct Sources<'a> {
    /// sultana's own environment (`std::env::vars_os` at the command boundary).
    pub inherited: &'a BTreeMap<String, String>,
    /// The names the recipe declares it reads.
    pub declared: &'a [String],
    /// The recipe's own values (`set_env`), rendered.
    pub set: &'a [(String, String)],
    /// `--env NAME=VALUE` on the command line.
    pub given: &'a [(String, String)],
}

impl BuildEnv {
    pub fn resolve(sources: &Sources) -> BuildEnv {
        let mut vars = BTreeMap::new();
        for name in BASE.iter().copied().chain(sources.declared.iter().map(String::as_str)) {
            if let Some(value) = sources.inherited.get(name) {
                vars.insert(name.to_string(), value.clone());
            }
        }
        for (name, value) in sources.set.iter().chain(sources.given) {
            vars.insert(name.clone(), value.clone());
        }
        for name in RESERVED {
            vars.remove(*name);
        }
        BuildEnv { vars }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Set (or replace) one variable: what sultana adds after the key was
    /// taken (the compiler cache's masquerade on PATH).
    pub fn set(&mut self, name: &str, value: String) {
        self.vars.insert(name.to_string(), value);
    }

    /// Each variable's value hashed, for the stamp (so that `-v` can name
    /// the one that changed without writing a secret into a file).
    pub fn hashed(&self) -> BTreeMap<String, String> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), super::fingerprint::combine(&[k, v])))
            .collect()
    }
}

/// The names whose value differs between two stamps' environments, each
/// with what happened to it, for `build -v`.
pub fn changed(was: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, hash) in now {
        match was.get(name) {
            Some(old) if old == hash => {}
            Some(_) => out.push(name.clone()),
            None => out.push(format!("{name} (was unset)")),
        }
    }
    for name in was.keys().filter(|n| !now.contains_key(*n)) {
        out.push(format!("{name} (now unset)"));
    }
    out
}

/// A `--env NAME=VALUE` argument, checked: a variable name (letters,
/// digits, `_`, not starting with a digit) that sultana does not set itself.
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(format!("`{text}` is not NAME=VALUE"));
    };
    check_name(name)?;
    Ok((name.to_string(), value.to_string()))
}

pub use crate::validate::check_env_name as check_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_base_the_declared_and_the_given_reach_a_build() {
        let inherited: BTreeMap<String, String> = [
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
            ("TERM", "xterm"),
            ("debug", "y"),
            ("SECRET_TOKEN", "x"),
            ("MAKEFLAGS", "-j9"),
            ("CC", "gcc"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let declared = vec!["debug".to_string(), "XEN_TARGET_ARCH".to_string(), "CC".to_string()];
        let given = vec![("CC".to_string(), "clang".to_string())];
        let env = BuildEnv::resolve(&Sources {
            inherited: &inherited,
            declared: &declared,
            set: &[],
            given: &given,
        });
        let names: Vec<&str> = env.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["CC", "HOME", "PATH", "debug"]);
        assert_eq!(env.get("CC"), Some("clang"), "the command line wins");
        let before = env.hashed();
        let mut other = inherited.clone();
        other.insert("debug".into(), "n".into());
        let env2 = BuildEnv::resolve(&Sources {
            inherited: &other,
            declared: &declared,
            set: &[],
            given: &[],
        });
        assert_eq!(changed(&before, &env2.hashed()), ["CC", "debug"], "named, in order");
    }

    #[test]
    fn names_are_checked() {
        assert!(parse_assignment("debug=y").is_ok());
        assert_eq!(parse_assignment("A=b=c").unwrap().1, "b=c");
        assert!(parse_assignment("nodelimiter").is_err());
        assert!(parse_assignment("1X=y").is_err());
        assert!(parse_assignment("A B=y").is_err());
        assert!(parse_assignment("MAKEFLAGS=-j1").is_err());
        assert!(parse_assignment("=y").is_err());
    }
}
