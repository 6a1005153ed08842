//! `namespaces`: namespace definitions.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;

use super::{
    Listed, Page, Referrer, Resource, StoreError, Versioned, delete_by_id, find_all, find_one,
    list_page, parse_stored, referencing_clusters, unique_violation,
};
use crate::domain::{Namespace, NamespaceId};

const SELECT: &str = "select id, labels, annotations, revision from namespaces";

fn from_row(row: &Row) -> Result<Versioned<Namespace>, StoreError> {
    let string_map = |column: &str| -> Result<BTreeMap<String, String>, StoreError> {
        parse_stored(column, serde_json::from_value(row.get::<_, Value>(column)))
    };
    Ok(Versioned {
        revision: row.get("revision"),
        value: Namespace {
            id: parse_stored(
                "namespace id",
                NamespaceId::parse(row.get::<_, String>("id")),
            )?,
            labels: string_map("labels")?,
            annotations: string_map("annotations")?,
        },
    })
}

fn json(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

pub(super) async fn find_many(
    client: &impl GenericClient,
    ids: &[&str],
) -> Result<Vec<Namespace>, StoreError> {
    let sql = format!("{SELECT} where id = any($1::text[])");
    let found = find_all(client, &sql, &[&ids], from_row).await?;
    Ok(found.into_iter().map(|v| v.value).collect())
}

impl Resource for Namespace {
    const KIND: &'static str = "namespace";
    const AUDIT_KIND: &'static str = "namespace";
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
            "select count(*) from namespaces",
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
            .prepare_cached("insert into namespaces (id, labels, annotations, revision) values ($1, $2, $3, $4)")
            .await?;
        client
            .execute(
                &statement,
                &[
                    &self.id,
                    &json(&self.labels),
                    &json(&self.annotations),
                    &revision,
                ],
            )
            .await
            .map_err(|e| {
                unique_violation(e, Self::KIND, &[("namespaces_pkey", "id")], |_| {
                    self.id.to_string()
                })
            })?;
        Ok(())
    }

    async fn replace(&self, client: &impl GenericClient, revision: i64) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached(
                "update namespaces set labels = $2, annotations = $3, revision = $4, updated_at = now()
                  where id = $1",
            )
            .await?;
        client
            .execute(
                &statement,
                &[
                    &self.id,
                    &json(&self.labels),
                    &json(&self.annotations),
                    &revision,
                ],
            )
            .await?;
        Ok(())
    }

    async fn referrers(client: &impl GenericClient, id: &str) -> Result<Vec<Referrer>, StoreError> {
        referencing_clusters(client, "cluster_namespaces", "namespace_id", id).await
    }

    async fn delete(client: &impl GenericClient, id: &str) -> Result<(), StoreError> {
        delete_by_id(client, "namespaces", id).await
    }

    async fn dependent_clusters(
        client: &impl GenericClient,
        id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let referrers =
            referencing_clusters(client, "cluster_namespaces", "namespace_id", id).await?;
        Ok(referrers.into_iter().map(|r| r.id).collect())
    }
}
