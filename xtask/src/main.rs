//! `cargo xtask`: project automation — code generation, migrations, a local dev server
//! on Postgres, benchmarks and fuzzing. Run `cargo xtask --help`.

mod bench;
mod contract;
mod fuzz;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Fleetpass project automation")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

/// Benchmarks other than the API scenarios.
#[derive(Debug, Subcommand)]
enum BenchKind {
    /// Instructions per `GET /api/me` under `valgrind --tool=callgrind`: Fleetpass
    /// (release, memory store) against the bare server replaying the identical bytes,
    /// and Fleetpass's top functions by inclusive cost. Prints its report; installs
    /// valgrind (apt-get install -y valgrind) if missing. Never part of CI.
    Callgrind {
        /// Requests the count is taken over (the second window's surplus).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
        requests: u64,
        /// Requests before counting starts.
        #[arg(long, default_value_t = 200)]
        warmup: u64,
        /// Functions of the profile to print.
        #[arg(long, default_value_t = 15)]
        top: usize,
    },
    /// Simulate a fleet on one release replica: N agents each holding a long-poll
    /// check-in, scans queued at a fixed rate; reports held agents, statuses,
    /// queued → claimed latency, lastSeenAt staleness, RSS per held agent, CPU and
    /// (with --postgres) transactions per agent-minute. Prints its report.
    Fleet {
        /// Agents to enroll and hold (this process's open-files limit bounds it).
        #[arg(long, default_value_t = 3000)]
        agents: usize,
        /// Agents per fleet.
        #[arg(long, default_value_t = 100)]
        per_fleet: usize,
        /// Seconds of steady state.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Scans queued a second.
        #[arg(long, default_value_t = 2.0)]
        scans_per_second: f64,
        /// The wait each check-in asks for, in seconds.
        #[arg(long, default_value_t = 300)]
        wait: u32,
        /// On a fresh PostgreSQL database instead of in memory.
        #[arg(long)]
        postgres: bool,
        /// Use the `fleetpass` binary in this directory instead of building the
        /// release one (its figures then describe that build).
        #[arg(long, value_name = "DIR")]
        server_dir: Option<std::path::PathBuf>,
        /// Replicas of the server on one PostgreSQL database (more than one needs
        /// --postgres); agents are spread over them round-robin.
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// Agents per simulator process at most (the open-files limit is 20 000).
        #[arg(long, default_value_t = 15_000)]
        per_process: usize,
        /// Renew an agent's access token this many seconds before it expires (the
        /// reference agent: 120).
        #[arg(long, default_value_t = 120)]
        renew_before: u64,
        /// After the steady state, restart the last replica under the full load
        /// (SIGTERM, then started again on its port) and report the reconnect storm.
        #[arg(long)]
        storm: bool,
        /// One fleet of every agent and one `target: all` scan of it at the start of
        /// the steady state (every agent answers its part): request → all claimed, the
        /// merge, memory. --scans-per-second and --per-fleet are ignored.
        #[arg(long)]
        fan_out: bool,
    },
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Benchmark the release server over real sockets, each scenario against a
    /// baseline in the same run (a bare actix-web server; pgbench with the same SQL),
    /// and write docs/BENCHMARKS.md; see docs/PERFORMANCE.md. Installs wrk, oha and
    /// pgbench if missing; takes about 7 minutes once built.
    Bench {
        /// `fleet`: the fleet simulator instead of the API scenarios.
        #[command(subcommand)]
        kind: Option<BenchKind>,
        /// Short rounds, for a smoke check (the report is not written).
        #[arg(long)]
        quick: bool,
        /// Run only this scenario (the report is not written): me-memory, me-postgres,
        /// scan-read, share-open-cold, share-create, enroll, rate-limited.
        #[arg(long, value_name = "NAME")]
        scenario: Option<String>,
        /// Alternating rounds per scenario (at least 3).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Seconds per measured run (default 5; 1 with --quick).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Hold the OpenAPI document to the server: Schemathesis (installed from PyPI into
    /// a venv on first use) against the server on a fresh PostgreSQL database, with
    /// every security scheme, all phases and every check; fails on any failure.
    Contract {
        /// Seconds for the main pass (each of the two other passes gets a quarter).
        #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u64).range(10..))]
        seconds: u64,
        /// Test cases per operation and phase in the main pass.
        #[arg(long, default_value_t = 25)]
        max_examples: u32,
    },
    /// Regenerate generated files (docs/openapi.json); `--check` fails if one is stale.
    Codegen {
        /// Only check; write nothing.
        #[arg(long)]
        check: bool,
    },
    /// Apply migrations to DATABASE_URL (default: the local `fleetpass_dev` database).
    Migrate,
    /// A simulator process of `bench fleet` (started by it; its plan on stdin).
    #[command(hide = true)]
    BenchFleetAgents,
    /// Create the local `fleetpass_dev` database if PostgreSQL is reachable, migrate it
    /// and run the server on it.
    Dev,
    /// Fuzz the parsers and the API (cargo-fuzz; see fuzz/README.md): build the targets
    /// once, run each for a bounded time over its committed corpus, fail on any crash.
    Fuzz {
        /// Seconds each target runs.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
        seconds: u64,
        /// Run only this target (repeatable); all by default.
        #[arg(long = "target")]
        targets: Vec<String>,
        /// Keep the new inputs a run finds in fuzz/corpus/ (by default they go to a
        /// scratch directory, so CI leaves the committed corpus alone).
        #[arg(long)]
        grow_corpus: bool,
    },
    /// Run the whole test suite: make sure PostgreSQL is up and Debian's Chromium is
    /// installed (for the browser test), then `cargo test --workspace` (doctests
    /// included) and every `fleetpass-domain` example.
    Test {
        /// Passed on to `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn codegen(check: bool) -> anyhow::Result<()> {
    let path = root().join("docs/openapi.json");
    // JSON has no comments: the file says it is generated in `info.x-generated`.
    let fresh = fleetpass_http::openapi::committed_json();
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == fresh {
        println!("docs/openapi.json is up to date");
        return Ok(());
    }
    if check {
        bail!("docs/openapi.json is stale: run `cargo xtask codegen`");
    }
    std::fs::write(&path, fresh).with_context(|| format!("Failed to write {}", path.display()))?;
    println!("wrote docs/openapi.json");
    Ok(())
}

/// The server's admin database URL and the dev database URL beside it.
fn dev_urls() -> (String, String) {
    let admin = std::env::var("DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let dev = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        format!("{base}/fleetpass_dev")
    });
    (admin, dev)
}

async fn provision(admin: &str, dev: &str) -> anyhow::Result<()> {
    let name = dev.rsplit('/').next().unwrap_or("fleetpass_dev");
    fleetpass_store_postgres::admin::ensure_database(admin, name)
        .await
        .with_context(|| {
            format!("Failed to create database {name}: is PostgreSQL running on {admin}?")
        })?;
    let applied = fleetpass_store_postgres::run_migrations(dev)
        .await
        .context("Failed to apply migrations")?;
    println!("database {name} ready ({applied} migration(s) applied)");
    Ok(())
}

/// The dev database's master key file (`target/fleetpass-dev.key`), made on first
/// use: the dev database outlives one server run, so its signing keys need a key that
/// does too. Never use it anywhere else.
fn dev_master_key() -> anyhow::Result<PathBuf> {
    use base64::Engine as _;
    let path = root().join("target/fleetpass-dev.key");
    if !path.exists() {
        std::fs::create_dir_all(root().join("target"))?;
        let mut key = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .map_err(|_| anyhow::anyhow!("the OS random source failed"))?;
        std::fs::write(&path, base64::engine::general_purpose::STANDARD.encode(key))?;
        println!("made a dev master key at {}", path.display());
    }
    Ok(path)
}

/// Runs `program` with `args`, failing unless it succeeds.
fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("Failed to run {program}"))?;
    if !status.success() {
        bail!("{program} {} exited with {status}", args.join(" "));
    }
    Ok(())
}

