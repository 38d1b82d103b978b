//! Offline verification of scan passports: a compact JWS, the JWKS that publishes its
//! key and, optionally, the bundle it attests, checked with no clock and no IO.
//!
//! The server signs passports with `jsonwebtoken` (EdDSA over Ed25519, `kid` in the
//! header) and publishes the public keys as a `jsonwebtoken` `JwkSet`; this module
//! checks them with the same crate, so the two sides cannot disagree on the encoding.
//! It deliberately reads no clock: a passport attests a past event and does not expire,
//! so "is it still valid?" is the caller's policy (compare [`PassportClaims::iat`] with
//! whatever date the auditor cares about).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::jose::{HeaderRejected, JoseHeader, TokenType};
use crate::scan::{BundleCanonicalization, PassportClaims};

/// Which input of [`verify_passport`] could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The passport (the compact JWS or the artifact document holding it).
    Passport,
    /// The JWKS document.
    Jwks,
    /// The bundle.
    Bundle,
}

impl Input {
    /// The input's name, as an error message uses it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Passport => "passport",
            Self::Jwks => "JWKS",
            Self::Bundle => "bundle",
        }
    }
}

/// Why a passport does not verify. Each variant is one distinct failure an auditor can
/// act on; `Display` is a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassportError {
    /// An input is not what it should be (not a JWS, not JSON, claims of the wrong
    /// shape, not a scan passport, …).
    #[error("malformed {}: {reason}", input.as_str())]
    Malformed {
        /// Which input.
        input: Input,
        /// What is wrong with it.
        reason: String,
    },
    /// The JWS header names another algorithm than EdDSA (`none`, HS256, …), or the
    /// key its `kid` names is not an Ed25519 key.
    #[error("wrong algorithm: {found} (passports are signed with EdDSA over Ed25519)")]
    WrongAlgorithm {
        /// The algorithm or key type found.
        found: String,
    },
    /// The JWS header types it as another kind of token (an agent access token is
    /// `at+jwt`): the signature may be the server's, but it is no passport.
    #[error("wrong type: the token is typed {found:?}, not a passport ({})", TokenType::Passport.typ())]
    WrongType {
        /// The header's `typ`.
        found: String,
    },
    /// No key of the JWKS has the header's `kid` (another server, or a retired key).
    #[error("unknown key: no key with kid {kid:?} in the JWKS")]
    UnknownKid {
        /// The `kid` of the JWS header.
        kid: String,
    },
    /// The signature does not verify with the key: the passport was altered or signed
    /// by someone else.
    #[error("bad signature: the passport was altered or not signed by this key")]
    BadSignature,
    /// The bundle's SHA-256 is not the one the passport attests: the bundle was altered
    /// or belongs to another scan.
    #[error(
        "bundle digest mismatch: the passport attests sha256 {expected}, the bundle hashes to {actual}"
    )]
    BundleMismatch {
        /// The digest in the passport's claims.
        expected: String,
        /// The digest of the bundle given.
        actual: String,
    },
}

impl PassportError {
    fn malformed(input: Input, reason: impl Into<String>) -> Self {
        Self::Malformed {
            input,
            reason: reason.into(),
        }
    }
}

/// A passport whose signature (and, when given, bundle) checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPassport {
    /// The attested claims.
    pub claims: PassportClaims,
    /// The key that signed it.
    pub kid: String,
    /// Whether a bundle was given and matched `claims.bundle_sha256`.
    pub bundle_checked: bool,
}

