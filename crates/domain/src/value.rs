//! Validating constructors for bounded values, and the one error they all return.
//!
//! Every newtype that comes from outside (a name, a TTL, a limit) is built through a
//! constructor here or beside its entity, so an invalid value cannot exist past the
//! edge. The error says what is wrong *without* naming the field: the adapter that
//! knows the wire name (`expiresInDays`, `name`, …) prefixes it.

/// Why a raw value was refused. `Display` reads as the tail of a sentence whose subject
/// is the field: "`name` must be between 1 and 100 characters".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Text length (in characters) outside `min..=max`.
    #[error("must be between {min} and {max} characters")]
    Length {
        /// Smallest allowed length.
        min: usize,
        /// Largest allowed length.
        max: usize,
    },
    /// Number outside `min..=max`.
    #[error("must be between {min} and {max}")]
    Range {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// Text that does not have the required shape.
    #[error("must be {expected}")]
    Format {
        /// What the value should look like, as a phrase.
        expected: &'static str,
    },
    /// A value not among the allowed ones.
    #[error("must be one of: {allowed}")]
    OneOf {
        /// The allowed values, comma separated.
        allowed: &'static str,
    },
}

impl ValueError {
    /// A short suggestion for the caller on how to send a valid value.
    pub fn hint(&self) -> String {
        match self {
            Self::Length { min, max } => format!("Send between {min} and {max} characters."),
            Self::Range { min, max } => format!("Use a value from {min} to {max}."),
            Self::Format { expected } => format!("Send {expected}."),
            Self::OneOf { allowed } => format!("Use one of: {allowed}."),
        }
    }
}

/// The one rule every string the service keeps obeys: no NUL (U+0000). Neither store
/// can keep one (PostgreSQL's `text` and `jsonb` refuse it), so it is refused here,
/// where text enters the domain, and both stores see the same values. Names and other
/// [`bounded_text`] are stricter still (no control characters at all).
fn storable(raw: &str) -> Result<(), ValueError> {
    if raw.contains('\0') {
        return Err(ValueError::Format {
            expected: "text without NUL (U+0000) characters",
        });
    }
    Ok(())
}

/// Free text from outside — a host name as reported, a banner, a finding's detail:
/// any characters but NUL. Its length rules belong to the field that holds it.
///
/// Decoding one from the wire is strict: a NUL is refused with the [`ValueError`], so
/// a request body is refused naming the field, and a digest an agent computed over what
/// it sent is never of something the server altered. Building one in code never fails:
/// `From<&str>`/`From<String>` (and [`Text::lossy`]) replace each NUL with U+FFFD, which
/// is what an agent reporting a banner it read wants.
///
/// ```
/// use fleetpass_domain::value::Text;
/// assert_eq!(Text::new("SSH-2.0-OpenSSH_9.2\r\n").unwrap().as_str(), "SSH-2.0-OpenSSH_9.2\r\n");
/// assert!(Text::new("a\0b").is_err());
/// assert_eq!(Text::from("a\0b").as_str(), "a\u{FFFD}b");
/// assert!(serde_json::from_str::<Text>(r#""a\u0000b""#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Text(String);

impl Text {
    /// Checks `raw` against the rule of every stored string.
    ///
    /// # Errors
    /// `ValueError::Format` when `raw` holds a NUL.
    pub fn new(raw: impl Into<String>) -> Result<Self, ValueError> {
        let raw = raw.into();
        storable(&raw)?;
        Ok(Self(raw))
    }

    /// `raw` with every NUL replaced by U+FFFD.
    pub fn lossy(raw: &str) -> Self {
        Self(raw.replace('\0', "\u{FFFD}"))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its length in characters, as the field rules count it.
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }
}

impl From<&str> for Text {
    fn from(raw: &str) -> Self {
        Self::lossy(raw)
    }
}

impl From<String> for Text {
    fn from(raw: String) -> Self {
        if raw.contains('\0') {
            Self::lossy(&raw)
        } else {
            Self(raw)
        }
    }
}

