//! `cargo xtask bench`: the release server over real sockets, each scenario against a
//! baseline measured in the same run, in alternating rounds (A B A B …), so that a
//! machine that gets busier or quieter moves both alike.
//!
//! - Throughput: `wrk`, one thread, 32 connections, every request pre-rendered by
//!   `requests.lua` (40 API tokens in turn, fresh one-time credentials where the
//!   scenario needs them).
//! - Latency: `oha` at a constant arrival rate of half the measured peak, latency
//!   counted from when each request was due (no coordinated omission).
//! - Baselines: a bare actix-web binary with the same workers (`crates/bench-baseline`)
//!   for the `/api/me` scenarios, twice: doing the real server's per-request chores (a
//!   fresh request id, a body of the real size), and replaying the identical bytes of
//!   a real answer captured at the start of the scenario; `pgbench` running the same
//!   statements, with the same protocol (prepared, one round trip per statement) and
//!   client count, for the PostgreSQL ones.
//!
//! Everything is reported, nothing asserted: the numbers describe this machine, now.
//! The report goes to `docs/BENCHMARKS.md` (a full run only; see `report.rs`).

mod api;
pub mod callgrind;
mod db;
pub mod fleet;
mod postgres;
mod report;
mod scale;
mod servers;
mod sql;
mod tools;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};

use self::api::Api;
use self::db::Database;
use self::servers::{ADMIN_KEY, Server};
use self::tools::{CONNECTIONS, Latency, OhaRequest, Pgbench, Throughput, Tools};

/// The scenarios, by the name `--scenario` takes, in the order they run.
pub const SCENARIOS: &[&str] = &[
    "me-memory",
    "me-postgres",
    "scan-read",
    "share-open-cold",
    "share-create",
    "enroll",
    "rate-limited",
    "scale",
];

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct Options {
    /// Short rounds, for a smoke check; the report is not written.
    pub quick: bool,
    /// Only this scenario (one of [`SCENARIOS`]); the report is not written.
    pub scenario: Option<String>,
    /// A B rounds per scenario (at least 3).
    pub rounds: usize,
    /// Seconds per measured run.
    pub seconds: u64,
}

/// Workers of both servers: what `fleetpass serve` runs with (actix's default, one
/// per core), passed to the baseline explicitly.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Server settings every run shares: limits out of the way (the benchmark measures
/// the cost of counting, not of refusing; the rate-limited scenario uses a token's own
/// limit), quiet logs, and loopback trusted as a proxy so that the public scenarios can
/// spread their requests over many client addresses (`X-Forwarded-For`, documentation
/// ranges only) instead of exhausting one address's limit.
fn common_env() -> Vec<(&'static str, String)> {
    vec![
        ("FLEETPASS_ADMIN_KEY", ADMIN_KEY.to_owned()),
        ("FLEETPASS_LOG", "warn".to_owned()),
        ("FLEETPASS_PUBLIC_RATE_LIMIT", api::ROOMY.to_string()),
        ("FLEETPASS_AUTH_FAILURE_LIMIT", api::ROOMY.to_string()),
        ("FLEETPASS_TRUSTED_PROXIES", "127.0.0.1".to_owned()),
    ]
}

/// The `X-Forwarded-For` of the `i`-th public request: 512 addresses of the
/// documentation ranges (TEST-NET-2 and -3), never contacted, only counted.
fn client_address(i: usize) -> String {
    let net = if i % 512 < 256 {
        "198.51.100"
    } else {
        "203.0.113"
    };
    format!("X-Forwarded-For: {net}.{}", i % 256)
}

/// What every scenario needs: the tools, a scratch directory, a runtime for the
/// setup calls.
struct Env {
    tools: Tools,
    work: PathBuf,
    rt: tokio::runtime::Runtime,
    script: PathBuf,
    script_once: PathBuf,
    files: std::cell::Cell<u32>,
}

impl Env {
    /// Writes `lines` to a new file in the scratch directory.
    fn file(&self, stem: &str, lines: &[String]) -> anyhow::Result<PathBuf> {
        let n = self.files.get() + 1;
        self.files.set(n);
        let path = self.work.join(format!("{stem}-{n}.txt"));
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&path, text)
            .with_context(|| format!("Failed to write {}", path.display()))?;
        Ok(path)
    }
}

