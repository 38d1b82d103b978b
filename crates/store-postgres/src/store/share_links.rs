//! The share-link methods of [`PgStore`]. The `ScanStore` impl in `scans.rs` delegates
//! to the functions here.
//!
//! Locks: `create` key-share locks the scan (a parent before its child, as everywhere),
//! so a concurrent `delete_fleet` either commits first (`NotFound`) or waits and
//! deletes the new link too. `access` locks the link's row and nothing else but the
//! tenant's (through the audit event's foreign key): concurrent opens of one link take
//! turns, each deciding on the count the previous one committed, and `delete_fleet`
//! (fleet, then scans, then links) can only wait for it, never deadlock with it.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use fleetpass_domain::Timestamp;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::ids::{ScanId, ShareLinkId, TenantId};
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_domain::secret::SecretDigest;
use fleetpass_domain::share::{Artifact, ShareLink, ShareStatus};
use fleetpass_ports::RepoError;
use fleetpass_ports::store::{AuditFor, ShareAccess};
use uuid::Uuid;

use super::{PgStore, insert_audit, overfetch, scans};
use crate::cached::CachedExt as _;
use crate::error::DbError;
use crate::rows::{NewShareLinkRow, ShareLinkRow, convert_all};
use crate::schema::{scans as scan_rows, share_links};

/// Reads a share link of `tenant`.
async fn load(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: ShareLinkId,
) -> Result<ShareLink, DbError> {
    let row = share_links::table
        .filter(share_links::tenant_id.eq(tenant.as_uuid()))
        .filter(share_links::id.eq(id.as_uuid()))
        .select(ShareLinkRow::as_select())
        .first(conn)
        .await?;
    Ok(ShareLink::try_from(row)?)
}

/// `create_share_link`.
pub(super) async fn create(
    store: &PgStore,
    link: &ShareLink,
    digest: &SecretDigest,
    audit: &AuditEvent,
) -> Result<(), RepoError> {
    store
        .transaction(|c| {
            async move {
                // Checks the scan is the link's tenant's, and keeps a concurrent
                // `delete_fleet` from deleting it in between (which would turn the
                // insert into a foreign key violation instead of NotFound).
                scan_rows::table
                    .filter(scan_rows::tenant_id.eq(link.tenant_id.as_uuid()))
                    .filter(scan_rows::id.eq(link.scan_id.as_uuid()))
                    .select(scan_rows::id)
                    .for_key_share()
                    .first::<Uuid>(c)
                    .await?;
                diesel::insert_into(share_links::table)
                    .values(NewShareLinkRow::new(link, digest))
                    .execute(c)
                    .await?;
                insert_audit(c, std::slice::from_ref(audit)).await
            }
            .scope_boxed()
        })
        .await
}

/// `get_share_link`.
pub(super) async fn get(
    store: &PgStore,
    tenant: TenantId,
    id: ShareLinkId,
) -> Result<ShareLink, RepoError> {
    store
        .run(|c| async move { load(c, tenant, id).await }.scope_boxed())
        .await
}

/// `list_share_links`.
pub(super) async fn list(
    store: &PgStore,
    tenant: TenantId,
    scan: ScanId,
    page: PageRequest,
) -> Result<Page<ShareLink>, RepoError> {
    store
        .run(|c| {
            async move {
                // An empty page must not hide that the scan does not exist.
                scans::load(c, tenant, scan).await?;
                let mut query = share_links::table
                    .filter(share_links::tenant_id.eq(tenant.as_uuid()))
                    .filter(share_links::scan_id.eq(scan.as_uuid()))
                    .select(ShareLinkRow::as_select())
                    .order(share_links::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(cursor) = page.cursor {
                    query = query.filter(share_links::id.lt(cursor.last_id()));
                }
                let items: Vec<ShareLink> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |l| l.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
}

/// `revoke_share_link`.
pub(super) async fn revoke(
    store: &PgStore,
    tenant: TenantId,
    id: ShareLinkId,
    at: Timestamp,
    audit: &AuditEvent,
) -> Result<ShareLink, RepoError> {
    store
        .transaction(|c| {
            async move {
                // Only an unrevoked link changes, so a repeat (or a concurrent second
                // revocation) keeps the first `revoked_at` and writes no audit event.
                let revoked = diesel::update(
                    share_links::table
                        .filter(share_links::tenant_id.eq(tenant.as_uuid()))
                        .filter(share_links::id.eq(id.as_uuid()))
                        .filter(share_links::revoked_at.is_null()),
                )
                .set(share_links::revoked_at.eq(at))
                .returning(ShareLinkRow::as_returning())
                .cached()
                .get_result(c)
                .await
                .optional()?;
                match revoked {
                    Some(row) => {
                        insert_audit(c, std::slice::from_ref(audit)).await?;
                        Ok(ShareLink::try_from(row)?)
                    }
                    None => load(c, tenant, id).await,
                }
            }
            .scope_boxed()
        })
        .await
}

/// `find_share_link_by_digest`: the link in any tenant and state, read without a lock.
pub(super) async fn find_by_digest(
    store: &PgStore,
    digest: &SecretDigest,
) -> Result<Option<ShareLink>, RepoError> {
    let digest = digest.as_bytes().as_slice();
    store
        .run(|c| {
            async move {
                let row = share_links::table
                    .filter(share_links::digest.eq(digest))
                    .select(ShareLinkRow::as_select())
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(ShareLink::try_from).transpose()?)
            }
            .scope_boxed()
        })
        .await
}

/// `access_share_link`: race-free across processes because the link's row lock (`FOR
/// NO KEY UPDATE`) makes concurrent opens take turns, each deciding with
/// `ShareLink::status` and `ShareLink::grants` on the link as the previous one
/// committed it. A refusal writes nothing (the transaction ends having only read).
pub(super) async fn access(
    store: &PgStore,
    digest: &SecretDigest,
    now: Timestamp,
    artifact: Artifact,
    audit: AuditFor<'_, ShareLink>,
) -> Result<ShareAccess, RepoError> {
    let digest = digest.as_bytes().as_slice();
    store
        .transaction(|c| {
            async move {
                // Waits for any open holding the link, then reads what it committed
                // (READ COMMITTED re-reads a locked row's newest version).
                let row = share_links::table
                    .filter(share_links::digest.eq(digest))
                    .select(ShareLinkRow::as_select())
                    .for_no_key_update()
                    .first(c)
                    .await
                    .optional()?;
                let Some(row) = row else {
                    return Ok(ShareAccess::Unavailable);
                };
                let link = ShareLink::try_from(row)?;
                if link.status(now) != ShareStatus::Active {
                    return Ok(ShareAccess::Unavailable);
                }
                // Decided under the lock too, after the status: only a working link may
                // say what it grants.
                if !link.grants(artifact) {
                    return Ok(ShareAccess::OutOfScope(link));
                }
                let row = diesel::update(share_links::table.find(link.id.as_uuid()))
                    .set((
                        share_links::access_count.eq(share_links::access_count + 1),
                        share_links::last_accessed_at.eq(now),
                    ))
                    .returning(ShareLinkRow::as_returning())
                    .cached()
                    .get_result(c)
                    .await?;
                let opened = ShareLink::try_from(row)?;
                // The link's foreign key keeps its scan: a cascade deleting the scan
                // deletes the link too, so it waits for our lock to commit first.
                let scan = scans::load(c, opened.tenant_id, opened.scan_id).await?;
                insert_audit(c, &[audit(&opened)]).await?;
                Ok(ShareAccess::Opened(opened, scan))
            }
            .scope_boxed()
        })
        .await
}
