//! The hash chain over a tenant's audit log, its signed checkpoints and the offline
//! verification of an export, with no clock and no IO.
//!
//! Every event of a tenant has a `seq` (1, 2, 3, … with no gaps) and a digest
//! `SHA-256(prev ‖ JCS(body))`, where `prev` is the digest of the event before it (32
//! zero bytes for seq 1) and `body` is [`event_body`]: the event's stored fields as
//! canonical JSON (RFC 8785). Changing, removing, reordering or inserting an event
//! therefore breaks every digest after it, and a checkpoint (a JWS over the tenant, the
//! head's seq and digest, and the time) pins where the chain ended, so a cut tail shows
//! too.
//!
//! An export ([`verify_chain`] reads it) is NDJSON: `event` lines carry the body,
//! `redacted` lines (events outside the reader's environment scope) carry only the
//! digests. A redacted line's body cannot be checked; the chain still is, because the
//! next line's `prev` must be its digest.

use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AuditEvent;
use crate::identity::EnvScope;
use crate::passport::{PassportError, decode_part, verify_eddsa_jws};

/// The digest of one link of the chain (SHA-256).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainDigest([u8; 32]);

impl ChainDigest {
    /// The `prev` of a tenant's first event.
    pub const GENESIS: Self = Self([0; 32]);

    /// Wraps 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 lowercase or uppercase hex digits.
    pub fn parse_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }

    /// Wraps a stored digest, if it is 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The digest of the link after `prev` whose canonical body is `body_jcs`.
    pub fn next(prev: &Self, body_jcs: &str) -> Self {
        let mut input = Vec::with_capacity(32 + body_jcs.len());
        input.extend_from_slice(&prev.0);
        input.extend_from_slice(body_jcs.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, &input).as_ref());
        Self(out)
    }
}

impl std::fmt::Display for ChainDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for ChainDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainDigest({self})")
    }
}

impl Serialize for ChainDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChainDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::parse_hex(&text).ok_or_else(|| serde::de::Error::custom("not 64 hex digits"))
    }
}

/// Where one event sits in its tenant's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    /// Its position, 1-based per tenant.
    pub seq: u64,
    /// `SHA-256(prev ‖ JCS(body))`.
    pub digest: ChainDigest,
    /// The digest of the event before it ([`ChainDigest::GENESIS`] for seq 1).
    pub prev: ChainDigest,
}

impl ChainLink {
    /// The link `event` gets when it follows `head`.
    pub fn after(head: &ChainHead, event: &AuditEvent) -> Self {
        Self {
            seq: head.seq + 1,
            digest: ChainDigest::next(&head.digest, &crate::jcs::canonicalize(&event_body(event))),
            prev: head.digest,
        }
    }

    /// The head of a chain that ends with this link.
    pub const fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            digest: self.digest,
        }
    }
}

/// Where a tenant's chain ends: what the next event chains to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// The number of events (the last seq; 0 for an empty chain).
    pub seq: u64,
    /// The last digest ([`ChainDigest::GENESIS`] for an empty chain).
    pub digest: ChainDigest,
}

impl ChainHead {
    /// The head of a chain with no events.
    pub const EMPTY: Self = Self {
        seq: 0,
        digest: ChainDigest::GENESIS,
    };
}

/// The fields of `event` its digest covers, as the export shows them: `id`, `tenantId`,
/// `actor` (`{kind, id}`), `action`, `targetId`, `at` (RFC 3339, whole microseconds, as
/// the store keeps it), `details` and `environmentIds` (sorted; `null` for a
/// tenant-wide event). These names are part of the audit log's contract: changing one
/// would change every digest.
pub fn event_body(event: &AuditEvent) -> Value {
    let environment_ids = match &event.scope {
        EnvScope::All => Value::Null,
        EnvScope::Only(ids) => {
            let mut ids: Vec<String> = ids.iter().map(|id| id.as_uuid().to_string()).collect();
            ids.sort();
            json!(ids)
        }
    };
    json!({
        "id": event.id.as_uuid().to_string(),
        "tenantId": event.tenant_id.as_uuid().to_string(),
        "actor": {"kind": event.actor.kind(), "id": event.actor.id().map(|id| id.to_string())},
        "action": event.action.as_str(),
        "targetId": event.target_id.map(|id| id.to_string()),
        "at": rfc3339_micros(event.at),
        "details": event.details,
        "environmentIds": environment_ids,
    })
}