/// One side of a scenario: something to load, as fast as it goes or at a set rate.
trait Load {
    /// What it is, for the report.
    fn label(&self) -> String;
    /// Requests a second over `secs` seconds, as fast as 32 connections go.
    fn throughput(&mut self, env: &Env, secs: u64) -> anyhow::Result<Throughput>;
    /// Latency at a constant `rate`.
    fn latency(&mut self, env: &Env, rate: f64, secs: u64) -> anyhow::Result<Latency>;
}

/// Makes the lines of requests.lua for a wrk run of `secs` seconds at about `rate`.
type Lines<'a> = Box<dyn FnMut(&Env, u64, f64) -> anyhow::Result<Vec<String>> + 'a>;
/// Makes what oha sends for a run of `secs` seconds at `rate`.
type OhaPlan<'a> = Box<dyn FnMut(&Env, u64, f64) -> anyhow::Result<OhaFiles> + 'a>;

/// What oha sends: URLs and bodies picked at random, fixed headers.
struct OhaFiles {
    method: &'static str,
    urls: Vec<String>,
    headers: Vec<String>,
    bodies: Option<Vec<String>>,
}

/// HTTP requests to a server: wrk for throughput, oha for latency.
struct Http<'a> {
    label: String,
    base: String,
    /// Whether every line may be sent once only (once.lua).
    once: bool,
    lines: Lines<'a>,
    oha: OhaPlan<'a>,
    expect: u16,
    /// The highest rate seen, to size one-time lists.
    seen_rate: f64,
}

impl Load for Http<'_> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn throughput(&mut self, env: &Env, secs: u64) -> anyhow::Result<Throughput> {
        let script = if self.once {
            &env.script_once
        } else {
            &env.script
        };
        let mut tries = 0;
        loop {
            let lines = (self.lines)(env, secs, self.seen_rate)?;
            let file = env.file("wrk", &lines)?;
            let mut run = tools::wrk(&env.tools, script, &self.base, &file, secs)?;
            // wrk tells 2xx/3xx from the rest, which is all a scenario needs to know:
            // each expects one status.
            run.unexpected += if self.expect < 400 {
                run.refused
            } else {
                run.requests - run.refused
            };
            // wrk counts the whole duration even when once.lua stopped the thread, so
            // a run that used up its list measured nothing useful: size the list up
            // (its rate is at least the list over the duration) and run again.
            run.cut_short =
                self.once && run.requests as usize + CONNECTIONS as usize >= lines.len();
            let floor = if run.cut_short {
                2.0 * lines.len() as f64 / secs as f64
            } else {
                run.per_second()
            };
            self.seen_rate = self.seen_rate.max(floor);
            tries += 1;
            if !run.cut_short || tries == 4 {
                return Ok(run);
            }
            println!(
                "  ({} ran out of one-time credentials; again with more)",
                self.label
            );
        }
    }

    fn latency(&mut self, env: &Env, rate: f64, secs: u64) -> anyhow::Result<Latency> {
        let plan = (self.oha)(env, secs, rate)?;
        let urls: Vec<String> = plan
            .urls
            .iter()
            .map(|path| format!("{}{path}", self.base))
            .collect();
        let urls_file = env.file("oha-urls", &urls)?;
        let bodies_file = plan
            .bodies
            .as_ref()
            .map(|b| env.file("oha-bodies", b))
            .transpose()?;
        tools::oha(
            &env.tools,
            &OhaRequest {
                method: plan.method,
                urls_file: &urls_file,
                headers: &plan.headers,
                bodies_file: bodies_file.as_deref(),
                expect: self.expect,
            },
            rate,
            secs,
        )
    }
}

/// A pgbench script on the benchmark's database.
struct Sql<'a> {
    label: String,
    script: PathBuf,
    defines: Vec<(String, String)>,
    db: &'a Database,
    /// Run before each pgbench run, untimed.
    before_run: Option<&'static str>,
}

impl Sql<'_> {
    fn pgbench(&self) -> anyhow::Result<Pgbench<'_>> {
        if let Some(sql) = self.before_run {
            self.db.sql(sql)?;
        }
        Ok(Pgbench {
            script: &self.script,
            defines: &self.defines,
            database: &self.db.name,
        })
    }
}

impl Load for Sql<'_> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn throughput(&mut self, env: &Env, secs: u64) -> anyhow::Result<Throughput> {
        self.pgbench()?.throughput(&env.tools, secs)
    }

    fn latency(&mut self, env: &Env, rate: f64, secs: u64) -> anyhow::Result<Latency> {
        self.pgbench()?
            .latency(&env.tools, rate, secs, &env.work.join("pgbench-log"))
    }
}

