//! `lastUsedAt` of API tokens and `lastSeenAt` of agents, written in batches off the
//! request path.
//!
//! Both are coarse by contract (a token's use at most once a minute; an agent's presence
//! within a flush interval), so no request waits for them:
//! [`touch_token`](fleetpass_ports::TokenStore::touch_token) and
//! [`mark_agent_seen`](fleetpass_ports::FleetStore::mark_agent_seen) only note the time in
//! memory ([`Marks`]), and one `UPDATE … FROM unnest(…)` per kind writes every noted
//! time at once — every [`FLUSH_EVERY`] from the server's background task, at shutdown,
//! and for tokens before this process lists or reads a token by id. Reads show a noted
//! time from memory until it is written (a noted time is forgotten only once a write
//! of it committed), so this process's reads never show an older time than it noted.
//!
//! Architecture invariant: a write never moves a time backwards (`GREATEST`), so batches
//! from several replicas in any order leave the latest; and each batch lists its ids in
//! order, so two replicas' batches lock shared rows in the same order and never
//! deadlock. A process killed outright loses at most its last interval of marks; at
//! most one statement per kind and interval is written, whatever the number of tokens
//! or agents.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use diesel::sql_types::{Array, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use diesel_async::scoped_futures::ScopedFutureExt;
use fleetpass_domain::Timestamp;
use fleetpass_domain::ids::{AgentId, TokenId};
use fleetpass_ports::RepoError;
use uuid::Uuid;

use super::PgStore;

/// How often the server writes the noted times.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// How many ids' times are held between writes; beyond it a mark is dropped (a flood of
/// distinct ids within seconds is not a reason to grow memory; a token's next minute
/// notes it again, an agent's next request does).
const CAPACITY: usize = 100_000;

/// One statement for any number of token uses.
const WRITE_TOKEN_USES: &str = "UPDATE api_tokens \
     SET last_used_at = GREATEST(api_tokens.last_used_at, u.at) \
     FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE api_tokens.id = u.id";

/// One statement for any number of agent sightings.
const WRITE_AGENTS_SEEN: &str = "UPDATE agents \
     SET last_seen_at = GREATEST(agents.last_seen_at, u.at) \
     FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE agents.id = u.id";

/// An id a batch is keyed by.
pub(crate) trait BatchKey: Copy + Eq + Hash + Send + Sync + 'static {
    fn uuid(self) -> Uuid;
}

impl BatchKey for TokenId {
    fn uuid(self) -> Uuid {
        self.as_uuid()
    }
}

impl BatchKey for AgentId {
    fn uuid(self) -> Uuid {
        self.as_uuid()
    }
}

/// The times noted and not yet written (the latest per id).
pub(crate) struct Marks<K>(Mutex<HashMap<K, Timestamp>>);

impl<K> Default for Marks<K> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K: BatchKey> Marks<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Timestamp>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn note(&self, id: K, at: Timestamp) {
        let mut pending = self.lock();
        if pending.len() >= CAPACITY && !pending.contains_key(&id) {
            return;
        }
        let latest = pending.entry(id).or_insert(at);
        *latest = (*latest).max(at);
    }

    /// The latest time of `id` noted and not yet written.
    pub(crate) fn latest(&self, id: K) -> Option<Timestamp> {
        self.lock().get(&id).copied()
    }

    /// What to write now, in id order.
    fn batch(&self) -> Vec<(K, Timestamp)> {
        let mut batch: Vec<_> = self.lock().iter().map(|(k, at)| (*k, *at)).collect();
        batch.sort_unstable_by_key(|(k, _)| k.uuid());
        batch
    }

    /// Forgets what `batch` wrote, keeping any later time noted meanwhile.
    fn written(&self, batch: &[(K, Timestamp)]) {
        let mut pending = self.lock();
        for (id, at) in batch {
            if pending.get(id).is_some_and(|latest| latest <= at) {
                pending.remove(id);
            }
        }
    }
}

