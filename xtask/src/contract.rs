//! `cargo xtask contract`: holds the OpenAPI document to what the server does, with
//! Schemathesis (a pinned version from PyPI, installed into a venv by this task) run
//! against the real server on a fresh PostgreSQL database.
//!
//! The run authenticates with every security scheme of the document: one main pass
//! with all phases (examples, coverage, fuzzing, stateful) and every check, the API
//! token as `Authorization: Bearer`, an agent access token for the agent routes and
//! the platform key for `/platform/*`; then two short passes over the tenant routes
//! with the same token as `x-api-key` and as `?api_key=`. Each pass has a time budget,
//! and any failure fails the task.
//!
//! Credentials the fuzzer could destroy are its own throwaway ones: the token every
//! pass uses was made for this run (not the tenant's first admin token), with a rate
//! limit high enough for a fuzzer, and the agent was enrolled for this run.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// The Schemathesis release the project is tested with.
const SCHEMATHESIS: &str = "4.32.5";

/// Options of `cargo xtask contract`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds the main pass may take (the fuzzing and stateful phases fill it).
    pub seconds: u64,
    /// Test cases per operation and phase.
    pub max_examples: u32,
}

/// Where the venv lives: `~/.cache/fleetpass/` when there is a home (it survives
/// `cargo clean`), else the target directory.
fn venv_dir(target: &Path) -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/fleetpass"))
        .unwrap_or_else(|| target.to_path_buf())
        .join(format!("schemathesis-{SCHEMATHESIS}"))
}

/// The `st` executable, installing Schemathesis first if it is missing.
fn ensure_schemathesis(target: &Path) -> anyhow::Result<PathBuf> {
    let venv = venv_dir(target);
    let st = venv.join("bin/st");
    if st.exists() {
        return Ok(st);
    }
    println!(
        "installing schemathesis {SCHEMATHESIS} into {}",
        venv.display()
    );
    let venv_arg = venv.to_string_lossy().into_owned();
    if crate::run("python3", &["-m", "venv", &venv_arg]).is_err() {
        // Debian's python3 makes venvs only with python3-venv installed.
        let _ = std::fs::remove_dir_all(&venv);
        crate::run("apt-get", &["update", "-q"])?;
        crate::run(
            "apt-get",
            &[
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "python3-venv",
            ],
        )?;
        crate::run("python3", &["-m", "venv", &venv_arg])?;
    }
    let pip = venv.join("bin/pip");
    crate::run(
        &pip.to_string_lossy(),
        &[
            "install",
            "--quiet",
            &format!("schemathesis=={SCHEMATHESIS}"),
        ],
    )?;
    Ok(st)
}

/// A database made for this run and dropped afterwards.
struct Database {
    name: String,
}

impl Database {
    fn create() -> anyhow::Result<Self> {
        let name = format!("fleetpass_contract_{}", std::process::id());
        crate::run(
            "createdb",
            &["-h", "127.0.0.1", "-U", "postgres", name.as_str()],
        )
        .context("Failed to create the contract database")?;
        Ok(Self { name })
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("dropdb")
            .args(["-h", "127.0.0.1", "-U", "postgres", "--force"])
            .arg(&self.name)
            .status();
    }
}

/// The server under test; killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn random_b64(bytes: usize) -> anyhow::Result<String> {
    use base64::Engine as _;
    let mut key = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| anyhow::anyhow!("the OS random source failed"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_server(bin: &Path, db: &Database, admin_key: &str, log: &Path) -> anyhow::Result<Server> {
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let log_file = std::fs::File::create(log)?;
    let child = Command::new(bin)
        .arg("serve")
        .env("DATABASE_URL", db.url())
        .env("FLEETPASS_BIND", format!("127.0.0.1:{port}"))
        .env("FLEETPASS_PUBLIC_URL", &base)
        .env("FLEETPASS_MASTER_KEY", random_b64(32)?)
        .env("FLEETPASS_ADMIN_KEY", admin_key)
        // A fuzzer is one client sending thousands of requests a minute; the limits
        // themselves are tested elsewhere (crates/server/tests/guards.rs).
        .env("FLEETPASS_PUBLIC_RATE_LIMIT", "100000")
        .env("FLEETPASS_AUTH_FAILURE_LIMIT", "100000")
        .env("FLEETPASS_LOG", "warn")
        // Schemathesis waits 10 s for an answer; a generated `?wait=3599` check-in is
        // held for as long as the server allows, so allow 1 s here.
        .env("FLEETPASS_MAX_POLL_WAIT", "1")
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("Failed to start {}", bin.display()))?;
    let server = Server { child, base };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!(
        "the server did not listen within 60 s; see {}",
        log.display()
    )
}

