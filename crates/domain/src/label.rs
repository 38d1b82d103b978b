//! Agent labels: key/value pairs that say what an agent is (`role=db`, `site=fra1`),
//! set at enrollment (by the enrollment token and by the agent) and changed by
//! operators, so that a scan can target the agents that carry them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::value::ValueError;

/// At most this many labels on one agent (or one enrollment token, or one selector).
pub const MAX_LABELS: usize = 32;

/// A label's key: 1-63 characters of `a-z`, `0-9`, `.`, `_`, `-` and `/`, beginning and
/// ending with a letter or digit (`role`, `example.com/tier`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LabelKey(String);

/// A label's value: 1-63 characters of `A-Z`, `a-z`, `0-9`, `.`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LabelValue(String);

/// [`LabelKey`]'s rule as a regular expression, unanchored so it composes (the OpenAPI
/// document's key and selector patterns are built from it); a test holds it to
/// [`LabelKey::new`].
pub const KEY_PATTERN: &str = "[a-z0-9](?:[a-z0-9._/-]{0,61}[a-z0-9])?";

/// [`LabelValue`]'s rule as a regular expression, unanchored; a test holds it to
/// [`LabelValue::new`].
pub const VALUE_PATTERN: &str = "[A-Za-z0-9._-]{1,63}";

const KEY_SHAPE: &str = "1-63 characters of a-z, 0-9, '.', '_', '-' or '/', beginning and ending with a letter or digit";
const VALUE_SHAPE: &str = "1-63 characters of A-Z, a-z, 0-9, '.', '_' or '-'";

