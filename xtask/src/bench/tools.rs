//! The established load generators the benchmark drives, installed when missing:
//! `wrk` (Debian) for throughput, `oha` (crates.io) for latency at a constant arrival
//! rate, and `pgbench` (PostgreSQL's client package) for the database baselines. Each
//! runner returns numbers parsed from the tool's own output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// The oha release the benchmark installs and parses (its JSON output changes between
/// releases).
pub const OHA_VERSION: &str = "1.16.0";

/// Connections (wrk, oha) and clients (pgbench): the reference setup's 32.
pub const CONNECTIONS: u32 = 32;

/// Where a program is on `PATH`, if it is.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

pub(super) fn apt_install(package: &str) -> anyhow::Result<()> {
    println!("installing Debian's {package}: apt-get update && apt-get install -y {package}");
    crate::run("apt-get", &["update", "-q"])?;
    crate::run(
        "apt-get",
        &["install", "-y", "-q", "--no-install-recommends", package],
    )
}

/// The load generators, found or installed.
pub struct Tools {
    /// `wrk`.
    pub wrk: PathBuf,
    /// `oha`, the pinned release.
    pub oha: PathBuf,
    /// `pgbench`.
    pub pgbench: PathBuf,
    /// `psql`.
    pub psql: PathBuf,
}

impl Tools {
    /// Finds the tools, installing what is missing and saying so: wrk and the
    /// PostgreSQL client with apt-get, oha with `cargo install` into `tools_dir` (so
    /// the release the parser expects, whatever else is on `PATH`).
    ///
    /// # Errors
    /// When an install fails.
    pub fn ensure(tools_dir: &Path) -> anyhow::Result<Self> {
        if on_path("wrk").is_none() {
            apt_install("wrk")?;
        }
        if on_path("pgbench").is_none() || on_path("psql").is_none() {
            apt_install("postgresql-client")?;
        }
        let oha = tools_dir.join("bin/oha");
        let installed = Command::new(&oha)
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(OHA_VERSION));
        if !installed {
            // TLS from the system's OpenSSL (native-tls) rather than oha's default
            // rustls, whose aws-lc build is far longer; oha 1.16 does not build
            // without either.
            if !Path::new("/usr/include/openssl/ssl.h").exists() || on_path("pkg-config").is_none()
            {
                apt_install("libssl-dev")?;
                apt_install("pkg-config")?;
            }
            println!(
                "installing oha {OHA_VERSION} from crates.io: cargo install oha --version {OHA_VERSION} --locked --no-default-features --features native-tls --root {}",
                tools_dir.display()
            );
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let root = tools_dir.to_string_lossy();
            crate::run(
                "nice",
                &[
                    &cargo,
                    "install",
                    "oha",
                    "--version",
                    OHA_VERSION,
                    "--locked",
                    "--no-default-features",
                    "--features",
                    "native-tls",
                    "--root",
                    &root,
                ],
            )?;
        }
        let found = |p: &str| on_path(p).with_context(|| format!("{p} is not on PATH"));
        Ok(Self {
            wrk: found("wrk")?,
            oha,
            pgbench: found("pgbench")?,
            psql: found("psql")?,
        })
    }

    /// One line naming each tool's version, for the report.
    pub fn versions(&self) -> String {
        let first_line = |program: &Path, arg: &str| {
            Command::new(program)
                .arg(arg)
                .output()
                .map(|o| {
                    let text = if o.stdout.is_empty() {
                        o.stderr
                    } else {
                        o.stdout
                    };
                    String::from_utf8_lossy(&text)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                })
                .unwrap_or_default()
        };
        let wrk = first_line(&self.wrk, "-v");
        let wrk = wrk.split(" [").next().unwrap_or_default();
        format!(
            "{wrk}; {}; {}",
            first_line(&self.oha, "--version"),
            first_line(&self.pgbench, "--version")
        )
    }
}

/// One throughput run.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Answers counted.
    pub requests: u64,
    /// How long the run lasted.
    pub elapsed: Duration,
    /// Answers that were not the expected kind (pgbench: failed transactions), or
    /// socket errors.
    pub unexpected: u64,
    /// Answers with a status other than 2xx or 3xx (wrk).
    pub refused: u64,
    /// Whether a one-time list ran out before the run ended.
    pub cut_short: bool,
}

