//! `cargo xtask bench fleet`: a fleet simulator over real sockets, for one replica. It
//! enrolls N agents (in fleets of `--per-fleet`, through enrollment tokens with
//! `maxUses`), has each hold one long-poll check-in at a time
//! (`POST /agent/jobs/claim?wait=…`, the next at once, as the reference agent does),
//! queues scans through the operator API at a fixed rate, and reports: agents held,
//! answers by status, queued → claimed latency (p50/p99/max), `lastSeenAt` staleness
//! over every agent (read back through the API), the server's RSS (idle and with every
//! agent held, so per held agent) and CPU, and — on PostgreSQL — transactions a second.
//!
//! A first version: one replica, one simulator process (bounded by this process's
//! open-files limit), access tokens not renewed (runs shorter than their 15 minutes),
//! the report printed rather than written to docs/BENCHMARKS.md. Everything is
//! reported, nothing asserted.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::api::Api;
use super::db::Database;
use super::servers::{ADMIN_KEY, Server};

/// How a fleet run is shaped.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Agents to enroll and hold.
    pub agents: usize,
    /// Agents per fleet (a scan wakes its fleet's waiters).
    pub per_fleet: usize,
    /// Seconds of steady state, once every agent holds a check-in.
    pub seconds: u64,
    /// Scans queued a second, round-robin over the fleets.
    pub scans_per_second: f64,
    /// The `wait` each check-in asks for.
    pub wait: u32,
    /// Run on a fresh PostgreSQL database instead of in memory.
    pub postgres: bool,
}

/// How late PostgreSQL's idle backends may report their transactions
/// (`PGSTAT_IDLE_INTERVAL`, 10 s), and a margin.
const STATS_LAG: Duration = Duration::from_secs(11);

/// What the agents saw.
#[derive(Default)]
struct Seen {
    held: AtomicUsize,
    errors: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
    claimed: Mutex<HashMap<String, Instant>>,
}

/// Runs the simulator against the release build (built first), or against the
/// `fleetpass` binary in `server_dir`.
///
/// # Errors
/// When the build, the server or the setup fails.
pub fn run(opts: &FleetOptions, server_dir: Option<&Path>) -> anyhow::Result<()> {
    let target = super::servers::target_dir();
    let bin = match server_dir {
        Some(dir) => dir.to_path_buf(),
        None => {
            super::servers::build()?;
            target.join("release")
        }
    };
    let work = target.join("bench-work");
    std::fs::create_dir_all(&work)?;
    let report = simulate(&bin, &work, opts)?;
    println!("\n{report}");
    Ok(())
}

/// The simulation against the `fleetpass` binary in `bin`; its report (markdown).
///
/// # Errors
/// When the server or the setup fails.
pub fn simulate(bin: &Path, work: &Path, opts: &FleetOptions) -> anyhow::Result<String> {
    let db = if opts.postgres {
        crate::ensure_postgres()?;
        Some(Database::create("psql".into(), "fleet")?)
    } else {
        None
    };
    let mut env = super::common_env();
    // Room for every agent, and a wait the run can outlast.
    env.push(("FLEETPASS_MAX_HELD_POLLS", (opts.agents + 100).to_string()));
    if let Some(db) = &db {
        let master = std::process::Command::new(bin.join("fleetpass"))
            .args(["keys", "new-master-key"])
            .env_clear()
            .output()
            .context("Failed to run fleetpass keys new-master-key")?;
        env.push(("DATABASE_URL", db.url()));
        env.push((
            "FLEETPASS_MASTER_KEY",
            String::from_utf8_lossy(&master.stdout).trim().to_owned(),
        ));
    }
    let server = Server::start(
        "fleetpass (fleet)",
        &bin.join("fleetpass"),
        &["serve"],
        &env,
        Some("FLEETPASS_BIND"),
        "/readyz",
        work,
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(drive(&server, db.as_ref(), opts))
}

/// The server's CPU time so far (user + system), from /proc.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is parenthesised and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks / 100.0)
}

