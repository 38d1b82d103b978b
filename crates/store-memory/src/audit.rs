//! The [`AuditStore`](fleetpass_ports::store::AuditStore) part of the in-memory store: the
//! audit log.

use async_trait::async_trait;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::ids::TenantId;
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_ports::store::{AuditFilter, AuditStore, RepoError};

use crate::{MemoryStore, page_of, within};

#[async_trait]
impl AuditStore for MemoryStore {
    // ---- audit log ----

    async fn list_audit_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, RepoError> {
        let passes = |e: &AuditEvent| {
            e.tenant_id == tenant
                && filter
                    .action
                    .as_ref()
                    .is_none_or(|action| e.action.as_str() == action)
                && filter
                    .actor_id
                    .is_none_or(|actor| e.actor.id() == Some(actor))
                && filter
                    .target_id
                    .is_none_or(|target| e.target_id == Some(target))
                && filter.since.is_none_or(|since| e.at >= since)
                && filter
                    .environments
                    .as_deref()
                    .is_none_or(|envs| within(&e.scope, envs))
        };
        self.read(|s| Ok(page_of(&s.audit, page, passes)))
    }

    async fn record_audit(&self, event: &AuditEvent) -> Result<(), RepoError> {
        self.with(|s| {
            s.ensure_new_audit([event])?;
            s.record(event);
            Ok(())
        })
    }
}