/// `at` in RFC 3339 with exactly six fractional digits, so that the same instant always
/// reads as the same text whichever store it came back from.
fn rfc3339_micros(at: crate::Timestamp) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// What a signed checkpoint attests: at `at`, the chain of `tenant_id` held `seq`
/// events and ended in `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointClaims {
    /// Always [`CheckpointClaims::TYPE`].
    pub typ: String,
    /// The tenant.
    pub tenant_id: String,
    /// The number of events (the head's seq; 0 for an empty chain).
    pub seq: u64,
    /// The head's digest ([`ChainDigest::GENESIS`] for an empty chain).
    pub head: ChainDigest,
    /// When it was signed (RFC 3339), from the caller's clock.
    pub at: String,
}

impl CheckpointClaims {
    /// The `typ` of an audit checkpoint, so that no other JWS of the same keys (a
    /// passport, an access token) passes as one.
    pub const TYPE: &'static str = "fleetpass-audit-checkpoint";

    /// The claims for `tenant`'s chain ending in `head` at `at`.
    pub fn new(tenant: crate::ids::TenantId, head: &ChainHead, at: crate::Timestamp) -> Self {
        Self {
            typ: Self::TYPE.to_owned(),
            tenant_id: tenant.as_uuid().to_string(),
            seq: head.seq,
            head: head.digest,
            at: rfc3339_micros(at),
        }
    }
}

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ExportLine {
    /// An event the reader may see, with its body.
    Event {
        /// Its link.
        #[serde(flatten)]
        link: ChainLink,
        /// [`event_body`].
        event: Value,
    },
    /// An event outside the reader's scope: its link only.
    Redacted {
        /// Its link.
        #[serde(flatten)]
        link: ChainLink,
    },
    /// The checkpoint that ends an export.
    Checkpoint {
        /// The compact JWS over [`CheckpointClaims`].
        jws: String,
    },
}

impl ExportLine {
    /// The line of `event` at `link`; its body only when `visible`.
    pub fn of(link: ChainLink, event: &AuditEvent, visible: bool) -> Self {
        if visible {
            Self::Event {
                link,
                event: event_body(event),
            }
        } else {
            Self::Redacted { link }
        }
    }
}

