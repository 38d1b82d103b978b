//! Fleetpass secrets: API tokens, enrollment tokens, share tokens and agent secrets.
//!
//! A secret reads `<prefix><body><checksum>`: a kind prefix (`fpk_`, …), 43 characters
//! of URL-safe base64 carrying 32 random bytes (256 bits), then 6 characters carrying
//! the CRC-32 of everything before them. The prefix lets secret scanners find leaked
//! secrets; the checksum lets us refuse a typo before any lookup. Only the SHA-256
//! digest is ever stored.
//!
//! NEVER change a prefix or the layout: secrets already handed out must keep parsing,
//! and scanners out in the world match on them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

/// The kinds of secret, each with its own prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// `fpk_`: a tenant API token.
    ApiToken,
    /// `fpe_`: a fleet enrollment token.
    Enrollment,
    /// `fps_`: a public share-link token.
    Share,
    /// `fpa_`: an agent's long-lived secret.
    Agent,
}

impl SecretKind {
    /// Every kind, for parsers that accept any.
    pub const ALL: [SecretKind; 4] = [Self::ApiToken, Self::Enrollment, Self::Share, Self::Agent];

    /// The prefix. Never change one.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::ApiToken => "fpk_",
            Self::Enrollment => "fpe_",
            Self::Share => "fps_",
            Self::Agent => "fpa_",
        }
    }

    /// What a user calls it: "API token", "enrollment token", "share token", "agent
    /// secret".
    pub const fn name(self) -> &'static str {
        match self {
            Self::ApiToken => "API token",
            Self::Enrollment => "enrollment token",
            Self::Share => "share token",
            Self::Agent => "agent secret",
        }
    }

    /// [`SecretKind::name`] with its article: "an API token", "a share token".
    pub const fn with_article(self) -> &'static str {
        match self {
            Self::ApiToken => "an API token",
            Self::Enrollment => "an enrollment token",
            Self::Share => "a share token",
            Self::Agent => "an agent secret",
        }
    }
}

const PREFIX_LEN: usize = 4;
const BODY_LEN: usize = 43; // 32 bytes, base64 without padding
const CHECKSUM_LEN: usize = 6; // 4 bytes, base64 without padding
/// The length of every Fleetpass secret.
pub const SECRET_LEN: usize = PREFIX_LEN + BODY_LEN + CHECKSUM_LEN;

/// The regular expression that matches every Fleetpass secret and nothing shorter,
/// for secret scanners (docs/SECURITY.md, "Secret scanning partners"): a prefix, 42
/// base64url characters and a 43rd that carries only the last 4 bits of the 32 random
/// bytes (so its low 2 bits are zero), then 5 checksum characters and a 6th that
/// carries only the last 2 bits of the CRC-32 (its low 4 bits are zero).
pub const SECRET_PATTERN: &str =
    "fp[keas]_[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048][A-Za-z0-9_-]{5}[AQgw]";

/// The documented test token: a well-formed API token whose body was chosen, not drawn
/// (it says what it is), so no Fleetpass server ever issues it and every report of it
/// is a `false_positive`. Scanner vendors use it to try their pattern and their
/// integration end to end.
pub const DOCUMENTED_TEST_TOKEN: &str = "fpk_FLEETPASS_TEST_TOKEN_NEVER_ISSUED_000000000C-Bysw";

/// A secret in plain text. Exists only between generation and the one response that
/// shows it, or between a request header and hashing. `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainSecret {
    kind: SecretKind,
    text: String,
}

/// Why a presented string is not a Fleetpass secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedSecret {
    /// It has none of the known prefixes.
    #[error("is not a Fleetpass secret (wrong prefix)")]
    Prefix,
    /// It is a well-formed Fleetpass secret of another kind than the one expected
    /// (an enrollment token sent as an API token).
    #[error(
        "is {}, not {} ({} starts with {}, {} with {})",
        found.with_article(), expected.with_article(),
        found.with_article(), found.prefix(), expected.with_article(), expected.prefix()
    )]
    WrongKind {
        /// The kind it is.
        found: SecretKind,
        /// The kind that was expected.
        expected: SecretKind,
    },
    /// It has a known prefix but not the right length or characters.
    #[error("is not a Fleetpass secret (wrong length or characters)")]
    Shape,
    /// The checksum does not match: a typo or a truncated copy.
    #[error("has a bad checksum (mistyped or truncated)")]
    Checksum,
}

impl MalformedSecret {
    /// The refusal of a secret presented as `expected`, as one sentence: "the API token
    /// has a bad checksum (…)", or for one of another kind "the secret is an enrollment
    /// token, not an API token (…)".
    pub fn refusal(self, expected: SecretKind) -> String {
        match self {
            Self::WrongKind { .. } => format!("the secret {self}"),
            _ => format!("the {} {self}", expected.name()),
        }
    }
}

fn checksum(head: &str) -> String {
    URL_SAFE_NO_PAD.encode(crc32fast::hash(head.as_bytes()).to_be_bytes())
}

