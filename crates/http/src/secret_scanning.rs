//! The keys a secret-scanning partner signs its reports with (GitHub's key set, from
//! `https://api.github.com/meta/public_keys/secret_scanning`), parsed once at start,
//! and the check of a report's signature against them.
//!
//! A report is signed with ECDSA P-256 over SHA-256 of the raw body bytes; the
//! `GITHUB-PUBLIC-KEY-IDENTIFIER` header names the key, `GITHUB-PUBLIC-KEY-SIGNATURE`
//! carries the base64 of the ASN.1 DER signature.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::Deserialize;

/// The header naming the key a report was signed with.
pub const KEY_ID_HEADER: &str = "GITHUB-PUBLIC-KEY-IDENTIFIER";
/// The header carrying the report's signature (base64 of ASN.1 DER).
pub const SIGNATURE_HEADER: &str = "GITHUB-PUBLIC-KEY-SIGNATURE";

/// The verifying keys of a partner's key set, by identifier. Every key of the set is
/// kept, current or not: a report signed just before a rotation still verifies.
/// Cloning shares the keys.
#[derive(Clone)]
pub struct PartnerKeys(Arc<BTreeMap<String, VerifyingKey>>);

/// Why a key set was refused at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    /// Not the key-set JSON at all.
    #[error(
        "is not a secret-scanning key set ({0}); expected {{\"public_keys\":[{{\"key_identifier\":…,\"key\":\"-----BEGIN PUBLIC KEY-----…\"}}]}}"
    )]
    Json(String),
    /// The set names no key.
    #[error("names no key: public_keys is empty")]
    Empty,
    /// Two keys share an identifier, so a report could not say which it means.
    #[error("names the key identifier {0:?} twice")]
    Duplicate(String),
    /// A key is not a PEM P-256 public key.
    #[error("key {id:?} is not a PEM P-256 public key (SubjectPublicKeyInfo): {reason}")]
    Key {
        /// The key's identifier.
        id: String,
        /// What the parser said.
        reason: String,
    },
}

/// Why a report's signature was refused; each reads after "the report".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefusal {
    /// A header is absent (or not text).
    #[error("is not signed: the {0} header is missing")]
    Missing(&'static str),
    /// The key identifier is none of the configured keys.
    #[error("names a key this server does not know in {KEY_ID_HEADER}")]
    UnknownKey,
    /// The signature header is not base64 of a DER ECDSA signature.
    #[error("has a {SIGNATURE_HEADER} that is not base64 of a DER ECDSA signature")]
    Malformed,
    /// The signature does not verify over the body with the named key.
    #[error("signature does not verify over the body with the named key")]
    Mismatch,
}

/// The key-set JSON, as GitHub serves it; other fields are ignored, so a field GitHub
/// adds later does not stop a server from starting.
#[derive(Deserialize)]
struct KeySet {
    public_keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
}

impl PartnerKeys {
    /// Parses a key set (`{"public_keys":[{"key_identifier":…,"key":"-----BEGIN PUBLIC
    /// KEY-----…","is_current":true}]}`).
    ///
    /// # Errors
    /// [`KeySetError`] saying what is wrong with it.
    pub fn parse(json: &str) -> Result<Self, KeySetError> {
        let set: KeySet =
            serde_json::from_str(json).map_err(|e| KeySetError::Json(e.to_string()))?;
        if set.public_keys.is_empty() {
            return Err(KeySetError::Empty);
        }
        let mut keys = BTreeMap::new();
        for entry in set.public_keys {
            let key = VerifyingKey::from_public_key_pem(entry.key.trim()).map_err(|e| {
                KeySetError::Key {
                    id: entry.key_identifier.clone(),
                    reason: e.to_string(),
                }
            })?;
            if keys.insert(entry.key_identifier.clone(), key).is_some() {
                return Err(KeySetError::Duplicate(entry.key_identifier));
            }
        }
        Ok(Self(Arc::new(keys)))
    }

