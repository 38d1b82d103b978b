//! The in-process Fleetpass app over the memory store, as the HTTP fuzz targets drive
//! it: one app per process on a current-thread actix runtime (actix services are
//! `!Send`), a tenant with one of everything made at setup, and [`exchange`], which
//! sends one request and keeps the app as setup left it for the next input.
//!
//! Ids and secrets come from counters (`CountingIds` below, the ports'
//! `SequentialSecrets`), so every build of the harness has the same fixtures: a committed seed may carry the agent's real id and secret,
//! and a rebuilt harness (see [`exchange`]) is the same app again.

use std::cell::RefCell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_http::Request;
use actix_service::boxed::{self, BoxService};
use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::ContentType;
use actix_web::http::{Method, StatusCode};
use actix_web::rt::SystemRunner;
use actix_web::test::{self, TestRequest};
use actix_web::web;
use fleetpass_domain::audit::AuditActor;
use fleetpass_domain::identity::TenantName;
use fleetpass_http::{AdminKey, AppState, GuardConfig, Guards, HttpConfig};
use fleetpass_ports::keys::{KeyRing, MasterKey};
use fleetpass_ports::ratelimit::RateLimiter as _;
use fleetpass_ports::service::tenants;
use fleetpass_ports::system::{FixedClock, SequentialSecrets};
use fleetpass_ports::{Clock as _, Deps, IdGen};
use fleetpass_store_memory::{MemoryIdempotency, MemoryRateLimiter, MemoryStore};
use serde_json::{Value, json};
use time::macros::datetime;
use uuid::Uuid;

/// The platform admin key of the fuzzed app.
pub const ADMIN_KEY: &str = "fuzz-platform-admin-key";

/// The app as a boxed service, so that the harness can name its type.
type App = BoxService<Request, ServiceResponse<BoxBody>, actix_web::Error>;

/// Which credential a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The tenant's admin API token.
    Admin,
    /// The platform admin key.
    Platform,
    /// The enrolled agent's access token.
    Agent,
    /// None: public routes.
    Public,
}

/// UUID v7 ids that count up and carry no randomness at all (the ports' own
/// `SequentialIds` fills the v7 random bits from the OS), so every harness has the same
/// fixture ids and a seed may name them.
#[derive(Debug, Default)]
struct CountingIds(AtomicU64);

impl IdGen for CountingIds {
    fn new_id(&self) -> Uuid {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        let mut tail = [0u8; 10];
        tail[2..].copy_from_slice(&n.to_be_bytes());
        // One id a second from the epoch on: ordered by id is ordered by creation.
        uuid::Builder::from_unix_timestamp_millis(n * 1000, &tail).into_uuid()
    }
}

/// The ids and secrets made at setup, for path parameters and credentials.
#[derive(Debug, Clone, Default)]
pub struct Fixtures {
    /// The tenant.
    pub tenant: String,
    /// The tenant's admin API token (`fpk_…`).
    pub admin_token: String,
    /// A second environment (`staging`).
    pub environment: String,
    /// A user (not the caller, so a PATCH cannot lock the harness out).
    pub user: String,
    /// A service account (not the caller's).
    pub service_account: String,
    /// A viewer token that PATCH and rotate may change (not the caller's).
    pub token: String,
    /// That token's secret.
    pub token_secret: String,
    /// A fleet.
    pub fleet: String,
    /// A multi-use enrollment token of the fleet (`fpe_…`).
    pub enrollment_secret: String,
    /// The enrolled agent.
    pub agent: String,
    /// Its long-lived secret (`fpa_…`).
    pub agent_secret: String,
    /// Its access token (a JWT).
    pub agent_access: String,
    /// A completed scan (with a report, bundle and passport).
    pub completed_scan: String,
    /// A scan the agent claimed and has not answered: results go here.
    pub running_scan: String,
    /// A share link of the completed scan.
    pub share_link: String,
    /// Its token (`fps_…`).
    pub share_secret: String,
}

