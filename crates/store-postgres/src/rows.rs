//! The adapter's row types and their conversions to and from domain values.
//!
//! Rows are plain column bags that diesel reads and writes; they never leave this crate.
//! Reading goes through `TryFrom<Row>` because the domain validates everything it
//! holds: a row that fails validation is reported as corrupt rather than papered over.
//!
//! Every insertable row says `treat_none_as_default_value = false`: `None` is written as
//! `NULL` rather than `DEFAULT`, so an insert's SQL never depends on its values and
//! diesel prepares it once per connection instead of on every execution (a round trip
//! saved on every write). It changes nothing stored: no nullable column has a default.

use diesel::prelude::*;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::{AuditAction, AuditActor, AuditEvent};
use fleetpass_domain::fleet::{
    Agent, AgentVersion, EnrollmentToken, EnrollmentTtlHours, Fleet, FleetName, Hostname, MaxUses,
    Platform,
};
use fleetpass_domain::identity::{
    Email, EnvScope, Environment, EnvironmentName, PersonName, Principal, PrincipalKind, Role,
    ServiceAccountName, Tenant, TenantName,
};
use fleetpass_domain::ids::{
    AgentId, AuditEventId, EnrollmentTokenId, EnvironmentId, FleetId, PrincipalId, ScanId,
    ScheduleId, ShareLinkId, TenantId, TokenId,
};
use fleetpass_domain::label::Labels;
use fleetpass_domain::network::AllowedCidrs;
use fleetpass_domain::policy::TokenPolicy;
use fleetpass_domain::scan::{MaxAssets, MaxDurationMinutes, Scenario};
use fleetpass_domain::schedule::{IntervalMinutes, Schedule};
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::{Artifact, MaxAccesses, ShareLabel, ShareLink};
use fleetpass_domain::token::{ApiToken, RateLimitPerMinute, TokenName, TokenTtlDays};
use fleetpass_ports::RepoError;
use fleetpass_ports::store::StoredSigningKey;
use uuid::Uuid;

mod scan_rows;

pub(crate) use scan_rows::{ArtifactsRow, ScanRow};

use crate::error::CorruptRow;
use crate::schema::{
    agents, api_token_secrets, api_tokens, audit_events, enrollment_tokens, environments, fleets,
    principals, schedules, share_links, signing_keys, tenants,
};

/// The stored `kind` of a user.
pub(crate) const KIND_USER: &str = "user";
/// The stored `kind` of a service account.
pub(crate) const KIND_SERVICE_ACCOUNT: &str = "service_account";

/// A `tenants` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub(crate) struct TenantRow {
    pub id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
}

impl From<&Tenant> for TenantRow {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id.as_uuid(),
            name: t.name.as_str().to_owned(),
            created_at: t.created_at,
        }
    }
}

impl TryFrom<TenantRow> for Tenant {
    type Error = RepoError;

    fn try_from(row: TenantRow) -> Result<Self, RepoError> {
        Ok(Self {
            id: TenantId::from_uuid(row.id),
            name: TenantName::new(&row.name).map_err(|e| CorruptRow::repo("tenants", row.id, e))?,
            created_at: row.created_at,
        })
    }
}

/// A tenant's token policy: two columns of its `tenants` row, read and written on
/// their own (the tenant's other columns never change with it).
#[derive(Debug, Clone, Copy, Queryable, Selectable, AsChangeset)]
#[diesel(treat_none_as_null = true)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub(crate) struct TokenPolicyRow {
    pub max_token_days: Option<i32>,
    pub max_enrollment_hours: Option<i32>,
}

impl From<&TokenPolicy> for TokenPolicyRow {
    fn from(p: &TokenPolicy) -> Self {
        // The domain bounds both (365, 720), far inside `i32`.
        let column = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        Self {
            max_token_days: p.max_token_days.map(|d| column(d.get())),
            max_enrollment_hours: p.max_enrollment_hours.map(|h| column(h.get())),
        }
    }
}

impl TokenPolicyRow {
    /// The policy of tenant `id`, whose row this is.
    pub(crate) fn into_policy(self, id: Uuid) -> Result<TokenPolicy, RepoError> {
        let corrupt = |reason: &dyn std::fmt::Display| CorruptRow::repo("tenants", id, reason);
        Ok(TokenPolicy {
            max_token_days: self
                .max_token_days
                .map(|d| TokenTtlDays::new(i64::from(d)))
                .transpose()
                .map_err(|e| corrupt(&e))?,
            max_enrollment_hours: self
                .max_enrollment_hours
                .map(|h| EnrollmentTtlHours::new(i64::from(h)))
                .transpose()
                .map_err(|e| corrupt(&e))?,
        })
    }
}