    /// Checks that `signature` (the header's base64 text) is the signature of `body`
    /// by the key named `key_id`.
    ///
    /// # Errors
    /// [`SignatureRefusal`] saying which check failed.
    pub fn verify(
        &self,
        key_id: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<(), SignatureRefusal> {
        let key = self.0.get(key_id).ok_or(SignatureRefusal::UnknownKey)?;
        let der = STANDARD
            .decode(signature.trim())
            .map_err(|_| SignatureRefusal::Malformed)?;
        let signature = Signature::from_der(&der).map_err(|_| SignatureRefusal::Malformed)?;
        key.verify(body, &signature)
            .map_err(|_| SignatureRefusal::Mismatch)
    }

    /// The identifiers of the keys, for the start-up log.
    pub fn identifiers(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// Names the keys only: the keys are public, but a log line needs no key material.
impl fmt::Debug for PartnerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PartnerKeys")
            .field(&self.identifiers().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePublicKey as _;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};

    /// A fresh key pair (ring signs, as a partner would) and its key set under `id`.
    fn key_pair(id: &str) -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let pem = VerifyingKey::from_sec1_bytes(pair.public_key().as_ref())
            .unwrap()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap();
        let set = serde_json::json!({"public_keys": [
            {"key_identifier": id, "key": pem, "is_current": true}
        ]});
        (pair, set.to_string())
    }

    fn sign(pair: &EcdsaKeyPair, body: &[u8]) -> String {
        let sig = pair.sign(&SystemRandom::new(), body).unwrap();
        STANDARD.encode(sig.as_ref())
    }

    #[test]
    fn a_signed_body_verifies_and_a_tampered_one_does_not() {
        let (pair, set) = key_pair("k1");
        let keys = PartnerKeys::parse(&set).unwrap();
        assert_eq!(keys.identifiers().collect::<Vec<_>>(), ["k1"]);
        // Several signatures, so both halves of `s` (ECDSA signatures are not
        // normalised by GitHub or by ring) are met.
        for n in 0..16 {
            let body = format!(r#"[{{"token":"t{n}","type":"x","url":"","source":"content"}}]"#);
            let signature = sign(&pair, body.as_bytes());
            assert_eq!(keys.verify("k1", &signature, body.as_bytes()), Ok(()));
            let tampered = body.replace("content", "commit");
            assert_eq!(
                keys.verify("k1", &signature, tampered.as_bytes()),
                Err(SignatureRefusal::Mismatch)
            );
        }
    }

    #[test]
    fn the_wrong_key_an_unknown_id_or_a_broken_signature_are_refused() {
        let (pair, set) = key_pair("k1");
        let (other, _) = key_pair("k2");
        let keys = PartnerKeys::parse(&set).unwrap();
        let body = b"[]";
        assert_eq!(
            keys.verify("k1", &sign(&other, body), body),
            Err(SignatureRefusal::Mismatch)
        );
        assert_eq!(
            keys.verify("k2", &sign(&pair, body), body),
            Err(SignatureRefusal::UnknownKey)
        );
        assert_eq!(
            keys.verify("k1", "not base64!", body),
            Err(SignatureRefusal::Malformed)
        );
        assert_eq!(
            keys.verify("k1", &STANDARD.encode(b"not DER"), body),
            Err(SignatureRefusal::Malformed)
        );
    }

    #[test]
    fn a_key_set_is_parsed_as_github_serves_it_and_refused_when_wrong() {
        let (_, one) = key_pair("a");
        let (_, two) = key_pair("b");
        let one: serde_json::Value = serde_json::from_str(&one).unwrap();
        let two: serde_json::Value = serde_json::from_str(&two).unwrap();
        let mut old = two["public_keys"][0].clone();
        old["is_current"] = serde_json::json!(false);
        let both = serde_json::json!({
            "public_keys": [one["public_keys"][0], old],
            "something_new": 1
        });
        let keys = PartnerKeys::parse(&both.to_string()).unwrap();
        assert_eq!(keys.identifiers().collect::<Vec<_>>(), ["a", "b"]);
        assert!(format!("{keys:?}").contains("\"a\""));

        assert!(matches!(
            PartnerKeys::parse("nope"),
            Err(KeySetError::Json(_))
        ));
        assert!(matches!(
            PartnerKeys::parse(r#"{"keys":[]}"#),
            Err(KeySetError::Json(_))
        ));
        assert_eq!(
            PartnerKeys::parse(r#"{"public_keys":[]}"#).unwrap_err(),
            KeySetError::Empty
        );
        let twice =
            serde_json::json!({"public_keys": [one["public_keys"][0], one["public_keys"][0]]});
        assert_eq!(
            PartnerKeys::parse(&twice.to_string()).unwrap_err(),
            KeySetError::Duplicate("a".to_owned())
        );
        let bad = r#"{"public_keys":[{"key_identifier":"x","key":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}]}"#;
        let e = PartnerKeys::parse(bad).unwrap_err();
        assert!(
            matches!(&e, KeySetError::Key { id, .. } if id == "x"),
            "{e}"
        );
    }
}