impl Throughput {
    /// Requests (or transactions) a second.
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Latency at a constant arrival rate.
#[derive(Debug, Clone)]
pub struct Latency {
    /// The arrival rate asked for, a second.
    pub rate: f64,
    /// The rate achieved, a second.
    pub achieved: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Answers other than the expected status, and errors.
    pub unexpected: u64,
    /// What they were.
    pub other: String,
}

/// Runs wrk for `secs` seconds, one thread and [`CONNECTIONS`] connections, sending the
/// requests of `requests_file` (see requests.lua) from `script`.
///
/// # Errors
/// When wrk fails or prints no summary.
pub fn wrk(
    tools: &Tools,
    script: &Path,
    url: &str,
    requests_file: &Path,
    secs: u64,
) -> anyhow::Result<Throughput> {
    let out = Command::new(&tools.wrk)
        .args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{secs}s")])
        .args(["--timeout", "10s", "-s"])
        .arg(script)
        .arg(url)
        .arg("--")
        .arg(requests_file)
        .output()
        .context("Failed to run wrk")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk exited with {}: {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FPBENCH "))
        .with_context(|| format!("wrk printed no summary: {stdout}"))?;
    let fields: BTreeMap<&str, u64> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect();
    let get = |k: &str| fields.get(k).copied().unwrap_or(0);
    let elapsed = Duration::from_micros(get("duration_us"));
    Ok(Throughput {
        requests: get("requests"),
        elapsed,
        // Refusals are counted apart: the caller knows which kind it expects.
        unexpected: get("connect") + get("read") + get("write") + get("timeout"),
        refused: get("status"),
        // The caller knows how many lines there were.
        cut_short: false,
    })
}

/// What oha sends.
pub struct OhaRequest<'a> {
    /// `POST` or `GET`.
    pub method: &'a str,
    /// A file of URLs, one a line, picked at random per request (`--urls-from-file`).
    pub urls_file: &'a Path,
    /// Fixed headers.
    pub headers: &'a [String],
    /// A file of JSON bodies, one a line, picked at random per request (`-Z`).
    pub bodies_file: Option<&'a Path>,
    /// The status every answer should have.
    pub expect: u16,
}

/// Runs oha at a constant `rate` for `secs` seconds with latency correction (latency
/// counts from when a request was due, not from when a free connection sent it, so a
/// stall shows in the tail instead of pausing the clock) and [`CONNECTIONS`]
/// connections.
///
/// # Errors
/// When oha fails or its JSON lacks a field.
pub fn oha(tools: &Tools, req: &OhaRequest<'_>, rate: f64, secs: u64) -> anyhow::Result<Latency> {
    let mut cmd = Command::new(&tools.oha);
    cmd.args([
        "--no-tui",
        "--output-format",
        "json",
        "--latency-correction",
    ])
    .args(["-z", &format!("{secs}s"), "-c", &CONNECTIONS.to_string()])
    .args(["-q", &format!("{rate:.0}"), "-m", req.method]);
    for h in req.headers {
        cmd.args(["-H", h]);
    }
    if let Some(bodies) = req.bodies_file {
        cmd.args(["-T", "application/json", "-Z"]).arg(bodies);
    }
    cmd.arg("--urls-from-file").arg(req.urls_file);
    let out = cmd.output().context("Failed to run oha")?;
    if !out.status.success() {
        bail!(
            "oha exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("oha printed no JSON")?;
    let secs_at = |pointer: &str| {
        json.pointer(pointer)
            .and_then(serde_json::Value::as_f64)
            .map(Duration::from_secs_f64)
            .with_context(|| format!("oha's JSON has no {pointer}"))
    };
    let codes = json
        .pointer("/statusCodeDistribution")
        .and_then(serde_json::Value::as_object)
        .context("oha's JSON has no statusCodeDistribution")?;
    let answered: u64 = codes.values().filter_map(serde_json::Value::as_u64).sum();
    let mut other: Vec<String> = codes
        .iter()
        .filter(|(code, _)| **code != req.expect.to_string())
        .map(|(code, n)| format!("{n} × {code}"))
        .collect();
    let mut unexpected = answered
        - codes
            .get(&req.expect.to_string())
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
    if let Some(errors) = json
        .pointer("/errorDistribution")
        .and_then(serde_json::Value::as_object)
    {
        for (error, n) in errors {
            // Requests still in flight when the duration ends are cut off by design.
            if error.contains("deadline") {
                continue;
            }
            let n = n.as_u64().unwrap_or(0);
            unexpected += n;
            other.push(format!("{n} × {error}"));
        }
    }
    Ok(Latency {
        rate,
        achieved: answered as f64 / secs as f64,
        p50: secs_at("/latencyPercentiles/p50")?,
        p99: secs_at("/latencyPercentiles/p99")?,
        unexpected,
        other: other.join(", "),
    })
}

/// A pgbench run's settings.
pub struct Pgbench<'a> {
    /// The script file.
    pub script: &'a Path,
    /// `-D name=value` variables.
    pub defines: &'a [(String, String)],
    /// The database.
    pub database: &'a str,
}

impl Pgbench<'_> {
    fn command(&self, tools: &Tools, secs: u64) -> Command {
        let mut cmd = Command::new(&tools.pgbench);
        // -n: no VACUUM of pgbench's own tables (there are none); -j1: one thread, as
        // wrk runs; -M prepared: parse and plan once per connection, as the server's
        // driver does with its statement cache.
        cmd.args([
            "-h",
            super::db::HOST,
            "-p",
            super::db::PORT,
            "-U",
            super::db::USER,
        ])
        .args(["-n", "-j1", "-M", "prepared"])
        .args(["-c", &CONNECTIONS.to_string(), "-T", &secs.to_string()])
        .arg("-f")
        .arg(self.script);
        for (name, value) in self.defines {
            cmd.args(["-D", &format!("{name}={value}")]);
        }
        cmd.arg(self.database);
        cmd
    }

    fn output(mut cmd: Command) -> anyhow::Result<String> {
        let out = cmd.output().context("Failed to run pgbench")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        // A statement that fails aborts its client: the script no longer matches the
        // schema, and the rate would describe something else.
        if !out.status.success() || String::from_utf8_lossy(&out.stderr).contains("aborted") {
            bail!(
                "pgbench exited with {}: {stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    /// Transactions a second over `secs` seconds, as fast as the clients go.
    ///
    /// # Errors
    /// When pgbench fails or prints no rate.
    pub fn throughput(&self, tools: &Tools, secs: u64) -> anyhow::Result<Throughput> {
        let stdout = Self::output(self.command(tools, secs))?;
        let number_after = |prefix: &str| -> Option<f64> {
            stdout.lines().find_map(|l| {
                l.trim()
                    .strip_prefix(prefix)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
        };
        let tps = number_after("tps = ").with_context(|| format!("no tps in: {stdout}"))?;
        let failed = number_after("number of failed transactions: ").unwrap_or(0.0);
        // pgbench's own rate excludes the time to connect; count over the same span.
        let elapsed = Duration::from_secs(secs);
        Ok(Throughput {
            requests: (tps * secs as f64).round() as u64,
            elapsed,
            unexpected: failed as u64,
            refused: 0,
            cut_short: false,
        })
    }

    /// Latency at a constant `rate` (`-R`, a Poisson schedule) over `secs` seconds,
    /// from pgbench's per-transaction log (`-l`): each transaction's time plus how late
    /// it started against its schedule, so that a stall counts in full, as oha's
    /// latency correction counts it.
    ///
    /// # Errors
    /// When pgbench fails or writes no log.
    pub fn latency(
        &self,
        tools: &Tools,
        rate: f64,
        secs: u64,
        log_dir: &Path,
    ) -> anyhow::Result<Latency> {
        let _ = std::fs::remove_dir_all(log_dir);
        std::fs::create_dir_all(log_dir)?;
        let mut cmd = self.command(tools, secs);
        cmd.args(["-R", &format!("{rate:.0}"), "-l", "--log-prefix"])
            .arg(log_dir.join("pgbench"));
        let stdout = Self::output(cmd)?;
        // client_id transaction_no time script_no time_epoch time_us schedule_lag
        let mut logged: Vec<(u64, u64)> = Vec::new();
        for entry in std::fs::read_dir(log_dir)? {
            let text = std::fs::read_to_string(entry?.path())?;
            for line in text.lines() {
                let f: Vec<u64> = line
                    .split_whitespace()
                    .map(|v| v.parse().unwrap_or(0))
                    .collect();
                if let [_, _, time, _, epoch, us, lag, ..] = f[..] {
                    logged.push((epoch * 1_000_000 + us, time + lag));
                }
            }
        }
        // The schedule starts before the 32 connections are open, so the first
        // transactions carry the connection time as lag; oha's connections open in a
        // few microseconds each. Runs long enough skip their first second.
        let first = logged.iter().map(|(at, _)| *at).min().unwrap_or(0);
        let skip = if secs >= 3 { 1_000_000 } else { 0 };
        let mut micros: Vec<u64> = logged
            .iter()
            .filter(|(at, _)| *at >= first + skip)
            .map(|(_, latency)| *latency)
            .collect();
        anyhow::ensure!(!micros.is_empty(), "pgbench logged nothing: {stdout}");
        micros.sort_unstable();
        let at = |p: f64| {
            let i = ((micros.len() - 1) as f64 * p).round() as usize;
            Duration::from_micros(micros[i])
        };
        let failed = stdout
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("number of failed transactions: ")?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        Ok(Latency {
            rate,
            achieved: micros.len() as f64 / (secs as f64 - skip as f64 / 1e6),
            p50: at(0.5),
            p99: at(0.99),
            unexpected: failed,
            other: format!("{failed} failed transactions"),
        })
    }
}
