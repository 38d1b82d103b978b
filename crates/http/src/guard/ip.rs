//! The client's address: the socket peer, or, only when the peer is a configured
//! trusted proxy, the right-most address in `X-Forwarded-For` that is not itself a
//! trusted proxy. Anything a client writes into the header before the first trusted
//! hop is ignored, so a client cannot pick the address it is limited by.

use std::net::IpAddr;

use actix_web::http::header::HeaderValue;

/// One trusted network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`FLEETPASS_TRUSTED_PROXIES`).
/// Empty by default: then only the socket peer counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks
    /// (`10.0.0.0/8, 192.168.1.7, fd00::/8`).
    ///
    /// # Errors
    /// A message naming the entry that is not an address or network.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let bad = || format!("{entry:?} is not an IP address or CIDR network");
                let (addr, prefix) = match entry.split_once('/') {
                    Some((addr, prefix)) => (addr, Some(prefix)),
                    None => (entry, None),
                };
                let addr: IpAddr = addr.parse().map_err(|_| bad())?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix {
                    None => max,
                    Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
                };
                Ok(Cidr {
                    addr: canonical(addr),
                    prefix,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, as dual-stack sockets report IPv4
/// peers) as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5678`,
/// `[::1]:80`).
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// The client's address; `None` only when the socket has no peer address.
pub fn client_ip<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl Iterator<Item = &'a HeaderValue>,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = canonical(peer?);
    if !trusted.contains(peer) {
        return Some(peer);
    }
    // Several header lines are one list, in order.
    let hops: Vec<&str> = forwarded_for
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if trusted.contains(ip) => client = ip,
            Some(ip) => return Some(ip),
            // A trusted proxy passed on something that is not an address: the last
            // address we can vouch for is the best we know.
            None => return Some(client),
        }
    }
    Some(client)
}

/// The rate-limit identity of an address: IPv4 as is, IPv6 by its /64 (one subscriber
/// usually holds a whole /64, so single addresses would be free to rotate).
pub fn limit_key(ip: Option<IpAddr>) -> String {
    match ip.map(canonical) {
        Some(IpAddr::V6(v6)) => {
            let net = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
        Some(ip) => ip.to_string(),
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> Vec<HeaderValue> {
        values
            .iter()
            .map(|v| HeaderValue::from_str(v).unwrap())
            .collect()
    }

    #[test]
    fn parses_addresses_and_networks() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7 ,fd00::/8,").unwrap();
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("::ffff:10.1.2.3")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("fe80::1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in ["nope", "10.0.0.0/33", "::/129", "1.2.3.4/x"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_header_counts_only_behind_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let header = xff(&["6.6.6.6"]);
        assert_eq!(
            client_ip(Some(ip("1.2.3.4")), header.iter(), &none),
            Some(ip("1.2.3.4")),
            "an untrusted peer's header is ignored"
        );
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // The client forged a first entry; the proxy appended the real address.
        let header = xff(&["6.6.6.6, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), header.iter(), &proxies),
            Some(ip("203.0.113.9")),
            "the right-most untrusted hop wins"
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), std::iter::empty(), &proxies),
            Some(ip("10.0.0.1")),
            "no header: the proxy itself"
        );
        let header = xff(&["garbage, 10.0.0.3"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), header.iter(), &proxies),
            Some(ip("10.0.0.3"))
        );
        let header = xff(&["198.51.100.1:4711"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), header.iter(), &proxies),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(client_ip(None, std::iter::empty(), &proxies), None);
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        assert_eq!(
            limit_key(Some(ip("2001:db8:1:2:3:4:5:6"))),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            limit_key(Some(ip("2001:db8:1:2:ffff::1"))),
            "2001:db8:1:2::/64"
        );
        assert_eq!(limit_key(Some(ip("::ffff:1.2.3.4"))), "1.2.3.4");
        assert_eq!(limit_key(None), "unknown");
    }
}
