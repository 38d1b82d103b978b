//! Scans: what an operator asks a fleet to do, the rules that make a request feasible,
//! the lifecycle, the results an agent sends back and the artifacts made from them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::ids::{AgentId, EnvironmentId, FleetId, ScanId, TenantId};
use crate::value::{Text, ValueError};

/// What a scan looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Hosts on the network.
    Inventory,
    /// Open ports.
    Ports,
    /// Installed software.
    Software,
    /// Compliance checks.
    Compliance,
}

impl Scenario {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::Ports => "ports",
            Self::Software => "software",
            Self::Compliance => "compliance",
        }
    }

    /// Parses the wire name.
    ///
    /// # Errors
    /// `OneOf` for anything but the four scenarios.
    ///
    /// ```
    /// use fleetpass_domain::scan::Scenario;
    /// assert_eq!(Scenario::parse("software"), Ok(Scenario::Software));
    /// assert_eq!(
    ///     Scenario::parse("vuln").unwrap_err().to_string(),
    ///     "must be one of: inventory, ports, software, compliance"
    /// );
    /// ```
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        match raw {
            "inventory" => Ok(Self::Inventory),
            "ports" => Ok(Self::Ports),
            "software" => Ok(Self::Software),
            "compliance" => Ok(Self::Compliance),
            _ => Err(ValueError::OneOf {
                allowed: "inventory, ports, software, compliance",
            }),
        }
    }

    /// The shortest time the scenario can run in, in minutes.
    pub const fn min_minutes(self) -> u32 {
        match self {
            Self::Inventory => 5,
            Self::Software => 10,
            Self::Ports => 15,
            Self::Compliance => 30,
        }
    }
}

mod artifacts;
mod constraints;
mod fanout;

pub use artifacts::{ArtifactError, Jws, Sha256Hex};
pub(crate) use constraints::MAX_ASSETS;
pub use constraints::{Constraint, Infeasible, MaxAssets, MaxDurationMinutes, ScanConstraints};
pub use fanout::{
    Attributed, MAX_TARGET_AGENTS, Merge, Merged, PartFailure, PartStatus, Progress, ScanPart,
    ScanTarget, Target, TargetError,
};

/// Where a scan is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStatus {
    /// Waiting for an agent.
    Queued,
    /// Claimed by an agent.
    Running,
    /// Results received.
    Completed,
    /// Claimed, but no results within `maxDurationMinutes`.
    Failed,
    /// Never claimed before `notAfter`.
    Expired,
    /// Cancelled by an operator before it ended.
    Cancelled,
}

impl ScanStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 6] = [
        Self::Queued,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Expired,
        Self::Cancelled,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether it has ended (completed, failed, expired or cancelled).
    pub const fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    /// Parses the wire name.
    ///
    /// # Errors
    /// `OneOf` for an unknown status.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        match raw {
            "queued" => Ok(Self::Queued),
            "running" => Ok(Self::Running),
            "completed" => Ok(Self::Completed),
            "failed" => Ok(Self::Failed),
            "expired" => Ok(Self::Expired),
            "cancelled" => Ok(Self::Cancelled),
            _ => Err(ValueError::OneOf {
                allowed: "queued, running, completed, failed, expired, cancelled",
            }),
        }
    }
}

/// A scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Its id.
    pub id: ScanId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The fleet that runs it.
    pub fleet_id: FleetId,
    /// The fleet's environment, inherited.
    pub environment_id: EnvironmentId,
    /// What it looks for.
    pub scenario: Scenario,
    /// Its constraints.
    pub constraints: ScanConstraints,
    /// Which agents run it: one (`Any`), or one part per agent of a fan-out.
    pub target: Target,
    /// Where it is.
    pub status: ScanStatus,
    /// When it was requested.
    pub requested_at: Timestamp,
    /// The agent that claimed it (a scan of target `Any`; a fan-out scan's parts each
    /// name their own).
    pub claimed_by: Option<AgentId>,
    /// When it was claimed (a fan-out scan: when its first part was).
    pub claimed_at: Option<Timestamp>,
    /// When it completed, failed or expired.
    pub finished_at: Option<Timestamp>,
}

impl Scan {
    /// Whether an agent may claim it at `now`.
    pub fn claimable(&self, now: Timestamp) -> bool {
        self.status == ScanStatus::Queued
            && self.constraints.not_before.is_none_or(|nb| nb <= now)
            && self.constraints.not_after.is_none_or(|na| now < na)
    }

