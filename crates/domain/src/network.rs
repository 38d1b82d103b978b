//! Network restrictions on credentials: the `allowedCidrs` of API tokens and enrollment
//! tokens, and the one rule that decides whether a client address may use them.
//!
//! An empty list means "from anywhere", which is what every token made before the
//! setting existed has. A restricted credential used from an unknown address (no peer
//! address at all) is refused: a restriction must never fail open.

use std::net::IpAddr;

use ipnet::IpNet;

/// At most this many entries per credential.
pub const MAX_ALLOWED_CIDRS: usize = 32;

/// An IPv4 octet without leading zeros.
macro_rules! octet {
    () => {
        "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    };
}
/// A group of an IPv6 address.
macro_rules! group {
    () => {
        "[0-9A-Fa-f]{1,4}"
    };
}

/// Every entry `allowedCidrs` accepts, as a regular expression (the OpenAPI document
/// publishes it): an IPv4 address (dotted decimal, no leading zeros) or an IPv6 address
/// (RFC 4291 text, `::` compression, no embedded IPv4, no zone), optionally with a
/// prefix length (`/0`-`/32`, `/0`-`/128`, no leading zeros).
pub const ALLOWED_CIDR_PATTERN: &str = concat!(
    "^(?:",
    octet!(),
    "(?:\\.",
    octet!(),
    "){3}",
    "(?:/(?:3[0-2]|[12]?[0-9]))?",
    "|",
    "(?:",
    "(?:",
    group!(),
    ":){7}",
    group!(),
    "|(?:",
    group!(),
    ":){1,7}:",
    "|(?:",
    group!(),
    ":){1,6}:",
    group!(),
    "|(?:",
    group!(),
    ":){1,5}(?::",
    group!(),
    "){1,2}",
    "|(?:",
    group!(),
    ":){1,4}(?::",
    group!(),
    "){1,3}",
    "|(?:",
    group!(),
    ":){1,3}(?::",
    group!(),
    "){1,4}",
    "|(?:",
    group!(),
    ":){1,2}(?::",
    group!(),
    "){1,5}",
    "|",
    group!(),
    ":(?::",
    group!(),
    "){1,6}",
    "|:(?:(?::",
    group!(),
    "){1,7}|:)",
    ")",
    "(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?",
    ")$"
);

fn pattern() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        regex::Regex::new(ALLOWED_CIDR_PATTERN)
            .unwrap_or_else(|e| unreachable!("ALLOWED_CIDR_PATTERN is a valid expression: {e}"))
    })
}

/// The networks a credential may be used from; empty means anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedCidrs(Vec<IpNet>);

/// Why a list of networks is refused; `Display` reads after the field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// More than [`MAX_ALLOWED_CIDRS`] entries.
    #[error("must have at most {MAX_ALLOWED_CIDRS} entries")]
    TooMany,
    /// An entry that is neither an address nor a network.
    #[error("entry {index} ({entry:?}) is not an IPv4 or IPv6 address or CIDR network")]
    Unparsable {
        /// Its position, from 0.
        index: usize,
        /// The entry as sent.
        entry: String,
    },
}

impl AllowedCidrs {
    /// From anywhere: no restriction.
    pub fn anywhere() -> Self {
        Self::default()
    }

