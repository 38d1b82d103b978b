//! The wire shapes of responses (camelCase JSON), built from domain values. Secrets
//! appear only in the `Created*` shapes, which are returned exactly once.

use std::collections::BTreeMap;

use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::fleet::{Agent, EnrollmentToken, EnrollmentTtlHours, Fleet};
use fleetpass_domain::identity::{Environment, Principal, PrincipalKind, Tenant};
use fleetpass_domain::label::Labels;
use fleetpass_domain::page::Page;
use fleetpass_domain::policy::TokenPolicy;
use fleetpass_domain::scan::{Progress, Scan, ScanPart};
use fleetpass_domain::share::ShareLink;
use fleetpass_domain::token::{ApiToken, RateLimitPerMinute, TokenTtlDays};
use fleetpass_ports::service::fleets::{CreatedFleet, IssuedEnrollment};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// RFC 3339 in UTC, as every timestamp on the wire.
pub fn ts(at: Timestamp) -> String {
    // Everything kept was parsed into UTC (`value::parse_timestamp`) or read from the
    // clock; an instant that still cannot be shown in UTC is rendered as it is rather
    // than panicking a worker.
    at.checked_to_offset(time::UtcOffset::UTC)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// A page of items with the cursor of the next one.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// Builds a list view from a domain page.
    pub fn from_page<D>(page: Page<D>, view: impl FnMut(D) -> T) -> Self {
        let next_cursor = page.next.map(|c| c.encode());
        Self {
            items: page.items.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    /// Its id.
    pub tenant_id: String,
    /// Its name.
    pub name: String,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            tenant_id: t.id.to_string(),
            name: t.name.to_string(),
            created_at: ts(t.created_at),
        }
    }
}

/// A new tenant and its first admin token, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTenantView {
    /// Its id.
    pub tenant_id: String,
    /// Its name.
    pub name: String,
    /// The first admin API token. Shown only here.
    pub admin_token: String,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// An environment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<Environment> for EnvironmentView {
    fn from(e: Environment) -> Self {
        Self {
            id: e.id.to_string(),
            name: e.name.as_str().to_owned(),
            created_at: ts(e.created_at),
        }
    }
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// Its id.
    pub id: String,
    /// Email, unique per tenant.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// The highest role its tokens may have.
    #[schema(example = "operator")]
    pub role: String,
    /// Disabled users' tokens are revoked.
    pub disabled: bool,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A service account.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountView {
    /// Its id.
    pub id: String,
    /// Name, unique per tenant.
    pub name: String,
    /// The highest role its tokens may have.
    #[schema(example = "operator")]
    pub role: String,
    /// Disabled accounts' tokens are revoked.
    pub disabled: bool,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A principal as the view of its kind.
pub enum PrincipalView {
    /// A user.
    User(UserView),
    /// A service account.
    ServiceAccount(ServiceAccountView),
}

impl From<Principal> for PrincipalView {
    fn from(p: Principal) -> Self {
        let (id, role, disabled, created_at) = (
            p.id.to_string(),
            p.role.as_str().to_owned(),
            p.disabled,
            ts(p.created_at),
        );
        match p.kind {
            PrincipalKind::User { email, name } => Self::User(UserView {
                id,
                email: email.as_str().to_owned(),
                name: name.map(|n| n.to_string()),
                role,
                disabled,
                created_at,
            }),
            PrincipalKind::ServiceAccount { name } => Self::ServiceAccount(ServiceAccountView {
                id,
                name: name.to_string(),
                role,
                disabled,
                created_at,
            }),
        }
    }
}

impl Serialize for PrincipalView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::User(u) => u.serialize(s),
            Self::ServiceAccount(a) => a.serialize(s),
        }
    }
}

