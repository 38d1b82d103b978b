//! Scans that cover a fleet: what a scan targets, the parts a fan-out scan is split
//! into (one per targeted agent), their progress, and the merge of the parts' results
//! into one bundle, report and set of passport counts.
//!
//! The merge is streaming: [`Merge::add`] takes one part's results at a time and keeps
//! only the canonical bytes of the bundle built so far, the counts and the ten most
//! severe findings, so a scan of ten thousand agents never holds ten thousand result
//! sets in memory.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Asset, Counts, Finding, LoopbackOnly, Report, ScanResults, Sha256Hex};
use crate::Timestamp;
use crate::ids::AgentId;
use crate::label::{LabelError, LabelSelector, Labels};
use crate::value::ValueError;

/// At most this many agents in a target's list.
pub const MAX_TARGET_AGENTS: usize = 10_000;

/// Which agents of its fleet a scan is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanTarget {
    /// Any one agent: the first to claim it runs it (the default, as before).
    Any,
    /// Every live agent of the fleet when the scan is requested.
    All,
    /// These agents of the fleet (sorted, no duplicates).
    Agents(Vec<AgentId>),
    /// The live agents of the fleet that carry every label of the selector when the
    /// scan is requested.
    Labels(LabelSelector),
}

/// Why a target was refused, naming the part of it at fault (`target`,
/// `target.agents[3]`, `target.labels`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} {message}")]
pub struct TargetError {
    /// Where in the request's `target`.
    pub path: String,
    /// What is wrong, read after the path.
    pub message: String,
}

impl ScanTarget {
    /// The wire form: `"any"`, `"all"`, `{"agents": [id, …]}` or `{"labels": {k: v}}`.
    ///
    /// # Errors
    /// The first invalid part, e.g. an empty agent list ("names no agent").
    ///
    /// ```
    /// use fleetpass_domain::scan::ScanTarget;
    /// use serde_json::json;
    /// assert_eq!(ScanTarget::parse(&json!("all")), Ok(ScanTarget::All));
    /// let empty = ScanTarget::parse(&json!({"agents": []})).unwrap_err();
    /// assert_eq!(empty.to_string(), "target.agents names no agent; list 1-10000 agent ids");
    /// ```
    pub fn parse(raw: &serde_json::Value) -> Result<Self, TargetError> {
        use serde_json::Value;
        let err = |path: &str, message: String| TargetError {
            path: path.to_owned(),
            message,
        };
        match raw {
            Value::String(s) if s == "any" => Ok(Self::Any),
            Value::String(s) if s == "all" => Ok(Self::All),
            Value::Object(map) if map.len() == 1 && map.contains_key("agents") => {
                let Value::Array(items) = &map["agents"] else {
                    return Err(err("target.agents", "must be a list of agent ids".into()));
                };
                if items.is_empty() {
                    return Err(err(
                        "target.agents",
                        format!("names no agent; list 1-{MAX_TARGET_AGENTS} agent ids"),
                    ));
                }
                if items.len() > MAX_TARGET_AGENTS {
                    return Err(err(
                        "target.agents",
                        format!(
                            "lists {} agents; at most {MAX_TARGET_AGENTS} are allowed",
                            items.len()
                        ),
                    ));
                }
                let mut ids = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let id = item.as_str().and_then(AgentId::parse).ok_or_else(|| {
                        err(&format!("target.agents[{i}]"), "must be an agent id".into())
                    })?;
                    ids.insert(id);
                }
                Ok(Self::Agents(ids.into_iter().collect()))
            }
            Value::Object(map) if map.len() == 1 && map.contains_key("labels") => {
                let Value::Object(pairs) = &map["labels"] else {
                    return Err(err(
                        "target.labels",
                        "must be an object of label values".into(),
                    ));
                };
                let mut raw = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let Some(v) = v.as_str() else {
                        return Err(err(
                            &format!("target.labels.{k}"),
                            "must be a string".into(),
                        ));
                    };
                    raw.push((k.as_str(), v));
                }
                let labels = Labels::parse(raw).map_err(|e| label_error("target.labels", &e))?;
                let selector = LabelSelector::new(labels).map_err(|_| {
                    err(
                        "target.labels",
                        "selects nothing; give at least one label".into(),
                    )
                })?;
                Ok(Self::Labels(selector))
            }
            _ => Err(err(
                "target",
                "must be \"any\", \"all\", {\"agents\": [ids]} or {\"labels\": {key: value}}"
                    .into(),
            )),
        }
    }

    /// Whether the scan is split into one part per agent (every target but `any`).
    pub fn fans_out(&self) -> bool {
        !matches!(self, Self::Any)
    }

    /// What a scan keeps of it: the ids of a list live on in its parts.
    pub fn kind(&self) -> Target {
        match self {
            Self::Any => Target::Any,
            Self::All => Target::All,
            Self::Agents(_) => Target::Agents,
            Self::Labels(selector) => Target::Labels(selector.clone()),
        }
    }
}

