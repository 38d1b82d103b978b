//! The [`AuditStore`](fleetpass_ports::store::AuditStore) part of [`PgStore`]: the audit
//! log.

use async_trait::async_trait;
use diesel::{ExpressionMethods, PgArrayExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use diesel_async::scoped_futures::ScopedFutureExt;
use fleetpass_domain::audit::AuditEvent;
use fleetpass_domain::ids::TenantId;
use fleetpass_domain::page::{Page, PageRequest};
use fleetpass_ports::RepoError;
use fleetpass_ports::store::{AuditFilter, AuditStore};
use uuid::Uuid;

use super::{PgStore, insert_audit, overfetch};
use crate::rows::{AuditRow, convert_all};
use crate::schema::audit_events;

#[async_trait]
impl AuditStore for PgStore {
    // ---- audit log ----

    async fn list_audit_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, RepoError> {
        self.run(|c| {
            async move {
                let mut query = audit_events::table
                    .filter(audit_events::tenant_id.eq(tenant.as_uuid()))
                    .select(AuditRow::as_select())
                    .order(audit_events::id.desc())
                    .limit(overfetch(page))
                    .into_boxed();
                if let Some(action) = &filter.action {
                    query = query.filter(audit_events::action.eq(action));
                }
                if let Some(actor) = filter.actor_id {
                    query = query.filter(audit_events::actor_id.eq(actor));
                }
                if let Some(target) = filter.target_id {
                    query = query.filter(audit_events::target_id.eq(target));
                }
                if let Some(since) = filter.since {
                    query = query.filter(audit_events::at.ge(since));
                }
                if let Some(envs) = &filter.environments {
                    // A NULL (tenant-wide) scope is contained by nothing.
                    let envs: Vec<Uuid> = envs.iter().map(|id| id.as_uuid()).collect();
                    query = query.filter(audit_events::environment_ids.is_contained_by(envs));
                }
                if let Some(cursor) = page.cursor {
                    query = query.filter(audit_events::id.lt(cursor.last_id()));
                }
                let items: Vec<AuditEvent> = convert_all(query.load(c).await?)?;
                Ok(Page::from_overfetch(items, page.limit, |e| e.id.as_uuid()))
            }
            .scope_boxed()
        })
        .await
    }

    async fn record_audit(&self, event: &AuditEvent) -> Result<(), RepoError> {
        let event = event.clone();
        self.run(|c| {
            async move { insert_audit(c, std::slice::from_ref(&event)).await }.scope_boxed()
        })
        .await
    }
}
