//! `cargo xtask bench callgrind`: instructions per `GET /api/me`, Fleetpass (release,
//! memory store) against the identical-bytes bare server, counted by `valgrind
//! --tool=callgrind`. Instruction counts repeat to a fraction of a percent on a busy
//! machine where timings do not, so this is the check that guards the hot path's gains:
//! a regression shows as a larger count in its table. It belongs to the bench only,
//! never to CI or `cargo xtask test` (valgrind is slow and not everywhere).
//!
//! How it counts, and why so: each server runs under callgrind from its start; one
//! keep-alive connection sends a warm-up, then `callgrind_control --zero`, a first
//! window of requests and `--dump`, then `--zero` again, a second, longer window and
//! `--dump`. Zeroing drops the start-up and the setup calls; the difference of the two
//! windows divided by the difference of their request counts also drops what every
//! window pays once (the control commands' own wake-up, the first poll of the
//! connection). What remains unremoved is work per unit of time (actix's date timer,
//! idle polls): a few instructions per request at callgrind's speed. Toggling collection
//! on one function (`--toggle-collect`) would be exact for that function but would miss
//! the parsing and writing around it, which are part of what a request costs.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::api::{self, Api};
use super::servers::{self, ADMIN_KEY, Server};
use super::tools;

/// How the profile is taken.
#[derive(Debug, Clone)]
pub struct Options {
    /// Requests the count is taken over: the second window's surplus over the first.
    pub requests: usize,
    /// Requests before counting starts (caches, lazily made state, the allocator).
    pub warmup: usize,
    /// Functions of Fleetpass's profile to print, by inclusive cost.
    pub top: usize,
}

/// The share of the profile at which a frame is taken for one that encloses all the
/// work (threads, the runtime, the worker's service, the connection's dispatcher) and
/// left out of the top list: it would fill the list and say nothing.
const ENCLOSING: f64 = 95.0;

/// The first window's requests; the second sends this many plus `requests`.
const FIRST_WINDOW: usize = 500;

/// What one server costs per request.
struct Count {
    label: String,
    per_request: f64,
    /// The second window's profile, for `callgrind_annotate`.
    profile: PathBuf,
    /// Requests in that profile.
    profiled: usize,
}

/// Runs the profile and prints its report.
///
/// # Errors
/// When valgrind cannot be installed, the build fails, a server does not start or a
/// request is not answered with a 200.
pub fn run(opts: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(opts.requests > 0, "--requests must be at least 1");
    let valgrind = valgrind()?;
    let target = servers::target_dir();
    let work = target.join("bench-callgrind");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    servers::build()?;
    let bin = target.join("release");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let fleetpass_out = work.join("fleetpass.callgrind");
    let out_arg = out_file_arg(&fleetpass_out);
    let program = bin.join("fleetpass").to_string_lossy().into_owned();
    let args = [
        "--tool=callgrind",
        out_arg.as_str(),
        program.as_str(),
        "serve",
    ];
    let server = Server::start(
        "fleetpass (memory, callgrind)",
        &valgrind,
        &args,
        &super::common_env(),
        Some("FLEETPASS_BIND"),
        "/healthz",
        &work,
    )?;
    let api = Api::new(&server.base);
    let tokens = rt.block_on(async {
        let admin = api.tenant(ADMIN_KEY, "bench").await?;
        api.tokens(&admin, api::TOKENS, api::ROOMY).await
    })?;
    let raw = servers::capture(&server.base, "/api/me", &tokens[0])?;
    let capture = work.join("me.http");
    std::fs::write(&capture, &raw)?;

    let baseline_out = work.join("baseline.callgrind");
    let out_arg = out_file_arg(&baseline_out);
    let program = bin
        .join("fleetpass-bench-baseline")
        .to_string_lossy()
        .into_owned();
    let capture_arg = capture.to_string_lossy().into_owned();
    let workers = super::workers().to_string();
    let args = [
        "--tool=callgrind",
        out_arg.as_str(),
        program.as_str(),
        "{bind}",
        "--replay",
        capture_arg.as_str(),
        workers.as_str(),
    ];
    let baseline = Server::start(
        "bare actix-web, identical bytes (callgrind)",
        &valgrind,
        &args,
        &[],
        None,
        "/api/me",
        &work,
    )?;

    let fleetpass = count("Fleetpass, memory", &server, &fleetpass_out, &tokens, opts)?;
    let bare = count(
        "bare actix-web, identical bytes",
        &baseline,
        &baseline_out,
        &tokens[..1],
        opts,
    )?;
    drop(server);
    drop(baseline);

    println!(
        "\n## Instructions per `GET /api/me` (callgrind; {} requests after {} of warm-up, one keep-alive connection)\n",
        opts.requests, opts.warmup
    );
    println!("| server | instructions per request |");
    println!("|---|---:|");
    for c in [&fleetpass, &bare] {
        println!("| {} | {:.0} |", c.label, c.per_request);
    }
    println!(
        "\nFleetpass ÷ identical bytes: {:.2}× the instructions (the bare server's count is {:.2} of Fleetpass's)",
        fleetpass.per_request / bare.per_request.max(1.0),
        bare.per_request / fleetpass.per_request.max(1.0)
    );
    println!(
        "\n### Fleetpass's top {} functions, inclusive, per request (the second window: {} requests; \
         the frames around every request, at {ENCLOSING}% or more, left out)\n",
        opts.top, fleetpass.profiled
    );
    println!("| instructions per request | % | function |");
    println!("|---:|---:|---|");
    for (ir, share, function) in top_inclusive(&fleetpass.profile, opts.top)? {
        println!(
            "| {:.0} | {share} | `{function}` |",
            ir as f64 / fleetpass.profiled as f64
        );
    }
    println!("\nprofiles in {}", work.display());
    Ok(())
}

