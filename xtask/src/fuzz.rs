//! `cargo xtask fuzz`: builds the cargo-fuzz targets under `fuzz/` once, runs each for
//! a bounded time over its committed corpus, and fails on any crash, naming the target
//! and its reproducer. See `fuzz/README.md` for the targets and the build flags.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};

/// Every target, with the longest input libFuzzer may make for it. Bodies and result
/// sets need room to hold structure; secrets, cursors, ids and paths are short by
/// nature, and short inputs keep the executions fast.
const TARGETS: [(&str, usize); 8] = [
    ("secret", 256),
    ("passport", 2048),
    ("cursor", 256),
    ("path_ids", 256),
    ("scan_results", 8192),
    ("http_bodies", 4096),
    ("http_paths", 1024),
    ("store_postgres", 4096),
];

/// The cargo-fuzz release verified with the pinned toolchain (installed if missing).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The build flags; `fuzz/README.md` says why each.
const BUILD_FLAGS: [&str; 4] = ["--sanitizer", "none", "--codegen-units", "16"];

/// What `cargo xtask fuzz` was asked to do.
#[derive(Debug)]
pub struct Options {
    /// How long each target runs.
    pub seconds: u64,
    /// The targets to run; empty for all.
    pub targets: Vec<String>,
    /// Whether new inputs go into the committed corpus (otherwise into a scratch
    /// directory that is deleted afterwards).
    pub grow_corpus: bool,
}

/// A scratch directory, deleted when dropped, even when a run fails half way.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How one target's run ended badly.
struct Failure {
    target: &'static str,
    reproducer: Option<String>,
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Installs cargo-fuzz unless `cargo fuzz` already runs.
fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let present = Command::new(cargo())
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    println!("installing cargo-fuzz {CARGO_FUZZ_VERSION}");
    super::run(
        &cargo(),
        &[
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ],
    )
}

/// The host's target triple: cargo-fuzz builds for it, under `target/<triple>/`.
fn host_triple(root: &Path) -> anyhow::Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(&rustc)
        .arg("-vV")
        .current_dir(root)
        .output()
        .with_context(|| format!("Failed to run {rustc} -vV"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV named no host triple")
}

/// Builds every target once.
fn build(fuzz_dir: &Path, triple: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let target_dir = fuzz_dir.join("target");
    let status = Command::new(cargo())
        .args(["fuzz", "build", "--target", triple])
        .args(BUILD_FLAGS)
        .arg("--fuzz-dir")
        .arg(fuzz_dir)
        .arg("--target-dir")
        .arg(&target_dir)
        // cargo-fuzz passes nightly-only flags (`-Zsanitizer`, the sancov passes) and
        // only the stable toolchain is pinned: this lets stable take them, for this
        // build alone.
        .env("RUSTC_BOOTSTRAP", "1")
        .status()
        .context("Failed to run cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build exited with {status}");
    }
    println!(
        "built the fuzz targets in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The lines of `log` that say how a run ended: its last `lines` lines.
fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs one target for `seconds`; `None` when it found nothing.
fn run_target(
    bin_dir: &Path,
    fuzz_dir: &Path,
    scratch: &Path,
    (target, max_len): (&'static str, usize),
    options: &Options,
) -> anyhow::Result<Option<Failure>> {
    let committed = fuzz_dir.join("corpus").join(target);
    if !committed.is_dir() {
        bail!(
            "{} is missing: every target keeps its seeds there",
            committed.display()
        );
    }
    let artifacts = fuzz_dir.join("artifacts").join(target);
    std::fs::create_dir_all(&artifacts)
        .with_context(|| format!("Failed to create {}", artifacts.display()))?;
    // libFuzzer writes what it finds into the first corpus directory and only reads the
    // others: a scratch one first keeps the committed corpus as it is.
    let mut corpora = vec![committed.clone()];
    if !options.grow_corpus {
        let work = scratch.join(target);
        std::fs::create_dir_all(&work)
            .with_context(|| format!("Failed to create {}", work.display()))?;
        corpora.insert(0, work);
    }
    let log = scratch.join(format!("{target}.log"));
    let output =
        File::create(&log).with_context(|| format!("Failed to create {}", log.display()))?;
    let errors = output.try_clone()?;
    let started = Instant::now();
    let status = Command::new(bin_dir.join(target))
        .arg(format!("-max_total_time={}", options.seconds))
        .arg(format!("-max_len={max_len}"))
        // Each process holds one app over the memory store (tens of MB): a run past
        // 1 GiB is a leak, and an input that runs for 10 s is a hang.
        .arg("-rss_limit_mb=1024")
        .arg("-timeout=10")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(&corpora)
        .stdout(output)
        .stderr(errors)
        .status()
        .with_context(|| format!("Failed to run the {target} fuzz target"))?;
    let secs = started.elapsed().as_secs_f64();
    if status.success() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let done = text.lines().rfind(|l| l.contains("DONE")).unwrap_or("");
        println!("fuzz {target}: clean after {secs:.0} s ({})", done.trim());
        return Ok(None);
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let reproducer = text
        .lines()
        .find_map(|l| l.split("Test unit written to ").nth(1))
        .map(|p| p.trim().to_owned());
    eprintln!(
        "fuzz {target}: FAILED after {secs:.0} s ({status}); the end of its log:\n{}",
        tail(&log, 60)
    );
    Ok(Some(Failure { target, reproducer }))
}

/// Builds, then runs every selected target in turn; fails if any of them crashed.
///
/// # Errors
/// A crash (with its reproducer), or a step that could not run.
pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    let selected: Vec<(&'static str, usize)> = if options.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        options
            .targets
            .iter()
            .map(|name| {
                TARGETS
                    .iter()
                    .find(|(t, _)| t == name)
                    .copied()
                    .with_context(|| {
                        let all: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
                        format!("no fuzz target {name}; there are {}", all.join(", "))
                    })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let started = Instant::now();
    let fuzz_dir = root.join("fuzz");
    ensure_cargo_fuzz()?;
    let triple = host_triple(root)?;
    build(&fuzz_dir, &triple)?;
    let bin_dir = fuzz_dir.join("target").join(&triple).join("release");
    let scratch =
        Scratch(std::env::temp_dir().join(format!("fleetpass-fuzz-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)
        .with_context(|| format!("Failed to create {}", scratch.0.display()))?;
    let mut failures = Vec::new();
    for target in selected {
        if let Some(failure) = run_target(&bin_dir, &fuzz_dir, &scratch.0, target, options)? {
            failures.push(failure);
        }
    }
    println!(
        "fuzzing took {:.0} s in all, build included",
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        return Ok(());
    }
    for f in &failures {
        let reproducer = f
            .reproducer
            .as_deref()
            .unwrap_or("(none written; see the log above)");
        eprintln!(
            "fuzz target {} crashed; reproducer: {reproducer}\n  replay: {} {reproducer}",
            f.target,
            bin_dir.join(f.target).display(),
        );
    }
    let names: Vec<&str> = failures.iter().map(|f| f.target).collect();
    bail!("fuzzing found crashes in: {}", names.join(", "))
}