/// An `environments` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = environments, check_for_backend(diesel::pg::Pg))]
pub(crate) struct EnvironmentRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
}

impl From<&Environment> for EnvironmentRow {
    fn from(e: &Environment) -> Self {
        Self {
            id: e.id.as_uuid(),
            tenant_id: e.tenant_id.as_uuid(),
            name: e.name.as_str().to_owned(),
            created_at: e.created_at,
        }
    }
}

impl TryFrom<EnvironmentRow> for Environment {
    type Error = RepoError;

    fn try_from(row: EnvironmentRow) -> Result<Self, RepoError> {
        Ok(Self {
            id: EnvironmentId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            name: EnvironmentName::new(&row.name)
                .map_err(|e| CorruptRow::repo("environments", row.id, e))?,
            created_at: row.created_at,
        })
    }
}

/// A `principals` row: users and service accounts share the table, told apart by
/// `kind`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = principals, check_for_backend(diesel::pg::Pg))]
pub(crate) struct PrincipalRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: String,
    pub disabled: bool,
    pub created_at: Timestamp,
}

impl From<&Principal> for PrincipalRow {
    fn from(p: &Principal) -> Self {
        let (kind, email, name) = match &p.kind {
            PrincipalKind::User { email, name } => (
                KIND_USER,
                Some(email.as_str().to_owned()),
                name.as_ref().map(|n| n.as_str().to_owned()),
            ),
            PrincipalKind::ServiceAccount { name } => {
                (KIND_SERVICE_ACCOUNT, None, Some(name.as_str().to_owned()))
            }
        };
        Self {
            id: p.id.as_uuid(),
            tenant_id: p.tenant_id.as_uuid(),
            kind: kind.to_owned(),
            email,
            name,
            role: p.role.as_str().to_owned(),
            disabled: p.disabled,
            created_at: p.created_at,
        }
    }
}

impl TryFrom<PrincipalRow> for Principal {
    type Error = RepoError;

    fn try_from(row: PrincipalRow) -> Result<Self, RepoError> {
        let corrupt =
            |reason: &dyn std::fmt::Display| CorruptRow::repo("principals", row.id, reason);
        let kind = match (row.kind.as_str(), &row.email, &row.name) {
            (KIND_USER, Some(email), name) => PrincipalKind::User {
                email: Email::new(email).map_err(|e| corrupt(&e))?,
                name: name
                    .as_deref()
                    .map(PersonName::new)
                    .transpose()
                    .map_err(|e| corrupt(&e))?,
            },
            (KIND_SERVICE_ACCOUNT, None, Some(name)) => PrincipalKind::ServiceAccount {
                name: ServiceAccountName::new(name).map_err(|e| corrupt(&e))?,
            },
            (kind, _, _) => return Err(corrupt(&format!("kind {kind:?} with these name columns"))),
        };
        Ok(Self {
            id: PrincipalId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            kind,
            role: Role::parse(&row.role).map_err(|e| corrupt(&e))?,
            disabled: row.disabled,
            created_at: row.created_at,
        })
    }
}

/// An `api_tokens` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = api_tokens, check_for_backend(diesel::pg::Pg))]
pub(crate) struct TokenRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub owner_id: Option<Uuid>,
    pub name: String,
    pub role: String,
    pub all_environments: bool,
    pub environment_ids: Vec<Uuid>,
    pub rate_limit_per_minute: Option<i32>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub hint: String,
    pub allowed_cidrs: Vec<String>,
}

impl From<&ApiToken> for TokenRow {
    fn from(t: &ApiToken) -> Self {
        Self {
            id: t.id.as_uuid(),
            tenant_id: t.tenant_id.as_uuid(),
            owner_id: t.owner_id.map(|o| o.as_uuid()),
            name: t.name.as_str().to_owned(),
            role: t.role.as_str().to_owned(),
            all_environments: t.scope.is_all(),
            environment_ids: t.scope.ids().into_iter().map(|e| e.as_uuid()).collect(),
            rate_limit_per_minute: t.rate_limit_per_minute.map(rate_limit_column),
            expires_at: t.expires_at,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
            hint: t.hint.clone(),
            allowed_cidrs: t.allowed_cidrs.to_strings(),
        }
    }
}