/// Verifies a scan passport offline.
///
/// - `passport`: the compact JWS (`header.payload.signature`), or the JSON document
///   `GET …/passport` answers (`{"scanId": …, "passport": "<JWS>", …}`).
/// - `jwks`: the JSON Web Key Set of `GET /.well-known/jwks.json`.
/// - `bundle`: optionally the bundle, either the document `GET …/bundle` answers
///   (`{"scanId", "bundleSha256", "bundle": {…}}`) or its `bundle` member alone. Its
///   canonical JSON (keys sorted, no whitespace) must hash to the passport's
///   `bundleSha256`, so a pretty-printed copy verifies and any change of content fails.
///
/// Only EdDSA over Ed25519 passes, with the key the header's `kid` names; the header
/// must be typed `fleetpass-passport+jwt` (or be untyped, as passports signed before
/// explicit typing are) and mark no `crit` extension; the claims must be a scan
/// passport's (`typ` `fleetpass-scan-passport`). An agent access token (`at+jwt`),
/// though signed by the same keys, is refused. No clock is read.
///
/// # Errors
/// [`PassportError`] naming the first check that failed, in this order: malformed
/// input, wrong algorithm, wrong type, unknown `kid`, bad signature, malformed claims,
/// bundle digest mismatch.
///
/// # Examples
/// ```
/// use fleetpass_domain::passport::{PassportError, verify_passport};
///
/// let jwks = r#"{"keys": []}"#;
/// let err = verify_passport("not-a-jws", jwks, None).unwrap_err();
/// assert!(matches!(err, PassportError::Malformed { .. }));
/// assert_eq!(err.to_string(), "malformed passport: a compact JWS has three dot-separated parts");
/// ```
pub fn verify_passport(
    passport: &str,
    jwks: &str,
    bundle: Option<&[u8]>,
) -> Result<VerifiedPassport, PassportError> {
    let jws = compact_jws(passport)?;
    let parts: Vec<&str> = jws.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts[..] else {
        return Err(PassportError::malformed(
            Input::Passport,
            "a compact JWS has three dot-separated parts",
        ));
    };
    let header = JoseHeader::of(header_b64).map_err(|_| {
        PassportError::malformed(
            Input::Passport,
            "the header is not base64url JSON with an alg",
        )
    })?;
    // Typed passports are `fleetpass-passport+jwt`; untyped ones (signed before typing)
    // pass on their claims' `typ`, checked below for every passport.
    header.check(TokenType::Passport).map_err(|e| match e {
        HeaderRejected::WrongAlgorithm(found) => PassportError::WrongAlgorithm { found },
        HeaderRejected::WrongType { found, .. } => PassportError::WrongType { found },
        other => PassportError::malformed(Input::Passport, other.to_string()),
    })?;
    let kid = header.kid.ok_or_else(|| {
        PassportError::malformed(Input::Passport, "the JWS header names no key (kid)")
    })?;
    if URL_SAFE_NO_PAD.decode(signature_b64).is_err() {
        return Err(PassportError::malformed(
            Input::Passport,
            "the signature is not base64url",
        ));
    }

    let keys: JwkSet = serde_json::from_str(jwks)
        .map_err(|e| PassportError::malformed(Input::Jwks, e.to_string()))?;
    let jwk = keys
        .find(&kid)
        .ok_or_else(|| PassportError::UnknownKid { kid: kid.clone() })?;
    if let Some(alg) = jwk.common.key_algorithm
        && alg != KeyAlgorithm::EdDSA
    {
        return Err(PassportError::WrongAlgorithm {
            found: format!("key {kid} is for {alg:?}"),
        });
    }
    match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {}
        other => {
            return Err(PassportError::WrongAlgorithm {
                found: format!("key {kid} is not an Ed25519 key ({})", key_type(other)),
            });
        }
    }
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|e| PassportError::malformed(Input::Jwks, format!("key {kid}: {e}")))?;
    let signing_input = &jws[..header_b64.len() + 1 + payload_b64.len()];
    let valid = jsonwebtoken::crypto::verify(
        signature_b64,
        signing_input.as_bytes(),
        &key,
        Algorithm::EdDSA,
    )
    .unwrap_or(false);
    if !valid {
        return Err(PassportError::BadSignature);
    }

    let claims: PassportClaims = decode_part(payload_b64, "claims")?;
    if claims.typ != PassportClaims::TYPE {
        return Err(PassportError::malformed(
            Input::Passport,
            format!(
                "typ is {:?}, not a scan passport ({})",
                claims.typ,
                PassportClaims::TYPE
            ),
        ));
    }
    if let Some(bundle) = bundle {
        let actual = bundle_sha256_as(bundle, claims.bundle_form())?;
        if actual != claims.bundle_sha256 {
            return Err(PassportError::BundleMismatch {
                expected: claims.bundle_sha256,
                actual,
            });
        }
    }
    Ok(VerifiedPassport {
        claims,
        kid,
        bundle_checked: bundle.is_some(),
    })
}

