//! The services' time and access rules, tested over the in-memory store with a pinned
//! clock (the `Deps` clock, id and secret ports), without HTTP: enrollment tokens expire
//! at their instant and are used up, share links stop at their expiry and their access
//! limit, a rotated token's old secret works exactly through its grace period, and the
//! role and environment scope of a token decide what its services allow.

use std::sync::Arc;

use fleetpass_domain::Timestamp;
use fleetpass_domain::access::Actor;
use fleetpass_domain::audit::AuditActor;
use fleetpass_domain::fleet::{EnrollmentTtlHours, Hostname, MaxUses, Platform};
use fleetpass_domain::identity::{EnvScope, EnvironmentName, Role, TenantName};
use fleetpass_domain::network::AllowedCidrs;
use fleetpass_domain::page::PageRequest;
use fleetpass_domain::scan::{ScanConstraints, ScanResults, ScanStatus, Scenario};
use fleetpass_domain::share::{Artifact, MaxAccesses, ShareTtlHours};
use fleetpass_domain::token::{GraceHours, TokenName, TokenTtlDays};
use fleetpass_ports::Deps;
use fleetpass_ports::keys::{KeyRing, MasterKey};
use fleetpass_ports::service::agents::{self, Enrolled, Enrollment};
use fleetpass_ports::service::fleets::{self, CreatedFleet};
use fleetpass_ports::service::shares::{self, NewShare, ShareRefused};
use fleetpass_ports::service::tokens::{self, NewToken, OwnerRef};
use fleetpass_ports::service::{ServiceError, auth, directory, scans, tenants};
use fleetpass_ports::system::{FixedClock, SequentialIds, SequentialSecrets};
use fleetpass_store_memory::MemoryStore;
use time::Duration;
use time::macros::datetime;

/// When every test starts.
const T0: Timestamp = datetime!(2026-11-29 12:00 UTC);
const ISSUER: &str = "http://127.0.0.1:8080";

/// Services over a fresh in-memory store, the clock pinned at [`T0`].
struct World {
    deps: Deps,
    clock: Arc<FixedClock>,
    keys: KeyRing,
    /// The tenant admin, as its first token authenticates.
    admin: Actor,
    /// That token's secret.
    admin_secret: String,
}

impl World {
    async fn new() -> Self {
        let clock = Arc::new(FixedClock::new(T0));
        let deps = Deps {
            store: Arc::new(MemoryStore::new()),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::default()),
            secrets: Arc::new(SequentialSecrets::default()),
            wakeups: Arc::new(fleetpass_ports::wakeups::LocalWakeups::new(1_000)),
            part_claims: Arc::default(),
        };
        let keys = KeyRing::load(
            deps.store.clone(),
            deps.secrets.as_ref(),
            MasterKey::from_bytes([9; 32]),
            ISSUER,
            T0,
        )
        .await
        .expect("a key ring over an empty store");
        let created = tenants::create_tenant(
            &deps,
            TenantName::new("acme").expect("a tenant name"),
            AuditActor::Platform,
        )
        .await
        .expect("a tenant");
        let admin_secret = created.admin_token.expose().to_owned();
        let (admin, _) = auth::authenticate(&deps, &admin_secret)
            .await
            .expect("the first admin token authenticates");
        Self {
            deps,
            clock,
            keys,
            admin,
            admin_secret,
        }
    }

    fn at(&self, at: Timestamp) {
        self.clock.set(at);
    }

    async fn fleet(&self) -> CreatedFleet {
        fleets::create_fleet(&self.deps, &self.admin, None, None)
            .await
            .expect("a fleet")
    }

    async fn enroll(&self, secret: &str) -> Result<Enrolled, ServiceError> {
        agents::enroll(
            &self.deps,
            &self.keys,
            secret,
            Enrollment {
                hostname: Hostname::new("host-1").expect("a hostname"),
                platform: Platform::new("linux").expect("a platform"),
                agent_version: None,
                labels: fleetpass_domain::label::Labels::none(),
            },
            None,
        )
        .await
    }

    /// A token of `role` over `scope`, owned by the admin's service account; its secret.
    async fn token(&self, role: Role, scope: EnvScope, ttl_days: i64) -> (Actor, String) {
        let issued = tokens::create_token(
            &self.deps,
            &self.admin,
            NewToken {
                name: TokenName::new(&format!("{role:?} token")).expect("a token name"),
                owner: OwnerRef::Caller,
                role,
                scope,
                ttl: TokenTtlDays::new(ttl_days).expect("a ttl"),
                rate_limit: None,
                allowed_cidrs: AllowedCidrs::anywhere(),
            },
        )
        .await
        .expect("a token");
        let secret = issued.secret.expose().to_owned();
        let (actor, _) = auth::authenticate(&self.deps, &secret)
            .await
            .expect("a new token authenticates");
        (actor, secret)
    }

    /// A completed scan of a new fleet, run by an enrolled agent.
    async fn completed_scan(&self) -> fleetpass_domain::ids::ScanId {
        let fleet = self.fleet().await;
        let enrolled = self
            .enroll(fleet.enrollment.secret.expose())
            .await
            .expect("the fleet's first token enrolls");
        let scan = scans::request_scan(
            &self.deps,
            &self.admin,
            fleet.fleet.id,
            Scenario::Inventory,
            ScanConstraints::default(),
            fleetpass_domain::scan::ScanTarget::Any,
        )
        .await
        .expect("a scan is requested");
        let claimed = scans::claim(&self.deps, &enrolled.agent)
            .await
            .expect("a claim")
            .expect("the queued scan is claimed");
        assert_eq!(claimed.id, scan.id);
        let running = scans::running_scan_of(&self.deps, &enrolled.agent, scan.id)
            .await
            .expect("the claimed scan is running");
        let done = scans::submit_results(
            &self.deps,
            &self.keys,
            &enrolled.agent,
            running,
            ScanResults::default(),
        )
        .await
        .expect("results are accepted");
        assert_eq!(done.status, ScanStatus::Completed);
        scan.id
    }
}

