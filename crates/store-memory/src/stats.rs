//! The [`StatsStore`](fleetpass_ports::store::StatsStore) part of the in-memory store:
//! counts over every tenant, for `/metrics`.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::scan::ScanStatus;
use fleetpass_ports::store::{LastSeen, RepoError, ServiceStats, StatsStore};

use crate::MemoryStore;

#[async_trait]
impl StatsStore for MemoryStore {
    async fn service_stats(&self, now: Timestamp) -> Result<ServiceStats, RepoError> {
        self.read(|s| {
            let scans = ScanStatus::ALL
                .iter()
                .map(|&status| {
                    let n = s
                        .scans
                        .values()
                        .filter(|scan| scan.status == status)
                        .count();
                    (status, n as u64)
                })
                .collect();
            let oldest_claimable = s
                .scans
                .values()
                .filter(|scan| scan.claimable(now))
                .map(|scan| scan.requested_at)
                .min();
            let agents = LastSeen::ALL
                .iter()
                .map(|&bucket| {
                    let n = s
                        .agents
                        .values()
                        .filter(|a| a.revoked_at.is_none())
                        .filter(|a| LastSeen::of(a.last_seen_at, now) == bucket)
                        .count();
                    (bucket, n as u64)
                })
                .collect();
            Ok(ServiceStats {
                scans,
                oldest_claimable,
                agents,
                pool: None,
            })
        })
    }
}