    /// The status the sweeper moves it to at `now`, if any: a running scan past its
    /// deadline fails; a queued one past `notAfter` expires.
    pub fn overdue(&self, now: Timestamp) -> Option<ScanStatus> {
        if self.target.fans_out() {
            // A fan-out scan ends with its parts (see `part_overdue`).
            return None;
        }
        match (self.status, self.claimed_at, self.constraints.not_after) {
            (ScanStatus::Running, Some(claimed), _)
                if now
                    >= claimed
                        + time::Duration::minutes(i64::from(
                            self.constraints.max_duration().get(),
                        )) =>
            {
                Some(ScanStatus::Failed)
            }
            (ScanStatus::Queued, _, Some(not_after)) if now >= not_after => {
                Some(ScanStatus::Expired)
            }
            _ => None,
        }
    }
}

impl Scan {
    /// Whether `part` of this fan-out scan is past its deadline at `now`, and why it
    /// fails then: a running part gets `maxDurationMinutes` from its claim; a queued
    /// part must be claimed by `notAfter`, or, without one, within `maxDurationMinutes`
    /// of the request (so an agent that is away never holds a fleet's scan open).
    pub fn part_overdue(&self, part: &ScanPart, now: Timestamp) -> Option<PartFailure> {
        let run = time::Duration::minutes(i64::from(self.constraints.max_duration().get()));
        match (part.status, part.claimed_at) {
            (PartStatus::Running, Some(claimed)) if now >= claimed + run => {
                Some(PartFailure::NoResults)
            }
            (PartStatus::Queued, _) if now >= self.claim_deadline() => {
                Some(PartFailure::NotClaimed)
            }
            _ => None,
        }
    }

    /// When a queued part of this fan-out scan stops being claimable.
    pub fn claim_deadline(&self) -> Timestamp {
        self.constraints.not_after.unwrap_or_else(|| {
            self.requested_at
                + time::Duration::minutes(i64::from(self.constraints.max_duration().get()))
        })
    }

    /// The status a fan-out scan ends in once no part is open: completed when any part
    /// completed, failed when none did.
    pub fn ends_as(progress: &Progress) -> ScanStatus {
        if progress.completed > 0 {
            ScanStatus::Completed
        } else {
            ScanStatus::Failed
        }
    }
}

/// A finding's severity, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Every severity, most severe first.
    pub const DESCENDING: [Severity; 5] = [
        Self::Critical,
        Self::High,
        Self::Medium,
        Self::Low,
        Self::Info,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// A piece of installed software.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Software {
    /// Its name.
    pub name: Text,
    /// Its version.
    pub version: Text,
}

/// The transport protocol of a [`Listener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (a socket in LISTEN).
    Tcp,
    /// UDP (a bound socket with no peer).
    Udp,
}

impl Protocol {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// At most this many listeners on one asset: every TCP and UDP port once, with room
/// for a few bound to more than one address.
pub const MAX_LISTENERS: usize = 65_536;

/// One socket an asset listens on: `{port, protocol, address, process?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// The local port, 1-65535.
    pub port: u32,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The local address as an IP address: `0.0.0.0` or `::` for every address,
    /// `127.0.0.1` or `::1` for loopback only.
    pub address: Text,
    /// The owning process's name, when the agent could see it (1-200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Text>,
}

impl Listener {
    /// Whether it listens on a loopback address (`127.0.0.0/8`, `::1`, or an IPv4
    /// loopback address mapped into IPv6), so nothing off the host can reach it. An
    /// address that is not an IP address (refused by validation) is not loopback.
    pub fn is_loopback(&self) -> bool {
        match self.address.as_str().parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => a.is_loopback(),
            Ok(IpAddr::V6(a)) => {
                a.is_loopback() || a.to_ipv4_mapped().is_some_and(|m| m.is_loopback())
            }
            Err(_) => false,
        }
    }

    /// The distinct ports, sorted, that `listeners` open to other hosts (any listener on
    /// the port has an address that is not loopback): what `openPorts` states.
    pub fn reachable_ports(listeners: &[Listener]) -> Vec<u32> {
        let ports: std::collections::BTreeSet<u32> = listeners
            .iter()
            .filter(|l| !l.is_loopback())
            .map(|l| l.port)
            .collect();
        ports.into_iter().collect()
    }
}

/// One asset a scan found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Asset {
    /// Host name: the name the agent was enrolled with, for the reference agent.
    pub hostname: Text,
    /// IP address.
    pub ip: Text,
    /// Operating system.
    pub os: Text,
    /// The ports other hosts can reach (a listener on a non-loopback or wildcard
    /// address). Agents that report no [`Listener`]s send every open port here, as
    /// before.
    #[serde(default)]
    pub open_ports: Vec<u32>,
    /// Installed software.
    #[serde(default)]
    pub software: Vec<Software>,
    /// Every listening socket, loopback ones included (at most [`MAX_LISTENERS`]).
    /// Absent when empty, so results without it keep their bundle bytes and digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
    /// The host's own name, when it differs in meaning from `hostname` (the reference
    /// agent states it always). Absent when unknown, for the same reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_hostname: Option<Text>,
}