/// An API token's metadata. Never carries the secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The user or service account that owns it (`null` once the owner was deleted).
    pub owner_id: Option<String>,
    /// `admin`, `operator` or `viewer`.
    #[schema(example = "operator")]
    pub role: String,
    /// Whether it reaches every environment.
    pub all_environments: bool,
    /// The environments it reaches when not all.
    pub environment_ids: Vec<String>,
    /// Requests a minute it may make.
    pub rate_limit_per_minute: u32,
    /// `active`, `expired` or `revoked`.
    #[schema(example = "active")]
    pub status: String,
    /// A non-secret hint of its secret, e.g. `fpk_…x7Qa`.
    pub token_hint: String,
    /// When it stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was last used (at most a minute stale).
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    /// When it was revoked.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// The networks it may be used from, canonical (`192.0.2.7/32`); empty: anywhere.
    pub allowed_cidrs: Vec<String>,
}

impl TokenView {
    /// The view of `t` as of `now`.
    pub fn new(t: ApiToken, now: Timestamp) -> Self {
        Self {
            id: t.id.to_string(),
            owner_id: t.owner_id.map(|o| o.to_string()),
            role: t.role.as_str().to_owned(),
            all_environments: t.scope.is_all(),
            environment_ids: t.scope.ids().iter().map(ToString::to_string).collect(),
            rate_limit_per_minute: t
                .rate_limit_per_minute
                .map_or(RateLimitPerMinute::DEFAULT, RateLimitPerMinute::get),
            status: t.status(now).as_str().to_owned(),
            expires_at: ts(t.expires_at),
            created_at: ts(t.created_at),
            last_used_at: t.last_used_at.map(ts),
            revoked_at: t.revoked_at.map(ts),
            name: t.name.to_string(),
            allowed_cidrs: t.allowed_cidrs.to_strings(),
            token_hint: t.hint,
        }
    }
}

/// A new (or rotated) token: its metadata and the full secret, shown only here.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTokenView {
    /// The metadata.
    #[serde(flatten)]
    pub meta: TokenView,
    /// The full API token. Store it now: it is never shown again.
    pub token: String,
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    /// The caller's tenant.
    pub tenant_id: String,
    /// The tenant's name.
    pub tenant_name: String,
    /// The token in use.
    pub token: TokenView,
    /// The tenant's limits on the lifetimes of new tokens.
    pub token_policy: TokenPolicyView,
}

/// A tenant's token policy: the longest lifetimes of new tokens; `null` where there is
/// no maximum beyond the field's own bounds.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPolicyView {
    /// The longest `expiresInDays` of a new API token (1-365); a rotation caps a token
    /// to now plus this.
    #[schema(example = 90, minimum = 1, maximum = 365)]
    pub max_expires_in_days: Option<u32>,
    /// The longest `expiresHours` of a new enrollment token (1-720); one issued without
    /// `expiresHours` (a new fleet's first, say) gets 72 hours or this, if shorter.
    #[schema(example = 24, minimum = 1, maximum = 720)]
    pub max_enrollment_expires_hours: Option<u32>,
}

impl From<TokenPolicy> for TokenPolicyView {
    fn from(p: TokenPolicy) -> Self {
        Self {
            max_expires_in_days: p.max_token_days.map(TokenTtlDays::get),
            max_enrollment_expires_hours: p.max_enrollment_hours.map(EnrollmentTtlHours::get),
        }
    }
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventView {
    /// Its id.
    pub id: String,
    /// `noun.verb`, e.g. `token.created`.
    pub action: String,
    /// `token`, `platform` or `public`.
    pub actor_kind: String,
    /// The acting token's id, when a token acted.
    pub actor_id: Option<String>,
    /// What it happened to.
    pub target_id: Option<String>,
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
    /// Non-secret facts.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id.to_string(),
            action: e.action.as_str().to_owned(),
            actor_kind: e.actor.kind().to_owned(),
            actor_id: e.actor.id().map(|id| id.to_string()),
            target_id: e.target_id.map(|id| id.to_string()),
            at: ts(e.at),
            details: e.details,
        }
    }
}

