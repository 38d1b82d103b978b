//! Wake-ups across replicas: what the store announces with `NOTIFY fleetpass_wakeups`
//! in the transaction that causes it (a scan queued, an agent revoked, a fleet
//! deleted), and how each replica's listener hands what it hears to its in-process
//! [`LocalWakeups`], which fans it out to that fleet's held check-ins.
//!
//! A notification is sent only when something a waiter cares about commits — never per
//! poll or heartbeat — and PostgreSQL delivers it on commit to every listener, this
//! replica's included (so the services' own `publish` is a no-op on PostgreSQL: see
//! [`LocalWakeups::relayed`]). A scan whose `notBefore` is ahead is announced when
//! queued, with that time; each replica's listener holds a timer until then, and a
//! listener that (re)connects arms the timers of every such scan still queued.
//!
//! Payloads are text: `scan <fleet> <notBefore as Unix microseconds, or ->`,
//! `parts <fleet> <notBefore, or -> <scan>` (a fan-out scan: the listener reads its
//! parts' agents once, one query per replica and scan, and wakes those agents only),
//! `gone <fleet> <agent>` and `fleet <fleet>`.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fleetpass_domain::fleet::Agent;
use fleetpass_domain::ids::{AgentId, FleetId, ScanId};
use fleetpass_domain::scan::Scan;
use fleetpass_ports::Clock;
use fleetpass_ports::wakeups::{LocalWakeups, Wakeup};

use crate::error::DbError;

/// The channel every replica listens on.
pub(crate) const LISTEN: &str = "LISTEN fleetpass_wakeups";

/// The channel's name, as notifications carry it.
pub(crate) const CHANNEL: &str = "fleetpass_wakeups";

/// Sends `payload` to every replica when the caller's transaction commits.
pub(super) async fn announce(c: &mut AsyncPgConnection, payload: &str) -> Result<(), DbError> {
    diesel::sql_query("SELECT pg_notify('fleetpass_wakeups', $1)")
        .bind::<Text, _>(payload)
        .execute(c)
        .await?;
    Ok(())
}

/// A queued scan: claimable at once, or from its `notBefore`.
pub(super) fn scan_queued(scan: &Scan) -> String {
    let at = scan.constraints.not_before.map_or_else(
        || "-".to_owned(),
        |at| (at.unix_timestamp_nanos() / 1_000).to_string(),
    );
    if scan.target.fans_out() {
        format!("parts {} {at} {}", scan.fleet_id, scan.id)
    } else {
        format!("scan {} {at}", scan.fleet_id)
    }
}

/// What a notification asks of the listener.
#[derive(Debug, PartialEq, Eq)]
enum Heard {
    /// Deliver this event to the fleet's waiters after the delay.
    Event(FleetId, Wakeup, Duration),
    /// Read the queued parts' agents of this fan-out scan, then wake them.
    Parts(FleetId, ScanId, Duration),
}

/// A revoked agent.
pub(super) fn agent_gone(agent: &Agent) -> String {
    format!("gone {} {}", agent.fleet_id, agent.id)
}

/// A deleted fleet.
pub(super) fn fleet_gone(fleet: FleetId) -> String {
    format!("fleet {fleet}")
}

/// Where a replica delivers what it hears: its in-process wake-ups, and the clock that
/// turns a `notBefore` into a delay.
#[derive(Clone)]
pub struct Relay {
    /// The replica's wake-ups (made with [`LocalWakeups::relayed`]).
    pub wakeups: LocalWakeups,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("wakeups", &self.wakeups)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Delivers one notification's payload; an unreadable one is logged and dropped
    /// (it came from a newer or foreign writer, and a waiter still ends by its time).
    pub(crate) async fn deliver(&self, payload: &str, client: &tokio_postgres::Client) {
        match self.parse(payload) {
            Some(Heard::Event(fleet, event, delay)) => self.wakeups.deliver(fleet, event, delay),
            Some(Heard::Parts(fleet, scan, delay)) => {
                let rows = client
                    .query(
                        "SELECT agent_id::text FROM scan_parts \
                         WHERE scan_id = $1::text::uuid AND status = 'queued' ORDER BY agent_id",
                        &[&scan.to_string()],
                    )
                    .await;
                match rows {
                    Ok(rows) => {
                        let agents: Vec<AgentId> = rows
                            .iter()
                            .filter_map(|r| AgentId::parse(r.get::<_, &str>(0)))
                            .collect();
                        self.wakeups
                            .deliver(fleet, Wakeup::Parts(scan, agents.into()), delay);
                    }
                    // Its agents find the parts at their next check-in's first claim.
                    Err(e) => tracing::warn!(error = %e, "could not read a fan-out scan's parts"),
                }
            }
            None => tracing::warn!(payload, "ignored an unreadable wake-up"),
        }
    }