/// The SHA-256 (lowercase hex) a passport attests for `bundle`: that of its canonical
/// JSON. `bundle` is the artifact document (`{"scanId", "bundleSha256", "bundle"}`) or
/// its `bundle` member alone.
///
/// # Errors
/// `Malformed` (of the bundle) when it is not JSON.
///
/// # Examples
/// ```
/// use fleetpass_domain::passport::bundle_sha256;
/// use fleetpass_domain::scan::ScanResults;
///
/// let results = ScanResults::default();
/// let (text, digest) = results.bundle().unwrap();
/// // Whitespace and key order do not matter; content does.
/// assert_eq!(bundle_sha256(br#"{ "findings": [], "assets": [] }"#).unwrap(), digest.as_str());
/// assert_eq!(bundle_sha256(text.as_bytes()).unwrap(), digest.as_str());
/// ```
pub fn bundle_sha256(bundle: &[u8]) -> Result<String, PassportError> {
    bundle_sha256_as(bundle, BundleCanonicalization::Rfc8785)
}

/// [`bundle_sha256`] in the canonical form `form` (a passport's
/// [`PassportClaims::bundle_form`]).
///
/// # Errors
/// `Malformed` (of the bundle) when it is not JSON.
pub fn bundle_sha256_as(
    bundle: &[u8],
    form: BundleCanonicalization,
) -> Result<String, PassportError> {
    let value: serde_json::Value = serde_json::from_slice(bundle)
        .map_err(|e| PassportError::malformed(Input::Bundle, e.to_string()))?;
    let content = match &value {
        serde_json::Value::Object(doc)
            if doc.contains_key("bundle")
                && (doc.contains_key("bundleSha256") || doc.contains_key("scanId")) =>
        {
            &doc["bundle"]
        }
        _ => &value,
    };
    Ok(crate::scan::sha256_hex(
        form.canonicalize(content).as_bytes(),
    ))
}

/// The compact JWS of `passport`: itself, or the `passport` member of the artifact
/// document.
fn compact_jws(passport: &str) -> Result<&str, PassportError> {
    let trimmed = passport.trim();
    if !trimmed.starts_with('{') {
        return Ok(trimmed);
    }
    #[derive(Deserialize)]
    struct Document<'a> {
        #[serde(borrow)]
        passport: std::borrow::Cow<'a, str>,
    }
    let doc: Document<'_> = serde_json::from_str(trimmed)
        .map_err(|e| PassportError::malformed(Input::Passport, e.to_string()))?;
    match doc.passport {
        // A JWS is base64url and dots: JSON never needs to escape it, so it borrows.
        std::borrow::Cow::Borrowed(jws) => Ok(jws),
        std::borrow::Cow::Owned(_) => Err(PassportError::malformed(
            Input::Passport,
            "the passport member is not a compact JWS",
        )),
    }
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, PassportError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| {
        PassportError::malformed(Input::Passport, format!("the {what} is not base64url"))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| PassportError::malformed(Input::Passport, format!("the {what}: {e}")))
}

