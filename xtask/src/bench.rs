//! `cargo xtask bench`: what idempotency keys and rate limits add to a request.
//!
//! Every scenario runs the real application in process (`actix_web::test`, no sockets,
//! so network noise does not drown the differences) over the in-memory store, and only
//! the guard's backends change: none (the app without the guard middleware), the
//! in-process adapters, or PostgreSQL (a throwaway database). Requests go one at a time,
//! so a scenario's latency is the whole cost of one request. The two shared-limiter
//! candidates are also timed head to head: one PostgreSQL upsert (through the port)
//! against one Redis `INCR`+`EXPIRE` round trip (a minimal RESP client; skipped when
//! no Redis answers on 127.0.0.1:6379).
//!
//! The numbers are reported as ratios to the baseline measured in the same run, never
//! asserted: they describe this machine, now.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::App;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use anyhow::Context as _;
use fleetpass_domain::audit::AuditActor;
use fleetpass_domain::identity::TenantName;
use fleetpass_domain::secret::{PlainSecret, SecretKind};
use fleetpass_http::{AppState, GuardConfig, Guards, HttpConfig};
use fleetpass_ports::idempotency::IdempotencyStore;
use fleetpass_ports::keys::{KeyRing, MasterKey};
use fleetpass_ports::ratelimit::{Limit, RateLimiter};
use fleetpass_ports::service::tenants;
use fleetpass_ports::system::SystemClock;
use fleetpass_ports::{Clock as _, Deps, Store};
use fleetpass_store_memory::{MemoryIdempotency, MemoryRateLimiter, MemoryStore};
use fleetpass_store_postgres::testing::TestDatabase;

/// Limits far above what the benchmark sends: it measures the cost of counting, not of
/// refusing.
const ROOMY: u32 = 100_000;

/// One scenario's timings.
struct Timing {
    name: String,
    latencies: Vec<Duration>,
}

impl Timing {
    fn mean_us(&self) -> f64 {
        let total: Duration = self.latencies.iter().sum();
        total.as_secs_f64() * 1e6 / self.latencies.len().max(1) as f64
    }

    fn percentile_us(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    }
}

/// An app state over `store` with the given guard backends, and the admin token of a
/// new tenant in it.
async fn state(
    store: Arc<dyn Store>,
    idempotency: Arc<dyn IdempotencyStore>,
    limiter: Arc<dyn RateLimiter>,
) -> anyhow::Result<(web::Data<AppState>, String)> {
    let deps = Deps::system(store);
    let master = MasterKey::from_bytes(deps.secrets.random_32());
    let keys = KeyRing::load(
        deps.store.clone(),
        deps.secrets.as_ref(),
        master.clone(),
        deps.now(),
    )
    .await
    .context("Failed to make a signing key")?;
    let created = tenants::create_tenant(
        &deps,
        TenantName::new(&format!("bench-{}", deps.ids.new_id().simple()))
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        AuditActor::Platform,
    )
    .await
    .map_err(|e| anyhow::anyhow!("Failed to create the tenant: {e}"))?;
    let admin = created.admin_token.expose().to_owned();
    let state = web::Data::new(AppState {
        deps,
        keys: Arc::new(keys),
        config: HttpConfig::default(),
        guards: Guards {
            idempotency,
            limiter,
            master,
            config: GuardConfig {
                public_per_minute: ROOMY,
                auth_failures_per_minute: ROOMY,
                ..GuardConfig::default()
            },
        },
    });
    Ok((state, admin))
}

/// Sends `requests` requests made by `make` (after a warm-up) and times each.
async fn time<S, B>(
    name: &str,
    app: &S,
    requests: usize,
    expect: u16,
    mut make: impl FnMut(usize) -> TestRequest,
) -> anyhow::Result<Timing>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    for i in 0..requests / 10 {
        test::call_service(app, make(usize::MAX - i).to_request()).await;
    }
    let mut latencies = Vec::with_capacity(requests);
    for i in 0..requests {
        let req = make(i).to_request();
        let started = Instant::now();
        let res = test::call_service(app, req).await;
        let status = res.status().as_u16();
        let _ = test::read_body(res).await;
        latencies.push(started.elapsed());
        anyhow::ensure!(
            status == expect,
            "{name}: request {i} answered {status}, expected {expect}"
        );
    }
    Ok(Timing {
        name: name.to_owned(),
        latencies,
    })
}

