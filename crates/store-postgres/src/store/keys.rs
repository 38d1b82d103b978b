//! The [`KeyStore`](fleetpass_ports::store::KeyStore) part of [`PgStore`]: the JWT signing
//! keys, sealed by the caller.

use async_trait::async_trait;
use diesel::dsl::exists;
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use diesel_async::scoped_futures::ScopedFutureExt;
use fleetpass_domain::Timestamp;
use fleetpass_ports::RepoError;
use fleetpass_ports::store::{KeyStore, StoredSigningKey};

use super::PgStore;
use crate::cached::CachedExt as _;
use crate::rows::SigningKeyRow;
use crate::schema::signing_keys;

#[async_trait]
impl KeyStore for PgStore {
    // ---- signing keys ----

    async fn list_signing_keys(&self) -> Result<Vec<StoredSigningKey>, RepoError> {
        self.run(|c| {
            async move {
                let rows = signing_keys::table
                    .select(SigningKeyRow::as_select())
                    // The kid breaks ties so the order is total.
                    .order((signing_keys::created_at.asc(), signing_keys::kid.asc()))
                    .load::<SigningKeyRow>(c)
                    .await?;
                Ok(rows.into_iter().map(StoredSigningKey::from).collect())
            }
            .scope_boxed()
        })
        .await
    }

    async fn add_signing_key(&self, key: &StoredSigningKey) -> Result<(), RepoError> {
        self.run(|c| {
            async move {
                // A taken kid violates `signing_keys_pkey`, which error.rs reports as
                // `Conflict { constraint: SIGNING_KEY_ID }`.
                diesel::insert_into(signing_keys::table)
                    .values(SigningKeyRow::from(key))
                    .execute(c)
                    .await?;
                Ok(())
            }
            .scope_boxed()
        })
        .await
    }

    async fn retire_signing_key(&self, kid: &str, at: Timestamp) -> Result<(), RepoError> {
        self.run(|c| {
            async move {
                // Only an unretired key changes, so the first `retired_at` stays.
                let retired = diesel::update(
                    signing_keys::table
                        .filter(signing_keys::kid.eq(kid))
                        .filter(signing_keys::retired_at.is_null()),
                )
                .set(signing_keys::retired_at.eq(at))
                .cached()
                .execute(c)
                .await?;
                if retired > 0 {
                    return Ok(());
                }
                let known: bool = diesel::select(exists(
                    signing_keys::table.filter(signing_keys::kid.eq(kid)),
                ))
                .get_result(c)
                .await?;
                if known {
                    Ok(())
                } else {
                    Err(RepoError::NotFound.into())
                }
            }
            .scope_boxed()
        })
        .await
    }
}
