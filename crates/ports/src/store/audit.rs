//! The [`AuditStore`] part of the store port: the audit log.
//!
//! The obligations in the [`store`](super) module docs hold for every method here.

use async_trait::async_trait;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::ids::TenantId;
use fleetpass_domain::page::{Page, PageRequest};

use super::{AuditFilter, RepoError};

/// The part of [`Store`](super::Store) for the audit log.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    // ---- audit log ----

    /// Lists the audit events of `tenant` that pass `filter`, newest first.
    async fn list_audit_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, RepoError>;

    /// Records an event that goes with no change of state: a refusal worth an
    /// operator's attention (a credential used from outside its networks).
    async fn record_audit(&self, event: &AuditEvent) -> Result<(), RepoError>;
}
