//! `lastUsedAt`, written in batches off the request path.
//!
//! The spec keeps `lastUsedAt` coarse (at most once a minute per token), so a request
//! need not wait for it: [`PgStore::touch_token`](fleetpass_ports::Store::touch_token)
//! only notes the use in memory, and one `UPDATE … FROM unnest(…)` writes every noted
//! use at once — every [`FLUSH_EVERY`] from the server's background task, before this
//! process lists or reads a token by id, and at shutdown; a lookup by digest (the
//! authentication path) never waits for it and shows a noted use from memory instead,
//! so this process's reads never show an older use than it noted. A process killed outright loses at most the uses of
//! its last few seconds; `lastUsedAt` only ever moves forwards (`GREATEST`), so batches
//! from several replicas in any order leave the latest use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use diesel::sql_types::{Array, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use diesel_async::scoped_futures::ScopedFutureExt;
use fleetpass_domain::Timestamp;
use fleetpass_domain::ids::TokenId;
use fleetpass_ports::RepoError;
use uuid::Uuid;

use super::PgStore;

/// How often the server writes the noted uses.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// How many tokens' uses are held between writes; beyond it a use is dropped (a
/// flood of distinct tokens within seconds is not a reason to grow memory, and the
/// next minute notes them again).
const CAPACITY: usize = 100_000;

/// One statement for any number of uses; a use never moves `last_used_at` backwards.
const WRITE: &str = "UPDATE api_tokens SET last_used_at = GREATEST(api_tokens.last_used_at, u.at) \
     FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE api_tokens.id = u.id";

/// The uses noted since the last write (the latest per token).
#[derive(Default)]
pub(crate) struct PendingUses(Mutex<HashMap<TokenId, Timestamp>>);

impl PendingUses {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenId, Timestamp>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn note(&self, id: TokenId, at: Timestamp) {
        let mut pending = self.lock();
        if pending.len() >= CAPACITY && !pending.contains_key(&id) {
            return;
        }
        let latest = pending.entry(id).or_insert(at);
        *latest = (*latest).max(at);
    }

    /// The latest use of `id` noted and not yet written.
    pub(crate) fn latest(&self, id: TokenId) -> Option<Timestamp> {
        self.lock().get(&id).copied()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn take(&self) -> HashMap<TokenId, Timestamp> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back uses whose write failed, so that a database outage delays them only.
    fn restore(&self, uses: HashMap<TokenId, Timestamp>) {
        for (id, at) in uses {
            self.note(id, at);
        }
    }
}

impl PgStore {
    /// Writes the token uses noted since the last write, in one statement; answers how
    /// many tokens it covered. On failure the uses stay noted for the next write.
    ///
    /// # Errors
    /// `Unavailable` (or another `RepoError`) when the statement fails.
    pub async fn write_token_uses(&self) -> Result<usize, RepoError> {
        if self.uses.is_empty() {
            return Ok(0);
        }
        let uses = self.uses.take();
        let (ids, ats): (Vec<Uuid>, Vec<Timestamp>) =
            uses.iter().map(|(id, at)| (id.as_uuid(), *at)).unzip();
        let written = self
            .run(|c| {
                async move {
                    Ok(diesel::sql_query(WRITE)
                        .bind::<Array<SqlUuid>, _>(&ids)
                        .bind::<Array<Timestamptz>, _>(&ats)
                        .execute(c)
                        .await?)
                }
                .scope_boxed()
            })
            .await;
        match written {
            Ok(_) => Ok(uses.len()),
            Err(e) => {
                self.uses.restore(uses);
                Err(e)
            }
        }
    }

    /// Writes the noted token uses every 5 s (`FLUSH_EVERY`), for as long as it runs (the
    /// server spawns it, and calls [`PgStore::write_token_uses`] once more at shutdown).
    pub async fn write_token_uses_periodically(&self) {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.write_token_uses().await {
                tracing::warn!(error = %e, "could not write lastUsedAt; retrying next tick");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_token_keeps_its_latest_use() {
        let pending = PendingUses::default();
        let id = TokenId::from_uuid(Uuid::now_v7());
        pending.note(id, datetime!(2026-01-01 10:05 UTC));
        pending.note(id, datetime!(2026-01-01 10:01 UTC));
        let taken = pending.take();
        assert_eq!(taken.get(&id), Some(&datetime!(2026-01-01 10:05 UTC)));
        assert!(pending.is_empty(), "taking empties");
        pending.note(id, datetime!(2026-01-01 10:09 UTC));
        pending.restore(taken);
        assert_eq!(
            pending.take().get(&id),
            Some(&datetime!(2026-01-01 10:09 UTC)),
            "a failed batch put back does not undo a later use"
        );
    }
}