/// Why an export does not verify. Each variant is one tampering (or one unreadable
/// input) an auditor can act on; `Display` is a one-line reason.
///
/// How the cases are told apart, in the order they are checked: a line that is not
/// an export line is `Malformed`; a seq met twice is `Inserted`; a seq lower than the
/// one before it is `Reordered`; a seq that skips is `Deleted`; an event whose body
/// does not hash to its digest is `Changed`; a `prev` that is not the digest before it
/// is `Inserted` too (a forged line, or lines removed and the rest renumbered —
/// the data cannot tell which); then the checkpoint: fewer events than it counts is
/// `Truncated`, another head is `HeadMismatch`, and its signature gives `UnknownKey`
/// or `BadSignature`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A line is not an export line, or the export does not end in a checkpoint.
    #[error("malformed export at line {line}: {reason}")]
    Malformed {
        /// The 1-based line number (0: the export as a whole).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The body of the event at `seq` does not hash to its digest: it was changed.
    #[error("changed event: the body of seq {seq} does not hash to its digest")]
    Changed {
        /// The changed event.
        seq: u64,
    },
    /// A seq is missing: the events from `expected` up to `found` were removed.
    #[error("deleted event: expected seq {expected}, found seq {found}")]
    Deleted {
        /// The first seq missing.
        expected: u64,
        /// The seq found in its place.
        found: u64,
    },
    /// The seqs go down: events were moved.
    #[error("reordered events: seq {seq} comes after seq {after}")]
    Reordered {
        /// The seq out of place.
        seq: u64,
        /// The seq before it.
        after: u64,
    },
    /// A line that does not belong: its seq is taken, or its `prev` is not the digest
    /// of the event before it.
    #[error("inserted event at seq {seq}: it does not chain to the event before it")]
    Inserted {
        /// The seq of the line that does not belong.
        seq: u64,
    },
    /// The export ends before the checkpoint's head: its tail was cut.
    #[error(
        "truncated: the checkpoint counts {checkpoint_seq} events, the export ends at seq {last_seq}"
    )]
    Truncated {
        /// The checkpoint's seq.
        checkpoint_seq: u64,
        /// The export's last seq.
        last_seq: u64,
    },
    /// The export reaches the checkpoint's seq but ends in another digest, or holds
    /// events past it: the chain was rewritten.
    #[error(
        "head mismatch: the checkpoint attests seq {checkpoint_seq} with digest {expected}, the export has {actual} at seq {last_seq}"
    )]
    HeadMismatch {
        /// The checkpoint's seq.
        checkpoint_seq: u64,
        /// The checkpoint's head digest.
        expected: String,
        /// The export's last seq.
        last_seq: u64,
        /// The export's last digest.
        actual: String,
    },
    /// The checkpoint is of another tenant than the events.
    #[error("wrong tenant: the checkpoint is of tenant {checkpoint}, an event of tenant {event}")]
    WrongTenant {
        /// The checkpoint's tenant.
        checkpoint: String,
        /// The event's tenant.
        event: String,
    },
    /// No key of the JWKS has the checkpoint's `kid`: it was signed by another key.
    #[error("unknown key: the checkpoint is signed by kid {kid:?}, which the JWKS does not hold")]
    UnknownKey {
        /// The checkpoint's `kid`.
        kid: String,
    },
    /// The checkpoint's signature does not verify: it was altered or signed by another
    /// key under a known `kid`.
    #[error("bad signature: the checkpoint was altered or not signed by this key")]
    BadSignature,
    /// The checkpoint is not a valid JWS of the right algorithm and shape.
    #[error("bad checkpoint: {0}")]
    Checkpoint(String),
}

/// An export that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The checkpoint it ends with.
    pub checkpoint: CheckpointClaims,
    /// The `kid` that signed the checkpoint, when a JWKS was given (no JWKS: the
    /// signature was not checked).
    pub kid: Option<String>,
    /// The first seq of the export (`None`: no events).
    pub first_seq: Option<u64>,
    /// The `prev` of the first event: [`ChainDigest::GENESIS`] for an export from the
    /// start; otherwise the digest a resuming reader must already hold.
    pub anchor: ChainDigest,
    /// Events with their bodies checked.
    pub events: u64,
    /// Redacted events (chained, bodies not checkable).
    pub redacted: u64,
}

