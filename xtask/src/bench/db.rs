//! The benchmark's throwaway PostgreSQL database (`fleetpass_bench_*`, dropped when
//! the run ends, even on failure), and the settings the report shows. SQL goes through
//! `psql`, the client pgbench comes with.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

/// The server the benchmark uses: the machine's, trust authentication.
pub const HOST: &str = "127.0.0.1";
/// Its port.
pub const PORT: &str = "5432";
/// Its user.
pub const USER: &str = "postgres";

/// The settings that shape these numbers: memory, durability (every write scenario
/// waits for a WAL flush unless `synchronous_commit` is off), connections, planning.
const SETTINGS: &[&str] = &[
    "server_version",
    "max_connections",
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "synchronous_commit",
    "fsync",
    "wal_sync_method",
    "full_page_writes",
    "commit_delay",
    "wal_buffers",
    "max_wal_size",
    "checkpoint_timeout",
    "random_page_cost",
    "jit",
];

/// A throwaway database, dropped on drop.
pub struct Database {
    /// Its name.
    pub name: String,
    psql: PathBuf,
}

fn psql_on(psql: &PathBuf, database: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new(psql)
        .args(["-h", HOST, "-p", PORT, "-U", USER, "-d", database])
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .context("Failed to run psql")?;
    if !out.status.success() {
        bail!(
            "psql on {database} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Database {
    /// Creates `fleetpass_bench_<tag>_<unix time>_<pid>`.
    ///
    /// # Errors
    /// When PostgreSQL refuses.
    pub fn create(psql: PathBuf, tag: &str) -> anyhow::Result<Self> {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let name = format!("fleetpass_bench_{tag}_{since}_{}", std::process::id());
        psql_on(&psql, "postgres", &format!("CREATE DATABASE {name}"))
            .with_context(|| format!("Failed to create database {name}"))?;
        println!("created database {name} (dropped at the end)");
        Ok(Self { name, psql })
    }

    /// The URL the server connects with.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@{HOST}:{PORT}/{}", self.name)
    }

    /// Runs `sql`, returning what it prints (unaligned, tuples only).
    ///
    /// # Errors
    /// When the statement fails.
    pub fn sql(&self, sql: &str) -> anyhow::Result<String> {
        psql_on(&self.psql, &self.name, sql)
    }

    /// The settings that shape the numbers, as (name, value).
    ///
    /// # Errors
    /// When the query fails.
    pub fn settings(&self) -> anyhow::Result<Vec<(String, String)>> {
        let names = SETTINGS
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(",");
        let out = self.sql(&format!(
            "SELECT n, current_setting(n) FROM unnest(ARRAY[{names}]) n"
        ))?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        match psql_on(
            &self.psql,
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            Ok(_) => println!("dropped database {}", self.name),
            Err(e) => eprintln!("could not drop database {}: {e:#}", self.name),
        }
    }
}
