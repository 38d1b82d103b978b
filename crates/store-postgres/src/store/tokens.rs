//! The [`TokenStore`](fleetpass_ports::store::TokenStore) part of [`PgStore`]: API tokens:
//! issuing, looking up, rotating, revoking.

use async_trait::async_trait;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, JoinOnDsl, NullableExpressionMethods,
    OptionalExtension, PgArrayExpressionMethods, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;
use diesel_async::scoped_futures::ScopedFutureExt;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::ids::{EnvironmentId, TenantId, TokenId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::token::{ApiToken, TokenLookup};
use fleetpass_ports::RepoError;
use fleetpass_ports::store::TokenStore;
use uuid::Uuid;

use super::{
    PgStore, expect_one, insert_audit, insert_token, load_token, lock_owner_at_least, lock_scope,
    overfetch,
};
use crate::cached::CachedExt as _;
use crate::rows::{SecretRow, TokenRow, convert_all, rate_limit_column};
use crate::schema::{api_token_secrets, api_tokens, principals};

#[async_trait]
impl TokenStore for PgStore {
    // ---- API tokens ----

    /// Also `NotFound` when the token is scoped to an id that is not (or, after a
    /// concurrent delete, no longer) an environment of its tenant; see `lock_scope`.
    async fn create_token(
        &self,
        token: &ApiToken,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                lock_scope(c, token.tenant_id, &token.scope).await?;
                lock_owner_at_least(c, token).await?;
                insert_token(c, token, digest).await?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn find_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<TokenLookup>, RepoError> {
        if let Some(cached) = self.auth.token(digest) {
            return Ok(cached);
        }
        let generation = self.auth.generation();
        let uses = &self.uses;
        let found = self
            .run(|c| {
                async move {
                    let found = api_token_secrets::table
                        .inner_join(api_tokens::table)
                        .left_join(
                            principals::table
                                .on(principals::id.nullable().eq(api_tokens::owner_id)),
                        )
                        .filter(api_token_secrets::digest.eq(digest.as_bytes().as_slice()))
                        .select((
                            TokenRow::as_select(),
                            api_token_secrets::valid_until,
                            principals::disabled.nullable(),
                        ))
                        .first::<(TokenRow, Option<Timestamp>, Option<bool>)>(c)
                        .await
                        .optional()?;
                    let Some((row, secret_valid_until, owner_disabled)) = found else {
                        return Ok(None);
                    };
                    let mut token = ApiToken::try_from(row)?;
                    // A use noted here but not yet written (`batched.rs`): shown
                    // from memory, so authentication never waits for the batch.
                    token.last_used_at = token.last_used_at.max(uses.latest(token.id));
                    Ok(Some(TokenLookup {
                        token,
                        secret_valid_until,
                        // No owner row: the owner was deleted, which `authenticate` already
                        // refuses through `owner_id: None`.
                        owner_disabled: owner_disabled.unwrap_or(false),
                    }))
                }
                .scope_boxed()
            })
            .await?;
        self.auth.keep_token(digest, generation, found.clone());
        Ok(found)
    }

    async fn get_token(&self, tenant: TenantId, id: TokenId) -> Result<ApiToken, RepoError> {
        self.write_token_uses().await?;
        self.run(|c| async move { load_token(c, tenant, id).await }.scope_boxed())
            .await
    }

    async fn list_tokens(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<ApiToken>, RepoError> {
        self.write_token_uses().await?;
        let envs: Option<Vec<Uuid>> =
            environments.map(|ids| ids.iter().map(EnvironmentId::as_uuid).collect());
        self.run(|c| {
            async move {
                let mut query = api_tokens::table
                    .filter(api_tokens::tenant_id.eq(tenant.as_uuid()))
                    .select(TokenRow::as_select())
                    .order(api_tokens::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                // In SQL, so that pages stay full and cursors right.
                if let Some(envs) = &envs {
                    query = query
                        .filter(api_tokens::all_environments.eq(false))
                        .filter(api_tokens::environment_ids.is_contained_by(envs));
                }
                if let Some(cursor) = page.cursor {
                    query = query.filter(api_tokens::id.lt(cursor.last_id()));
                }
                let items: Vec<ApiToken> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |t| t.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn update_token(&self, token: &ApiToken, audit: &AuditEvent) -> Result<(), RepoError> {
        self.auth_transaction(|c| {
            async move {
                let changed = diesel::update(
                    api_tokens::table
                        .filter(api_tokens::tenant_id.eq(token.tenant_id.as_uuid()))
                        .filter(api_tokens::id.eq(token.id.as_uuid())),
                )
                .set((
                    api_tokens::name.eq(token.name.as_str()),
                    api_tokens::rate_limit_per_minute
                        .eq(token.rate_limit_per_minute.map(rate_limit_column)),
                    api_tokens::allowed_cidrs.eq(token.allowed_cidrs.to_strings()),
                ))
                .cached()
                .execute(c)
                .await?;
                expect_one(changed)?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn revoke_token(
        &self,
        tenant: TenantId,
        id: TokenId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ApiToken, RepoError> {
        self.auth_transaction(|c| {
            async move {
                // Only an unrevoked token changes, so the first `revoked_at` stays and a
                // repeat (or a concurrent second revocation) writes no audit event.
                let revoked = diesel::update(
                    api_tokens::table
                        .filter(api_tokens::tenant_id.eq(tenant.as_uuid()))
                        .filter(api_tokens::id.eq(id.as_uuid()))
                        .filter(api_tokens::revoked_at.is_null()),
                )
                .set(api_tokens::revoked_at.eq(at))
                .returning(TokenRow::as_returning())
                .cached()
                .get_result(c)
                .await
                .optional()?;
                match revoked {
                    Some(row) => {
                        insert_audit(c, std::slice::from_ref(audit)).await?;
                        Ok(ApiToken::try_from(row)?)
                    }
                    None => load_token(c, tenant, id).await,
                }
            }
            .scope_boxed()
        })
        .await
    }

    async fn rotate_token(
        &self,
        tenant: TenantId,
        id: TokenId,
        new_digest: &SecretDigest,
        new_hint: &str,
        old_valid_until: Timestamp,
        expires_at_most: Option<Timestamp>,
        audit: &AuditEvent,
    ) -> Result<ApiToken, RepoError> {
        self.auth_transaction(|c| {
            async move {
                // The tenant-scoped update both checks the token is this tenant's and
                // locks its row, so two rotations of one token run one after the other.
                let mut row = diesel::update(
                    api_tokens::table
                        .filter(api_tokens::tenant_id.eq(tenant.as_uuid()))
                        .filter(api_tokens::id.eq(id.as_uuid())),
                )
                .set(api_tokens::hint.eq(new_hint))
                .returning(TokenRow::as_returning())
                .cached()
                .get_result(c)
                .await?;
                // Under the row lock taken above, so a concurrent rotation with a later
                // cap cannot move the expiry back out.
                if let Some(cap) = expires_at_most.filter(|cap| row.expires_at > *cap) {
                    row = diesel::update(api_tokens::table.find(id.as_uuid()))
                        .set(api_tokens::expires_at.eq(cap))
                        .returning(TokenRow::as_returning())
                        .cached()
                        .get_result(c)
                        .await?;
                }
                // valid_until = LEAST(COALESCE(valid_until, t), t): secrets without an
                // end, or ending later, end at t; ones ending sooner keep their end.
                diesel::update(
                    api_token_secrets::table
                        .filter(api_token_secrets::token_id.eq(id.as_uuid()))
                        .filter(
                            api_token_secrets::valid_until
                                .is_null()
                                .or(api_token_secrets::valid_until.gt(old_valid_until)),
                        ),
                )
                .set(api_token_secrets::valid_until.eq(old_valid_until))
                .cached()
                .execute(c)
                .await?;
                // After the update above, so the new secret keeps no end.
                diesel::insert_into(api_token_secrets::table)
                    .values(SecretRow::current(id, new_digest))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(ApiToken::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn retire_token_secret(
        &self,
        digest: &SecretDigest,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.auth_transaction(|c| {
            async move {
                // Only a secret with an end (rotated out), and only to end it sooner:
                // the current secret, whose `valid_until` is NULL, is never matched.
                diesel::update(
                    api_token_secrets::table
                        .filter(api_token_secrets::digest.eq(digest.as_bytes().as_slice()))
                        .filter(api_token_secrets::valid_until.gt(at)),
                )
                .set(api_token_secrets::valid_until.eq(at))
                .cached()
                .execute(c)
                .await?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(())
            }
            .scope_boxed()
        })
        .await
    }

    async fn touch_token(&self, id: TokenId, at: Timestamp) -> Result<(), RepoError> {
        // Noted, written in a batch (`batched.rs`): the request does not wait for it.
        if self.auth.use_is_news(id, at) {
            self.uses.note(id, at);
        }
        Ok(())
    }
}