impl LabelKey {
    /// Validates `raw`.
    ///
    /// # Errors
    /// `Format` for anything but the shape above.
    pub fn new(raw: &str) -> Result<Self, ValueError> {
        let inner = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let ok = (1..=63).contains(&raw.len())
            && raw.starts_with(inner)
            && raw.ends_with(inner)
            && raw
                .chars()
                .all(|c| inner(c) || matches!(c, '.' | '_' | '-' | '/'));
        ok.then(|| Self(raw.to_owned())).ok_or(ValueError::Format {
            expected: KEY_SHAPE,
        })
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl LabelValue {
    /// Validates `raw`.
    ///
    /// # Errors
    /// `Format` for anything but the shape above.
    pub fn new(raw: &str) -> Result<Self, ValueError> {
        let ok = (1..=63).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        ok.then(|| Self(raw.to_owned())).ok_or(ValueError::Format {
            expected: VALUE_SHAPE,
        })
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a set of labels was refused: which key, and what is wrong (`key` is `None` when
/// the set as a whole is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{error}", key.as_ref().map(|k| format!("label `{k}` ")).unwrap_or_default())]
pub struct LabelError {
    /// The key at fault, as sent.
    pub key: Option<String>,
    /// What is wrong with it.
    pub error: ValueError,
}

/// An agent's labels: at most [`MAX_LABELS`] key/value pairs, one value per key. On the
/// wire a JSON object of strings (`{"role": "db"}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Labels(BTreeMap<LabelKey, LabelValue>);

impl Labels {
    /// No labels.
    pub fn none() -> Self {
        Self::default()
    }

    /// Validates a map of raw keys and values.
    ///
    /// # Errors
    /// The first invalid key or value, or `Range` for more than [`MAX_LABELS`].
    ///
    /// ```
    /// use fleetpass_domain::label::Labels;
    /// let labels = Labels::parse([("role", "db"), ("site", "fra1")]).unwrap();
    /// assert_eq!(labels.get("role"), Some("db"));
    /// let bad = Labels::parse([("Role", "db")]).unwrap_err();
    /// assert_eq!(bad.key.as_deref(), Some("Role"));
    /// ```
    pub fn parse<K: AsRef<str>, V: AsRef<str>>(
        raw: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, LabelError> {
        let mut map = BTreeMap::new();
        for (k, v) in raw {
            let (k, v) = (k.as_ref(), v.as_ref());
            let at = |error| LabelError {
                key: Some(k.to_owned()),
                error,
            };
            map.insert(
                LabelKey::new(k).map_err(at)?,
                LabelValue::new(v).map_err(at)?,
            );
        }
        if map.len() > MAX_LABELS {
            return Err(LabelError {
                key: None,
                error: ValueError::Range {
                    min: 0,
                    max: MAX_LABELS as i64,
                },
            });
        }
        Ok(Self(map))
    }

    /// The value of `key`, if the labels have it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The pairs, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether every pair of `selector` is among these labels.
    pub fn matches(&self, selector: &LabelSelector) -> bool {
        selector.0.0.iter().all(|(k, v)| self.0.get(k) == Some(v))
    }

    /// These labels with `over`'s pairs laid on top (a key in both takes `over`'s
    /// value), still at most [`MAX_LABELS`].
    ///
    /// # Errors
    /// `Range` when the union has more than [`MAX_LABELS`] keys.
    pub fn overlaid(&self, over: &Labels) -> Result<Self, LabelError> {
        let mut map = self.0.clone();
        map.extend(over.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        if map.len() > MAX_LABELS {
            return Err(LabelError {
                key: None,
                error: ValueError::Range {
                    min: 0,
                    max: MAX_LABELS as i64,
                },
            });
        }
        Ok(Self(map))
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        Self::parse(raw).map_err(serde::de::Error::custom)
    }
}

/// A label selector: one to [`MAX_LABELS`] pairs, all of which an agent must carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct LabelSelector(Labels);

impl LabelSelector {
    /// A selector of `labels`.
    ///
    /// # Errors
    /// `Range` for no labels (a selector that selects everything is the `all` target).
    pub fn new(labels: Labels) -> Result<Self, LabelError> {
        if labels.is_empty() {
            return Err(LabelError {
                key: None,
                error: ValueError::Range {
                    min: 1,
                    max: MAX_LABELS as i64,
                },
            });
        }
        Ok(Self(labels))
    }

    /// The pairs it requires.
    pub fn labels(&self) -> &Labels {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_patterns_are_the_validators() {
        let anchored = |p: &str| regex::Regex::new(&format!("^{p}$")).unwrap();
        let (key, value) = (anchored(KEY_PATTERN), anchored(VALUE_PATTERN));
        let long = "a".repeat(63);
        let longer = "a".repeat(64);
        for sample in [
            "a",
            "db",
            "role",
            "example.com/tier",
            "a-b_c.d",
            "0",
            "9z",
            "-a",
            "a-",
            "A",
            "Db",
            "a b",
            "",
            "a/",
            "/a",
            "a..b",
            "é",
            "a\n",
            long.as_str(),
            longer.as_str(),
            "UPPER",
            "x.y-z_1",
        ] {
            assert_eq!(
                key.is_match(sample),
                LabelKey::new(sample).is_ok(),
                "key {sample:?}"
            );
            assert_eq!(
                value.is_match(sample),
                LabelValue::new(sample).is_ok(),
                "value {sample:?}"
            );
        }
    }

    #[test]
    fn keys_and_values_have_one_shape() {
        for ok in ["a", "role", "example.com/tier", "a-b_c.d", &"k".repeat(63)] {
            assert!(LabelKey::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Role", "a b", "ä", &"k".repeat(64)] {
            assert!(LabelKey::new(bad).is_err(), "{bad}");
        }
        for ok in ["db", "DB-1.2_x", &"v".repeat(63)] {
            assert!(LabelValue::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "a b", &"v".repeat(64)] {
            assert!(LabelValue::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn at_most_32_and_selectors_match_every_pair() {
        let many: Vec<_> = (0..33).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert!(Labels::parse(many[..32].to_vec()).is_ok());
        assert!(Labels::parse(many.clone()).unwrap_err().key.is_none());
        let agent = Labels::parse([("role", "db"), ("site", "fra1")]).unwrap();
        let sel = |pairs: &[(&str, &str)]| {
            LabelSelector::new(Labels::parse(pairs.iter().copied()).unwrap()).unwrap()
        };
        assert!(agent.matches(&sel(&[("role", "db")])));
        assert!(agent.matches(&sel(&[("role", "db"), ("site", "fra1")])));
        assert!(!agent.matches(&sel(&[("role", "db"), ("site", "ams1")])));
        assert!(!agent.matches(&sel(&[("tier", "1")])));
        assert!(LabelSelector::new(Labels::none()).is_err());
        let big = Labels::parse(many[..32].to_vec()).unwrap();
        assert!(big.overlaid(&agent).is_err(), "34 keys");
        assert_eq!(
            agent
                .overlaid(&Labels::parse([("role", "web")]).unwrap())
                .unwrap()
                .get("role"),
            Some("web")
        );
    }

    #[test]
    fn the_wire_form_is_an_object_of_strings() {
        let labels: Labels = serde_json::from_str(r#"{"role":"db"}"#).unwrap();
        assert_eq!(serde_json::to_string(&labels).unwrap(), r#"{"role":"db"}"#);
        let err = serde_json::from_str::<Labels>(r#"{"Role":"db"}"#).unwrap_err();
        assert!(err.to_string().contains("label `Role` must be"), "{err}");
    }
}
