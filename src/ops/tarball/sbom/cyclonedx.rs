//! `NAME.cdx.json`: CycloneDX 1.6, what dependency-track and many scanners
//! read. Written with serde_json rather than the cyclonedx-bom crate: the
//! version of it here writes up to spec 1.5, and this document is small and
//! its key order fixed (the same bytes every run).

use anyhow::Result;
use serde_json::{json, Value};

use super::{to_bytes, Described, Facts, Party};
use crate::tarball::license::NOASSERTION;

fn organization(party: &Party) -> Value {
    let mut node = json!({ "name": party.name });
    if let Some(url) = party.url() {
        node["url"] = json!([url]);
    }
    if let Some(email) = party.email() {
        node["contact"] = json!([{ "email": email }]);
    }
    node
}

/// `pkg:generic/NAME@VERSION?vcs_url=git%2BURL%40COMMIT`: the purl of a
/// source tree at a commit (purl's generic type; the vcs_url qualifier is
/// SPDX's VCS form, percent-encoded).
fn purl(package: &Described) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let mut out = format!("pkg:generic/{}@{}", encode(&package.name), encode(&package.describe));
    if let Some(download) = &package.download {
        out.push_str(&format!("?vcs_url={}", encode(download)));
    }
    out
}

fn component(package: &Described) -> Value {
    let mut node = json!({
        "type": "application",
        "bom-ref": package.name,
        "name": package.name,
        "version": package.describe,
    });
    if let Some(supplier) = &package.supplier {
        node["supplier"] = organization(supplier);
    }
    // The git commit id: a SHA-1 that names the tree's whole content.
    node["hashes"] = json!([{ "alg": "SHA-1", "content": package.commit }]);
    if package.concluded != NOASSERTION {
        node["licenses"] = json!([{ "expression": package.concluded, "acknowledgement": "concluded" }]);
    }
    if let Some(copyright) = &package.copyright {
        node["copyright"] = json!(copyright);
    }
    node["purl"] = json!(purl(package));
    if package.download.is_some() {
        node["externalReferences"] = json!([{
            "type": "vcs",
            "url": package.url,
            "comment": format!("commit {}", package.commit),
        }]);
    }
    node["properties"] = json!([{ "name": "sultana:path", "value": package.at }]);
    node
}

pub(super) fn document(facts: &Facts) -> Result<Vec<u8>> {
    let root = &facts.packages[0];
    let others: Vec<Value> = facts.packages[1..].iter().map(component).collect();
    // A serial number from the content: a UUID (version 8, custom) of the
    // digest, the same for the same release.
    let d = &facts.digest;
    let serial = format!(
        "urn:uuid:{}-{}-8{}-{}{}-{}",
        &d[0..8],
        &d[8..12],
        &d[13..16],
        ["8", "9", "a", "b"][usize::from_str_radix(&d[16..17], 16).unwrap_or(0) % 4],
        &d[17..20],
        &d[20..32]
    );
    let mut metadata = json!({
        "timestamp": crate::timefmt::rfc3339(facts.created),
        "lifecycles": [{ "phase": "pre-build" }],
        "tools": { "components": [{
            "type": "application",
            "name": "sultana",
            "version": env!("CARGO_PKG_VERSION"),
        }]},
        "component": component(root),
    });
    if let Some(creator) = &facts.creator {
        metadata["manufacturer"] = organization(creator);
    }
    let mut dependencies = vec![json!({
        "ref": root.name,
        "dependsOn": facts.packages[1..].iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
    })];
    dependencies.extend(
        facts.packages[1..]
            .iter()
            .map(|p| json!({ "ref": p.name, "dependsOn": [] })),
    );
    let mut bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial,
        "version": 1,
        "metadata": metadata,
        "components": others,
        "dependencies": dependencies,
    });
    // The inlined trees are inside the root's: said as its sub-components
    // and, for readers of the dependency graph, as what it holds.
    if !facts.packages[1..].is_empty() {
        bom["compositions"] = json!([{
            "aggregate": "complete",
            "assemblies": [root.name],
        }]);
    }
    to_bytes(&bom)
}
