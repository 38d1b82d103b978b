//! The production implementations of the clock, id and secret ports, and pinnable test
//! doubles of each.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use fleetpass_domain::Timestamp;
use ring::rand::SecureRandom as _;
use uuid::Uuid;

use crate::{Clock, IdGen, SecretGen};

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Now, cut to whole microseconds: PostgreSQL keeps no finer, and a time must read
    /// back from every store exactly as it was written.
    fn now(&self) -> Timestamp {
        let now = Timestamp::now_utc();
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now)
    }
}

/// UUID v7 ids (time-ordered, monotonic within the process).
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidV7;

impl IdGen for UuidV7 {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Randomness from the operating system through `ring`.
#[derive(Debug)]
pub struct RingSecrets(ring::rand::SystemRandom);

impl Default for RingSecrets {
    fn default() -> Self {
        Self(ring::rand::SystemRandom::new())
    }
}

impl SecretGen for RingSecrets {
    fn random_32(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SystemRandom fails only when the OS has no entropy source at all; there is no
        // way to serve a request safely then.
        #[allow(clippy::expect_used)]
        self.0
            .fill(&mut out)
            .expect("the operating system's random source failed");
        out
    }
}

/// A clock that stands still until told to move: for tests of expiry rules.
#[derive(Debug)]
pub struct FixedClock(Mutex<Timestamp>);

impl FixedClock {
    /// A clock pinned at `at`.
    pub fn new(at: Timestamp) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Ids that count up from a base, still time-ordered like v7: for tests that need
/// predictable ids.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGen for SequentialIds {
    fn new_id(&self) -> Uuid {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        // A v7 layout with the counter as timestamp keeps "ordered by id" meaningful.
        Uuid::new_v7(uuid::Timestamp::from_unix_time(n, 0, 0, 0))
    }
}

/// Secrets that count up: for tests that need predictable secrets.
#[derive(Debug, Default)]
pub struct SequentialSecrets(AtomicU64);

impl SecretGen for SequentialSecrets {
    fn random_32(&self) -> [u8; 32] {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let mut out = [0u8; 32];
        out[24..].copy_from_slice(&n.to_be_bytes());
        out
    }
}