fn key_type(params: &AlgorithmParameters) -> &'static str {
    match params {
        AlgorithmParameters::EllipticCurve(_) => "EC",
        AlgorithmParameters::RSA(_) => "RSA",
        AlgorithmParameters::OctetKey(_) => "oct",
        AlgorithmParameters::OctetKeyPair(_) => "OKP on another curve",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{Asset, ScanResults, Software};
    use jsonwebtoken::{EncodingKey, Header as JwtHeader};

    /// RFC 8410 PKCS#8 v1 prefix of an Ed25519 private key, as the server's key ring
    /// builds it.
    const PKCS8_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];

    struct Key {
        kid: &'static str,
        pkcs8: Vec<u8>,
    }

    fn key(seed: u8, kid: &'static str) -> Key {
        let mut pkcs8 = PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(&[seed; 32]);
        Key { kid, pkcs8 }
    }

    impl Key {
        fn public_x(&self) -> String {
            use ring::signature::KeyPair as _;
            let pair =
                ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.pkcs8).unwrap();
            URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())
        }

        fn jwk(&self) -> serde_json::Value {
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                               "kid": self.kid, "x": self.public_x()})
        }

        fn sign<T: serde::Serialize>(&self, claims: &T) -> String {
            let mut header = JwtHeader::new(Algorithm::EdDSA);
            header.kid = Some(self.kid.to_owned());
            jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&self.pkcs8)).unwrap()
        }

        /// Signs with a header of the test's own making (fields jsonwebtoken cannot set).
        fn sign_with_header<T: serde::Serialize>(
            &self,
            header: serde_json::Value,
            claims: &T,
        ) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
            );
            let pair =
                ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.pkcs8).unwrap();
            let signature = URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()).as_ref());
            format!("{input}.{signature}")
        }
    }

    #[test]
    fn a_passport_is_typed_and_nothing_else_typed_passes() {
        let k = key(7, "k1");
        let set = serde_json::json!({"keys": [k.jwk()]}).to_string();
        let typed = |typ: &str| {
            k.sign_with_header(
                serde_json::json!({"alg": "EdDSA", "kid": "k1", "typ": typ}),
                &claims(),
            )
        };
        let ok = verify_passport(&typed("fleetpass-passport+jwt"), &set, None).unwrap();
        assert_eq!(ok.claims, claims());
        // Untyped passports, signed before typing, keep verifying: they never expire.
        assert!(verify_passport(&k.sign(&claims()), &set, None).is_ok());
        // The same keys sign agent access tokens: their type refuses them here.
        let err = verify_passport(&typed("at+jwt"), &set, None).unwrap_err();
        assert_eq!(
            err,
            PassportError::WrongType {
                found: "at+jwt".into()
            }
        );
        let crit = k.sign_with_header(
            serde_json::json!({"alg": "EdDSA", "kid": "k1", "typ": "fleetpass-passport+jwt",
                               "crit": ["x-fleetpass"], "x-fleetpass": true}),
            &claims(),
        );
        let err = verify_passport(&crit, &set, None).unwrap_err();
        assert!(matches!(err, PassportError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("critical"), "{err}");
    }

    fn results() -> ScanResults {
        ScanResults {
            assets: vec![Asset {
                hostname: "db-1".into(),
                ip: "10.0.0.5".into(),
                os: "Debian 12".into(),
                open_ports: vec![22],
                software: vec![Software {
                    name: "openssl".into(),
                    version: "3.0.11".into(),
                }],
            }],
            findings: vec![],
        }
    }

    fn claims() -> PassportClaims {
        let (_, bundle_sha256) = results().bundle().unwrap();
        PassportClaims {
            iss: "fleetpass".into(),
            sub: "scan-1".into(),
            typ: PassportClaims::TYPE.into(),
            iat: 1_795_000_000,
            tenant_id: "t".into(),
            fleet_id: "f".into(),
            environment_id: "e".into(),
            scan_id: "scan-1".into(),
            scenario: crate::scan::Scenario::Inventory,
            completed_at: "2026-11-22T10:00:00Z".into(),
            counts: results().counts(),
            bundle_sha256: bundle_sha256.into(),
            tenant_name: Some("acme".into()),
            fleet_name: Some("edge".into()),
            bundle_canonicalization: Some(BundleCanonicalization::Rfc8785),
        }
    }

    fn jwks(keys: &[&Key]) -> String {
        serde_json::json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
    }

    fn bundle_document() -> String {
        let (text, digest) = results().bundle().unwrap();
        format!(r#"{{"scanId":"scan-1","bundleSha256":"{digest}","bundle":{text}}}"#)
    }

    #[test]
    fn a_genuine_passport_verifies_with_and_without_its_bundle() {
        let (old, new) = (key(1, "old"), key(2, "new"));
        let jws = new.sign(&claims());
        let set = jwks(&[&old, &new]);
        let verified = verify_passport(&jws, &set, None).unwrap();
        assert_eq!(
            (verified.kid.as_str(), verified.bundle_checked),
            ("new", false)
        );
        assert_eq!(verified.claims, claims());
        let doc = bundle_document();
        assert!(
            verify_passport(&jws, &set, Some(doc.as_bytes()))
                .unwrap()
                .bundle_checked
        );
        // The bundle member alone, pretty-printed, is the same content.
        let pretty = serde_json::to_string_pretty(&results()).unwrap();
        assert!(verify_passport(&jws, &set, Some(pretty.as_bytes())).is_ok());
        // And the passport as the artifact document wraps it.
        let artifact = serde_json::json!({"scanId": "scan-1", "passport": jws}).to_string();
        assert!(verify_passport(&artifact, &set, None).is_ok());
    }

    /// Issue 17, item 7: bundles are RFC 8785; a passport says so in
    /// `bundleCanonicalization`, and one signed before (without the claim) is checked in
    /// the form of its day, so it still verifies.
    #[test]
    fn the_bundle_form_is_the_one_the_claims_record() {
        // Content on which the two forms differ: a number with a fraction of zero, and
        // names that UTF-8 and UTF-16 order differently.
        let bundle = r#"{"assets":[],"findings":[],"x":1.0,"\ufb33":1,"\ud83d\ude00":2}"#;
        let value: serde_json::Value = serde_json::from_str(bundle).unwrap();
        let jcs = BundleCanonicalization::Rfc8785.canonicalize(&value);
        let legacy = BundleCanonicalization::SortedKeys.canonicalize(&value);
        assert_ne!(jcs, legacy);
        assert_eq!(
            jcs,
            "{\"assets\":[],\"findings\":[],\"x\":1,\"\u{1f600}\":2,\"\u{fb33}\":1}"
        );
        let k = key(1, "k");
        let set = jwks(&[&k]);
        let mut new = claims();
        new.bundle_sha256 = crate::scan::sha256_hex(jcs.as_bytes());
        let mut old = claims();
        old.bundle_canonicalization = None;
        old.bundle_sha256 = crate::scan::sha256_hex(legacy.as_bytes());
        for claims in [&new, &old] {
            let jws = k.sign(claims);
            let verified = verify_passport(&jws, &set, Some(bundle.as_bytes())).unwrap();
            assert!(verified.bundle_checked);
        }
        // Each only in its own form.
        let mut crossed = old.clone();
        crossed.bundle_canonicalization = Some(BundleCanonicalization::Rfc8785);
        assert!(matches!(
            verify_passport(&k.sign(&crossed), &set, Some(bundle.as_bytes())),
            Err(PassportError::BundleMismatch { .. })
        ));
        // An older passport's JSON has no such claim.
        let signed = k.sign(&old);
        let payload = signed.split('.').nth(1).unwrap();
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert!(!payload.contains("bundleCanonicalization"), "{payload}");
    }

    #[test]
    fn any_altered_byte_of_the_passport_fails() {
        let k = key(1, "k");
        let jws = k.sign(&claims());
        let set = jwks(&[&k]);
        for i in 0..jws.len() {
            let mut bytes = jws.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let Ok(tampered) = String::from_utf8(bytes) else {
                continue;
            };
            if tampered == jws {
                continue;
            }
            assert!(
                verify_passport(&tampered, &set, None).is_err(),
                "byte {i} changed and it still verified"
            );
        }
    }

    #[test]
    fn altered_claims_are_a_bad_signature() {
        let k = key(1, "k");
        let jws = k.sign(&claims());
        let mut forged = claims();
        forged.counts.findings = 0;
        forged.scenario = crate::scan::Scenario::Compliance;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let parts: Vec<&str> = jws.split('.').collect();
        let spliced = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(
            verify_passport(&spliced, &jwks(&[&k]), None),
            Err(PassportError::BadSignature)
        );
    }

    #[test]
    fn another_key_with_the_same_kid_is_a_bad_signature() {
        let (signer, impostor) = (key(1, "k"), key(9, "k"));
        let jws = signer.sign(&claims());
        assert_eq!(
            verify_passport(&jws, &jwks(&[&impostor]), None),
            Err(PassportError::BadSignature)
        );
    }

    #[test]
    fn an_unknown_kid_is_named() {
        let (signer, other) = (key(1, "gone"), key(2, "current"));
        let jws = signer.sign(&claims());
        let err = verify_passport(&jws, &jwks(&[&other]), None).unwrap_err();
        assert_eq!(err, PassportError::UnknownKid { kid: "gone".into() });
        assert!(err.to_string().contains("\"gone\""), "{err}");
    }

    #[test]
    fn other_algorithms_are_refused_before_any_key_is_tried() {
        let k = key(1, "k");
        let set = jwks(&[&k]);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
        for alg in ["none", "HS256", "ES256", "RS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"k"}}"#));
            let jws = format!("{header}.{payload}.");
            assert_eq!(
                verify_passport(&jws, &set, None),
                Err(PassportError::WrongAlgorithm { found: alg.into() })
            );
        }
        // HS256 keyed with the public key (the classic confusion) never gets that far.
        let hs = jsonwebtoken::encode(
            &JwtHeader::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(k.public_x().as_bytes()),
        )
        .unwrap();
        assert!(matches!(
            verify_passport(&hs, &set, None),
            Err(PassportError::WrongAlgorithm { .. })
        ));
    }

    #[test]
    fn a_key_of_another_type_under_the_kid_is_a_wrong_algorithm() {
        let k = key(1, "k");
        let jws = k.sign(&claims());
        let set = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        assert!(matches!(
            verify_passport(&jws, set, None),
            Err(PassportError::WrongAlgorithm { .. })
        ));
    }

    #[test]
    fn an_altered_bundle_is_a_digest_mismatch() {
        let k = key(1, "k");
        let jws = k.sign(&claims());
        let set = jwks(&[&k]);
        let doc = bundle_document();
        let tampered = doc.replace("openssl", "opensst");
        match verify_passport(&jws, &set, Some(tampered.as_bytes())) {
            Err(PassportError::BundleMismatch { expected, actual }) => {
                assert_eq!(expected, claims().bundle_sha256);
                assert_ne!(actual, expected);
            }
            other => panic!("expected a digest mismatch, got {other:?}"),
        }
        let broken = doc.replacen('{', "[", 1);
        assert!(matches!(
            verify_passport(&jws, &set, Some(broken.as_bytes())),
            Err(PassportError::Malformed {
                input: Input::Bundle,
                ..
            })
        ));
    }

    #[test]
    fn malformed_inputs_say_which_and_why() {
        let k = key(1, "k");
        let jws = k.sign(&claims());
        let set = jwks(&[&k]);
        let cases: [(&str, &str, Input); 5] = [
            ("", &set, Input::Passport),
            ("a.b", &set, Input::Passport),
            ("!!!.e30.e30", &set, Input::Passport),
            (&jws, "not json", Input::Jwks),
            (&jws, r#"{"keys": "none"}"#, Input::Jwks),
        ];
        for (passport, keys, input) in cases {
            match verify_passport(passport, keys, None) {
                Err(PassportError::Malformed { input: found, .. }) => {
                    assert_eq!(found, input, "{passport:?} / {keys:?}")
                }
                other => panic!("{passport:?} / {keys:?}: {other:?}"),
            }
        }
        let no_kid = {
            let mut header = JwtHeader::new(Algorithm::EdDSA);
            header.kid = None;
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_ed_der(&k.pkcs8)).unwrap()
        };
        assert!(matches!(
            verify_passport(&no_kid, &set, None),
            Err(PassportError::Malformed {
                input: Input::Passport,
                ..
            })
        ));
    }

    #[test]
    fn a_well_signed_token_that_is_not_a_passport_is_refused() {
        let k = key(1, "k");
        let access = k.sign(&serde_json::json!({"iss": "fleetpass", "sub": "agent", "exp": 1}));
        assert!(matches!(
            verify_passport(&access, &jwks(&[&k]), None),
            Err(PassportError::Malformed {
                input: Input::Passport,
                ..
            })
        ));
        let mut other = claims();
        other.typ = "something-else".into();
        assert!(matches!(
            verify_passport(&k.sign(&other), &jwks(&[&k]), None),
            Err(PassportError::Malformed {
                input: Input::Passport,
                ..
            })
        ));
    }
}
