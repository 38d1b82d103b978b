//! The wake-up port: how a held check-in (`POST /agent/jobs/claim?wait=…`) learns,
//! without asking the store, that something happened to its fleet — a scan became
//! claimable, its agent was revoked, the fleet was deleted, or the server is stopping.
//!
//! [`Wakeups`] is the port; [`LocalWakeups`] is the one implementation: a map from fleet
//! to a `tokio::sync::broadcast` channel (revocations, deletions, shutdown: every waiter
//! of the fleet hears them) and a semaphore of scan wake-ups (each claimable scan wakes
//! *one* waiter of its fleet in this process, not all of them: a fleet of a thousand
//! waiting agents costs one claim per scan and replica, not a thousand), holding an
//! entry only while the fleet has waiters, so an idle fleet costs nothing. In memory mode the services [`publish`](Wakeups::publish)
//! straight into it. On PostgreSQL the store announces each event with a `NOTIFY` in the
//! transaction that causes it, one listener per replica hands what it hears to
//! [`LocalWakeups::deliver`], and `publish` does nothing (see [`LocalWakeups::relayed`]):
//! every replica, this one included, learns of a change exactly once, when it commits.
//!
//! A wake-up is only a hint: woken waiters claim through the store as before
//! (`SKIP LOCKED` decides who gets the scan: with several replicas, one waiter each)
//! and the losers wait on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fleetpass_domain::ids::{AgentId, FleetId, ScanId};
use tokio::sync::broadcast;

/// What a waiter is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wakeup {
    /// A scan of the fleet became claimable: try to claim it. Each scan wakes one
    /// waiter of its fleet per process.
    Scan,
    /// A fan-out scan's parts became claimable, one for each of these agents (sorted):
    /// those agents' waiters claim (together: see `claims::PartClaims`), every other
    /// waiter of the fleet waits on.
    Parts(ScanId, Arc<[AgentId]>),
    /// This agent of the fleet was revoked: its check-in ends (401).
    AgentGone(AgentId),
    /// The fleet was deleted, with its agents: every check-in of it ends (401).
    FleetGone,
    /// Events may have been lost (a slow waiter, a listener that reconnected): check
    /// again as if woken for a scan.
    Missed,
    /// The server is stopping: end the check-in now (204).
    ShuttingDown,
}

/// The replica holds as many waiters as it is configured for; this one must come back
/// later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this replica holds as many waiting check-ins as it is configured for")]
pub struct Overloaded;

/// Tells held check-ins what happened to their fleet.
pub trait Wakeups: Send + Sync + 'static {
    /// Waits for the events of `fleet` from now on (events published before this call
    /// are not seen: subscribe *before* looking for work).
    ///
    /// # Errors
    /// [`Overloaded`] when this process already holds its limit of waiters.
    fn subscribe(&self, fleet: FleetId) -> Result<Subscription, Overloaded>;

    /// Tells the waiters of `fleet` about `event`, `delay` from now (a scan whose
    /// `notBefore` is ahead becomes claimable then). MAY do nothing where the store
    /// announces the change itself.
    fn publish(&self, fleet: FleetId, event: Wakeup, delay: Duration);

    /// Ends every wait, now and from now on, with [`Wakeup::ShuttingDown`].
    fn shut_down(&self);

    /// How many waiters are held now.
    fn held(&self) -> usize;
}

/// How many waiting check-ins one process holds unless configured otherwise
/// (`FLEETPASS_MAX_HELD_POLLS`): below the 20 000 open files a process may have here,
/// with room for the database pool, listeners and ordinary requests.
pub const DEFAULT_MAX_HELD: usize = 16_000;

/// How many events a slow waiter may fall behind before it is told [`Wakeup::Missed`].
const BACKLOG: usize = 16;

/// How many scan wake-ups a fleet keeps for waiters to take: a burst beyond it wakes
/// no more waiters (the scans stay queued, and each check-in's first claim finds them).
const MAX_PENDING_SCANS: usize = 64;

/// A fleet's waiters' channels.
struct Fleet {
    events: broadcast::Sender<Wakeup>,
    scans: Arc<tokio::sync::Semaphore>,
}

struct Inner {
    fleets: Mutex<HashMap<FleetId, Fleet>>,
    held: AtomicUsize,
    max_held: usize,
    closing: AtomicBool,
    /// Whether `publish` delivers (memory mode) or the store announces changes and a
    /// relay delivers them (PostgreSQL).
    relayed: bool,
}

impl Inner {
    fn fleets(&self) -> MutexGuard<'_, HashMap<FleetId, Fleet>> {
        self.fleets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn deliver_now(&self, fleet: FleetId, event: Wakeup) {
        let fleets = self.fleets();
        let Some(fleet) = fleets.get(&fleet) else {
            return;
        };
        // Every other event goes to every waiter of the fleet, `Parts` included: each
        // waiter knows its own agent and checks the list (one lookup, no store work).
        match event {
            Wakeup::Scan => {
                if fleet.scans.available_permits() < MAX_PENDING_SCANS {
                    fleet.scans.add_permits(1);
                }
            }
            // No receiver left is not an error: the last waiter just went.
            other => {
                let _ = fleet.events.send(other);
            }
        }
    }
}