/// One side's results.
#[derive(Debug, Clone)]
pub struct Side {
    /// What ran.
    pub label: String,
    /// Each measured round.
    pub runs: Vec<Throughput>,
    /// At half the median peak.
    pub latency: Option<Latency>,
}

impl Side {
    /// Requests a second of each round.
    pub fn rates(&self) -> Vec<f64> {
        self.runs.iter().map(Throughput::per_second).collect()
    }

    /// The median of [`Side::rates`].
    pub fn median(&self) -> f64 {
        median(&self.rates())
    }
}

/// A scenario's results.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its `--scenario` name.
    pub name: &'static str,
    /// What it measures.
    pub title: String,
    /// Fleetpass.
    pub a: Side,
    /// The baseline.
    pub b: Side,
    /// Further baselines of the same Fleetpass side, each its own row in the report
    /// (the `/api/me` scenarios: the identical-bytes server).
    pub more: Vec<Side>,
    /// The server under test.
    pub server: String,
    /// Its resident memory after the scenario, KiB.
    pub rss_kib: Option<u64>,
    /// Anything a reader must know about these numbers.
    pub notes: Vec<String>,
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// Runs A and B alternately: a warm-up of each, `rounds` measured pairs, then each at a
/// constant half of its median peak.
fn alternate(
    env: &Env,
    opts: &Options,
    a: &mut dyn Load,
    b: &mut dyn Load,
) -> anyhow::Result<(Side, Side, Vec<String>)> {
    let (mut sides, notes) = alternate_all(env, opts, &mut [a, b])?;
    let sb = sides.pop().context("two sides")?;
    let sa = sides.pop().context("two sides")?;
    Ok((sa, sb, notes))
}

/// [`alternate`] over any number of loads, in turn (A B C A B C …).
fn alternate_all(
    env: &Env,
    opts: &Options,
    loads: &mut [&mut dyn Load],
) -> anyhow::Result<(Vec<Side>, Vec<String>)> {
    let warm = if opts.quick { 1 } else { 2 };
    for load in loads.iter_mut() {
        load.throughput(env, warm)?;
    }
    let mut sides: Vec<Side> = loads
        .iter()
        .map(|load| Side {
            label: load.label(),
            runs: Vec::new(),
            latency: None,
        })
        .collect();
    for round in 1..=opts.rounds {
        for (load, side) in loads.iter_mut().zip(sides.iter_mut()) {
            let run = load.throughput(env, opts.seconds)?;
            println!(
                "  round {round}: {:<44} {:>9.0} req/s{}",
                side.label,
                run.per_second(),
                if run.unexpected > 0 {
                    format!(" ({} unexpected answers)", run.unexpected)
                } else {
                    String::new()
                }
            );
            side.runs.push(run);
        }
    }
    for (load, side) in loads.iter_mut().zip(sides.iter_mut()) {
        let rate = (side.median() / 2.0).max(1.0);
        let latency = load.latency(env, rate, opts.seconds)?;
        println!(
            "  at {:>7.0} req/s:  {:<38} p50 {:>7.2} ms  p99 {:>7.2} ms",
            rate,
            side.label,
            latency.p50.as_secs_f64() * 1e3,
            latency.p99.as_secs_f64() * 1e3
        );
        side.latency = Some(latency);
    }
    let mut notes = Vec::new();
    for side in &sides {
        let unexpected: u64 = side.runs.iter().map(|r| r.unexpected).sum();
        if unexpected > 0 {
            notes.push(format!(
                "{}: {unexpected} answers of the wrong kind across the rounds",
                side.label
            ));
        }
        if side.runs.iter().any(|r| r.cut_short) {
            notes.push(format!(
                "{}: a round ran out of one-time credentials four times over; its rate is a floor",
                side.label
            ));
        }
        if let Some(l) = &side.latency {
            if l.unexpected > 0 {
                notes.push(format!(
                    "{}: in the constant-rate run, {}",
                    side.label, l.other
                ));
            }
            if l.achieved < l.rate * 0.9 {
                notes.push(format!(
                    "{}: the constant-rate run reached {:.0} of {:.0} req/s",
                    side.label, l.achieved, l.rate
                ));
            }
        }
    }
    Ok((sides, notes))
}

/// Fixed GET lines rotating the tokens: `path_of(i)` is the path of the `i`-th.
fn rotating_gets(tokens: &[String], path_of: impl Fn(usize) -> String) -> Vec<String> {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| format!("GET\t{}\t\tAuthorization: Bearer {t}", path_of(i)))
        .collect()
}