/// What a scan targets, as the scan keeps it (a [`ScanTarget`] without the ids of a
/// list: those are its parts). On the wire `"any"`, `"all"`, `"agents"` or
/// `{"labels": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Any one agent.
    Any,
    /// Every live agent of the fleet at request time.
    All,
    /// Agents listed at request time.
    Agents,
    /// The live agents that carried these labels at request time.
    Labels(LabelSelector),
}

impl Target {
    /// Whether the scan has one part per agent.
    pub fn fans_out(&self) -> bool {
        !matches!(self, Self::Any)
    }

    /// The wire (and stored) form.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Any => json!("any"),
            Self::All => json!("all"),
            Self::Agents => json!("agents"),
            Self::Labels(selector) => json!({"labels": selector.labels()}),
        }
    }

    /// Reads [`to_json`](Self::to_json)'s form back.
    ///
    /// # Errors
    /// `OneOf` for anything else.
    pub fn from_json(raw: &serde_json::Value) -> Result<Self, ValueError> {
        let refused = ValueError::OneOf {
            allowed: "any, all, agents, {\"labels\": {…}}",
        };
        match raw {
            serde_json::Value::String(s) => match s.as_str() {
                "any" => Ok(Self::Any),
                "all" => Ok(Self::All),
                "agents" => Ok(Self::Agents),
                _ => Err(refused),
            },
            serde_json::Value::Object(map) if map.len() == 1 => {
                let labels: Labels = map
                    .get("labels")
                    .cloned()
                    .and_then(|v| serde_json::from_value(v).ok())
                    .ok_or(refused.clone())?;
                LabelSelector::new(labels)
                    .map(Self::Labels)
                    .map_err(|_| refused)
            }
            _ => Err(refused),
        }
    }
}

fn label_error(path: &str, e: &LabelError) -> TargetError {
    TargetError {
        path: e
            .key
            .as_ref()
            .map_or_else(|| path.to_owned(), |k| format!("{path}.{k}")),
        message: match &e.error {
            ValueError::Range { max, .. } => format!("may have at most {max} labels"),
            other => other.to_string(),
        },
    }
}

/// Where one part of a fan-out scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartStatus {
    /// Waiting for its agent.
    Queued,
    /// Claimed by its agent.
    Running,
    /// Its agent's results arrived.
    Completed,
    /// It met its deadline without results, or its agent was revoked.
    Failed,
    /// The scan was cancelled before the part ended.
    Cancelled,
}

impl PartStatus {
    /// Every status.
    pub const ALL: [Self; 5] = [
        Self::Queued,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the wire name.
    ///
    /// # Errors
    /// `OneOf` for an unknown status.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or(ValueError::OneOf {
                allowed: "queued, running, completed, failed, cancelled",
            })
    }

    /// Whether the part is still waiting for its agent or its results.
    pub const fn is_open(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// Why a part failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartFailure {
    /// Its agent did not claim it by its deadline (`notAfter`, or the scan's
    /// `maxDurationMinutes` after the request when it has no `notAfter`).
    NotClaimed,
    /// Its agent claimed it but sent no results within `maxDurationMinutes`.
    NoResults,
    /// Its agent was revoked before it reported.
    AgentRevoked,
}

impl PartFailure {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotClaimed => "not_claimed",
            Self::NoResults => "no_results",
            Self::AgentRevoked => "agent_revoked",
        }
    }

    /// Parses the wire name.
    ///
    /// # Errors
    /// `OneOf` for an unknown reason.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        [Self::NotClaimed, Self::NoResults, Self::AgentRevoked]
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or(ValueError::OneOf {
                allowed: "not_claimed, no_results, agent_revoked",
            })
    }
}

