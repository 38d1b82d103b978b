//! `fleetpass`: the server binary. Reads configuration, wires a store to the HTTP
//! adapter and runs; also applies migrations and creates tenants from the command line.

mod config;
mod passport;

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use fleetpass_domain::audit::AuditActor;
use fleetpass_domain::identity::TenantName;
use fleetpass_http::{AppState, Guards};
use fleetpass_ports::Conflict;
use fleetpass_ports::idempotency::IdempotencyStore;
use fleetpass_ports::keys::{KeyError, KeyRing, MasterKey};
use fleetpass_ports::ratelimit::{Leased, RateLimiter, WithFallback};
use fleetpass_ports::service::{ServiceError, tenants};
use fleetpass_ports::store::StoredSigningKey;
use fleetpass_ports::system::RingSecrets;
use fleetpass_ports::wakeups::{LocalWakeups, Wakeups as _};
use fleetpass_ports::{Deps, SecretGen, Store};
use fleetpass_store_memory::{MemoryIdempotency, MemoryRateLimiter};

use crate::config::{Config, LogFormat, RateLimitBackend};

/// The top-level help: what Fleetpass is, in a user's words (the crate's doc comment
/// is for developers).
const ABOUT: &str =
    "Fleetpass: a multi-tenant control plane for discovery fleets, served as a REST API.";

const LONG_ABOUT: &str = "\
Fleetpass: a multi-tenant control plane for discovery fleets, served as a REST API.

Operators create fleets; agents enroll into them with one-time enrollment tokens, claim
scans of their environment and send the results; the results are signed into passports
and handed to outside auditors through expiring share links. Everything is guarded by
tenant-scoped API tokens with roles and environment scopes.

Without a subcommand, `fleetpass` serves the API (as `fleetpass serve`). Configuration
is by environment variable (DATABASE_URL, FLEETPASS_BIND, FLEETPASS_MASTER_KEY, …; see
README.md). The API reference is at /docs on a running server, the OpenAPI document at
/openapi.json.";

const EXAMPLES: &str = "\
Examples:
  fleetpass                                   # serve in memory on 127.0.0.1:8080; prints a demo admin token
  fleetpass keys new-master-key > master.key  # once; keep it: it opens the signing keys
  DATABASE_URL=postgres://postgres@127.0.0.1/fleetpass FLEETPASS_MASTER_KEY_FILE=master.key fleetpass serve
  fleetpass migrate                           # apply migrations to DATABASE_URL
  fleetpass tenant create --name acme         # a tenant and its admin token, straight in the store
  fleetpass keys rotate                       # a new signing key; the old ones still verify
  fleetpass help tenant create                # help of one subcommand

Logs go to stderr: FLEETPASS_LOG sets the filter (default `info`, e.g. `info,fleetpass_http=debug`),
FLEETPASS_LOG_FORMAT=json makes them one JSON object a line. The agent, `fleetpass-agent`, has its
own help and logs by FLEETPASS_AGENT_LOG.";

