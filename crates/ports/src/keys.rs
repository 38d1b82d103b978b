//! The server's signing keys: Ed25519 keys that sign agent access tokens (and, later,
//! scan passports), published as a JWKS so anyone can verify offline.
//!
//! Private keys live in the store *sealed* (AES-256-GCM) under the configured
//! [`MasterKey`], so a database dump alone signs nothing. The newest unretired key
//! signs; every unretired key verifies, so tokens minted before a rotation keep working
//! until their key is retired. A key ring reloads from the store when it meets a `kid`
//! it does not know (a replica rotated) and at most every [`RELOAD_EVERY`] otherwise.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fleetpass_domain::Timestamp;
use fleetpass_domain::fleet::{AgentClaims, ClaimsRejected};
use fleetpass_domain::ids::AgentId;
use fleetpass_domain::jose::{HeaderRejected, JoseHeader, TokenType, Typing};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use crate::store::StoredSigningKey;
use crate::{RepoError, SecretGen, Store};

/// How often a key ring reloads from the store on its own, so that every replica picks
/// up a rotation made elsewhere.
pub const RELOAD_EVERY: Duration = Duration::from_secs(60);

/// How soon a token with an unknown `kid` may trigger another reload.
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(5);

/// The 32-byte key that seals private keys (and other secrets at rest). `Debug` redacts.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// Wraps 32 bytes of key material.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses the configured form: 32 bytes as base64 (standard or URL-safe alphabet).
    ///
    /// # Errors
    /// A message saying what is wrong, for the configuration error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
            .map_err(|_| "must be 32 bytes encoded as base64".to_owned())?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be exactly 32 bytes (base64 of 32 bytes)".to_owned())?;
        Ok(Self(bytes))
    }

    fn key(&self) -> LessSafeKey {
        // AES-256 accepts any 32 bytes; this cannot fail.
        #[allow(clippy::expect_used)]
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("32-byte AES-256 key"))
    }

    /// Seals `plain` for `purpose` (bound as associated data, so a sealed value cannot be
    /// replayed as another). Output: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, secrets: &dyn SecretGen, purpose: &str, plain: &[u8]) -> Vec<u8> {
        let random = secrets.random_32();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&random[..NONCE_LEN]);
        let mut buf = plain.to_vec();
        // Sealing only fails for inputs larger than GCM allows (64 GiB).
        #[allow(clippy::expect_used)]
        self.key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut buf,
            )
            .expect("input within AES-GCM limits");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    /// Opens what [`MasterKey::seal`] sealed for `purpose`.
    ///
    /// # Errors
    /// When it was sealed under another key or purpose, or was altered.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::Unseal);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Unseal)?;
        let mut buf = body.to_vec();
        let plain = self
            .key()
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buf)
            .map_err(|_| KeyError::Unseal)?;
        Ok(plain.to_vec())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepoError),
    /// A sealed value does not open under the configured master key.
    #[error("a sealed value cannot be opened with the configured master key")]
    Unseal,
    /// A stored signing key in use does not open under the configured master key: the
    /// configured key is not the one the stored keys were sealed with. Nothing was written.
    #[error(
        "the configured master key (FLEETPASS_MASTER_KEY or FLEETPASS_MASTER_KEY_FILE) is not the one \
         signing key {kid} was sealed with, so it cannot open it; nothing was changed"
    )]
    WrongMasterKey {
        /// The key that does not open.
        kid: String,
    },
    /// A stored key is not a valid Ed25519 key.
    #[error("a stored signing key is corrupt")]
    Corrupt,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Why a presented access token was refused. Every variant is a 401 to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejected {
    /// Not a JWT, or not signed with EdDSA (`alg: none`, HS256, …).
    #[error("the access token is malformed or uses an algorithm this server does not issue")]
    Malformed,
    /// Explicitly typed as another kind of token (a passport is no access token).
    #[error("the token is not an agent access token (its typ says otherwise)")]
    WrongType,
    /// Signed by no key this server trusts (unknown or retired `kid`, or bad signature).
    #[error("the access token's signature does not verify")]
    BadSignature,
    /// Well signed, but not acceptable now.
    #[error("{0}")]
    Claims(#[from] ClaimsRejected),
}

const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn purpose(kid: &str) -> String {
    format!("fleetpass/signing-key/{kid}")
}

/// A new key from 32 random bytes (the secret port's), as PKCS#8 v1 (RFC 8410) and its
/// public half.
fn generate(secrets: &dyn SecretGen) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
    let mut pkcs8 = PKCS8_ED25519_PREFIX.to_vec();
    pkcs8.extend_from_slice(&secrets.random_32());
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).map_err(|_| KeyError::Corrupt)?;
    Ok((pkcs8, pair.public_key().as_ref().to_vec()))
}