/// Verifies an export offline.
///
/// - `export`: the NDJSON of `GET /api/admin/audit-events/export`: `event` and
///   `redacted` lines in seq order, then one `checkpoint` line.
/// - `jwks`: the JSON Web Key Set of `GET /.well-known/jwks.json`; `None` checks the
///   chain against the checkpoint's claims without checking its signature.
///
/// An export that starts after seq 1 (from a cursor or a time) is anchored on its first
/// line's `prev`, returned as [`VerifiedChain::anchor`] for the reader to compare with
/// the last digest it holds. No clock is read.
///
/// # Errors
/// [`ChainError`] naming the first tampering found, in the order its docs give.
///
/// # Examples
/// ```
/// use fleetpass_domain::audit::chain::{ChainError, verify_chain};
///
/// // One event, then a line whose seq skips 2.
/// let zero = "0".repeat(64);
/// let a = "a".repeat(64);
/// let export = format!(
///     "{{\"type\":\"redacted\",\"seq\":1,\"digest\":\"{a}\",\"prev\":\"{zero}\"}}\n\
///      {{\"type\":\"redacted\",\"seq\":3,\"digest\":\"{a}\",\"prev\":\"{a}\"}}\n\
///      {{\"type\":\"checkpoint\",\"jws\":\"x.y.z\"}}\n"
/// );
/// let err = verify_chain(&export, None).unwrap_err();
/// assert_eq!(err, ChainError::Deleted { expected: 2, found: 3 });
/// assert_eq!(err.to_string(), "deleted event: expected seq 2, found seq 3");
/// ```
pub fn verify_chain(export: &str, jwks: Option<&str>) -> Result<VerifiedChain, ChainError> {
    let mut links: Vec<(ChainLink, Option<&Value>)> = Vec::new();
    let mut parsed: Vec<(usize, ExportLine)> = Vec::new();
    for (i, line) in export.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: ExportLine = serde_json::from_str(line).map_err(|e| ChainError::Malformed {
            line: i + 1,
            reason: e.to_string(),
        })?;
        parsed.push((i + 1, value));
    }
    let Some((last_line, ExportLine::Checkpoint { jws })) = parsed.pop() else {
        return Err(ChainError::Malformed {
            line: 0,
            reason: "an export ends with a checkpoint line".into(),
        });
    };
    for (line, value) in &parsed {
        match value {
            ExportLine::Event { link, event } => links.push((*link, Some(event))),
            ExportLine::Redacted { link } => links.push((*link, None)),
            ExportLine::Checkpoint { .. } => {
                return Err(ChainError::Malformed {
                    line: *line,
                    reason: "a checkpoint only ends an export".into(),
                });
            }
        }
    }

    // Order first: a swap would otherwise read as a deletion at its first line.
    let mut seen = std::collections::HashSet::new();
    for (link, _) in &links {
        if !seen.insert(link.seq) {
            return Err(ChainError::Inserted { seq: link.seq });
        }
    }
    for pair in links.windows(2) {
        if let [(a, _), (b, _)] = pair
            && b.seq < a.seq
        {
            return Err(ChainError::Reordered {
                seq: b.seq,
                after: a.seq,
            });
        }
    }

    let (claims, kid) = read_checkpoint(&jws, jwks, last_line)?;
    let mut before: Option<ChainLink> = None;
    let (mut events, mut redacted) = (0, 0);
    for (link, body) in &links {
        if let Some(b) = &before
            && link.seq != b.seq + 1
        {
            return Err(ChainError::Deleted {
                expected: b.seq + 1,
                found: link.seq,
            });
        }
        if before.is_none() && link.seq == 1 && link.prev != ChainDigest::GENESIS {
            return Err(ChainError::Inserted { seq: 1 });
        }
        match body {
            Some(body) => {
                let tenant = body.get("tenantId").and_then(Value::as_str).unwrap_or("");
                if tenant != claims.tenant_id {
                    return Err(ChainError::WrongTenant {
                        checkpoint: claims.tenant_id.clone(),
                        event: tenant.to_owned(),
                    });
                }
                if ChainDigest::next(&link.prev, &crate::jcs::canonicalize(body)) != link.digest {
                    return Err(ChainError::Changed { seq: link.seq });
                }
                events += 1;
            }
            None => redacted += 1,
        }
        if let Some(b) = &before
            && link.prev != b.digest
        {
            return Err(ChainError::Inserted { seq: link.seq });
        }
        before = Some(*link);
    }

    // An export with no events (a reader resuming at the head) proves only the checkpoint.
    if let Some(last) = before {
        if last.seq < claims.seq {
            return Err(ChainError::Truncated {
                checkpoint_seq: claims.seq,
                last_seq: last.seq,
            });
        }
        if last.seq != claims.seq || last.digest != claims.head {
            return Err(ChainError::HeadMismatch {
                checkpoint_seq: claims.seq,
                expected: claims.head.to_string(),
                last_seq: last.seq,
                actual: last.digest.to_string(),
            });
        }
    }
    Ok(VerifiedChain {
        first_seq: links.first().map(|(l, _)| l.seq),
        anchor: links.first().map_or(claims.head, |(l, _)| l.prev),
        checkpoint: claims,
        kid,
        events,
        redacted,
    })
}