impl Fixtures {
    /// `template` with `{fleet}`, `{running_scan}` and the like replaced by fixture ids.
    pub fn fill(&self, template: &str) -> String {
        template
            .replace("{tenant}", &self.tenant)
            .replace("{environment}", &self.environment)
            .replace("{user}", &self.user)
            .replace("{service_account}", &self.service_account)
            .replace("{token}", &self.token)
            .replace("{fleet}", &self.fleet)
            .replace("{agent}", &self.agent)
            .replace("{completed_scan}", &self.completed_scan)
            .replace("{running_scan}", &self.running_scan)
            .replace("{share_link}", &self.share_link)
            .replace("{share_secret}", &self.share_secret)
    }
}

/// A decoded answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its body (`Null` unless JSON).
    pub body: Value,
}

/// The app and the fixtures setup made in it.
pub struct Harness {
    app: App,
    fixtures: RefCell<Fixtures>,
    limiter: Arc<MemoryRateLimiter>,
}

impl Harness {
    /// Builds the app over a fresh memory store and makes the fixtures through it.
    ///
    /// # Panics
    /// When setup fails: the harness is then broken, not the input.
    pub async fn new() -> Self {
        Self::on(Arc::new(MemoryStore::new())).await
    }

    /// Builds the app over `store` (a fresh one: the fixtures are made in it).
    ///
    /// # Panics
    /// As [`Harness::new`].
    pub async fn on(store: Arc<dyn fleetpass_ports::Store>) -> Self {
        let clock = Arc::new(FixedClock::new(datetime!(2026-11-22 10:00 UTC)));
        let deps = Deps {
            store,
            clock: clock.clone(),
            ids: Arc::new(CountingIds::default()),
            secrets: Arc::new(SequentialSecrets::default()),
            wakeups: Arc::new(fleetpass_ports::wakeups::LocalWakeups::new(1_000)),
            part_claims: Arc::default(),
        };
        let master = MasterKey::from_bytes(deps.secrets.random_32());
        let keys = KeyRing::load(
            deps.store.clone(),
            deps.secrets.as_ref(),
            master.clone(),
            "http://127.0.0.1:8080",
            clock.now(),
        )
        .await
        .expect("signing keys load");
        let limiter = Arc::new(MemoryRateLimiter::new());
        let state = web::Data::new(AppState {
            deps: deps.clone(),
            keys: Arc::new(keys),
            config: HttpConfig {
                admin_key: Some(AdminKey::new(ADMIN_KEY)),
                ..HttpConfig::default()
            },
            guards: Guards {
                idempotency: Arc::new(MemoryIdempotency::new()),
                limiter: limiter.clone(),
                master,
                config: GuardConfig::default(),
            },
        });
        let app = boxed::service(test::init_service(fleetpass_http::app(state)).await);
        let created = tenants::create_tenant(
            &deps,
            TenantName::new("acme").expect("a valid name"),
            AuditActor::Platform,
        )
        .await
        .expect("tenant created");
        let harness = Self {
            app,
            fixtures: RefCell::new(Fixtures {
                tenant: created.tenant.id.to_string(),
                admin_token: created.admin_token.expose().to_owned(),
                ..Fixtures::default()
            }),
            limiter,
        };
        harness.make_fixtures().await;
        harness
    }

