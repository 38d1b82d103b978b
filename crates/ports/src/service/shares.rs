//! Share links: operators hand a completed scan to an outsider through an expiring,
//! scope-limited public link; every access is counted and audited.

use fleetpass_domain::access::{Action, Actor};
use fleetpass_domain::audit::{AuditActor, actions};
use fleetpass_domain::ids::{ScanId, ShareLinkId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::scan::{Scan, ScanStatus};
use fleetpass_domain::secret::{PlainSecret, SecretKind};
use fleetpass_domain::share::{Artifact, MaxAccesses, ShareLabel, ShareLink, ShareTtlHours};
use serde_json::json;

use super::scans::scan_for;
use super::{ServiceError, ServiceResult};
use crate::Conflict;
use crate::Deps;
use crate::store::{ScanArtifacts, ShareAccess};

/// A validated share-link request.
#[derive(Debug, Clone)]
pub struct NewShare {
    /// Lifetime.
    pub ttl: ShareTtlHours,
    /// Label.
    pub label: Option<ShareLabel>,
    /// The widest artifact granted.
    pub scope: Artifact,
    /// Access limit (`None`: unlimited).
    pub max_accesses: Option<MaxAccesses>,
}

/// A new link and its token, shown this once.
#[derive(Debug)]
pub struct IssuedShare {
    /// The link.
    pub link: ShareLink,
    /// Its token.
    pub secret: PlainSecret,
}

/// Creates a share link for a completed scan.
///
/// # Errors
/// `Denied`, `NotFound`; `Conflict(ScanNotCompleted)` for a scan not completed.
pub async fn create_share_link(
    deps: &Deps,
    actor: &Actor,
    scan: ScanId,
    new: NewShare,
) -> ServiceResult<IssuedShare> {
    let scan = scan_for(deps, actor, Action::Operate, scan).await?;
    if scan.status != ScanStatus::Completed {
        return Err(ServiceError::Conflict {
            constraint: Conflict::ScanNotCompleted,
        });
    }
    let now = deps.now();
    let secret = PlainSecret::from_random(SecretKind::Share, deps.secrets.random_32());
    let link = ShareLink {
        id: ShareLinkId::from_uuid(deps.ids.new_id()),
        tenant_id: actor.tenant_id,
        scan_id: scan.id,
        scope: new.scope,
        label: new.label,
        expires_at: new.ttl.expiry_from(now),
        max_accesses: new.max_accesses,
        access_count: 0,
        last_accessed_at: None,
        revoked_at: None,
        created_at: now,
        hint: secret.hint(),
    };
    let audit = deps.audit_by(
        actor,
        actions::SHARE_LINK_CREATED,
        link.id.as_uuid(),
        json!({"scanId": scan.id.to_string(), "scope": link.scope.as_str(), "expiresHours": new.ttl.get(), "hint": link.hint}),
    )
    .in_environment(scan.environment_id);
    deps.store
        .create_share_link(&link, &secret.digest(), &audit)
        .await?;
    Ok(IssuedShare { link, secret })
}

/// Lists a scan's share links.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn list_share_links(
    deps: &Deps,
    actor: &Actor,
    scan: ScanId,
    page: PageRequest,
) -> ServiceResult<Page<ShareLink>> {
    scan_for(deps, actor, Action::Read, scan).await?;
    Ok(deps
        .store
        .list_share_links(actor.tenant_id, scan, page)
        .await?)
}

/// Revokes a share link, effective at once.
///
/// # Errors
/// `Denied`, `NotFound`, store errors.
pub async fn revoke_share_link(
    deps: &Deps,
    actor: &Actor,
    id: ShareLinkId,
) -> ServiceResult<ShareLink> {
    let link = deps.store.get_share_link(actor.tenant_id, id).await?;
    let scan = scan_for(deps, actor, Action::Operate, link.scan_id).await?;
    let audit = deps
        .audit_by(
            actor,
            actions::SHARE_LINK_REVOKED,
            id.as_uuid(),
            json!({"scanId": link.scan_id.to_string()}),
        )
        .in_environment(scan.environment_id);
    Ok(deps
        .store
        .revoke_share_link(actor.tenant_id, id, deps.now(), &audit)
        .await?)
}

/// What an opened link shows.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The link, with this access counted.
    pub link: ShareLink,
    /// The scan.
    pub scan: Scan,
    /// Its artifacts (the caller shows only what the link grants).
    pub artifacts: ScanArtifacts,
    /// The name of the tenant that shares it (`None` should it not be found).
    pub tenant_name: Option<String>,
    /// The name of the fleet that ran it (`None` once the fleet is deleted).
    pub fleet_name: Option<String>,
}

/// Why a share link does not open.
#[derive(Debug, thiserror::Error)]
pub enum ShareRefused {
    /// Unknown, malformed, expired, revoked or used up: all look the same (404).
    #[error("share link not found or no longer valid")]
    Unavailable,
    /// The link does not grant this artifact (403); it carries the link's scope.
    #[error("this link grants up to the {0} only")]
    OutOfScope(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] ServiceError),
}

/// Opens a share link for `artifact` (the landing page asks for the report), counting
/// and auditing the access.
///
/// # Errors
/// See [`ShareRefused`].
pub async fn open(deps: &Deps, token: &str, artifact: Artifact) -> Result<Shared, ShareRefused> {
    let secret =
        PlainSecret::parse_kind(token, SecretKind::Share).map_err(|_| ShareRefused::Unavailable)?;
    let audit = |link: &ShareLink| {
        deps.audit(
            link.tenant_id,
            AuditActor::Public,
            actions::SHARE_LINK_ACCESSED,
            Some(link.id.as_uuid()),
            json!({"artifact": artifact.as_str(), "accessCount": link.access_count}),
        )
    };
    let access = deps
        .store
        .access_share_link(&secret.digest(), deps.now(), artifact, &audit)
        .await
        .map_err(ServiceError::from)?;
    let (link, scan) = match access {
        ShareAccess::Opened(link, scan) => (link, scan),
        ShareAccess::OutOfScope(link) => return Err(ShareRefused::OutOfScope(link.scope.as_str())),
        ShareAccess::Unavailable => return Err(ShareRefused::Unavailable),
    };
    let artifacts = deps
        .store
        .get_scan_artifacts(link.tenant_id, link.scan_id)
        .await
        .map_err(ServiceError::from)?
        .ok_or(ShareRefused::Unavailable)?;
    // Names for the reader; ids remain the reference, so a missing one is no error.
    let tenant_name = deps
        .store
        .get_tenant(scan.tenant_id)
        .await
        .ok()
        .map(|t| t.name.to_string());
    let fleet_name = deps
        .store
        .get_fleet(scan.tenant_id, scan.fleet_id)
        .await
        .ok()
        .map(|f| f.name.to_string());
    Ok(Shared {
        link,
        scan,
        artifacts,
        tenant_name,
        fleet_name,
    })
}
