//! The [`StatsStore`] part of the store port: what the whole service holds right now,
//! across tenants, for an operator's `/metrics` (never for a tenant: nothing here is
//! scoped, and no tenant-facing route reads it).
//!
//! The obligations in the [`store`](super) module docs hold for every method here.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::scan::ScanStatus;

use super::RepoError;

/// How long ago an agent was last seen, in the buckets `/metrics` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LastSeen {
    /// Within the last minute (a connected agent).
    Minute,
    /// Within the last five minutes.
    FiveMinutes,
    /// Within the last hour.
    Hour,
    /// Longer ago.
    Longer,
    /// Never (enrolled, never called since).
    Never,
}

impl LastSeen {
    /// Every bucket, in order.
    pub const ALL: [Self; 5] = [
        Self::Minute,
        Self::FiveMinutes,
        Self::Hour,
        Self::Longer,
        Self::Never,
    ];

    /// The upper bounds of the first three buckets, in seconds.
    pub const BOUNDS: [i64; 3] = [60, 300, 3600];

    /// The bucket of an agent last seen at `seen`, judged at `now`.
    pub fn of(seen: Option<Timestamp>, now: Timestamp) -> Self {
        let Some(seen) = seen else {
            return Self::Never;
        };
        let ago = (now - seen).whole_seconds();
        match Self::BOUNDS.iter().position(|&bound| ago < bound) {
            Some(0) => Self::Minute,
            Some(1) => Self::FiveMinutes,
            Some(_) => Self::Hour,
            None => Self::Longer,
        }
    }

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "1m",
            Self::FiveMinutes => "5m",
            Self::Hour => "1h",
            Self::Longer => "older",
            Self::Never => "never",
        }
    }
}

/// The connection pool of a store that has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Connections the pool may open.
    pub max: u64,
    /// Connections checked out right now.
    pub in_use: u64,
    /// Callers waiting for a connection.
    pub waiting: u64,
}

/// What the service holds right now, across tenants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceStats {
    /// Scans by status; every status is present (zero included).
    pub scans: Vec<(ScanStatus, u64)>,
    /// When the oldest scan that an agent could claim now was requested: the age of the
    /// queue's head.
    pub oldest_claimable: Option<Timestamp>,
    /// Agents that are not revoked, by [`LastSeen`]; every bucket is present.
    pub agents: Vec<(LastSeen, u64)>,
    /// The connection pool, for a store that has one.
    pub pool: Option<PoolStats>,
}

/// The part of [`Store`](super::Store) that reports on the whole service.
#[async_trait]
pub trait StatsStore: Send + Sync + 'static {
    /// The counts of [`ServiceStats`] at `now`. MUST count every tenant's rows, MUST
    /// list every scan status and [`LastSeen`] bucket (zeros included), and MUST NOT
    /// count revoked agents.
    async fn service_stats(&self, now: Timestamp) -> Result<ServiceStats, RepoError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn buckets_start_at_their_bounds() {
        let now = datetime!(2026-12-04 12:00 UTC);
        let ago = |s: i64| Some(now - time::Duration::seconds(s));
        assert_eq!(LastSeen::of(None, now), LastSeen::Never);
        assert_eq!(LastSeen::of(ago(0), now), LastSeen::Minute);
        assert_eq!(LastSeen::of(ago(59), now), LastSeen::Minute);
        assert_eq!(LastSeen::of(ago(60), now), LastSeen::FiveMinutes);
        assert_eq!(LastSeen::of(ago(299), now), LastSeen::FiveMinutes);
        assert_eq!(LastSeen::of(ago(300), now), LastSeen::Hour);
        assert_eq!(LastSeen::of(ago(3600), now), LastSeen::Longer);
    }
}