    /// After the listener (re)connected, notifications may have been missed: every
    /// waiter looks again.
    pub(crate) fn missed(&self) {
        self.wakeups.deliver_all(Wakeup::Missed);
    }

    /// Arms a timer for every queued scan whose `notBefore` is still ahead: their
    /// announcements may predate this listener (a replica started, or reconnected,
    /// after they were queued). One query per connection, not per waiter.
    pub(crate) async fn rearm(&self, client: &tokio_postgres::Client) {
        let now = self
            .clock
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let rows = client
            .query(
                "SELECT fleet_id::text, (extract(epoch FROM not_before) * 1000000)::bigint, \
                   id::text, target <> '\"any\"'::jsonb \
                 FROM scans WHERE status = 'queued' AND not_before > $1::text::timestamptz",
                &[&now],
            )
            .await;
        match rows {
            Ok(rows) => {
                for row in rows {
                    let (fleet, micros, scan, fans_out): (String, i64, String, bool) =
                        (row.get(0), row.get(1), row.get(2), row.get(3));
                    let payload = if fans_out {
                        format!("parts {fleet} {micros} {scan}")
                    } else {
                        format!("scan {fleet} {micros}")
                    };
                    self.deliver(&payload, client).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not arm the timers of future scans"),
        }
    }

    fn parse(&self, payload: &str) -> Option<Heard> {
        let mut words = payload.split(' ');
        let kind = words.next()?;
        let fleet = FleetId::parse(words.next()?)?;
        let delay_of = |word: &str| -> Option<Duration> {
            if word == "-" {
                return Some(Duration::ZERO);
            }
            let at = fleetpass_domain::Timestamp::from_unix_timestamp_nanos(
                word.parse::<i128>().ok()?.checked_mul(1_000)?,
            )
            .ok()?;
            Some(Duration::try_from(at - self.clock.now()).unwrap_or_default())
        };
        let parsed = match (kind, words.next()) {
            ("scan", Some(at)) => Heard::Event(fleet, Wakeup::Scan, delay_of(at)?),
            ("parts", Some(at)) => {
                Heard::Parts(fleet, ScanId::parse(words.next()?)?, delay_of(at)?)
            }
            ("gone", Some(agent)) => Heard::Event(
                fleet,
                Wakeup::AgentGone(AgentId::parse(agent)?),
                Duration::ZERO,
            ),
            ("fleet", None) => Heard::Event(fleet, Wakeup::FleetGone, Duration::ZERO),
            _ => return None,
        };
        words.next().is_none().then_some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use fleetpass_ports::system::FixedClock;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn payloads_read_back_as_they_were_written() {
        let now = datetime!(2026-11-22 10:00 UTC);
        let relay = Relay {
            wakeups: LocalWakeups::relayed(1),
            clock: Arc::new(FixedClock::new(now)),
        };
        let fleet = FleetId::from_uuid(uuid::Uuid::now_v7());
        let agent = AgentId::from_uuid(uuid::Uuid::now_v7());
        assert_eq!(
            relay.parse(&fleet_gone(fleet)),
            Some(Heard::Event(fleet, Wakeup::FleetGone, Duration::ZERO))
        );
        assert_eq!(
            relay.parse(&format!("gone {fleet} {agent}")),
            Some(Heard::Event(
                fleet,
                Wakeup::AgentGone(agent),
                Duration::ZERO
            ))
        );
        assert_eq!(
            relay.parse(&format!("scan {fleet} -")),
            Some(Heard::Event(fleet, Wakeup::Scan, Duration::ZERO))
        );
        let later = (now + time::Duration::seconds(90)).unix_timestamp_nanos() / 1_000;
        assert_eq!(
            relay.parse(&format!("scan {fleet} {later}")),
            Some(Heard::Event(fleet, Wakeup::Scan, Duration::from_secs(90)))
        );
        let scan = ScanId::from_uuid(uuid::Uuid::now_v7());
        assert_eq!(
            relay.parse(&format!("parts {fleet} {later} {scan}")),
            Some(Heard::Parts(fleet, scan, Duration::from_secs(90)))
        );
        for bad in [
            "",
            "scan",
            "scan nope -",
            "fleet x",
            "party {fleet}",
            "fleet a b",
        ] {
            assert_eq!(relay.parse(bad), None, "{bad}");
        }
    }
}