impl PgStore {
    /// Writes `marks` in one `sql` statement; answers how many ids it covered. On
    /// failure the marks stay noted for the next write.
    async fn write_marks<K: BatchKey>(
        &self,
        marks: &Marks<K>,
        sql: &'static str,
    ) -> Result<usize, RepoError> {
        let batch = marks.batch();
        if batch.is_empty() {
            return Ok(0);
        }
        let (ids, ats): (Vec<Uuid>, Vec<Timestamp>) =
            batch.iter().map(|(id, at)| (id.uuid(), *at)).unzip();
        self.run(|c| {
            async move {
                Ok(diesel::sql_query(sql)
                    .bind::<Array<SqlUuid>, _>(&ids)
                    .bind::<Array<Timestamptz>, _>(&ats)
                    .execute(c)
                    .await?)
            }
            .scope_boxed()
        })
        .await?;
        marks.written(&batch);
        Ok(batch.len())
    }

    /// Writes the token uses noted since the last write, in one statement; answers how
    /// many tokens it covered. On failure the uses stay noted for the next write.
    ///
    /// # Errors
    /// `Unavailable` (or another `RepoError`) when the statement fails.
    pub async fn write_token_uses(&self) -> Result<usize, RepoError> {
        self.write_marks(&self.uses, WRITE_TOKEN_USES).await
    }

    /// Writes the agent sightings noted since the last write, in one statement; answers
    /// how many agents it covered. On failure they stay noted for the next write.
    ///
    /// # Errors
    /// `Unavailable` (or another `RepoError`) when the statement fails.
    pub async fn write_agents_seen(&self) -> Result<usize, RepoError> {
        self.write_marks(&self.seen, WRITE_AGENTS_SEEN).await
    }

    /// Writes every batch (token uses, agent sightings); at shutdown too.
    ///
    /// # Errors
    /// The first batch that failed (the others are still tried).
    pub async fn write_batches(&self) -> Result<(), RepoError> {
        let uses = self.write_token_uses().await;
        let seen = self.write_agents_seen().await;
        uses.and(seen).map(|_| ())
    }

    /// Writes the batches every 5 s (`FLUSH_EVERY`), for as long as it runs (the server
    /// spawns it, and calls [`PgStore::write_batches`] once more at shutdown).
    pub async fn write_batches_periodically(&self) {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.write_batches().await {
                tracing::warn!(error = %e, "could not write lastUsedAt/lastSeenAt; retrying next tick");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn an_id_keeps_its_latest_time_and_a_later_one_outlives_a_write() {
        let marks = Marks::<TokenId>::default();
        let id = TokenId::from_uuid(Uuid::now_v7());
        marks.note(id, datetime!(2026-01-01 10:05 UTC));
        marks.note(id, datetime!(2026-01-01 10:01 UTC));
        let batch = marks.batch();
        assert_eq!(batch, vec![(id, datetime!(2026-01-01 10:05 UTC))]);
        marks.note(id, datetime!(2026-01-01 10:09 UTC));
        marks.written(&batch);
        assert_eq!(
            marks.latest(id),
            Some(datetime!(2026-01-01 10:09 UTC)),
            "a use noted while the batch was written stays for the next"
        );
        marks.written(&marks.batch());
        assert_eq!(marks.latest(id), None, "written: forgotten");
    }

    #[test]
    fn a_batch_is_in_id_order() {
        let marks = Marks::<AgentId>::default();
        let at = datetime!(2026-01-01 10:00 UTC);
        let ids: Vec<AgentId> = (0u32..50)
            .map(|i| {
                AgentId::from_uuid(Uuid::from_u128(
                    u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
                ))
            })
            .collect();
        for id in &ids {
            marks.note(*id, at);
        }
        let batch: Vec<Uuid> = marks.batch().iter().map(|(id, _)| id.uuid()).collect();
        let mut sorted = batch.clone();
        sorted.sort_unstable();
        assert_eq!(batch, sorted);
    }
}
