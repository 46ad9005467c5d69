//! Rules for values that come from manifests, locks and upstream trees. They
//! are data, never options or commands: each rule runs before any git call.

use std::path::{Component, Path, PathBuf};

/// Component names: `[a-z0-9][a-z0-9_-]*`, at most 64 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = matches!(chars.next(), Some('a'..='z' | '0'..='9'));
    let rest_ok = chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'));
    if first_ok && rest_ok && name.len() <= 64 {
        Ok(())
    } else {
        Err(format!(
            "invalid component name `{name}`: use lower-case letters, digits, `-` and `_`, starting with a letter or digit"
        ))
    }
}

/// Workspace names: like component names, and dots too (`xen-4.21`).
pub fn check_workspace_name(name: &str) -> Result<(), String> {
    check_name(&name.replace('.', "-"))
        .map_err(|_| format!("invalid workspace name `{name}`: use lower-case letters, digits, `.`, `-` and `_`"))
}

/// Variables sultana itself sets for a step (the jobserver, the compiler
/// cache); `--env` and `env = [...]` may not name them.
pub const RESERVED_ENV: &[&str] = &[
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "CARGO_MAKEFLAGS",
    // The write tracer's (see `build::trace`).
    "LD_PRELOAD",
    "SULTANA_TRACE",
];

/// A variable name a recipe or the command line may pass to a build.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("`{name}` is not an environment variable name"));
    }
    if RESERVED_ENV.contains(&name) {
        return Err(format!("`{name}` is set by sultana itself for every build step"));
    }
    Ok(())
}

/// Git URLs. Refused: option-like values, `transport::address` forms (`ext::`
/// runs commands, `fd::` reads descriptors), unknown schemes and relative paths.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("empty URL".into());
    }
    if url.starts_with('-') {
        return Err(format!("URL `{url}` looks like a command-line option"));
    }
    if let Some(pos) = url.find("::") {
        let transport = &url[..pos];
        if !transport.is_empty()
            && transport
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(format!(
                "URL `{url}` uses the `{transport}::` transport, which is not allowed"
            ));
        }
    }
    // A backslash has no place in a git URL and ends a line in make.
    if let Some(c) = url.chars().find(|c| c.is_control() || c.is_whitespace() || *c == '\\') {
        return Err(format!("URL `{}` contains the character {c:?}", url.escape_debug()));
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        const SCHEMES: &[&str] = &["https", "http", "git", "ssh", "git+ssh", "ssh+git", "file"];
        if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "URL `{url}` has scheme `{scheme}`; use one of {}",
                SCHEMES.join(", ")
            ));
        }
        if rest.is_empty() {
            return Err(format!("URL `{url}` has nothing after `{scheme}://`"));
        }
        return Ok(());
    }
    if url.starts_with('/') {
        return Ok(()); // a local mirror
    }
    // scp-like `user@host:path`
    if let Some((host, path)) = url.split_once(':') {
        if !host.is_empty() && !host.contains('/') && !path.is_empty() {
            return Ok(());
        }
    }
    Err(format!(
        "URL `{url}` is neither a URL nor an absolute path (write file:///… for a local repository)"
    ))
}

/// Revisions: a branch, tag or full commit id, never anything git could read
/// as an option or a revision expression.
pub fn check_revision(rev: &str) -> Result<(), String> {
    if rev.is_empty() {
        return Err("empty revision".into());
    }
    if rev.starts_with('-') {
        return Err(format!("revision `{rev}` looks like a command-line option"));
    }
    if is_full_sha(rev) {
        return Ok(());
    }
    // Before libgit2 sees it: a NUL cannot cross into C.
    if rev.chars().any(|c| c.is_control()) {
        return Err(format!(
            "revision `{}` contains a control character",
            rev.escape_debug()
        ));
    }
    let as_ref = if rev.starts_with("refs/") {
        rev.to_string()
    } else {
        format!("refs/heads/{rev}")
    };
    if rev.contains("..") || rev.contains("@{") || !git2::Reference::is_valid_name(&as_ref) {
        return Err(format!(
            "revision `{}` is not a valid branch, tag or 40-hex commit",
            rev.escape_debug()
        ));
    }
    Ok(())
}

