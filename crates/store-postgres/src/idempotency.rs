//! Idempotency records in PostgreSQL: [`PgStore`] as an
//! [`IdempotencyStore`](fleetpass_ports::idempotency::IdempotencyStore).
//!
//! The claim is one statement, `INSERT … ON CONFLICT (scope, key) DO UPDATE … WHERE`
//! (the old row's window closed, or it is the same request and its lease ran out)
//! `RETURNING claim_id`: PostgreSQL serialises concurrent upserts of one key on the
//! primary key and re-checks the `WHERE` against the row the winner left, so exactly
//! one of any number of concurrent claims, from any number of processes, gets a row
//! back. Only a claim that lost reads the row, to say why (replay, in flight,
//! mismatch); that read decides nothing that a concurrent writer could invalidate.
//!
//! The claim commits with `synchronous_commit = off`: it does not wait for its WAL
//! flush (a disk sync, milliseconds). That loses nothing. PostgreSQL's WAL is one
//! sequence, so the synchronous commit of anything the request then writes flushes the
//! claim with it; a claim lost in a database crash belongs to a request that wrote
//! nothing durable, and running such a request again is harmless. Completing stays
//! synchronous: a replay must survive a crash as surely as the change it describes.

use async_trait::async_trait;
use diesel::upsert::excluded;
use diesel::{BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use fleetpass_domain::Timestamp;
use fleetpass_ports::RepoError;
use fleetpass_ports::idempotency::{Begin, Claim, IdempotencyStore};
use uuid::Uuid;

use crate::PgStore;
use crate::cached::CachedExt as _;
use crate::error::DbError;

diesel::table! {
    /// Idempotency records (`idempotency_keys_pkey` on scope and key).
    idempotency_keys (scope, key) {
        /// Tenant or client address the key belongs to.
        scope -> Text,
        /// The client's key.
        key -> Text,
        /// SHA-256 of the request.
        fingerprint -> Bytea,
        /// The holder of the claim.
        claim_id -> Uuid,
        /// When an uncompleted claim lapses.
        lease_expires_at -> Timestamptz,
        /// The sealed response, once complete.
        response -> Nullable<Bytea>,
        /// When the key was first claimed.
        created_at -> Timestamptz,
        /// The end of the replay window.
        expires_at -> Timestamptz,
    }
}

use idempotency_keys as k;

/// How often a claim that lost is retried when the row it lost to vanished (abandoned
/// or purged) before it could be read. Each retry needs a concurrent writer to win
/// again, so a handful is plenty.
const ATTEMPTS: usize = 4;

/// What a claim that lost reads.
type Existing = (Vec<u8>, Option<Vec<u8>>, Timestamp, Timestamp);

/// Why a claim lost, from the row it lost to; `None` when the row no longer stands in
/// the way (it changed after the claim), so the claim should be tried again.
fn outcome(claim: &Claim, row: Option<Existing>) -> Option<Begin> {
    let (fingerprint, response, lease_expires_at, expires_at) = row?;
    if expires_at <= claim.now {
        return None;
    }
    if fingerprint != claim.fingerprint {
        return Some(Begin::Mismatch);
    }
    match response {
        Some(response) => Some(Begin::Replay(response)),
        None if lease_expires_at > claim.now => Some(Begin::InFlight),
        None => None,
    }
}

/// Claims the key, or finds out why not, on `conn` (inside the caller's transaction).
async fn claim_key(conn: &mut AsyncPgConnection, claim: &Claim) -> Result<Begin, DbError> {
    for _ in 0..ATTEMPTS {
        let upsert = diesel::insert_into(k::table)
            .values((
                k::scope.eq(&claim.scope),
                k::key.eq(&claim.key),
                k::fingerprint.eq(&claim.fingerprint[..]),
                k::claim_id.eq(claim.claim_id),
                k::lease_expires_at.eq(claim.lease_until),
                k::created_at.eq(claim.now),
                k::expires_at.eq(claim.expires_at),
            ))
            .on_conflict((k::scope, k::key))
            .do_update()
            .set((
                k::fingerprint.eq(excluded(k::fingerprint)),
                k::claim_id.eq(excluded(k::claim_id)),
                k::lease_expires_at.eq(excluded(k::lease_expires_at)),
                k::response.eq(None::<Vec<u8>>),
                k::created_at.eq(excluded(k::created_at)),
                k::expires_at.eq(excluded(k::expires_at)),
            ));
        // Take the row over only when its window closed, or when it is this
        // very request whose holder's lease ran out. (`QueryDsl::filter` is
        // for tables; an upsert's `WHERE` is `FilterDsl`'s.)
        let upsert = diesel::query_dsl::methods::FilterDsl::filter(
            upsert,
            k::expires_at.le(claim.now).or(k::response
                .is_null()
                .and(k::lease_expires_at.le(claim.now))
                .and(k::fingerprint.eq(excluded(k::fingerprint)))),
        );
        let claimed: Option<Uuid> = upsert
            .returning(k::claim_id)
            .cached()
            .get_result(conn)
            .await
            .optional()?;
        if claimed.is_some() {
            return Ok(Begin::Fresh);
        }
        let row: Option<Existing> = k::table
            .filter(k::scope.eq(&claim.scope))
            .filter(k::key.eq(&claim.key))
            .select((
                k::fingerprint,
                k::response,
                k::lease_expires_at,
                k::expires_at,
            ))
            .first(conn)
            .await
            .optional()?;
        if let Some(found) = outcome(claim, row) {
            return Ok(found);
        }
    }
    // Lost every time to a row that then went away: the key is busy.
    Ok(Begin::InFlight)
}

#[async_trait]
impl IdempotencyStore for PgStore {
    async fn begin(&self, claim: &Claim) -> Result<Begin, RepoError> {
        let claim = claim.clone();
        self.run(move |c| {
            async move {
                c.transaction(|t| {
                    async move {
                        // See the module docs: the claim's durability rides on the
                        // handler's own commit, so it need not wait for a WAL flush.
                        diesel::sql_query("SET LOCAL synchronous_commit = off")
                            .execute(t)
                            .await?;
                        claim_key(t, &claim).await
                    }
                    .scope_boxed()
                })
                .await
            }
            .scope_boxed()
        })
        .await
    }

    async fn complete(
        &self,
        scope: &str,
        key: &str,
        claim_id: Uuid,
        response: &[u8],
    ) -> Result<bool, RepoError> {
        self.run(move |c| {
            async move {
                let changed = diesel::update(
                    k::table
                        .filter(k::scope.eq(scope))
                        .filter(k::key.eq(key))
                        .filter(k::claim_id.eq(claim_id))
                        .filter(k::response.is_null()),
                )
                .set(k::response.eq(Some(response)))
                .cached()
                .execute(c)
                .await?;
                Ok::<_, DbError>(changed == 1)
            }
            .scope_boxed()
        })
        .await
    }

    async fn abandon(&self, scope: &str, key: &str, claim_id: Uuid) -> Result<(), RepoError> {
        self.run(move |c| {
            async move {
                diesel::delete(
                    k::table
                        .filter(k::scope.eq(scope))
                        .filter(k::key.eq(key))
                        .filter(k::claim_id.eq(claim_id))
                        .filter(k::response.is_null()),
                )
                .execute(c)
                .await?;
                Ok::<_, DbError>(())
            }
            .scope_boxed()
        })
        .await
    }

    async fn purge(&self, now: Timestamp) -> Result<u64, RepoError> {
        self.run(move |c| {
            async move {
                let gone = diesel::delete(k::table.filter(k::expires_at.le(now)))
                    .execute(c)
                    .await?;
                Ok::<_, DbError>(u64::try_from(gone).unwrap_or(u64::MAX))
            }
            .scope_boxed()
        })
        .await
    }
}
