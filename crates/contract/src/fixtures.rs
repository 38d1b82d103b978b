//! Builders of valid domain values for the contract cases.
//!
//! Cases may share one store, so every name a builder makes is unique (it carries a
//! fresh id). Ids come from UUID v7 like in production, so "newest first" in a listing
//! is the order in which a case built its values.

use fleetpass_domain::network::AllowedCidrs;
use std::collections::BTreeSet;

use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::{AuditAction, AuditActor, AuditEvent, actions};
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
use fleetpass_domain::scan::{
    Asset, Finding, Jws, MaxAssets, MaxDurationMinutes, Scan, ScanConstraints, ScanResults,
    ScanStatus, Scenario, Severity, Software,
};
use fleetpass_domain::schedule::{IntervalMinutes, Schedule};
use fleetpass_domain::secret::{PlainSecret, SecretKind};
use fleetpass_domain::share::{Artifact, MaxAccesses, ShareLabel, ShareLink};
use fleetpass_domain::token::{ApiToken, RateLimitPerMinute, TokenName};
use fleetpass_ports::store::{NewTenant, ScanArtifacts, StoredSigningKey};
use fleetpass_ports::system::{RingSecrets, UuidV7};
use fleetpass_ports::{IdGen, SecretGen};
use time::macros::datetime;
use uuid::Uuid;

/// The instant every fixture is created at, unless a case says otherwise.
pub const NOW: Timestamp = datetime!(2026-11-22 10:00 UTC);

/// How long fixture tokens live.
const TOKEN_LIFETIME: time::Duration = time::Duration::days(90);

/// Builds fixtures from an id generator, a secret generator and a creation time.
pub struct Fixtures {
    ids: Box<dyn IdGen>,
    secrets: Box<dyn SecretGen>,
    now: Timestamp,
}

impl Default for Fixtures {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixtures {
    /// Production ids and randomness, created at [`NOW`].
    pub fn new() -> Self {
        Self::with(Box::new(UuidV7), Box::new(RingSecrets::default()), NOW)
    }

    /// Fixtures from the given ports and creation time. Names are unique only as long
    /// as `ids` never repeats an id, so pinned ids suit a store of the case's own alone.
    pub fn with(ids: Box<dyn IdGen>, secrets: Box<dyn SecretGen>, now: Timestamp) -> Self {
        Self { ids, secrets, now }
    }

    /// When fixtures are created.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// A fresh id.
    pub fn id(&self) -> Uuid {
        self.ids.new_id()
    }

    /// A fresh API-token secret.
    pub fn secret(&self) -> PlainSecret {
        self.secret_of(SecretKind::ApiToken)
    }

    /// A fresh secret of `kind`.
    pub fn secret_of(&self, kind: SecretKind) -> PlainSecret {
        PlainSecret::from_random(kind, self.secrets.random_32())
    }

    /// A fresh agent secret.
    pub fn agent_secret(&self) -> PlainSecret {
        self.secret_of(SecretKind::Agent)
    }

    /// A short unique suffix for names: the simple form of a fresh id.
    fn unique(&self) -> String {
        self.id().simple().to_string()
    }

    /// A tenant with a unique name, its `production` environment, an admin service
    /// account, an all-environments admin token owned by it, and one audit event for
    /// each of the four.
    pub fn new_tenant(&self) -> NewTenant {
        self.new_tenant_named(&format!("tenant-{}", self.unique()))
    }

