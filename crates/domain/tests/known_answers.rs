//! Known-answer vectors for the bundle digest a passport attests: fixed bundles and the
//! SHA-256 their canonical JSON must have. The expected digests were computed outside
//! Rust (Python: `json.dumps(v, sort_keys=True, separators=(",", ":"))`, then
//! `hashlib.sha256`), so a change to the canonical form — key order, whitespace, how a
//! value is written — fails here instead of silently invalidating every passport issued
//! before it.

use fleetpass_domain::passport::bundle_sha256;
use fleetpass_domain::scan::ScanResults;

/// A bundle with nested objects, arrays (whose order counts), `true` and `null`, written
/// with whitespace and unsorted keys.
const BUNDLE: &str = r#"{ "findings": [ {"title": "Telnet open", "severity": "high", "asset": "a1"} ],
  "assets": [ {"name": "web-1", "id": "a1", "ports": [23, 22]} ], "z": true, "a": null }"#;

/// Its canonical form.
const CANONICAL: &str = r#"{"a":null,"assets":[{"id":"a1","name":"web-1","ports":[23,22]}],"findings":[{"asset":"a1","severity":"high","title":"Telnet open"}],"z":true}"#;

/// SHA-256 of [`CANONICAL`].
const DIGEST: &str = "b174ff3fbb2965a06617fe79f4b205d7d986aa7e44c1c311e3d52487ae4cdde2";

/// SHA-256 of `{"assets":[],"findings":[]}`, the bundle of empty results.
const EMPTY_DIGEST: &str = "c5293cf214bf73a5215102dc2a9e841f165bf24c9b5741d385ecb00afcda6055";

#[test]
fn a_fixed_bundle_has_a_fixed_digest() {
    assert_eq!(bundle_sha256(BUNDLE.as_bytes()).expect("JSON"), DIGEST);
    assert_eq!(bundle_sha256(CANONICAL.as_bytes()).expect("JSON"), DIGEST);
}

#[test]
fn the_artifact_document_attests_its_bundle_member() {
    let document = format!(r#"{{"scanId": "x", "bundleSha256": "{DIGEST}", "bundle": {BUNDLE}}}"#);
    assert_eq!(bundle_sha256(document.as_bytes()).expect("JSON"), DIGEST);
}

#[test]
fn content_changes_change_the_digest() {
    // Array order is content: swapping the ports is another bundle.
    let swapped = BUNDLE.replace("[23, 22]", "[22, 23]");
    assert_ne!(bundle_sha256(swapped.as_bytes()).expect("JSON"), DIGEST);
    let changed = BUNDLE.replace("\"high\"", "\"low\"");
    assert_ne!(bundle_sha256(changed.as_bytes()).expect("JSON"), DIGEST);
}

#[test]
fn empty_results_bundle_to_a_fixed_text_and_digest() {
    let (text, digest) = ScanResults::default().bundle().expect("bundles");
    assert_eq!(text, r#"{"assets":[],"findings":[]}"#);
    assert_eq!(digest.as_str(), EMPTY_DIGEST);
}
