//! Woken check-ins claim their fan-out parts together. A fan-out scan of ten thousand
//! agents wakes ten thousand held check-ins at once; were each to claim in its own
//! transaction, they would queue for the pool (a handful of connections) until the
//! pool's wait ran out, and answer 503. Instead each waiter woken for a scan joins that
//! scan's batch in this process, and one task claims the whole batch in one store call
//! ([`ScanStore::claim_parts`](crate::store::ScanStore::claim_parts)) a moment later,
//! then tells each waiter whether its part was claimed: one transaction per replica
//! and [`MAX_BATCH`] agents, not one per agent.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use fleetpass_domain::fleet::Agent;
use fleetpass_domain::ids::{AgentId, ScanId, TenantId};
use fleetpass_domain::scan::Scan;
use tokio::sync::oneshot;

use crate::Deps;

/// How long a batch gathers the waiters woken with its first one: the wake-ups of one
/// scan reach this process's waiters within a few milliseconds of each other.
const GATHER: Duration = Duration::from_millis(20);

/// At most this many agents' parts are claimed in one store call.
pub const MAX_BATCH: usize = 1000;

/// One waiter in a batch.
struct Waiting {
    agent: AgentId,
    answer: oneshot::Sender<Option<Scan>>,
}

/// The batches gathering now, per scan.
#[derive(Default)]
pub struct PartClaims {
    batches: Mutex<HashMap<ScanId, Vec<Waiting>>>,
}

impl std::fmt::Debug for PartClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartClaims").finish_non_exhaustive()
    }
}

impl PartClaims {
    /// Claims `agent`'s part of `scan` with every other waiter of this process woken for
    /// it: the scan, running, when the part was claimed for this agent; `None` when it
    /// was not (claimed meanwhile by the agent's other check-in, no longer claimable, or
    /// the store failed: the caller then claims on its own).
    pub async fn claim(&self, deps: &Deps, agent: &Agent, scan: ScanId) -> Option<Scan> {
        let (answer, heard) = oneshot::channel();
        let first = {
            let mut batches = self.batches.lock().unwrap_or_else(PoisonError::into_inner);
            let batch = batches.entry(scan).or_default();
            batch.push(Waiting {
                agent: agent.id,
                answer,
            });
            batch.len() == 1
        };
        if first {
            let deps = deps.clone();
            let tenant = agent.tenant_id;
            tokio::spawn(async move {
                tokio::time::sleep(GATHER).await;
                let batch = deps
                    .part_claims
                    .batches
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&scan)
                    .unwrap_or_default();
                flush(&deps, tenant, scan, batch).await;
            });
        }
        heard.await.ok().flatten()
    }
}

/// Claims the parts of `batch`, [`MAX_BATCH`] at a time, and answers every waiter.
async fn flush(deps: &Deps, tenant: TenantId, scan: ScanId, batch: Vec<Waiting>) {
    let mut rest = batch;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(MAX_BATCH));
        let chunk = std::mem::replace(&mut rest, tail);
        let mut agents: Vec<AgentId> = chunk.iter().map(|w| w.agent).collect();
        agents.sort_unstable();
        agents.dedup();
        let claimed = match deps
            .store
            .claim_parts(tenant, scan, &agents, deps.now())
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, %scan, "could not claim a batch of parts; its check-ins claim on their own");
                None
            }
        };
        for waiting in chunk {
            let mine = claimed
                .as_ref()
                .filter(|(_, agents)| agents.binary_search(&waiting.agent).is_ok())
                .map(|(scan, _)| scan.clone());
            // A waiter that gave up (its client left) no longer listens.
            let _ = waiting.answer.send(mine);
        }
    }
}