/// The command line.
#[derive(Debug, Parser)]
#[command(version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    #[command(
        long_about = "Run the HTTP server (the default when no subcommand is given). In memory \
                      mode (no DATABASE_URL) a demo tenant is created and its admin token printed \
                      once. With DATABASE_URL, pending migrations are applied first unless \
                      FLEETPASS_MIGRATE=off. Stops gracefully on SIGTERM or SIGINT.",
        after_help = "Examples:\n  \
                      fleetpass serve\n  \
                      FLEETPASS_BIND=0.0.0.0:8080 FLEETPASS_PUBLIC_URL=https://fleetpass.example.com fleetpass serve\n  \
                      DATABASE_URL=postgres://postgres@127.0.0.1/fleetpass FLEETPASS_MASTER_KEY_FILE=/etc/fleetpass/master.key fleetpass serve"
    )]
    Serve,
    /// Apply pending database migrations (needs DATABASE_URL).
    #[command(after_help = "Example:\n  \
                            DATABASE_URL=postgres://postgres@127.0.0.1/fleetpass fleetpass migrate")]
    Migrate,
    /// Manage tenants straight in the store.
    #[command(after_help = "Example:\n  \
                            DATABASE_URL=postgres://postgres@127.0.0.1/fleetpass fleetpass tenant create --name acme")]
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage the keys that sign access tokens (needs DATABASE_URL; `rotate` also the master key).
    #[command(after_help = "Examples:\n  \
                            fleetpass keys new-master-key > master.key\n  \
                            DATABASE_URL=postgres://… fleetpass keys list\n  \
                            FLEETPASS_MASTER_KEY_FILE=master.key DATABASE_URL=postgres://… fleetpass keys rotate")]
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Verify scan passports offline (an auditor's command; reads no server configuration).
    Passport {
        #[command(subcommand)]
        command: passport::PassportCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a new signing key; it signs from now on, older keys still verify. Refused,
    /// with nothing written, when the master key does not open the keys in use.
    #[command(
        after_help = "Example:\n  DATABASE_URL=postgres://… FLEETPASS_MASTER_KEY_FILE=master.key fleetpass keys rotate"
    )]
    Rotate,
    /// List the signing keys: which one signs, which are retired, and (with a master key
    /// configured) which ones it cannot open.
    #[command(
        after_help = "Examples:\n  DATABASE_URL=postgres://… fleetpass keys list\n  \
                            DATABASE_URL=postgres://… FLEETPASS_MASTER_KEY_FILE=master.key fleetpass keys list"
    )]
    List,
    /// Retire a key: tokens it signed stop verifying. Needs no master key.
    #[command(
        after_help = "Example:\n  DATABASE_URL=postgres://… fleetpass keys retire bDKZhZaovbiIeFs4"
    )]
    Retire {
        /// The key id, as `keys list` shows it.
        kid: String,
    },
    /// Print a new random master key (base64), for FLEETPASS_MASTER_KEY.
    #[command(
        after_help = "Example:\n  (umask 077; fleetpass keys new-master-key > /etc/fleetpass/master.key)   # once; then FLEETPASS_MASTER_KEY_FILE=/etc/fleetpass/master.key\n\n\
                      Make it once and keep it: it opens the signing keys stored in the database. A new\n\
                      key on every start locks the server out of the keys it made before."
    )]
    NewMasterKey,
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its admin token once (needs DATABASE_URL: in memory mode
    /// the tenant would vanish when the command exits; a memory-mode server makes a
    /// `demo` tenant on its own, and `POST /platform/tenants` makes more).
    #[command(after_help = "Example:\n  \
                            DATABASE_URL=postgres://postgres@127.0.0.1/fleetpass fleetpass tenant create --name acme")]
    Create {
        /// The tenant's name (1-100 characters, unique).
        #[arg(long)]
        name: String,
    },
}

