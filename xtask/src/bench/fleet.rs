//! `cargo xtask bench fleet`: a fleet simulator over real sockets. It starts R
//! replicas of the server (on one PostgreSQL database when R > 1), enrolls N agents
//! (in fleets of `--per-fleet`, through enrollment tokens with `maxUses`), spreads them
//! over the replicas round-robin as DNS would, and has each hold one long-poll
//! check-in at a time (`POST /agent/jobs/claim?wait=…`, the next at once, as the
//! reference agent does), renewing its access token before it expires as the
//! reference agent does. The agents live in child processes (this binary again, a
//! hidden subcommand), at most `--per-process` each, so that no process nears the
//! open-files limit; each child binds its sockets to its own loopback source address
//! (127.0.0.2, 127.0.0.3, …) so that no address runs out of ephemeral ports, and
//! reports to the parent in JSON lines on its stdout (a tick a second, then what its
//! agents claimed). An operator client queues scans through replica 0 only, at a
//! fixed rate, so waking agents on the other replicas is what is measured.
//!
//! Reports: agents held, requests by route and status, queued → claimed latency
//! (p50/p99/max), `lastSeenAt` staleness over every agent (read back through the API),
//! each replica's RSS (idle and with its agents held, so per held agent) and CPU, and
//! on PostgreSQL transactions a second; with `--storm`, one replica restarted under
//! full load (SIGTERM, started again on the same port): the time until its agents
//! hold check-ins again, and every answer meanwhile. Everything is reported, nothing
//! asserted.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// Run on a fresh PostgreSQL database instead of in memory (always with R > 1).
    pub postgres: bool,
    /// Replicas of the server.
    pub replicas: usize,
    /// Agents per simulator process at most.
    pub per_process: usize,
    /// Renew an agent's access token this many seconds before it expires (the
    /// reference agent: 120).
    pub renew_before: u64,
    /// After the steady state, restart one replica under the full load.
    pub storm: bool,
    /// Instead of scans at a rate: one fleet of every agent, and one `target: all` scan
    /// of it queued at the start of the steady state, which every agent claims and
    /// answers with results (request → all claimed, the merge, memory).
    pub fan_out: bool,
}

/// How late PostgreSQL's idle backends may report their transactions
/// (`PGSTAT_IDLE_INTERVAL`, 10 s), and a margin.
const STATS_LAG: Duration = Duration::from_secs(11);

/// A check-in in flight this long without an answer counts as held by the server (a
/// refused connection fails in milliseconds); one sent after an HTTP answer counts at
/// once (the agent is connected), one sent after a transport error only then.
const HELD_AFTER: Duration = Duration::from_secs(1);

/// Connections PostgreSQL's 100 may give this run's replicas (pools and listeners);
/// the rest is left to the other users of the machine.
const PG_BUDGET: usize = 48;

/// Each replica's pool: its share of [`PG_BUDGET`] less its listener, 2 to 10.
pub fn pool_size(replicas: usize) -> usize {
    (PG_BUDGET / replicas.max(1)).saturating_sub(1).clamp(2, 10)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Answers counted by (replica, route, status); status 0 is a transport error.
type Counts = BTreeMap<(usize, String, u16), u64>;

fn counts_to_json(counts: &Counts) -> Value {
    Value::Array(
        counts
            .iter()
            .map(|((r, route, status), n)| json!([r, route, status, n]))
            .collect(),
    )
}

fn counts_from_json(v: &Value) -> Counts {
    let mut out = Counts::new();
    for row in v.as_array().into_iter().flatten() {
        let (Some(r), Some(route), Some(status), Some(n)) = (
            row[0].as_u64(),
            row[1].as_str(),
            row[2].as_u64(),
            row[3].as_u64(),
        ) else {
            continue;
        };
        *out.entry((
            usize::try_from(r).unwrap_or(0),
            route.to_owned(),
            u16::try_from(status).unwrap_or(0),
        ))
        .or_default() += n;
    }
    out
}

fn add_counts(into: &mut Counts, from: &Counts) {
    for (k, n) in from {
        *into.entry(k.clone()).or_default() += n;
    }
}

fn diff_counts(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .filter_map(|(k, n)| {
            let d = n.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// The child: a simulator process holding a share of the agents.
// ---------------------------------------------------------------------------------

/// What a child is told (the first line of its stdin, JSON).
#[derive(Debug, Clone)]
struct ChildPlan {
    bases: Vec<String>,
    /// One enrollment token per fleet, every fleet.
    tokens: Vec<String>,
    first: usize,
    count: usize,
    per_fleet: usize,
    wait: u32,
    renew_before: u64,
    source: Option<String>,
    /// The child exits on its own after this long, whatever happens.
    max_secs: u64,
}

impl ChildPlan {
    fn to_json(&self) -> Value {
        json!({"bases": self.bases, "tokens": self.tokens, "first": self.first,
               "count": self.count, "perFleet": self.per_fleet, "wait": self.wait,
               "renewBefore": self.renew_before, "source": self.source,
               "maxSecs": self.max_secs})
    }

    fn from_json(v: &Value) -> anyhow::Result<Self> {
        let strings = |name: &str| -> Vec<String> {
            v[name]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        let num = |name: &str| -> anyhow::Result<u64> {
            v[name].as_u64().with_context(|| format!("plan: no {name}"))
        };
        Ok(Self {
            bases: strings("bases"),
            tokens: strings("tokens"),
            first: usize::try_from(num("first")?)?,
            count: usize::try_from(num("count")?)?,
            per_fleet: usize::try_from(num("perFleet")?)?.max(1),
            wait: u32::try_from(num("wait")?)?,
            renew_before: num("renewBefore")?,
            source: v["source"].as_str().map(str::to_owned),
            max_secs: num("maxSecs")?,
        })
    }
}

/// One enrolled agent, as the child knows it.
struct Agent {
    replica: usize,
    id: String,
    secret: String,
    token: String,
    expires: time::OffsetDateTime,
}

/// What a child's agents saw.
struct ChildSeen {
    counts: Mutex<Counts>,
    /// Per agent: when its check-in in flight was sent (unix ms), 0 when none is.
    inflight: Vec<AtomicU64>,
    /// Per agent: whether its last attempt got an HTTP answer (not a transport error).
    answered: Vec<AtomicBool>,
    replica_of: Vec<usize>,
    replicas: usize,
    claimed: Mutex<Vec<(String, u64)>>,
    /// The slowest results answer, in ms (the last part's answer carries the merge).
    results_max_ms: AtomicU64,
}

impl ChildSeen {
    fn count(&self, replica: usize, route: &str, status: u16) {
        *self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((replica, route.to_owned(), status))
            .or_default() += 1;
    }

    /// Per replica: check-ins in flight, and those of connected agents (see
    /// [`HELD_AFTER`]).
    fn held(&self) -> (Vec<u64>, Vec<u64>) {
        let now = unix_ms();
        let held_ms = u64::try_from(HELD_AFTER.as_millis()).unwrap_or(1000);
        let mut inflight = vec![0u64; self.replicas];
        let mut held = vec![0u64; self.replicas];
        for (i, at) in self.inflight.iter().enumerate() {
            let at = at.load(Ordering::Relaxed);
            if at != 0 {
                inflight[self.replica_of[i]] += 1;
                if self.answered[i].load(Ordering::Relaxed) || now.saturating_sub(at) >= held_ms {
                    held[self.replica_of[i]] += 1;
                }
            }
        }
        (inflight, held)
    }
}

fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// The reference agent's backoff: "equal jitter" between half and all of a ceiling
/// doubling from 1 s to 60 s; never below `Retry-After`.
struct Backoff(u32);

impl Backoff {
    fn next(&mut self, at_least: Option<Duration>) -> Duration {
        let ceiling = 1000u64.saturating_mul(1 << self.0.min(6)).min(60_000);
        self.0 = self.0.saturating_add(1);
        let wait = Duration::from_millis(rand::random_range(ceiling / 2..=ceiling));
        wait.max(at_least.unwrap_or_default())
    }
}

/// The hidden subcommand: reads its plan from stdin, enrolls its agents, reports
/// `enrolled`, holds their check-ins from a `go` line on, a tick a second, and on
/// `stop` (or stdin closed, or its time up) reports what its agents claimed and exits.
///
/// # Errors
/// When the plan cannot be read.
pub fn child() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let plan = ChildPlan::from_json(&serde_json::from_str(&line)?)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let go = Arc::new(tokio::sync::Notify::new());
    {
        // Control lines from the parent, on a thread of their own.
        let (stop, go) = (stop.clone(), go.clone());
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut line = String::new();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.trim() == "go" => go.notify_one(),
                    Ok(_) if line.trim() == "stop" => break,
                    Ok(_) => {}
                }
            }
            stop.store(true, Ordering::Relaxed);
            go.notify_one();
        });
    }
    rt.block_on(child_run(plan, stop, go))
}

