//! The benchmark's Markdown report: the machine, the PostgreSQL settings, and per
//! scenario throughput, ratio, latency at a constant rate and server memory. Written
//! into `docs/BENCHMARKS.md` below a marker line; everything above the marker is
//! hand-written and kept.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

use super::tools::{CONNECTIONS, Tools};
use super::{Options, Outcome, Side};

/// The line that separates the hand-written introduction from the generated report.
pub const MARKER: &str =
    "<!-- Everything below this line is written by `cargo xtask bench`; edit above it. -->";

/// What the numbers were measured on.
pub struct Machine {
    cores: String,
    cpu: String,
    memory: String,
    kernel: String,
    commit: String,
    date: String,
    tools: String,
    rustc: String,
    /// The load averages around the run (filled in by the caller).
    pub load: String,
}

/// The 1-, 5- and 15-minute load averages, from /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(crate::root())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

impl Machine {
    /// Reads the machine's facts from /proc, git and the tools.
    pub fn collect(tools: &Tools) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
            );
        let dirty = !output("git", &["status", "--porcelain"]).is_empty();
        let commit = format!(
            "{}{}",
            output("git", &["rev-parse", "--short=12", "HEAD"]),
            if dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        );
        Self {
            cores: output("nproc", &[]),
            cpu,
            memory,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            commit,
            date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            tools: tools.versions(),
            rustc: output("rustc", &["--version"]),
            load: String::new(),
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn spread(side: &Side) -> String {
    let rates = side.rates();
    let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rates.iter().copied().fold(0.0, f64::max);
    format!("{min:.0}–{max:.0}")
}

fn latency_cells(side: &Side) -> String {
    side.latency.as_ref().map_or_else(
        || "| – | – | –".to_owned(),
        |l| format!("| {:.0} | {} | {}", l.rate, ms(l.p50), ms(l.p99)),
    )
}

/// The generated part of the report.
pub fn render(
    opts: &Options,
    machine: &Machine,
    settings: &[(String, String)],
    outcomes: &[Outcome],
    wall: Duration,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Results\n");
    let _ = writeln!(
        s,
        "Measured {} at commit `{}`: {} rounds of {} s per side (A B A B …, after a warm-up of each), \
         {CONNECTIONS} connections (wrk: 1 thread; pgbench: `-c {CONNECTIONS} -j 1 -M prepared`), \
         release build, servers with {} workers. Whole run: {:.0} s.\n",
        machine.date,
        machine.commit,
        opts.rounds,
        opts.seconds,
        super::workers(),
        wall.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "### Throughput (requests a second; transactions for pgbench)\n"
    );
    let _ = writeln!(
        s,
        "| scenario | Fleetpass median | spread | baseline | baseline median | spread | Fleetpass ÷ baseline |"
    );
    let _ = writeln!(s, "|---|---:|---:|---|---:|---:|---:|");
    // A scenario with two baselines gets a row for each: the ratios side by side.
    for o in outcomes {
        for b in std::iter::once(&o.b).chain(&o.more) {
            let _ = writeln!(
                s,
                "| {} ({}) | {:.0} | {} | {} | {:.0} | {} | {:.2} |",
                o.title,
                o.name,
                o.a.median(),
                spread(&o.a),
                b.label,
                b.median(),
                spread(b),
                o.a.median() / b.median().max(1e-9)
            );
        }
    }
    let both: Vec<&Outcome> = outcomes.iter().filter(|o| !o.more.is_empty()).collect();
    if !both.is_empty() {
        let _ = writeln!(
            s,
            "\n`GET /api/me` against both baselines (Fleetpass ÷ baseline): the bare server \
             doing the real one's per-request chores, and the bare server replaying the \
             identical bytes of a real answer (issue 25's target: ≥ 0.85 of the latter).\n"
        );
        let _ = writeln!(
            s,
            "| scenario | ÷ {} | ÷ identical bytes |",
            both[0].b.label
        );
        let _ = writeln!(s, "|---|---:|---:|");
        for o in both {
            let ratios: Vec<String> = std::iter::once(&o.b)
                .chain(&o.more)
                .map(|b| format!("{:.2}", o.a.median() / b.median().max(1e-9)))
                .collect();
            let _ = writeln!(s, "| {} | {} |", o.name, ratios.join(" | "));
        }
    }
    let _ = writeln!(
        s,
        "\n### Latency at a constant arrival rate of half the median peak (ms)\n\n\
         Fleetpass and the bare actix-web baseline with oha (`-q`, `--latency-correction`); \
         pgbench with `-R` (Poisson arrivals; latency counted from each transaction's scheduled \
         start, the first second of each run left out: it holds the 32 connections' start-up).\n"
    );
    let _ = writeln!(
        s,
        "| scenario | Fleetpass rate | p50 | p99 | baseline rate | p50 | p99 |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    for o in outcomes {
        let _ = writeln!(
            s,
            "| {} {} {} |",
            o.name,
            latency_cells(&o.a),
            latency_cells(&o.b)
        );
        for b in &o.more {
            let _ = writeln!(
                s,
                "| {} (against {}) {} {} |",
                o.name,
                b.label,
                latency_cells(&o.a),
                latency_cells(b)
            );
        }
    }
    let _ = writeln!(s, "\n### Server memory (VmRSS after the scenario)\n");
    let _ = writeln!(s, "| scenario | server | RSS MiB |");
    let _ = writeln!(s, "|---|---|---:|");
    for o in outcomes {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            o.name,
            o.server,
            o.rss_kib
                .map_or_else(|| "?".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
        );
    }
    let _ = writeln!(s, "\n### Every round (requests a second)\n");
    let _ = writeln!(s, "| scenario | side | rounds |");
    let _ = writeln!(s, "|---|---|---|");
    for o in outcomes {
        for side in [&o.a, &o.b].into_iter().chain(&o.more) {
            let rounds: Vec<String> = side.rates().iter().map(|r| format!("{r:.0}")).collect();
            let _ = writeln!(s, "| {} | {} | {} |", o.name, side.label, rounds.join(", "));
        }
    }
    let notes: Vec<String> = outcomes
        .iter()
        .flat_map(|o| o.notes.iter().map(move |n| format!("- {}: {n}", o.name)))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s, "\n### Notes from the run\n\n{}", notes.join("\n"));
    }
    if !settings.is_empty() {
        let _ = writeln!(s, "\n### PostgreSQL settings\n");
        let _ = writeln!(s, "| setting | value |");
        let _ = writeln!(s, "|---|---|");
        for (k, v) in settings {
            let _ = writeln!(s, "| `{k}` | {v} |");
        }
    }
    let _ = writeln!(s, "\n### Machine\n");
    let _ = writeln!(s, "| | |");
    let _ = writeln!(s, "|---|---|");
    let postgres = settings
        .iter()
        .find(|(k, _)| k == "server_version")
        .map_or_else(|| "not used".to_owned(), |(_, v)| format!("PostgreSQL {v}"));
    for (k, v) in [
        ("cores (`nproc`)", &machine.cores),
        ("CPU", &machine.cpu),
        ("memory", &machine.memory),
        ("kernel", &machine.kernel),
        ("database", &postgres),
        ("load average (1, 5, 15 min)", &machine.load),
        ("commit", &machine.commit),
        ("toolchain", &machine.rustc),
        ("load generators", &machine.tools),
    ] {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    s
}

/// Writes `generated` into `path` below [`MARKER`], keeping what is above it (all of
/// a file without the marker; a short introduction for a new file).
///
/// # Errors
/// When the file cannot be written.
pub fn write(path: &Path, generated: &str) -> anyhow::Result<()> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    // No marker yet: the whole file is the introduction.
    let intro = match current.split_once(MARKER) {
        Some((above, _)) => above.to_owned(),
        None if !current.trim().is_empty() => format!("{}\n\n", current.trim_end()),
        None => "# Benchmarks\n\nRun `cargo xtask bench`; see docs/PERFORMANCE.md.\n\n".to_owned(),
    };
    std::fs::write(path, format!("{intro}{MARKER}\n\n{generated}"))
        .with_context(|| format!("Failed to write {}", path.display()))
}