/// The exit code of every failure of a server command, configuration or runtime alike
/// (README, "Exit codes"): 0 is success, 1 is left to `passport verify`'s verdict.
const FAILED: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        // Commands that take no server configuration ignore it, so that neither a
        // setting meant for the server nor a typo in one keeps them from running.
        // An auditor's command:
        Some(Command::Passport { command }) => return passport::run(command),
        // The key the others need, printed before any of them is set:
        Some(Command::Keys {
            command: KeysCommand::NewMasterKey,
        }) => {
            let key = RingSecrets::default().random_32();
            println!("{}", base64::engine::general_purpose::STANDARD.encode(key));
            return ExitCode::SUCCESS;
        }
        command => command,
    };
    let config = match Config::from_vars(std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fleetpass: invalid configuration: {e}");
            return ExitCode::from(FAILED);
        }
    };
    // Only what seals or opens private keys needs the master key: `keys list` and
    // `keys retire` read and mark public data (the recovery from a lost master key
    // retires keys without one).
    let needs_keys = matches!(
        &command,
        None | Some(Command::Serve)
            | Some(Command::Keys {
                command: KeysCommand::Rotate
            })
    );
    if needs_keys && config.database_url.is_some() && config.master_key.is_none() {
        eprintln!(
            "fleetpass: invalid configuration: FLEETPASS_MASTER_KEY: required with DATABASE_URL, so that signing keys \
             survive restarts (set FLEETPASS_MASTER_KEY or FLEETPASS_MASTER_KEY_FILE; `fleetpass keys new-master-key` makes one)"
        );
        return ExitCode::from(FAILED);
    }
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleetpass: cannot start the async runtime: {e}");
            return ExitCode::from(FAILED);
        }
    };
    let result = runtime.block_on(async {
        match command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(&config).await,
            Command::Tenant {
                command: TenantCommand::Create { name },
            } => create_tenant(&config, &name).await,
            Command::Keys { command } => keys(&config, command).await,
            Command::Passport { .. } => Ok(()), // run above, before the configuration
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetpass: {e:#}");
            ExitCode::from(FAILED)
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log_filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // The server has no other way to report; a second init (tests) is harmless.
    let _ = match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            // The request span's fields once (`span`), not again in a `spans` list: a
            // request has one span.
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let url = config
        .database_url
        .as_deref()
        .context("DATABASE_URL is not set: there is nothing to migrate")?;
    let applied = fleetpass_store_postgres::run_migrations(url)
        .await
        .context("Failed to apply migrations")?;
    println!("applied {applied} migration(s)");
    Ok(())
}

async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    match &config.database_url {
        None => Ok(Arc::new(fleetpass_store_memory::MemoryStore::new())),
        Some(url) => Ok(Arc::new(open_postgres(config, url).await?)),
    }
}

/// The Postgres store, migrated first unless that is turned off.
async fn open_postgres(
    config: &Config,
    url: &str,
) -> anyhow::Result<fleetpass_store_postgres::PgStore> {
    if config.migrate_on_start {
        let applied = fleetpass_store_postgres::run_migrations(url)
            .await
            .context("Failed to apply migrations")?;
        tracing::info!(applied, "migrations checked");
    }
    // Connecting is lazy: a database that is down now makes requests answer 503
    // until it is back, rather than keeping the server from starting.
    fleetpass_store_postgres::PgStore::connect(url, config.pool_size)
        .context("Invalid DATABASE_URL")
}

/// What `serve` runs on: the store, idempotency records and rate-limit counts. In
/// Postgres mode all three share one pool; rate limits are shared by every replica
/// unless `FLEETPASS_RATE_LIMIT_BACKEND=memory`, spent in leases so that most requests
/// are decided in process (`ratelimit::Leased`), and fall back to this process's own
/// counts while the database is unreachable (docs/OPERATIONS.md).
///
/// In Postgres mode it also starts the store's background work: the listener that keeps
/// the authentication cache in step with other replicas, and the batched `lastUsedAt`
/// writes (the returned `PgStore` writes the last batch at shutdown).
async fn open_backends(config: &Config) -> anyhow::Result<Backends> {
    let local = Arc::new(MemoryRateLimiter::new());
    let Some(url) = &config.database_url else {
        return Ok(Backends {
            store: Arc::new(fleetpass_store_memory::MemoryStore::new()),
            idempotency: Arc::new(MemoryIdempotency::new()),
            limiter: local,
            wakeups: LocalWakeups::new(config.max_held_polls),
            postgres: None,
        });
    };
    let pg = open_postgres(config, url).await?;
    // Other replicas' revocations reach this one's authentication cache as they commit,
    // and every replica's scans, revocations and fleet deletions its held check-ins.
    let wakeups = LocalWakeups::relayed(config.max_held_polls);
    let relay = fleetpass_store_postgres::Relay {
        wakeups: wakeups.clone(),
        clock: Arc::new(fleetpass_ports::system::SystemClock),
    };
    let (watcher, watched) = (pg.clone(), url.clone());
    tokio::spawn(async move { watcher.watch_changes(&watched, relay).await });
    let writer = pg.clone();
    tokio::spawn(async move { writer.write_batches_periodically().await });
    let limiter: Arc<dyn RateLimiter> = match config.rate_limit_backend {
        RateLimitBackend::Postgres => Arc::new(Leased::new(Arc::new(WithFallback::new(
            Arc::new(pg.clone()),
            local,
        )))),
        RateLimitBackend::Memory => local,
    };
    Ok(Backends {
        store: Arc::new(pg.clone()),
        idempotency: Arc::new(pg.clone()),
        limiter,
        wakeups,
        postgres: Some(pg),
    })
}

/// The ports `serve` runs on, and the PostgreSQL store behind them, if any.
struct Backends {
    store: Arc<dyn Store>,
    idempotency: Arc<dyn IdempotencyStore>,
    limiter: Arc<dyn RateLimiter>,
    wakeups: LocalWakeups,
    postgres: Option<fleetpass_store_postgres::PgStore>,
}

/// Raises this process's open-files soft limit to its hard limit (every held check-in
/// is an open socket) and logs what it got: the hard limit bounds the connections one
/// replica can hold, which is what `FLEETPASS_MAX_HELD_POLLS` must stay below.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => tracing::info!(
            open_files = soft,
            "open-files limit raised to the hard limit"
        ),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
    }
}

