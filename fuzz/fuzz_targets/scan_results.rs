//! Fuzzes the scan-results decoder as `POST /agent/scans/{id}/results` runs it: the
//! body decoded straight into `ScanResults` through `serde_path_to_error` (no NUL gets
//! through),
//! then `validate` under a `maxAssets` picked by the first byte, and what a valid set
//! goes on to (bundle, report, counts, passport claims). Asserts never a panic, and that
//! the bundle is canonical: it parses back to the same results and bundles to the same
//! bytes and digest.
#![no_main]

use fleetpass_domain::ids::{EnvironmentId, FleetId, ScanId, TenantId};
use fleetpass_domain::scan::{
    MaxAssets, PassportClaims, PassportNames, Scan, ScanConstraints, ScanResults, ScanStatus,
    Scenario,
};
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;
use uuid::Uuid;

/// The scan the results are for.
fn scan(max_assets: Option<MaxAssets>) -> Scan {
    let at = datetime!(2026-11-22 10:00 UTC);
    Scan {
        id: ScanId::from_uuid(Uuid::from_u128(1)),
        tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
        fleet_id: FleetId::from_uuid(Uuid::from_u128(3)),
        environment_id: EnvironmentId::from_uuid(Uuid::from_u128(4)),
        scenario: Scenario::Inventory,
        constraints: ScanConstraints {
            max_assets,
            ..ScanConstraints::default()
        },
        status: ScanStatus::Running,
        requested_at: at,
        target: fleetpass_domain::scan::Target::Any,
        claimed_by: None,
        claimed_at: Some(at),
        finished_at: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, body)) = data.split_first() else {
        return;
    };
    // 0: no limit; otherwise 1-255 assets.
    let max_assets = (limit != 0).then(|| MaxAssets::new(i64::from(limit)).expect("1-255"));
    // The `Body` extractor's steps (crates/http/src/extract.rs): straight from the
    // bytes into the typed results, no tree in between.
    let mut de = serde_json::Deserializer::from_slice(body);
    let Ok(results) = serde_path_to_error::deserialize::<_, ScanResults>(&mut de) else {
        return;
    };
    if de.end().is_err() {
        return;
    }
    let text = |t: &fleetpass_domain::value::Text| !t.as_str().contains('\0');
    assert!(
        results.assets.iter().all(|a| text(&a.hostname) && text(&a.os) && text(&a.ip))
            && results.findings.iter().all(|f| text(&f.title)
                && f.detail.as_ref().is_none_or(text)
                && f.asset_hostname.as_ref().is_none_or(text)),
        "a NUL got into decoded results"
    );
    // `scans::submit_results` (crates/ports/src/service/scans.rs).
    let valid = results.validate(max_assets);
    if let Some(max) = max_assets
        && results.assets.len() > max.get() as usize
    {
        assert!(valid.is_err(), "more assets than maxAssets passed");
    }
    if valid.is_err() {
        return;
    }
    let (json, sha) = results.bundle().expect("valid results bundle");
    assert!(
        sha.as_str().len() == 64
            && sha
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let reparsed: ScanResults = serde_json::from_str(&json).expect("a bundle parses");
    assert_eq!(reparsed, results, "the bundle is not the results");
    assert_eq!(
        reparsed.bundle().expect("a reparsed bundle bundles"),
        (json, sha.clone()),
        "the bundle is not canonical"
    );
    let report = results.report();
    assert!(report.top_findings.len() <= 10);
    assert!(
        report
            .top_findings
            .windows(2)
            .all(|w| w[0].severity >= w[1].severity)
    );
    let counts = results.counts();
    assert_eq!(
        counts.findings_by_severity.values().sum::<usize>(),
        counts.findings
    );
    let claims = PassportClaims::new(
        &scan(max_assets),
        &results,
        datetime!(2026-11-22 10:30 UTC),
        PassportNames::default(),
    )
    .expect("valid results make claims");
    assert_eq!(claims.bundle_sha256, sha.as_str());
    serde_json::to_value(&report).expect("a report serializes");
    serde_json::to_value(&claims).expect("claims serialize");
});
