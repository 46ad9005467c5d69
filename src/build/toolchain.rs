//! The toolchain's identity, part of every build's inputs: a new compiler
//! (or another target) rebuilds everything, as a different build.

use std::sync::OnceLock;

use crate::process::Cmd;

/// `cc --version` and `cc -dumpmachine` (CC when set), `make --version`
/// and `rustc -vV`, first lines, hashed; a missing tool counts as "none".
/// Asked once per run.
pub fn identity() -> &'static str {
    static IDENTITY: OnceLock<String> = OnceLock::new();
    IDENTITY.get_or_init(|| {
        let cc = std::env::var("CC").ok().filter(|v| !v.trim().is_empty());
        let cc = cc.as_deref().unwrap_or("cc");
        let mut words = cc.split_whitespace();
        let program = words.next().unwrap_or("cc").to_string();
        let rest: Vec<String> = words.map(String::from).collect();
        let first_line = |program: &str, args: &[&str]| -> String {
            Cmd::new(program, "")
                .args(args)
                .output()
                .ok()
                .map(|out| String::from_utf8_lossy(&out).lines().next().unwrap_or("").to_string())
                .unwrap_or_else(|| "none".into())
        };
        let with = |extra: &'static str| -> Vec<String> {
            let mut args = rest.clone();
            args.push(extra.to_string());
            args
        };
        // What a build reads from the environment besides the compiler's name.
        let environment: String = [
            "CC",
            "CXX",
            "CPP",
            "CFLAGS",
            "CXXFLAGS",
            "CPPFLAGS",
            "LDFLAGS",
            "LIBS",
            "PKG_CONFIG_PATH",
            "PKG_CONFIG_LIBDIR",
            "RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "ARCH",
            "CROSS_COMPILE",
        ]
        .iter()
        .map(|v| format!("{v}={}\n", std::env::var(v).unwrap_or_default()))
        .collect();
        let parts = [
            environment,
            first_line(
                &program,
                &with("--version").iter().map(String::as_str).collect::<Vec<_>>(),
            ),
            first_line(
                &program,
                &with("-dumpmachine").iter().map(String::as_str).collect::<Vec<_>>(),
            ),
            first_line("make", &["--version"]),
            Cmd::new("rustc", "")
                .arg("-vV")
                .output()
                .map(|out| String::from_utf8_lossy(&out).to_string())
                .unwrap_or_else(|_| "none".into()),
        ];
        parts.join("\n")
    })
}

/// One line for `-v`: the C compiler and target.
pub fn summary() -> String {
    let mut lines = identity().lines().skip_while(|l| l.is_empty() || l.contains('='));
    let cc = lines.next().unwrap_or("none");
    let target = lines.next().unwrap_or("none");
    format!("{cc} for {target}")
}