fn is_unauthorized<T: std::fmt::Debug>(outcome: Result<T, ServiceError>, what: &str) {
    assert!(
        matches!(outcome, Err(ServiceError::Unauthorized { .. })),
        "{what}: expected Unauthorized, got {outcome:?}"
    );
}

fn is_denied<T: std::fmt::Debug>(outcome: Result<T, ServiceError>, what: &str) {
    assert!(
        matches!(outcome, Err(ServiceError::Denied(_))),
        "{what}: expected Denied, got {outcome:?}"
    );
}

#[tokio::test]
async fn an_enrollment_token_works_until_its_expiry_instant() {
    let w = World::new().await;
    let fleet = w.fleet().await;
    let issued = fleets::issue_enrollment_token(
        &w.deps,
        &w.admin,
        fleet.fleet.id,
        Some(EnrollmentTtlHours::new(2).expect("a ttl")),
        MaxUses::new(5).expect("a use count"),
        fleetpass_domain::label::Labels::none(),
        AllowedCidrs::anywhere(),
    )
    .await
    .expect("a token");
    w.at(T0 + Duration::hours(2) - Duration::seconds(1));
    w.enroll(issued.secret.expose())
        .await
        .expect("a second before expiry it enrolls");
    w.at(T0 + Duration::hours(2));
    is_unauthorized(
        w.enroll(issued.secret.expose()).await,
        "at its expiry instant",
    );
}

#[tokio::test]
async fn a_fleets_first_enrollment_token_is_one_time_and_lasts_72_hours() {
    let w = World::new().await;
    let fleet = w.fleet().await;
    assert_eq!(fleet.enrollment.token.expires_at, T0 + Duration::hours(72));
    w.enroll(fleet.enrollment.secret.expose())
        .await
        .expect("the first use enrolls");
    is_unauthorized(
        w.enroll(fleet.enrollment.secret.expose()).await,
        "the second use of a one-time token",
    );
}

#[tokio::test]
async fn a_revoked_enrollment_token_no_longer_enrolls() {
    let w = World::new().await;
    let fleet = w.fleet().await;
    fleets::revoke_enrollment_token(&w.deps, &w.admin, fleet.fleet.id, fleet.enrollment.token.id)
        .await
        .expect("revoked");
    is_unauthorized(
        w.enroll(fleet.enrollment.secret.expose()).await,
        "a revoked token",
    );
}

