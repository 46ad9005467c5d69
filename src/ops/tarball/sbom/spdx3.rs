//! `NAME.spdx3.json`: SPDX 3.0.1 (JSON-LD), which says what SPDX 2 cannot:
//! the SBOM's type (`source`), that the containment of the inlined trees is
//! complete, the creator as an agent with a contact, and the files the
//! components are distributed in (the tarballs, with their SHA-512), which
//! is what CISA's and BSI's minimum elements ask.

use anyhow::Result;
use serde_json::{json, Value};

use super::{to_bytes, Facts, Party};
use crate::tarball::license::NOASSERTION;

const CONTEXT: &str = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld";
const NO_ASSERTION_LICENSE: &str = "https://spdx.org/rdf/3.0.1/terms/Expanded/NoAssertionLicense";
const CREATION: &str = "_:creationinfo";

/// A tarball file of the release: every component is distributed in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub name: String,
    pub sha256: String,
    pub sha512: String,
}

/// The artifacts a `NAME.spdx3.json` written by sultana names (for
/// `verify-tarball`, which hashes those beside it and takes the others as
/// written). Unreadable or foreign documents give none.
pub fn artifacts_named(bytes: &[u8]) -> Vec<Artifact> {
    let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for node in doc["@graph"].as_array().into_iter().flatten() {
        if node["type"] != "software_File" {
            continue;
        }
        let hash = |alg: &str| {
            node["verifiedUsing"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|h| h["algorithm"] == alg)
                .and_then(|h| h["hashValue"].as_str())
                .map(str::to_string)
        };
        let (Some(name), Some(sha256), Some(sha512)) = (node["name"].as_str(), hash("sha256"), hash("sha512")) else {
            continue;
        };
        // Only plain file names of the hashes' own shape: data, bounded.
        let plain = !name.is_empty() && name.len() <= 255 && !name.contains(['/', '\0']);
        let hexed = |h: &str, n: usize| h.len() == n && h.bytes().all(|b| b.is_ascii_hexdigit());
        if plain && hexed(&sha256, 64) && hexed(&sha512, 128) {
            out.push(Artifact {
                name: name.to_string(),
                sha256,
                sha512,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// An agent with how to reach it: what BSI asks of a creator.
fn agent(id: &str, party: &Party) -> Value {
    let mut node = json!({
        "type": "Organization",
        "spdxId": id,
        "creationInfo": CREATION,
        "name": party.name,
    });
    let mut identifiers = Vec::new();
    if let Some(email) = party.email() {
        identifiers.push(json!({"type": "ExternalIdentifier", "externalIdentifierType": "email", "identifier": email}));
    }
    if let Some(url) = party.url() {
        identifiers
            .push(json!({"type": "ExternalIdentifier", "externalIdentifierType": "urlScheme", "identifier": url}));
    }
    if !identifiers.is_empty() {
        node["externalIdentifier"] = Value::Array(identifiers);
    }
    node
}

/// The graph being written: its nodes in order, the ids the SBOM lists as
/// its elements, and the nodes shared between packages (one organization
/// per supplier, one expression per license text).
struct Graph {
    base: String,
    nodes: Vec<Value>,
    elements: Vec<String>,
    relationships: usize,
    organizations: Vec<(Party, String)>,
    licenses: Vec<(String, String)>,
}

impl Graph {
    fn id(&self, kind: &str, n: usize) -> String {
        format!("{}#{kind}-{n}", self.base)
    }

    /// A node the SBOM lists among its elements.
    fn element(&mut self, id: String, node: Value) {
        self.nodes.push(node);
        self.elements.push(id);
    }

    fn relate(&mut self, from: &str, kind: &str, to: Vec<String>, complete: bool) {
        let rid = self.id("relationship", self.relationships);
        self.relationships += 1;
        let mut node = json!({
            "type": "Relationship",
            "spdxId": rid,
            "creationInfo": CREATION,
            "from": from,
            "relationshipType": kind,
            "to": to,
        });
        if complete {
            node["completeness"] = json!("complete");
        }
        self.element(rid, node);
    }

    /// The supplier's organization, written the first time it is named.
    fn organization(&mut self, supplier: &Party) -> String {
        if let Some((_, oid)) = self.organizations.iter().find(|(p, _)| p == supplier) {
            return oid.clone();
        }
        let oid = self.id("organization", self.organizations.len());
        self.element(oid.clone(), agent(&oid, supplier));
        self.organizations.push((supplier.clone(), oid.clone()));
        oid
    }

    /// The license expression's node, written the first time it is named.
    fn license(&mut self, expression: &str) -> String {
        if expression == NOASSERTION {
            return NO_ASSERTION_LICENSE.to_string();
        }
        if let Some((_, lid)) = self.licenses.iter().find(|(e, _)| e == expression) {
            return lid.clone();
        }
        let lid = self.id("license", self.licenses.len());
        self.element(
            lid.clone(),
            json!({
                "type": "simplelicensing_LicenseExpression",
                "spdxId": lid,
                "creationInfo": CREATION,
                "simplelicensing_licenseExpression": expression,
            }),
        );
        self.licenses.push((expression.to_string(), lid.clone()));
        lid
    }

    /// The package `n`, its licenses, and its distribution artifacts.
    fn package(&mut self, n: usize, package: &super::Described, files: &[String]) -> String {
        let pid = self.id("package", n);
        let mut node = json!({
            "type": "software_Package",
            "spdxId": pid,
            "creationInfo": CREATION,
            "name": package.name,
            "software_packageVersion": package.describe,
            "software_primaryPurpose": "source",
            "software_copyrightText": package.copyright.as_deref().unwrap_or(NOASSERTION),
            "externalIdentifier": [{
                "type": "ExternalIdentifier",
                "externalIdentifierType": "swhid",
                "identifier": format!("swh:1:rev:{}", package.commit),
            }],
        });
        if let Some(download) = &package.download {
            node["software_downloadLocation"] = json!(download);
        }
        if let Some(supplier) = &package.supplier {
            let org = self.organization(supplier);
            node["suppliedBy"] = json!(org);
            node["originatedBy"] = json!([org]);
        }
        self.element(pid.clone(), node);
        for (kind, expression) in [
            ("hasDeclaredLicense", &package.declared),
            ("hasConcludedLicense", &package.concluded),
        ] {
            let target = self.license(expression);
            self.relate(&pid, kind, vec![target], false);
        }
        if !files.is_empty() {
            self.relate(&pid, "hasDistributionArtifact", files.to_vec(), false);
        }
        pid
    }
}

pub(super) fn document(facts: &Facts, artifacts: &[Artifact]) -> Result<Vec<u8>> {
    let base = format!("https://spdx.org/spdxdocs/{}-{}", facts.top, &facts.digest[..32]);
    let mut graph = Graph {
        base: base.clone(),
        nodes: Vec::new(),
        elements: Vec::new(),
        relationships: 0,
        organizations: Vec::new(),
        licenses: Vec::new(),
    };

    let tool = format!("{base}#tool");
    graph.nodes.push(json!({
        "type": "Tool",
        "spdxId": tool,
        "creationInfo": CREATION,
        "name": format!("sultana {}", env!("CARGO_PKG_VERSION")),
    }));
    // The creator: who makes the release when given, else sultana itself.
    let creator = format!("{base}#creator");
    graph.nodes.push(match &facts.creator {
        Some(party) => agent(&creator, party),
        None => json!({
            "type": "SoftwareAgent",
            "spdxId": creator,
            "creationInfo": CREATION,
            "name": "sultana",
        }),
    });

    let files: Vec<String> = (0..artifacts.len()).map(|n| graph.id("file", n)).collect();
    for (artifact, file) in artifacts.iter().zip(&files) {
        graph.element(
            file.clone(),
            json!({
                "type": "software_File",
                "spdxId": file,
                "creationInfo": CREATION,
                "name": artifact.name,
                "verifiedUsing": [
                    {"type": "Hash", "algorithm": "sha256", "hashValue": artifact.sha256},
                    {"type": "Hash", "algorithm": "sha512", "hashValue": artifact.sha512},
                ],
                "software_primaryPurpose": "archive",
                // BSI's "structured" (a container of further components, the
                // trees inside) besides what it is: sources.
                "software_additionalPurpose": ["container", "source"],
            }),
        );
    }
    let packages: Vec<String> = (facts.packages.iter().enumerate())
        .map(|(n, package)| graph.package(n, package, &files))
        .collect();
    if packages.len() > 1 {
        // The root holds the inlined trees, and no others.
        graph.relate(&packages[0], "contains", packages[1..].to_vec(), true);
    }

    let sbom = format!("{base}#sbom");
    let created = crate::timefmt::rfc3339(facts.created);
    let mut all = vec![tool.clone(), creator.clone()];
    all.extend(graph.elements.iter().cloned());
    let mut nodes = graph.nodes;
    nodes.push(json!({
        "type": "software_Sbom",
        "spdxId": sbom,
        "creationInfo": CREATION,
        "name": facts.top,
        "software_sbomType": ["source"],
        "rootElement": [packages[0]],
        "element": all,
    }));
    let mut everything = all.clone();
    everything.push(sbom.clone());
    nodes.push(json!({
        "type": "SpdxDocument",
        "spdxId": base,
        "creationInfo": CREATION,
        "name": facts.top,
        "profileConformance": ["core", "software", "simpleLicensing"],
        "rootElement": [sbom],
        "element": everything,
    }));
    nodes.insert(
        0,
        json!({
            "type": "CreationInfo",
            "@id": CREATION,
            "specVersion": "3.0.1",
            "created": created,
            "createdBy": [creator],
            "createdUsing": [tool],
        }),
    );
    to_bytes(&json!({ "@context": CONTEXT, "@graph": nodes }))
}
