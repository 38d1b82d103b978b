//! JOSE headers of the JWTs this product signs, and the one rule that tells them apart:
//! explicit typing (RFC 8725 §3.11, RFC 9068 §2.1), so an agent access token never
//! passes for a passport, nor a passport for an access token, whatever their claims say.
//!
//! Both kinds are EdDSA-signed with the same keys, so only the header's `typ` (and,
//! for tokens signed before typing, the claims) separates them. Every validator asks
//! [`JoseHeader::check`] for exactly one [`TokenType`]; it refuses any other algorithm,
//! any `crit` extension (this product implements none) and any other explicit type.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The only algorithm anything here is signed with.
pub const ALGORITHM: &str = "EdDSA";

/// The kinds of JWT the server signs, each with its own `typ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// An agent access token (RFC 9068): `typ: at+jwt`.
    AgentAccess,
    /// A scan passport: `typ: fleetpass-passport+jwt`.
    Passport,
}

impl TokenType {
    /// The `typ` header value this kind is signed with.
    pub const fn typ(self) -> &'static str {
        match self {
            Self::AgentAccess => "at+jwt",
            Self::Passport => "fleetpass-passport+jwt",
        }
    }

    /// Whether a `typ` value names this kind. Media types compare case-insensitively
    /// and may carry the `application/` prefix (RFC 7515 §4.1.9).
    fn matches(self, typ: &str) -> bool {
        let bare = typ
            .get(..12)
            .filter(|p| p.eq_ignore_ascii_case("application/"))
            .map_or(typ, |_| &typ[12..]);
        bare.eq_ignore_ascii_case(self.typ())
    }
}

/// How a header that passed [`JoseHeader::check`] was typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typing {
    /// With the expected kind's own `typ`.
    Explicit,
    /// Untyped (`typ` absent or the generic `JWT`): signed before explicit typing. The
    /// caller must tell the kind from the claims, as it did then.
    Legacy,
}

/// Why a header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderRejected {
    /// Not a compact JWS header (not base64url JSON with an `alg`).
    #[error("the JWS header is malformed")]
    Malformed,
    /// Another algorithm than EdDSA: `none`, HS256 and the like.
    #[error("the algorithm {0:?} is not the one this server signs with (EdDSA)")]
    WrongAlgorithm(String),
    /// A `crit` extension: none is implemented, so none may be relied upon.
    #[error("the JWS header marks extensions critical ({0}); none is supported")]
    UnknownCritical(String),
    /// Explicitly typed as another kind of token.
    #[error("the token is typed {found:?}, not {expected:?}")]
    WrongType {
        /// The `typ` found.
        found: String,
        /// The `typ` expected.
        expected: &'static str,
    },
}

/// A JOSE header, as far as the checks go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JoseHeader {
    /// The algorithm.
    pub alg: String,
    /// The key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// The explicit type, if any.
    #[serde(default)]
    pub typ: Option<String>,
    /// Critical extensions, kept raw: any value at all is refused.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

impl JoseHeader {
    /// Reads the header of a compact JWS.
    ///
    /// # Errors
    /// `Malformed` unless the first segment is base64url JSON with an `alg`.
    pub fn of(compact: &str) -> Result<Self, HeaderRejected> {
        let first = compact.split('.').next().unwrap_or_default();
        let bytes = URL_SAFE_NO_PAD
            .decode(first)
            .map_err(|_| HeaderRejected::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| HeaderRejected::Malformed)
    }

