//! The [`TokenStore`](fleetpass_ports::store::TokenStore) part of the in-memory store: API
//! tokens: issuing, looking up, rotating, revoking.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::ids::{EnvironmentId, TenantId, TokenId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::token::{ApiToken, TokenLookup};
use fleetpass_ports::store::{RepoError, TokenStore, constraint};

use crate::{MemoryStore, SecretRow, page_of, within};

#[async_trait]
impl TokenStore for MemoryStore {
    // ---- API tokens ----

    async fn create_token(
        &self,
        token: &ApiToken,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.ensure_tenant(token.tenant_id)?;
            // The foreign keys a database would enforce: the owner and every scoped
            // environment must be of the token's own tenant.
            if let Some(owner) = token.owner_id {
                let owner = s.principal(token.tenant_id, owner)?;
                if owner.disabled || owner.role < token.role {
                    return Err(RepoError::Conflict {
                        constraint: constraint::TOKEN_OWNER_CHANGED,
                    });
                }
            }
            for env in token.scope.ids() {
                s.environment(token.tenant_id, env)?;
            }
            s.ensure_new_token(token, digest)?;
            s.ensure_new_audit([audit])?;

            s.insert_token(token, digest);
            s.record(audit);
            Ok(())
        })
    }

    async fn find_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<TokenLookup>, RepoError> {
        self.read(|s| {
            let lookup = s.secrets.get(digest.as_bytes()).and_then(|secret| {
                let token = s.tokens.get(&secret.token_id.as_uuid())?;
                let owner_disabled = token
                    .owner_id
                    .and_then(|owner| s.principals.get(&owner.as_uuid()))
                    .is_some_and(|owner| owner.disabled);
                Some(TokenLookup {
                    token: token.clone(),
                    secret_valid_until: secret.valid_until,
                    owner_disabled,
                })
            });
            Ok(lookup)
        })
    }

    async fn get_token(&self, tenant: TenantId, id: TokenId) -> Result<ApiToken, RepoError> {
        self.read(|s| s.token(tenant, id).cloned())
    }

    async fn list_tokens(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<ApiToken>, RepoError> {
        self.read(|s| {
            Ok(page_of(&s.tokens, page, |t| {
                t.tenant_id == tenant && environments.is_none_or(|envs| within(&t.scope, envs))
            }))
        })
    }

    async fn update_token(&self, token: &ApiToken, audit: &AuditEvent) -> Result<(), RepoError> {
        self.with(|s| {
            s.token(token.tenant_id, token.id)?;
            s.ensure_new_audit([audit])?;

            let stored = s.token_mut(token.tenant_id, token.id)?;
            stored.name = token.name.clone();
            stored.rate_limit_per_minute = token.rate_limit_per_minute;
            stored.allowed_cidrs = token.allowed_cidrs.clone();
            s.record(audit);
            Ok(())
        })
    }

    async fn revoke_token(
        &self,
        tenant: TenantId,
        id: TokenId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ApiToken, RepoError> {
        self.with(|s| {
            let stored = s.token(tenant, id)?;
            if stored.revoked_at.is_some() {
                return Ok(stored.clone());
            }
            s.ensure_new_audit([audit])?;

            let stored = s.token_mut(tenant, id)?;
            stored.revoked_at = Some(at);
            let revoked = stored.clone();
            s.record(audit);
            Ok(revoked)
        })
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
        self.with(|s| {
            s.token(tenant, id)?;
            s.ensure_new_digest(new_digest)?;
            s.ensure_new_audit([audit])?;

            for secret in s
                .secrets
                .values_mut()
                .filter(|secret| secret.token_id == id)
            {
                let until = secret
                    .valid_until
                    .map_or(old_valid_until, |until| until.min(old_valid_until));
                secret.valid_until = Some(until);
            }
            s.secrets.insert(
                *new_digest.as_bytes(),
                SecretRow {
                    token_id: id,
                    valid_until: None,
                },
            );
            let stored = s.token_mut(tenant, id)?;
            new_hint.clone_into(&mut stored.hint);
            if let Some(cap) = expires_at_most {
                stored.expires_at = stored.expires_at.min(cap);
            }
            let rotated = stored.clone();
            s.record(audit);
            Ok(rotated)
        })
    }

    async fn retire_token_secret(
        &self,
        digest: &SecretDigest,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), RepoError> {
        self.with(|s| {
            s.ensure_new_audit([audit])?;
            if let Some(secret) = s.secrets.get_mut(digest.as_bytes()) {
                secret.valid_until = secret.valid_until.map(|until| until.min(at));
            }
            s.record(audit);
            Ok(())
        })
    }

    async fn touch_token(&self, id: TokenId, at: Timestamp) -> Result<(), RepoError> {
        self.with(|s| {
            let token = s.tokens.get_mut(&id.as_uuid()).ok_or(RepoError::NotFound)?;
            // Never backwards: uses may be recorded out of order.
            token.last_used_at = token.last_used_at.max(Some(at));
            Ok(())
        })
    }
}
