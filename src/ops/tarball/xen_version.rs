//! `--xen-version`: the release named as `make src-tarball-release` names
//! it, by `make -C xen xenversion` of the pinned tree: `XEN_FULLVERSION`,
//! made of the version lines at the top of xen/Makefile.
//!
//! Those lines are upstream data, so they are read here rather than run
//! through make (whose `$(shell)`, `$(file)`, `$(eval)`, recipes and
//! backticks would run whatever a tree says). Only plain assignments of the
//! four variables count, their values only text and `$(VAR)` references to
//! those variables and `XEN_VENDORVERSION`; `?=` takes the environment's
//! value as make does. Anything else in them is refused.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use git2::Repository;

use crate::git::Oid;

const VARIABLES: &[&str] = &["XEN_VERSION", "XEN_SUBVERSION", "XEN_EXTRAVERSION", "XEN_FULLVERSION"];
/// Read from the environment only, as xen's build does.
const FROM_ENVIRONMENT: &[&str] = &["XEN_VENDORVERSION"];

/// `XEN_FULLVERSION` of xen's tree at `commit` of `repo`; `env` gives the
/// environment's values (make's `?=` and `XEN_VENDORVERSION`).
pub fn of(repo: &Repository, commit: Oid, what: &str, env: impl Fn(&str) -> Option<String>) -> Result<String> {
    let short = crate::git::short(commit);
    let tree = repo.find_commit(commit)?.tree()?;
    let entry = tree
        .get_path(std::path::Path::new("xen/Makefile"))
        .map_err(|_| anyhow!("{what} has no xen/Makefile at {short}: --xen-version needs xen's tree"))?;
    let blob = repo.find_blob(entry.id())?;
    if blob.size() > 1 << 20 {
        bail!("{what}: xen/Makefile is larger than 1 MiB");
    }
    let text = String::from_utf8_lossy(blob.content());
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("{what}: xen/Makefile:{} at {short}", n + 1);
        let line = line.trim();
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let Some(name) = VARIABLES.iter().find(|v| {
            line.strip_prefix(**v)
                .is_some_and(|rest| rest.trim_start().starts_with(['=', '?', ':']))
        }) else {
            continue;
        };
        let rest = line[name.len()..].trim_start();
        let (op, value) = if let Some(v) = rest.strip_prefix("?=") {
            ("?=", v)
        } else if let Some(v) = rest.strip_prefix(":=") {
            (":=", v)
        } else if let Some(v) = rest.strip_prefix('=') {
            ("=", v)
        } else {
            bail!("{}: `{line}` is not a plain assignment of {name}", at());
        };
        let value = value.trim();
        if op == "?=" {
            if let Some(given) = env(name) {
                values.insert(name, given);
                continue;
            }
        }
        values.insert(
            name,
            expand(value, &values, &env).map_err(|m| anyhow!("{}: {m}", at()))?,
        );
    }
    let version = values
        .get("XEN_FULLVERSION")
        .cloned()
        .ok_or_else(|| anyhow!("{what}: xen/Makefile at {short} defines no XEN_FULLVERSION"))?;
    if version.is_empty() {
        bail!("{what}: XEN_FULLVERSION of xen/Makefile at {short} is empty");
    }
    Ok(version)
}

/// `value` with each `$(VAR)` of the known variables replaced; any other
/// make syntax is refused.
fn expand(
    value: &str,
    values: &BTreeMap<&str, String>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if value.contains(['`', '#', ';', '\\']) || value.contains("${") {
        return Err(format!("`{value}` is more than text and $(VAR): refusing it"));
    }
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.strip_prefix("$(").and_then(|a| a.find(')')) else {
            return Err(format!("`{value}` is more than text and $(VAR): refusing it"));
        };
        let name = &after[2..2 + end];
        if VARIABLES.contains(&name) {
            out.push_str(values.get(name).map(String::as_str).unwrap_or_default());
        } else if FROM_ENVIRONMENT.contains(&name) {
            out.push_str(&env(name).unwrap_or_default());
        } else {
            return Err(format!(
                "`$({name})` in `{value}` is not one of xen's version variables: refusing it"
            ));
        }
        rest = &after[2 + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_and_known_variables_only() {
        let none = |_: &str| None;
        let values = BTreeMap::from([("XEN_VERSION", "4".to_string())]);
        assert_eq!(expand("$(XEN_VERSION).21-rc", &values, &none).unwrap(), "4.21-rc");
        assert_eq!(
            expand("-unstable$(XEN_VENDORVERSION)", &values, &|_| Some("-acme".into())).unwrap(),
            "-unstable-acme"
        );
        for hostile in [
            "$(shell touch /tmp/x)",
            "$(call shell,touch /tmp/x)",
            "`touch /tmp/x`",
            "4.21; touch /tmp/x",
            "$(file >/tmp/x,y)",
            "${XEN_VERSION}",
            "$(XEN_VERSION",
            "$$(XEN_VERSION)",
        ] {
            assert!(expand(hostile, &values, &none).is_err(), "{hostile}");
        }
    }
}
