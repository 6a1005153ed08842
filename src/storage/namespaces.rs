//! `namespaces`: namespace definitions.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;

use super::{
    Listed, Page, Referrer, Resource, StoreError, parse_stored, violated_unique_constraint,
};
use crate::domain::{Namespace, NamespaceId};

const SELECT: &str = "select id, labels, annotations from namespaces";

fn from_row(row: &Row) -> Result<Namespace, StoreError> {
    let string_map = |column: &str| -> Result<BTreeMap<String, String>, StoreError> {
        parse_stored(column, serde_json::from_value(row.get::<_, Value>(column)))
    };
    Ok(Namespace {
        id: parse_stored(
            "namespace id",
            NamespaceId::parse(row.get::<_, String>("id")),
        )?,
        labels: string_map("labels")?,
        annotations: string_map("annotations")?,
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
    let statement = client
        .prepare_cached(&format!("{SELECT} where id = any($1::text[])"))
        .await?;
    client
        .query(&statement, &[&ids])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

impl Resource for Namespace {
    const KIND: &'static str = "namespace";
    type Filter = ();

    fn id(&self) -> &str {
        self.id.as_str()
    }

    async fn find(
        client: &impl GenericClient,
        id: &str,
        lock: bool,
    ) -> Result<Option<Self>, StoreError> {
        let sql = if lock {
            format!("{SELECT} where id = $1 for update")
        } else {
            format!("{SELECT} where id = $1")
        };
        let statement = client.prepare_cached(&sql).await?;
        client
            .query_opt(&statement, &[&id])
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    async fn list(
        client: &impl GenericClient,
        _filter: &(),
        page: Page,
    ) -> Result<Listed<Self>, StoreError> {
        let statement = client
            .prepare_cached(&format!("{SELECT} order by id limit $1 offset $2"))
            .await?;
        let rows = client
            .query(&statement, &[&page.limit, &page.offset])
            .await?;
        let count = client
            .prepare_cached("select count(*) from namespaces")
            .await?;
        let total: i64 = client.query_one(&count, &[]).await?.get(0);
        Ok(Listed {
            items: rows.iter().map(from_row).collect::<Result<_, _>>()?,
            total,
        })
    }

    async fn lock_references(&self, _client: &impl GenericClient) -> Result<(), StoreError> {
        Ok(())
    }

    async fn insert(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached("insert into namespaces (id, labels, annotations) values ($1, $2, $3)")
            .await?;
        client
            .execute(
                &statement,
                &[
                    &self.id.as_str(),
                    &json(&self.labels),
                    &json(&self.annotations),
                ],
            )
            .await
            .map_err(|error| match violated_unique_constraint(&error) {
                Some("namespaces_pkey") => StoreError::AlreadyExists {
                    kind: Self::KIND,
                    field: "id",
                    value: self.id.to_string(),
                },
                _ => error.into(),
            })?;
        Ok(())
    }

    async fn replace(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached(
                "update namespaces set labels = $2, annotations = $3, updated_at = now()
                  where id = $1",
            )
            .await?;
        client
            .execute(
                &statement,
                &[
                    &self.id.as_str(),
                    &json(&self.labels),
                    &json(&self.annotations),
                ],
            )
            .await?;
        Ok(())
    }

    async fn referrers(client: &impl GenericClient, id: &str) -> Result<Vec<Referrer>, StoreError> {
        let statement = client
            .prepare_cached(
                "select cluster_id from cluster_namespaces
                  where namespace_id = $1 order by cluster_id",
            )
            .await?;
        Ok(client
            .query(&statement, &[&id])
            .await?
            .iter()
            .map(|row| Referrer {
                kind: "cluster",
                id: row.get(0),
            })
            .collect())
    }

    async fn delete(client: &impl GenericClient, id: &str) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached("delete from namespaces where id = $1")
            .await?;
        client.execute(&statement, &[&id]).await?;
        Ok(())
    }
}