#[tokio::test]
async fn a_share_link_opens_until_its_expiry_and_its_access_limit() {
    let w = World::new().await;
    let scan = w.completed_scan().await;
    let share = |hours, max: Option<i64>| NewShare {
        ttl: ShareTtlHours::new(hours).expect("a ttl"),
        label: None,
        scope: Artifact::Bundle,
        max_accesses: max.map(|n| MaxAccesses::new(n).expect("a limit")),
    };
    let limited = shares::create_share_link(&w.deps, &w.admin, scan, share(24, Some(2)))
        .await
        .expect("a limited link");
    let expiring = shares::create_share_link(&w.deps, &w.admin, scan, share(1, None))
        .await
        .expect("an expiring link");

    for n in 1..=2 {
        let opened = shares::open(&w.deps, limited.secret.expose(), Artifact::Report)
            .await
            .expect("opens within its limit");
        assert_eq!(opened.link.access_count, n);
    }
    assert!(matches!(
        shares::open(&w.deps, limited.secret.expose(), Artifact::Report).await,
        Err(ShareRefused::Unavailable)
    ));

    // A link grants its scope and what is narrower, nothing wider.
    let narrow = shares::create_share_link(
        &w.deps,
        &w.admin,
        scan,
        NewShare {
            scope: Artifact::Report,
            ..share(24, None)
        },
    )
    .await
    .expect("a report-only link");
    assert!(matches!(
        shares::open(&w.deps, narrow.secret.expose(), Artifact::Bundle).await,
        Err(ShareRefused::OutOfScope(_))
    ));

    w.at(T0 + Duration::hours(1) - Duration::seconds(1));
    shares::open(&w.deps, expiring.secret.expose(), Artifact::Bundle)
        .await
        .expect("a second before expiry it opens");
    w.at(T0 + Duration::hours(1));
    assert!(matches!(
        shares::open(&w.deps, expiring.secret.expose(), Artifact::Bundle).await,
        Err(ShareRefused::Unavailable)
    ));
}

#[tokio::test]
async fn a_rotated_tokens_old_secret_works_through_its_grace_period_only() {
    let w = World::new().await;
    let (operator, old) = w.token(Role::Operator, EnvScope::All, 30).await;
    let rotated = tokens::rotate_token(
        &w.deps,
        &w.admin,
        operator.token_id,
        GraceHours::new(2).expect("a grace period"),
    )
    .await
    .expect("rotated");
    let new = rotated.secret.expose().to_owned();
    w.at(T0 + Duration::hours(2) - Duration::seconds(1));
    auth::authenticate(&w.deps, &old)
        .await
        .expect("the old secret works within the grace period");
    auth::authenticate(&w.deps, &new)
        .await
        .expect("the new secret works");
    w.at(T0 + Duration::hours(2));
    is_unauthorized(
        auth::authenticate(&w.deps, &old).await,
        "the old secret at the end of its grace period",
    );
    auth::authenticate(&w.deps, &new)
        .await
        .expect("the new secret still works");
}

#[tokio::test]
async fn a_rotation_without_grace_ends_the_old_secret_at_once() {
    let w = World::new().await;
    let (operator, old) = w.token(Role::Operator, EnvScope::All, 30).await;
    tokens::rotate_token(
        &w.deps,
        &w.admin,
        operator.token_id,
        GraceHours::new(0).expect("no grace"),
    )
    .await
    .expect("rotated");
    is_unauthorized(auth::authenticate(&w.deps, &old).await, "the old secret");
}

#[tokio::test]
async fn a_token_expires_at_its_ttl() {
    let w = World::new().await;
    let (_, secret) = w.token(Role::Viewer, EnvScope::All, 1).await;
    w.at(T0 + Duration::days(1) - Duration::seconds(1));
    auth::authenticate(&w.deps, &secret)
        .await
        .expect("works until its expiry");
    w.at(T0 + Duration::days(1));
    is_unauthorized(auth::authenticate(&w.deps, &secret).await, "at its expiry");
    // The admin's own token is still valid: the longest allowed TTL.
    auth::authenticate(&w.deps, &w.admin_secret)
        .await
        .expect("the admin token is long-lived");
}

#[tokio::test]
async fn roles_decide_what_a_token_may_do() {
    let w = World::new().await;
    let fleet = w.fleet().await;
    let (viewer, _) = w.token(Role::Viewer, EnvScope::All, 30).await;
    let (operator, _) = w.token(Role::Operator, EnvScope::All, 30).await;

    fleets::get_fleet(&w.deps, &viewer, fleet.fleet.id)
        .await
        .expect("a viewer reads fleets");
    is_denied(
        fleets::create_fleet(&w.deps, &viewer, None, None).await,
        "a viewer creating a fleet",
    );
    is_denied(
        fleets::rename_fleet(&w.deps, &viewer, fleet.fleet.id, fleet.fleet.name.clone()).await,
        "a viewer renaming a fleet",
    );
    fleets::create_fleet(&w.deps, &operator, None, None)
        .await
        .expect("an operator creates fleets");
    is_denied(
        directory::list_audit_events(
            &w.deps,
            &operator,
            &Default::default(),
            PageRequest::default(),
        )
        .await,
        "an operator reading the audit log",
    );
    is_denied(
        tokens::create_token(
            &w.deps,
            &operator,
            NewToken {
                name: TokenName::new("escalation").expect("a name"),
                owner: OwnerRef::Caller,
                role: Role::Admin,
                scope: EnvScope::All,
                ttl: TokenTtlDays::new(1).expect("a ttl"),
                rate_limit: None,
                allowed_cidrs: AllowedCidrs::anywhere(),
            },
        )
        .await,
        "an operator minting tokens",
    );
}