    /// As [`Fixtures::new_tenant`], with the given tenant name.
    ///
    /// # Panics
    /// When `name` is not a valid tenant name.
    pub fn new_tenant_named(&self, name: &str) -> NewTenant {
        let tenant = Tenant {
            id: TenantId::from_uuid(self.id()),
            name: TenantName::new(name).expect("fixture tenant names are valid"),
            created_at: self.now,
        };
        let environment = Environment {
            id: EnvironmentId::from_uuid(self.id()),
            tenant_id: tenant.id,
            name: EnvironmentName::production(),
            created_at: self.now,
        };
        let admin = Principal {
            id: PrincipalId::from_uuid(self.id()),
            tenant_id: tenant.id,
            kind: PrincipalKind::ServiceAccount {
                name: ServiceAccountName::new("admin").expect("a valid service account name"),
            },
            role: Role::Admin,
            disabled: false,
            created_at: self.now,
        };
        let (token, secret) = self.token(&admin, Role::Admin, EnvScope::All);
        let audit = vec![
            self.audit(
                tenant.id,
                actions::TENANT_CREATED,
                Some(tenant.id.as_uuid()),
            ),
            self.audit(
                tenant.id,
                actions::ENVIRONMENT_CREATED,
                Some(environment.id.as_uuid()),
            ),
            self.audit(
                tenant.id,
                actions::SERVICE_ACCOUNT_CREATED,
                Some(admin.id.as_uuid()),
            ),
            self.audit(tenant.id, actions::TOKEN_CREATED, Some(token.id.as_uuid())),
        ];
        NewTenant {
            tenant,
            environment,
            admin,
            token,
            digest: secret.digest(),
            audit,
        }
    }

    /// An environment of `tenant` with a unique name.
    pub fn environment(&self, tenant: TenantId) -> Environment {
        self.environment_named(tenant, &self.environment_name())
    }

    /// An environment of `tenant` called `name`.
    pub fn environment_named(&self, tenant: TenantId, name: &EnvironmentName) -> Environment {
        Environment {
            id: EnvironmentId::from_uuid(self.id()),
            tenant_id: tenant,
            name: name.clone(),
            created_at: self.now,
        }
    }

    /// A unique, valid environment name.
    pub fn environment_name(&self) -> EnvironmentName {
        EnvironmentName::new(&format!("env-{}", self.unique()))
            .expect("fixture environment names are valid")
    }

    /// An enabled operator user of `tenant` with a unique email.
    pub fn user(&self, tenant: TenantId) -> Principal {
        self.user_with_email(tenant, &self.email())
    }

    /// An enabled operator user of `tenant` with the given email.
    pub fn user_with_email(&self, tenant: TenantId, email: &Email) -> Principal {
        Principal {
            id: PrincipalId::from_uuid(self.id()),
            tenant_id: tenant,
            kind: PrincipalKind::User {
                email: email.clone(),
                name: Some(PersonName::new("Ada Lovelace").expect("a valid person name")),
            },
            role: Role::Operator,
            disabled: false,
            created_at: self.now,
        }
    }

    /// A unique, valid email address.
    pub fn email(&self) -> Email {
        Email::new(&format!("user-{}@example.com", self.unique()))
            .expect("fixture emails are valid")
    }

    /// An enabled operator service account of `tenant` with a unique name.
    pub fn service_account(&self, tenant: TenantId) -> Principal {
        self.service_account_named(tenant, &self.service_account_name())
    }

    /// An enabled operator service account of `tenant` called `name`.
    pub fn service_account_named(&self, tenant: TenantId, name: &ServiceAccountName) -> Principal {
        Principal {
            id: PrincipalId::from_uuid(self.id()),
            tenant_id: tenant,
            kind: PrincipalKind::ServiceAccount { name: name.clone() },
            role: Role::Operator,
            disabled: false,
            created_at: self.now,
        }
    }

    /// A unique, valid service account name.
    pub fn service_account_name(&self) -> ServiceAccountName {
        ServiceAccountName::new(&format!("sa-{}", self.unique())).expect("fixture names are valid")
    }

    /// A live token of `owner` (in the owner's tenant) with `role` and `scope`, and its
    /// secret; the token's hint is that secret's.
    pub fn token(&self, owner: &Principal, role: Role, scope: EnvScope) -> (ApiToken, PlainSecret) {
        let secret = self.secret();
        let token = ApiToken {
            id: TokenId::from_uuid(self.id()),
            tenant_id: owner.tenant_id,
            owner_id: Some(owner.id),
            name: TokenName::new(&format!("token-{}", self.unique()))
                .expect("fixture token names are valid"),
            role,
            scope,
            rate_limit_per_minute: None,
            expires_at: self.now + TOKEN_LIFETIME,
            created_at: self.now,
            last_used_at: None,
            revoked_at: None,
            hint: secret.hint(),
            allowed_cidrs: AllowedCidrs::anywhere(),
        };
        (token, secret)
    }