impl PlainSecret {
    /// Builds a secret of `kind` from 32 random bytes drawn by the secret port.
    ///
    /// ```
    /// use fleetpass_domain::secret::{PlainSecret, SecretKind, SECRET_LEN};
    /// let secret = PlainSecret::from_random(SecretKind::Share, [0; 32]);
    /// assert!(secret.expose().starts_with("fps_"));
    /// assert_eq!(secret.expose().len(), SECRET_LEN);
    /// assert_eq!(secret.hint(), format!("fps_…{}", &secret.expose()[SECRET_LEN - 4..]));
    /// ```
    pub fn from_random(kind: SecretKind, random: [u8; 32]) -> Self {
        let head = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(random));
        let text = format!("{head}{}", checksum(&head));
        Self { kind, text }
    }

    /// Parses a presented secret of any kind, checking its shape and checksum.
    ///
    /// # Errors
    /// [`MalformedSecret`] saying what is wrong; nothing was looked up.
    ///
    /// # Examples
    /// ```
    /// use fleetpass_domain::secret::{MalformedSecret, PlainSecret, SecretKind};
    ///
    /// let issued = PlainSecret::from_random(SecretKind::ApiToken, [7; 32]);
    /// let text = issued.expose().to_owned();
    /// assert_eq!(PlainSecret::parse(&text).unwrap().kind(), SecretKind::ApiToken);
    ///
    /// // One mistyped character: the checksum refuses it before any lookup.
    /// let mut typo = text.clone().into_bytes();
    /// typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    /// let typo = String::from_utf8(typo).unwrap();
    /// assert_eq!(PlainSecret::parse(&typo), Err(MalformedSecret::Checksum));
    /// assert_eq!(PlainSecret::parse("ghp_notours"), Err(MalformedSecret::Prefix));
    /// // And it never prints itself.
    /// assert!(!format!("{issued:?} {issued}").contains(&text));
    /// ```
    pub fn parse(raw: &str) -> Result<Self, MalformedSecret> {
        let kind = SecretKind::ALL
            .into_iter()
            .find(|k| raw.starts_with(k.prefix()))
            .ok_or(MalformedSecret::Prefix)?;
        let well_formed = raw.len() == SECRET_LEN
            && raw[PREFIX_LEN..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(MalformedSecret::Shape);
        }
        let (head, sum) = raw.split_at(PREFIX_LEN + BODY_LEN);
        if checksum(head).as_bytes().ct_eq(sum.as_bytes()).into() {
            Ok(Self {
                kind,
                text: raw.to_owned(),
            })
        } else {
            Err(MalformedSecret::Checksum)
        }
    }

    /// Parses a presented secret that must be of `kind`.
    ///
    /// # Errors
    /// As [`PlainSecret::parse`], and `WrongKind` for a secret of another kind.
    ///
    /// ```
    /// use fleetpass_domain::secret::{MalformedSecret, PlainSecret, SecretKind};
    /// let enrollment = PlainSecret::from_random(SecretKind::Enrollment, [1; 32]);
    /// let refused = PlainSecret::parse_kind(enrollment.expose(), SecretKind::ApiToken).unwrap_err();
    /// assert_eq!(
    ///     refused.refusal(SecretKind::ApiToken),
    ///     "the secret is an enrollment token, not an API token (an enrollment token starts with fpe_, an API token with fpk_)"
    /// );
    /// ```
    pub fn parse_kind(raw: &str, kind: SecretKind) -> Result<Self, MalformedSecret> {
        let secret = Self::parse(raw)?;
        if secret.kind == kind {
            Ok(secret)
        } else {
            Err(MalformedSecret::WrongKind {
                found: secret.kind,
                expected: kind,
            })
        }
    }

    /// Its kind.
    pub fn kind(&self) -> SecretKind {
        self.kind
    }

    /// The plain text, for the one response that shows it. Name says it all.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The SHA-256 digest that is stored and looked up.
    pub fn digest(&self) -> SecretDigest {
        let d = ring::digest::digest(&ring::digest::SHA256, self.text.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        SecretDigest(out)
    }

    /// A non-secret hint for listings: the prefix and the last four characters.
    pub fn hint(&self) -> String {
        format!("{}…{}", self.kind.prefix(), &self.text[SECRET_LEN - 4..])
    }
}

impl fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainSecret({}…redacted)", self.kind.prefix())
    }
}

impl fmt::Display for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…redacted", self.kind.prefix())
    }
}