#[tokio::test]
async fn an_environment_scoped_token_sees_and_changes_only_its_environments() {
    let w = World::new().await;
    let staging = directory::create_environment(
        &w.deps,
        &w.admin,
        EnvironmentName::new("staging").expect("a name"),
    )
    .await
    .expect("an environment");
    let in_production = w.fleet().await;
    let (scoped, _) = w
        .token(
            Role::Operator,
            EnvScope::from_wire(false, vec![staging.id]).expect("a scope"),
            30,
        )
        .await;

    let in_staging = fleets::create_fleet(&w.deps, &scoped, None, Some(staging.id))
        .await
        .expect("a fleet in its own environment");
    assert_eq!(in_staging.fleet.environment_id, staging.id);
    is_denied(
        fleets::create_fleet(
            &w.deps,
            &scoped,
            None,
            Some(in_production.fleet.environment_id),
        )
        .await,
        "a fleet in another environment",
    );
    let outside = fleets::get_fleet(&w.deps, &scoped, in_production.fleet.id).await;
    assert!(
        matches!(
            outside,
            Err(ServiceError::NotFound | ServiceError::Denied(_))
        ),
        "a fleet outside the scope must not be readable, got {outside:?}"
    );
}

/// Issue 17, item 1: a rotation or a start under a master key other than the one the
/// keys in use were sealed with was written (or made a key) and locked the server out.
#[tokio::test]
async fn a_wrong_master_key_is_refused_before_anything_is_written() {
    use fleetpass_ports::keys::{self, KeyError};
    let w = World::new().await;
    let store = w.deps.store.as_ref();
    let wrong = MasterKey::from_bytes([7; 32]);
    let before = store.list_signing_keys().await.expect("listed");
    assert_eq!(before.len(), 1);
    let refused = keys::add_key(store, w.deps.secrets.as_ref(), &wrong, T0).await;
    assert!(
        matches!(&refused, Err(KeyError::WrongMasterKey { kid }) if *kid == before[0].kid),
        "{refused:?}"
    );
    let loaded = KeyRing::load(
        w.deps.store.clone(),
        w.deps.secrets.as_ref(),
        wrong.clone(),
        ISSUER,
        T0,
    )
    .await;
    assert!(matches!(loaded, Err(KeyError::WrongMasterKey { .. })));
    assert_eq!(
        store.list_signing_keys().await.expect("listed").len(),
        1,
        "nothing was written"
    );
    // The right key still adds one; once every key is retired a new master key starts
    // over (the documented recovery from a lost master key).
    keys::add_key(
        store,
        w.deps.secrets.as_ref(),
        &MasterKey::from_bytes([9; 32]),
        T0,
    )
    .await
    .expect("the right master key adds a key");
    for key in store.list_signing_keys().await.expect("listed") {
        store
            .retire_signing_key(&key.kid, T0)
            .await
            .expect("retired");
    }
    KeyRing::load(
        w.deps.store.clone(),
        w.deps.secrets.as_ref(),
        wrong,
        ISSUER,
        T0,
    )
    .await
    .expect("a new master key starts over once every old key is retired");
    assert_eq!(store.list_signing_keys().await.expect("listed").len(), 3);
}