/// One part of a fan-out scan: its agent's share of the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPart {
    /// The agent that runs it (and only that agent may claim it).
    pub agent_id: AgentId,
    /// Where it is.
    pub status: PartStatus,
    /// When its agent claimed it.
    pub claimed_at: Option<Timestamp>,
    /// When it completed, failed or was cancelled.
    pub finished_at: Option<Timestamp>,
    /// Why it failed, when it did.
    pub failure: Option<PartFailure>,
}

/// How far a fan-out scan's parts are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Parts waiting for their agent.
    pub queued: u32,
    /// Parts claimed.
    pub running: u32,
    /// Parts whose results arrived.
    pub completed: u32,
    /// Parts that failed.
    pub failed: u32,
    /// Parts cancelled with the scan.
    pub cancelled: u32,
}

impl Progress {
    /// Counts one more part in `status`.
    pub fn count(&mut self, status: PartStatus, n: u32) {
        let slot = match status {
            PartStatus::Queued => &mut self.queued,
            PartStatus::Running => &mut self.running,
            PartStatus::Completed => &mut self.completed,
            PartStatus::Failed => &mut self.failed,
            PartStatus::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }

    /// Every part.
    pub const fn total(&self) -> u32 {
        self.queued + self.running + self.completed + self.failed + self.cancelled
    }

    /// Parts still open (queued or running): the scan ends when there are none.
    pub const fn open(&self) -> u32 {
        self.queued + self.running
    }
}

/// An asset or finding in a bundle, with the agent that reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributed<'a, T> {
    /// The item as its agent sent it.
    #[serde(flatten)]
    pub item: &'a T,
    /// The agent that reported it.
    #[serde(serialize_with = "as_text")]
    pub agent_id: AgentId,
}

fn as_text<S: serde::Serializer>(id: &AgentId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// The merged artifacts of one or more agents' results, built one result set at a time.
///
/// The bundle is `{"assets": […], "findings": […]}` in RFC 8785 form with every item
/// carrying its `agentId`; because the canonical form of an array is its items'
/// canonical forms joined by commas, appending each item's bytes as it comes gives
/// exactly the bytes of canonicalizing the whole.
///
/// ```
/// use fleetpass_domain::ids::AgentId;
/// use fleetpass_domain::scan::{Merge, ScanResults};
/// let agent = AgentId::from_uuid(uuid::Uuid::from_u128(7));
/// let mut merge = Merge::default();
/// merge.add(agent, &ScanResults::default());
/// let merged = merge.finish();
/// assert_eq!(merged.bundle_json, r#"{"assets":[],"findings":[]}"#);
/// ```
#[derive(Debug, Default)]
pub struct Merge {
    assets: String,
    findings: String,
    counts: Option<Counts>,
    top: Vec<Finding>,
    loopback_only: Vec<LoopbackOnly>,
}

/// What a [`Merge`] ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The bundle's canonical bytes.
    pub bundle_json: String,
    /// Their SHA-256.
    pub bundle_sha256: Sha256Hex,
    /// The report over every result set.
    pub report: Report,
}

fn push_canonical<T: Serialize>(out: &mut String, item: &Attributed<'_, T>) {
    if !out.is_empty() {
        out.push(',');
    }
    // Serializing a typed value into a JSON tree cannot fail: every key is a string.
    let value = serde_json::to_value(item).unwrap_or(serde_json::Value::Null);
    out.push_str(&crate::jcs::canonicalize(&value));
}

impl Merge {
    /// Adds one agent's results.
    pub fn add(&mut self, agent_id: AgentId, results: &ScanResults) {
        for item in &results.assets {
            push_canonical::<Asset>(&mut self.assets, &Attributed { item, agent_id });
        }
        for item in &results.findings {
            push_canonical::<Finding>(&mut self.findings, &Attributed { item, agent_id });
        }
        let counts = results.counts();
        match &mut self.counts {
            Some(total) => total.add(&counts),
            None => self.counts = Some(counts),
        }
        // Stable: among equals, earlier parts and the agent's own order stand.
        self.top.extend(results.findings.iter().cloned());
        self.top.sort_by_key(|f| std::cmp::Reverse(f.severity));
        self.top.truncate(10);
        LoopbackOnly::collect(&mut self.loopback_only, &results.assets);
    }

