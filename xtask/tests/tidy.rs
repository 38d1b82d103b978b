//! Tidy checks over the whole workspace: layer boundaries read from `cargo metadata`,
//! and the habits every file keeps (a `//!` opening line).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use cargo_metadata::{DependencyKind, MetadataCommand, Package, PackageId};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn metadata() -> cargo_metadata::Metadata {
    MetadataCommand::new()
        .manifest_path(root().join("Cargo.toml"))
        .exec()
        .expect("cargo metadata runs")
}

/// Every package `name` depends on at build/run time (not dev), transitively.
fn runtime_closure(meta: &cargo_metadata::Metadata, name: &str) -> BTreeSet<String> {
    let resolve = meta.resolve.as_ref().expect("resolved graph");
    let packages: HashMap<&PackageId, &Package> =
        meta.packages.iter().map(|p| (&p.id, p)).collect();
    let nodes: HashMap<&PackageId, &cargo_metadata::Node> =
        resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let start = meta
        .packages
        .iter()
        .find(|p| p.name.as_str() == name)
        .expect("package exists");
    let mut seen = BTreeSet::new();
    let mut stack = vec![&start.id];
    while let Some(id) = stack.pop() {
        for dep in &nodes[id].deps {
            let runtime = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind != DependencyKind::Development);
            if runtime && seen.insert(packages[&dep.pkg].name.to_string()) {
                stack.push(&dep.pkg);
            }
        }
    }
    seen
}

/// Architecture invariant: the domain crate does no IO. No async runtime, web
/// framework, database driver or network client may enter its dependency tree.
#[test]
fn the_domain_has_no_io_dependencies() {
    let deps = runtime_closure(&metadata(), "fleetpass-domain");
    let forbidden = [
        "tokio",
        "actix",
        "diesel",
        "postgres",
        "hyper",
        "reqwest",
        "mio",
        "socket2",
        "deadpool",
        "async-trait",
    ];
    let offenders: Vec<_> = deps
        .iter()
        .filter(|d| forbidden.iter().any(|f| d.contains(f)))
        .collect();
    assert!(
        offenders.is_empty(),
        "fleetpass-domain must stay pure; it pulls in {offenders:?}"
    );
}

/// Architecture invariant: dependencies point inwards. Ports know only the domain;
/// stores and the HTTP adapter know ports and domain but not each other.
#[test]
fn layers_depend_inwards() {
    let meta = metadata();
    let rules: [(&str, &[&str]); 6] = [
        // The agent is the product's other half: it speaks to the server over HTTP
        // and shares only the domain's types, never the server's crates.
        (
            "fleetpass-agent",
            &[
                "fleetpass-ports",
                "fleetpass-http",
                "fleetpass-store-memory",
                "fleetpass-store-postgres",
                "fleetpass",
            ],
        ),
        (
            "fleetpass-domain",
            &[
                "fleetpass-agent",
                "fleetpass-ports",
                "fleetpass-http",
                "fleetpass-store-memory",
                "fleetpass-store-postgres",
                "fleetpass",
            ],
        ),
        (
            "fleetpass-ports",
            &[
                "fleetpass-http",
                "fleetpass-store-memory",
                "fleetpass-store-postgres",
                "fleetpass",
            ],
        ),
        (
            "fleetpass-store-memory",
            &["fleetpass-http", "fleetpass-store-postgres", "fleetpass"],
        ),
        (
            "fleetpass-store-postgres",
            &["fleetpass-http", "fleetpass-store-memory", "fleetpass"],
        ),
        (
            "fleetpass-http",
            &[
                "fleetpass-store-memory",
                "fleetpass-store-postgres",
                "fleetpass",
            ],
        ),
    ];
    for (krate, outer) in rules {
        let deps = runtime_closure(&meta, krate);
        let wrong: Vec<_> = outer.iter().filter(|o| deps.contains(**o)).collect();
        assert!(wrong.is_empty(), "{krate} depends outwards on {wrong:?}");
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("target")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every Rust file opens with a `//!` line saying what it is for.
#[test]
fn every_file_opens_with_a_module_doc() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    rust_files(&root().join("xtask"), &mut files);
    rust_files(&root().join("fuzz"), &mut files);
    assert!(files.len() > 10, "found the sources");
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap_or_default()
                .starts_with("//!")
        })
        .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` opening line: {missing:?}"
    );
}

/// Every route of the HTTP adapter is made by `routes::route`, which wraps it in the
/// guard of its class: a route made any other way would run without authentication,
/// limits or idempotency. (Tests may build bare resources; `src/` may not.)
#[test]
fn every_route_is_made_with_its_guard_class() {
    let mut files = Vec::new();
    rust_files(&root().join("crates/http/src"), &mut files);
    let helper = root().join("crates/http/src/routes/mod.rs");
    let bare: Vec<_> = files
        .iter()
        .filter(|f| **f != helper)
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            [
                "web::resource(",
                "web::route(",
                ".route(\"",
                ".to(",
                "web::get()",
                "web::post()",
            ]
            .iter()
            .any(|bare| text.contains(bare))
        })
        .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        bare.is_empty(),
        "routes made without `routes::route` (and so without a guard): {bare:?}"
    );
}

/// The core speaks domain terms: no route (a hint's "POST /agent/token") and no error
/// text trimmed into another lives in the domain's or the services' code; the HTTP
/// adapter adds routes to hints and maps domain fields to wire names.
#[test]
fn the_core_names_no_routes() {
    let mut files = Vec::new();
    rust_files(&root().join("crates/domain/src"), &mut files);
    rust_files(&root().join("crates/ports/src/service"), &mut files);
    assert!(files.len() > 5, "found the sources");
    let leaks: Vec<_> = files
        .iter()
        .filter(|f| {
            // Docs may say which route a thing serves; code may not word one.
            let text = std::fs::read_to_string(f).unwrap_or_default();
            text.lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .any(|line| {
                    [
                        "GET /", "POST /", "PATCH /", "DELETE /", "/api/", "/tenant/", "/agent/",
                    ]
                    .iter()
                    .any(|route| line.contains(route))
                        || line.contains("trim_start_matches(")
                })
        })
        .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        leaks.is_empty(),
        "routes or reworded error strings in the core: {leaks:?}"
    );
}