/// The same requests for oha, which sends fixed headers: the token rides in the query
/// (`?api_key=`, which the server accepts unless FLEETPASS_QUERY_TOKENS=off) so that
/// it still rotates.
fn rotating_urls(tokens: &[String], path_of: impl Fn(usize) -> String) -> Vec<String> {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let path = path_of(i);
            let join = if path.contains('?') { '&' } else { '?' };
            format!("{path}{join}api_key={t}")
        })
        .collect()
}

/// The bare actix-web baseline, answering `GET /api/me` with a body of the real
/// answer's size, or (replaying) with the real answer itself.
struct Bare {
    server: Server,
    size: usize,
    token: String,
    /// Whether it replays a captured answer (the identical-bytes baseline).
    replay: bool,
}

impl Bare {
    fn start(bin: &Path, size: usize, token: &str, log_dir: &Path) -> anyhow::Result<Self> {
        let server = Server::start(
            "bare actix-web baseline",
            &bin.join("fleetpass-bench-baseline"),
            &["{bind}", &size.to_string(), &workers().to_string()],
            &[],
            None,
            "/api/me",
            log_dir,
        )?;
        Ok(Self {
            server,
            size,
            token: token.to_owned(),
            replay: false,
        })
    }

    /// The identical-bytes baseline: captures a real `GET /api/me` answer from
    /// `real` (status, headers and body, the rate-limit fields and the request id
    /// included) into `work`, and starts the bare server replaying it.
    fn start_replay(
        bin: &Path,
        real: &Server,
        token: &str,
        work: &Path,
        stem: &str,
    ) -> anyhow::Result<Self> {
        let raw = servers::capture(&real.base, "/api/me", token)?;
        let file = work.join(format!("{stem}.http"));
        std::fs::write(&file, &raw)
            .with_context(|| format!("Failed to write {}", file.display()))?;
        let size = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |head| raw.len() - head - 4);
        let server = Server::start(
            "bare actix-web, identical bytes",
            &bin.join("fleetpass-bench-baseline"),
            &[
                "{bind}",
                "--replay",
                &file.to_string_lossy(),
                &workers().to_string(),
            ],
            &[],
            None,
            "/api/me",
            work,
        )?;
        Ok(Self {
            server,
            size,
            token: token.to_owned(),
            replay: true,
        })
    }

    /// Its load: the same request with one token (it checks none).
    fn load<'a>(&self) -> Http<'a> {
        http_rotating(
            if self.replay {
                "bare actix-web, identical bytes"
            } else {
                "bare actix-web"
            },
            &self.server,
            vec![format!(
                "GET\t/api/me\t\tAuthorization: Bearer {}",
                self.token
            )],
            vec!["/api/me".to_owned()],
            200,
        )
    }

    fn note(&self) -> String {
        let rss = self
            .server
            .rss_kib()
            .map_or_else(|| "?".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
        if self.replay {
            format!(
                "The identical-bytes baseline replays one real answer, captured at the start: the same status, headers (rate-limit fields and request id included, fixed) and {}-byte body, no work per request; its RSS {rss} MiB.",
                self.size
            )
        } else {
            format!(
                "The baseline answers the same {}-byte body (the real answer's size) with the same fixed headers; baseline RSS {rss} MiB.",
                self.size
            )
        }
    }
}

/// The in-memory server and the bare baseline, and the measured `/api/me` size.
fn me_memory(env: &Env, opts: &Options, bin: &Path, log_dir: &Path) -> anyhow::Result<Outcome> {
    let server = Server::start(
        "fleetpass (memory)",
        &bin.join("fleetpass"),
        &["serve"],
        &common_env(),
        Some("FLEETPASS_BIND"),
        "/healthz",
        log_dir,
    )?;
    let api = Api::new(&server.base);
    let (tokens, size) = env.rt.block_on(async {
        let admin = api.tenant(ADMIN_KEY, "bench").await?;
        let tokens = api.tokens(&admin, api::TOKENS, api::ROOMY).await?;
        let (status, size) = api.get_len("/api/me", &tokens[0]).await?;
        anyhow::ensure!(status == 200, "GET /api/me answered {status}");
        anyhow::Ok((tokens, size))
    })?;
    // The capture is the token's second answer, which carries a `lastUsedAt`, as every
    // answer of the run does; the first (measured above) has it null and is shorter.
    let same = Bare::start_replay(bin, &server, &tokens[0], log_dir, "me-memory")?;
    let baseline = Bare::start(bin, same.size.max(size), &tokens[0], log_dir)?;
    let me = |_: usize| "/api/me".to_owned();
    let mut a = http_rotating(
        "fleetpass, memory",
        &server,
        rotating_gets(&tokens, me),
        rotating_urls(&tokens, me),
        200,
    );
    let mut b = baseline.load();
    let mut c = same.load();
    let (sides, mut notes) = alternate_all(env, opts, &mut [&mut a, &mut b, &mut c])?;
    notes.push(baseline.note());
    notes.push(same.note());
    let [sa, sb, sc] = <[Side; 3]>::try_from(sides).map_err(|_| anyhow::anyhow!("three sides"))?;
    Ok(Outcome {
        name: "me-memory",
        title: "`GET /api/me`, memory store".to_owned(),
        a: sa,
        b: sb,
        more: vec![sc],
        server: server.label.clone(),
        rss_kib: server.rss_kib(),
        notes,
    })
}

