//! The [`TenantStore`](fleetpass_ports::store::TenantStore) part of [`PgStore`]: tenants
//! and their directory: environments, users and service accounts; and the backend's health.

use async_trait::async_trait;
use diesel::dsl::exists;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, PgArrayExpressionMethods, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;
use diesel_async::scoped_futures::ScopedFutureExt;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::identity::{Environment, EnvironmentName, Principal, Tenant};
use fleetpass_domain::ids::{EnvironmentId, PrincipalId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::policy::TokenPolicy;
use fleetpass_ports::RepoError;
use fleetpass_ports::store::{NewTenant, Persistence, PrincipalFilter, TenantStore, constraint};
use uuid::Uuid;

use super::{
    PING_TIMEOUT, PgStore, expect_one, insert_audit, insert_token, overfetch, revoke_owned_tokens,
};
use crate::cached::CachedExt as _;
use crate::rows::{
    EnvironmentRow, KIND_SERVICE_ACCOUNT, KIND_USER, PrincipalRow, TenantRow, TokenPolicyRow,
    convert_all,
};
use crate::schema::{api_tokens, environments, fleets, principals, tenants};

#[async_trait]
impl TenantStore for PgStore {
    fn persistence(&self) -> Persistence {
        Persistence::Postgres
    }

    async fn ping(&self) -> Result<(), RepoError> {
        let attempt = || {
            self.run(|c| {
                async move {
                    diesel::sql_query("SELECT 1").execute(c).await?;
                    Ok(())
                }
                .scope_boxed()
            })
        };
        let ping = async {
            // Connections that died in the pool (a database restart) each fail once and
            // leave it; readiness asks again rather than report them as an outage.
            let pooled = self.pool.status().size;
            let mut outcome = attempt().await;
            for _ in 0..pooled {
                if !matches!(outcome, Err(RepoError::Unavailable(_))) {
                    break;
                }
                outcome = attempt().await;
            }
            outcome
        };
        tokio::time::timeout(PING_TIMEOUT, ping)
            .await
            .map_err(|_| RepoError::Unavailable("the database did not answer in time".to_owned()))?
    }

    // ---- tenants ----

    async fn create_tenant(&self, new: &NewTenant) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                diesel::insert_into(tenants::table)
                    .values(TenantRow::from(&new.tenant))
                    .execute(c)
                    .await?;
                diesel::insert_into(environments::table)
                    .values(EnvironmentRow::from(&new.environment))
                    .execute(c)
                    .await?;
                diesel::insert_into(principals::table)
                    .values(PrincipalRow::from(&new.admin))
                    .execute(c)
                    .await?;
                insert_token(c, &new.token, &new.digest).await?;
                insert_audit(c, &new.audit).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Tenant, RepoError> {
        if let Some(cached) = self.auth.tenant(id) {
            return Ok(cached);
        }
        let generation = self.auth.generation();
        let tenant = self
            .run(|c| {
                async move {
                    let row = tenants::table
                        .find(id.as_uuid())
                        .select(TenantRow::as_select())
                        .first(c)
                        .await?;
                    Ok(Tenant::try_from(row)?)
                }
                .scope_boxed()
            })
            .await?;
        self.auth.keep_tenant(generation, tenant.clone());
        Ok(tenant)
    }

    async fn get_token_policy(&self, tenant: TenantId) -> Result<TokenPolicy, RepoError> {
        if let Some(cached) = self.auth.token_policy(tenant) {
            return Ok(cached);
        }
        let generation = self.auth.generation();
        let policy = self
            .run(|c| {
                async move {
                    let row = tenants::table
                        .find(tenant.as_uuid())
                        .select(TokenPolicyRow::as_select())
                        .first(c)
                        .await?;
                    Ok(row.into_policy(tenant.as_uuid())?)
                }
                .scope_boxed()
            })
            .await?;
        self.auth.keep_token_policy(tenant, generation, policy);
        Ok(policy)
    }

    async fn set_token_policy(
        &self,
        tenant: TenantId,
        policy: &TokenPolicy,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        // An auth transaction: every replica's cached policy (what `/api/me` shows and
        // token creation checks) is forgotten as this commits.
        self.auth_transaction(|c| {
            async move {
                let changed = diesel::update(tenants::table.find(tenant.as_uuid()))
                    .set(TokenPolicyRow::from(policy))
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

    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>, RepoError> {
        self.run(|c| {
            async move {
                let mut query = tenants::table
                    .select(TenantRow::as_select())
                    .order(tenants::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(cursor) = page.cursor {
                    query = query.filter(tenants::id.lt(cursor.last_id()));
                }
                let items: Vec<Tenant> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |t| t.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    // ---- environments ----

    async fn create_environment(
        &self,
        env: &Environment,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                diesel::insert_into(environments::table)
                    .values(EnvironmentRow::from(env))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn get_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
    ) -> Result<Environment, RepoError> {
        self.run(|c| {
            async move {
                let row = environments::table
                    .filter(environments::tenant_id.eq(tenant.as_uuid()))
                    .filter(environments::id.eq(id.as_uuid()))
                    .select(EnvironmentRow::as_select())
                    .first(c)
                    .await?;
                Ok(Environment::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn find_environment_by_name(
        &self,
        tenant: TenantId,
        name: &EnvironmentName,
    ) -> Result<Environment, RepoError> {
        self.run(|c| {
            async move {
                let row = environments::table
                    .filter(environments::tenant_id.eq(tenant.as_uuid()))
                    .filter(environments::name.eq(name.as_str()))
                    .select(EnvironmentRow::as_select())
                    .first(c)
                    .await?;
                Ok(Environment::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn list_environments(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<Environment>, RepoError> {
        self.run(|c| {
            async move {
                let mut query = environments::table
                    .filter(environments::tenant_id.eq(tenant.as_uuid()))
                    .select(EnvironmentRow::as_select())
                    .order(environments::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(cursor) = page.cursor {
                    query = query.filter(environments::id.lt(cursor.last_id()));
                }
                let items: Vec<Environment> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |e| e.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn missing_environments(
        &self,
        tenant: TenantId,
        ids: &[EnvironmentId],
    ) -> Result<Vec<EnvironmentId>, RepoError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Uuid> = ids.iter().map(EnvironmentId::as_uuid).collect();
        let found = self
            .run(|c| {
                async move {
                    let found = environments::table
                        .filter(environments::tenant_id.eq(tenant.as_uuid()))
                        .filter(environments::id.eq_any(wanted))
                        .select(environments::id)
                        .load::<Uuid>(c)
                        .await?;
                    Ok(found)
                }
                .scope_boxed()
            })
            .await?;
        Ok(ids
            .iter()
            .copied()
            .filter(|id| !found.contains(&id.as_uuid()))
            .collect())
    }

    async fn rename_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
        name: &EnvironmentName,
        audit: &AuditEvent,
    ) -> Result<Environment, RepoError> {
        self.transaction(|c| {
            async move {
                let row = diesel::update(
                    environments::table
                        .filter(environments::tenant_id.eq(tenant.as_uuid()))
                        .filter(environments::id.eq(id.as_uuid())),
                )
                .set(environments::name.eq(name.as_str()))
                .returning(EnvironmentRow::as_returning())
                .cached()
                .get_result(c)
                .await?;
                insert_audit(c, std::slice::from_ref(audit)).await?;
                Ok(Environment::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn delete_environment(
        &self,
        tenant: TenantId,
        id: EnvironmentId,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                // The row lock makes a concurrent `create_token` scoped to this
                // environment (which key-share locks it, see `lock_scope`) either finish
                // first, so the check below sees its token, or wait until we are done.
                environments::table
                    .filter(environments::tenant_id.eq(tenant.as_uuid()))
                    .filter(environments::id.eq(id.as_uuid()))
                    .select(environments::id)
                    .for_update()
                    .first::<Uuid>(c)
                    .await?;
                // Likewise for a concurrent `create_fleet` (see `lock_environment`).
                let in_use: bool = diesel::select(
                    exists(
                        api_tokens::table
                            .filter(api_tokens::tenant_id.eq(tenant.as_uuid()))
                            .filter(api_tokens::revoked_at.is_null())
                            .filter(api_tokens::environment_ids.contains(vec![id.as_uuid()])),
                    )
                    .or(exists(
                        fleets::table
                            .filter(fleets::tenant_id.eq(tenant.as_uuid()))
                            .filter(fleets::environment_id.eq(id.as_uuid())),
                    )),
                )
                .get_result(c)
                .await?;
                let conflict = || RepoError::Conflict {
                    constraint: constraint::ENVIRONMENT_IN_USE,
                };
                if in_use {
                    return Err(conflict().into());
                }
                // The fleets' foreign key is the backstop should a fleet slip past the
                // check above: the caller must still hear "in use", never a 500.
                let deleted =
                    diesel::delete(environments::table.filter(environments::id.eq(id.as_uuid())))
                        .execute(c)
                        .await;
                match deleted {
                    Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
                        return Err(conflict().into());
                    }
                    other => other?,
                };
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    // ---- principals ----

    async fn create_principal(
        &self,
        principal: &Principal,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.transaction(|c| {
            async move {
                diesel::insert_into(principals::table)
                    .values(PrincipalRow::from(principal))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn get_principal(
        &self,
        tenant: TenantId,
        id: PrincipalId,
    ) -> Result<Principal, RepoError> {
        self.run(|c| {
            async move {
                let row = principals::table
                    .filter(principals::tenant_id.eq(tenant.as_uuid()))
                    .filter(principals::id.eq(id.as_uuid()))
                    .select(PrincipalRow::as_select())
                    .first(c)
                    .await?;
                Ok(Principal::try_from(row)?)
            }
            .scope_boxed()
        })
        .await
    }

    async fn list_principals(
        &self,
        tenant: TenantId,
        filter: PrincipalFilter,
        page: PageRequest,
    ) -> Result<Page<Principal>, RepoError> {
        let kind = match filter {
            PrincipalFilter::Users => KIND_USER,
            PrincipalFilter::ServiceAccounts => KIND_SERVICE_ACCOUNT,
        };
        self.run(|c| {
            async move {
                let mut query = principals::table
                    .filter(principals::tenant_id.eq(tenant.as_uuid()))
                    .filter(principals::kind.eq(kind))
                    .select(PrincipalRow::as_select())
                    .order(principals::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(cursor) = page.cursor {
                    query = query.filter(principals::id.lt(cursor.last_id()));
                }
                let items: Vec<Principal> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |p| p.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn update_principal(
        &self,
        principal: &Principal,
        revoke_tokens_at: Option<Timestamp>,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        let row = PrincipalRow::from(principal);
        self.auth_transaction(|c| {
            async move {
                // The kind is part of the match: a user cannot be "updated" into a
                // service account, and the id of one is not found as the other.
                let changed = diesel::update(
                    principals::table
                        .filter(principals::tenant_id.eq(row.tenant_id))
                        .filter(principals::id.eq(row.id))
                        .filter(principals::kind.eq(&row.kind)),
                )
                .set((
                    principals::email.eq(&row.email),
                    principals::name.eq(&row.name),
                    principals::role.eq(&row.role),
                    principals::disabled.eq(row.disabled),
                ))
                .cached()
                .execute(c)
                .await?;
                expect_one(changed)?;
                if let Some(at) = revoke_tokens_at {
                    revoke_owned_tokens(c, principal.tenant_id, principal.id, at).await?;
                }
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }

    async fn delete_principal(
        &self,
        tenant: TenantId,
        id: PrincipalId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.auth_transaction(|c| {
            async move {
                // Revoke first: the delete's ON DELETE SET NULL then clears the owner of
                // every token it owned, revoked just now or earlier. A principal of
                // another tenant matches nothing in either statement, and the NotFound
                // below rolls the (empty) revocation back anyway.
                revoke_owned_tokens(c, tenant, id, at).await?;
                let deleted = diesel::delete(
                    principals::table
                        .filter(principals::tenant_id.eq(tenant.as_uuid()))
                        .filter(principals::id.eq(id.as_uuid())),
                )
                .execute(c)
                .await?;
                expect_one(deleted)?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
    }
}