fn postgres_up() -> bool {
    Command::new("pg_isready")
        .args(["-h", "127.0.0.1", "-p", "5432", "-q"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts the machine's PostgreSQL cluster if it is down (the command the machines'
/// docs give), and waits for it.
fn ensure_postgres() -> anyhow::Result<()> {
    if postgres_up() || std::env::var_os("TEST_DATABASE_URL").is_some() {
        return Ok(());
    }
    println!("PostgreSQL is down; starting it");
    let version = std::fs::read_dir("/etc/postgresql")
        .context("PostgreSQL is not installed here (no /etc/postgresql); set TEST_DATABASE_URL")?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .context("no PostgreSQL cluster under /etc/postgresql")?;
    run(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &version, "main", "start"],
    )?;
    for _ in 0..30 {
        if postgres_up() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    bail!("PostgreSQL did not come up on 127.0.0.1:5432")
}

/// Installs Debian's Chromium for the browser test, if it is missing.
fn ensure_chromium() -> anyhow::Result<()> {
    if Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    println!("installing Debian's chromium for the browser test");
    run("apt-get", &["update", "-q"])?;
    run(
        "apt-get",
        &["install", "-y", "-q", "--no-install-recommends", "chromium"],
    )
}

fn test(args: &[String]) -> anyhow::Result<()> {
    ensure_postgres()?;
    ensure_chromium()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut all = vec!["test", "--workspace"];
    all.extend(args.iter().map(String::as_str));
    let status = Command::new(&cargo)
        .args(&all)
        .current_dir(root())
        .status()
        .context("Failed to run cargo test")?;
    if !status.success() {
        bail!("the test suite failed");
    }
    run_domain_examples(&cargo)
}

/// Runs every example of `fleetpass-domain` (`cargo test` only builds them): they are
/// the embedder's documentation, and each asserts what it shows.
fn run_domain_examples(cargo: &str) -> anyhow::Result<()> {
    let dir = root().join("crates/domain/examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("Failed to list {}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".rs"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    for name in names {
        println!("running example fleetpass-domain/{name}");
        let status = Command::new(cargo)
            .args(["run", "-q", "-p", "fleetpass-domain", "--example", &name])
            .current_dir(root())
            .status()
            .with_context(|| format!("Failed to run the {name} example"))?;
        if !status.success() {
            bail!("the fleetpass-domain example {name} failed");
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Task::BenchFleetAgents => bench::fleet::child(),
        Task::Codegen { check } => codegen(check),
        Task::Contract {
            seconds,
            max_examples,
        } => contract::run(
            &rt,
            &contract::Options {
                seconds,
                max_examples,
            },
        ),
        Task::Bench {
            kind:
                Some(BenchKind::Fleet {
                    agents,
                    per_fleet,
                    seconds,
                    scans_per_second,
                    wait,
                    postgres,
                    server_dir,
                    replicas,
                    per_process,
                    renew_before,
                    storm,
                    fan_out,
                }),
            ..
        } => bench::fleet::run(
            &bench::fleet::FleetOptions {
                agents,
                per_fleet,
                seconds,
                scans_per_second,
                wait,
                postgres,
                replicas,
                per_process,
                renew_before,
                storm,
                fan_out,
            },
            server_dir.as_deref(),
        ),
        Task::Bench {
            kind:
                Some(BenchKind::Callgrind {
                    requests,
                    warmup,
                    top,
                }),
            ..
        } => bench::callgrind::run(&bench::callgrind::Options {
            requests: usize::try_from(requests)?,
            warmup: usize::try_from(warmup)?,
            top,
        }),
        Task::Bench {
            kind: None,
            quick,
            scenario,
            rounds,
            seconds,
        } => bench::run(&bench::Options {
            quick,
            scenario,
            rounds,
            seconds: seconds.unwrap_or(if quick { 1 } else { 5 }),
        }),
        Task::Test { args } => test(&args),
        Task::Fuzz {
            seconds,
            targets,
            grow_corpus,
        } => fuzz::run(
            &root(),
            &fuzz::Options {
                seconds,
                targets,
                grow_corpus,
            },
        ),
        Task::Migrate => {
            let (admin, dev) = dev_urls();
            rt.block_on(provision(&admin, &dev))
        }
        Task::Dev => {
            let (admin, dev) = dev_urls();
            rt.block_on(provision(&admin, &dev))?;
            let master_key = dev_master_key()?;
            let status =
                Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
                    .args(["run", "--package", "fleetpass", "--", "serve"])
                    .env("DATABASE_URL", &dev)
                    .env("FLEETPASS_MASTER_KEY_FILE", &master_key)
                    .current_dir(root())
                    .status()
                    .context("Failed to run the server")?;
            if !status.success() {
                bail!("the server exited with {status}");
            }
            Ok(())
        }
    }
}
