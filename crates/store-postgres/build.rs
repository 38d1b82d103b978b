//! Re-runs the build when a migration changes, so `embed_migrations!` embeds the new SQL.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