/// The key id: derived from the public key, so it names the key wherever it travels.
fn kid_of(public: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public);
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12])
}

/// Whether `master` opens `key` (for listings; loading and adding check on their own).
pub fn opens(master: &MasterKey, key: &StoredSigningKey) -> bool {
    master
        .open(&purpose(&key.kid), &key.sealed_private_key)
        .is_ok()
}

/// Checks that `master` opens every unretired stored key, so that nothing is ever
/// sealed under a master key other than the one the keys in use were sealed with.
/// Retired keys are not checked: they never sign or verify again, which is what lets an
/// operator who lost the master key retire every key and start over with a new one.
///
/// # Errors
/// Store errors; `WrongMasterKey` naming the first key that does not open.
pub async fn check_master_key(store: &dyn Store, master: &MasterKey) -> Result<(), KeyError> {
    open_all(master, store.list_signing_keys().await?).map(drop)
}

/// Creates a new signing key, seals it and stores it; from then on it signs. Returns
/// its `kid`. Refuses, before writing anything, when `master` does not open the keys
/// already in use ([`check_master_key`]).
///
/// # Errors
/// Store errors; `WrongMasterKey` when `master` is not the key in use.
pub async fn add_key(
    store: &dyn Store,
    secrets: &dyn SecretGen,
    master: &MasterKey,
    now: Timestamp,
) -> Result<String, KeyError> {
    check_master_key(store, master).await?;
    let (pkcs8, public_key) = generate(secrets)?;
    let kid = kid_of(&public_key);
    let sealed_private_key = master.seal(secrets, &purpose(&kid), &pkcs8);
    store
        .add_signing_key(&StoredSigningKey {
            kid: kid.clone(),
            sealed_private_key,
            public_key,
            created_at: now,
            retired_at: None,
        })
        .await?;
    Ok(kid)
}

struct LoadedKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_key: Vec<u8>,
}

struct Loaded {
    /// Unretired keys, oldest first; the last one signs.
    keys: Vec<LoadedKey>,
    at: Instant,
}

/// The signing keys in use, loaded from the store, and who signs with them.
pub struct KeyRing {
    store: Arc<dyn Store>,
    master: MasterKey,
    /// The server's public URL: `iss` and `aud` of the access tokens it signs.
    issuer: String,
    loaded: RwLock<Loaded>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing")
    }
}

fn open_all(master: &MasterKey, stored: Vec<StoredSigningKey>) -> Result<Vec<LoadedKey>, KeyError> {
    stored
        .into_iter()
        .filter(|k| k.retired_at.is_none())
        .map(|k| {
            let pkcs8 = master
                .open(&purpose(&k.kid), &k.sealed_private_key)
                .map_err(|_| KeyError::WrongMasterKey { kid: k.kid.clone() })?;
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).map_err(|_| KeyError::Corrupt)?;
            Ok(LoadedKey {
                encoding: EncodingKey::from_ed_der(&pkcs8),
                decoding: DecodingKey::from_ed_der(&k.public_key),
                public_key: k.public_key,
                kid: k.kid,
            })
        })
        .collect()
}

impl KeyRing {
    /// Loads the keys, creating the first one when the store has no usable key.
    ///
    /// # Errors
    /// Store errors; `WrongMasterKey` when the master key does not open the stored keys
    /// (the server must not start then, and nothing has been written).
    pub async fn load(
        store: Arc<dyn Store>,
        secrets: &dyn SecretGen,
        master: MasterKey,
        issuer: &str,
        now: Timestamp,
    ) -> Result<Self, KeyError> {
        let mut keys = open_all(&master, store.list_signing_keys().await?)?;
        if keys.is_empty() {
            add_key(store.as_ref(), secrets, &master, now).await?;
            keys = open_all(&master, store.list_signing_keys().await?)?;
        }
        Ok(Self {
            store,
            master,
            issuer: issuer.to_owned(),
            loaded: RwLock::new(Loaded {
                keys,
                at: Instant::now(),
            }),
        })
    }