/// Waits for SIGTERM or SIGINT (either stops the server gracefully).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                tracing::warn!("cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// How often expired idempotency records and ended rate-limit windows are deleted.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Purges the guard's expired state for as long as the server runs. Every replica
/// purges; deleting what is expired is the same whoever does it.
fn spawn_purge(guards: Guards, deps: Deps) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        loop {
            tick.tick().await;
            match guards.purge(deps.now()).await {
                Ok((0, _)) => {}
                Ok((records, _)) => tracing::info!(records, "purged expired idempotency records"),
                Err(e) => tracing::warn!(error = %e, "guard purge failed; retrying next tick"),
            }
        }
    });
}

async fn create_tenant(config: &Config, name: &str) -> anyhow::Result<()> {
    if config.database_url.is_none() {
        anyhow::bail!(
            "DATABASE_URL is not set: a tenant created in memory would vanish when this command exits"
        );
    }
    let name = TenantName::new(name).map_err(|e| anyhow::anyhow!("--name {e}"))?;
    let deps = Deps::system(open_store(config).await?);
    let created = tenants::create_tenant(&deps, name.clone(), AuditActor::Platform)
        .await
        .map_err(|e| match e {
            ServiceError::Conflict {
                constraint: Conflict::TenantName,
            } => anyhow::anyhow!(
                "Failed to create the tenant: a tenant named \"{name}\" already exists; pick another --name"
            ),
            other => anyhow::anyhow!("Failed to create the tenant: {other}"),
        })?;
    println!("tenant {} ({})", created.tenant.name, created.tenant.id);
    println!("admin token (shown once): {}", created.admin_token.expose());
    Ok(())
}

/// The master key: the configured one, or (memory mode only, checked in `main`) a
/// random one that lives as long as the process, like the data it protects.
fn master_key(config: &Config, secrets: &dyn SecretGen) -> MasterKey {
    config
        .master_key
        .clone()
        .unwrap_or_else(|| MasterKey::from_bytes(secrets.random_32()))
}