impl Asset {
    /// The `(protocol, port)`s this asset listens on only on loopback addresses, sorted,
    /// each with the process of its first listener that names one.
    pub fn loopback_only(&self) -> Vec<LoopbackPort> {
        let mut by_port: BTreeMap<(Protocol, u32), (bool, Option<&Text>)> = BTreeMap::new();
        for l in &self.listeners {
            let entry = by_port.entry((l.protocol, l.port)).or_insert((true, None));
            entry.0 &= l.is_loopback();
            if entry.1.is_none() {
                entry.1 = l.process.as_ref();
            }
        }
        by_port
            .into_iter()
            .filter(|(_, (loopback, _))| *loopback)
            .map(|((protocol, port), (_, process))| LoopbackPort {
                port,
                protocol,
                process: process.cloned(),
            })
            .collect()
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// What.
    pub title: Text,
    /// On which asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_hostname: Option<Text>,
    /// More.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Text>,
}

/// What an agent sends back: the bundle's content.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanResults {
    /// The assets.
    #[serde(default)]
    pub assets: Vec<Asset>,
    /// The findings.
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// One invalid part of a result set: a JSON path and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidResult {
    /// Where, e.g. `assets[3].ip`.
    pub path: String,
    /// Why, read after the path.
    pub message: String,
}

fn text_ok(s: &Text, max: usize) -> bool {
    !s.as_str().trim().is_empty() && s.chars() <= max
}

impl ScanResults {
    /// Checks the results against the rules and the scan's `max_assets`: what the server
    /// checks before it accepts them, so an agent can check first.
    ///
    /// # Errors
    /// The first invalid part.
    ///
    /// # Examples
    /// ```
    /// use fleetpass_domain::scan::{Asset, MaxAssets, ScanResults};
    ///
    /// let host = |ip: &str| Asset {
    ///     hostname: "web-1".into(), ip: ip.into(), os: "Debian 12".into(),
    ///     open_ports: vec![443], software: vec![], listeners: vec![], os_hostname: None,
    /// };
    /// let results = ScanResults { assets: vec![host("10.0.0.7"), host("not-an-ip")], findings: vec![] };
    /// let invalid = results.validate(None).unwrap_err();
    /// assert_eq!((invalid.path.as_str(), invalid.message.as_str()), ("assets[1].ip", "must be an IPv4 or IPv6 address"));
    /// let over = results.validate(Some(MaxAssets::new(1).unwrap())).unwrap_err();
    /// assert_eq!(over.path, "assets");
    /// ```
    pub fn validate(&self, max_assets: Option<MaxAssets>) -> Result<(), InvalidResult> {
        let limit = max_assets.map_or(MAX_ASSETS, |m| m.get() as usize);
        let bad = |path: String, message: &str| {
            Err(InvalidResult {
                path,
                message: message.to_owned(),
            })
        };
        if self.assets.len() > limit {
            return bad(
                "assets".into(),
                &format!(
                    "has {} entries; at most {limit} are allowed",
                    self.assets.len()
                ),
            );
        }
        for (i, a) in self.assets.iter().enumerate() {
            if !text_ok(&a.hostname, 253) {
                return bad(format!("assets[{i}].hostname"), "must be 1-253 characters");
            }
            if a.ip.as_str().parse::<IpAddr>().is_err() {
                return bad(format!("assets[{i}].ip"), "must be an IPv4 or IPv6 address");
            }
            if a.os.chars() > 200 {
                return bad(format!("assets[{i}].os"), "must be at most 200 characters");
            }
            if let Some(j) = a.open_ports.iter().position(|p| !(1..=65_535).contains(p)) {
                return bad(
                    format!("assets[{i}].openPorts[{j}]"),
                    "must be a port from 1 to 65535",
                );
            }
            if let Some(j) = a
                .software
                .iter()
                .position(|s| !text_ok(&s.name, 200) || s.version.chars() > 100)
            {
                return bad(
                    format!("assets[{i}].software[{j}]"),
                    "needs a name of 1-200 and a version of at most 100 characters",
                );
            }
            if a.os_hostname.as_ref().is_some_and(|h| !text_ok(h, 253)) {
                return bad(
                    format!("assets[{i}].osHostname"),
                    "must be 1-253 characters",
                );
            }
            if a.listeners.len() > MAX_LISTENERS {
                return bad(
                    format!("assets[{i}].listeners"),
                    &format!(
                        "has {} entries; at most {MAX_LISTENERS} are allowed",
                        a.listeners.len()
                    ),
                );
            }
            for (j, l) in a.listeners.iter().enumerate() {
                let at = |field: &str| format!("assets[{i}].listeners[{j}].{field}");
                if !(1..=65_535).contains(&l.port) {
                    return bad(at("port"), "must be a port from 1 to 65535");
                }
                if l.address.as_str().parse::<IpAddr>().is_err() {
                    return bad(at("address"), "must be an IPv4 or IPv6 address");
                }
                if l.process.as_ref().is_some_and(|p| !text_ok(p, 200)) {
                    return bad(at("process"), "must be 1-200 characters");
                }
            }
        }
        for (i, f) in self.findings.iter().enumerate() {
            if !text_ok(&f.title, 500) {
                return bad(format!("findings[{i}].title"), "must be 1-500 characters");
            }
            if f.detail.as_ref().is_some_and(|d| d.chars() > 10_000) {
                return bad(
                    format!("findings[{i}].detail"),
                    "must be at most 10000 characters",
                );
            }
        }
        Ok(())
    }

