//! The [`StatsStore`](fleetpass_ports::store::StatsStore) part of [`PgStore`]: counts over
//! every tenant, for `/metrics`, in one statement (one pass over `scans` and one over
//! `agents`) after this replica's pending sightings, and the pool's own figures, which
//! cost no round trip.

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use diesel_async::RunQueryDsl;
use diesel_async::scoped_futures::ScopedFutureExt;
use fleetpass_domain::Timestamp;
use fleetpass_domain::scan::ScanStatus;
use fleetpass_ports::RepoError;
use fleetpass_ports::store::{LastSeen, PoolStats, ServiceStats, StatsStore};

use super::PgStore;

/// The one row of [`STATS`].
#[derive(QueryableByName)]
struct StatsRow {
    #[diesel(sql_type = BigInt)]
    queued: i64,
    #[diesel(sql_type = BigInt)]
    running: i64,
    #[diesel(sql_type = BigInt)]
    completed: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
    #[diesel(sql_type = BigInt)]
    expired: i64,
    #[diesel(sql_type = BigInt)]
    cancelled: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_claimable: Option<Timestamp>,
    #[diesel(sql_type = BigInt)]
    seen_minute: i64,
    #[diesel(sql_type = BigInt)]
    seen_five_minutes: i64,
    #[diesel(sql_type = BigInt)]
    seen_hour: i64,
    #[diesel(sql_type = BigInt)]
    seen_longer: i64,
    #[diesel(sql_type = BigInt)]
    seen_never: i64,
}

/// `$1` is now. The agent buckets are `LastSeen::of` in SQL: seen less than 60 s, 300 s,
/// 3 600 s ago (`LastSeen::BOUNDS`; a unit test holds the two together), claimable as
/// `Scan::claimable`.
const STATS: &str = "\
WITH s AS (
  SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
         count(*) FILTER (WHERE status = 'running') AS running,
         count(*) FILTER (WHERE status = 'completed') AS completed,
         count(*) FILTER (WHERE status = 'failed') AS failed,
         count(*) FILTER (WHERE status = 'expired') AS expired,
         count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
         min(requested_at) FILTER (WHERE status = 'queued'
           AND (not_before IS NULL OR not_before <= $1)
           AND (not_after IS NULL OR $1 < not_after)) AS oldest_claimable
  FROM scans
), a AS (
  SELECT count(*) FILTER (WHERE last_seen_at > $1 - interval '60 seconds') AS seen_minute,
         count(*) FILTER (WHERE last_seen_at <= $1 - interval '60 seconds'
           AND last_seen_at > $1 - interval '300 seconds') AS seen_five_minutes,
         count(*) FILTER (WHERE last_seen_at <= $1 - interval '300 seconds'
           AND last_seen_at > $1 - interval '3600 seconds') AS seen_hour,
         count(*) FILTER (WHERE last_seen_at <= $1 - interval '3600 seconds') AS seen_longer,
         count(*) FILTER (WHERE last_seen_at IS NULL) AS seen_never
  FROM agents WHERE revoked_at IS NULL
)
SELECT * FROM s, a";

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl StatsStore for PgStore {
    async fn service_stats(&self, now: Timestamp) -> Result<ServiceStats, RepoError> {
        // An operator's read, like the token listings: this replica's pending sightings
        // go in first, so its own agents count as seen (other replicas' arrive with
        // their next batch, within one flush interval; the buckets are a minute wide).
        self.write_agents_seen().await?;
        let row = self
            .run(|c| {
                async move {
                    diesel::sql_query(STATS)
                        .bind::<Timestamptz, _>(now)
                        .get_result::<StatsRow>(c)
                        .await
                        .map_err(Into::into)
                }
                .scope_boxed()
            })
            .await?;
        let status = self.pool_status();
        let scans = ScanStatus::ALL
            .iter()
            .map(|&s| {
                let n = match s {
                    ScanStatus::Queued => row.queued,
                    ScanStatus::Running => row.running,
                    ScanStatus::Completed => row.completed,
                    ScanStatus::Failed => row.failed,
                    ScanStatus::Expired => row.expired,
                    ScanStatus::Cancelled => row.cancelled,
                };
                (s, count(n))
            })
            .collect();
        let agents = LastSeen::ALL
            .iter()
            .map(|&b| {
                let n = match b {
                    LastSeen::Minute => row.seen_minute,
                    LastSeen::FiveMinutes => row.seen_five_minutes,
                    LastSeen::Hour => row.seen_hour,
                    LastSeen::Longer => row.seen_longer,
                    LastSeen::Never => row.seen_never,
                };
                (b, count(n))
            })
            .collect();
        Ok(ServiceStats {
            scans,
            oldest_claimable: row.oldest_claimable,
            agents,
            pool: Some(status),
        })
    }
}

impl PgStore {
    /// The pool's figures, from the pool itself (no round trip).
    pub fn pool_status(&self) -> PoolStats {
        let status = self.pool.status();
        PoolStats {
            max: status.max_size as u64,
            in_use: status.size.saturating_sub(status.available) as u64,
            waiting: status.waiting as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use fleetpass_ports::store::LastSeen;

    #[test]
    fn the_sql_buckets_are_last_seen_bounds() {
        for bound in LastSeen::BOUNDS {
            assert!(
                super::STATS.contains(&format!("interval '{bound} seconds'")),
                "STATS lacks the {bound} s bound of LastSeen"
            );
        }
    }
}