/// A fleet.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetView {
    /// Its id.
    pub fleet_id: String,
    /// Its name.
    pub name: String,
    /// The environment it lives in.
    pub environment_id: String,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<Fleet> for FleetView {
    fn from(f: Fleet) -> Self {
        Self {
            fleet_id: f.id.to_string(),
            name: f.name.to_string(),
            environment_id: f.environment_id.to_string(),
            created_at: ts(f.created_at),
        }
    }
}

/// A new fleet and its one-time enrollment token, shown once (seed 000).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedFleetView {
    /// New fleet id.
    pub fleet_id: String,
    /// 72 h one-time enrollment token (`fpe_…`). Shown only here.
    pub enrollment_token: String,
    /// ISO-8601 expiry of the enrollment token.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The enrollment token's id (to list or revoke it).
    pub enrollment_token_id: String,
    /// The fleet's name.
    pub name: String,
    /// The fleet's environment.
    pub environment_id: String,
    /// When the fleet was created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl CreatedFleetView {
    /// The view of a new fleet.
    pub fn new(created: CreatedFleet) -> Self {
        let CreatedFleet { fleet, enrollment } = created;
        Self {
            fleet_id: fleet.id.to_string(),
            enrollment_token: enrollment.secret.expose().to_owned(),
            expires_at: ts(enrollment.token.expires_at),
            enrollment_token_id: enrollment.token.id.to_string(),
            name: fleet.name.to_string(),
            environment_id: fleet.environment_id.to_string(),
            created_at: ts(fleet.created_at),
        }
    }
}

/// An enrollment token's metadata (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentTokenView {
    /// Its id.
    pub id: String,
    /// Its fleet.
    pub fleet_id: String,
    /// `active`, `used`, `expired` or `revoked`.
    #[schema(example = "active")]
    pub status: String,
    /// Enrollments still possible.
    pub uses_left: u32,
    /// Enrollments allowed.
    pub max_uses: u32,
    /// Enrollments made.
    pub uses: u32,
    /// A non-secret hint, e.g. `fpe_…x7Qa`.
    pub token_hint: String,
    /// When it stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// When it was issued.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was revoked.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// The labels every agent it enrolls carries.
    pub labels: BTreeMap<String, String>,
    /// The networks agents may enroll from with it; empty: anywhere.
    pub allowed_cidrs: Vec<String>,
}

impl EnrollmentTokenView {
    /// The view of `t` as of `now`.
    pub fn new(t: EnrollmentToken, now: Timestamp) -> Self {
        Self {
            id: t.id.to_string(),
            fleet_id: t.fleet_id.to_string(),
            status: t.status(now).as_str().to_owned(),
            uses_left: t.uses_left(now),
            max_uses: t.max_uses.get(),
            uses: t.uses,
            expires_at: ts(t.expires_at),
            created_at: ts(t.created_at),
            revoked_at: t.revoked_at.map(ts),
            labels: labels_view(&t.labels),
            allowed_cidrs: t.allowed_cidrs.to_strings(),
            token_hint: t.hint,
        }
    }
}

/// A new enrollment token with its secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedEnrollmentView {
    /// The metadata.
    #[serde(flatten)]
    pub meta: EnrollmentTokenView,
    /// The secret (`fpe_…`). Shown only here.
    pub enrollment_token: String,
}

impl IssuedEnrollmentView {
    /// The view of a just-issued token.
    pub fn new(issued: IssuedEnrollment, now: Timestamp) -> Self {
        Self {
            enrollment_token: issued.secret.expose().to_owned(),
            meta: EnrollmentTokenView::new(issued.token, now),
        }
    }
}

