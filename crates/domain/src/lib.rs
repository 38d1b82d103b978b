//! Fleetpass domain: the vocabulary of the product and the pure rules over it —
//! identities, roles and scopes, secrets, scans and their results, share links, and the
//! offline check of a scan passport.
//!
//! The Fleetpass server is built on this crate, and so are the programs that talk to
//! it: the reference agent (`fleetpass-agent`) builds its scan results with these
//! types, and `fleetpass passport verify` is [`passport::verify_passport`] with a
//! command line around it. Embed it wherever you need the same answers as the server.
//!
//! # A tour
//!
//! - **Secrets** ([`secret`]): [`PlainSecret`](secret::PlainSecret) parses
//!   `fpk_`/`fpe_`/`fps_`/`fpa_` secrets and checks their CRC-32 checksum, so a typo is
//!   refused before any lookup; its `Debug` and `Display` never print it, and
//!   [`digest`](secret::PlainSecret::digest) is what a store keeps.
//! - **Access** ([`access`], [`identity`]): [`authorize`](access::authorize) decides
//!   whether an [`Actor`](access::Actor) (an API token's role and environment scope) may
//!   take an [`Action`](access::Action) on a resource in an environment;
//!   [`check_grant`](access::check_grant) whether it may mint a token.
//!   [`token::authenticate`] turns a looked-up API token into an `Actor` at a given time.
//! - **Scans** ([`scan`]): [`Scenario`](scan::Scenario) and its feasibility rules
//!   ([`ScanConstraints::check_feasible`](scan::ScanConstraints::check_feasible)),
//!   [`ScanResults`](scan::ScanResults) (what an agent sends: assets and findings) with
//!   the server's validation, its canonical bundle and SHA-256, its report and the
//!   [`PassportClaims`](scan::PassportClaims) a passport attests.
//! - **Passports** ([`passport`]): [`verify_passport`](passport::verify_passport) checks
//!   a passport (compact JWS) against a JWKS and optionally its bundle, answering the
//!   claims or a [`PassportError`](passport::PassportError) that says exactly what failed.
//! - **Everything else**: typed ids ([`ids`]), validated newtypes whose constructors are
//!   the only way in ([`value`], and the names and limits beside each entity), fleets
//!   and agents ([`fleet`]), a tenant's token lifetimes ([`policy`]), share links
//!   ([`share`]), schedules ([`schedule`]), keyset pages ([`page`]) and audit events
//!   ([`audit`]).
//!
//! ```
//! use fleetpass_domain::scan::{Asset, ScanResults, Software};
//!
//! let results = ScanResults {
//!     assets: vec![Asset {
//!         hostname: "db-1".into(),
//!         ip: "10.0.0.5".into(),
//!         os: "Debian 12".into(),
//!         open_ports: vec![22, 5432],
//!         software: vec![Software { name: "postgresql".into(), version: "15.4".into() }],
//!     }],
//!     findings: vec![],
//! };
//! results.validate(None).expect("what the server would accept");
//! let (_bundle, sha256) = results.bundle()?; // what a passport attests
//! assert_eq!(sha256.as_str().len(), 64);
//! # Ok::<(), fleetpass_domain::scan::ArtifactError>(())
//! ```
//!
//! The `examples/` directory has whole programs: `verify_passport`, `check_secret`,
//! `authorize` and `scan_results` (`cargo run -p fleetpass-domain --example NAME`).
//!
//! # What it deliberately does not do
//!
//! Architecture invariant: this crate does no IO. It reads no clock, makes no ids and
//! draws no randomness; callers hand it `now`, ids and random bytes (the server's
//! `ports` crate does, through pinnable ports). So it never fetches a JWKS, reads a
//! file, talks to the server or decides that a passport is "too old": those are the
//! caller's, and every rule here is tested at its exact boundary with a fixed clock. A
//! tidy test (`xtask/tests/tidy.rs`) keeps async runtimes, web frameworks, network and
//! database crates out of its dependency tree.

#![deny(missing_docs)]

pub mod access;
pub mod audit;
pub mod fleet;
pub mod identity;
pub mod ids;
pub mod jcs;
pub mod jose;
pub mod label;
pub mod network;
pub mod page;
pub mod passport;
pub mod policy;
pub mod scan;
pub mod schedule;
pub mod secret;
pub mod share;
pub mod token;
pub mod value;

pub use time::OffsetDateTime as Timestamp;