    /// Makes one of everything through the API, as a client would.
    async fn make_fixtures(&self) {
        let made = |answer: Answer, what: &str| {
            assert!(
                answer.status.is_success(),
                "setup: {what}: {} {}",
                answer.status,
                answer.body
            );
            answer.body
        };
        let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
        let post = |path: &str, auth: Auth, body: Value| {
            self.send_json(Method::POST, path.to_owned(), auth, body)
        };

        let env = made(
            post(
                "/api/admin/environments",
                Auth::Admin,
                json!({"name": "staging"}),
            )
            .await,
            "environment",
        );
        let user = made(
            post(
                "/api/admin/users",
                Auth::Admin,
                json!({"email": "ops@example.com", "name": "Ops", "role": "operator"}),
            )
            .await,
            "user",
        );
        let account = made(
            post(
                "/api/admin/service-accounts",
                Auth::Admin,
                json!({"name": "ci", "role": "viewer"}),
            )
            .await,
            "service account",
        );
        let token = made(
            post(
                "/api/admin/tokens",
                Auth::Admin,
                json!({"name": "ci", "role": "viewer", "allEnvironments": true, "expiresInDays": 30}),
            )
            .await,
            "token",
        );
        let fleet = made(
            post(
                "/tenant/discovery/fleets",
                Auth::Admin,
                json!({"name": "edge"}),
            )
            .await,
            "fleet",
        );
        let fleet_id = text(&fleet, "fleetId");
        let enrollment = made(
            post(
                &format!("/tenant/discovery/fleets/{fleet_id}/enrollment-tokens"),
                Auth::Admin,
                json!({"maxUses": 1000, "expiresHours": 720}),
            )
            .await,
            "enrollment token",
        );
        let enrollment_secret = text(&enrollment, "enrollmentToken");
        let agent = made(
            post(
                "/agent/enroll",
                Auth::Public,
                json!({"enrollmentToken": enrollment_secret, "hostname": "scanner-1", "platform": "linux"}),
            )
            .await,
            "agent",
        );
        {
            let mut f = self.fixtures.borrow_mut();
            f.environment = text(&env, "id");
            f.user = text(&user, "id");
            f.service_account = text(&account, "id");
            f.token = text(&token, "id");
            f.token_secret = text(&token, "token");
            f.fleet = fleet_id;
            f.enrollment_secret = enrollment_secret;
            f.agent = text(&agent, "agentId");
            f.agent_secret = text(&agent, "agentSecret");
            f.agent_access = text(&agent, "accessToken");
        }

        let completed = self.claimed_scan().await;
        let done = self
            .send_json(
                Method::POST,
                format!("/agent/scans/{completed}/results"),
                Auth::Agent,
                sample_results(),
            )
            .await;
        made(done, "results");
        let share = made(
            post(
                &format!("/tenant/scans/{completed}/share-links"),
                Auth::Admin,
                json!({"label": "auditor", "scope": "passport"}),
            )
            .await,
            "share link",
        );
        let running = self.claimed_scan().await;
        let mut f = self.fixtures.borrow_mut();
        f.completed_scan = completed;
        f.running_scan = running;
        f.share_link = text(&share, "id");
        f.share_secret = text(&share, "token");
    }

    /// Requests a scan of the fixture fleet and has the agent claim it; its id.
    ///
    /// # Panics
    /// When the request or the claim fails: the harness is then broken.
    pub async fn claimed_scan(&self) -> String {
        let fleet = self.fixtures.borrow().fleet.clone();
        let requested = self
            .send_json(
                Method::POST,
                "/tenant/scans".to_owned(),
                Auth::Admin,
                json!({"fleetId": fleet, "scenario": "inventory"}),
            )
            .await;
        assert_eq!(requested.status, 202, "setup: scan: {}", requested.body);
        let claimed = self
            .send(
                Method::POST,
                "/agent/jobs/claim".to_owned(),
                Auth::Agent,
                Vec::new(),
            )
            .await;
        assert_eq!(claimed.status, 200, "setup: claim: {}", claimed.body);
        let id = requested.body["scanId"].as_str().unwrap_or_default();
        assert_eq!(claimed.body["scanId"], id, "setup: claimed another scan");
        id.to_owned()
    }

    /// Sends `body` as JSON.
    pub async fn send_json(&self, method: Method, path: String, auth: Auth, body: Value) -> Answer {
        self.send(method, path, auth, body.to_string().into_bytes())
            .await
    }

