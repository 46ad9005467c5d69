//! The toolchain's identity, part of every build's inputs: a new compiler
//! (or another target) rebuilds everything, as a different build.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::environment::BuildEnv;
use crate::process::Cmd;

/// A build environment's variables, in order.
type Environment = Vec<(String, String)>;

/// `$CC --version` and `$CC -dumpmachine` (`cc` unless the build's
/// environment sets CC), `make --version` and `rustc -vV`, first lines,
/// run in the build's environment; a missing tool counts as "none". Asked
/// once per environment in a run.
pub fn identity(env: &BuildEnv) -> String {
    static KNOWN: OnceLock<Mutex<HashMap<Environment, String>>> = OnceLock::new();
    let vars: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let known = KNOWN.get_or_init(Default::default);
    if let Some(found) = known.lock().ok().and_then(|k| k.get(&vars).cloned()) {
        return found;
    }
    let cc = env
        .get("CC")
        .filter(|v| !v.trim().is_empty())
        .unwrap_or("cc")
        .to_string();
    let mut words = cc.split_whitespace();
    let program = words.next().unwrap_or("cc").to_string();
    let rest: Vec<String> = words.map(String::from).collect();
    let run = |program: &str, args: &[String]| -> Option<String> {
        let mut cmd = Cmd::new(program, "").args(args).env_clear();
        for (key, value) in &vars {
            cmd = cmd.env(key, value);
        }
        cmd.env("LC_ALL", "C")
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
        k.insert(vars, identity.clone());
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
