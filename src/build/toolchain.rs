//! The toolchain's identity, part of every build's inputs: a new compiler
//! (or another target) rebuilds everything, as a different build.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::process::Cmd;

/// `$CC --version` and `$CC -dumpmachine` (`cc` unless the build's
/// environment sets CC), `make --version` and `rustc -vV`, first lines,
/// found on the build's PATH; a missing tool counts as "none". Asked once
/// per CC and PATH in a run.
pub fn identity(cc: Option<&str>, path: Option<&str>) -> String {
    static KNOWN: OnceLock<Mutex<HashMap<(String, String), String>>> = OnceLock::new();
    let cc = cc.filter(|v| !v.trim().is_empty()).unwrap_or("cc").to_string();
    let path = path.unwrap_or_default().to_string();
    let known = KNOWN.get_or_init(Default::default);
    if let Some(found) = known
        .lock()
        .ok()
        .and_then(|k| k.get(&(cc.clone(), path.clone())).cloned())
    {
        return found;
    }
    let mut words = cc.split_whitespace();
    let program = words.next().unwrap_or("cc").to_string();
    let rest: Vec<String> = words.map(String::from).collect();
    let run = |program: &str, args: &[String]| -> Option<String> {
        Cmd::new(program, "")
            .args(args)
            .env_clear()
            .env("PATH", &path)
            .env("LC_ALL", "C")
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out).to_string())
    };
    let first_line = |program: &str, args: &[String]| -> String {
        run(program, args)
            .map(|out| out.lines().next().unwrap_or("").to_string())
            .unwrap_or_else(|| "none".into())
    };
    let with = |extra: &str| -> Vec<String> {
        let mut args = rest.clone();
        args.push(extra.to_string());
        args
    };
    let parts = [
        first_line(&program, &with("--version")),
        first_line(&program, &with("-dumpmachine")),
        first_line("make", &["--version".to_string()]),
        run("rustc", &["-vV".to_string()]).unwrap_or_else(|| "none".into()),
    ];
    let identity = parts.join("\n");
    if let Ok(mut k) = known.lock() {
        k.insert((cc, path), identity.clone());
    }
    identity
}

/// One line for `-v`: the C compiler and target.
pub fn summary(identity: &str) -> String {
    let mut lines = identity.lines();
    let cc = lines.next().unwrap_or("none");
    let target = lines.next().unwrap_or("none");
    format!("{cc} for {target}")
}