/// An agent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    /// Its id.
    pub agent_id: String,
    /// Its fleet.
    pub fleet_id: String,
    /// Its host.
    pub hostname: String,
    /// Its platform.
    pub platform: String,
    /// Its version, as last reported.
    pub agent_version: Option<String>,
    /// `active` or `revoked`.
    #[schema(example = "active")]
    pub status: String,
    /// When it enrolled.
    #[schema(format = DateTime)]
    pub enrolled_at: String,
    /// Its last heartbeat.
    #[schema(format = DateTime)]
    pub last_seen_at: Option<String>,
    /// When it was revoked.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// Its labels (`{"role": "db"}`): what scans target with a label selector.
    pub labels: BTreeMap<String, String>,
}

/// Labels on the wire: a JSON object of strings.
pub fn labels_view(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

impl From<Agent> for AgentView {
    fn from(a: Agent) -> Self {
        Self {
            agent_id: a.id.to_string(),
            fleet_id: a.fleet_id.to_string(),
            status: a.status().to_owned(),
            hostname: a.hostname.to_string(),
            platform: a.platform.to_string(),
            agent_version: a.agent_version.map(|v| v.to_string()),
            enrolled_at: ts(a.enrolled_at),
            last_seen_at: a.last_seen_at.map(ts),
            revoked_at: a.revoked_at.map(ts),
            labels: labels_view(&a.labels),
        }
    }
}

/// A scan's constraints on the wire.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintsView {
    /// Run-time limit once claimed (default 60).
    pub max_duration_minutes: u32,
    /// Not claimed before.
    #[schema(format = DateTime)]
    pub not_before: Option<String>,
    /// Not claimed after (then it expires).
    #[schema(format = DateTime)]
    pub not_after: Option<String>,
    /// At most this many assets.
    pub max_assets: Option<u32>,
}

/// A scan.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanView {
    /// Its id.
    pub scan_id: String,
    /// The fleet that runs it.
    pub fleet_id: String,
    /// Its environment (the fleet's).
    pub environment_id: String,
    /// `inventory`, `ports`, `software` or `compliance`.
    #[schema(example = "inventory")]
    pub scenario: String,
    /// `queued`, `running`, `completed`, `failed`, `expired` or `cancelled`.
    #[schema(example = "queued")]
    pub status: String,
    /// Its constraints.
    pub constraints: ConstraintsView,
    /// Which agents run it: `"any"` (one agent), `"all"`, `"agents"` (those listed at
    /// request time) or `{"labels": {…}}`; the agents of a fan-out scan are its parts.
    #[schema(value_type = Object, example = "any")]
    pub target: serde_json::Value,
    /// How far a fan-out scan's parts are (absent for target `any`).
    pub progress: Option<ProgressView>,
    /// When it was requested.
    #[schema(format = DateTime)]
    pub requested_at: String,
    /// The agent that claimed it (target `any`; a fan-out scan's parts name theirs).
    pub claimed_by: Option<String>,
    /// When it was claimed (a fan-out scan: its first part).
    #[schema(format = DateTime)]
    pub claimed_at: Option<String>,
    /// When it completed, failed or expired.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

impl From<Scan> for ScanView {
    fn from(s: Scan) -> Self {
        Self {
            scan_id: s.id.to_string(),
            fleet_id: s.fleet_id.to_string(),
            environment_id: s.environment_id.to_string(),
            scenario: s.scenario.as_str().to_owned(),
            status: s.status.as_str().to_owned(),
            constraints: ConstraintsView {
                max_duration_minutes: s.constraints.max_duration().get(),
                not_before: s.constraints.not_before.map(ts),
                not_after: s.constraints.not_after.map(ts),
                max_assets: s.constraints.max_assets.map(|m| m.get()),
            },
            requested_at: ts(s.requested_at),
            target: s.target.to_json(),
            progress: None,
            claimed_by: s.claimed_by.map(|a| a.to_string()),
            claimed_at: s.claimed_at.map(ts),
            finished_at: s.finished_at.map(ts),
        }
    }
}