    /// Checks the header for a token of kind `expected`: EdDSA, no `crit`, and typed as
    /// `expected` or untyped.
    ///
    /// # Errors
    /// The first rule broken, in that order.
    ///
    /// # Examples
    /// ```
    /// use fleetpass_domain::jose::{HeaderRejected, JoseHeader, TokenType, Typing};
    /// use serde_json::json;
    ///
    /// let header = |v: serde_json::Value| serde_json::from_value::<JoseHeader>(v).unwrap();
    /// let access = header(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"}));
    /// assert_eq!(access.check(TokenType::AgentAccess), Ok(Typing::Explicit));
    /// // An access token offered as a passport is refused by its type alone.
    /// assert!(matches!(access.check(TokenType::Passport), Err(HeaderRejected::WrongType { .. })));
    /// let none = header(json!({"alg": "none"}));
    /// assert!(matches!(none.check(TokenType::Passport), Err(HeaderRejected::WrongAlgorithm(_))));
    /// ```
    pub fn check(&self, expected: TokenType) -> Result<Typing, HeaderRejected> {
        if self.alg != ALGORITHM {
            return Err(HeaderRejected::WrongAlgorithm(self.alg.clone()));
        }
        if let Some(crit) = &self.crit {
            return Err(HeaderRejected::UnknownCritical(crit.to_string()));
        }
        match self.typ.as_deref() {
            None => Ok(Typing::Legacy),
            Some(typ) if typ.eq_ignore_ascii_case("JWT") => Ok(Typing::Legacy),
            Some(typ) if expected.matches(typ) => Ok(Typing::Explicit),
            Some(typ) => Err(HeaderRejected::WrongType {
                found: typ.to_owned(),
                expected: expected.typ(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(v: serde_json::Value) -> JoseHeader {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn each_kind_accepts_its_own_type_and_refuses_the_other() {
        for (kind, other) in [
            (TokenType::AgentAccess, TokenType::Passport),
            (TokenType::Passport, TokenType::AgentAccess),
        ] {
            let own = header(json!({"alg": "EdDSA", "typ": kind.typ()}));
            assert_eq!(own.check(kind), Ok(Typing::Explicit));
            assert!(matches!(
                own.check(other),
                Err(HeaderRejected::WrongType { .. })
            ));
        }
        let spelled = header(json!({"alg": "EdDSA", "typ": "application/AT+JWT"}));
        assert_eq!(spelled.check(TokenType::AgentAccess), Ok(Typing::Explicit));
        let foreign = header(json!({"alg": "EdDSA", "typ": "dpop+jwt"}));
        assert!(foreign.check(TokenType::AgentAccess).is_err());
    }

    #[test]
    fn untyped_headers_are_legacy_for_the_claims_to_decide() {
        for typ in [json!(null), json!("JWT"), json!("jwt")] {
            let h = header(json!({"alg": "EdDSA", "typ": typ}));
            assert_eq!(h.check(TokenType::AgentAccess), Ok(Typing::Legacy));
        }
    }

    #[test]
    fn other_algorithms_and_critical_extensions_are_refused() {
        for alg in ["none", "HS256", "RS256", "ES256", "eddsa"] {
            let h = header(json!({"alg": alg, "typ": "at+jwt"}));
            assert!(matches!(
                h.check(TokenType::AgentAccess),
                Err(HeaderRejected::WrongAlgorithm(_))
            ));
        }
        let crit = header(json!({"alg": "EdDSA", "typ": "at+jwt", "crit": ["exp"], "exp": 1}));
        assert!(matches!(
            crit.check(TokenType::AgentAccess),
            Err(HeaderRejected::UnknownCritical(_))
        ));
    }

    #[test]
    fn a_header_is_read_from_the_compact_form() {
        let first = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","kid":"k","typ":"at+jwt"}"#);
        let h = JoseHeader::of(&format!("{first}.e30.sig")).unwrap();
        assert_eq!(h.kid.as_deref(), Some("k"));
        assert_eq!(JoseHeader::of("!!.e30.x"), Err(HeaderRejected::Malformed));
        let no_alg = URL_SAFE_NO_PAD.encode(br#"{"typ":"at+jwt"}"#);
        assert_eq!(JoseHeader::of(&no_alg), Err(HeaderRejected::Malformed));
    }
}