/// Mints a token whose own limit is far above what the benchmark sends.
async fn roomy_token<S, B>(app: &S, admin: &str) -> anyhow::Result<String>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = TestRequest::post()
        .uri("/api/admin/tokens")
        .insert_header(("Authorization", format!("Bearer {admin}")))
        .set_json(
            serde_json::json!({"name": "bench", "role": "viewer", "allEnvironments": true,
                                     "expiresInDays": 1, "rateLimitPerMinute": ROOMY}),
        );
    let res = test::call_service(app, req.to_request()).await;
    let body: serde_json::Value = serde_json::from_slice(&test::read_body(res).await)?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .context("minting the benchmark's token")
}

fn me(admin: &str) -> TestRequest {
    TestRequest::get()
        .uri("/api/me")
        .insert_header(("Authorization", format!("Bearer {admin}")))
}

/// A cheap POST: revoking an unknown (but well-formed) secret is one store lookup.
fn revocation(secret: &str) -> TestRequest {
    TestRequest::post()
        .uri("/api/public/revocations")
        .peer_addr(([127, 0, 0, 1], 4000).into())
        .set_json(serde_json::json!({ "token": secret }))
}

/// The app without the guard: the baseline.
fn unguarded(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .configure(fleetpass_http::routes::configure)
        .wrap(actix_web::middleware::from_fn(
            fleetpass_http::middleware::request_context,
        ))
}

/// One Redis `INCR key` + `EXPIRE key 60` pipelined: what a Redis limiter does per hit.
/// Blocking I/O: the probe runs alone, one request at a time.
fn redis_hit(conn: &mut TcpStream, key: &str) -> anyhow::Result<()> {
    let command = format!(
        "*2\r\n$4\r\nINCR\r\n${}\r\n{key}\r\n*3\r\n$6\r\nEXPIRE\r\n${}\r\n{key}\r\n$2\r\n60\r\n",
        key.len(),
        key.len()
    );
    conn.write_all(command.as_bytes())?;
    // Two integer replies, `:<n>\r\n` each.
    let mut seen = 0;
    let mut buf = [0u8; 64];
    while seen < 2 {
        let n = conn.read(&mut buf)?;
        anyhow::ensure!(n > 0, "redis closed the connection");
        anyhow::ensure!(buf[0] == b':', "unexpected redis reply");
        seen += buf[..n].iter().filter(|b| **b == b'\n').count();
    }
    Ok(())
}

fn redis_probe(requests: usize) -> Option<Timing> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 6379));
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    conn.set_nodelay(true).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut latencies = Vec::with_capacity(requests);
    for i in 0..requests + requests / 10 {
        let started = Instant::now();
        redis_hit(&mut conn, &format!("fleetpass-bench:{}", i % 50)).ok()?;
        if i >= requests / 10 {
            latencies.push(started.elapsed());
        }
    }
    Some(Timing {
        name: "Redis INCR+EXPIRE, one round trip".to_owned(),
        latencies,
    })
}

async fn pg_probe(pg: &TestDatabase, requests: usize) -> anyhow::Result<Timing> {
    let limit = Limit::per_minute(ROOMY);
    let mut latencies = Vec::with_capacity(requests);
    for i in 0..requests + requests / 10 {
        let key = format!("bench:{}", i % 50);
        let started = Instant::now();
        pg.hit(&key, limit, SystemClock.now())
            .await
            .context("PostgreSQL limiter hit")?;
        if i >= requests / 10 {
            latencies.push(started.elapsed());
        }
    }
    Ok(Timing {
        name: "PostgreSQL upsert, one round trip (the port's `hit`)".to_owned(),
        latencies,
    })
}

fn report(title: &str, baseline: &Timing, rows: &[&Timing]) {
    println!("\n### {title}\n");
    println!("| scenario | mean µs | p50 µs | p99 µs | req/s | latency × baseline |");
    println!("|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let mean = row.mean_us();
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |",
            row.name,
            mean,
            row.percentile_us(0.5),
            row.percentile_us(0.99),
            1e6 / mean,
            mean / baseline.mean_us()
        );
    }
}

