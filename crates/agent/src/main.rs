//! `fleetpass-agent`: the Fleetpass reference agent. `enroll` joins a fleet with a
//! one-time enrollment token and keeps the agent's credentials in a 0600 state file;
//! `run` heartbeats, claims the fleet's scans, scans this host and sends the results.
//!
//! It depends on `fleetpass-domain` only (never on the server's crates): the results it
//! sends are the domain's `ScanResults`, validated with the server's own rules, and
//! secrets are the domain's `PlainSecret`, format- and checksum-checked before use and
//! redacted in every `Debug`.

mod client;
mod scenarios;
mod state;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use fleetpass_domain::label::{LabelKey, LabelValue, Labels, MAX_LABELS};
use fleetpass_domain::secret::{PlainSecret, SecretKind};

use crate::client::{CallError, ClaimedScan, Client, Pace};
use crate::scenarios::{Budget, Host};
use crate::state::State;

/// What `--help` adds after the options: examples and the environment.
const AFTER_HELP: &str = "\
Examples:
  fleetpass-agent enroll --server https://fleetpass.example.com --token fpe_…   # once, with the fleet's enrollmentToken
  fleetpass-agent enroll --server … --token fpe_… --label role=db --label site=fra1   # with labels scans can target
  fleetpass-agent run                                                          # until SIGTERM / Ctrl-C
  FLEETPASS_AGENT_LOG=debug fleetpass-agent run --poll-seconds 5               # more detail, quicker claims
  fleetpass-agent --state /var/lib/fleetpass-agent/state.json run              # a state file of its own

Environment:
  FLEETPASS_SERVER            --server of `enroll`
  FLEETPASS_ENROLLMENT_TOKEN  --token of `enroll` (kept out of the shell history)
  FLEETPASS_AGENT_STATE       --state: the state file (agent id and secret, mode 0600)
  FLEETPASS_AGENT_LOG         the log filter on stderr (default `info`; e.g. `debug`)

Exit codes: 0 when stopped by SIGTERM/SIGINT or done, 1 on a failure (the agent was
revoked, the server cannot be reached at enrollment, …), 2 on a usage error.";

/// The Fleetpass reference agent: enroll this host into a fleet, then run its scans.
#[derive(Debug, Parser)]
#[command(version, about, after_help = AFTER_HELP)]
struct Cli {
    /// The state file (agent id and secret; created 0600). Default:
    /// $XDG_STATE_HOME/fleetpass-agent/state.json or ~/.local/state/fleetpass-agent/state.json.
    #[arg(
        long,
        global = true,
        env = "FLEETPASS_AGENT_STATE",
        value_name = "FILE"
    )]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll into a fleet with a one-time enrollment token and save the credentials.
    /// A server where nothing answers is reported at once; an overloaded one is retried.
    #[command(after_help = "Examples:\n  \
                            fleetpass-agent enroll --server https://fleetpass.example.com --token fpe_…\n  \
                            FLEETPASS_SERVER=http://127.0.0.1:8080 FLEETPASS_ENROLLMENT_TOKEN=fpe_… fleetpass-agent enroll --hostname scanner-01\n  \
                            fleetpass-agent enroll --server … --token fpe_… --label role=db --label site=fra1\n  \
                            fleetpass-agent enroll --force --server … --token fpe_…   # re-enroll (a revoked agent)")]
    Enroll {
        /// The server's base URL, e.g. https://fleetpass.example.com.
        #[arg(long, env = "FLEETPASS_SERVER")]
        server: String,
        /// The fleet's enrollment token (fpe_…).
        #[arg(long, env = "FLEETPASS_ENROLLMENT_TOKEN", hide_env_values = true)]
        token: String,
        /// The host name to enroll as (default: this host's). Results name the asset by
        /// it, with the host's own name beside it as `osHostname`.
        #[arg(long)]
        hostname: Option<String>,
        /// A label for the agent, KEY=VALUE (repeatable, at most 32): keys 1-63 of
        /// a-z 0-9 . _ - / (starting and ending with a letter or digit), values 1-63 of
        /// A-Z a-z 0-9 . _ -. The enrollment token's labels win on the same key.
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Replace an existing state file (its agent keeps existing on the server).
        #[arg(long)]
        force: bool,
    },
    /// Run: heartbeat, claim scans, scan this host, send results; stop on SIGTERM.
    #[command(after_help = "Examples:\n  \
                            fleetpass-agent run\n  \
                            FLEETPASS_AGENT_LOG=debug fleetpass-agent run --poll-seconds 5 --heartbeat-seconds 30")]
    Run {
        /// Seconds a check-in waits for work (a long-poll; the server may hold it less).
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
        poll_seconds: u64,
        /// Seconds between heartbeats (they report the version; check-ins keep the
        /// agent present).
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=3600))]
        heartbeat_seconds: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = std::env::var("FLEETPASS_AGENT_LOG").unwrap_or_else(|_| "info".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let path = cli.state.unwrap_or_else(state::default_path);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleetpass-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Enroll {
                server,
                token,
                hostname,
                labels,
                force,
            } => enroll(&path, &server, &token, hostname, &labels, force).await,
            Command::Run {
                poll_seconds,
                heartbeat_seconds,
            } => {
                let state = State::load(&path)?;
                let intervals = (
                    Duration::from_secs(poll_seconds),
                    Duration::from_secs(heartbeat_seconds),
                );
                tokio::select! {
                    result = run(state, intervals) => result,
                    signal = shutdown_signal() => {
                        tracing::info!(signal = signal?, "stopping");
                        Ok(())
                    }
                }
            }
        }
    });
    // A scan still running on a blocking thread is abandoned, not awaited: the server
    // fails the scan at its deadline, and a stop must not wait for a walk of /etc.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetpass-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() -> anyhow::Result<&'static str> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        _ = term.recv() => Ok("SIGTERM"),
        _ = tokio::signal::ctrl_c() => Ok("SIGINT"),
    }
}