    /// A token of `owner` that reaches only `envs`.
    ///
    /// # Panics
    /// When `envs` is empty: a scope never is.
    pub fn scoped_token(
        &self,
        owner: &Principal,
        envs: &[EnvironmentId],
    ) -> (ApiToken, PlainSecret) {
        assert!(
            !envs.is_empty(),
            "a scoped token needs at least one environment"
        );
        let scope = EnvScope::Only(envs.iter().copied().collect::<BTreeSet<_>>());
        self.token(owner, Role::Viewer, scope)
    }

    /// A fleet of `tenant` in `environment`, with a unique name.
    pub fn fleet(&self, tenant: TenantId, environment: EnvironmentId) -> Fleet {
        Fleet {
            id: FleetId::from_uuid(self.id()),
            tenant_id: tenant,
            environment_id: environment,
            name: self.fleet_name(),
            created_at: self.now,
        }
    }

    /// A unique, valid fleet name.
    pub fn fleet_name(&self) -> FleetName {
        FleetName::new(&format!("fleet-{}", self.unique())).expect("fixture fleet names are valid")
    }

    /// A one-time enrollment token of `fleet` with the default lifetime, and its secret.
    pub fn enrollment_token(&self, fleet: &Fleet) -> (EnrollmentToken, PlainSecret) {
        let expires_at = EnrollmentTtlHours::default_ttl().expiry_from(self.now);
        self.enrollment_token_with(fleet, 1, expires_at)
    }

    /// An unused, unrevoked enrollment token of `fleet` (in the fleet's tenant) allowing
    /// `max_uses` enrollments until `expires_at`, and its secret; the token's hint is
    /// that secret's.
    ///
    /// # Panics
    /// When `max_uses` is out of bounds.
    pub fn enrollment_token_with(
        &self,
        fleet: &Fleet,
        max_uses: u32,
        expires_at: Timestamp,
    ) -> (EnrollmentToken, PlainSecret) {
        let secret = self.secret_of(SecretKind::Enrollment);
        let token = EnrollmentToken {
            id: EnrollmentTokenId::from_uuid(self.id()),
            tenant_id: fleet.tenant_id,
            fleet_id: fleet.id,
            max_uses: MaxUses::new(i64::from(max_uses)).expect("fixture max uses are in bounds"),
            uses: 0,
            expires_at,
            created_at: self.now,
            revoked_at: None,
            hint: secret.hint(),
            labels: fleetpass_domain::label::Labels::none(),
            allowed_cidrs: AllowedCidrs::anywhere(),
        };
        (token, secret)
    }

    /// The agent an enrollment with `token` at `at` makes: a fresh id, in the token's
    /// tenant and fleet, reporting version `1.0.0`, never seen, not revoked.
    pub fn agent(&self, token: &EnrollmentToken, at: Timestamp) -> Agent {
        Agent {
            id: AgentId::from_uuid(self.id()),
            tenant_id: token.tenant_id,
            fleet_id: token.fleet_id,
            hostname: Hostname::new(&format!("host-{}.example.com", self.unique()))
                .expect("fixture host names are valid"),
            platform: Platform::new("linux-x86_64").expect("a valid platform"),
            agent_version: Some(Self::agent_version("1.0.0")),
            enrolled_at: at,
            last_seen_at: None,
            revoked_at: None,
            labels: fleetpass_domain::label::Labels::none(),
        }
    }

    /// An agent version.
    ///
    /// # Panics
    /// When `version` is not a valid one.
    pub fn agent_version(version: &str) -> AgentVersion {
        AgentVersion::new(version).expect("fixture agent versions are valid")
    }

    /// An unretired signing key with a unique kid, made at `created_at`, with random key
    /// bytes (a sealed private key longer than the 32-byte public key).
    pub fn signing_key(&self, created_at: Timestamp) -> StoredSigningKey {
        let sealed_private_key = [self.secrets.random_32(), self.secrets.random_32()].concat();
        StoredSigningKey {
            kid: format!("kid-{}", self.unique()),
            sealed_private_key,
            public_key: self.secrets.random_32().to_vec(),
            created_at,
            retired_at: None,
        }
    }