fn transactions(db: Option<&Database>) -> Option<f64> {
    db?.sql("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
        .ok()?
        .parse()
        .ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One simulated agent: a check-in outstanding at all times until `stop`.
async fn agent(
    client: reqwest::Client,
    url: String,
    token: String,
    wait: u32,
    seen: Arc<Seen>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let timeout = Duration::from_secs(u64::from(wait) + 30);
    while !*stop.borrow() {
        seen.held.fetch_add(1, Ordering::Relaxed);
        let answer = client
            .post(&url)
            .bearer_auth(&token)
            .timeout(timeout)
            .send()
            .await;
        seen.held.fetch_sub(1, Ordering::Relaxed);
        match answer {
            Ok(res) => {
                let status = res.status().as_u16();
                let retry_after = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                *seen
                    .statuses
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(status)
                    .or_default() += 1;
                if status == 200 {
                    let body: Value = res.json().await.unwrap_or(Value::Null);
                    if let Some(id) = body["scanId"].as_str() {
                        seen.claimed
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(id.to_owned(), Instant::now());
                    }
                } else if let Some(secs) = retry_after {
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                }
            }
            Err(_) => {
                seen.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn drive(
    server: &Server,
    db: Option<&Database>,
    opts: &FleetOptions,
) -> anyhow::Result<String> {
    let api = Api::new(&server.base);
    let admin = api.tenant(ADMIN_KEY, "fleet-bench").await?;
    let operator = api.tokens(&admin, 1, super::api::ROOMY).await?.remove(0);
    let fleets_n = opts.agents.div_ceil(opts.per_fleet.max(1));
    let mut fleets = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..fleets_n {
        let fleet = api.fleet(&operator, &format!("site-{i}")).await?;
        let per = u32::try_from(opts.per_fleet.clamp(1, 1000)).unwrap_or(1000);
        tokens.push((
            fleet.clone(),
            api.enrollment_tokens(std::slice::from_ref(&operator), &fleet, 1, per)
                .await?
                .remove(0),
        ));
        fleets.push(fleet);
    }
    println!("enrolling {} agents in {fleets_n} fleets", opts.agents);
    let enrolling = Instant::now();
    let mut agents = Vec::with_capacity(opts.agents);
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..opts.agents {
        let (api, token) = (api.clone(), tokens[i / opts.per_fleet.max(1)].1.clone());
        pending.spawn(async move { api.enroll(&token).await });
        if pending.len() >= 32 {
            agents.push(pending.join_next().await.context("join")???);
        }
    }
    while let Some(done) = pending.join_next().await {
        agents.push(done??);
    }
    let enroll_secs = enrolling.elapsed().as_secs_f64();
    let rss_idle = server.rss_kib();

    let seen = Arc::new(Seen::default());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let client = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(600))
        .build()?;
    let url = format!("{}/agent/jobs/claim?wait={}", server.base, opts.wait);
    let mut running = tokio::task::JoinSet::new();
    for token in agents {
        running.spawn(agent(
            client.clone(),
            url.clone(),
            token,
            opts.wait,
            seen.clone(),
            stop.clone(),
        ));
    }
    // Until (nearly) every agent holds a check-in.
    let connecting = Instant::now();
    while seen.held.load(Ordering::Relaxed) < opts.agents * 99 / 100
        && connecting.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connect_secs = connecting.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_held = server.rss_kib();
    let cpu_before = cpu_seconds(server.pid());
    let steady = Instant::now();
    // PostgreSQL's idle backends report their transactions up to 10 s late, so the
    // count starts STATS_LAG into the steady state (the setup's are all in by then)
    // and ends at its end: both ends lag alike under the same load.
    let mut tx_before: Option<(f64, Instant)> = None;

    // The operator queues scans at a fixed rate, round-robin over the fleets.
    let mut queued: HashMap<String, Instant> = HashMap::new();
    let mut refused = 0u64;
    let every = Duration::from_secs_f64(1.0 / opts.scans_per_second.max(0.01));
    let mut tick = tokio::time::interval(every);
    let mut n = 0usize;
    let mut held_min = usize::MAX;
    while steady.elapsed() < Duration::from_secs(opts.seconds) {
        tick.tick().await;
        if tx_before.is_none() && steady.elapsed() >= STATS_LAG {
            tx_before = transactions(db).map(|n| (n, Instant::now()));
        }
        held_min = held_min.min(seen.held.load(Ordering::Relaxed));
        let fleet = &fleets[n % fleets.len()];
        n += 1;
        let sent = Instant::now();
        match api
            .call(
                reqwest::Method::POST,
                "/tenant/scans",
                Some(&operator),
                Some(&json!({"fleetId": fleet, "scenario": "inventory"})),
            )
            .await
        {
            Ok((202, scan)) => {
                if let Some(id) = scan["scanId"].as_str() {
                    queued.insert(id.to_owned(), sent);
                }
            }
            _ => refused += 1,
        }
    }
    let steady_secs = steady.elapsed().as_secs_f64();
    let (cpu_after, tx_after) = (cpu_seconds(server.pid()), transactions(db));
    let tx_secs = tx_before.map(|(_, at)| at.elapsed().as_secs_f64());
    let rss_end = server.rss_kib();
    // Let the last scans be claimed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held_end = seen.held.load(Ordering::Relaxed);

    // lastSeenAt of every agent, read back through the API.
    let now = time::OffsetDateTime::now_utc();
    let mut stale = Vec::new();
    let mut never = 0usize;
    for fleet in &fleets {
        let (_, page) = api
            .call(
                reqwest::Method::GET,
                &format!("/tenant/discovery/fleets/{fleet}/agents?limit=200"),
                Some(&operator),
                None,
            )
            .await?;
        for a in page["items"].as_array().into_iter().flatten() {
            match a["lastSeenAt"].as_str().and_then(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            }) {
                Some(at) => stale.push(Duration::try_from(now - at).unwrap_or_default()),
                None => never += 1,
            }
        }
    }
    stale.sort_unstable();
    let _ = stop_tx.send(true);
    running.abort_all();

    let claimed = seen
        .claimed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut latency: Vec<Duration> = queued
        .iter()
        .filter_map(|(id, sent)| {
            claimed
                .get(id)
                .map(|at| at.saturating_duration_since(*sent))
        })
        .collect();
    latency.sort_unstable();
    let statuses = seen
        .statuses
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let kib = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |k| format!("{} MiB", k / 1024));
    let per_agent = match (rss_idle, rss_held) {
        (Some(idle), Some(held)) => format!(
            "{:.1} KiB",
            held.saturating_sub(idle) as f64 / opts.agents.max(1) as f64
        ),
        _ => "?".to_owned(),
    };
    let cpu = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => format!(
            "{:.1} % of one core ({:.2} % per 1 000 agents)",
            (a - b) / steady_secs * 100.0,
            (a - b) / steady_secs * 100.0 / (opts.agents as f64 / 1000.0)
        ),
        _ => "?".to_owned(),
    };
    let tx = match (tx_before, tx_after, tx_secs) {
        (Some((b, _)), Some(a), Some(secs)) if secs > 0.0 => format!(
            "{:.0}/s ({:.3} per agent-minute), over the last {secs:.0} s",
            (a - b) / secs,
            (a - b) / (secs / 60.0) / opts.agents as f64
        ),
        _ if db.is_some() => format!(
            "not counted (a run of more than {} s is)",
            STATS_LAG.as_secs()
        ),
        _ => "n/a (memory mode)".to_owned(),
    };
    let status_line = statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mode = if db.is_some() { "PostgreSQL" } else { "memory" };
    Ok(format!(
        "## fleet: {agents} agents, one replica ({mode}), wait={wait}s, {rate} scans/s\n\n\
         | measure | value |\n|---|---|\n\
         | enrolled | {agents} in {fleets_n} fleets, {enroll_secs:.1} s |\n\
         | agents holding a check-in | {held_end} at the end, at least {held_min} during the run (all held after {connect_secs:.1} s) |\n\
         | check-in answers | {status_line}; {errors} transport errors |\n\
         | scans queued / claimed | {q} / {c} ({refused} refused) |\n\
         | queued → claimed | p50 {p50}, p99 {p99}, max {max} |\n\
         | lastSeenAt staleness | p50 {s50}, p99 {s99}, max {smax}; {never} never seen |\n\
         | server RSS | idle {idle}, all held {held}, end {end}: {per_agent} per held agent |\n\
         | server CPU, steady state | {cpu} |\n\
         | PostgreSQL transactions | {tx} |\n",
        agents = opts.agents,
        wait = opts.wait,
        rate = opts.scans_per_second,
        errors = seen.errors.load(Ordering::Relaxed),
        q = queued.len(),
        c = latency.len(),
        p50 = ms(percentile(&latency, 50.0)),
        p99 = ms(percentile(&latency, 99.0)),
        max = ms(latency.last().copied().unwrap_or_default()),
        s50 = ms(percentile(&stale, 50.0)),
        s99 = ms(percentile(&stale, 99.0)),
        smax = ms(stale.last().copied().unwrap_or_default()),
        idle = kib(rss_idle),
        held = kib(rss_held),
        end = kib(rss_end),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulator end to end at a small scale, against this checkout's debug build
    /// (built first, into the same target directory): every queued scan is claimed by
    /// a held check-in, and every agent was seen.
    #[test]
    fn the_simulator_runs_a_small_fleet_in_memory() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "fleetpass"])
            .current_dir(crate::root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the server builds");
        let target = super::super::servers::target_dir();
        let work = target.join("bench-work-test");
        std::fs::create_dir_all(&work).expect("scratch directory");
        let report = simulate(
            &target.join("debug"),
            &work,
            &FleetOptions {
                agents: 60,
                per_fleet: 20,
                seconds: 3,
                scans_per_second: 4.0,
                wait: 30,
                postgres: false,
            },
        )
        .expect("the simulation runs");
        println!("{report}");
        assert!(
            report.contains("| agents holding a check-in | 60 at the end"),
            "{report}"
        );
        assert!(report.contains("0 transport errors"), "{report}");
        assert!(report.contains("0 never seen"), "{report}");
        let line = report
            .lines()
            .find(|l| l.starts_with("| scans queued / claimed"))
            .expect("the claims line");
        let counts: Vec<&str> = line
            .split('|')
            .nth(2)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            counts.first(),
            counts.get(2),
            "every queued scan was claimed: {line}"
        );
    }
}