/// A rate limit as stored. The domain bounds it to 100 000, far inside `i32`.
pub(crate) fn rate_limit_column(limit: RateLimitPerMinute) -> i32 {
    i32::try_from(limit.get()).unwrap_or(i32::MAX)
}

impl TryFrom<TokenRow> for ApiToken {
    type Error = RepoError;

    fn try_from(row: TokenRow) -> Result<Self, RepoError> {
        let corrupt =
            |reason: &dyn std::fmt::Display| CorruptRow::repo("api_tokens", row.id, reason);
        let envs = row
            .environment_ids
            .iter()
            .copied()
            .map(EnvironmentId::from_uuid)
            .collect();
        Ok(Self {
            id: TokenId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            owner_id: row.owner_id.map(PrincipalId::from_uuid),
            name: TokenName::new(&row.name).map_err(|e| corrupt(&e))?,
            role: Role::parse(&row.role).map_err(|e| corrupt(&e))?,
            scope: EnvScope::from_wire(row.all_environments, envs).map_err(|e| corrupt(&e))?,
            rate_limit_per_minute: row
                .rate_limit_per_minute
                .map(|l| RateLimitPerMinute::new(i64::from(l)))
                .transpose()
                .map_err(|e| corrupt(&e))?,
            expires_at: row.expires_at,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
            hint: row.hint,
            allowed_cidrs: AllowedCidrs::parse(&row.allowed_cidrs).map_err(|e| corrupt(&e))?,
        })
    }
}

/// An `api_token_secrets` row, as inserted (lookups read single columns).
#[derive(Debug, Clone, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = api_token_secrets, check_for_backend(diesel::pg::Pg))]
pub(crate) struct SecretRow {
    pub digest: Vec<u8>,
    pub token_id: Uuid,
    pub valid_until: Option<Timestamp>,
}

impl SecretRow {
    /// The current (unbounded) secret of `token`.
    pub(crate) fn current(token: TokenId, digest: &SecretDigest) -> Self {
        Self {
            digest: digest.as_bytes().to_vec(),
            token_id: token.as_uuid(),
            valid_until: None,
        }
    }
}

/// An `audit_events` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub(crate) struct AuditRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub target_id: Option<Uuid>,
    pub at: Timestamp,
    pub details: serde_json::Value,
    pub environment_ids: Option<Vec<Uuid>>,
}

impl From<&AuditEvent> for AuditRow {
    fn from(e: &AuditEvent) -> Self {
        Self {
            id: e.id.as_uuid(),
            tenant_id: e.tenant_id.as_uuid(),
            actor_kind: e.actor.kind().to_owned(),
            actor_id: e.actor.id(),
            action: e.action.as_str().to_owned(),
            target_id: e.target_id,
            at: e.at,
            details: e.details.clone(),
            environment_ids: match &e.scope {
                EnvScope::All => None,
                EnvScope::Only(ids) => Some(ids.iter().map(|id| id.as_uuid()).collect()),
            },
        }
    }
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = RepoError;

    fn try_from(row: AuditRow) -> Result<Self, RepoError> {
        let actor = AuditActor::from_parts(&row.actor_kind, row.actor_id).ok_or_else(|| {
            CorruptRow::repo(
                "audit_events",
                row.id,
                format!("actor kind {:?} with this actor id", row.actor_kind),
            )
        })?;
        let action = AuditAction::parse(&row.action).ok_or_else(|| {
            CorruptRow::repo(
                "audit_events",
                row.id,
                format!("unknown action {:?}", row.action),
            )
        })?;
        Ok(Self {
            id: AuditEventId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            actor,
            action,
            target_id: row.target_id,
            at: row.at,
            details: row.details,
            scope: match row.environment_ids {
                None => EnvScope::All,
                Some(ids) => EnvScope::from_wire(
                    false,
                    ids.into_iter().map(EnvironmentId::from_uuid).collect(),
                )
                .map_err(|e| CorruptRow::repo("audit_events", row.id, e.to_string()))?,
            },
        })
    }
}

/// A `fleets` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = fleets, check_for_backend(diesel::pg::Pg))]
pub(crate) struct FleetRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub environment_id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
}

