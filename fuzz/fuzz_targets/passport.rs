//! Fuzzes offline passport verification, `passport::verify_passport`, two ways: on
//! arbitrary input (passport, JWKS and bundle split at NUL bytes) it never panics and
//! accepts only what really checks (a verified bundle hashes to the attested digest);
//! and on a genuine passport and bundle with one byte changed (position and value from
//! the input), the altered passport never verifies and the altered bundle verifies only
//! if its content still hashes to the attested digest.
#![no_main]

use std::sync::OnceLock;

use fleetpass_domain::passport::{bundle_sha256, verify_passport};
use fleetpass_domain::scan::{
    Asset, BundleCanonicalization, PassportClaims, ScanResults, Scenario, Software,
};
use libfuzzer_sys::fuzz_target;

/// A genuine passport, the JWKS of its key and its bundle document, signed once as the
/// server signs (jsonwebtoken, EdDSA, `kid` in the header).
struct Genuine {
    passport: String,
    jwks: String,
    bundle: String,
}

fn genuine() -> &'static Genuine {
    static GENUINE: OnceLock<Genuine> = OnceLock::new();
    GENUINE.get_or_init(|| {
        use base64::Engine as _;
        use ring::signature::KeyPair as _;
        let mut pkcs8 = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        pkcs8.extend_from_slice(&[3; 32]);
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
            .expect("a valid key");
        let results = ScanResults {
            assets: vec![Asset {
                hostname: "db-1".into(),
                ip: "10.0.0.5".into(),
                os: "Debian 12".into(),
                open_ports: vec![22, 5432],
                listeners: vec![],
                os_hostname: None,
                software: vec![Software {
                    name: "openssl".into(),
                    version: "3.0.11".into(),
                }],
            }],
            findings: vec![],
        };
        let (bundle, bundle_sha256) = results.bundle().expect("the fixed results bundle");
        let claims = PassportClaims {
            iss: "fleetpass".into(),
            sub: "s".into(),
            typ: PassportClaims::TYPE.into(),
            iat: 1_795_342_500,
            tenant_id: "t".into(),
            fleet_id: "f".into(),
            environment_id: "e".into(),
            scan_id: "s".into(),
            scenario: Scenario::Software,
            completed_at: "2026-11-22T10:15:00Z".into(),
            counts: results.counts(),
            bundle_sha256: bundle_sha256.to_string(),
            tenant_name: Some("t".into()),
            fleet_name: Some("f".into()),
            bundle_canonicalization: Some(BundleCanonicalization::Rfc8785),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("k".into());
        let passport = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(&pkcs8),
        )
        .expect("signs");
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        Genuine {
            passport,
            jwks: format!(
                r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"k","x":"{x}"}}]}}"#
            ),
            bundle: format!(
                r#"{{"scanId":"s","bundleSha256":"{bundle_sha256}","bundle":{bundle}}}"#
            ),
        }
    })
}

/// Arbitrary inputs: whatever verifies must really check.
fn arbitrary(data: &[u8]) {
    let mut parts = data.splitn(3, |b| *b == 0);
    let passport = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let jwks = parts
        .next()
        .map(|j| String::from_utf8_lossy(j).into_owned())
        .unwrap_or_else(|| genuine().jwks.clone());
    let bundle = parts.next();
    if let Ok(verified) = verify_passport(&passport, &jwks, bundle) {
        assert_eq!(verified.claims.typ, PassportClaims::TYPE);
        if let Some(bundle) = bundle {
            assert!(verified.bundle_checked);
            assert_eq!(
                bundle_sha256(bundle).expect("a verified bundle is JSON"),
                verified.claims.bundle_sha256
            );
        }
    }
}

/// One changed byte of a genuine passport or bundle.
fn tampered(data: &[u8]) {
    let (Some(&which), Some(&[hi, lo, with])) = (data.first(), data.get(1..4)) else {
        return;
    };
    let g = genuine();
    assert!(verify_passport(&g.passport, &g.jwks, Some(g.bundle.as_bytes())).is_ok());
    let original = if which % 2 == 0 {
        &g.passport
    } else {
        &g.bundle
    };
    let mut bytes = original.as_bytes().to_vec();
    let at = usize::from(u16::from_be_bytes([hi, lo])) % bytes.len();
    if bytes[at] == with {
        return;
    }
    bytes[at] = with;
    if which % 2 == 0 {
        let passport = String::from_utf8_lossy(&bytes);
        assert!(
            verify_passport(&passport, &g.jwks, None).is_err(),
            "byte {at} of the passport changed to {with:#04x} and it still verified"
        );
    } else if verify_passport(&g.passport, &g.jwks, Some(&bytes)).is_ok() {
        // Only a change that leaves the content as it was may pass (none should exist
        // for a one-byte change of canonical JSON, but the digest is what decides).
        assert_eq!(
            bundle_sha256(&bytes).ok(),
            bundle_sha256(g.bundle.as_bytes()).ok(),
            "byte {at} of the bundle changed to {with:#04x} and it still verified"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    arbitrary(data);
    tampered(data);
});