async fn child_run(
    plan: ChildPlan,
    stop: Arc<AtomicBool>,
    go: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut builder = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(900))
        .connect_timeout(Duration::from_secs(10));
    if let Some(source) = &plan.source {
        builder = builder.local_address(source.parse::<std::net::IpAddr>()?);
    }
    let client = builder.build()?;
    let replicas = plan.bases.len().max(1);
    let replica_of: Vec<usize> = (plan.first..plan.first + plan.count)
        .map(|i| i % replicas)
        .collect();
    let seen = Arc::new(ChildSeen {
        counts: Mutex::new(Counts::new()),
        inflight: (0..plan.count).map(|_| AtomicU64::new(0)).collect(),
        answered: (0..plan.count).map(|_| AtomicBool::new(false)).collect(),
        replica_of: replica_of.clone(),
        replicas,
        claimed: Mutex::new(Vec::new()),
        results_max_ms: AtomicU64::new(0),
    });

    // Enrollment, 32 at a time.
    let mut agents: Vec<Option<Agent>> = (0..plan.count).map(|_| None).collect();
    let mut pending = tokio::task::JoinSet::new();
    let mut failed = 0usize;
    let mut next = 0usize;
    while next < plan.count || !pending.is_empty() {
        while next < plan.count && pending.len() < 32 {
            let i = next;
            next += 1;
            let global = plan.first + i;
            let replica = replica_of[i];
            let url = format!("{}/agent/enroll", plan.bases[replica]);
            let token = plan.tokens[global / plan.per_fleet].clone();
            let (client, seen) = (client.clone(), seen.clone());
            pending.spawn(async move {
                // Overload (503 with Retry-After while the pools are busy) is retried
                // as the reference agent retries it: jittered backoff, up to 8 times.
                let mut backoff = Backoff(0);
                for _ in 0..8 {
                    let answer = client
                        .post(&url)
                        .json(&json!({"enrollmentToken": token,
                                      "hostname": format!("sim-{global}"),
                                      "platform": "linux-x86_64"}))
                        .send()
                        .await;
                    let mut retry_after = None;
                    match answer {
                        Ok(res) => {
                            let status = res.status().as_u16();
                            seen.count(replica, "/agent/enroll", status);
                            retry_after = res
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<u64>().ok())
                                .map(Duration::from_secs);
                            if status == 201
                                && let Ok(v) = res.json::<Value>().await
                                && let Some(agent) = agent_of(replica, &v)
                            {
                                return (i, Some(agent));
                            }
                        }
                        Err(_) => seen.count(replica, "/agent/enroll", 0),
                    }
                    tokio::time::sleep(backoff.next(retry_after)).await;
                }
                (i, None)
            });
        }
        if let Some(done) = pending.join_next().await {
            let (i, agent) = done?;
            if agent.is_none() {
                failed += 1;
            }
            agents[i] = agent;
        }
    }
    let mut per_replica = vec![0u64; replicas];
    for agent in agents.iter().flatten() {
        per_replica[agent.replica] += 1;
    }
    emit(
        &json!({"t": "enrolled", "n": plan.count - failed, "failed": failed,
                 "secs": started.elapsed().as_secs_f64(), "perReplica": per_replica}),
    );
    go.notified().await;

    let mut running = tokio::task::JoinSet::new();
    for (i, agent) in agents.into_iter().enumerate() {
        let Some(agent) = agent else { continue };
        running.spawn(run_agent(
            client.clone(),
            plan.bases[agent.replica].clone(),
            agent,
            i,
            plan.wait,
            plan.renew_before,
            seen.clone(),
            stop.clone(),
        ));
    }
    let deadline = Duration::from_secs(plan.max_secs);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) && started.elapsed() < deadline {
        tick.tick().await;
        let (inflight, held) = seen.held();
        let counts = seen
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        emit(&json!({"t": "tick", "inflight": inflight, "held": held,
                     "counts": counts_to_json(&counts)}));
    }
    running.abort_all();
    let claimed = seen
        .claimed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let counts = seen
        .counts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    emit(
        &json!({"t": "done", "claimed": claimed, "counts": counts_to_json(&counts),
                 "resultsMaxMs": seen.results_max_ms.load(Ordering::Relaxed)}),
    );
    Ok(())
}