impl From<&Fleet> for FleetRow {
    fn from(f: &Fleet) -> Self {
        Self {
            id: f.id.as_uuid(),
            tenant_id: f.tenant_id.as_uuid(),
            environment_id: f.environment_id.as_uuid(),
            name: f.name.as_str().to_owned(),
            created_at: f.created_at,
        }
    }
}

impl TryFrom<FleetRow> for Fleet {
    type Error = RepoError;

    fn try_from(row: FleetRow) -> Result<Self, RepoError> {
        Ok(Self {
            id: FleetId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            environment_id: EnvironmentId::from_uuid(row.environment_id),
            name: FleetName::new(&row.name).map_err(|e| CorruptRow::repo("fleets", row.id, e))?,
            created_at: row.created_at,
        })
    }
}

/// An `enrollment_tokens` row as read: everything but the digest, which only lookups
/// use.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = enrollment_tokens, check_for_backend(diesel::pg::Pg))]
pub(crate) struct EnrollmentTokenRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub fleet_id: Uuid,
    pub max_uses: i32,
    pub uses: i32,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub hint: String,
    pub labels: serde_json::Value,
    pub allowed_cidrs: Vec<String>,
}

/// An `enrollment_tokens` row as inserted: the token and the digest of its secret.
#[derive(Debug, Clone, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = enrollment_tokens, check_for_backend(diesel::pg::Pg))]
pub(crate) struct NewEnrollmentTokenRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub fleet_id: Uuid,
    pub digest: Vec<u8>,
    pub max_uses: i32,
    pub uses: i32,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub hint: String,
    pub labels: serde_json::Value,
    pub allowed_cidrs: Vec<String>,
}

/// Labels as stored: a JSON object of strings.
pub(crate) fn labels_column(labels: &Labels) -> serde_json::Value {
    serde_json::to_value(labels).unwrap_or_else(|_| serde_json::json!({}))
}

/// Labels as read back, checked by the domain again.
pub(crate) fn labels_of(value: serde_json::Value) -> Result<Labels, serde_json::Error> {
    serde_json::from_value(value)
}

/// A count or limit as stored. The domain bounds every limit (uses, accesses, minutes,
/// assets) to at most 100 000, far inside `i32`, and counts stay below their limits
/// (an unlimited link's accesses would need two billion opens to get near); anything
/// beyond saturates, and the tables' CHECKs refuse what breaks a limit.
pub(super) fn count_column(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl NewEnrollmentTokenRow {
    /// The row of `token` with the digest of its secret.
    pub(crate) fn new(token: &EnrollmentToken, digest: &SecretDigest) -> Self {
        Self {
            id: token.id.as_uuid(),
            tenant_id: token.tenant_id.as_uuid(),
            fleet_id: token.fleet_id.as_uuid(),
            digest: digest.as_bytes().to_vec(),
            max_uses: count_column(token.max_uses.get()),
            uses: count_column(token.uses),
            expires_at: token.expires_at,
            created_at: token.created_at,
            revoked_at: token.revoked_at,
            hint: token.hint.clone(),
            labels: labels_column(&token.labels),
            allowed_cidrs: token.allowed_cidrs.to_strings(),
        }
    }
}

impl TryFrom<EnrollmentTokenRow> for EnrollmentToken {
    type Error = RepoError;

    fn try_from(row: EnrollmentTokenRow) -> Result<Self, RepoError> {
        let corrupt =
            |reason: &dyn std::fmt::Display| CorruptRow::repo("enrollment_tokens", row.id, reason);
        Ok(Self {
            id: EnrollmentTokenId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            fleet_id: FleetId::from_uuid(row.fleet_id),
            max_uses: MaxUses::new(i64::from(row.max_uses)).map_err(|e| corrupt(&e))?,
            uses: u32::try_from(row.uses).map_err(|e| corrupt(&e))?,
            expires_at: row.expires_at,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
            hint: row.hint,
            labels: labels_of(row.labels).map_err(|e| corrupt(&e))?,
            allowed_cidrs: AllowedCidrs::parse(&row.allowed_cidrs).map_err(|e| corrupt(&e))?,
        })
    }
}

/// An `agents` row as read: everything but the secret's digest, which only
/// `find_agent_credentials` reads.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = agents, check_for_backend(diesel::pg::Pg))]
pub(crate) struct AgentRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub fleet_id: Uuid,
    pub hostname: String,
    pub platform: String,
    pub agent_version: Option<String>,
    pub enrolled_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub labels: serde_json::Value,
}

