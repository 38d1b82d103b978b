//! API tokens: their settings, their lifecycle and how a presented secret becomes an
//! [`Actor`].

use crate::Timestamp;
use crate::access::Actor;
use crate::identity::{EnvScope, Role};
use crate::ids::{PrincipalId, TenantId, TokenId};
use crate::network::AllowedCidrs;
use crate::value::{int_newtype, text_newtype};

text_newtype!(
    /// A token's display name, 1-100 characters.
    TokenName, 1, 100
);
int_newtype!(
    /// A token's lifetime at creation, 1-365 days.
    TokenTtlDays, 1, 365
);
int_newtype!(
    /// A per-token rate limit, 1-100 000 requests a minute (default 300).
    RateLimitPerMinute, 1, 100_000
);
int_newtype!(
    /// How long a rotated-out secret keeps working, 0-168 hours (default 24).
    GraceHours, 0, 168
);

impl TokenName {
    /// The name of a new tenant's first admin token.
    pub fn initial_admin() -> Self {
        Self("initial admin token".to_owned())
    }
}

impl RateLimitPerMinute {
    /// The limit of a token that sets none.
    pub const DEFAULT: u32 = 300;
}

impl GraceHours {
    /// The grace of a rotation that names none: a day, long enough to roll the new
    /// secret out to every client before the old one stops working.
    pub const DEFAULT: u32 = 24;
}

/// [`GraceHours::DEFAULT`].
impl Default for GraceHours {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

impl TokenTtlDays {
    /// The expiry of a token created at `now` with this lifetime.
    pub fn expiry_from(self, now: Timestamp) -> Timestamp {
        now + time::Duration::days(i64::from(self.get()))
    }
}

/// An API token's metadata (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Its id.
    pub id: TokenId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its owner; `None` once the owner was deleted (the token is then revoked).
    pub owner_id: Option<PrincipalId>,
    /// Its name.
    pub name: TokenName,
    /// Its role, fixed at creation.
    pub role: Role,
    /// Its environment scope, fixed at creation.
    pub scope: EnvScope,
    /// Its own limit, if any; otherwise [`RateLimitPerMinute::DEFAULT`].
    pub rate_limit_per_minute: Option<RateLimitPerMinute>,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last used (kept coarse: at most one write a minute).
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// The non-secret hint of its current secret (`fpk_…x7Qa`).
    pub hint: String,
    /// The networks it may be used from; empty: anywhere.
    pub allowed_cidrs: AllowedCidrs,
}

/// A token's status at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// Usable.
    Active,
    /// Past `expires_at`.
    Expired,
    /// Revoked.
    Revoked,
}

impl TokenStatus {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// How long `lastUsedAt` may lag: it is written at most once per this interval.
pub(crate) const LAST_USED_GRANULARITY: time::Duration = time::Duration::minutes(1);

impl ApiToken {
    /// Its status at `now`. Revocation wins over expiry.
    pub fn status(&self, now: Timestamp) -> TokenStatus {
        if self.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if now >= self.expires_at {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }

    /// The limit that applies to it.
    pub fn effective_rate_limit(&self) -> u32 {
        self.rate_limit_per_minute
            .map_or(RateLimitPerMinute::DEFAULT, RateLimitPerMinute::get)
    }

    /// Whether a use at `now` should be written back as `lastUsedAt`.
    pub fn last_used_is_stale(&self, now: Timestamp) -> bool {
        self.last_used_at
            .is_none_or(|at| now - at >= LAST_USED_GRANULARITY)
    }
}

/// What a store finds for a presented secret's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLookup {
    /// The token the secret belongs to.
    pub token: ApiToken,
    /// Set when the secret was rotated out: it works until then.
    pub secret_valid_until: Option<Timestamp>,
    /// Whether the owner is disabled (its tokens are then revoked too, but a check
    /// here means a half-applied disable can never let a request through).
    pub owner_disabled: bool,
}

/// Why a presented, well-formed token does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No token has this secret.
    #[error("unknown API token")]
    Unknown,
    /// The token was revoked (or its owner disabled or deleted).
    #[error("the API token was revoked")]
    Revoked,
    /// The token expired.
    #[error("the API token has expired")]
    Expired,
    /// The secret was rotated and its grace period is over.
    #[error("the API token was rotated and its grace period is over")]
    RotatedOut,
}