    /// The bundle: the results in RFC 8785 canonical form ([`crate::jcs`]) and its
    /// SHA-256 in lowercase hex. Anyone can re-derive the bytes from the parsed JSON
    /// with any JCS implementation (docs/PASSPORTS.md has Python and `jq` ones), so the
    /// digest in a passport names exactly one bundle.
    ///
    /// # Errors
    /// `Serialize` should the results not serialize (they always do).
    pub fn bundle(&self) -> Result<(String, Sha256Hex), ArtifactError> {
        let json = crate::jcs::canonicalize(&serde_json::to_value(self)?);
        let digest = Sha256Hex::of(json.as_bytes());
        Ok((json, digest))
    }

    /// The counts a report and a passport state.
    pub fn counts(&self) -> Counts {
        let mut by_severity: BTreeMap<Severity, usize> =
            Severity::DESCENDING.iter().map(|s| (*s, 0)).collect();
        for f in &self.findings {
            *by_severity.entry(f.severity).or_default() += 1;
        }
        Counts {
            assets: self.assets.len(),
            open_ports: self.assets.iter().map(|a| a.open_ports.len()).sum(),
            software: self.assets.iter().map(|a| a.software.len()).sum(),
            findings: self.findings.len(),
            findings_by_severity: by_severity,
            listeners: self.assets.iter().map(|a| a.listeners.len()).sum(),
            loopback_only_ports: self.assets.iter().map(|a| a.loopback_only().len()).sum(),
        }
    }

    /// The report: counts, the ten most severe findings and the assets with
    /// loopback-only listeners.
    pub fn report(&self) -> Report {
        let mut top: Vec<Finding> = self.findings.clone();
        // Stable sort: among equals, the agent's order stands.
        top.sort_by_key(|f| std::cmp::Reverse(f.severity));
        top.truncate(10);
        let mut loopback_only = Vec::new();
        LoopbackOnly::collect(&mut loopback_only, &self.assets);
        Report {
            counts: self.counts(),
            top_findings: top,
            loopback_only,
        }
    }
}

/// At most this many assets in a report's `loopbackOnly` (the first ones, in bundle
/// order): a report stays small however large the fleet; the counts give the total.
pub const MAX_REPORTED_LOOPBACK_ASSETS: usize = 100;

/// A port an asset listens on only on loopback, as a report marks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopbackPort {
    /// The port.
    pub port: u32,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The owning process, when the agent saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Text>,
}

/// An asset of a report with the ports it listens on only on loopback: reachable from
/// the host itself, not from the network, so an auditor reads them apart from
/// `openPorts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoopbackOnly {
    /// The asset's host name.
    pub hostname: Text,
    /// Its loopback-only ports (`loopbackOnly: true` for each of them).
    pub ports: Vec<LoopbackPort>,
}

impl LoopbackOnly {
    /// Appends the assets of `assets` with loopback-only ports to `out`, up to
    /// [`MAX_REPORTED_LOOPBACK_ASSETS`] in all.
    pub(crate) fn collect(out: &mut Vec<LoopbackOnly>, assets: &[Asset]) {
        for a in assets {
            if out.len() >= MAX_REPORTED_LOOPBACK_ASSETS {
                return;
            }
            let ports = a.loopback_only();
            if !ports.is_empty() {
                out.push(LoopbackOnly {
                    hostname: a.hostname.clone(),
                    ports,
                });
            }
        }
    }
}

/// The SHA-256 of `bytes` in lowercase hex, as bundles and passports state it.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256Hex::of(bytes).into()
}