/// An `agents` row as inserted: the agent and the digest of its secret.
#[derive(Debug, Clone, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = agents, check_for_backend(diesel::pg::Pg))]
pub(crate) struct NewAgentRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub fleet_id: Uuid,
    pub hostname: String,
    pub platform: String,
    pub agent_version: Option<String>,
    pub secret_digest: Vec<u8>,
    pub enrolled_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub labels: serde_json::Value,
}

impl NewAgentRow {
    /// The row of `agent` with the digest of its secret.
    pub(crate) fn new(agent: &Agent, secret: &SecretDigest) -> Self {
        Self {
            id: agent.id.as_uuid(),
            tenant_id: agent.tenant_id.as_uuid(),
            fleet_id: agent.fleet_id.as_uuid(),
            hostname: agent.hostname.as_str().to_owned(),
            platform: agent.platform.as_str().to_owned(),
            agent_version: agent.agent_version.as_ref().map(|v| v.as_str().to_owned()),
            secret_digest: secret.as_bytes().to_vec(),
            enrolled_at: agent.enrolled_at,
            last_seen_at: agent.last_seen_at,
            revoked_at: agent.revoked_at,
            labels: labels_column(&agent.labels),
        }
    }
}

impl TryFrom<AgentRow> for Agent {
    type Error = RepoError;

    fn try_from(row: AgentRow) -> Result<Self, RepoError> {
        let corrupt = |reason: &dyn std::fmt::Display| CorruptRow::repo("agents", row.id, reason);
        Ok(Self {
            id: AgentId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            fleet_id: FleetId::from_uuid(row.fleet_id),
            hostname: Hostname::new(&row.hostname).map_err(|e| corrupt(&e))?,
            platform: Platform::new(&row.platform).map_err(|e| corrupt(&e))?,
            agent_version: row
                .agent_version
                .as_deref()
                .map(AgentVersion::new)
                .transpose()
                .map_err(|e| corrupt(&e))?,
            enrolled_at: row.enrolled_at,
            last_seen_at: row.last_seen_at,
            revoked_at: row.revoked_at,
            labels: labels_of(row.labels).map_err(|e| corrupt(&e))?,
        })
    }
}

/// A `signing_keys` row.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = signing_keys, check_for_backend(diesel::pg::Pg))]
pub(crate) struct SigningKeyRow {
    pub kid: String,
    pub sealed_private_key: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

impl From<&StoredSigningKey> for SigningKeyRow {
    fn from(k: &StoredSigningKey) -> Self {
        Self {
            kid: k.kid.clone(),
            sealed_private_key: k.sealed_private_key.clone(),
            public_key: k.public_key.clone(),
            created_at: k.created_at,
            retired_at: k.retired_at,
        }
    }
}

impl From<SigningKeyRow> for StoredSigningKey {
    fn from(row: SigningKeyRow) -> Self {
        // Nothing to validate: the key material is opaque here, and whoever unseals it
        // checks it.
        Self {
            kid: row.kid,
            sealed_private_key: row.sealed_private_key,
            public_key: row.public_key,
            created_at: row.created_at,
            retired_at: row.retired_at,
        }
    }
}

/// A `share_links` row as read: everything but the digest, which only lookups use.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = share_links, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ShareLinkRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub scan_id: Uuid,
    pub scope: String,
    pub label: Option<String>,
    pub expires_at: Timestamp,
    pub max_accesses: Option<i32>,
    pub access_count: i32,
    pub last_accessed_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub hint: String,
}

/// A `share_links` row as inserted: the link and the digest of its token.
#[derive(Debug, Clone, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = share_links, check_for_backend(diesel::pg::Pg))]
pub(crate) struct NewShareLinkRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub scan_id: Uuid,
    pub digest: Vec<u8>,
    pub scope: String,
    pub label: Option<String>,
    pub expires_at: Timestamp,
    pub max_accesses: Option<i32>,
    pub access_count: i32,
    pub last_accessed_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub hint: String,
}