    /// A queued `scenario` scan of `fleet` (in the fleet's tenant and environment) with
    /// `constraints`, requested at [`Fixtures::now`].
    pub fn scan(&self, fleet: &Fleet, scenario: Scenario, constraints: ScanConstraints) -> Scan {
        Scan {
            id: ScanId::from_uuid(self.id()),
            tenant_id: fleet.tenant_id,
            fleet_id: fleet.id,
            environment_id: fleet.environment_id,
            scenario,
            constraints,
            status: ScanStatus::Queued,
            requested_at: self.now,
            target: fleetpass_domain::scan::Target::Any,
            claimed_by: None,
            claimed_at: None,
            finished_at: None,
        }
    }

    /// A queued inventory scan of `fleet` without constraints: claimable at any time.
    pub fn plain_scan(&self, fleet: &Fleet) -> Scan {
        self.scan(fleet, Scenario::Inventory, ScanConstraints::default())
    }

    /// Constraints with every field set: at most `max_duration_minutes` of run time,
    /// claimable from `not_before` until just before `not_after`, at most 500 assets.
    ///
    /// # Panics
    /// When `max_duration_minutes` is out of bounds.
    pub fn constraints(
        max_duration_minutes: u32,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> ScanConstraints {
        ScanConstraints {
            max_duration_minutes: Some(
                MaxDurationMinutes::new(i64::from(max_duration_minutes))
                    .expect("fixture durations are in bounds"),
            ),
            not_before: Some(not_before),
            not_after: Some(not_after),
            max_assets: Some(MaxAssets::new(500).expect("a valid asset limit")),
        }
    }

    /// Constraints that only limit the run time to `minutes`.
    ///
    /// # Panics
    /// When `minutes` is out of bounds.
    pub fn max_duration(minutes: u32) -> ScanConstraints {
        ScanConstraints {
            max_duration_minutes: Some(
                MaxDurationMinutes::new(i64::from(minutes))
                    .expect("fixture durations are in bounds"),
            ),
            ..ScanConstraints::default()
        }
    }

    /// The artifacts of a completed scan, as the service makes them from results: the
    /// bundle is the results' canonical JSON (struct field order, not sorted, with
    /// non-ASCII text and escapes, so a store that re-encodes it changes its bytes) and
    /// its SHA-256; the report is nested JSON; the passport is a compact-JWS-shaped
    /// string. Each call differs (its results carry a fresh id).
    pub fn artifacts(&self) -> ScanArtifacts {
        let results = ScanResults {
            assets: vec![Asset {
                hostname: format!("db-{}.zürich.example", self.unique()).into(),
                ip: "2001:db8::5".into(),
                os: "Debian 12 \"bookworm\"".into(),
                open_ports: vec![22, 5432, 65_535],
                software: vec![Software {
                    name: "postgresql".into(),
                    version: "15.4".into(),
                }],
            }],
            findings: vec![
                Finding {
                    severity: Severity::Critical,
                    title: "weak password ✗ — \u{2028} line\nbreak".into(),
                    asset_hostname: None,
                    detail: Some("  spaced\ttab  and a \\ backslash ".into()),
                },
                Finding {
                    severity: Severity::Low,
                    title: "banner".into(),
                    asset_hostname: Some("db-1".into()),
                    detail: None,
                },
            ],
        };
        self.artifacts_of(&results)
    }

    /// The artifacts the service makes from `results` (see [`Fixtures::artifacts`]).
    pub fn artifacts_of(&self, results: &ScanResults) -> ScanArtifacts {
        let (bundle_json, bundle_sha256) = results.bundle().expect("the results serialize");
        let report = results.report();
        let passport = Jws::parse(&format!(
            "eyJhbGciOiJFZERTQSIsImtpZCI6ImtpZC0xIn0.{}.{}",
            self.unique(),
            "A".repeat(86)
        ))
        .expect("a compact JWS");
        ScanArtifacts {
            bundle_json,
            bundle_sha256,
            report,
            passport,
        }
    }

    /// A fresh, unused, unrevoked share link of `scan` (in the scan's tenant) granting
    /// the passport (so every artifact), allowing `max_accesses` opens (unlimited when
    /// `None`) until `expires_at`, made at [`Fixtures::now`]; and its token, whose hint
    /// it carries.
    ///
    /// # Panics
    /// When `max_accesses` is out of bounds.
    pub fn share_link(
        &self,
        scan: &Scan,
        max_accesses: Option<u32>,
        expires_at: Timestamp,
    ) -> (ShareLink, PlainSecret) {
        self.share_link_scoped(scan, Artifact::Passport, max_accesses, expires_at)
    }

    /// As [`Fixtures::share_link`], granting `scope` and the artifacts before it.
    ///
    /// # Panics
    /// When `max_accesses` is out of bounds.
    pub fn share_link_scoped(
        &self,
        scan: &Scan,
        scope: Artifact,
        max_accesses: Option<u32>,
        expires_at: Timestamp,
    ) -> (ShareLink, PlainSecret) {
        let secret = self.secret_of(SecretKind::Share);
        let link = ShareLink {
            id: ShareLinkId::from_uuid(self.id()),
            tenant_id: scan.tenant_id,
            scan_id: scan.id,
            scope,
            label: Some(ShareLabel::new("for the auditor ✓").expect("a valid label")),
            expires_at,
            max_accesses: max_accesses.map(|m| {
                MaxAccesses::new(i64::from(m)).expect("fixture max accesses are in bounds")
            }),
            access_count: 0,
            last_accessed_at: None,
            revoked_at: None,
            created_at: self.now,
            hint: secret.hint(),
        };
        (link, secret)
    }

    /// An enabled inventory schedule of `fleet` (in the fleet's tenant and environment)
    /// without limits, running every `interval_minutes` from `next_run_at`, never run
    /// yet, made at [`Fixtures::now`].
    ///
    /// # Panics
    /// When `interval_minutes` is out of bounds.
    pub fn schedule(
        &self,
        fleet: &Fleet,
        interval_minutes: u32,
        next_run_at: Timestamp,
    ) -> Schedule {
        Schedule {
            id: ScheduleId::from_uuid(self.id()),
            tenant_id: fleet.tenant_id,
            fleet_id: fleet.id,
            environment_id: fleet.environment_id,
            scenario: Scenario::Inventory,
            max_duration_minutes: None,
            max_assets: None,
            interval: Self::interval(interval_minutes),
            enabled: true,
            next_run_at,
            last_run_at: None,
            created_at: self.now,
        }
    }

    /// A schedule interval.
    ///
    /// # Panics
    /// When `minutes` is out of bounds.
    pub fn interval(minutes: u32) -> IntervalMinutes {
        IntervalMinutes::new(i64::from(minutes)).expect("fixture intervals are in bounds")
    }

    /// An audit event of `tenant` by the platform operator, at [`Fixtures::now`].
    pub fn audit(&self, tenant: TenantId, action: AuditAction, target: Option<Uuid>) -> AuditEvent {
        self.audit_by(tenant, AuditActor::Platform, action, target, self.now)
    }

    /// An audit event of `tenant` by `actor` at `at`.
    pub fn audit_by(
        &self,
        tenant: TenantId,
        actor: AuditActor,
        action: AuditAction,
        target: Option<Uuid>,
        at: Timestamp,
    ) -> AuditEvent {
        AuditEvent {
            id: AuditEventId::from_uuid(self.id()),
            tenant_id: tenant,
            actor,
            action,
            target_id: target,
            at,
            // Nested, typed details catch a store that flattens or stringifies them.
            details: serde_json::json!({ "source": "contract", "count": 2, "tags": ["a", "b"] }),
            scope: fleetpass_domain::identity::EnvScope::All,
        }
    }

    /// A rate limit, for cases that change one.
    ///
    /// # Panics
    /// When `per_minute` is out of bounds.
    pub fn rate_limit(per_minute: i64) -> RateLimitPerMinute {
        RateLimitPerMinute::new(per_minute).expect("fixture rate limits are in bounds")
    }
}