    /// Parses entries such as `10.0.0.0/8`, `192.0.2.7` (one address) or
    /// `2001:db8::/32`.
    ///
    /// # Errors
    /// The first entry that is not a network, or too many entries.
    ///
    /// # Examples
    /// ```
    /// use fleetpass_domain::network::AllowedCidrs;
    ///
    /// let office = AllowedCidrs::parse(["10.0.0.0/8", "2001:db8::/32"]).unwrap();
    /// assert!(office.allows(Some("10.1.2.3".parse().unwrap())));
    /// assert!(!office.allows(Some("192.0.2.1".parse().unwrap())));
    /// // Host bits are dropped: this is the network 10.0.0.0/8.
    /// assert_eq!(AllowedCidrs::parse(["10.1.2.3/8"]).unwrap().to_strings(), ["10.0.0.0/8"]);
    /// ```
    pub fn parse<I, S>(entries: I) -> Result<Self, CidrError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for (index, entry) in entries.into_iter().enumerate() {
            if index == MAX_ALLOWED_CIDRS {
                return Err(CidrError::TooMany);
            }
            let entry = entry.as_ref();
            let unparsable = || CidrError::Unparsable {
                index,
                entry: entry.to_owned(),
            };
            // Exactly the text `ALLOWED_CIDR_PATTERN` describes, so the OpenAPI document
            // and the server agree: the parsers alone take a few more spellings (`/08`,
            // an IPv4 tail inside IPv6).
            if !pattern().is_match(entry) {
                return Err(unparsable());
            }
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => entry
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| unparsable())?,
            };
            // `10.1.2.3/8` is the network `10.0.0.0/8`; reads show it that way.
            nets.push(net.trunc());
        }
        Ok(Self(nets))
    }

    /// Whether there is any restriction.
    pub fn is_restricted(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether a client at `client` may use the credential. An IPv4 address written
    /// as IPv6 (`::ffff:10.0.0.1`, as a dual-stack socket reports it) is the IPv4
    /// address.
    pub fn allows(&self, client: Option<IpAddr>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        client
            .map(|ip| ip.to_canonical())
            .is_some_and(|ip| self.0.iter().any(|net| net.contains(&ip)))
    }

    /// The entries in canonical form (`192.0.2.7/32`), as stored and shown.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl std::fmt::Display for AllowedCidrs {
    /// The entries joined by `, `, for messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_strings().join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn empty_allows_everyone_and_a_list_only_its_networks() {
        assert!(AllowedCidrs::anywhere().allows(None));
        let list = AllowedCidrs::parse(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]).unwrap();
        assert_eq!(
            list.to_strings(),
            ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
        );
        assert!(list.allows(ip("10.255.0.1")));
        assert!(list.allows(ip("192.0.2.7")));
        assert!(!list.allows(ip("192.0.2.8")));
        assert!(list.allows(ip("2001:db8::1")));
        assert!(!list.allows(ip("2001:db9::1")));
        // An IPv4 client seen through a dual-stack socket.
        assert!(list.allows(ip("::ffff:10.0.0.1")));
        // A restriction never fails open.
        assert!(!list.allows(None));
    }

    #[test]
    fn the_pattern_is_what_the_parsers_take() {
        for ok in [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "255.255.255.255",
            "192.0.2.7/32",
            "::",
            "::/0",
            "::1",
            "1::",
            "2001:db8::/32",
            "2001:DB8:0:0:0:0:0:1/128",
            "fe80::1:2",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
        ] {
            assert!(pattern().is_match(ok), "{ok}");
            assert!(AllowedCidrs::parse([ok]).is_ok(), "{ok}");
        }
        for refused in [
            "",
            " 10.0.0.0/8",
            "10.0.0.0/8 ",
            "010.0.0.0",
            "10.0.0.0/08",
            "10.0.0.0/33",
            "256.0.0.0",
            "10.0.0",
            "10.0.0.0.0",
            "::ffff:10.0.0.1",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "2001:db8::/129",
            "fe80::1%eth0",
            "12345::",
            "10.0.0.0/",
            "/8",
            "::/01",
        ] {
            assert!(!pattern().is_match(refused), "{refused}");
            assert!(AllowedCidrs::parse([refused]).is_err(), "{refused}");
        }
    }

    #[test]
    fn bad_entries_are_named() {
        assert_eq!(
            AllowedCidrs::parse(["10.0.0.0/8", "nope"]),
            Err(CidrError::Unparsable {
                index: 1,
                entry: "nope".into()
            })
        );
        assert!(AllowedCidrs::parse(["10.0.0.0/33"]).is_err());
        assert!(AllowedCidrs::parse([""]).is_err());
        let e = AllowedCidrs::parse(["10.0.0.0/8", " 10.0.0.0/8"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "entry 1 (\" 10.0.0.0/8\") is not an IPv4 or IPv6 address or CIDR network"
        );
        assert_eq!(
            AllowedCidrs::parse(["10.1.2.3/8", "2001:db8::1/32"])
                .unwrap()
                .to_strings(),
            ["10.0.0.0/8", "2001:db8::/32"],
            "host bits are dropped"
        );
        let many: Vec<String> = (0..33).map(|i| format!("10.0.{i}.0/24")).collect();
        assert_eq!(AllowedCidrs::parse(&many), Err(CidrError::TooMany));
        assert!(AllowedCidrs::parse(&many[..32]).is_ok());
    }
}
