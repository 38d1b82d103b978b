//! Use cases of the audit chain: the NDJSON export (paged, redacted to the reader's
//! environment scope) and signed checkpoints.
//!
//! The listing (`directory::list_audit_events`) and the export share one scope rule,
//! [`AuditEvent::visible_to`](fleetpass_domain::audit::AuditEvent::visible_to): the
//! listing leaves out what the reader may not see, the export keeps its place in the
//! chain as a `redacted` line (digests, no body), so the chain still verifies.

use fleetpass_domain::Timestamp;
use fleetpass_domain::access::{Action, Actor};
use fleetpass_domain::audit::chain::{ChainHead, CheckpointClaims, ExportLine};
use fleetpass_domain::identity::EnvScope;
use fleetpass_domain::ids::TenantId;

use super::{ServiceError, ServiceResult, require};
use crate::Deps;
use crate::keys::KeyRing;
use crate::store::ChainRange;

/// How many events an export reads from the store at a time: the export streams page
/// by page and never holds the whole log.
pub const EXPORT_PAGE: u32 = 500;

/// A signed checkpoint of a tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// What it attests.
    pub claims: CheckpointClaims,
    /// The compact JWS over `claims`, by the key the JWKS publishes.
    pub jws: String,
}

/// Where an export starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportFrom {
    /// After this seq (the last one a reader holds).
    pub cursor: Option<u64>,
    /// At the first event at or after this time.
    pub since: Option<Timestamp>,
}

/// An export in progress: the pages after the cursor, up to the head it read first,
/// then the checkpoint over that head.
#[derive(Debug, Clone)]
pub struct AuditExport {
    tenant: TenantId,
    reader: EnvScope,
    after: u64,
    since: Option<Timestamp>,
    checkpoint: Option<SignedCheckpoint>,
    head: ChainHead,
}

fn internal(e: crate::keys::KeyError) -> ServiceError {
    ServiceError::Internal(crate::RepoError::Other(Box::new(e)))
}

/// Signs a checkpoint of the caller's tenant's chain as it stands now.
///
/// # Errors
/// `Denied`, store errors; `Internal` when signing fails.
pub async fn checkpoint(
    deps: &Deps,
    keys: &KeyRing,
    actor: &Actor,
) -> ServiceResult<SignedCheckpoint> {
    require(actor, Action::Administer, None)?;
    let head = deps.store.audit_head(actor.tenant_id).await?;
    sign(deps, keys, actor.tenant_id, &head).await
}

async fn sign(
    deps: &Deps,
    keys: &KeyRing,
    tenant: TenantId,
    head: &ChainHead,
) -> ServiceResult<SignedCheckpoint> {
    let claims = CheckpointClaims::new(tenant, head, deps.now());
    let jws = keys.sign(&claims).await.map_err(internal)?;
    Ok(SignedCheckpoint { claims, jws })
}

/// Starts an export of the caller's tenant's chain: reads the head and signs its
/// checkpoint first, so that the pages end exactly where the checkpoint does however
/// many events are written meanwhile.
///
/// # Errors
/// `Denied`, store errors; `Internal` when signing fails.
pub async fn start_export(
    deps: &Deps,
    keys: &KeyRing,
    actor: &Actor,
    from: ExportFrom,
) -> ServiceResult<AuditExport> {
    require(actor, Action::Administer, None)?;
    let head = deps.store.audit_head(actor.tenant_id).await?;
    let checkpoint = sign(deps, keys, actor.tenant_id, &head).await?;
    Ok(AuditExport {
        tenant: actor.tenant_id,
        reader: actor.scope.clone(),
        after: from.cursor.unwrap_or(0),
        since: from.since,
        checkpoint: Some(checkpoint),
        head,
    })
}

impl AuditExport {
    /// The next lines: a page of events, then the checkpoint, then `None`.
    ///
    /// # Errors
    /// Store errors.
    pub async fn next_lines(&mut self, deps: &Deps) -> ServiceResult<Option<Vec<ExportLine>>> {
        if self.after < self.head.seq {
            let page = deps
                .store
                .list_audit_chain(
                    self.tenant,
                    ChainRange {
                        after_seq: self.after,
                        upto_seq: self.head.seq,
                        // Only the first page: after it the chain runs on without holes.
                        since: self.since.take(),
                        limit: EXPORT_PAGE,
                    },
                )
                .await?;
            if let Some(last) = page.last() {
                self.after = last.link.seq;
                return Ok(Some(
                    page.iter()
                        .map(|c| ExportLine::of(c.link, &c.event, c.event.visible_to(&self.reader)))
                        .collect(),
                ));
            }
            // Nothing at or after `since`: the export is the checkpoint alone.
            self.after = self.head.seq;
        }
        Ok(self
            .checkpoint
            .take()
            .map(|c| vec![ExportLine::Checkpoint { jws: c.jws }]))
    }
}