/// The in-process [`Wakeups`]: cheap to clone (clones share the waiters).
#[derive(Clone)]
pub struct LocalWakeups(Arc<Inner>);

impl std::fmt::Debug for LocalWakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWakeups")
            .field("held", &self.held())
            .field("max_held", &self.0.max_held)
            .field("relayed", &self.0.relayed)
            .finish_non_exhaustive()
    }
}

impl LocalWakeups {
    fn build(max_held: usize, relayed: bool) -> Self {
        Self(Arc::new(Inner {
            fleets: Mutex::new(HashMap::new()),
            held: AtomicUsize::new(0),
            max_held,
            closing: AtomicBool::new(false),
            relayed,
        }))
    }

    /// Wake-ups within this process (memory mode): `publish` delivers at once, or after
    /// its delay on a timer. At most `max_held` waiters at a time.
    pub fn new(max_held: usize) -> Self {
        Self::build(max_held, false)
    }

    /// Wake-ups relayed from the store (PostgreSQL): `publish` does nothing, because
    /// the store announced the change in its transaction; the listener calls
    /// [`deliver`](Self::deliver) for what it hears, this replica's changes included.
    pub fn relayed(max_held: usize) -> Self {
        Self::build(max_held, true)
    }

    /// Tells the waiters of `fleet` in this process about `event`, `delay` from now
    /// (a timer task holds it meanwhile; it needs a tokio runtime when `delay` is not
    /// zero).
    pub fn deliver(&self, fleet: FleetId, event: Wakeup, delay: Duration) {
        if delay.is_zero() {
            self.0.deliver_now(fleet, event);
            return;
        }
        let inner = Arc::clone(&self.0);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            inner.deliver_now(fleet, event);
        });
    }

    /// Tells every waiter in this process about `event` (after a listener reconnected:
    /// [`Wakeup::Missed`]).
    pub fn deliver_all(&self, event: Wakeup) {
        for fleet in self.0.fleets().values() {
            let _ = fleet.events.send(event.clone());
        }
    }
}

impl Wakeups for LocalWakeups {
    fn subscribe(&self, fleet: FleetId) -> Result<Subscription, Overloaded> {
        let inner = &self.0;
        // Counted before the check, so concurrent subscribers cannot overshoot together.
        if inner.held.fetch_add(1, Ordering::AcqRel) >= inner.max_held {
            inner.held.fetch_sub(1, Ordering::AcqRel);
            return Err(Overloaded);
        }
        let mut fleets = inner.fleets();
        let entry = fleets.entry(fleet).or_insert_with(|| Fleet {
            events: broadcast::channel(BACKLOG).0,
            scans: Arc::new(tokio::sync::Semaphore::new(0)),
        });
        let (rx, scans) = (entry.events.subscribe(), Arc::clone(&entry.scans));
        drop(fleets);
        Ok(Subscription {
            rx: Some(rx),
            scans,
            fleet,
            inner: Arc::clone(inner),
        })
    }

    fn publish(&self, fleet: FleetId, event: Wakeup, delay: Duration) {
        if !self.0.relayed {
            self.deliver(fleet, event, delay);
        }
    }

    fn shut_down(&self) {
        let inner = &self.0;
        // Under the map's lock, so a waiter subscribing now either sees the flag or is
        // in the map and receives the event.
        let fleets = inner.fleets();
        inner.closing.store(true, Ordering::Release);
        for fleet in fleets.values() {
            let _ = fleet.events.send(Wakeup::ShuttingDown);
        }
    }

    fn held(&self) -> usize {
        self.0.held.load(Ordering::Acquire)
    }
}

/// One waiter's view of its fleet's events; dropping it stops the wait (and the fleet's
/// entry goes when its last waiter does).
pub struct Subscription {
    rx: Option<broadcast::Receiver<Wakeup>>,
    scans: Arc<tokio::sync::Semaphore>,
    fleet: FleetId,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("fleet", &self.fleet)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next event of the fleet: what every waiter hears comes first, then a scan
    /// wake-up this waiter took (no other waiter here gets that one).
    pub async fn next(&mut self) -> Wakeup {
        if self.inner.closing.load(Ordering::Acquire) {
            return Wakeup::ShuttingDown;
        }
        let Some(rx) = self.rx.as_mut() else {
            return Wakeup::Missed;
        };
        tokio::select! {
            biased;
            event = rx.recv() => match event {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => Wakeup::Missed,
                // The sender lives while any receiver does; a closed channel would mean
                // the map lost it, and the only safe reading of that is "look again".
                Err(broadcast::error::RecvError::Closed) => {
                    self.rx = None;
                    Wakeup::Missed
                }
            },
            permit = self.scans.acquire() => {
                // Taken for good: the wake-up was this waiter's.
                if let Ok(permit) = permit {
                    permit.forget();
                }
                Wakeup::Scan
            }
        }
    }
}