async fn keys(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    if config.database_url.is_none() {
        anyhow::bail!(
            "DATABASE_URL is not set: in memory mode keys live and die with the server process"
        );
    }
    let deps = Deps::system(open_store(config).await?);
    match command {
        KeysCommand::Rotate => {
            let master = master_key(config, deps.secrets.as_ref());
            let kid = fleetpass_ports::keys::add_key(
                deps.store.as_ref(),
                deps.secrets.as_ref(),
                &master,
                deps.now(),
            )
            .await
            .map_err(explain_key_error)
            .context("Failed to add a signing key")?;
            println!(
                "new signing key {kid}; every replica signs with it within a minute, older keys still verify"
            );
        }
        KeysCommand::List => {
            let keys = deps
                .store
                .list_signing_keys()
                .await
                .context("Failed to list signing keys")?;
            print!("{}", list_keys(&keys, config.master_key.as_ref()));
        }
        KeysCommand::Retire { kid } => {
            deps.store
                .retire_signing_key(&kid, deps.now())
                .await
                .context("Failed to retire the key")?;
            println!("retired {kid}");
        }
        KeysCommand::NewMasterKey => {} // run in `main`, before the configuration
    }
    Ok(())
}

/// How to recover from a master key that does not open the keys in use: the refusal
/// names what is wrong, this says what to do.
fn explain_key_error(e: KeyError) -> anyhow::Error {
    match e {
        KeyError::WrongMasterKey { ref kid } => anyhow::anyhow!(
            "{e}. Start with the master key the signing keys were sealed with. If key {kid} was \
             added under a wrong master key, retire it: `fleetpass keys retire {kid}`. If the \
             master key is lost, retire every key `fleetpass keys list` shows as active; the next \
             start makes a fresh one (tokens signed by retired keys stop verifying). See \
             docs/OPERATIONS.md, \"Signing keys\""
        ),
        other => other.into(),
    }
}

/// What `keys list` prints: one line a key, oldest first, times in RFC 3339, the key
/// that signs marked, and with a master key, the keys it cannot open.
fn list_keys(keys: &[StoredSigningKey], master: Option<&MasterKey>) -> String {
    if keys.is_empty() {
        return "no signing keys yet: the first start of `fleetpass serve` makes one\n".to_owned();
    }
    let signing = keys.iter().rev().find(|k| k.retired_at.is_none());
    let rfc3339 = |at: fleetpass_domain::Timestamp| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| at.to_string())
    };
    let mut out = String::new();
    for key in keys {
        let state = match key.retired_at {
            Some(at) => format!("retired {}", rfc3339(at)),
            None if signing.is_some_and(|s| s.kid == key.kid) => "active, signs".to_owned(),
            None => "active, verifies".to_owned(),
        };
        let opens = match master {
            Some(m) if !fleetpass_ports::keys::opens(m, key) => {
                "  (the configured master key cannot open it)"
            }
            _ => "",
        };
        out.push_str(&format!(
            "{}  created {}  {state}{opens}\n",
            key.kid,
            rfc3339(key.created_at)
        ));
    }
    out
}