/// The canonical form of bundles before RFC 8785 ([`BundleCanonicalization::SortedKeys`]):
/// keys sorted by their UTF-8 bytes, no whitespace, numbers as serde_json writes them.
/// Kept so that passports signed then still verify; new bundles are RFC 8785.
pub(crate) fn legacy_canonical_json(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                legacy_canonical_json(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                legacy_canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Counts of a result set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Assets.
    pub assets: usize,
    /// Open ports, over all assets.
    pub open_ports: usize,
    /// Software entries, over all assets.
    pub software: usize,
    /// Findings.
    pub findings: usize,
    /// Findings per severity (every severity present, zero or not). Written with its
    /// keys in name order, as passports signed before it was typed had them.
    #[serde(serialize_with = "by_name")]
    pub findings_by_severity: BTreeMap<Severity, usize>,
    /// Listening sockets, over all assets. Absent when zero, so the counts of results
    /// without listeners (and the passports that state them) read as before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub listeners: usize,
    /// `(protocol, port)`s listened on only on loopback, over all assets; absent when
    /// zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub loopback_only_ports: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Serializes a severity map with its keys in name order (`critical`, `high`, `info`,
/// …) rather than severity order, so the JSON of counts is byte for byte what it was
/// when the map was keyed by name.
fn by_name<S: serde::Serializer>(
    map: &BTreeMap<Severity, usize>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let named: BTreeMap<&str, usize> = map.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    serde::Serialize::serialize(&named, serializer)
}

/// The summary of a completed scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The counts.
    pub counts: Counts,
    /// The most severe findings, at most ten.
    pub top_findings: Vec<Finding>,
    /// The assets with ports listened on only on loopback (at most
    /// [`MAX_REPORTED_LOOPBACK_ASSETS`]); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loopback_only: Vec<LoopbackOnly>,
}

/// The claims of a scan passport: a JWS an auditor verifies offline with the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassportClaims {
    /// Issuer: `fleetpass`.
    pub iss: String,
    /// Subject: the scan id.
    pub sub: String,
    /// Always `fleetpass-scan-passport`.
    pub typ: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// The tenant.
    pub tenant_id: String,
    /// The fleet.
    pub fleet_id: String,
    /// The environment.
    pub environment_id: String,
    /// The scan.
    pub scan_id: String,
    /// The scenario.
    pub scenario: Scenario,
    /// When the scan completed (RFC 3339).
    pub completed_at: String,
    /// The counts.
    pub counts: Counts,
    /// SHA-256 (hex) of the bundle's bytes.
    pub bundle_sha256: String,
    /// The tenant's name when the passport was signed (absent in older passports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_name: Option<String>,
    /// The fleet's name when the passport was signed (absent in older passports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_name: Option<String>,
    /// The canonical form the bundle was hashed in: `RFC8785` for every passport
    /// signed since it was adopted; absent in older passports, whose bundles are in
    /// the form before it ([`BundleCanonicalization::SortedKeys`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_canonicalization: Option<BundleCanonicalization>,
}

/// The names a passport states beside the ids, as they were when it was signed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassportNames {
    /// The tenant's name.
    pub tenant: Option<String>,
    /// The fleet's name.
    pub fleet: Option<String>,
}

/// How a bundle is made canonical before it is hashed (the `bundleCanonicalization`
/// claim of a passport).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BundleCanonicalization {
    /// RFC 8785, the JSON Canonicalization Scheme ([`crate::jcs`]).
    #[serde(rename = "RFC8785")]
    Rfc8785,
    /// The form before RFC 8785: keys sorted by UTF-8 bytes, no whitespace. Never
    /// written in a claim: a passport without the claim was hashed this way.
    #[serde(rename = "sorted-keys")]
    SortedKeys,
}

impl BundleCanonicalization {
    /// `value` in this form.
    pub fn canonicalize(self, value: &serde_json::Value) -> String {
        match self {
            Self::Rfc8785 => crate::jcs::canonicalize(value),
            Self::SortedKeys => {
                let mut out = String::new();
                legacy_canonical_json(value, &mut out);
                out
            }
        }
    }
}

impl PassportClaims {
    /// The form its bundle was hashed in.
    pub fn bundle_form(&self) -> BundleCanonicalization {
        self.bundle_canonicalization
            .unwrap_or(BundleCanonicalization::SortedKeys)
    }
}

impl PassportClaims {
    /// The `typ` of every passport.
    pub const TYPE: &'static str = "fleetpass-scan-passport";

    /// The passport of `scan`, completed at `at`, over `results`, naming the tenant
    /// and fleet as `names` has them (a reader sees names, not only ids).
    ///
    /// # Errors
    /// What [`ScanResults::bundle`] returns, or `Time` for a time with no RFC 3339 form.
    pub fn new(
        scan: &Scan,
        results: &ScanResults,
        at: Timestamp,
        names: PassportNames,
    ) -> Result<Self, ArtifactError> {
        let (_, bundle_sha256) = results.bundle()?;
        Self::of(scan, results.counts(), bundle_sha256, at, names)
    }