    /// Reloads the keys from the store.
    ///
    /// # Errors
    /// Store or unseal errors; the keys already loaded stay in use.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let keys = open_all(&self.master, self.store.list_signing_keys().await?)?;
        if !keys.is_empty() {
            *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Loaded {
                keys,
                at: Instant::now(),
            };
        }
        Ok(())
    }

    async fn reload_if_older(&self, age: Duration) {
        let stale = self
            .loaded
            .read()
            .map(|l| l.at.elapsed() >= age)
            .unwrap_or(true);
        if stale && let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "could not reload signing keys; keeping the loaded ones");
        }
    }

    /// The server's public URL, as its access tokens name it (`iss`, `aud`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs `claims` as a token of kind `kind` with the newest key: `kid` and the
    /// kind's explicit `typ` in the header.
    ///
    /// # Errors
    /// `Sign` when signing fails.
    pub async fn sign<T: serde::Serialize + Sync>(
        &self,
        claims: &T,
        kind: TokenType,
    ) -> Result<String, KeyError> {
        self.reload_if_older(RELOAD_EVERY).await;
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        let key = loaded.keys.last().ok_or(KeyError::Corrupt)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        header.typ = Some(kind.typ().to_owned());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }

    fn decode_with<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        kid: &str,
    ) -> Option<Result<T, TokenRejected>> {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        let key = loaded.keys.iter().find(|k| k.kid == kid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        // Time and audience are checked by the domain against the clock port, so tests
        // can pin the clock; here only the signature and the algorithm are checked.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Some(
            jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
                .map(|data| data.claims)
                .map_err(|_| TokenRejected::BadSignature),
        )
    }

    /// Verifies a JWT of kind `kind` and returns its claims and how its header was
    /// typed. Only EdDSA with a known, unretired `kid` passes, typed as `kind` or
    /// untyped (the claims decide then): `alg: none`, HS256 (even keyed with our public
    /// key), any `crit` extension and a token typed as another kind are refused before
    /// any key is tried.
    ///
    /// # Errors
    /// Why the token was refused.
    pub async fn verify<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        kind: TokenType,
    ) -> Result<(T, Typing), TokenRejected> {
        let header = JoseHeader::of(token).map_err(|_| TokenRejected::Malformed)?;
        let typing = header.check(kind).map_err(|e| match e {
            HeaderRejected::WrongType { .. } => TokenRejected::WrongType,
            _ => TokenRejected::Malformed,
        })?;
        let kid = header.kid.ok_or(TokenRejected::BadSignature)?;
        if let Some(result) = self.decode_with(token, &kid) {
            return result.map(|claims| (claims, typing));
        }
        // Perhaps another replica rotated: look once more after a reload (at most every
        // few seconds, so made-up kids cannot turn every request into a store read).
        self.reload_if_older(UNKNOWN_KID_RELOAD).await;
        self.decode_with(token, &kid)
            .unwrap_or(Err(TokenRejected::BadSignature))
            .map(|claims| (claims, typing))
    }

    /// Verifies an agent access token at `now` and returns the agent it names.
    ///
    /// # Errors
    /// Why the token was refused.
    pub async fn verify_agent_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<AgentId, TokenRejected> {
        let (claims, typing): (AgentClaims, _) = self.verify(token, TokenType::AgentAccess).await?;
        Ok(claims.check(typing, &self.issuer, now)?)
    }

    /// When an agent access token this ring signed expires (its signature checked;
    /// its time window not: the caller authenticated it already).
    ///
    /// # Errors
    /// Why the token is not one of ours.
    pub async fn agent_token_expires_at(&self, token: &str) -> Result<Timestamp, TokenRejected> {
        let (claims, _): (AgentClaims, _) = self.verify(token, TokenType::AgentAccess).await?;
        Ok(claims.expires_at())
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        let keys = loaded
            .keys
            .iter()
            .map(|k| Jwk {
                common: CommonParameters {
                    public_key_use: Some(PublicKeyUse::Signature),
                    key_algorithm: Some(KeyAlgorithm::EdDSA),
                    key_id: Some(k.kid.clone()),
                    ..CommonParameters::default()
                },
                algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: URL_SAFE_NO_PAD.encode(&k.public_key),
                }),
            })
            .collect();
        JwkSet { keys }
    }
}
