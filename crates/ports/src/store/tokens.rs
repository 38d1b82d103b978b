//! The [`TokenStore`] part of the store port: API tokens: issuing, looking up, rotating,
//! revoking.
//!
//! The obligations in the [`store`](super) module docs hold for every method here.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::ids::{EnvironmentId, TenantId, TokenId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::token::{ApiToken, TokenLookup};

use super::RepoError;

/// The part of [`Store`](super::Store) for API tokens.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    // ---- API tokens ----

    /// Stores a new token and the digest of its secret.
    ///
    /// # Errors
    /// MUST return `Conflict { constraint: TOKEN_OWNER_CHANGED }` when the owner is
    /// disabled, gone or holds a lower role than the token, decided in the same
    /// transaction as the insert and under a lock that a concurrent change of the owner
    /// waits for: no token ever outranks its owner.
    async fn create_token(
        &self,
        token: &ApiToken,
        digest: &SecretDigest,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Finds the token a secret digest belongs to, in any tenant; `Ok(None)` when none.
    /// Rotated-out secrets are still found (with `secret_valid_until` set) until they
    /// are purged; deciding whether they still work is the domain's job.
    async fn find_token_by_digest(
        &self,
        digest: &SecretDigest,
    ) -> Result<Option<TokenLookup>, RepoError>;

    /// Reads a token of `tenant`.
    async fn get_token(&self, tenant: TenantId, id: TokenId) -> Result<ApiToken, RepoError>;

    /// Lists the tokens of `tenant`, newest first; with `environments`, only the
    /// tokens scoped to some of those environments and no others (an env-scoped
    /// caller's view: all-environment tokens are left out).
    async fn list_tokens(
        &self,
        tenant: TenantId,
        environments: Option<&[EnvironmentId]>,
        page: PageRequest,
    ) -> Result<Page<ApiToken>, RepoError>;

    /// Writes a token's mutable fields (`name`, `rate_limit_per_minute`) from `token`.
    async fn update_token(&self, token: &ApiToken, audit: &AuditEvent) -> Result<(), RepoError>;

    /// Revokes a token at `at` and returns it. Revoking a revoked token changes nothing
    /// (its first `revoked_at` stays) and writes no audit event.
    async fn revoke_token(
        &self,
        tenant: TenantId,
        id: TokenId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<ApiToken, RepoError>;

    /// Gives a token a new secret: every current secret of it stops working at
    /// `old_valid_until` (or earlier, if it already would), the new one has no end of its
    /// own, and the token's hint becomes `new_hint`. With `expires_at_most`, the token's
    /// `expires_at` becomes that instant if it was later (the tenant's token policy caps
    /// what a rotation hands out); it never moves later. Returns the updated token.
    #[allow(clippy::too_many_arguments)]
    async fn rotate_token(
        &self,
        tenant: TenantId,
        id: TokenId,
        new_digest: &SecretDigest,
        new_hint: &str,
        old_valid_until: Timestamp,
        expires_at_most: Option<Timestamp>,
        audit: &AuditEvent,
    ) -> Result<ApiToken, RepoError>;

    /// Ends the rotated-out secret with `digest` at `at` (or keeps its earlier end) and
    /// writes `audit`; the token and its current secret are untouched. A digest that is
    /// not a rotated-out secret changes nothing but the audit log.
    async fn retire_token_secret(
        &self,
        digest: &SecretDigest,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), RepoError>;

    /// Records a use of a token at `at` (callers rate-limit this to once a minute).
    /// A store MAY write it later (`lastUsedAt` is coarse), but its own later reads of
    /// the token MUST show it, and it MUST NOT move `last_used_at` backwards. An unknown
    /// token MAY be ignored.
    async fn touch_token(&self, id: TokenId, at: Timestamp) -> Result<(), RepoError>;
}