/// A transport error as a pseudo-status: 1 connecting, 2 timed out, 0 any other
/// (the connection closed or reset mid-request).
fn error_kind(e: &reqwest::Error) -> u16 {
    if e.is_connect() {
        1
    } else if e.is_timeout() {
        2
    } else {
        0
    }
}

fn status_name(status: u16) -> String {
    match status {
        0 => "transport error".to_owned(),
        1 => "connect error".to_owned(),
        2 => "timeout".to_owned(),
        s => s.to_string(),
    }
}

fn agent_of(replica: usize, v: &Value) -> Option<Agent> {
    Some(Agent {
        replica,
        id: v["agentId"].as_str()?.to_owned(),
        secret: v["agentSecret"].as_str()?.to_owned(),
        token: v["accessToken"].as_str()?.to_owned(),
        expires: time::OffsetDateTime::parse(
            v["accessTokenExpiresAt"].as_str()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?,
    })
}

/// One simulated agent: a check-in outstanding at all times until `stop`, its access
/// token renewed `renew_before` seconds before it expires (or after a 401), jittered
/// backoff after a failure or a check-in that came back at once.
#[allow(clippy::too_many_arguments)]
async fn run_agent(
    client: reqwest::Client,
    base: String,
    mut agent: Agent,
    slot: usize,
    wait: u32,
    renew_before: u64,
    seen: Arc<ChildSeen>,
    stop: Arc<AtomicBool>,
) {
    let timeout = Duration::from_secs(u64::from(wait) + 30);
    let claim_url = format!("{base}/agent/jobs/claim?wait={wait}");
    let token_url = format!("{base}/agent/token");
    let renew = time::Duration::seconds(i64::try_from(renew_before).unwrap_or(120));
    let r = agent.replica;
    let mut backoff = Backoff(0);
    while !stop.load(Ordering::Relaxed) {
        if agent.expires - renew <= time::OffsetDateTime::now_utc() {
            let answer = client
                .post(&token_url)
                .json(&json!({"agentId": agent.id, "agentSecret": agent.secret}))
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let fresh = match answer {
                Ok(res) => {
                    seen.count(r, "/agent/token", res.status().as_u16());
                    if res.status().as_u16() == 200 {
                        res.json::<Value>().await.ok()
                    } else {
                        None
                    }
                }
                Err(_) => {
                    seen.count(r, "/agent/token", 0);
                    None
                }
            };
            let renewed = fresh.as_ref().and_then(|v| {
                Some((
                    v["accessToken"].as_str()?.to_owned(),
                    time::OffsetDateTime::parse(
                        v["accessTokenExpiresAt"].as_str()?,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .ok()?,
                ))
            });
            if let Some((token, expires)) = renewed {
                agent.token = token;
                agent.expires = expires;
            } else {
                tokio::time::sleep(backoff.next(None)).await;
                continue;
            }
        }
        let sent = Instant::now();
        seen.inflight[slot].store(unix_ms().max(1), Ordering::Relaxed);
        let answer = client
            .post(&claim_url)
            .bearer_auth(&agent.token)
            .timeout(timeout)
            .send()
            .await;
        seen.inflight[slot].store(0, Ordering::Relaxed);
        let pause = match answer {
            Ok(res) => {
                let status = res.status().as_u16();
                seen.answered[slot].store(status < 500, Ordering::Relaxed);
                seen.count(r, "/agent/jobs/claim", status);
                let retry_after = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs);
                match status {
                    200 => {
                        let body: Value = res.json().await.unwrap_or(Value::Null);
                        if let Some(id) = body["scanId"].as_str() {
                            seen.claimed
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push((id.to_owned(), unix_ms()));
                            // A part of a fan-out scan is answered, as an agent would.
                            if body["target"] != "any" {
                                submit(&client, &base, &agent, id, &seen).await;
                            }
                        }
                        None
                    }
                    // A held check-in that ended: the next at once.
                    204 if sent.elapsed() >= HELD_AFTER => None,
                    401 => {
                        // Renew first, as the reference agent does.
                        agent.expires = time::OffsetDateTime::UNIX_EPOCH;
                        Some(backoff.next(retry_after))
                    }
                    _ => Some(backoff.next(retry_after)),
                }
            }
            Err(e) => {
                seen.answered[slot].store(false, Ordering::Relaxed);
                seen.count(r, "/agent/jobs/claim", error_kind(&e));
                Some(backoff.next(None))
            }
        };
        match pause {
            Some(wait) => tokio::time::sleep(wait).await,
            None => backoff = Backoff(0),
        }
    }
}

/// Sends a small result set for `scan`, counting the answer and its time.
async fn submit(client: &reqwest::Client, base: &str, agent: &Agent, scan: &str, seen: &ChildSeen) {
    let body = json!({"assets": [{"hostname": format!("sim-{}", agent.id), "ip": "10.0.0.5",
                                  "os": "Debian 12", "openPorts": [22, 443],
                                  "software": [{"name": "openssl", "version": "3.0.11"}]}],
                      "findings": [{"severity": "medium", "title": "TLS 1.0 enabled"}]});
    let sent = Instant::now();
    // Overload (503 with Retry-After) is retried as the reference agent retries it.
    let mut backoff = Backoff(0);
    for _ in 0..8 {
        let answer = client
            .post(format!("{base}/agent/scans/{scan}/results"))
            .bearer_auth(&agent.token)
            .json(&body)
            .timeout(Duration::from_secs(120))
            .send()
            .await;
        let status = answer.as_ref().map_or(0, |r| r.status().as_u16());
        seen.count(agent.replica, "/agent/scans/{scan_id}/results", status);
        if status != 0 && status != 429 && status < 500 {
            break;
        }
        let retry_after = answer
            .ok()
            .and_then(|r| {
                r.headers()
                    .get("retry-after")?
                    .to_str()
                    .ok()?
                    .parse::<u64>()
                    .ok()
            })
            .map(Duration::from_secs);
        tokio::time::sleep(backoff.next(retry_after)).await;
    }
    let ms = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
    seen.results_max_ms.fetch_max(ms, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------
// The parent: servers, setup, children, the operator, the report.
// ---------------------------------------------------------------------------------

/// What the parent knows of one child.
#[derive(Default)]
struct ChildState {
    enrolled: Option<(usize, usize, f64)>,
    /// Agents enrolled, per replica.
    enrolled_on: Vec<u64>,
    inflight: Vec<u64>,
    held: Vec<u64>,
    counts: Counts,
    claimed: Option<Vec<(String, u64)>>,
    results_max_ms: u64,
}

/// The simulator processes.
struct Children {
    procs: Vec<(Child, ChildStdin)>,
    states: Vec<Arc<Mutex<ChildState>>>,
    replicas: usize,
}

impl Children {
    fn spawn(plans: &[ChildPlan], replicas: usize) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut procs = Vec::new();
        let mut states = Vec::new();
        for plan in plans {
            let mut cmd = Command::new(&exe);
            if cfg!(test) {
                // The test binary: its `child_process` test is the child.
                cmd.args([
                    "bench::fleet::tests::child_process",
                    "--exact",
                    "--nocapture",
                    "--quiet",
                ])
                .env("FLEETPASS_SIM_CHILD", "1");
            } else {
                cmd.arg("bench-fleet-agents");
            }
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("Failed to start a simulator process")?;
            let mut stdin = child.stdin.take().context("stdin")?;
            writeln!(stdin, "{}", plan.to_json())?;
            stdin.flush()?;
            let stdout = child.stdout.take().context("stdout")?;
            let state = Arc::new(Mutex::new(ChildState {
                inflight: vec![0; replicas],
                held: vec![0; replicas],
                ..ChildState::default()
            }));
            let shared = state.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    let nums = |name: &str| -> Vec<u64> {
                        v[name]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_u64)
                            .collect()
                    };
                    let mut s = shared
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    match v["t"].as_str() {
                        Some("enrolled") => {
                            s.enrolled = Some((
                                usize::try_from(v["n"].as_u64().unwrap_or(0)).unwrap_or(0),
                                usize::try_from(v["failed"].as_u64().unwrap_or(0)).unwrap_or(0),
                                v["secs"].as_f64().unwrap_or(0.0),
                            ));
                            s.enrolled_on = nums("perReplica");
                        }
                        Some("tick") => {
                            s.inflight = nums("inflight");
                            s.held = nums("held");
                            s.counts = counts_from_json(&v["counts"]);
                        }
                        Some("done") => {
                            s.counts = counts_from_json(&v["counts"]);
                            s.results_max_ms = v["resultsMaxMs"].as_u64().unwrap_or(0);
                            s.claimed = Some(
                                v["claimed"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .filter_map(|c| {
                                        Some((c[0].as_str()?.to_owned(), c[1].as_u64()?))
                                    })
                                    .collect(),
                            );
                        }
                        _ => {}
                    }
                }
            });
            procs.push((child, stdin));
            states.push(state);
        }
        Ok(Self {
            procs,
            states,
            replicas,
        })
    }

    fn each<T>(&self, f: impl Fn(&ChildState) -> T) -> Vec<T> {
        self.states
            .iter()
            .map(|s| f(&s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)))
            .collect()
    }

    fn send(&mut self, line: &str) {
        for (_, stdin) in &mut self.procs {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }

    /// Per replica: check-ins in flight, and held at least [`HELD_AFTER`].
    fn held(&self) -> (Vec<u64>, Vec<u64>) {
        let mut inflight = vec![0u64; self.replicas];
        let mut held = vec![0u64; self.replicas];
        for (i, h) in self.each(|s| (s.inflight.clone(), s.held.clone())) {
            for (r, n) in i.iter().enumerate().take(self.replicas) {
                inflight[r] += n;
            }
            for (r, n) in h.iter().enumerate().take(self.replicas) {
                held[r] += n;
            }
        }
        (inflight, held)
    }

    fn counts(&self) -> Counts {
        let mut all = Counts::new();
        for c in self.each(|s| s.counts.clone()) {
            add_counts(&mut all, &c);
        }
        all
    }

    /// Stops every child and collects what their agents claimed (scan id → unix ms of
    /// each claim, in no order).
    fn finish(&mut self) -> HashMap<String, Vec<u64>> {
        self.send("stop");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30)
            && self.each(|s| s.claimed.is_some()).contains(&false)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut claimed: HashMap<String, Vec<u64>> = HashMap::new();
        for list in self.each(|s| s.claimed.clone()).into_iter().flatten() {
            for (id, at) in list {
                claimed.entry(id).or_default().push(at);
            }
        }
        claimed
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (child, _) in &mut self.procs {
            // Our own children, by pid; they have stopped on their own by now unless
            // something went wrong.
            if child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(200));
            }
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
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