/// One `--label KEY=VALUE`, checked by the server's own rules so that a typo is a
/// usage error before anything is sent.
fn parse_label(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("`{raw}` is not KEY=VALUE (e.g. role=db)"))?;
    LabelKey::new(key).map_err(|e| format!("the key `{key}` {e}"))?;
    LabelValue::new(value).map_err(|e| format!("the value `{value}` {e}"))?;
    Ok((key.to_owned(), value.to_owned()))
}

/// The `--label`s as one set: each key once, at most [`MAX_LABELS`].
fn labels_of(raw: &[(String, String)]) -> anyhow::Result<Labels> {
    let mut seen = std::collections::BTreeSet::new();
    if let Some((key, _)) = raw.iter().find(|(k, _)| !seen.insert(k.as_str())) {
        anyhow::bail!("--label {key}=… is given twice; give each key once");
    }
    if raw.len() > MAX_LABELS {
        anyhow::bail!(
            "{} --label flags; at most {MAX_LABELS} are allowed",
            raw.len()
        );
    }
    Labels::parse(raw.iter().map(|(k, v)| (k, v))).map_err(|e| anyhow::anyhow!("--label: {e}"))
}

async fn enroll(
    path: &Path,
    server: &str,
    token: &str,
    hostname: Option<String>,
    labels: &[(String, String)],
    force: bool,
) -> anyhow::Result<()> {
    if !(server.starts_with("https://") || server.starts_with("http://")) {
        anyhow::bail!("--server must be an http(s) URL, e.g. https://fleetpass.example.com");
    }
    let labels = labels_of(labels)?;
    // A typo is caught here, by the checksum, before the token goes anywhere.
    let token = PlainSecret::parse_kind(token.trim(), SecretKind::Enrollment)
        .map_err(|e| anyhow::anyhow!("{}", e.refusal(SecretKind::Enrollment)))?;
    if path.exists() && !force {
        anyhow::bail!(
            "{} already holds an enrolled agent; pass --force to replace it",
            path.display()
        );
    }
    // Trimmed as the server keeps it, so the asset name matches the agent's.
    let hostname = hostname
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|| Host::default().hostname());
    let platform = format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH);
    let client = Client::new(server)?;
    let enrolled = client.enroll(&token, &hostname, &platform, &labels).await?;
    let secret = PlainSecret::parse_kind(&enrolled.agent_secret, SecretKind::Agent)
        .map_err(|e| anyhow::anyhow!("the server's agent secret {e}"))?;
    let state = State {
        server: server.trim_end_matches('/').to_owned(),
        agent_id: enrolled.agent_id,
        fleet_id: enrolled.fleet_id,
        secret,
        hostname: Some(hostname.clone()),
    };
    state.save(path)?;
    println!(
        "enrolled {hostname} as agent {} in fleet {}; credentials saved to {} (mode 0600)",
        state.agent_id,
        state.fleet_id,
        path.display()
    );
    Ok(())
}