/// valgrind, installed from Debian's package when missing (it brings
/// `callgrind_control` and `callgrind_annotate`).
fn valgrind() -> anyhow::Result<PathBuf> {
    if tools::on_path("valgrind").is_none() {
        println!("valgrind is missing; `cargo xtask bench callgrind` needs it");
        tools::apt_install("valgrind")?;
    }
    for tool in ["valgrind", "callgrind_control", "callgrind_annotate"] {
        if tools::on_path(tool).is_none() {
            bail!("{tool} is not on PATH: install valgrind (apt-get install -y valgrind)");
        }
    }
    tools::on_path("valgrind").context("valgrind is not on PATH")
}

/// callgrind's output file: `out`, and its dumps `out.1`, `out.2`.
fn out_file_arg(out: &Path) -> String {
    format!("--callgrind-out-file={}", out.display())
}

/// Instructions per request of `server`, by the two zeroed windows.
fn count(
    label: &str,
    server: &Server,
    out: &Path,
    tokens: &[String],
    opts: &Options,
) -> anyhow::Result<Count> {
    let mut client = Client::connect(&server.base)?;
    let mut sent = 0;
    let mut send = |n: usize, client: &mut Client| -> anyhow::Result<()> {
        for _ in 0..n {
            client.get_me(&tokens[sent % tokens.len()])?;
            sent += 1;
        }
        Ok(())
    };
    send(opts.warmup, &mut client)?;
    let second = FIRST_WINDOW + opts.requests;
    let mut totals = Vec::new();
    for (part, n) in [(1, FIRST_WINDOW), (2, second)] {
        control(server.pid(), "--zero")?;
        send(n, &mut client)?;
        control(server.pid(), "--dump")?;
        let file = PathBuf::from(format!("{}.{part}", out.display()));
        totals.push(total(&file)?);
    }
    let per_request = totals[1].saturating_sub(totals[0]) as f64 / opts.requests as f64;
    println!(
        "{}: {} and {} instructions over {FIRST_WINDOW} and {second} requests: {per_request:.0} a request",
        server.label, totals[0], totals[1]
    );
    Ok(Count {
        label: label.to_owned(),
        per_request,
        profile: PathBuf::from(format!("{}.2", out.display())),
        profiled: second,
    })
}

