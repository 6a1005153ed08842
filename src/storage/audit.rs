//! The audit log: one record per accepted write, which is also each resource's history.

use deadpool_postgres::GenericClient;
use serde_json::Value;
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::{Listed, Page, Store, StoreError, find_all, list_page};

/// One accepted write.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: OffsetDateTime,
    /// The credential's name, such as `env:CRUD_AUTH_TOKEN`.
    pub actor: String,
    /// `create`, `update`, `delete` or `rollback`.
    pub action: String,
    /// `cluster`, `platform_component`, `namespace` or `rolebinding`.
    pub kind: String,
    pub resource_id: String,
    /// The revision the write produced.
    pub revision: i64,
    pub request_id: Option<String>,
    /// The resource as the API showed it before (`None` for a create) and after (`None` for
    /// a delete).
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A record about to be appended.
pub(super) struct NewRecord<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub kind: &'a str,
    pub resource_id: &'a str,
    pub revision: i64,
    pub request_id: Option<&'a str>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Narrows the audit log; `None` fields do not filter. Times are inclusive.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub kind: Option<String>,
    pub resource_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

const SELECT: &str = "
    select id, at, actor, action, kind, resource_id, revision, request_id, before, after
      from audit_log";

fn from_row(row: &Row) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: row.get("id"),
        at: row.get("at"),
        actor: row.get("actor"),
        action: row.get("action"),
        kind: row.get("kind"),
        resource_id: row.get("resource_id"),
        revision: row.get("revision"),
        request_id: row.get("request_id"),
        before: row.get("before"),
        after: row.get("after"),
    })
}

pub(super) async fn append(
    client: &impl GenericClient,
    record: NewRecord<'_>,
) -> Result<(), StoreError> {
    let statement = client
        .prepare_cached(
            "insert into audit_log
               (actor, action, kind, resource_id, revision, request_id, before, after)
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &record.actor,
                &record.action,
                &record.kind,
                &record.resource_id,
                &record.revision,
                &record.request_id,
                &record.before,
                &record.after,
            ],
        )
        .await?;
    Ok(())
}

/// The last revision a resource had, counting deletions: the next write continues after it
/// even if the resource was deleted in between.
pub(super) async fn last_revision(
    client: &impl GenericClient,
    kind: &str,
    resource_id: &str,
) -> Result<i64, StoreError> {
    let statement = client
        .prepare_cached(
            "select coalesce(max(revision), 0) from audit_log where kind = $1 and resource_id = $2",
        )
        .await?;
    Ok(client
        .query_one(&statement, &[&kind, &resource_id])
        .await?
        .get(0))
}

impl Store {
    /// Records newest first.
    pub async fn audit(
        &self,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<Listed<AuditRecord>, StoreError> {
        const WHERE: &str = "where ($1::text is null or kind = $1)
                              and ($2::text is null or resource_id = $2)
                              and ($3::text is null or actor = $3)
                              and ($4::text is null or action = $4)
                              and ($5::timestamptz is null or at >= $5)
                              and ($6::timestamptz is null or at <= $6)";
        self.bounded(async {
            let client = self.client().await?;
            list_page(
                &client,
                &format!("{SELECT} {WHERE}"),
                "at desc, id desc",
                &format!("select count(*) from audit_log {WHERE}"),
                &[
                    &filter.kind,
                    &filter.resource_id,
                    &filter.actor,
                    &filter.action,
                    &filter.since,
                    &filter.until,
                ],
                page,
                from_row,
            )
            .await
        })
        .await
    }

    /// One resource's revisions, newest first.
    pub async fn history(
        &self,
        kind: &str,
        id: &str,
        page: Page,
    ) -> Result<Listed<AuditRecord>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            list_page(
                &client,
                &format!("{SELECT} where kind = $1 and resource_id = $2"),
                "revision desc",
                "select count(*) from audit_log where kind = $1 and resource_id = $2",
                &[&kind, &id],
                page,
                from_row,
            )
            .await
        })
        .await
    }

    /// The record of one revision of a resource.
    pub async fn revision(
        &self,
        kind: &str,
        id: &str,
        revision: i64,
    ) -> Result<Option<AuditRecord>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let sql = format!("{SELECT} where kind = $1 and resource_id = $2 and revision = $3");
            Ok(find_all(&client, &sql, &[&kind, &id, &revision], from_row)
                .await?
                .pop())
        })
        .await
    }
}
