//! `rolebindings`: rolebinding definitions.

use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::Value;
use tokio_postgres::Row;

use super::{
    Listed, Page, Referrer, Resource, StoreError, parse_stored, violated_unique_constraint,
};
use crate::domain::{NamespaceId, RoleBinding, RoleBindingId, Subject, SubjectKind};

const SELECT: &str = "select id, role, subjects from rolebindings";

/// A subject as stored: the same JSON shape the domain serialises to.
#[derive(Deserialize)]
struct StoredSubject {
    kind: String,
    name: String,
    namespace: Option<String>,
    #[serde(rename = "apiGroup")]
    api_group: Option<String>,
}

fn from_row(row: &Row) -> Result<RoleBinding, StoreError> {
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
    Ok(RoleBinding {
        id: parse_stored(
            "rolebinding id",
            RoleBindingId::parse(row.get::<_, String>("id")),
        )?,
        role: row.get("role"),
        subjects,
    })
}

fn subjects_json(binding: &RoleBinding) -> Value {
    serde_json::to_value(&binding.subjects).expect("subjects serialise to JSON")
}

pub(super) async fn find_many(
    client: &impl GenericClient,
    ids: &[&str],
) -> Result<Vec<RoleBinding>, StoreError> {
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

impl Resource for RoleBinding {
    const KIND: &'static str = "rolebinding";
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
            .prepare_cached("select count(*) from rolebindings")
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
            .prepare_cached("insert into rolebindings (id, role, subjects) values ($1, $2, $3)")
            .await?;
        client
            .execute(
                &statement,
                &[&self.id.as_str(), &self.role, &subjects_json(self)],
            )
            .await
            .map_err(|error| match violated_unique_constraint(&error) {
                Some("rolebindings_pkey") => StoreError::AlreadyExists {
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
                "update rolebindings set role = $2, subjects = $3, updated_at = now() where id = $1",
            )
            .await?;
        client
            .execute(
                &statement,
                &[&self.id.as_str(), &self.role, &subjects_json(self)],
            )
            .await?;
        Ok(())
    }

    async fn referrers(client: &impl GenericClient, id: &str) -> Result<Vec<Referrer>, StoreError> {
        let statement = client
            .prepare_cached(
                "select cluster_id from cluster_rolebindings
                  where rolebinding_id = $1 order by cluster_id",
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
            .prepare_cached("delete from rolebindings where id = $1")
            .await?;
        client.execute(&statement, &[&id]).await?;
        Ok(())
    }
}