impl ScanView {
    /// The view with a fan-out scan's progress.
    pub fn with_progress(mut self, progress: Option<&Progress>) -> Self {
        self.progress = progress.map(|p| ProgressView {
            total: p.total(),
            queued: p.queued,
            running: p.running,
            completed: p.completed,
            failed: p.failed,
            cancelled: p.cancelled,
        });
        self
    }
}

/// How many parts of a fan-out scan are where.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressView {
    /// Every part (one per targeted agent).
    pub total: u32,
    /// Waiting for their agent.
    pub queued: u32,
    /// Claimed.
    pub running: u32,
    /// Results arrived.
    pub completed: u32,
    /// Met their deadline without results, or their agent was revoked.
    pub failed: u32,
    /// Cancelled with the scan.
    pub cancelled: u32,
}

/// One part of a fan-out scan.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanPartView {
    /// The agent that runs it.
    pub agent_id: String,
    /// `queued`, `running`, `completed`, `failed` or `cancelled`.
    #[schema(example = "completed")]
    pub status: String,
    /// When its agent claimed it.
    #[schema(format = DateTime)]
    pub claimed_at: Option<String>,
    /// When it ended.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// Why it failed: `not_claimed`, `no_results` or `agent_revoked`.
    pub failure: Option<String>,
}

impl From<ScanPart> for ScanPartView {
    fn from(p: ScanPart) -> Self {
        Self {
            agent_id: p.agent_id.to_string(),
            status: p.status.as_str().to_owned(),
            claimed_at: p.claimed_at.map(ts),
            finished_at: p.finished_at.map(ts),
            failure: p.failure.map(|f| f.as_str().to_owned()),
        }
    }
}

/// A share link's metadata (never its token).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShareLinkView {
    /// Its id.
    pub id: String,
    /// The shared scan.
    pub scan_id: String,
    /// `report`, `bundle` or `passport` (nested: each grants the ones before it).
    #[schema(example = "passport")]
    pub scope: String,
    /// Its label.
    pub label: Option<String>,
    /// `active`, `expired`, `used_up` or `revoked`.
    #[schema(example = "active")]
    pub status: String,
    /// Accesses so far.
    pub access_count: u32,
    /// Access limit (`null`: unlimited).
    pub max_accesses: Option<u32>,
    /// The last access.
    #[schema(format = DateTime)]
    pub last_accessed_at: Option<String>,
    /// A non-secret hint, e.g. `fps_…x7Qa`.
    pub token_hint: String,
    /// When it stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// When it was made.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was revoked.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

impl ShareLinkView {
    /// The view of `l` as of `now`.
    pub fn new(l: ShareLink, now: Timestamp) -> Self {
        Self {
            id: l.id.to_string(),
            scan_id: l.scan_id.to_string(),
            scope: l.scope.as_str().to_owned(),
            status: l.status(now).as_str().to_owned(),
            label: l.label.map(|x| x.to_string()),
            access_count: l.access_count,
            max_accesses: l.max_accesses.map(|m| m.get()),
            last_accessed_at: l.last_accessed_at.map(ts),
            expires_at: ts(l.expires_at),
            created_at: ts(l.created_at),
            revoked_at: l.revoked_at.map(ts),
            token_hint: l.hint,
        }
    }
}

/// A new share link: its public URL and token, shown once (seed 001).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedShareView {
    /// Public share URL: `<public base URL>/share/<token>`.
    pub url: String,
    /// Opaque share token (`fps_…`). Shown only here.
    pub token: String,
    /// The link's id.
    pub id: String,
    /// `report`, `bundle` or `passport`.
    #[schema(example = "passport")]
    pub scope: String,
    /// Its label.
    pub label: Option<String>,
    /// Access limit (`null`: unlimited).
    pub max_accesses: Option<u32>,
    /// When it stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// When it was made.
    #[schema(format = DateTime)]
    pub created_at: String,
}