impl Subscription {
    /// Hands a scan wake-up this waiter took, and could not act on (its claim failed),
    /// to another waiter of the fleet here.
    pub fn pass_on(&self) {
        if self.scans.available_permits() < MAX_PENDING_SCANS {
            self.scans.add_permits(1);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut fleets = self.inner.fleets();
        drop(self.rx.take());
        if fleets
            .get(&self.fleet)
            .is_some_and(|f| f.events.receiver_count() == 0)
        {
            fleets.remove(&self.fleet);
        }
        drop(fleets);
        self.inner.held.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> FleetId {
        FleetId::from_uuid(uuid::Uuid::now_v7())
    }

    #[tokio::test]
    async fn a_waiter_hears_its_fleet_only() {
        let w = LocalWakeups::new(10);
        let (a, b) = (fleet(), fleet());
        let mut sub = w.subscribe(a).unwrap();
        w.publish(b, Wakeup::Scan, Duration::ZERO);
        w.publish(a, Wakeup::FleetGone, Duration::ZERO);
        assert_eq!(sub.next().await, Wakeup::FleetGone);
    }

    #[tokio::test]
    async fn entries_go_with_their_last_waiter_and_the_limit_holds() {
        let w = LocalWakeups::new(2);
        let f = fleet();
        let one = w.subscribe(f).unwrap();
        let two = w.subscribe(f).unwrap();
        assert_eq!(w.subscribe(fleet()).unwrap_err(), Overloaded);
        assert_eq!(w.held(), 2);
        drop(one);
        assert_eq!(w.0.fleets().len(), 1);
        drop(two);
        assert_eq!((w.held(), w.0.fleets().len()), (0, 0));
        assert!(w.subscribe(f).is_ok(), "room again");
    }

    #[tokio::test]
    async fn a_scan_wakes_one_waiter_and_every_waiter_hears_the_rest() {
        let w = LocalWakeups::new(10);
        let f = fleet();
        let mut one = w.subscribe(f).unwrap();
        let mut two = w.subscribe(f).unwrap();
        w.publish(f, Wakeup::Scan, Duration::ZERO);
        let short = Duration::from_millis(200);
        let first = tokio::time::timeout(short, one.next()).await;
        let second = tokio::time::timeout(short, two.next()).await;
        assert_eq!(
            [first.is_ok(), second.is_ok()]
                .iter()
                .filter(|woken| **woken)
                .count(),
            1,
            "one scan, one waiter woken"
        );
        w.publish(f, Wakeup::Scan, Duration::ZERO);
        w.publish(f, Wakeup::Scan, Duration::ZERO);
        assert_eq!(one.next().await, Wakeup::Scan);
        assert_eq!(two.next().await, Wakeup::Scan);
        w.publish(f, Wakeup::FleetGone, Duration::ZERO);
        assert_eq!(one.next().await, Wakeup::FleetGone);
        assert_eq!(two.next().await, Wakeup::FleetGone);
    }

    #[tokio::test]
    async fn relayed_wakeups_come_only_from_the_relay() {
        let w = LocalWakeups::relayed(10);
        let f = fleet();
        let mut sub = w.subscribe(f).unwrap();
        w.publish(f, Wakeup::FleetGone, Duration::ZERO);
        w.deliver(f, Wakeup::Scan, Duration::ZERO);
        assert_eq!(
            sub.next().await,
            Wakeup::Scan,
            "the publish was not delivered"
        );
    }

    #[tokio::test]
    async fn parts_reach_every_waiter_of_the_fleet_with_the_list() {
        let w = LocalWakeups::new(10);
        let f = fleet();
        let mut one = w.subscribe(f).unwrap();
        let mut two = w.subscribe(f).unwrap();
        let agents: Arc<[AgentId]> = vec![AgentId::from_uuid(uuid::Uuid::now_v7())].into();
        let scan = ScanId::from_uuid(uuid::Uuid::now_v7());
        w.publish(f, Wakeup::Parts(scan, Arc::clone(&agents)), Duration::ZERO);
        assert_eq!(one.next().await, Wakeup::Parts(scan, Arc::clone(&agents)));
        assert_eq!(two.next().await, Wakeup::Parts(scan, agents));
    }

    #[tokio::test]
    async fn shutting_down_ends_every_wait_now_and_later() {
        let w = LocalWakeups::new(10);
        let mut before = w.subscribe(fleet()).unwrap();
        w.shut_down();
        assert_eq!(before.next().await, Wakeup::ShuttingDown);
        let mut after = w.subscribe(fleet()).unwrap();
        assert_eq!(after.next().await, Wakeup::ShuttingDown);
    }

    #[tokio::test]
    async fn a_delayed_wakeup_arrives_after_its_delay() {
        let w = LocalWakeups::new(10);
        let f = fleet();
        let mut sub = w.subscribe(f).unwrap();
        let start = std::time::Instant::now();
        w.publish(f, Wakeup::Scan, Duration::from_millis(300));
        assert_eq!(sub.next().await, Wakeup::Scan);
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "not before its time"
        );
    }
}