/// How often overdue scans are failed or expired and due schedules enqueue their scans.
/// Every replica does both; the store moves each scan, and runs each due time, once
/// however many do.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Runs the scan sweeper and the schedule runner for as long as the server runs.
fn spawn_sweeper(deps: Deps, keys: Arc<KeyRing>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            match fleetpass_ports::service::scans::sweep(&deps).await {
                Ok(0) => {}
                Ok(moved) => tracing::info!(moved, "swept overdue scans"),
                Err(e) => tracing::warn!(error = %e, "scan sweep failed; retrying next tick"),
            }
            // Fan-out scans whose last parts the sweep (or a revocation) just ended.
            match fleetpass_ports::service::scans::finish_ready(&deps, &keys).await {
                Ok(0) => {}
                Ok(ended) => tracing::info!(ended, "ended fan-out scans"),
                Err(e) => {
                    tracing::warn!(error = %e, "ending fan-out scans failed; retrying next tick")
                }
            }
            match fleetpass_ports::service::schedules::run_due(&deps).await {
                Ok(0) => {}
                Ok(enqueued) => tracing::info!(enqueued, "enqueued scheduled scans"),
                Err(e) => tracing::warn!(error = %e, "schedule run failed; retrying next tick"),
            }
        }
    });
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.bind;
    // Bound first: an address in use or not allowed stops the server before it migrates,
    // makes keys or hands out a demo token that could never be used.
    let listener = std::net::TcpListener::bind(bind)
        .with_context(|| format!("Failed to bind {bind} (FLEETPASS_BIND)"))?;
    let Backends {
        store,
        idempotency,
        limiter,
        wakeups,
        postgres,
    } = open_backends(&config).await?;
    raise_open_files_limit();
    let mut deps = Deps::system(store);
    deps.wakeups = Arc::new(wakeups.clone());
    let master = master_key(&config, deps.secrets.as_ref());
    let keys = KeyRing::load(
        deps.store.clone(),
        deps.secrets.as_ref(),
        master.clone(),
        &config.http.public_url,
        deps.now(),
    )
    .await
    .map_err(explain_key_error)
    .context("Failed to load the signing keys")?;
    if config.database_url.is_none() {
        let demo = TenantName::new("demo").map_err(|e| anyhow::anyhow!("demo tenant name {e}"))?;
        let created = tenants::create_tenant(&deps, demo, AuditActor::Platform)
            .await
            .map_err(|e| anyhow::anyhow!("Failed to create the demo tenant: {e}"))?;
        let token = created.admin_token.expose();
        let welcome = format!(
            "Fleetpass is running in memory mode: data lives as long as this process.\n\
             Demo tenant admin token (shown once): {token}\n\
             Try: curl -H 'Authorization: Bearer {token}' http://{bind}/api/me\n"
        );
        // One write, and no panic when nobody reads any more: a supervisor (or a test)
        // that took the token and closed the pipe must not stop the server, which
        // `println!` would do on the broken pipe (the socket is bound already).
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(welcome.as_bytes())
            .and_then(|()| stdout.flush());
    }
    if config.database_url.is_some() && !config.public_url_set {
        // Replicas on one database are one service only if they agree on its URL: it is
        // the audience of agent access tokens, and the default differs per bind address.
        tracing::warn!(
            public_url = %config.http.public_url,
            "FLEETPASS_PUBLIC_URL is not set; agent tokens are issued for this replica's own address, so other replicas refuse them; set it to the URL clients use, the same on every replica"
        );
    }
    if let Some(keys) = &config.http.secret_scanning {
        let keys: Vec<&str> = keys.identifiers().collect();
        tracing::info!(?keys, "secret-scanning partner endpoint on");
    }
    let state = actix_web::web::Data::new(AppState {
        deps,
        keys: Arc::new(keys),
        config: config.http,
        guards: Guards {
            idempotency,
            limiter,
            master,
            config: config.guard,
        },
    });
    spawn_purge(state.guards.clone(), state.deps.clone());
    spawn_sweeper(state.deps.clone(), Arc::clone(&state.keys));
    // actix-web's own timeouts do not cut a held check-in: `client_request_timeout`
    // bounds reading a request's head and `keep_alive` the idle time between requests,
    // neither the time a handler takes. Signals are ours, so that held check-ins end
    // (204) the moment a stop begins instead of holding it up for their whole wait.
    let server = actix_web::HttpServer::new(move || fleetpass_http::app(state.clone()))
        .listen(listener)
        .with_context(|| format!("Failed to listen on {bind} (FLEETPASS_BIND)"))?
        .shutdown_timeout(30)
        .disable_signals()
        .run();
    tracing::info!(%bind, "listening");
    let handle = server.handle();
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("stopping: ending held check-ins, finishing requests in flight");
        wakeups.shut_down();
        handle.stop(true).await;
    });
    server.await.context("Server failed")?;
    if let Some(pg) = postgres {
        // The token uses and agent sightings noted since the last periodic write.
        if let Err(e) = pg.write_batches().await {
            tracing::warn!(error = %e, "could not write lastUsedAt/lastSeenAt at shutdown");
        }
    }
    Ok(())
}
