//! Verifies a scan passport offline: `cargo run -p fleetpass-domain --example
//! verify_passport -- PASSPORT_FILE JWKS_FILE [BUNDLE_FILE]` (the files as
//! `GET /share/{token}/passport`, `GET /.well-known/jwks.json` and
//! `GET /share/{token}/bundle` answer them).
//!
//! Without arguments it plays both sides: signs a passport the way the server does
//! (jsonwebtoken, EdDSA, `kid` in the header), publishes the key as a JWKS, verifies the
//! passport with its bundle, then shows the errors a tampered copy gets.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fleetpass_domain::passport::{PassportError, verify_passport};
use fleetpass_domain::scan::{
    Asset, BundleCanonicalization, PassportClaims, ScanResults, Scenario,
};
use ring::signature::KeyPair as _;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() >= 2 {
        let read = |path: &String| std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let passport = String::from_utf8(read(&args[0])).expect("UTF-8 passport");
        let jwks = String::from_utf8(read(&args[1])).expect("UTF-8 JWKS");
        let bundle = args.get(2).map(read);
        match verify_passport(&passport, &jwks, bundle.as_deref()) {
            Ok(v) => println!(
                "verified: {} scan {} signed by {}",
                v.claims.scenario.as_str(),
                v.claims.scan_id,
                v.kid
            ),
            Err(e) => {
                eprintln!("NOT verified: {e}");
                std::process::exit(1);
            }
        }
        return;
    }

    // The server's side, in miniature: an Ed25519 key (PKCS#8 v1 from a fixed seed),
    // the results, their bundle, the claims and the signature.
    let mut pkcs8 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    pkcs8.extend_from_slice(&[9; 32]);
    let pair =
        ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).expect("a valid key");
    let results = ScanResults {
        assets: vec![Asset {
            hostname: "web-1".into(),
            ip: "10.0.0.7".into(),
            os: "Debian 12".into(),
            open_ports: vec![443],
            listeners: vec![],
            os_hostname: None,
            software: vec![],
        }],
        findings: vec![],
    };
    let (bundle, bundle_sha256) = results.bundle().expect("the results serialize");
    let claims = PassportClaims {
        iss: "fleetpass".into(),
        sub: "0193a0c0-0000-7000-8000-000000000001".into(),
        typ: PassportClaims::TYPE.into(),
        iat: 1_795_342_500,
        tenant_id: "0193a0c0-0000-7000-8000-0000000000aa".into(),
        fleet_id: "0193a0c0-0000-7000-8000-0000000000bb".into(),
        environment_id: "0193a0c0-0000-7000-8000-0000000000cc".into(),
        scan_id: "0193a0c0-0000-7000-8000-000000000001".into(),
        scenario: Scenario::Ports,
        completed_at: "2026-11-22T10:15:00Z".into(),
        counts: results.counts(),
        bundle_sha256: bundle_sha256.into(),
        tenant_name: Some("acme".into()),
        fleet_name: Some("edge".into()),
        bundle_canonicalization: Some(BundleCanonicalization::Rfc8785),
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("demo-key".into());
    let passport = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&pkcs8),
    )
    .expect("signs");
    let jwks = serde_json::json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": "demo-key",
        "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
    }]})
    .to_string();

    // The auditor's side: no clock, no network, just the three inputs.
    let verified = verify_passport(&passport, &jwks, Some(bundle.as_bytes()))
        .expect("a genuine passport verifies");
    println!(
        "verified: {} scan {} ({} assets), signed by key {}, bundle checked: {}",
        verified.claims.scenario.as_str(),
        verified.claims.scan_id,
        verified.claims.counts.assets,
        verified.kid,
        verified.bundle_checked
    );

    let altered_bundle = bundle.replace("web-1", "web-2");
    let err = verify_passport(&passport, &jwks, Some(altered_bundle.as_bytes())).unwrap_err();
    assert!(matches!(err, PassportError::BundleMismatch { .. }));
    println!("altered bundle: {err}");

    let mut parts: Vec<String> = passport.split('.').map(str::to_owned).collect();
    let mut forged = claims.clone();
    forged.counts.assets = 0; // hide the host
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
    let err = verify_passport(&parts.join("."), &jwks, None).unwrap_err();
    assert_eq!(err, PassportError::BadSignature);
    println!("altered claims: {err}");

    let err = verify_passport(&passport, r#"{"keys": []}"#, None).unwrap_err();
    assert!(matches!(err, PassportError::UnknownKid { .. }));
    println!("another server's keys: {err}");
}