/// A fan-out scan over more agents than one merge page: every part but a revoked
/// agent's reports, the sweeper's `finish_ready` ends it (the revocation left no part
/// open), and the merged bundle, report and passport cover exactly the reports, each
/// asset naming its agent.
#[tokio::test]
async fn a_fan_out_scan_merges_every_reported_part_across_pages() {
    let w = World::new().await;
    let fleet = w.fleet().await;
    let issued = fleets::issue_enrollment_token(
        &w.deps,
        &w.admin,
        fleet.fleet.id,
        Some(EnrollmentTtlHours::new(2).expect("a ttl")),
        MaxUses::new(1000).expect("a use count"),
        fleetpass_domain::label::Labels::none(),
        AllowedCidrs::anywhere(),
    )
    .await
    .expect("a token");
    let mut agents = Vec::new();
    for _ in 0..250 {
        agents.push(
            w.enroll(issued.secret.expose())
                .await
                .expect("enrolls")
                .agent,
        );
    }
    let scan = scans::request_scan(
        &w.deps,
        &w.admin,
        fleet.fleet.id,
        Scenario::Inventory,
        ScanConstraints::default(),
        fleetpass_domain::scan::ScanTarget::All,
    )
    .await
    .expect("a fan-out scan");
    let (revoked, reporting) = agents.split_first().expect("agents");
    for agent in reporting {
        let claimed = scans::claim(&w.deps, agent)
            .await
            .expect("a claim")
            .expect("its part");
        assert_eq!(claimed.id, scan.id);
        let running = scans::running_scan_of(&w.deps, agent, scan.id)
            .await
            .expect("its part runs");
        let results: ScanResults = serde_json::from_value(serde_json::json!({
            "assets": [{"hostname": agent.hostname.as_str(), "ip": "10.0.0.5", "os": "Debian 12", "openPorts": [22]}],
            "findings": [{"severity": "low", "title": "banner"}]
        }))
        .expect("results");
        let after = scans::submit_results(&w.deps, &w.keys, agent, running, results)
            .await
            .expect("results are accepted");
        assert_eq!(after.status, ScanStatus::Running, "one part is still open");
    }
    fleets::revoke_agent(&w.deps, &w.admin, revoked.id)
        .await
        .expect("revoked");
    assert_eq!(
        scans::finish_ready(&w.deps, &w.keys).await.expect("finish"),
        1
    );
    let (done, artifacts) = scans::get_artifacts(&w.deps, &w.admin, scan.id)
        .await
        .expect("artifacts");
    assert_eq!(done.status, ScanStatus::Completed);
    assert_eq!(artifacts.report.counts.assets, 249);
    assert_eq!(artifacts.report.counts.findings, 249);
    let bundle: serde_json::Value = serde_json::from_str(&artifacts.bundle_json).expect("a bundle");
    let named: std::collections::HashSet<&str> = bundle["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .filter_map(|a| a["agentId"].as_str())
        .collect();
    assert_eq!(named.len(), 249, "each asset names its own agent");
    assert!(!named.contains(revoked.id.to_string().as_str()));
    assert_eq!(
        scans::finish_ready(&w.deps, &w.keys).await.expect("finish"),
        0,
        "a scan ends once"
    );
}

/// Issue 21: access tokens are `at+jwt` (RFC 9068) for this server; a passport, though
/// signed by the same keys, is no access token; and an untyped token of the kind signed
/// before typing still works until it expires, so a rolling upgrade logs no agent out.
#[tokio::test]
async fn access_tokens_are_typed_and_tokens_from_before_typing_still_pass() {
    use fleetpass_domain::fleet::AgentClaims;
    use fleetpass_domain::jose::TokenType;
    use fleetpass_ports::keys::TokenRejected;
    let w = World::new().await;
    let fleet = w.fleet().await;
    let enrolled = w
        .enroll(fleet.enrollment.secret.expose())
        .await
        .expect("an enrollment");
    let token = enrolled.access.token.clone();
    let part = |i: usize| -> serde_json::Value {
        use base64::Engine as _;
        let raw = token.split('.').nth(i).expect("a JWT part");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(raw)
                .expect("base64url"),
        )
        .expect("JSON")
    };
    let (header, claims) = (part(0), part(1));
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], ISSUER);
    assert_eq!(claims["client_id"], claims["sub"]);
    assert!(claims["jti"].is_string());
    assert_eq!(
        w.keys.verify_agent_token(&token, T0).await,
        Ok(enrolled.agent.id)
    );

    // Signed the way tokens were before typing: generic header, fixed claims.
    let stored = w.deps.store.list_signing_keys().await.expect("listed");
    let pkcs8 = MasterKey::from_bytes([9; 32])
        .open(
            &format!("fleetpass/signing-key/{}", stored[0].kid),
            &stored[0].sealed_private_key,
        )
        .expect("the test's master key opens its key");
    let mut old_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    old_header.kid = Some(stored[0].kid.clone());
    let sign = |claims: &AgentClaims| {
        jsonwebtoken::encode(
            &old_header,
            claims,
            &jsonwebtoken::EncodingKey::from_ed_der(&pkcs8),
        )
        .expect("signed")
    };
    let typed: AgentClaims = serde_json::from_value(claims).expect("claims");
    let legacy = AgentClaims {
        iss: AgentClaims::LEGACY_ISSUER.into(),
        aud: AgentClaims::LEGACY_AUDIENCE.into(),
        client_id: None,
        jti: None,
        ..typed.clone()
    };
    assert_eq!(
        w.keys.verify_agent_token(&sign(&legacy), T0).await,
        Ok(enrolled.agent.id),
        "a token from before typing works until it expires"
    );
    assert!(matches!(
        w.keys
            .verify_agent_token(&sign(&legacy), T0 + Duration::minutes(15))
            .await,
        Err(TokenRejected::Claims(_))
    ));
    // Untyped with the new claims is neither kind: refused.
    assert!(w.keys.verify_agent_token(&sign(&typed), T0).await.is_err());
    // Well signed and typed, but relying on an extension nobody here implements.
    let crit = {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = serde_json::json!({"alg": "EdDSA", "kid": stored[0].kid, "typ": "at+jwt",
                                        "crit": ["x-bind"], "x-bind": "tls"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(&serde_json::to_vec(&typed).expect("json"))
        );
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
            .expect("the stored key");
        format!("{input}.{}", b64(pair.sign(input.as_bytes()).as_ref()))
    };
    assert_eq!(
        w.keys.verify_agent_token(&crit, T0).await,
        Err(TokenRejected::Malformed)
    );
    // A token of another kind, well signed, is refused by its type.
    let passport_typed = w
        .keys
        .sign(&typed, TokenType::Passport)
        .await
        .expect("signed");
    assert_eq!(
        w.keys.verify_agent_token(&passport_typed, T0).await,
        Err(TokenRejected::WrongType)
    );
}