/// The checkpoint's claims, its signature checked against `jwks` when one is given.
fn read_checkpoint(
    jws: &str,
    jwks: Option<&str>,
    line: usize,
) -> Result<(CheckpointClaims, Option<String>), ChainError> {
    let (payload, kid) = match jwks {
        Some(jwks) => {
            let (kid, payload) = verify_eddsa_jws(jws, jwks).map_err(|e| match e {
                PassportError::UnknownKid { kid } => ChainError::UnknownKey { kid },
                PassportError::BadSignature => ChainError::BadSignature,
                other => ChainError::Checkpoint(other.to_string()),
            })?;
            (payload, Some(kid))
        }
        None => match jws.split('.').collect::<Vec<_>>()[..] {
            [_, payload, _] => (payload, None),
            _ => {
                return Err(ChainError::Malformed {
                    line,
                    reason: "the checkpoint is not a compact JWS".into(),
                });
            }
        },
    };
    let claims: CheckpointClaims =
        decode_part(payload, "claims").map_err(|e| ChainError::Checkpoint(e.to_string()))?;
    if claims.typ != CheckpointClaims::TYPE {
        return Err(ChainError::Checkpoint(format!(
            "typ is {:?}, not an audit checkpoint",
            claims.typ
        )));
    }
    Ok((claims, kid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditAction, AuditActor};
    use crate::ids::{AuditEventId, TenantId};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use uuid::Uuid;

    const PKCS8_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];

    fn pkcs8(seed: u8) -> Vec<u8> {
        let mut k = PKCS8_PREFIX.to_vec();
        k.extend_from_slice(&[seed; 32]);
        k
    }

    fn sign(seed: u8, kid: &str, claims: &CheckpointClaims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&pkcs8(seed))).unwrap()
    }

    fn jwks(seed: u8, kid: &str) -> String {
        use ring::signature::KeyPair as _;
        let pair =
            ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8(seed)).unwrap();
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid, "x": x}]})
            .to_string()
    }

    fn tenant() -> TenantId {
        TenantId::from_uuid(Uuid::from_u128(7))
    }

    fn event(n: u128) -> AuditEvent {
        AuditEvent {
            id: AuditEventId::from_uuid(Uuid::from_u128(n)),
            tenant_id: tenant(),
            actor: AuditActor::System,
            action: AuditAction::FleetCreated,
            target_id: None,
            at: time::macros::datetime!(2026-12-07 10:00:00.123456 UTC),
            details: json!({"name": format!("fleet {n}"), "n": n as u64}),
            scope: EnvScope::All,
        }
    }

    /// An export of `n` events (every third redacted), its lines without the checkpoint.
    fn lines(n: u128) -> (Vec<String>, ChainHead) {
        let mut head = ChainHead::EMPTY;
        let mut out = Vec::new();
        for i in 1..=n {
            let e = event(i);
            let link = ChainLink::after(&head, &e);
            out.push(serde_json::to_string(&ExportLine::of(link, &e, i % 3 != 0)).unwrap());
            head = link.head();
        }
        (out, head)
    }

    fn with_checkpoint(lines: &[String], head: &ChainHead, seed: u8) -> String {
        let claims = CheckpointClaims::new(
            tenant(),
            head,
            time::macros::datetime!(2026-12-07 11:00 UTC),
        );
        let jws = sign(seed, "k1", &claims);
        let mut text = lines.join("\n");
        text.push('\n');
        text.push_str(&serde_json::to_string(&ExportLine::Checkpoint { jws }).unwrap());
        text.push('\n');
        text
    }

    fn verify(lines: &[String], head: &ChainHead) -> Result<VerifiedChain, ChainError> {
        verify_chain(&with_checkpoint(lines, head, 1), Some(&jwks(1, "k1")))
    }

    #[test]
    fn a_genuine_export_verifies_with_its_redacted_lines() {
        let (lines, head) = lines(7);
        let v = verify(&lines, &head).unwrap();
        assert_eq!((v.first_seq, v.events, v.redacted), (Some(1), 5, 2));
        assert_eq!(v.anchor, ChainDigest::GENESIS);
        assert_eq!(v.checkpoint.seq, 7);
        assert_eq!(v.kid.as_deref(), Some("k1"));
        // A resumed export (from seq 4) is anchored on the digest of seq 3.
        let v = verify(&lines[3..], &head).unwrap();
        assert_eq!(v.first_seq, Some(4));
    }

    #[test]
    fn an_empty_chain_verifies_against_an_empty_checkpoint() {
        assert_eq!(verify(&[], &ChainHead::EMPTY).unwrap().events, 0);
    }

    #[test]
    fn each_tampering_has_its_own_error() {
        let (lines, head) = lines(6);
        let head = &head;

        let mut changed = lines.clone();
        changed[1] = changed[1].replace("fleet 2", "fleet 9");
        assert_eq!(verify(&changed, head), Err(ChainError::Changed { seq: 2 }));

        let mut deleted = lines.clone();
        deleted.remove(3);
        assert_eq!(
            verify(&deleted, head),
            Err(ChainError::Deleted {
                expected: 4,
                found: 5
            })
        );

        let mut reordered = lines.clone();
        reordered.swap(1, 3);
        assert_eq!(
            verify(&reordered, head),
            Err(ChainError::Reordered { seq: 3, after: 4 })
        );

        let mut inserted = lines.clone();
        inserted.insert(2, lines[1].replace("fleet 2", "fleet 22"));
        assert_eq!(
            verify(&inserted, head),
            Err(ChainError::Inserted { seq: 2 })
        );

        // Seq 3 removed and the rest renumbered: seq 4's line, now seq 3, names the
        // digest of the removed event as its prev.
        let mut renumbered = lines[..2].to_vec();
        for (i, line) in lines[3..].iter().enumerate() {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["seq"] = json!(3 + i as u64);
            renumbered.push(v.to_string());
        }
        assert_eq!(
            verify(&renumbered, head),
            Err(ChainError::Inserted { seq: 3 })
        );

        assert_eq!(
            verify(&lines[..4], head),
            Err(ChainError::Truncated {
                checkpoint_seq: 6,
                last_seq: 4
            })
        );

        let other = with_checkpoint(&lines, head, 2);
        assert_eq!(
            verify_chain(&other, Some(&jwks(1, "k1"))),
            Err(ChainError::BadSignature)
        );
        assert_eq!(
            verify_chain(&with_checkpoint(&lines, head, 1), Some(&jwks(1, "k2"))),
            Err(ChainError::UnknownKey { kid: "k1".into() })
        );
    }

    #[test]
    fn a_rewritten_chain_does_not_match_the_checkpoint() {
        let (lines, head) = lines(3);
        // Re-hash the whole chain after changing seq 1: each link is consistent, the
        // head is not the checkpoint's.
        let mut head2 = ChainHead::EMPTY;
        let mut rewritten = Vec::new();
        for i in 1..=3 {
            let mut e = event(i);
            if i == 1 {
                e.details = json!({"name": "rewritten"});
            }
            let link = ChainLink::after(&head2, &e);
            rewritten.push(serde_json::to_string(&ExportLine::of(link, &e, true)).unwrap());
            head2 = link.head();
        }
        assert!(matches!(
            verify(&rewritten, &head),
            Err(ChainError::HeadMismatch {
                checkpoint_seq: 3,
                ..
            })
        ));
        assert!(verify(&lines, &head).is_ok());
    }

    #[test]
    fn digests_read_back_from_hex() {
        let d = ChainDigest::next(&ChainDigest::GENESIS, "{}");
        assert_eq!(ChainDigest::parse_hex(&d.to_string()), Some(d));
        assert_eq!(ChainDigest::parse_hex("zz"), None);
    }
}
