//! `namespaces`: namespace definitions.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;

use super::{Listed, Page, Param, Resource, StoreError, Versioned, list_unfiltered, parse_stored};
use crate::domain::{Kind, Namespace, NamespaceId};

fn json(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

impl Resource for Namespace {
    const KIND: Kind = Kind::Namespace;
    const TABLE: &'static str = "namespaces";
    const SELECT: &'static str = "select id, labels, annotations, revision from namespaces";
    const COLUMNS: &'static [&'static str] = &["labels", "annotations"];
    const UNIQUE: &'static [(&'static str, &'static str)] = &[("namespaces_pkey", "id")];
    const REFERENCED_BY_CLUSTERS: Option<(&'static str, &'static str)> =
        Some(("cluster_namespaces", "namespace_id"));
    type Filter = ();

    fn id(&self) -> &str {
        self.id.as_str()
    }

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

    fn row(&self) -> Vec<Param> {
        vec![
            Box::new(json(&self.labels)),
            Box::new(json(&self.annotations)),
        ]
    }

    async fn list(
        client: &impl GenericClient,
        _filter: &(),
        page: Page,
    ) -> Result<Listed<Versioned<Self>>, StoreError> {
        list_unfiltered(client, page).await
    }
}