/// A reported secret is `Revoked` exactly when it would have been accepted at that
/// instant, decided under the pinned clock: expiry, a rotation's grace and a used-up
/// enrollment token count, and the same secret twice is `Revoked` once.
#[tokio::test]
async fn a_reported_secret_is_live_exactly_when_it_would_be_accepted() {
    use auth::LeakOutcome::{NotLive, Revoked};
    let w = World::new().await;
    let (_, expiring) = w.token(Role::Viewer, EnvScope::All, 1).await;
    let (operator, old) = w.token(Role::Operator, EnvScope::All, 30).await;
    let rotated = tokens::rotate_token(
        &w.deps,
        &w.admin,
        operator.token_id,
        GraceHours::new(48).expect("a grace period"),
    )
    .await
    .expect("rotated");
    let (operator2, old2) = w.token(Role::Operator, EnvScope::All, 30).await;
    tokens::rotate_token(
        &w.deps,
        &w.admin,
        operator2.token_id,
        GraceHours::new(1).expect("a grace period"),
    )
    .await
    .expect("rotated");
    // The fleet's first enrollment token is one-time: used up once an agent enrolls.
    let used = w.fleet().await;
    w.enroll(used.enrollment.secret.expose())
        .await
        .expect("enrolls");
    let fresh = w.fleet().await;
    w.at(T0 + Duration::days(1));
    let reported = [
        expiring.as_str(),                // expired at this instant
        old.as_str(),                     // rotated out, within its grace
        old2.as_str(),                    // rotated out, past its grace
        used.enrollment.secret.expose(),  // used up
        fresh.enrollment.secret.expose(), // live
        fresh.enrollment.secret.expose(), // the same again
        "not a secret",                   // not ours
    ];
    let outcomes = auth::revoke_reported(&w.deps, reported)
        .await
        .expect("reported");
    assert_eq!(
        outcomes,
        [
            NotLive, Revoked, NotLive, NotLive, Revoked, NotLive, NotLive
        ]
    );
    is_unauthorized(
        auth::authenticate(&w.deps, &old).await,
        "the reported secret",
    );
    auth::authenticate(&w.deps, rotated.secret.expose())
        .await
        .expect("its replacement, which did not leak, still works");
    // The single endpoint's path is the same one, with the same verdict.
    assert_eq!(
        auth::revoke_leaked(&w.deps, &w.admin_secret)
            .await
            .expect("revoked"),
        Revoked
    );
    assert_eq!(
        auth::revoke_leaked(&w.deps, &w.admin_secret)
            .await
            .expect("revoked"),
        NotLive
    );
    assert!(auth::revoke_leaked(&w.deps, "not a secret").await.is_err());
}