pub fn is_full_sha(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Looks like an abbreviated commit id (which we refuse: it can become
/// ambiguous as history grows).
pub fn is_short_sha(rev: &str) -> bool {
    (4..40).contains(&rev.len()) && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A path inside the workspace or a tree: relative, no `..`, no `.git`.
/// `.` alone is accepted only when `allow_dot` is set.
pub fn check_rel_path(path: &str, allow_dot: bool) -> Result<PathBuf, String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err(format!(
            "path `{}` contains a control character or backslash",
            path.escape_debug()
        ));
    }
    let p = Path::new(path);
    if p.is_absolute() {
        return Err(format!(
            "path `{path}` is absolute; paths are relative to the workspace"
        ));
    }
    let mut out = PathBuf::new();
    for part in p.components() {
        match part {
            Component::Normal(name) => {
                if name.eq_ignore_ascii_case(".git") {
                    return Err(format!("path `{path}` goes into a `.git` folder"));
                }
                out.push(name);
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "path `{path}` contains `..`; it must stay inside the workspace"
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "path `{path}` is absolute; paths are relative to the workspace"
                ))
            }
        }
    }
    if out.as_os_str().is_empty() {
        if allow_dot {
            return Ok(PathBuf::from("."));
        }
        return Err(format!("path `{path}` names the workspace itself"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for ok in [
            "https://xenbits.xen.org/git-http/xen.git",
            "git://xenbits.xen.org/xen.git",
            "file:///srv/git/xen.git",
            "/srv/git/xen.git",
            "git@github.com:xapi-project/blktap.git",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-uhelp",
            "--upload-pack=touch /tmp/x",
            "ext::sh -c touch% /tmp/pwned",
            "ext::sh",
            "fd::17",
            "gopher://x/y",
            "relative/path",
            "https://x/y z",
            "https://",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn revisions() {
        for ok in [
            "master",
            "v4.0.8",
            "rel-1.17.0",
            "stable/4.19",
            "refs/tags/v1",
            &"a".repeat(40),
        ] {
            assert!(check_revision(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-f", "--all", "a..b", "HEAD@{1}", "x y", "a~1", "a^", "a:b", "foo.lock",
        ] {
            assert!(check_revision(bad).is_err(), "{bad}");
        }
        assert!(is_short_sha("26ceb2d"));
        assert!(!is_short_sha("master"));
    }

    #[test]
    fn paths() {
        assert_eq!(
            check_rel_path("tools/qemu-xen", false).unwrap(),
            PathBuf::from("tools/qemu-xen")
        );
        assert_eq!(check_rel_path("./xen/", false).unwrap(), PathBuf::from("xen"));
        assert!(check_rel_path(".", false).is_err());
        assert_eq!(check_rel_path(".", true).unwrap(), PathBuf::from("."));
        for bad in ["", "/etc", "../x", "a/../../b", "a/.git/hooks", ".GIT", "a\\b"] {
            assert!(check_rel_path(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("qemu-xen").is_ok());
        assert!(check_name("mini_os2").is_ok());
        for bad in ["", "Xen", "-x", "_x", "a b", "a/b", "é"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}

/// A url with any `user:password@` (or `token@`) of an http(s) or similar
/// url removed: what sultana prints or writes. ssh's `git@host:path` and
/// `ssh://git@host/` keep their user name, which is no secret; a password
/// never stays.
pub fn redact_url(url: &str) -> String {
    redact_credentials(url)
}

/// Every `scheme://userinfo@` in a text reduced to `scheme://` (for ssh
/// urls, to the user name alone): for messages, JSON, files and logs.
pub fn redact_credentials(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let scheme_start = rest[..pos]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let scheme = &rest[scheme_start..pos];
        out.push_str(&rest[..pos + 3]);
        let after = &rest[pos + 3..];
        // The authority ends at a path, query or fragment, or at a character
        // userinfo cannot hold unencoded (RFC 3986 allows `'()*+,;=!$&` in
        // it, so those cannot end it: a password may hold them).
        let end = after
            .find(|c: char| c.is_whitespace() || c.is_control() || "/?#\"`<>[]{}\\|^".contains(c))
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let ssh = scheme.to_ascii_lowercase().contains("ssh");
                if ssh && !userinfo.contains(':') {
                    out.push_str(&authority[..=at]);
                } else if ssh {
                    let user = userinfo.split(':').next().unwrap_or_default();
                    out.push_str(user);
                    out.push('@');
                }
                out.push_str(&authority[at + 1..]);
            }
            None => out.push_str(authority),
        }
        // The path, then a query whose secret parameters are dropped
        // (`?private_token=…`, `?access_token=…`, `&sig=…`).
        let tail = &after[end..];
        let mut url_end = tail
            .find(|c: char| c.is_whitespace() || c.is_control() || "\"'`<>".contains(c))
            .unwrap_or(tail.len());
        // Another url right after this one (`FROM=TO`, `a,b`): its own, so
        // its credentials are found too.
        if let Some(nested) = tail[..url_end].find("://") {
            url_end = tail[..nested]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
                .map_or(0, |i| i + 1);
        }
        // Prose around a url ("(mirror of URL)", "URL, then") is not its.
        loop {
            let url = &tail[..url_end];
            let unbalanced = url.ends_with(')') && url.matches('(').count() < url.matches(')').count();
            if unbalanced || url.ends_with([',', '.', ';', ':']) {
                url_end -= 1;
            } else {
                break;
            }
        }
        out.push_str(&without_secret_query(&tail[..url_end]));
        rest = &tail[url_end..];
    }
    out.push_str(rest);
    out
}

/// A url's path and query with the query parameters that carry secrets
/// left out (the `?` too when none is left).
fn without_secret_query(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    const SECRET: &[&str] = &["token", "key", "secret", "pass", "auth", "sig", "credential"];
    let kept: Vec<&str> = query
        .split('&')
        .filter(|param| {
            let name = param.split('=').next().unwrap_or_default().to_ascii_lowercase();
            !SECRET.iter().any(|s| name.contains(s))
        })
        .collect();
    if kept.len() == query.split('&').count() {
        return path_and_query.to_string();
    }
    let mut out = path.to_string();
    if !kept.is_empty() && kept.iter().any(|p| !p.is_empty()) {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod redact_tests {
    use super::redact_credentials as r;

    #[test]
    fn a_url_right_after_another_is_redacted_too() {
        assert_eq!(
            r("--url-rewrite https://h/=https://u:SECRET@m/ x"),
            "--url-rewrite https://h/=https://m/ x"
        );
    }

    #[test]
    fn credentials_are_stripped() {
        assert_eq!(r("https://user:tok3n@h/x.git"), "https://h/x.git");
        assert_eq!(r("https://tok3n@h/x.git"), "https://h/x.git");
        assert_eq!(r("fetching `https://u:p@h/x` failed"), "fetching `https://h/x` failed");
        assert_eq!(r("ssh://git@h/x"), "ssh://git@h/x");
        assert_eq!(r("ssh://git:secret@h/x"), "ssh://git@h/x");
        assert_eq!(r("git@h:x.git"), "git@h:x.git");
        assert_eq!(r("a https://u:p@h b https://v:q@i/"), "a https://h b https://i/");
        assert_eq!(r("file:///srv/a@b/x"), "file:///srv/a@b/x");
        assert_eq!(r("plain text"), "plain text");
        // What RFC 3986 allows in userinfo unencoded.
        assert_eq!(r("https://user:ab(LEAK@h/x"), "https://h/x");
        assert_eq!(r("https://u:a;b,c'd)e*f+g=h!i$j&k@h/x"), "https://h/x");
        assert_eq!(r("(mirror of https://u:p;q@h)"), "(mirror of https://h)");
        assert_eq!(r("'https://u:p@h', next"), "'https://h', next");
        assert_eq!(r("\"https://u:p@h\","), "\"https://h\",");
        assert_eq!(r("https://u:p@[::1]:8080/x"), "https://[::1]:8080/x");
        // Secrets in the query (GitLab's private_token, signed urls).
        assert_eq!(
            r("https://u:p@h/x.git?private_token=T0K&ref=main#f"),
            "https://h/x.git?ref=main#f"
        );
        assert_eq!(r("`https://h/x?access_token=T0K` failed"), "`https://h/x` failed");
        assert_eq!(
            r("https://h/x?a=1&X-Amz-Signature=S&b=2 next"),
            "https://h/x?a=1&b=2 next"
        );
        assert_eq!(r("https://h/x.git?token="), "https://h/x.git");
        assert_eq!(r("is it https://h/x? yes"), "is it https://h/x? yes");
        assert_eq!(
            r("(mirror of https://h/x?private_token=T0K), then https://h/y?key=K."),
            "(mirror of https://h/x), then https://h/y."
        );
    }
}