impl FromIterator<char> for Text {
    fn from_iter<I: IntoIterator<Item = char>>(chars: I) -> Self {
        Self(
            chars
                .into_iter()
                .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
                .collect(),
        )
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

/// Read access only: a `Text` is built through its rule, never mutated in place.
impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks that `raw` has no control characters, at most `max` characters, and at least
/// `min` once trimmed; returns it trimmed. The length is bounded as sent (not after
/// trimming) so the rule is the OpenAPI document's `maxLength` exactly, and a control
/// character is named as such rather than as a length problem.
pub(crate) fn bounded_text(raw: &str, min: usize, max: usize) -> Result<String, ValueError> {
    // NUL is a control character, so this covers `storable` too.
    if raw.chars().any(char::is_control) {
        return Err(ValueError::Format {
            expected: "text without control characters",
        });
    }
    let trimmed = raw.trim();
    if trimmed.chars().count() < min || raw.chars().count() > max {
        return Err(ValueError::Length { min, max });
    }
    Ok(trimmed.to_owned())
}

/// Parses an RFC 3339 timestamp from a client into UTC. An instant that exists only
/// in its own offset (`9999-12-31T23:59:59-00:01` is in the year 10000 in UTC) is
/// refused like malformed text: every timestamp the service keeps is renderable in UTC.
///
/// ```
/// use fleetpass_domain::value::parse_timestamp;
/// let at = parse_timestamp("2026-11-22T11:15:00+01:00").unwrap();
/// assert_eq!(at.unix_timestamp(), 1_795_342_500); // 2026-11-22T10:15:00Z
/// assert_eq!(at.offset(), time::UtcOffset::UTC);
/// assert!(parse_timestamp("9999-12-31T23:59:59-00:01").is_err());
/// assert!(parse_timestamp("yesterday").is_err());
/// ```
///
/// # Errors
/// `ValueError::Format` for anything but an RFC 3339 timestamp of the years 1-9999 UTC.
pub fn parse_timestamp(raw: &str) -> Result<crate::Timestamp, ValueError> {
    crate::Timestamp::parse(raw, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|at| at.checked_to_offset(time::UtcOffset::UTC))
        .ok_or(ValueError::Format {
            expected: "an RFC 3339 timestamp, e.g. 2026-11-22T10:15:00Z",
        })
}

/// Checks that `raw` lies in `min..=max`.
pub(crate) fn bounded_int(raw: i64, min: i64, max: i64) -> Result<i64, ValueError> {
    if (min..=max).contains(&raw) {
        Ok(raw)
    } else {
        Err(ValueError::Range { min, max })
    }
}

/// Declares a text newtype with a validating `new`, `as_str` and `Display`.
macro_rules! text_newtype {
    ($(#[$meta:meta])* $name:ident, $min:expr, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Smallest length in characters.
            pub const MIN: usize = $min;
            /// Largest length in characters.
            pub const MAX: usize = $max;

            /// Validates and trims `raw`.
            pub fn new(raw: &str) -> Result<Self, $crate::value::ValueError> {
                $crate::value::bounded_text(raw, Self::MIN, Self::MAX).map(Self)
            }

            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use text_newtype;

/// Declares an integer newtype with an inclusive range, a validating `new` and `get`.
macro_rules! int_newtype {
    ($(#[$meta:meta])* $name:ident, $min:expr, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl $name {
            /// Smallest allowed value.
            pub const MIN: u32 = $min;
            /// Largest allowed value.
            pub const MAX: u32 = $max;

            /// Validates `raw`.
            pub fn new(raw: i64) -> Result<Self, $crate::value::ValueError> {
                $crate::value::bounded_int(raw, i64::from(Self::MIN), i64::from(Self::MAX))
                    .map(|v| Self(v as u32))
            }

            /// The largest value, always valid.
            pub const fn max() -> Self {
                Self(Self::MAX)
            }

            /// The validated number.
            pub fn get(self) -> u32 {
                self.0
            }
        }
    };
}
pub(crate) use int_newtype;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_edges() {
        assert_eq!(
            bounded_text("", 1, 3),
            Err(ValueError::Length { min: 1, max: 3 })
        );
        assert_eq!(
            bounded_text("   ", 1, 3),
            Err(ValueError::Length { min: 1, max: 3 })
        );
        assert_eq!(bounded_text(" a ", 1, 3).as_deref(), Ok("a"));
        assert_eq!(bounded_text("äöü", 1, 3).as_deref(), Ok("äöü"));
        assert!(bounded_text("abcd", 1, 3).is_err());
        assert_eq!(
            bounded_text("a\u{0}b", 1, 3),
            Err(ValueError::Format {
                expected: "text without control characters"
            })
        );
        assert!(bounded_text("a\n", 1, 3).is_err());
        assert!(
            bounded_text(" ab ", 1, 3).is_err(),
            "the length counts as sent"
        );
    }

    #[test]
    fn bounded_int_edges() {
        assert!(bounded_int(0, 1, 365).is_err());
        assert_eq!(bounded_int(1, 1, 365), Ok(1));
        assert_eq!(bounded_int(365, 1, 365), Ok(365));
        assert!(bounded_int(366, 1, 365).is_err());
    }

    #[test]
    fn messages_read_after_a_field_name() {
        let e = ValueError::Range { min: 1, max: 720 };
        assert_eq!(
            format!("expiresHours {e}"),
            "expiresHours must be between 1 and 720"
        );
        assert_eq!(e.hint(), "Use a value from 1 to 720.");
    }
}