    /// Sends `body` with `Content-Type: application/json` and the credential of `auth`.
    pub async fn send(&self, method: Method, path: String, auth: Auth, body: Vec<u8>) -> Answer {
        let credential = {
            let f = self.fixtures.borrow();
            match auth {
                Auth::Admin => Some(f.admin_token.clone()),
                Auth::Platform => Some(ADMIN_KEY.to_owned()),
                Auth::Agent => Some(f.agent_access.clone()),
                Auth::Public => None,
            }
        };
        let mut req = TestRequest::default()
            .method(method)
            .uri(&path)
            .insert_header(ContentType::json())
            .set_payload(body);
        if let Some(credential) = credential {
            req = req.insert_header(("Authorization", format!("Bearer {credential}")));
        }
        let res = test::call_service(&self.app, req.to_request()).await;
        let status = res.status();
        let bytes = test::read_body(res).await;
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// Ends every rate-limit window. The clock stands still, so windows never end by
    /// themselves, and an input must not find the admin token's budget (or the failed
    /// authentications of the address) used up by the inputs before it.
    pub async fn end_rate_limit_windows(&self) {
        let _ = self.limiter.purge(datetime!(9999-01-01 0:00 UTC)).await;
    }
}

/// A valid result set (two assets, two findings).
pub fn sample_results() -> Value {
    json!({
        "assets": [
            {"hostname": "db-1", "ip": "10.0.0.5", "os": "Debian 12", "openPorts": [22, 5432],
             "software": [{"name": "postgresql", "version": "15.4"}]},
            {"hostname": "web-1", "ip": "2001:db8::7", "os": "Ubuntu 24.04", "openPorts": [443]}
        ],
        "findings": [
            {"severity": "low", "title": "SSH banner reveals version", "assetHostname": "db-1"},
            {"severity": "critical", "title": "Default password", "detail": "admin/admin accepted"}
        ]
    })
}

thread_local! {
    /// The actix system (a current-thread tokio runtime with a `LocalSet`).
    static RUNNER: SystemRunner = actix_web::rt::System::new();
    /// The harness; `None` until first use and after an input changed it. Never dropped
    /// at thread exit: its requests return to actix's thread-local pools, which may be
    /// gone by then (a panic in the exit handlers, which libFuzzer reports as a crash).
    static HARNESS: ManuallyDrop<RefCell<Option<Rc<Harness>>>> =
        const { ManuallyDrop::new(RefCell::new(None)) };
}

/// Runs `fut` to completion on the thread's actix system. Not from inside itself.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    RUNNER.with(|r| r.block_on(fut))
}

/// The thread's harness, built on first use.
fn harness() -> Rc<Harness> {
    if let Some(h) = HARNESS.with(|h| h.borrow().clone()) {
        return h;
    }
    let fresh = Rc::new(block_on(Harness::new()));
    if verbose() {
        eprintln!("harness fixtures: {:#?}", fresh.fixtures.borrow());
    }
    HARNESS.with(|h| *h.borrow_mut() = Some(fresh.clone()));
    fresh
}

/// Whether `FLEETPASS_FUZZ_VERBOSE` is set: then the harness prints its fixtures (the
/// ids and secrets a seed may use) and every exchange. For replaying one input, not
/// for fuzzing.
fn verbose() -> bool {
    std::env::var_os("FLEETPASS_FUZZ_VERBOSE").is_some()
}

/// Sends one request: `method` to the path `path` makes from the fixtures, with `body`
/// as JSON and the credential of `auth`. Returns the path and the answer.
///
/// Every input meets the app as setup left it, so a reproducer replays alone exactly
/// as it failed: a write that succeeded (a 2xx to anything but GET) may have changed
/// something (completed the running scan, rotated the token, …), so the harness is
/// dropped and the next input gets a new one (about 4 ms). Failures, the bulk of fuzz
/// inputs, change nothing (the store checks before it writes), and a GET moves only
/// counters no input can use up (`lastUsedAt`, the access count of a share link without
/// a limit), so those keep it. The ids and secrets of a rebuilt harness are the same.
pub fn exchange(
    method: Method,
    path: impl FnOnce(&Fixtures) -> String,
    auth: Auth,
    body: Vec<u8>,
) -> (String, Answer) {
    let h = harness();
    let path = path(&h.fixtures.borrow());
    let answer = block_on(async {
        let answer = h.send(method.clone(), path.clone(), auth, body).await;
        h.end_rate_limit_windows().await;
        answer
    });
    if verbose() {
        eprintln!(
            "{method} {path} ({auth:?}) -> {} {}",
            answer.status, answer.body
        );
    }
    if answer.status.is_success() && method != Method::GET {
        HARNESS.with(|h| *h.borrow_mut() = None);
    }
    (path, answer)
}

/// Whether `status` breaks the rule: any 5xx, except 503 where `may_503` (schedules on
/// the memory store answer 503 by design).
pub fn server_error(status: StatusCode, may_503: bool) -> bool {
    status.is_server_error() && !(may_503 && status == StatusCode::SERVICE_UNAVAILABLE)
}

/// `raw` percent-encoded for a path segment or query value: every byte but the
/// unreserved ones (RFC 3986) and those in `keep` becomes `%XX`, so any bytes make a
/// valid URI, and the app sees them back once decoded (invalid UTF-8 included).
pub fn percent_encode(raw: &[u8], keep: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len() * 3);
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