/// Runs the benchmark.
///
/// # Errors
/// When a tool, the build, PostgreSQL or a server fails, or a setup request is refused.
pub fn run(opts: &Options) -> anyhow::Result<()> {
    if let Some(name) = &opts.scenario
        && !SCENARIOS.contains(&name.as_str())
    {
        bail!("unknown scenario {name:?}; the scenarios are {SCENARIOS:?}");
    }
    anyhow::ensure!(opts.rounds >= 3, "--rounds must be at least 3");
    let started = Instant::now();
    // Other work on the machine shows in the numbers: the report says how busy it was.
    let load_before = report::load_average();
    let target = servers::target_dir();
    let work = target.join("bench-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let tools = Tools::ensure(&target.join("bench-tools"))?;
    crate::ensure_postgres()?;
    servers::build()?;
    let bin = target.join("release");
    let script = work.join("requests.lua");
    std::fs::write(&script, include_str!("requests.lua"))?;
    let script_once = work.join("requests-once.lua");
    std::fs::write(
        &script_once,
        [include_str!("requests.lua"), include_str!("once.lua")].join("\n"),
    )?;
    let env = Env {
        tools,
        work: work.clone(),
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
        script,
        script_once,
        files: std::cell::Cell::new(0),
    };
    let wanted = |name: &str| opts.scenario.as_deref().is_none_or(|s| s == name);
    let mut outcomes = Vec::new();
    if wanted("me-memory") {
        println!("\n## me-memory");
        outcomes.push(me_memory(&env, opts, &bin, &work)?);
    }
    let mut settings = Vec::new();
    if SCENARIOS[1..].iter().any(|s| *s != "scale" && wanted(s)) {
        let db = Database::create(env.tools.psql.clone(), "main")?;
        settings = db.settings()?;
        outcomes.extend(postgres::postgres_scenarios(
            &env, opts, &bin, &db, &wanted,
        )?);
    }
    if wanted("scale") {
        println!("\n## scale (making a database of a million rows takes a few minutes)");
        outcomes.extend(scale::run(&env, opts, &bin)?);
    }
    let wall = started.elapsed();
    let mut machine = report::Machine::collect(&env.tools);
    machine.load = format!(
        "{load_before} at the start, {} at the end",
        report::load_average()
    );
    let text = report::render(opts, &machine, &settings, &outcomes, wall);
    println!("\n{text}");
    if opts.quick || opts.scenario.is_some() {
        println!("(a partial run: docs/BENCHMARKS.md is written by a full run only)");
    } else {
        report::write(&crate::root().join("docs/BENCHMARKS.md"), &text)?;
        println!("wrote docs/BENCHMARKS.md");
    }
    println!("bench took {:.0} s", wall.as_secs_f64());
    Ok(())
}

/// An HTTP load of fixed, rotating requests.
fn http_rotating<'a>(
    label: &str,
    server: &Server,
    lines: Vec<String>,
    urls: Vec<String>,
    expect: u16,
) -> Http<'a> {
    Http {
        label: label.to_owned(),
        base: server.base.clone(),
        once: false,
        lines: Box::new(
            move |_: &Env, _: u64, _: f64| -> anyhow::Result<Vec<String>> { Ok(lines.clone()) },
        ),
        oha: Box::new(move |_: &Env, _: u64, _: f64| -> anyhow::Result<OhaFiles> {
            Ok(OhaFiles {
                method: "GET",
                urls: urls.clone(),
                headers: Vec::new(),
                bodies: None,
            })
        }),
        expect,
        seen_rate: 0.0,
    }
}
