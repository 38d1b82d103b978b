//! The benchmark scenarios on the PostgreSQL server: its data, made once, and each
//! scenario's load against pgbench running the same statements (or, for `/api/me`,
//! which sends none, the bare actix-web server).

use std::path::Path;

use anyhow::Context as _;

use super::api::{self, Api};
use super::db::Database;
use super::servers::{ADMIN_KEY, Server};
use super::sql;
use super::{
    Bare, Env, Http, OhaFiles, Options, Outcome, Side, Sql, alternate, alternate_all,
    client_address, common_env, http_rotating, rotating_gets, rotating_urls,
};

/// The PostgreSQL server's data, made once for every PostgreSQL scenario.
pub(super) struct PgData {
    pub(super) tokens: Vec<String>,
    pub(super) fleet: String,
    pub(super) scans: Vec<String>,
    pub(super) exhausted: String,
}

/// A scenario's name, title and the baseline's SQL, for [`pg_scenario`].
struct PgScenario {
    name: &'static str,
    title: &'static str,
    sql: String,
    defines: Vec<(String, String)>,
    before_run: Option<&'static str>,
}

fn pg_scenario(
    env: &Env,
    opts: &Options,
    server: &Server,
    db: &Database,
    s: PgScenario,
    a: &mut Http<'_>,
) -> anyhow::Result<Outcome> {
    let script = env.work.join(format!("{}.sql", s.name));
    std::fs::write(&script, &s.sql)?;
    let mut b = Sql {
        label: format!("pgbench, same SQL ({})", s.name),
        script,
        defines: s.defines,
        db,
        before_run: s.before_run,
    };
    let (sa, sb, notes) = alternate(env, opts, a, &mut b)?;
    Ok(Outcome {
        name: s.name,
        title: s.title.to_owned(),
        a: sa,
        b: sb,
        more: Vec::new(),
        server: server.label.clone(),
        rss_kib: server.rss_kib(),
        notes,
    })
}

/// `fleetpass serve` on `db` (with a new master key), ready.
pub(super) fn start_pg_server(
    label: &str,
    bin: &Path,
    db: &Database,
    log_dir: &Path,
) -> anyhow::Result<Server> {
    let master = std::process::Command::new(bin.join("fleetpass"))
        .args(["keys", "new-master-key"])
        .env_clear()
        .output()
        .context("Failed to run fleetpass keys new-master-key")?;
    let master = String::from_utf8_lossy(&master.stdout).trim().to_owned();
    let mut server_env = common_env();
    server_env.push(("DATABASE_URL", db.url()));
    server_env.push(("FLEETPASS_MASTER_KEY", master));
    Server::start(
        label,
        &bin.join("fleetpass"),
        &["serve"],
        &server_env,
        Some("FLEETPASS_BIND"),
        "/readyz",
        log_dir,
    )
}

