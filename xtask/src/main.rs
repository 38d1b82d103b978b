//! `cargo xtask`: project automation — code generation, migrations, a local dev server
//! on Postgres, and benchmarks. Run `cargo xtask --help`.

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

#[derive(Debug, Subcommand)]
enum Task {
    /// Regenerate generated files (docs/openapi.json); `--check` fails if one is stale.
    Codegen {
        /// Only check; write nothing.
        #[arg(long)]
        check: bool,
    },
    /// Apply migrations to DATABASE_URL (default: the local `fleetpass_dev` database).
    Migrate,
    /// Create the local `fleetpass_dev` database if PostgreSQL is reachable, migrate it
    /// and run the server on it.
    Dev,
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Task::Codegen { check } => codegen(check),
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
