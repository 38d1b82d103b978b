//! Fleetpass domain: the identities, roles, scopes and secrets of the product and the
//! pure rules over them.
//!
//! Architecture invariant: this crate does no IO. It reads no clock, makes no ids and
//! draws no randomness; callers hand it `now`, ids and random bytes (see the `ports`
//! crate). A tidy test (`tests/tidy.rs`) keeps async runtimes, web frameworks and
//! database crates out of its dependency tree.

pub mod access;
pub mod audit;
pub mod fleet;
pub mod identity;
pub mod ids;
pub mod page;
pub mod passport;
pub mod scan;
pub mod schedule;
pub mod secret;
pub mod share;
pub mod token;
pub mod value;

pub use time::OffsetDateTime as Timestamp;