/// The simulation against the `fleetpass` binary in `bin`; its report (markdown).
///
/// # Errors
/// When a server or the setup fails.
pub fn simulate(bin: &Path, work: &Path, opts: &FleetOptions) -> anyhow::Result<String> {
    let replicas = opts.replicas.max(1);
    anyhow::ensure!(
        opts.postgres || replicas == 1,
        "replicas share state through PostgreSQL: --replicas > 1 needs --postgres"
    );
    let db = if opts.postgres {
        crate::ensure_postgres()?;
        Some(Database::create("psql".into(), "fleet")?)
    } else {
        None
    };
    let per_replica = opts.agents.div_ceil(replicas);
    let mut env = super::common_env();
    // Room for every agent of a replica, and more.
    env.push(("FLEETPASS_MAX_HELD_POLLS", (per_replica + 1000).to_string()));
    // Warnings, and the merge of a fan-out scan (its time is in the report).
    env.retain(|(k, _)| *k != "FLEETPASS_LOG");
    env.push((
        "FLEETPASS_LOG",
        "warn,fleetpass_ports::service::scans=info".to_owned(),
    ));
    if let Some(db) = &db {
        let master = Command::new(bin.join("fleetpass"))
            .args(["keys", "new-master-key"])
            .env_clear()
            .output()
            .context("Failed to run fleetpass keys new-master-key")?;
        env.push(("DATABASE_URL", db.url()));
        env.push((
            "FLEETPASS_MASTER_KEY",
            String::from_utf8_lossy(&master.stdout).trim().to_owned(),
        ));
        env.push(("FLEETPASS_DB_POOL_SIZE", pool_size(replicas).to_string()));
    }
    let mut servers = Vec::new();
    for r in 0..replicas {
        servers.push(Server::start(
            &format!("fleetpass (replica {r})"),
            &bin.join("fleetpass"),
            &["serve"],
            &env,
            Some("FLEETPASS_BIND"),
            "/readyz",
            work,
        )?);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    drive(&rt, &mut servers, db.as_ref(), opts)
}

/// The operator: queues a scan every `every` through `api`, round-robin over
/// `fleets`, until `stop`; what it queued (scan id → unix ms sent) and how many were
/// refused, with when each was sent.
async fn operator(
    api: Api,
    token: String,
    fleets: Vec<String>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> (Vec<(String, u64)>, Vec<u64>) {
    let mut queued = Vec::new();
    let mut refused = Vec::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let fleet = &fleets[n % fleets.len()];
        n += 1;
        let sent = unix_ms();
        match api
            .call(
                reqwest::Method::POST,
                "/tenant/scans",
                Some(&token),
                Some(&json!({"fleetId": fleet, "scenario": "inventory"})),
            )
            .await
        {
            Ok((202, scan)) => {
                if let Some(id) = scan["scanId"].as_str() {
                    queued.push((id.to_owned(), sent));
                }
            }
            _ => refused.push(sent),
        }
    }
    (queued, refused)
}

/// What the fan-out operator saw of its one scan.
struct FanOutSeen {
    id: Option<String>,
    sent_ms: u64,
    ended_ms: Option<u64>,
    status: String,
    progress: Value,
}

/// The operator of a fan-out run: queues one `target: all` scan of `fleet`, then reads
/// it every 250 ms until it ends (or `stop`).
async fn fan_out_operator(
    api: Api,
    token: String,
    fleet: String,
    stop: Arc<AtomicBool>,
) -> FanOutSeen {
    let sent_ms = unix_ms();
    let body = json!({"fleetId": fleet, "scenario": "inventory", "target": "all"});
    let id = match api
        .call(
            reqwest::Method::POST,
            "/tenant/scans",
            Some(&token),
            Some(&body),
        )
        .await
    {
        Ok((202, scan)) => scan["scanId"].as_str().map(str::to_owned),
        _ => None,
    };
    let mut seen = FanOutSeen {
        id: id.clone(),
        sent_ms,
        ended_ms: None,
        status: "was refused".to_owned(),
        progress: Value::Null,
    };
    let Some(id) = id else { return seen };
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok((200, scan)) = api
            .call(
                reqwest::Method::GET,
                &format!("/tenant/scans/{id}"),
                Some(&token),
                None,
            )
            .await
        {
            seen.status = format!("was {}", scan["status"].as_str().unwrap_or("?"));
            seen.progress = scan["progress"].clone();
            if !matches!(scan["status"].as_str(), Some("queued" | "running")) {
                seen.ended_ms = Some(unix_ms());
                seen.status = format!("ended {}", scan["status"].as_str().unwrap_or("?"));
                break;
            }
        }
    }
    seen
}

