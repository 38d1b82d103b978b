//! The [`AuditStore`] part of the store port: the audit log and its hash chain.
//!
//! The obligations in the [`store`](super) module docs hold for every method here.
//! Besides them, every method of the store that writes audit events MUST chain them:
//! give each the next seq of its tenant and the [`ChainLink`] that follows the
//! tenant's head, under a lock that makes the chain one total order per tenant across
//! every replica (no two events at one seq, no seq skipped), in the transaction of the
//! change.

use async_trait::async_trait;
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::audit::chain::{ChainHead, ChainLink};
use fleetpass_domain::ids::TenantId;
use fleetpass_domain::page::{Page, PageRequest};

use super::{AuditFilter, RepoError};

/// An audit event with its place in its tenant's chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainedEvent {
    /// Its link.
    pub link: ChainLink,
    /// The event.
    pub event: AuditEvent,
}

/// Which part of a chain to read, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainRange {
    /// Only events after this seq (0: from the start).
    pub after_seq: u64,
    /// Only events up to this seq (a head read before), so that a reader paging the
    /// chain ends where its checkpoint does.
    pub upto_seq: u64,
    /// Only events at or after this time. An export applies it to its first page
    /// only, so that the chain it reads has no holes.
    pub since: Option<Timestamp>,
    /// At most this many events.
    pub limit: u32,
}

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

    /// The head of `tenant`'s chain ([`ChainHead::EMPTY`] before its first chained event),
    /// as committed now.
    async fn audit_head(&self, tenant: TenantId) -> Result<ChainHead, RepoError>;

    /// The chained events of `tenant` in `range`, in seq order. Events written before
    /// the chain existed have no seq and are never listed here.
    async fn list_audit_chain(
        &self,
        tenant: TenantId,
        range: ChainRange,
    ) -> Result<Vec<ChainedEvent>, RepoError>;
}