/// `callgrind_control <flag> <pid>`: our own valgrind child, by its pid.
fn control(pid: u32, flag: &str) -> anyhow::Result<()> {
    let status = Command::new("callgrind_control")
        .args([flag, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .context("Failed to run callgrind_control")?;
    anyhow::ensure!(status.success(), "callgrind_control {flag} {pid} failed");
    Ok(())
}

/// The total instruction count of a dump (its `totals:` or `summary:` line), waiting
/// for the file to be complete.
fn total(file: &Path) -> anyhow::Result<u64> {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Some(n) = text.lines().rev().find_map(|l| {
                l.strip_prefix("totals:")
                    .or_else(|| l.strip_prefix("summary:"))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
        {
            return Ok(n);
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("no complete profile at {} after 60 s", file.display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The first `n` functions of `callgrind_annotate --inclusive=yes`: cost, share, name.
fn top_inclusive(profile: &Path, n: usize) -> anyhow::Result<Vec<(u64, String, String)>> {
    let output = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(profile)
        .output()
        .context("Failed to run callgrind_annotate")?;
    anyhow::ensure!(output.status.success(), "callgrind_annotate failed");
    Ok(parse_annotate(&String::from_utf8_lossy(&output.stdout), n))
}

/// Lines such as `12,345 (67.8%)  ???:crate::module::function [/path/bin]`.
fn parse_annotate(text: &str, n: usize) -> Vec<(u64, String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (count, rest) = line.split_once(' ')?;
            let ir: u64 = count.replace(',', "").parse().ok()?;
            let rest = rest.trim_start();
            let (share, function) = rest.strip_prefix('(')?.split_once(')')?;
            let percent: f64 = share.trim().trim_end_matches('%').parse().ok()?;
            if percent >= ENCLOSING {
                return None;
            }
            let function = function.trim();
            let function = function.split_once(':').map_or(function, |(_, f)| f);
            let function = function.rsplit_once(" [").map_or(function, |(f, _)| f);
            // Generic Rust names run to hundreds of characters; the head says enough.
            let short: String = function.chars().take(140).collect();
            Some((ir, share.trim().to_owned(), short.replace('|', "\\|")))
        })
        .take(n)
        .collect()
}

/// One keep-alive HTTP/1.1 connection, one request at a time.
struct Client {
    conn: TcpStream,
    host: String,
    buf: Vec<u8>,
}

impl Client {
    fn connect(base: &str) -> anyhow::Result<Self> {
        let host = base.trim_start_matches("http://").to_owned();
        let conn =
            TcpStream::connect(&host).with_context(|| format!("Failed to connect to {host}"))?;
        conn.set_read_timeout(Some(Duration::from_secs(30)))?;
        conn.set_nodelay(true)?;
        Ok(Self {
            conn,
            host,
            buf: Vec::with_capacity(4096),
        })
    }

    /// `GET /api/me` with `token`; fails unless the answer is a 200.
    fn get_me(&mut self, token: &str) -> anyhow::Result<()> {
        write!(
            self.conn,
            "GET /api/me HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
            self.host
        )?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(head) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head_text = String::from_utf8_lossy(&self.buf[..head]).to_ascii_lowercase();
                anyhow::ensure!(
                    head_text.starts_with("http/1.1 200 "),
                    "GET /api/me did not answer 200: {head_text}"
                );
                let length: usize = head_text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .context("an answer without content-length")?
                    .trim()
                    .parse()?;
                if self.buf.len() >= head + 4 + length {
                    return Ok(());
                }
            }
            let n = self.conn.read(&mut chunk)?;
            anyhow::ensure!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_annotate;

    #[test]
    fn annotate_lines_give_cost_share_and_a_short_name() {
        let text = "--------\nIr  file:function\n--------\n\
            1,234,567 (100.0%)  ???:start_thread [/usr/lib/libc.so.6]\n\
            1,100,000 (89.1%)  ???:actix_http::h1::dispatcher::poll_request [/bin/fleetpass]\n\
            61,000 ( 4.9%)  ???:fleetpass_http::guard::guard [/work/target/release/fleetpass]\n";
        let top = parse_annotate(text, 5);
        assert_eq!(top.len(), 2, "the enclosing frame is left out: {top:?}");
        assert_eq!(
            top[0],
            (
                1_100_000,
                "89.1%".to_owned(),
                "actix_http::h1::dispatcher::poll_request".to_owned()
            )
        );
        assert_eq!(top[1].1, "4.9%");
        assert_eq!(top[1].2, "fleetpass_http::guard::guard");
        assert_eq!(parse_annotate(text, 1).len(), 1);
    }
}
