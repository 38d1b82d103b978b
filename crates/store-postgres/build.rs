//! Re-runs the build when a migration changes, so `embed_migrations!` embeds the new SQL,
//! and hands the test harness a digest of the migrations (`FLEETPASS_MIGRATIONS_DIGEST`):
//! the name of its migrated template database, so that a change of any migration makes
//! a new template rather than cloning a stale one.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
    let mut files = Vec::new();
    collect(Path::new("../../migrations"), &mut files);
    files.sort();
    // FNV-1a over every file's relative path and contents: stable across toolchains
    // (unlike `DefaultHasher`), and collisions only matter between migration sets that
    // share one server, where a 64-bit digest is plenty.
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    for file in &files {
        let contents = std::fs::read(file).expect("a migration file must be readable");
        let name = file.to_string_lossy();
        for byte in name.bytes().chain([0]).chain(contents).chain([0]) {
            digest ^= u64::from(byte);
            digest = digest.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=FLEETPASS_MIGRATIONS_DIGEST={digest:016x}");
}

/// Every file under `dir`, recursively.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("the migrations directory must be readable");
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}