    /// The passport of `scan`, completed at `at`, over a bundle with `bundle_sha256`
    /// and `counts` (a [`Merge`]'s, for a fan-out scan).
    ///
    /// # Errors
    /// `Time` for a time with no RFC 3339 form.
    pub fn of(
        scan: &Scan,
        counts: Counts,
        bundle_sha256: Sha256Hex,
        at: Timestamp,
        names: PassportNames,
    ) -> Result<Self, ArtifactError> {
        Ok(Self {
            iss: "fleetpass".to_owned(),
            sub: scan.id.to_string(),
            typ: Self::TYPE.to_owned(),
            iat: at.unix_timestamp(),
            tenant_id: scan.tenant_id.to_string(),
            fleet_id: scan.fleet_id.to_string(),
            environment_id: scan.environment_id.to_string(),
            scan_id: scan.id.to_string(),
            scenario: scan.scenario,
            completed_at: at.format(&time::format_description::well_known::Rfc3339)?,
            counts,
            bundle_sha256: bundle_sha256.into(),
            tenant_name: names.tenant,
            fleet_name: names.fleet,
            bundle_canonicalization: Some(BundleCanonicalization::Rfc8785),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: Timestamp = datetime!(2026-11-22 10:00 UTC);

    fn minutes(n: i64) -> time::Duration {
        time::Duration::minutes(n)
    }

    fn constraints(nb: Option<i64>, na: Option<i64>, max: Option<i64>) -> ScanConstraints {
        ScanConstraints {
            max_duration_minutes: max.map(|m| MaxDurationMinutes::new(m).unwrap()),
            not_before: nb.map(|m| NOW + minutes(m)),
            not_after: na.map(|m| NOW + minutes(m)),
            max_assets: None,
        }
    }

    fn fields(r: Result<(), Vec<Infeasible>>) -> Vec<Constraint> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.field)
            .collect()
    }

    #[test]
    fn scenario_minimums_bound_windows_and_durations() {
        let s = Scenario::Compliance;
        assert_eq!(
            fields(constraints(None, None, Some(30)).check_feasible(s, NOW)),
            Vec::<Constraint>::new()
        );
        assert_eq!(
            fields(constraints(None, None, Some(29)).check_feasible(s, NOW)),
            [Constraint::MaxDuration]
        );
        assert_eq!(
            fields(constraints(None, Some(30), None).check_feasible(s, NOW)),
            Vec::<Constraint>::new()
        );
        assert_eq!(
            fields(constraints(None, Some(29), None).check_feasible(s, NOW)),
            [Constraint::NotAfter]
        );
        assert_eq!(
            fields(constraints(Some(60), Some(89), None).check_feasible(s, NOW)),
            [Constraint::NotAfter]
        );
        assert_eq!(
            fields(constraints(Some(60), Some(90), None).check_feasible(s, NOW)),
            Vec::<Constraint>::new()
        );
        assert_eq!(
            fields(constraints(Some(60), Some(60), None).check_feasible(s, NOW)),
            [Constraint::NotAfter]
        );
        assert_eq!(
            fields(constraints(None, Some(0), None).check_feasible(s, NOW)),
            [Constraint::NotAfter]
        );
        assert_eq!(
            fields(constraints(None, Some(-5), Some(1)).check_feasible(s, NOW)),
            [Constraint::MaxDuration, Constraint::NotAfter]
        );
        assert_eq!(Scenario::Inventory.min_minutes(), 5);
        assert!(Scenario::parse("vuln").is_err());
    }

    #[test]
    fn lifecycle_deadlines() {
        let mut scan = Scan {
            id: ScanId::from_uuid(uuid::Uuid::from_u128(1)),
            tenant_id: TenantId::from_uuid(uuid::Uuid::from_u128(2)),
            fleet_id: FleetId::from_uuid(uuid::Uuid::from_u128(3)),
            environment_id: EnvironmentId::from_uuid(uuid::Uuid::from_u128(4)),
            scenario: Scenario::Ports,
            constraints: constraints(Some(10), Some(60), Some(20)),
            status: ScanStatus::Queued,
            requested_at: NOW,
            target: Target::Any,
            claimed_by: None,
            claimed_at: None,
            finished_at: None,
        };
        assert!(!scan.claimable(NOW + minutes(9)));
        assert!(scan.claimable(NOW + minutes(10)));
        assert!(!scan.claimable(NOW + minutes(60)));
        assert_eq!(scan.overdue(NOW + minutes(59)), None);
        assert_eq!(scan.overdue(NOW + minutes(60)), Some(ScanStatus::Expired));
        scan.status = ScanStatus::Running;
        scan.claimed_at = Some(NOW + minutes(10));
        assert_eq!(scan.overdue(NOW + minutes(29)), None);
        assert_eq!(scan.overdue(NOW + minutes(30)), Some(ScanStatus::Failed));
    }

    fn results() -> ScanResults {
        serde_json::from_value(serde_json::json!({
            "assets": [{"hostname": "db-1", "ip": "10.0.0.5", "os": "Debian 12", "openPorts": [22, 5432],
                        "software": [{"name": "postgresql", "version": "15.4"}]}],
            "findings": [
                {"severity": "low", "title": "banner"},
                {"severity": "critical", "title": "weak password", "assetHostname": "db-1"},
                {"severity": "high", "title": "old TLS"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn reports_count_and_rank() {
        let report = results().report();
        assert_eq!(
            (
                report.counts.assets,
                report.counts.open_ports,
                report.counts.software
            ),
            (1, 2, 1)
        );
        assert_eq!(report.counts.findings_by_severity[&Severity::Critical], 1);
        assert_eq!(report.counts.findings_by_severity[&Severity::Medium], 0);
        // Keys in name order, as before the map was typed.
        let json = serde_json::to_string(&report.counts).unwrap();
        let at = |key: &str| json.find(&format!("\"{key}\":")).unwrap();
        let order = ["critical", "high", "info", "low", "medium"].map(at);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{json}");
        let back: Counts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report.counts);
        let titles: Vec<_> = report
            .top_findings
            .iter()
            .map(|f| f.title.as_str())
            .collect();
        assert_eq!(titles, ["weak password", "old TLS", "banner"]);
    }

    #[test]
    fn bundles_are_canonical() {
        let (json, sha) = results().bundle().unwrap();
        assert!(
            json.starts_with(
                r#"{"assets":[{"hostname":"db-1","ip":"10.0.0.5","openPorts":[22,5432],"os""#
            ),
            "{json}"
        );
        let reparsed: ScanResults = serde_json::from_str(&json).unwrap();
        assert_eq!(reparsed.bundle().unwrap(), (json, sha.clone()));
        assert_eq!(sha.as_str().len(), 64);
    }

    #[test]
    fn results_are_validated() {
        assert_eq!(results().validate(None), Ok(()));
        let mut bad = results();
        bad.assets[0].ip = "999.1.1.1".into();
        assert_eq!(bad.validate(None).unwrap_err().path, "assets[0].ip");
        let mut bad = results();
        bad.assets[0].open_ports.push(70_000);
        assert_eq!(
            bad.validate(None).unwrap_err().path,
            "assets[0].openPorts[2]"
        );
        assert_eq!(results().validate(Some(MaxAssets::new(1).unwrap())), Ok(()));
        let mut two = results();
        two.assets.push(two.assets[0].clone());
        assert_eq!(
            two.validate(Some(MaxAssets::new(1).unwrap()))
                .unwrap_err()
                .path,
            "assets"
        );
    }

    /// Results as the reference agent sends them: listeners on every address, on
    /// loopback only (IPv4, IPv6 and v4-mapped), and a port open on one protocol and
    /// loopback-only on the other.
    fn with_listeners() -> ScanResults {
        serde_json::from_value(serde_json::json!({
            "assets": [{"hostname": "scanner-01", "osHostname": "ip-10-0-0-5", "ip": "10.0.0.5",
                        "os": "Debian 12", "openPorts": [22, 53],
                        "listeners": [
                            {"port": 22, "protocol": "tcp", "address": "0.0.0.0", "process": "sshd"},
                            {"port": 22, "protocol": "tcp", "address": "::", "process": "sshd"},
                            {"port": 5432, "protocol": "tcp", "address": "127.0.0.1", "process": "postgres"},
                            {"port": 5432, "protocol": "tcp", "address": "::1", "process": "postgres"},
                            {"port": 53, "protocol": "udp", "address": "10.0.0.5"},
                            {"port": 53, "protocol": "tcp", "address": "127.0.0.53", "process": "systemd-resolve"},
                            {"port": 631, "protocol": "tcp", "address": "::ffff:127.0.0.1"}
                        ]}],
            "findings": []
        }))
        .unwrap()
    }

    #[test]
    fn loopback_only_listeners_are_marked_and_counted() {
        let results = with_listeners();
        assert_eq!(results.validate(None), Ok(()));
        let asset = &results.assets[0];
        assert_eq!(Listener::reachable_ports(&asset.listeners), [22, 53]);
        let report = results.report();
        assert_eq!(
            (report.counts.listeners, report.counts.loopback_only_ports),
            (7, 3)
        );
        assert_eq!(
            serde_json::to_value(&report.loopback_only).unwrap(),
            serde_json::json!([{"hostname": "scanner-01", "ports": [
                {"port": 53, "protocol": "tcp", "process": "systemd-resolve"},
                {"port": 631, "protocol": "tcp"},
                {"port": 5432, "protocol": "tcp", "process": "postgres"}
            ]}])
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["counts"]["loopbackOnlyPorts"], 3);
        assert_eq!(json["counts"]["openPorts"], 2);
        // The bundle keeps what the agent sent, new fields included.
        let (bundle, _) = results.bundle().unwrap();
        assert!(bundle.contains(r#""osHostname":"ip-10-0-0-5""#), "{bundle}");
        assert_eq!(
            serde_json::from_str::<ScanResults>(&bundle).unwrap(),
            results
        );
    }

    #[test]
    fn results_without_listeners_serialize_as_before() {
        // The bundle of results an old agent sent, byte for byte: no new key appears,
        // so digests in passports already signed still name these bytes.
        let (json, sha) = results().bundle().unwrap();
        assert_eq!(
            json,
            r#"{"assets":[{"hostname":"db-1","ip":"10.0.0.5","openPorts":[22,5432],"os":"Debian 12","software":[{"name":"postgresql","version":"15.4"}]}],"findings":[{"severity":"low","title":"banner"},{"assetHostname":"db-1","severity":"critical","title":"weak password"},{"severity":"high","title":"old TLS"}]}"#
        );
        assert_eq!(sha, Sha256Hex::of(json.as_bytes()));
        let report = serde_json::to_value(results().report()).unwrap();
        let keys: Vec<&String> = report["counts"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "assets",
                "findings",
                "findingsBySeverity",
                "openPorts",
                "software"
            ]
        );
        assert!(report.get("loopbackOnly").is_none(), "{report}");
        // A report stored before the marks existed still reads.
        let old: Report = serde_json::from_value(serde_json::json!({
            "counts": {"assets": 1, "openPorts": 2, "software": 1, "findings": 0,
                       "findingsBySeverity": {"critical": 0, "high": 0, "info": 0, "low": 0, "medium": 0}},
            "topFindings": []
        }))
        .unwrap();
        assert!(old.loopback_only.is_empty());
        assert_eq!(old.counts.listeners, 0);
    }

    #[test]
    fn listeners_are_validated_naming_the_field() {
        let path = |edit: &dyn Fn(&mut Asset)| {
            let mut r = with_listeners();
            edit(&mut r.assets[0]);
            r.validate(None).map_err(|e| (e.path, e.message))
        };
        assert_eq!(
            path(&|a| a.listeners[3].address = "localhost".into()),
            Err((
                "assets[0].listeners[3].address".into(),
                "must be an IPv4 or IPv6 address".into()
            ))
        );
        assert_eq!(
            path(&|a| a.listeners[1].port = 0).unwrap_err().0,
            "assets[0].listeners[1].port"
        );
        assert_eq!(
            path(&|a| a.listeners[0].process = Some(" ".into()))
                .unwrap_err()
                .0,
            "assets[0].listeners[0].process"
        );
        assert_eq!(
            path(&|a| a.os_hostname = Some("x".repeat(254).into()))
                .unwrap_err()
                .0,
            "assets[0].osHostname"
        );
        assert_eq!(
            path(&|a| a.listeners = vec![a.listeners[0].clone(); MAX_LISTENERS + 1])
                .unwrap_err()
                .0,
            "assets[0].listeners"
        );
        let unknown = serde_json::from_value::<ScanResults>(serde_json::json!({"assets": [
            {"hostname": "h", "ip": "10.0.0.1", "os": "", "listeners": [
                {"port": 22, "protocol": "sctp", "address": "::"}]}]}));
        assert!(unknown.is_err());
        let extra = serde_json::from_value::<ScanResults>(serde_json::json!({"assets": [
            {"hostname": "h", "ip": "10.0.0.1", "os": "", "listeners": [
                {"port": 22, "protocol": "tcp", "address": "::", "loopbackOnly": true}]}]}));
        assert!(extra.is_err());
    }

    #[test]
    fn a_report_lists_at_most_so_many_loopback_assets() {
        let one = with_listeners().assets.remove(0);
        let many = ScanResults {
            assets: vec![one; MAX_REPORTED_LOOPBACK_ASSETS + 5],
            findings: vec![],
        };
        let report = many.report();
        assert_eq!(report.loopback_only.len(), MAX_REPORTED_LOOPBACK_ASSETS);
        assert_eq!(
            report.counts.loopback_only_ports,
            3 * (MAX_REPORTED_LOOPBACK_ASSETS + 5)
        );
    }
}
