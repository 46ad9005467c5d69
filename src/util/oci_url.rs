//! The build cache's remote tier's address, `oci://HOST[:PORT]/REPOSITORY`:
//! checked where the manifest is read and where the registry is reached.

use anyhow::{anyhow, bail, Result};

/// A parsed `oci://HOST[:PORT]/REPO`.
#[derive(Clone, Debug)]
pub struct OciUrl {
    pub host: String,
    pub repository: String,
    /// Plain HTTP is allowed: an address of this machine.
    pub loopback: bool,
}

impl OciUrl {
    pub fn parse(url: &str) -> Result<OciUrl> {
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| anyhow!("build cache remote `{url}`: write oci://HOST/REPOSITORY"))?;
        let (host, repository) = rest
            .split_once('/')
            .ok_or_else(|| anyhow!("build cache remote `{url}`: no repository after the host"))?;
        let ok_host = !host.is_empty()
            && !host.contains('@')
            && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
        let ok_repo = !repository.is_empty()
            && repository.split('/').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            });
        if !ok_host || !ok_repo {
            bail!(
                "build cache remote `{url}`: not oci://HOST[:PORT]/REPOSITORY (lower-case repository, no credentials)"
            );
        }
        if host.starts_with('[') {
            bail!("build cache remote `{url}`: an IPv6 address is not supported; use a host name");
        }
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        // A name without a dot or a port would be taken for Docker Hub's.
        if !(name.contains('.') || host.contains(':') || name == "localhost") {
            bail!("build cache remote `{url}`: give the registry's full host name (with a dot or a port)");
        }
        // Plain HTTP only to this machine: an address of it, never a name
        // that merely starts like one.
        let loopback = name == "localhost" || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
        Ok(OciUrl {
            host: host.to_string(),
            repository: repository.to_string(),
            loopback,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_are_oci_urls_and_plain_http_is_for_this_machine_only() {
        assert!(OciUrl::parse("oci://127.0.0.1:5000/sultana/cache").unwrap().loopback);
        assert!(!OciUrl::parse("oci://registry.example.org/xen/cache").unwrap().loopback);
        assert!(!OciUrl::parse("oci://127.0.0.1.evil.example/x").unwrap().loopback);
        assert!(!OciUrl::parse("oci://127.evil.example:5000/x").unwrap().loopback);
        for bad in [
            "https://registry.example.org/x",
            "oci://registry.example.org",
            "oci://user:pw@registry.example.org/x",
            "oci://registry.example.org/X",
            "oci://registry.example.org//x",
            "oci://registry/cache",
            "oci://[::1]:5000/x",
        ] {
            assert!(OciUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