/// The scenarios on the PostgreSQL server, which starts once for all of them.
pub(super) fn postgres_scenarios(
    env: &Env,
    opts: &Options,
    bin: &Path,
    db: &Database,
    wanted: &dyn Fn(&str) -> bool,
) -> anyhow::Result<Vec<Outcome>> {
    let server = start_pg_server("fleetpass (PostgreSQL)", bin, db, &env.work)?;
    let api = Api::new(&server.base);
    let data = env.rt.block_on(pg_setup(&api))?;
    let params = sql::Params::load(db, &data.tokens, &data.scans, &data.fleet)?;
    let defines = params.defines(db)?;
    let mut outcomes = Vec::new();
    let tokens = &data.tokens;
    let scans = &data.scans;
    let scenario = |name: &'static str,
                    title: &'static str,
                    sql: String,
                    extra: &[(&str, String)],
                    before_run: Option<&'static str>| PgScenario {
        name,
        title,
        sql,
        defines: defines
            .iter()
            .cloned()
            .chain(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
            .collect(),
        before_run,
    };

    if wanted("me-postgres") {
        println!("\n## me-postgres");
        // No SQL in the steady state (sql.rs): the baseline is the bare server.
        let (status, size) = env.rt.block_on(api.get_len("/api/me", &tokens[0]))?;
        anyhow::ensure!(status == 200, "GET /api/me answered {status}");
        // The capture's body size, as in me-memory. Known gap: on PostgreSQL a token's
        // `lastUsedAt` is written in batches, so the capture may still show it null
        // (532 bytes where the steady state sends 557); capturing after the load's
        // warm-up would close it.
        let same = Bare::start_replay(bin, &server, &tokens[0], &env.work, "me-postgres")?;
        let baseline = Bare::start(bin, same.size.max(size), &tokens[0], &env.work)?;
        let me = |_: usize| "/api/me".to_owned();
        let mut a = http_rotating(
            "fleetpass, PostgreSQL",
            &server,
            rotating_gets(tokens, me),
            rotating_urls(tokens, me),
            200,
        );
        let mut b = baseline.load();
        let mut c = same.load();
        let (sides, mut notes) = alternate_all(env, opts, &mut [&mut a, &mut b, &mut c])?;
        notes.push(baseline.note());
        notes.push(same.note());
        let [sa, sb, sc] =
            <[Side; 3]>::try_from(sides).map_err(|_| anyhow::anyhow!("three sides"))?;
        outcomes.push(Outcome {
            name: "me-postgres",
            title: "`GET /api/me`, PostgreSQL".to_owned(),
            a: sa,
            b: sb,
            more: vec![sc],
            server: server.label.clone(),
            rss_kib: server.rss_kib(),
            notes,
        });
    }
    if wanted("scan-read") {
        println!("\n## scan-read");
        let path = |i: usize| format!("/tenant/scans/{}", scans[i % scans.len()]);
        let (gets, urls) = (rotating_gets(tokens, path), rotating_urls(tokens, path));
        let mut a = http_rotating("fleetpass, PostgreSQL", &server, gets, urls, 200);
        let s = scenario(
            "scan-read",
            "`GET /tenant/scans/{id}`, PostgreSQL",
            sql::Params::scan_sql(),
            &[],
            None,
        );
        outcomes.push(pg_scenario(env, opts, &server, db, s, &mut a)?);
    }
    if wanted("share-open-cold") {
        println!("\n## share-open-cold");
        // pgbench opens these (and any made before); the server's runs get fresh ones.
        env.rt.block_on(api.share_links(tokens, &scans[0], 1000))?;
        let links = sql::Params::share_links_table(db)?;
        let fresh = |env: &Env, n: usize| env.rt.block_on(api.share_links(tokens, &scans[0], n));
        let mut a = Http {
            label: "fleetpass, PostgreSQL".to_owned(),
            base: server.base.clone(),
            once: true,
            lines: Box::new(
                |env: &Env, secs: u64, rate: f64| -> anyhow::Result<Vec<String>> {
                    let made = fresh(env, one_time_count(secs, rate))?;
                    Ok(made
                        .iter()
                        .enumerate()
                        .map(|(i, t)| format!("GET\t/share/{t}\t\t{}", client_address(i)))
                        .collect())
                },
            ),
            oha: Box::new(
                |env: &Env, secs: u64, rate: f64| -> anyhow::Result<OhaFiles> {
                    // oha picks URLs at random: four times as many links as requests keeps
                    // most opens first opens.
                    let made = fresh(env, (rate * secs as f64 * 4.0) as usize + 100)?;
                    Ok(OhaFiles {
                        method: "GET",
                        urls: made.iter().map(|t| format!("/share/{t}")).collect(),
                        headers: vec![client_address(0)],
                        bodies: None,
                    })
                },
            ),
            expect: 200,
            seen_rate: 0.0,
        };
        let s = scenario(
            "share-open-cold",
            "`GET /share/{token}`, each link opened for the first time, PostgreSQL",
            sql::Params::share_open_sql(),
            &[("nlinks", links)],
            None,
        );
        outcomes.push(pg_scenario(env, opts, &server, db, s, &mut a)?);
    }
    if wanted("share-create") {
        println!("\n## share-create");
        let lines: Vec<String> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(
                    "POST\t/tenant/scans/{}/share-links\t{{\"label\":\"bench\"}}\tAuthorization: Bearer {t}\tContent-Type: application/json",
                    scans[i % scans.len()]
                )
            })
            .collect();
        let urls = rotating_urls(tokens, |i| {
            format!("/tenant/scans/{}/share-links", scans[i % scans.len()])
        });
        let mut a = Http {
            label: "fleetpass, PostgreSQL".to_owned(),
            base: server.base.clone(),
            once: false,
            lines: Box::new(
                move |_: &Env, _: u64, _: f64| -> anyhow::Result<Vec<String>> { Ok(lines.clone()) },
            ),
            oha: Box::new(move |_: &Env, _: u64, _: f64| -> anyhow::Result<OhaFiles> {
                Ok(OhaFiles {
                    method: "POST",
                    urls: urls.clone(),
                    headers: Vec::new(),
                    bodies: Some(vec![r#"{"label":"bench"}"#.to_owned()]),
                })
            }),
            expect: 201,
            seen_rate: 0.0,
        };
        let s = scenario(
            "share-create",
            "`POST /tenant/scans/{id}/share-links` (and its audit event), PostgreSQL",
            sql::Params::share_create_sql(),
            &[],
            None,
        );
        outcomes.push(pg_scenario(env, opts, &server, db, s, &mut a)?);
    }
    if wanted("enroll") {
        println!("\n## enroll");
        let fleet = data.fleet.clone();
        // pgbench's tokens: 1000 of 1000 uses each, given back before every run.
        let reusable = env
            .rt
            .block_on(api.enrollment_tokens(tokens, &fleet, 1000, 1000))?;
        let count = sql::Params::enrollment_table(db, &reusable)?;
        let body = |t: &str, i: usize| {
            format!(
                r#"{{"enrollmentToken":"{t}","hostname":"bench-{i}","platform":"linux-x86_64"}}"#
            )
        };
        let mut a = Http {
            label: "fleetpass, PostgreSQL".to_owned(),
            base: server.base.clone(),
            once: true,
            lines: Box::new(
                |env: &Env, secs: u64, rate: f64| -> anyhow::Result<Vec<String>> {
                    let n = one_time_count(secs, rate);
                    let made = env
                        .rt
                        .block_on(api.enrollment_tokens(tokens, &fleet, n, 1))?;
                    Ok(made
                        .iter()
                        .enumerate()
                        .map(|(i, t)| {
                            format!(
                                "POST\t/agent/enroll\t{}\tContent-Type: application/json\t{}",
                                body(t, i),
                                client_address(i)
                            )
                        })
                        .collect())
                },
            ),
            oha: Box::new(
                |env: &Env, secs: u64, rate: f64| -> anyhow::Result<OhaFiles> {
                    // oha picks bodies at random, so one-time tokens would be picked twice:
                    // these allow 1000 uses and are picked ~250 times each, the same
                    // consume (a counted UPDATE under a row lock) on a token with uses left.
                    let n = ((rate * secs as f64) / 250.0).ceil() as usize + 1;
                    let made = env
                        .rt
                        .block_on(api.enrollment_tokens(tokens, &fleet, n, 1000))?;
                    Ok(OhaFiles {
                        method: "POST",
                        urls: vec!["/agent/enroll".to_owned()],
                        headers: vec![client_address(0)],
                        bodies: Some(made.iter().enumerate().map(|(i, t)| body(t, i)).collect()),
                    })
                },
            ),
            expect: 201,
            seen_rate: 0.0,
        };
        let s = scenario(
            "enroll",
            "`POST /agent/enroll` with a fresh one-time token, PostgreSQL",
            sql::Params::enroll_sql(),
            &[("nenroll", count)],
            Some(sql::Params::RESET_ENROLLMENT),
        );
        outcomes.push(pg_scenario(env, opts, &server, db, s, &mut a)?);
    }
    if wanted("rate-limited") {
        println!("\n## rate-limited");
        let me = |_: usize| "/api/me".to_owned();
        let one = vec![data.exhausted.clone()];
        let mut a = http_rotating(
            "429s, an exhausted token",
            &server,
            rotating_gets(&one, me),
            rotating_urls(&one, me),
            429,
        );
        let mut b = http_rotating(
            "200s, GET /api/me",
            &server,
            rotating_gets(tokens, me),
            rotating_urls(tokens, me),
            200,
        );
        let (sa, sb, mut notes) = alternate(env, opts, &mut a, &mut b)?;
        notes.push(
            "The exhausted token allows one request a minute, so each new minute answers one 200 among its 429s."
                .to_owned(),
        );
        outcomes.push(Outcome {
            name: "rate-limited",
            title:
                "`GET /api/me` refused (429, token limit spent) against answered (200), PostgreSQL"
                    .to_owned(),
            a: sa,
            b: sb,
            more: Vec::new(),
            server: server.label.clone(),
            rss_kib: server.rss_kib(),
            notes,
        });
    }
    Ok(outcomes)
}