/// The credentials of a run.
struct Credentials {
    token: String,
    agent_token: String,
    /// An admin token of a second tenant, for the operations that could destroy the
    /// first one's credentials (`contract_hooks.py`).
    throwaway: String,
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    bearer: &str,
    body: Option<Value>,
    expect: u16,
) -> anyhow::Result<Value> {
    let mut req = client.request(method.clone(), &url).bearer_auth(bearer);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    let text = res.text().await?;
    if status != expect {
        bail!("{method} {url} answered {status} (wanted {expect}): {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A tenant, a throwaway admin token for the fuzzer, a fleet with an enrolled agent,
/// and a completed scan, so operations on real resources have something to find.
async fn provision(base: &str, admin_key: &str) -> anyhow::Result<Credentials> {
    use reqwest::Method;
    let c = reqwest::Client::new();
    let tenant = call(
        &c,
        Method::POST,
        format!("{base}/platform/tenants"),
        admin_key,
        Some(json!({"name": "contract"})),
        201,
    )
    .await?;
    let first = tenant["adminToken"].as_str().unwrap_or_default().to_owned();
    let token = call(
        &c,
        Method::POST,
        format!("{base}/api/admin/tokens"),
        &first,
        Some(
            json!({"name": "schemathesis", "role": "admin", "allEnvironments": true,
            "expiresInDays": 1, "rateLimitPerMinute": 100_000}),
        ),
        201,
    )
    .await?;
    let token = token["token"].as_str().unwrap_or_default().to_owned();
    let fleet = call(
        &c,
        Method::POST,
        format!("{base}/tenant/discovery/fleets"),
        &token,
        Some(json!({"name": "contract"})),
        201,
    )
    .await?;
    let enrolled = c
        .post(format!("{base}/agent/enroll"))
        .json(
            &json!({"enrollmentToken": fleet["enrollmentToken"], "hostname": "contract-01",
            "platform": "linux-x86_64"}),
        )
        .send()
        .await?
        .json::<Value>()
        .await?;
    let agent_token = enrolled["accessToken"]
        .as_str()
        .context("enrollment gave no access token")?
        .to_owned();
    let scan = call(
        &c,
        Method::POST,
        format!("{base}/tenant/scans"),
        &token,
        Some(json!({"fleetId": fleet["fleetId"], "scenario": "inventory"})),
        202,
    )
    .await?;
    let claimed = call(
        &c,
        Method::POST,
        format!("{base}/agent/jobs/claim"),
        &agent_token,
        None,
        200,
    )
    .await?;
    let id = claimed["scanId"]
        .as_str()
        .or(scan["scanId"].as_str())
        .unwrap_or_default();
    call(
        &c,
        Method::POST,
        format!("{base}/agent/scans/{id}/results"),
        &agent_token,
        Some(
            json!({"assets": [{"hostname": "db-1", "ip": "10.0.0.5", "os": "Debian 12",
            "openPorts": [22]}], "findings": []}),
        ),
        200,
    )
    .await?;
    let other = call(
        &c,
        Method::POST,
        format!("{base}/platform/tenants"),
        admin_key,
        Some(json!({"name": "contract-throwaway"})),
        201,
    )
    .await?;
    let first_other = other["adminToken"].as_str().unwrap_or_default().to_owned();
    let throwaway = call(
        &c,
        Method::POST,
        format!("{base}/api/admin/tokens"),
        &first_other,
        Some(
            json!({"name": "schemathesis-throwaway", "role": "admin", "allEnvironments": true,
            "expiresInDays": 1, "rateLimitPerMinute": 100_000}),
        ),
        201,
    )
    .await?;
    let throwaway = throwaway["token"].as_str().unwrap_or_default().to_owned();
    call(
        &c,
        Method::POST,
        format!("{base}/tenant/discovery/fleets"),
        &throwaway,
        Some(json!({"name": "throwaway"})),
        201,
    )
    .await?;
    Ok(Credentials {
        token,
        agent_token,
        throwaway,
    })
}

/// One Schemathesis pass.
struct Pass<'a> {
    name: &'a str,
    /// `[auth.openapi.*]` sections, scheme → (key, value).
    auth: Vec<(&'a str, &'a str, String)>,
    phases: &'a str,
    seconds: u64,
    max_examples: u32,
    /// Extra `st run` arguments (operation filters).
    extra: Vec<&'a str>,
}

fn run_pass(
    st: &Path,
    base: &str,
    work: &Path,
    creds: &Credentials,
    pass: &Pass<'_>,
) -> anyhow::Result<String> {
    let config = work.join(format!("schemathesis-{}.toml", pass.name));
    let mut toml = String::new();
    for (scheme, key, value) in &pass.auth {
        toml.push_str(&format!("[auth.openapi.{scheme}]\n{key} = \"{value}\"\n\n"));
    }
    // Rules no schema can state, under which a schema-valid request is a 422 naming
    // the field: a revocation token's checksum (typos are refused before any lookup),
    // and ids in a body that must name existing resources of the tenant (spec §3:
    // `environmentIds` "all existing"). Only these operations get 422 added to what a
    // valid request may answer.
    for name in [
        "POST /api/public/revocations",
        "POST /api/admin/tokens",
        "POST /tenant/discovery/fleets",
    ] {
        toml.push_str(&format!(
            "\n[[operations]]\ninclude-name = \"{name}\"\n\
             [operations.checks.positive_data_acceptance]\n\
             expected-statuses = [\"2xx\", \"3xx\", \"401\", \"403\", \"404\", \"409\", \"422\", \"429\", \"5xx\"]\n"
        ));
    }
    std::fs::write(&config, toml)?;
    let report = work.join(format!("report-{}", pass.name));
    println!("\n== schemathesis pass `{}` ==", pass.name);
    let mut cmd = Command::new(st);
    cmd.arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{base}/openapi.json")])
        .args(["--checks", "all", "--mode", "all", "--phases", pass.phases])
        .args(["--max-examples", &pass.max_examples.to_string()])
        .args(["--max-time", &pass.seconds.to_string()])
        // One worker: Hypothesis parses lambda sources with `ast` from several threads,
        // which CPython 3.11 (Debian's) can fail at ("AST constructor recursion depth
        // mismatch"); on two cores a second worker bought little anyway.
        .args(["--workers", "1", "--seed", "10", "--request-timeout", "10"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        .args(&pass.extra)
        .env("NO_COLOR", "1")
        // Schemathesis keeps a cache (`.schemathesis/`) in its working directory.
        .current_dir(work)
        .env("SCHEMATHESIS_HOOKS", "contract_hooks")
        .env("PYTHONPATH", crate::root().join("xtask/src"))
        .env("FLEETPASS_CONTRACT_TOKEN", &creds.token)
        .env("FLEETPASS_CONTRACT_THROWAWAY_TOKEN", &creds.throwaway)
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().context("Failed to run schemathesis")?;
    let mut output = String::new();
    if let Some(out) = child.stdout.take() {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            output.push_str(&line);
            output.push('\n');
        }
    }
    let status = child.wait()?;
    std::io::stdout().flush()?;
    if !status.success() {
        bail!(
            "schemathesis pass `{}` failed ({status}); reports in {}",
            pass.name,
            report.display()
        );
    }
    Ok(output)
}

/// One line from a pass's summary: operations tested, test cases, failures.
fn summary(name: &str, output: &str) -> String {
    let after = |label: &str| {
        output
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != label)
            .nth(1)
            .unwrap_or("?")
            .to_owned()
    };
    let tested = output
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("Tested: "))
        .unwrap_or("?");
    format!(
        "pass `{name}`: {tested} operations, test cases: {}; checks: all (--checks all, --mode all)",
        after("Test cases:")
    )
}

/// Runs the contract test.
///
/// # Errors
/// A failed build, setup, or any Schemathesis failure.
pub fn run(rt: &tokio::runtime::Runtime, opts: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    crate::ensure_postgres()?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| crate::root().join("target"), PathBuf::from);
    let st = ensure_schemathesis(&target)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    crate::run(&cargo, &["build", "--quiet", "--package", "fleetpass"])?;
    let bin = target.join("debug/fleetpass");
    let work = target.join("contract");
    std::fs::create_dir_all(&work)?;
    let db = Database::create()?;
    let admin_key = random_b64(24)?;
    let server = start_server(&bin, &db, &admin_key, &work.join("server.log"))?;
    let creds = rt.block_on(provision(&server.base, &admin_key))?;
    let tenant_only = vec!["--include-path-regex", "^/(api/(me|admin)|tenant)/"];
    let passes = [
        Pass {
            name: "bearer",
            auth: vec![
                ("bearer", "bearer", creds.token.clone()),
                ("agent", "bearer", creds.agent_token.clone()),
                ("platformKey", "bearer", admin_key.clone()),
            ],
            phases: "examples,coverage,fuzzing,stateful",
            seconds: opts.seconds,
            max_examples: opts.max_examples,
            extra: Vec::new(),
        },
        Pass {
            name: "x-api-key",
            auth: vec![("apiKeyHeader", "api_key", creds.token.clone())],
            phases: "examples,coverage",
            seconds: opts.seconds / 4 + 1,
            max_examples: 5,
            extra: tenant_only.clone(),
        },
        Pass {
            name: "api_key-query",
            auth: vec![("apiKeyQuery", "api_key", creds.token.clone())],
            phases: "examples,coverage",
            seconds: opts.seconds / 4 + 1,
            max_examples: 5,
            extra: tenant_only,
        },
    ];
    let mut summaries = Vec::new();
    for pass in &passes {
        let output = run_pass(&st, &server.base, &work, &creds, pass).map_err(|e| {
            let log = std::fs::read_to_string(work.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            e.context(format!(
                "server log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ))
        })?;
        summaries.push(summary(pass.name, &output));
    }
    drop(server);
    drop(db);
    println!("\n== contract summary ==\n{}", summaries.join("\n"));
    println!(
        "cargo xtask contract: 0 failures in {} passes, {:.0} s",
        passes.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