fn status_text(counts: &Counts, secs: f64) -> Vec<String> {
    let mut by_route: BTreeMap<(String, u16), u64> = BTreeMap::new();
    for ((_, route, status), n) in counts {
        *by_route.entry((route.clone(), *status)).or_default() += n;
    }
    by_route
        .iter()
        .map(|((route, status), n)| {
            let s = status_name(*status);
            if secs > 0.0 {
                format!("| `{route}` | {s} | {n} | {:.1} |", *n as f64 / secs)
            } else {
                format!("| `{route}` | {s} | {n} | |")
            }
        })
        .collect()
}

fn short_counts(counts: &Counts, replica: Option<usize>) -> String {
    let mut by: BTreeMap<(String, u16), u64> = BTreeMap::new();
    for ((r, route, status), n) in counts {
        if replica.is_none_or(|want| want == *r) {
            let route = route.trim_start_matches("/agent/").to_owned();
            *by.entry((route, *status)).or_default() += n;
        }
    }
    if by.is_empty() {
        return "none".to_owned();
    }
    by.iter()
        .map(|((route, status), n)| format!("{route} {}: {n}", status_name(*status)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[allow(clippy::too_many_lines)]
fn drive(
    rt: &tokio::runtime::Runtime,
    servers: &mut [Server],
    db: Option<&Database>,
    opts: &FleetOptions,
) -> anyhow::Result<String> {
    let replicas = servers.len();
    let api = Api::new(&servers[0].base);
    // A fan-out run enrolls every agent into one fleet, with a token per 1 000 (the
    // most uses a token has).
    let per_fleet = if opts.fan_out {
        1000
    } else {
        opts.per_fleet.clamp(1, 1000)
    };
    let fleets_n = opts.agents.div_ceil(per_fleet);
    let (operator_token, fleets, tokens) = rt.block_on(async {
        let admin = api.tenant(ADMIN_KEY, "fleet-bench").await?;
        let operator = api.tokens(&admin, 1, super::api::ROOMY).await?.remove(0);
        let mut fleets = Vec::new();
        let mut tokens = Vec::new();
        for i in 0..fleets_n {
            let fleet = match fleets.first() {
                Some(only) if opts.fan_out => String::clone(only),
                _ => api.fleet(&operator, &format!("site-{i}")).await?,
            };
            let per = u32::try_from(per_fleet).unwrap_or(1000);
            tokens.push(
                api.enrollment_tokens(std::slice::from_ref(&operator), &fleet, 1, per)
                    .await?
                    .remove(0),
            );
            if !fleets.contains(&fleet) {
                fleets.push(fleet);
            }
        }
        anyhow::Ok((operator, fleets, tokens))
    })?;
    let per_process = opts.per_process.clamp(1, 18_000);
    let processes = opts.agents.div_ceil(per_process).max(1);
    let chunk = opts.agents.div_ceil(processes);
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let plans: Vec<ChildPlan> = (0..processes)
        .map(|c| ChildPlan {
            bases: bases.clone(),
            tokens: tokens.clone(),
            first: c * chunk,
            count: chunk.min(opts.agents.saturating_sub(c * chunk)),
            per_fleet,
            wait: opts.wait,
            renew_before: opts.renew_before,
            // 127.0.0.2, 127.0.0.3, …: a source address each.
            source: Some(format!("127.0.{}.{}", (c + 2) / 250, (c + 2) % 250)),
            max_secs: opts.seconds + 900,
        })
        .collect();
    println!(
        "enrolling {} agents in {fleets_n} fleets over {replicas} replicas, {processes} simulator processes",
        opts.agents
    );
    let mut children = Children::spawn(&plans, replicas)?;
    let enrolling = Instant::now();
    while children.each(|s| s.enrolled.is_some()).contains(&false) {
        anyhow::ensure!(
            enrolling.elapsed() < Duration::from_secs(600),
            "enrollment took over 600 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let enroll_secs = enrolling.elapsed().as_secs_f64();
    let enrolled = children.each(|s| s.enrolled.unwrap_or_default());
    let enroll_ok: usize = enrolled.iter().map(|e| e.0).sum();
    let enroll_failed: usize = enrolled.iter().map(|e| e.1).sum();
    println!("enrolled {enroll_ok} ({enroll_failed} failed) in {enroll_secs:.1} s");
    // Agents per replica: those enrolled (an agent whose enrollment failed is not held).
    let mut assigned = vec![0usize; replicas];
    for on in children.each(|s| s.enrolled_on.clone()) {
        for (r, n) in on.iter().enumerate().take(replicas) {
            assigned[r] += usize::try_from(*n).unwrap_or(0);
        }
    }
    let rss_idle: Vec<Option<u64>> = servers.iter().map(Server::rss_kib).collect();
    children.send("go");

    // Until (nearly) every agent holds a check-in.
    let connecting = Instant::now();
    let target = enroll_ok * 99 / 100;
    while children.held().0.iter().sum::<u64>() < target as u64
        && connecting.elapsed() < Duration::from_secs(180)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let connect_secs = connecting.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let rss_held: Vec<Option<u64>> = servers.iter().map(Server::rss_kib).collect();
    let cpu_before: Vec<Option<f64>> = servers.iter().map(|s| cpu_seconds(s.pid())).collect();
    let counts_before = children.counts();
    let steady = Instant::now();
    let steady_start_ms = unix_ms();

    let stop_operator = Arc::new(AtomicBool::new(false));
    let every = Duration::from_secs_f64(1.0 / opts.scans_per_second.max(0.01));
    let (op, fan) = if opts.fan_out {
        let fan = rt.spawn(fan_out_operator(
            api.clone(),
            operator_token.clone(),
            fleets[0].clone(),
            stop_operator.clone(),
        ));
        (None, Some(fan))
    } else {
        let op = rt.spawn(operator(
            api.clone(),
            operator_token.clone(),
            fleets.clone(),
            every,
            stop_operator.clone(),
        ));
        (Some(op), None)
    };
    let mut rss_peak: Vec<Option<u64>> = rss_held.clone();
    // PostgreSQL's idle backends report their transactions up to 10 s late, so the
    // count starts STATS_LAG into the steady state (the setup's are all in by then)
    // and ends at its end: both ends lag alike under the same load.
    let mut tx_before: Option<(f64, Instant)> = None;
    let mut held_min = vec![u64::MAX; replicas];
    while steady.elapsed() < Duration::from_secs(opts.seconds) {
        std::thread::sleep(Duration::from_millis(500));
        if tx_before.is_none() && steady.elapsed() >= STATS_LAG {
            tx_before = transactions(db).map(|n| (n, Instant::now()));
        }
        for (r, n) in children.held().0.iter().enumerate() {
            held_min[r] = held_min[r].min(*n);
        }
        for (peak, server) in rss_peak.iter_mut().zip(servers.iter()) {
            *peak = (*peak).max(server.rss_kib());
        }
    }
    let steady_secs = steady.elapsed().as_secs_f64();
    let steady_end_ms = unix_ms();
    let cpu_after: Vec<Option<f64>> = servers.iter().map(|s| cpu_seconds(s.pid())).collect();
    let tx_after = transactions(db);
    let tx_secs = tx_before.map(|(_, at)| at.elapsed().as_secs_f64());
    let rss_end: Vec<Option<u64>> = servers.iter().map(Server::rss_kib).collect();
    let counts_steady = diff_counts(&children.counts(), &counts_before);
    // Let the last scans be claimed.
    std::thread::sleep(Duration::from_secs(2));
    let (held_end, _) = children.held();

    // lastSeenAt of every agent, read back through replica 0.
    let (stale, never) = rt.block_on(async {
        let now = time::OffsetDateTime::now_utc();
        let mut stale = Vec::new();
        let mut never = 0usize;
        let mut pages = Vec::new();
        for fleet in &fleets {
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => {
                        format!("/tenant/discovery/fleets/{fleet}/agents?limit=200&cursor={c}")
                    }
                    None => format!("/tenant/discovery/fleets/{fleet}/agents?limit=200"),
                };
                let (_, page) = api
                    .call(reqwest::Method::GET, &path, Some(&operator_token), None)
                    .await?;
                cursor = page["nextCursor"].as_str().map(str::to_owned);
                pages.push(page);
                if cursor.is_none() {
                    break;
                }
            }
        }
        for page in &pages {
            for a in page["items"].as_array().into_iter().flatten() {
                match a["lastSeenAt"].as_str().and_then(|s| {
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .ok()
                }) {
                    Some(at) => stale.push(Duration::try_from(now - at).unwrap_or_default()),
                    None => never += 1,
                }
            }
        }
        stale.sort_unstable();
        anyhow::Ok((stale, never))
    })?;

    // The reconnect storm: the last replica restarted under the full load.
    let storm = if opts.storm {
        let victim = replicas - 1;
        let before = children.counts();
        let started = Instant::now();
        println!("storm: SIGTERM to replica {victim}");
        let exited = servers[victim].terminate(Duration::from_secs(40))?;
        let exit_secs = started.elapsed().as_secs_f64();
        servers[victim].restart()?;
        let up_secs = started.elapsed().as_secs_f64();
        let want = u64::try_from(assigned[victim]).unwrap_or(0);
        let mut back = None;
        let mut low = u64::MAX;
        while started.elapsed() < Duration::from_secs(180) {
            let held = children.held().1[victim];
            low = low.min(held);
            if held >= want {
                back = Some(started.elapsed().as_secs_f64());
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let last = children.held().1[victim];
        std::thread::sleep(Duration::from_secs(2));
        let during = diff_counts(&children.counts(), &before);
        Some(format!(
            "| storm: replica {victim} (SIGTERM, started again on its port) | exited after {exit}; answering again after {up_secs:.1} s; all {want} of its agents holding a check-in again after {back} (at least {low} held meanwhile, {last} at the end) |\n\
             | storm: answers from SIGTERM until 2 s after they were back | {all} |\n",
            exit = exited.map_or_else(
                || format!("not within 40 s (killed at {exit_secs:.1} s)"),
                |d| format!("{:.1} s", d.as_secs_f64())
            ),
            back = back.map_or_else(|| "not within 180 s".to_owned(), |s| format!("{s:.1} s")),
            all = (0..replicas)
                .map(|r| format!("replica {r}: {}", short_counts(&during, Some(r))))
                .collect::<Vec<_>>()
                .join("; "),
        ))
    } else {
        None
    };
    stop_operator.store(true, Ordering::Relaxed);
    let (queued, refused) = match op {
        Some(op) => rt.block_on(op)?,
        None => (Vec::new(), Vec::new()),
    };
    let fan = fan.map(|f| rt.block_on(f)).transpose()?;
    let claimed = children.finish();
    let results_max_ms = children
        .each(|s| s.results_max_ms)
        .into_iter()
        .max()
        .unwrap_or(0);
    let fan_row = fan.map(|f| {
        let claims = f.id.as_ref().and_then(|id| claimed.get(id)).cloned().unwrap_or_default();
        let last = claims.iter().max().copied();
        let since = |at: Option<u64>| {
            at.map_or_else(
                || "never".to_owned(),
                |at| ms(Duration::from_millis(at.saturating_sub(f.sent_ms))),
            )
        };
        // The server logs each merge: `merged a fan-out scan … merge_ms=…`.
        let merges: Vec<String> = servers
            .iter()
            .flat_map(|s| {
                s.log_text()
                    .lines()
                    .filter(|l| l.contains("merged a fan-out scan"))
                    .filter_map(|l| {
                        let at = l.find("merge_ms")? + "merge_ms".len();
                        let digits: String = l[at..]
                            .chars()
                            .skip_while(|c| !c.is_ascii_digit())
                            .take_while(char::is_ascii_digit)
                            .collect();
                        (!digits.is_empty()).then(|| format!("{digits} ms"))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        format!(
            "| fan-out: one `target: all` scan of the fleet's {agents} agents | {n} parts claimed, the last {claimed} after the request; the scan {status} {ended} after it ({progress}); the merge (read every part, bundle, sign) took {merge} in the server; slowest results answer {results}; server RSS peak {peak} MiB (all held: {held} MiB) |\n",
            merge = if merges.is_empty() { "? (not in the log)".to_owned() } else { merges.join(", ") },
            agents = enroll_ok,
            n = claims.len(),
            claimed = since(last),
            status = f.status,
            ended = since(f.ended_ms),
            progress = f.progress,
            results = ms(Duration::from_millis(results_max_ms)),
            peak = rss_peak.iter().map(|k| k.unwrap_or(0)).sum::<u64>() / 1024,
            held = rss_held.iter().map(|k| k.unwrap_or(0)).sum::<u64>() / 1024,
        )
    });
    let counts_all = children.counts();
    drop(children);

    // Latency of the scans queued during the steady state.
    let steady_queued: Vec<&(String, u64)> = queued
        .iter()
        .filter(|(_, at)| *at >= steady_start_ms && *at <= steady_end_ms)
        .collect();
    let mut latency: Vec<Duration> = steady_queued
        .iter()
        .filter_map(|(id, sent)| {
            claimed
                .get(id)
                .and_then(|at| at.iter().min())
                .map(|at| Duration::from_millis(at.saturating_sub(*sent)))
        })
        .collect();
    latency.sort_unstable();
    let refused_steady = refused
        .iter()
        .filter(|at| **at >= steady_start_ms && **at <= steady_end_ms)
        .count();

    let mib = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |k| format!("{}", k / 1024));
    let sum = |v: &[Option<u64>]| v.iter().map(|k| k.unwrap_or(0)).sum::<u64>();
    let per_agent = |idle: u64, held: u64, agents: usize| {
        format!(
            "{:.1} KiB",
            held.saturating_sub(idle) as f64 / agents.max(1) as f64
        )
    };
    let cpu_pct = |b: Option<f64>, a: Option<f64>| match (b, a) {
        (Some(b), Some(a)) => Some((a - b) / steady_secs * 100.0),
        _ => None,
    };
    let cpu_total: f64 = (0..replicas)
        .filter_map(|r| cpu_pct(cpu_before[r], cpu_after[r]))
        .sum();
    let mut rows = String::new();
    for r in 0..replicas {
        let cpu = cpu_pct(cpu_before[r], cpu_after[r]);
        rows.push_str(&format!(
            "| {r} | {a} | {he} | {hm} | {idle} / {held} / {end} | {pa} | {cpu} | {ans} |\n",
            a = assigned[r],
            he = held_end[r],
            hm = if held_min[r] == u64::MAX {
                0
            } else {
                held_min[r]
            },
            idle = mib(rss_idle[r]),
            held = mib(rss_held[r]),
            end = mib(rss_end[r]),
            pa = match (rss_idle[r], rss_held[r]) {
                (Some(i), Some(h)) => per_agent(i, h, assigned[r]),
                _ => "?".to_owned(),
            },
            cpu = cpu.map_or_else(|| "?".to_owned(), |c| format!("{c:.1} %")),
            ans = short_counts(&counts_steady, Some(r)),
        ));
    }
    rows.push_str(&format!(
        "| all | {a} | {he} | {hm} | {idle} / {held} / {end} | {pa} | {cpu:.1} % | {ans} |\n",
        a = enroll_ok,
        he = held_end.iter().sum::<u64>(),
        hm = held_min
            .iter()
            .map(|n| if *n == u64::MAX { 0 } else { *n })
            .sum::<u64>(),
        idle = sum(&rss_idle) / 1024,
        held = sum(&rss_held) / 1024,
        end = sum(&rss_end) / 1024,
        pa = per_agent(sum(&rss_idle), sum(&rss_held), enroll_ok),
        cpu = cpu_total,
        ans = short_counts(&counts_steady, None),
    ));
    let extra_rows = fan_row.unwrap_or_default() + &storm.unwrap_or_default();
    let tx = match (tx_before, tx_after, tx_secs) {
        (Some((b, _)), Some(a), Some(secs)) if secs > 0.0 => format!(
            "{:.0}/s ({:.3} per agent-minute), over the last {secs:.0} s of the steady state",
            (a - b) / secs,
            (a - b) / (secs / 60.0) / enroll_ok.max(1) as f64
        ),
        _ if db.is_some() => format!(
            "not counted (a run of more than {} s is)",
            STATS_LAG.as_secs()
        ),
        _ => "n/a (memory mode)".to_owned(),
    };
    let statements = if db.is_some() {
        "not counted: pg_stat_statements is not in this PostgreSQL's shared_preload_libraries (a restart of the shared server would be needed)"
    } else {
        "n/a (memory mode)"
    };
    let transport_errors: u64 = counts_all
        .iter()
        .filter(|((_, _, s), _)| *s < 100)
        .map(|(_, n)| n)
        .sum();
    let mode = if db.is_some() { "PostgreSQL" } else { "memory" };
    let pool = if db.is_some() {
        format!("; pool {} + 1 listener per replica", pool_size(replicas))
    } else {
        String::new()
    };
    Ok(format!(
        "## fleet: {agents} agents, {replicas} replica(s) ({mode}{pool}), wait={wait}s, {rate} scans/s, {processes} simulator process(es)\n\n\
         | measure | value |\n|---|---|\n\
         | enrolled | {enroll_ok} in {fleets_n} fleets, {enroll_secs:.1} s ({enroll_failed} failed) |\n\
         | agents holding a check-in | {held_total} at the end, at least {held_min_total} during the run (all held after {connect_secs:.1} s) |\n\
         | check-in answers, whole run | {status_line}; {transport_errors} transport errors |\n\
         | scans queued / claimed | {q} / {c} ({refused_steady} refused) in {steady_secs:.0} s of steady state |\n\
         | queued → claimed | p50 {p50}, p99 {p99}, max {max} |\n\
         | lastSeenAt staleness | p50 {s50}, p99 {s99}, max {smax}; {never} never seen |\n\
         | server CPU, steady state, all replicas | {cpu_total:.1} % of one core ({per_k:.2} % per 1 000 agents) |\n\
         | PostgreSQL transactions | {tx} |\n\
         | PostgreSQL statements | {statements} |\n\
         {storm}\n\
         Per replica (RSS in MiB idle / all held / end; answers during the steady state):\n\n\
         | replica | agents | held at end | held at least | RSS MiB | RSS per held agent | CPU (one core = 100 %) | answers |\n|---|---:|---:|---:|---|---:|---:|---|\n\
         {rows}\n\
         Requests during the {steady_secs:.0} s steady state, all replicas:\n\n\
         | route | status | count | per second |\n|---|---|---:|---:|\n{by_route}\n",
        agents = opts.agents,
        wait = opts.wait,
        rate = opts.scans_per_second,
        held_total = held_end.iter().sum::<u64>(),
        held_min_total = held_min
            .iter()
            .map(|n| if *n == u64::MAX { 0 } else { *n })
            .sum::<u64>(),
        status_line = short_counts(&counts_all, None),
        q = steady_queued.len(),
        c = latency.len(),
        p50 = ms(percentile(&latency, 50.0)),
        p99 = ms(percentile(&latency, 99.0)),
        max = ms(latency.last().copied().unwrap_or_default()),
        s50 = ms(percentile(&stale, 50.0)),
        s99 = ms(percentile(&stale, 99.0)),
        smax = ms(stale.last().copied().unwrap_or_default()),
        per_k = cpu_total / (enroll_ok as f64 / 1000.0).max(0.001),
        storm = extra_rows,
        by_route = status_text(&counts_steady, steady_secs).join("\n"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Not a test: the simulator process when the test below starts this binary as
    /// one (the parent's `current_exe` is the test binary).
    #[test]
    fn child_process() {
        if std::env::var_os("FLEETPASS_SIM_CHILD").is_some() {
            let outcome = child();
            std::process::exit(i32::from(outcome.is_err()));
        }
    }

    /// The simulator end to end at a small scale, against this checkout's debug build
    /// (built first, into the same target directory): every queued scan is claimed by
    /// a held check-in, and every agent was seen.
    /// Builds the debug server; the target directory.
    fn built() -> std::path::PathBuf {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "fleetpass"])
            .current_dir(crate::root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the server builds");
        super::super::servers::target_dir()
    }

    #[test]
    fn the_simulator_runs_a_small_fleet_in_memory() {
        let target = built();
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
                replicas: 1,
                per_process: 25,
                // Every check-in renews first (the token lives 15 minutes), so the
                // renewal path runs.
                renew_before: 3600,
                storm: false,
                fan_out: false,
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
        assert!(
            report.contains("token 200: "),
            "access tokens renewed: {report}"
        );
        assert!(report.contains("3 simulator process(es)"), "{report}");
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

    #[test]
    fn a_fan_out_scan_of_the_whole_small_fleet_is_claimed_and_merged() {
        let target = built();
        let work = target.join("bench-work-test-fan-out");
        std::fs::create_dir_all(&work).expect("scratch directory");
        let report = simulate(
            &target.join("debug"),
            &work,
            &FleetOptions {
                agents: 40,
                per_fleet: 1,
                seconds: 4,
                scans_per_second: 1.0,
                wait: 30,
                postgres: false,
                replicas: 1,
                per_process: 20,
                renew_before: 120,
                storm: false,
                fan_out: true,
            },
        )
        .expect("the simulation runs");
        println!("{report}");
        let line = report
            .lines()
            .find(|l| l.starts_with("| fan-out:"))
            .expect("the fan-out line");
        assert!(line.contains("40 parts claimed"), "{line}");
        assert!(line.contains("ended completed"), "{line}");
    }
}