/// Decides whether a looked-up token authenticates at `now`.
///
/// # Errors
/// [`AuthFailure`]: unknown (`lookup` is `None`), revoked (or its owner disabled or
/// deleted), expired, or a rotated-out secret past its grace.
pub fn authenticate(
    lookup: Option<TokenLookup>,
    now: Timestamp,
) -> Result<(Actor, ApiToken), AuthFailure> {
    let lookup = lookup.ok_or(AuthFailure::Unknown)?;
    let token = lookup.token;
    if lookup.owner_disabled || token.owner_id.is_none() {
        return Err(AuthFailure::Revoked);
    }
    match token.status(now) {
        TokenStatus::Revoked => return Err(AuthFailure::Revoked),
        TokenStatus::Expired => return Err(AuthFailure::Expired),
        TokenStatus::Active => {}
    }
    if lookup.secret_valid_until.is_some_and(|until| now >= until) {
        return Err(AuthFailure::RotatedOut);
    }
    let actor = Actor {
        tenant_id: token.tenant_id,
        token_id: token.id,
        owner_id: token.owner_id,
        role: token.role,
        scope: token.scope.clone(),
    };
    Ok((actor, token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use uuid::Uuid;

    const NOW: Timestamp = datetime!(2026-11-22 10:00 UTC);

    fn token() -> ApiToken {
        ApiToken {
            id: TokenId::from_uuid(Uuid::from_u128(1)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            owner_id: Some(PrincipalId::from_uuid(Uuid::from_u128(3))),
            name: TokenName::new("ci").unwrap(),
            role: Role::Operator,
            scope: EnvScope::All,
            rate_limit_per_minute: None,
            expires_at: NOW + time::Duration::days(1),
            created_at: NOW,
            last_used_at: None,
            revoked_at: None,
            hint: "fpk_…abcd".into(),
            allowed_cidrs: AllowedCidrs::anywhere(),
        }
    }

    fn lookup(token: ApiToken) -> Option<TokenLookup> {
        Some(TokenLookup {
            token,
            secret_valid_until: None,
            owner_disabled: false,
        })
    }

    #[test]
    fn ttl_bounds_and_expiry() {
        assert!(TokenTtlDays::new(0).is_err());
        assert!(TokenTtlDays::new(366).is_err());
        let ttl = TokenTtlDays::new(365).unwrap();
        assert_eq!(ttl.expiry_from(NOW), datetime!(2027-11-22 10:00 UTC));
    }

    #[test]
    fn active_until_the_expiry_instant() {
        let t = token();
        let just_before = t.expires_at - time::Duration::seconds(1);
        assert!(authenticate(lookup(t.clone()), just_before).is_ok());
        assert_eq!(
            authenticate(lookup(t.clone()), t.expires_at).unwrap_err(),
            AuthFailure::Expired
        );
    }

    #[test]
    fn revoked_disabled_orphaned_and_rotated_out_fail() {
        let mut revoked = token();
        revoked.revoked_at = Some(NOW);
        assert_eq!(
            authenticate(lookup(revoked), NOW).unwrap_err(),
            AuthFailure::Revoked
        );
        let disabled = Some(TokenLookup {
            token: token(),
            secret_valid_until: None,
            owner_disabled: true,
        });
        assert_eq!(
            authenticate(disabled, NOW).unwrap_err(),
            AuthFailure::Revoked
        );
        let mut orphan = token();
        orphan.owner_id = None;
        assert_eq!(
            authenticate(lookup(orphan), NOW).unwrap_err(),
            AuthFailure::Revoked
        );
        let grace = time::Duration::hours(12);
        let rotated = TokenLookup {
            token: token(),
            secret_valid_until: Some(NOW + grace),
            owner_disabled: false,
        };
        assert!(
            authenticate(
                Some(rotated.clone()),
                NOW + grace - time::Duration::seconds(1)
            )
            .is_ok()
        );
        assert_eq!(
            authenticate(Some(rotated), NOW + grace).unwrap_err(),
            AuthFailure::RotatedOut
        );
        assert_eq!(authenticate(None, NOW).unwrap_err(), AuthFailure::Unknown);
    }

    #[test]
    fn last_used_is_written_at_most_once_a_minute() {
        let mut t = token();
        assert!(t.last_used_is_stale(NOW));
        t.last_used_at = Some(NOW);
        assert!(!t.last_used_is_stale(NOW + time::Duration::seconds(59)));
        assert!(t.last_used_is_stale(NOW + time::Duration::seconds(60)));
    }
}