impl NewShareLinkRow {
    /// The row of `link` with the digest of its token.
    pub(crate) fn new(link: &ShareLink, digest: &SecretDigest) -> Self {
        Self {
            id: link.id.as_uuid(),
            tenant_id: link.tenant_id.as_uuid(),
            scan_id: link.scan_id.as_uuid(),
            digest: digest.as_bytes().to_vec(),
            scope: link.scope.as_str().to_owned(),
            label: link.label.as_ref().map(|l| l.as_str().to_owned()),
            expires_at: link.expires_at,
            max_accesses: link.max_accesses.map(|m| count_column(m.get())),
            access_count: count_column(link.access_count),
            last_accessed_at: link.last_accessed_at,
            revoked_at: link.revoked_at,
            created_at: link.created_at,
            hint: link.hint.clone(),
        }
    }
}

impl TryFrom<ShareLinkRow> for ShareLink {
    type Error = RepoError;

    fn try_from(row: ShareLinkRow) -> Result<Self, RepoError> {
        let corrupt =
            |reason: &dyn std::fmt::Display| CorruptRow::repo("share_links", row.id, reason);
        Ok(Self {
            id: ShareLinkId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            scan_id: ScanId::from_uuid(row.scan_id),
            scope: Artifact::parse(&row.scope).map_err(|e| corrupt(&e))?,
            label: row
                .label
                .as_deref()
                .map(ShareLabel::new)
                .transpose()
                .map_err(|e| corrupt(&e))?,
            expires_at: row.expires_at,
            max_accesses: row
                .max_accesses
                .map(|m| MaxAccesses::new(i64::from(m)))
                .transpose()
                .map_err(|e| corrupt(&e))?,
            access_count: u32::try_from(row.access_count).map_err(|e| corrupt(&e))?,
            last_accessed_at: row.last_accessed_at,
            revoked_at: row.revoked_at,
            created_at: row.created_at,
            hint: row.hint,
        })
    }
}

/// A `schedules` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = schedules, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ScheduleRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub fleet_id: Uuid,
    pub environment_id: Uuid,
    pub scenario: String,
    pub max_duration_minutes: Option<i32>,
    pub max_assets: Option<i32>,
    pub interval_minutes: i32,
    pub enabled: bool,
    pub next_run_at: Timestamp,
    pub last_run_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl From<&Schedule> for ScheduleRow {
    fn from(s: &Schedule) -> Self {
        Self {
            id: s.id.as_uuid(),
            tenant_id: s.tenant_id.as_uuid(),
            fleet_id: s.fleet_id.as_uuid(),
            environment_id: s.environment_id.as_uuid(),
            scenario: s.scenario.as_str().to_owned(),
            max_duration_minutes: s.max_duration_minutes.map(|m| count_column(m.get())),
            max_assets: s.max_assets.map(|m| count_column(m.get())),
            interval_minutes: count_column(s.interval.get()),
            enabled: s.enabled,
            next_run_at: s.next_run_at,
            last_run_at: s.last_run_at,
            created_at: s.created_at,
        }
    }
}

impl TryFrom<ScheduleRow> for Schedule {
    type Error = RepoError;

    fn try_from(row: ScheduleRow) -> Result<Self, RepoError> {
        let corrupt =
            |reason: &dyn std::fmt::Display| CorruptRow::repo("schedules", row.id, reason);
        Ok(Self {
            id: ScheduleId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            fleet_id: FleetId::from_uuid(row.fleet_id),
            environment_id: EnvironmentId::from_uuid(row.environment_id),
            scenario: Scenario::parse(&row.scenario).map_err(|e| corrupt(&e))?,
            max_duration_minutes: row
                .max_duration_minutes
                .map(|m| MaxDurationMinutes::new(i64::from(m)))
                .transpose()
                .map_err(|e| corrupt(&e))?,
            max_assets: row
                .max_assets
                .map(|m| MaxAssets::new(i64::from(m)))
                .transpose()
                .map_err(|e| corrupt(&e))?,
            interval: IntervalMinutes::new(i64::from(row.interval_minutes))
                .map_err(|e| corrupt(&e))?,
            enabled: row.enabled,
            next_run_at: row.next_run_at,
            last_run_at: row.last_run_at,
            created_at: row.created_at,
        })
    }
}

/// Converts every row of a page, failing on the first corrupt one.
pub(crate) fn convert_all<R, T>(rows: Vec<R>) -> Result<Vec<T>, RepoError>
where
    T: TryFrom<R, Error = RepoError>,
{
    rows.into_iter().map(T::try_from).collect()
}