/// The SHA-256 digest of a secret: what stores keep and index.
#[derive(Clone, Copy)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    /// Rebuilds a digest read back from a store.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Rebuilds a digest from a byte slice; `None` unless it is 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The raw bytes, for storing.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Digests compare in constant time, so a lookup that ends in a comparison leaks
/// nothing about how many leading bytes matched.
impl PartialEq for SecretDigest {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for SecretDigest {}

impl std::hash::Hash for SecretDigest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretDigest({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: SecretKind) -> PlainSecret {
        PlainSecret::from_random(kind, [7u8; 32])
    }

    #[test]
    fn round_trips_every_kind() {
        for kind in SecretKind::ALL {
            let s = sample(kind);
            assert!(s.expose().starts_with(kind.prefix()));
            assert_eq!(s.expose().len(), SECRET_LEN);
            assert_eq!(PlainSecret::parse(s.expose()), Ok(s.clone()));
            assert_eq!(PlainSecret::parse_kind(s.expose(), kind), Ok(s));
        }
    }

    #[test]
    fn refuses_typos_and_foreign_strings() {
        let s = sample(SecretKind::ApiToken);
        let mut typo = s.expose().to_owned();
        let c = if typo.as_bytes()[10] == b'A' {
            "B"
        } else {
            "A"
        };
        typo.replace_range(10..11, c);
        assert_eq!(PlainSecret::parse(&typo), Err(MalformedSecret::Checksum));
        assert_eq!(
            PlainSecret::parse(&s.expose()[..SECRET_LEN - 1]),
            Err(MalformedSecret::Shape)
        );
        assert_eq!(PlainSecret::parse("ghp_abc"), Err(MalformedSecret::Prefix));
        assert_eq!(
            PlainSecret::parse_kind(s.expose(), SecretKind::Share),
            Err(MalformedSecret::WrongKind {
                found: SecretKind::ApiToken,
                expected: SecretKind::Share
            })
        );
    }

    #[test]
    fn never_prints_itself() {
        let s = sample(SecretKind::Agent);
        let body = &s.expose()[4..20];
        assert!(!format!("{s:?}").contains(body));
        assert!(!format!("{s}").contains(body));
        assert_eq!(s.hint(), format!("fpa_…{}", &s.expose()[SECRET_LEN - 4..]));
    }

    /// CRC-32 as docs/SECURITY.md states it (IEEE 802.3: reflected polynomial
    /// 0xEDB88320, initial value and final XOR 0xFFFFFFFF), bit by bit and apart from
    /// the crate the code uses, so the documented recipe is what the code does.
    fn documented_crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFF_u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// The documented recipe: the checksum is the last 6 characters, the URL-safe
    /// base64 (no padding) of the big-endian CRC-32 of the 47 characters before them.
    fn documented_checksum(secret: &str) -> String {
        let head = &secret[..SECRET_LEN - CHECKSUM_LEN];
        URL_SAFE_NO_PAD.encode(documented_crc32(head.as_bytes()).to_be_bytes())
    }

    #[test]
    fn the_documented_pattern_and_checksum_describe_every_secret() {
        assert_eq!(
            documented_crc32(b"123456789"),
            0xCBF4_3926,
            "the check value"
        );
        let pattern = regex::Regex::new(&format!("^{SECRET_PATTERN}$")).unwrap();
        // Bodies that reach every value of the last body character, and then some.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut bodies: Vec<[u8; 32]> = vec![[0; 32], [0xFF; 32]];
        for _ in 0..512 {
            let mut body = [0u8; 32];
            for b in &mut body {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state.to_le_bytes()[3];
            }
            bodies.push(body);
        }
        for kind in SecretKind::ALL {
            for body in &bodies {
                let secret = PlainSecret::from_random(kind, *body);
                let text = secret.expose();
                assert!(pattern.is_match(text), "{text}");
                assert_eq!(
                    &text[SECRET_LEN - CHECKSUM_LEN..],
                    documented_checksum(text)
                );
            }
        }
        // Not shorter, not longer, not another prefix.
        let one = PlainSecret::from_random(SecretKind::Share, [3; 32]);
        assert!(!pattern.is_match(&one.expose()[1..]));
        assert!(!pattern.is_match(&format!("{}A", one.expose())));
        assert!(!pattern.is_match(&one.expose().replacen("fps_", "fpx_", 1)));
    }

    #[test]
    fn the_documented_test_token_is_a_well_formed_api_token() {
        let parsed = PlainSecret::parse(DOCUMENTED_TEST_TOKEN).unwrap();
        assert_eq!(parsed.kind(), SecretKind::ApiToken);
        let pattern = regex::Regex::new(&format!("^{SECRET_PATTERN}$")).unwrap();
        assert!(pattern.is_match(DOCUMENTED_TEST_TOKEN));
        let docs = include_str!("../../../docs/SECURITY.md");
        assert!(docs.contains(DOCUMENTED_TEST_TOKEN), "SECURITY.md names it");
        assert!(
            docs.contains(SECRET_PATTERN),
            "SECURITY.md gives the pattern"
        );
    }

    #[test]
    fn digest_is_stable_and_distinct() {
        let a = sample(SecretKind::ApiToken);
        let b = PlainSecret::from_random(SecretKind::ApiToken, [8u8; 32]);
        assert_eq!(a.digest(), a.digest());
        assert_ne!(a.digest(), b.digest());
    }
}
