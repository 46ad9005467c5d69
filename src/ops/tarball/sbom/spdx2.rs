//! `NAME.spdx.json`: SPDX 2.3, the form most tools read today. A package
//! per component, the root DESCRIBED and CONTAINING the others.

use anyhow::Result;
use serde_json::json;

use super::{spdx_id, to_bytes, Facts, Party};
use crate::tarball::license::NOASSERTION;

/// `Organization: NAME (contact)`, SPDX 2's form of a supplier or creator.
fn organization(party: &Party) -> String {
    match &party.contact {
        Some(contact) => format!("Organization: {} ({contact})", party.name),
        None => format!("Organization: {}", party.name),
    }
}

pub(super) fn document(facts: &Facts) -> Result<Vec<u8>> {
    let mut ids: Vec<String> = Vec::new();
    let mut packages = Vec::new();
    for package in &facts.packages {
        let id = spdx_id(&package.name, &ids);
        packages.push(json!({
            "SPDXID": id,
            "name": package.name,
            "versionInfo": package.describe,
            "downloadLocation": package.download.as_deref().unwrap_or(NOASSERTION),
            "externalRefs": [{
                // A git commit id is the Software Heritage id of that revision.
                "referenceCategory": "PERSISTENT-ID",
                "referenceType": "swh",
                "referenceLocator": format!("swh:1:rev:{}", package.commit),
            }],
            "filesAnalyzed": false,
            "licenseConcluded": package.concluded,
            "licenseDeclared": package.declared,
            "copyrightText": package.copyright.as_deref().unwrap_or(NOASSERTION),
            "supplier": package.supplier.as_ref().map_or(NOASSERTION.to_string(), organization),
            "originator": package.supplier.as_ref().map_or(NOASSERTION.to_string(), organization),
        }));
        ids.push(id);
    }
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": ids[0],
    })];
    for id in &ids[1..] {
        relationships.push(json!({
            "spdxElementId": ids[0],
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let mut creators = vec![format!("Tool: sultana-{}", env!("CARGO_PKG_VERSION"))];
    creators.extend(facts.creator.as_ref().map(organization));
    let top = &facts.top;
    let document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": top,
        "documentNamespace": format!("https://spdx.org/spdxdocs/{top}-{}", &facts.digest[..32]),
        "creationInfo": {
            "created": crate::timefmt::rfc3339(facts.created),
            "creators": creators,
        },
        "packages": packages,
        "relationships": relationships,
    });
    let mut document = document;
    if !facts.extracted.is_empty() {
        document["hasExtractedLicensingInfos"] = facts
            .extracted
            .iter()
            .map(|(id, text)| json!({ "licenseId": id, "extractedText": text }))
            .collect();
    }
    to_bytes(&document)
}