    /// The bundle, its digest and the report.
    pub fn finish(self) -> Merged {
        let mut bundle_json = String::with_capacity(self.assets.len() + self.findings.len() + 26);
        bundle_json.push_str("{\"assets\":[");
        bundle_json.push_str(&self.assets);
        bundle_json.push_str("],\"findings\":[");
        bundle_json.push_str(&self.findings);
        bundle_json.push_str("]}");
        let bundle_sha256 = Sha256Hex::of(bundle_json.as_bytes());
        Merged {
            bundle_json,
            bundle_sha256,
            report: Report {
                counts: self
                    .counts
                    .unwrap_or_else(|| ScanResults::default().counts()),
                top_findings: self.top,
                loopback_only: self.loopback_only,
            },
        }
    }
}

impl Counts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Counts) {
        self.assets += other.assets;
        self.open_ports += other.open_ports;
        self.software += other.software;
        self.findings += other.findings;
        self.listeners += other.listeners;
        self.loopback_only_ports += other.loopback_only_ports;
        for (severity, n) in &other.findings_by_severity {
            *self.findings_by_severity.entry(*severity).or_default() += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Severity;
    use serde_json::json;

    fn agent(n: u128) -> AgentId {
        AgentId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn results(host: &str, severity: &str) -> ScanResults {
        serde_json::from_value(json!({
            "assets": [{"hostname": host, "ip": "10.0.0.5", "os": "Debian 12", "openPorts": [22]}],
            "findings": [{"severity": severity, "title": format!("{host} finding"), "assetHostname": host}]
        }))
        .unwrap()
    }

    #[test]
    fn a_merge_is_the_canonical_form_of_the_whole() {
        let (a, b) = (results("db-1", "low"), results("web-1", "critical"));
        let mut merge = Merge::default();
        merge.add(agent(1), &a);
        merge.add(agent(2), &b);
        let merged = merge.finish();
        let tag = |r: &ScanResults, id: AgentId, key: &str| -> Vec<serde_json::Value> {
            let mut items = serde_json::to_value(r).unwrap()[key]
                .as_array()
                .unwrap()
                .clone();
            for item in &mut items {
                item["agentId"] = json!(id.to_string());
            }
            items
        };
        let mut assets = tag(&a, agent(1), "assets");
        assets.extend(tag(&b, agent(2), "assets"));
        let mut findings = tag(&a, agent(1), "findings");
        findings.extend(tag(&b, agent(2), "findings"));
        let whole = crate::jcs::canonicalize(&json!({"assets": assets, "findings": findings}));
        assert_eq!(merged.bundle_json, whole);
        assert_eq!(merged.bundle_sha256, Sha256Hex::of(whole.as_bytes()));
        let counts = &merged.report.counts;
        assert_eq!(
            (counts.assets, counts.open_ports, counts.findings),
            (2, 2, 2)
        );
        assert_eq!(counts.findings_by_severity[&Severity::Critical], 1);
        assert_eq!(
            merged.report.top_findings[0].title.as_str(),
            "web-1 finding"
        );
    }

    #[test]
    fn targets_parse_and_say_what_is_wrong() {
        assert_eq!(ScanTarget::parse(&json!("any")), Ok(ScanTarget::Any));
        let id = agent(9).to_string();
        assert_eq!(
            ScanTarget::parse(&json!({"agents": [id, id]})),
            Ok(ScanTarget::Agents(vec![agent(9)])),
            "duplicates fold"
        );
        let path = |v| ScanTarget::parse(&v).unwrap_err().path;
        assert_eq!(path(json!("some")), "target");
        assert_eq!(path(json!({"agents": ["x"]})), "target.agents[0]");
        assert_eq!(path(json!({"labels": {}})), "target.labels");
        assert_eq!(
            path(json!({"labels": {"Role": "db"}})),
            "target.labels.Role"
        );
        assert_eq!(path(json!({"labels": {"role": 1}})), "target.labels.role");
        assert_eq!(path(json!({"agents": [], "labels": {}})), "target");
        let selector = ScanTarget::parse(&json!({"labels": {"role": "db"}})).unwrap();
        assert_eq!(
            Target::from_json(&selector.kind().to_json()),
            Ok(selector.kind())
        );
        let list = ScanTarget::Agents(vec![agent(1)]).kind();
        assert_eq!(Target::from_json(&json!("agents")), Ok(list));
        assert!(!ScanTarget::Any.fans_out() && ScanTarget::All.fans_out());
    }
}