/// How many one-time credentials a wrk run of `secs` seconds needs at `rate` (with
/// room: a run that runs out stops early, which the report says).
fn one_time_count(secs: u64, rate: f64) -> usize {
    let rate = if rate > 0.0 { rate * 1.5 } else { 1500.0 };
    (rate * secs as f64) as usize + 200
}

/// The PostgreSQL server's data: a tenant, its tokens, a fleet with an enrolled agent,
/// completed scans, and a token whose limit (one a minute) is spent.
pub(super) async fn pg_setup(api: &Api) -> anyhow::Result<PgData> {
    let admin = api.tenant(ADMIN_KEY, "bench").await?;
    let tokens = api.tokens(&admin, api::TOKENS, api::ROOMY).await?;
    let fleet = api.fleet(&tokens[0], "bench").await?;
    let first = api.enrollment_tokens(&tokens, &fleet, 1, 1).await?;
    let agent = api.enroll(&first[0]).await?;
    let mut scans = Vec::new();
    for _ in 0..4 {
        scans.push(api.completed_scan(&tokens[0], &fleet, &agent).await?);
    }
    let exhausted = api.tokens(&admin, 1, 1).await?.remove(0);
    for expect in [200, 429] {
        let (status, _) = api.get_len("/api/me", &exhausted).await?;
        anyhow::ensure!(
            status == expect,
            "the one-a-minute token answered {status}, expected {expect}"
        );
    }
    Ok(PgData {
        tokens,
        fleet,
        scans,
        exhausted,
    })
}
