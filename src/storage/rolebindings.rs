//! `rolebindings`: rolebinding definitions.

use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::Value;
use tokio_postgres::Row;

use super::{
    Listed, Page, Referrer, Resource, StoreError, Versioned, delete_by_id, find_all, find_one,
    list_page, parse_stored, referencing_clusters, unique_violation,
};
use crate::domain::{NamespaceId, RoleBinding, RoleBindingId, Subject, SubjectKind};

const SELECT: &str = "select id, role, subjects, revision from rolebindings";

/// A subject as stored: the same JSON shape the domain serialises to.
#[derive(Deserialize)]
struct StoredSubject {
    kind: String,
    name: String,
    namespace: Option<String>,
    #[serde(rename = "apiGroup")]
    api_group: Option<String>,
}

fn from_row(row: &Row) -> Result<Versioned<RoleBinding>, StoreError> {
    let stored: Vec<StoredSubject> = parse_stored(
        "subjects",
        serde_json::from_value(row.get::<_, Value>("subjects")),
    )?;
    let subjects = stored
        .into_iter()
        .map(|s| {
            Ok(Subject {
                kind: parse_stored("subject kind", SubjectKind::parse(&s.kind))?,
                name: s.name,
                namespace: s
                    .namespace
                    .map(|n| parse_stored("subject namespace", NamespaceId::parse(n)))
                    .transpose()?,
                api_group: s.api_group,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Versioned {
        revision: row.get("revision"),
        value: RoleBinding {
            id: parse_stored(
                "rolebinding id",
                RoleBindingId::parse(row.get::<_, String>("id")),
            )?,
            role: row.get("role"),
            subjects,
        },
    })
}

fn subjects_json(binding: &RoleBinding) -> Value {
    serde_json::to_value(&binding.subjects).expect("subjects serialise to JSON")
}

pub(super) async fn find_many(
    client: &impl GenericClient,
    ids: &[&str],
) -> Result<Vec<RoleBinding>, StoreError> {
    let sql = format!("{SELECT} where id = any($1::text[])");
    let found = find_all(client, &sql, &[&ids], from_row).await?;
    Ok(found.into_iter().map(|v| v.value).collect())
}

impl Resource for RoleBinding {
    const KIND: &'static str = "rolebinding";
    const AUDIT_KIND: &'static str = "rolebinding";
    type Filter = ();

    fn id(&self) -> &str {
        self.id.as_str()
    }

    async fn find(
        client: &impl GenericClient,
        id: &str,
        lock: bool,
    ) -> Result<Option<Versioned<Self>>, StoreError> {
        find_one(
            client,
            &format!("{SELECT} where id = $1"),
            id,
            lock,
            from_row,
        )
        .await
    }

    async fn list(
        client: &impl GenericClient,
        _filter: &(),
        page: Page,
    ) -> Result<Listed<Versioned<Self>>, StoreError> {
        list_page(
            client,
            SELECT,
            "id",
            "select count(*) from rolebindings",
            &[],
            page,
            from_row,
        )
        .await
    }

    async fn lock_references(&self, _client: &impl GenericClient) -> Result<(), StoreError> {
        Ok(())
    }

    async fn insert(&self, client: &impl GenericClient, revision: i64) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached(
                "insert into rolebindings (id, role, subjects, revision) values ($1, $2, $3, $4)",
            )
            .await?;
        client
            .execute(
                &statement,
                &[&self.id, &self.role, &subjects_json(self), &revision],
            )
            .await
            .map_err(|e| {
                unique_violation(e, Self::KIND, &[("rolebindings_pkey", "id")], |_| {
                    self.id.to_string()
                })
            })?;
        Ok(())
    }

    async fn replace(&self, client: &impl GenericClient, revision: i64) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached(
                "update rolebindings set role = $2, subjects = $3, revision = $4, updated_at = now()
                  where id = $1",
            )
            .await?;
        client
            .execute(
                &statement,
                &[&self.id, &self.role, &subjects_json(self), &revision],
            )
            .await?;
        Ok(())
    }

    async fn referrers(client: &impl GenericClient, id: &str) -> Result<Vec<Referrer>, StoreError> {
        referencing_clusters(client, "cluster_rolebindings", "rolebinding_id", id).await
    }

    async fn delete(client: &impl GenericClient, id: &str) -> Result<(), StoreError> {
        delete_by_id(client, "rolebindings", id).await
    }

    async fn dependent_clusters(
        client: &impl GenericClient,
        id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let referrers =
            referencing_clusters(client, "cluster_rolebindings", "rolebinding_id", id).await?;
        Ok(referrers.into_iter().map(|r| r.id).collect())
    }
}
