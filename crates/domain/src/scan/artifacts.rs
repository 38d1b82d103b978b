//! Typed pieces of a completed scan's artifacts: the bundle's [`Sha256Hex`] digest and
//! the passport as a compact [`Jws`], so neither crosses a port as a bare `String`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::value::ValueError;

/// Why artifacts could not be made from results that passed validation: neither can
/// happen with the types as they are, but a failure is reported, never papered over.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The results did not serialize to JSON.
    #[error("the results cannot be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The completion time has no RFC 3339 form (a year beyond 9999).
    #[error("the completion time cannot be written as RFC 3339: {0}")]
    Time(#[from] time::error::Format),
}

/// A SHA-256 digest in lowercase hex (64 characters), as bundles are named.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        Self(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A digest as stored or sent.
    ///
    /// # Errors
    /// `Format` unless it is 64 lowercase hex digits.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        if raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValueError::Format {
                expected: "64 lowercase hex digits",
            })
        }
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = ValueError;
    fn try_from(raw: String) -> Result<Self, ValueError> {
        Self::parse(&raw)
    }
}

impl From<Sha256Hex> for String {
    fn from(d: Sha256Hex) -> Self {
        d.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A JWS in compact serialization: three base64url segments joined by dots. Only its
/// shape is checked here; verifying it is `passport::verify`'s job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Jws(String);

impl Jws {
    /// A compact JWS as signed, stored or sent.
    ///
    /// # Errors
    /// `Format` unless it has the compact shape.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let segments: Vec<&str> = raw.split('.').collect();
        let base64url = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if segments.len() == 3
            && segments.iter().all(|s| base64url(s))
            && !segments[0].is_empty()
            && !segments[2].is_empty()
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValueError::Format {
                expected: "a compact JWS (three base64url segments joined by dots)",
            })
        }
    }

    /// The compact text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Jws {
    type Error = ValueError;
    fn try_from(raw: String) -> Result<Self, ValueError> {
        Self::parse(&raw)
    }
}

impl From<Jws> for String {
    fn from(j: Jws) -> Self {
        j.0
    }
}

impl fmt::Display for Jws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_64_lowercase_hex_digits() {
        let d = Sha256Hex::of(b"");
        assert_eq!(
            d.as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Sha256Hex::parse(d.as_str()), Ok(d.clone()));
        assert!(Sha256Hex::parse(&d.as_str().to_uppercase()).is_err());
        assert!(Sha256Hex::parse(&d.as_str()[1..]).is_err());
    }

    #[test]
    fn a_jws_has_the_compact_shape() {
        assert!(Jws::parse("eyJhbGciOiJFZERTQSJ9.e30.c2ln").is_ok());
        assert!(Jws::parse("eyJhbGciOiJFZERTQSJ9.e30").is_err());
        assert!(Jws::parse("a.b c.d").is_err());
        assert!(Jws::parse(".e30.c2ln").is_err());
    }
}
