//! Shared rate-limit counters in PostgreSQL: [`PgStore`] as a
//! [`RateLimiter`](fleetpass_ports::ratelimit::RateLimiter).
//!
//! A hit is one statement, `INSERT … ON CONFLICT (key, window_start) DO UPDATE SET
//! hits = hits + 1 RETURNING hits`: the row lock PostgreSQL takes for the update orders
//! concurrent hits, so every replica sees each count exactly once and the limit holds
//! for the service as a whole. The table is `UNLOGGED` (see the migration): counters
//! are not worth a WAL write each.

use async_trait::async_trait;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use diesel_async::scoped_futures::ScopedFutureExt;
use fleetpass_domain::Timestamp;
use fleetpass_ports::RepoError;
use fleetpass_ports::ratelimit::{Decision, Limit, RateLimiter};

use crate::PgStore;
use crate::cached::CachedExt as _;
use crate::error::DbError;

diesel::table! {
    /// One counter per key and fixed window (`rate_limit_windows_pkey`).
    rate_limit_windows (key, window_start) {
        /// What is limited (`token:…`, `ip:…`, …).
        key -> Text,
        /// The window's start, aligned to its size.
        window_start -> Timestamptz,
        /// The window's end, for the purge.
        window_end -> Timestamptz,
        /// Hits counted in the window.
        hits -> BigInt,
    }
}

use rate_limit_windows as w;

/// A count as the port's unsigned number (counts start at 1 and only grow).
fn count(hits: i64) -> u64 {
    u64::try_from(hits).unwrap_or(0)
}

#[async_trait]
impl RateLimiter for PgStore {
    async fn add(
        &self,
        key: &str,
        limit: Limit,
        hits: u32,
        now: Timestamp,
    ) -> Result<u64, RepoError> {
        let (start, end) = (limit.window_start_at(now), limit.window_end_at(now));
        let hits = i64::from(hits);
        let hits = self
            .run(move |c| {
                async move {
                    let hits: i64 = diesel::insert_into(w::table)
                        .values((
                            w::key.eq(key),
                            w::window_start.eq(start),
                            w::window_end.eq(end),
                            w::hits.eq(hits),
                        ))
                        .on_conflict((w::key, w::window_start))
                        .do_update()
                        .set(w::hits.eq(w::hits + hits))
                        .returning(w::hits)
                        .cached()
                        .get_result(c)
                        .await?;
                    Ok::<_, DbError>(hits)
                }
                .scope_boxed()
            })
            .await?;
        Ok(count(hits))
    }

    async fn peek(&self, key: &str, limit: Limit, now: Timestamp) -> Result<Decision, RepoError> {
        let start = limit.window_start_at(now);
        let hits = self
            .run(move |c| {
                async move {
                    let hits: Option<i64> = w::table
                        .filter(w::key.eq(key))
                        .filter(w::window_start.eq(start))
                        .select(w::hits)
                        .first(c)
                        .await
                        .optional()?;
                    Ok::<_, DbError>(hits.unwrap_or(0))
                }
                .scope_boxed()
            })
            .await?;
        Ok(Decision::from_count(
            limit,
            count(hits).saturating_add(1),
            now,
        ))
    }

    async fn purge(&self, now: Timestamp) -> Result<u64, RepoError> {
        self.run(move |c| {
            async move {
                let gone = diesel::delete(w::table.filter(w::window_end.le(now)))
                    .execute(c)
                    .await?;
                Ok::<_, DbError>(u64::try_from(gone).unwrap_or(u64::MAX))
            }
            .scope_boxed()
        })
        .await
    }
}