/// The agent's loop: one check-in (a long-poll of up to `wait`) outstanding at a time,
/// the next sent as soon as one answers, with jittered backoff only after failures
/// (`Pace`); a heartbeat at start and every `heartbeat_every` reports the version.
/// Returns only when the server refuses the agent's credentials (it was revoked);
/// unavailability is waited out.
async fn run(state: State, (wait, heartbeat_every): (Duration, Duration)) -> anyhow::Result<()> {
    let mut client = Client::new(&state.server)?;
    let host = Host::default();
    let name = state.hostname.clone().unwrap_or_else(|| {
        let own = host.hostname();
        tracing::info!(hostname = %own, "the state file names no enrolled host name (enrolled by an older agent); reporting the host's own");
        own
    });
    tracing::info!(agent = %state.agent_id, fleet = %state.fleet_id, server = %state.server, "agent running");
    let mut next_heartbeat = Instant::now();
    let mut pace = Pace::default();
    loop {
        if Instant::now() >= next_heartbeat {
            match client.heartbeat(&state.agent_id, &state.secret).await {
                Ok(()) => tracing::debug!("heartbeat sent"),
                Err(e) => fatal_or_warn(e, "heartbeat failed")?,
            }
            next_heartbeat = Instant::now() + heartbeat_every;
        }
        let until_heartbeat = next_heartbeat.saturating_duration_since(Instant::now());
        let sent = Instant::now();
        let pause = match client
            .check_in(
                &state.agent_id,
                &state.secret,
                wait.min(until_heartbeat.max(Duration::from_secs(1))),
            )
            .await
        {
            Ok(Some(scan)) => {
                if let Err(e) = work(&mut client, &state, (&host, &name), scan).await {
                    fatal_or_warn(e, "could not complete the scan")?;
                }
                // There may be more queued: check in again at once.
                pace.claimed();
                continue;
            }
            Ok(None) => pace.nothing_after(sent.elapsed()),
            Err(e) => {
                fatal_or_warn(e, "check-in failed")?;
                pace.failed()
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// A refused credential ends the agent; anything else is logged and retried later.
fn fatal_or_warn(e: CallError, what: &str) -> anyhow::Result<()> {
    if let CallError::Unauthorized(_) = e {
        return Err(anyhow::Error::new(e)
            .context("the agent was revoked or its secret is wrong; re-enroll it"));
    }
    tracing::warn!(error = %e, "{what}");
    Ok(())
}

/// Runs one claimed scan within its limits and sends the results.
async fn work(
    client: &mut Client,
    state: &State,
    (host, name): (&Host, &str),
    scan: ClaimedScan,
) -> Result<(), CallError> {
    let limit = Duration::from_secs(u64::from(scan.max_duration().get()) * 60);
    // Stop collecting early enough that the results still arrive within the limit.
    let margin = (limit / 10).clamp(Duration::from_secs(5), Duration::from_secs(120));
    let budget = Budget {
        deadline: Instant::now() + limit.saturating_sub(margin),
        max_assets: scan.max_assets(),
    };
    tracing::info!(scan = %scan.scan_id, scenario = scan.scenario.as_str(), "claimed a scan");
    let (scenario, collector, name) = (scan.scenario, host.clone(), name.to_owned());
    let task =
        tokio::task::spawn_blocking(move || scenarios::run(scenario, &collector, &name, budget));
    // The collectors watch the budget themselves; this bounds one that blocks in a
    // read (a hung rpm, a stuck filesystem): past the limit, sending is pointless.
    let Ok(joined) = tokio::time::timeout(limit, task).await else {
        tracing::error!(scan = %scan.scan_id, "the scan overran maxDurationMinutes; abandoned");
        return Ok(());
    };
    let results = match joined {
        Ok(results) => results,
        Err(e) => {
            tracing::error!(scan = %scan.scan_id, error = %e, "the scan crashed; nothing sent");
            return Ok(());
        }
    };
    // The server's own rules, checked before sending: a refusal would fail the scan.
    if let Err(invalid) = results.validate(budget.max_assets) {
        tracing::error!(path = %invalid.path, message = %invalid.message, "results break the server's rules; not sent");
        return Ok(());
    }
    let counts = results.counts();
    client
        .submit(&state.agent_id, &state.secret, &scan.scan_id, &results)
        .await?;
    tracing::info!(
        scan = %scan.scan_id,
        assets = counts.assets,
        software = counts.software,
        open_ports = counts.open_ports,
        findings = counts.findings,
        "scan completed and results sent"
    );
    Ok(())
}