async fn bench(requests: usize) -> anyhow::Result<()> {
    let pg = TestDatabase::fresh().await;
    let pg_store = pg.store_arc();
    let memory_limiter = || -> Arc<dyn RateLimiter> { Arc::new(MemoryRateLimiter::new()) };
    let memory_idem = || -> Arc<dyn IdempotencyStore> { Arc::new(MemoryIdempotency::new()) };
    let memory_store = || -> Arc<dyn Store> { Arc::new(MemoryStore::new()) };
    let pg_requests = requests.div_ceil(3);

    let (plain, admin) = state(memory_store(), memory_idem(), memory_limiter()).await?;
    let app = test::init_service(unguarded(plain.clone())).await;
    let token = roomy_token(&app, &admin).await?;
    let get_base = time("no guard (baseline)", &app, requests, 200, |_| me(&token)).await?;
    let app = test::init_service(fleetpass_http::app(plain.clone())).await;
    let get_mem = time("limiter, in process", &app, requests, 200, |_| me(&token)).await?;
    let (pg_limited, pg_admin) = state(memory_store(), memory_idem(), pg_store.clone()).await?;
    let app = test::init_service(fleetpass_http::app(pg_limited)).await;
    let pg_token = roomy_token(&app, &pg_admin).await?;
    let get_pg = time("limiter, PostgreSQL", &app, pg_requests, 200, |_| {
        me(&pg_token)
    })
    .await?;
    report(
        "GET /api/me (authenticated: token limit + failed-auth check)",
        &get_base,
        &[&get_base, &get_mem, &get_pg],
    );

    let secret = PlainSecret::from_random(SecretKind::ApiToken, [7; 32]);
    let secret = secret.expose().to_owned();
    let keyed = |i: usize| revocation(&secret).insert_header(("Idempotency-Key", format!("k-{i}")));
    let app = test::init_service(unguarded(plain.clone())).await;
    let post_base = time("no guard (baseline)", &app, requests, 202, |_| {
        revocation(&secret)
    })
    .await?;
    let app = test::init_service(fleetpass_http::app(plain.clone())).await;
    let post_limit = time("limiter, in process, no key", &app, requests, 202, |_| {
        revocation(&secret)
    })
    .await?;
    let post_idem_mem = time("limiter + key, in process", &app, requests, 202, keyed).await?;
    let (pg_both, _) = state(memory_store(), pg_store.clone(), pg_store.clone()).await?;
    let app = test::init_service(fleetpass_http::app(pg_both)).await;
    let post_idem_pg = time("limiter + key, PostgreSQL", &app, pg_requests, 202, keyed).await?;
    let post_replay_pg = time(
        "limiter + replay, PostgreSQL",
        &app,
        pg_requests,
        202,
        |_| revocation(&secret).insert_header(("Idempotency-Key", "same")),
    )
    .await?;
    report(
        "POST /api/public/revocations (public: per-address limit + failed-auth check)",
        &post_base,
        &[
            &post_base,
            &post_limit,
            &post_idem_mem,
            &post_idem_pg,
            &post_replay_pg,
        ],
    );

    // As a replica with DATABASE_URL runs: the store on PostgreSQL too, so the baseline
    // pays for the token lookup and the handler's queries.
    let (all_pg, all_pg_admin) =
        state(pg_store.clone(), pg_store.clone(), pg_store.clone()).await?;
    let app = test::init_service(unguarded(all_pg.clone())).await;
    let all_pg_token = roomy_token(&app, &all_pg_admin).await?;
    let replica_get_base = time("GET, no guard (baseline)", &app, pg_requests, 200, |_| {
        me(&all_pg_token)
    })
    .await?;
    let replica_post_base = time("POST, no guard", &app, pg_requests, 202, |_| {
        revocation(&secret)
    })
    .await?;
    let app = test::init_service(fleetpass_http::app(all_pg)).await;
    let replica_get = time("GET, limiter", &app, pg_requests, 200, |_| {
        me(&all_pg_token)
    })
    .await?;
    let replica_post = time("POST, limiter, no key", &app, pg_requests, 202, |_| {
        revocation(&secret)
    })
    .await?;
    let replica_keyed = time("POST, limiter + key", &app, pg_requests, 202, |i| {
        revocation(&secret).insert_header(("Idempotency-Key", format!("replica-{i}")))
    })
    .await?;
    report(
        "Everything on PostgreSQL, as a replica with DATABASE_URL runs (ratios to the GET baseline)",
        &replica_get_base,
        &[
            &replica_get_base,
            &replica_get,
            &replica_post_base,
            &replica_post,
            &replica_keyed,
        ],
    );

    let pg_hit = pg_probe(&pg, requests).await?;
    let rows: Vec<Timing> = [Some(pg_hit), redis_probe(requests)]
        .into_iter()
        .flatten()
        .collect();
    if let Some(first) = rows.first() {
        report(
            "Shared limiter candidates, one hit (sequential, loopback)",
            first,
            &rows.iter().collect::<Vec<_>>(),
        );
    }
    if rows.len() < 2 {
        println!("\n(no Redis on 127.0.0.1:6379: its row is missing)");
    }
    println!(
        "\n{requests} requests per in-process scenario ({pg_requests} with PostgreSQL), after a 10% warm-up; one at a time."
    );
    Ok(())
}

/// Runs the benchmark and prints Markdown tables.
///
/// # Errors
/// When PostgreSQL cannot be reached or a request is not answered as expected.
pub fn run(requests: usize) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(bench(requests.max(10)))
}
