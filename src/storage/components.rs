//! `platform_components` and their dependency lists.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{
    Listed, Page, Referrer, Resource, StoreError, missing_ids, parse_stored,
    violated_unique_constraint,
};
use crate::domain::{ComponentId, FieldErrors, PlatformComponent};

/// Narrows a component list; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ComponentFilter {
    pub component_version: Option<String>,
}

const SELECT: &str = "
    select c.id, c.component_path, c.component_version, c.cluster_env_enabled,
           c.oci_url, c.oci_tag,
           array(select d.depends_on_id
                   from platform_component_dependencies d
                  where d.component_id = c.id
                  order by d.position) as depends_on
      from platform_components c";

fn from_row(row: &Row) -> Result<PlatformComponent, StoreError> {
    let id: String = row.get("id");
    let depends_on: Vec<String> = row.get("depends_on");
    Ok(PlatformComponent {
        id: parse_stored("platform component id", ComponentId::parse(id))?,
        component_path: row.get("component_path"),
        component_version: row.get("component_version"),
        cluster_env_enabled: row.get("cluster_env_enabled"),
        oci_url: row.get("oci_url"),
        oci_tag: row.get("oci_tag"),
        depends_on: depends_on
            .into_iter()
            .map(|d| parse_stored("dependency id", ComponentId::parse(d)))
            .collect::<Result<_, _>>()?,
    })
}

/// The catalog entries with these ids (those that exist).
pub(super) async fn find_many(
    client: &impl GenericClient,
    ids: &[&str],
) -> Result<Vec<PlatformComponent>, StoreError> {
    let statement = client
        .prepare_cached(&format!("{SELECT} where c.id = any($1::text[])"))
        .await?;
    client
        .query(&statement, &[&ids])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

async fn insert_dependencies(
    client: &impl GenericClient,
    component: &PlatformComponent,
) -> Result<(), StoreError> {
    let depends_on: Vec<&str> = component.depends_on.iter().map(|d| d.as_str()).collect();
    let statement = client
        .prepare_cached(
            "insert into platform_component_dependencies (component_id, depends_on_id, position)
             select $1, d.id, d.position::integer
               from unnest($2::text[]) with ordinality as d(id, position)",
        )
        .await?;
    client
        .execute(&statement, &[&component.id.as_str(), &depends_on])
        .await?;
    Ok(())
}

impl Resource for PlatformComponent {
    const KIND: &'static str = "platform component";
    type Filter = ComponentFilter;

    fn id(&self) -> &str {
        self.id.as_str()
    }

    async fn find(
        client: &impl GenericClient,
        id: &str,
        lock: bool,
    ) -> Result<Option<Self>, StoreError> {
        let sql = if lock {
            format!("{SELECT} where c.id = $1 for update of c")
        } else {
            format!("{SELECT} where c.id = $1")
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
        filter: &ComponentFilter,
        page: Page,
    ) -> Result<Listed<Self>, StoreError> {
        let statement = client
            .prepare_cached(&format!(
                "{SELECT} where ($1::text is null or c.component_version = $1)
                 order by c.id limit $2 offset $3"
            ))
            .await?;
        let rows = client
            .query(
                &statement,
                &[&filter.component_version, &page.limit, &page.offset],
            )
            .await?;
        let count = client
            .prepare_cached(
                "select count(*) from platform_components
                  where ($1::text is null or component_version = $1)",
            )
            .await?;
        let total: i64 = client
            .query_one(&count, &[&filter.component_version])
            .await?
            .get(0);
        Ok(Listed {
            items: rows.iter().map(from_row).collect::<Result<_, _>>()?,
            total,
        })
    }

    async fn lock_references(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        let wanted: Vec<&str> = self.depends_on.iter().map(|d| d.as_str()).collect();
        let missing = missing_ids(client, "platform_components", &wanted).await?;
        if missing.is_empty() {
            return Ok(());
        }
        let mut errors = FieldErrors::new();
        for (i, id) in missing {
            errors.add(
                format!("depends_on[{i}]"),
                format!("no platform component with id {id:?} exists in the catalog"),
            );
        }
        Err(StoreError::UnknownReferences(errors))
    }

    async fn insert(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached(
                "insert into platform_components
                   (id, component_path, component_version, cluster_env_enabled, oci_url, oci_tag)
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .await?;
        let inserted = client
            .execute(
                &statement,
                &[
                    &self.id.as_str(),
                    &self.component_path,
                    &self.component_version,
                    &self.cluster_env_enabled,
                    &self.oci_url,
                    &self.oci_tag,
                ],
            )
            .await;
        if let Err(error) = inserted {
            return Err(match violated_unique_constraint(&error) {
                Some("platform_components_pkey") => StoreError::AlreadyExists {
                    kind: Self::KIND,
                    field: "id",
                    value: self.id.to_string(),
                },
                _ => error.into(),
            });
        }
        insert_dependencies(client, self).await
    }

    async fn replace(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached(
                "update platform_components
                    set component_path = $2, component_version = $3, cluster_env_enabled = $4,
                        oci_url = $5, oci_tag = $6, updated_at = now()
                  where id = $1",
            )
            .await?;
        client
            .execute(
                &statement,
                &[
                    &self.id.as_str(),
                    &self.component_path,
                    &self.component_version,
                    &self.cluster_env_enabled,
                    &self.oci_url,
                    &self.oci_tag,
                ],
            )
            .await?;
        let clear = client
            .prepare_cached("delete from platform_component_dependencies where component_id = $1")
            .await?;
        client.execute(&clear, &[&self.id.as_str()]).await?;
        insert_dependencies(client, self).await
    }

    async fn referrers(client: &impl GenericClient, id: &str) -> Result<Vec<Referrer>, StoreError> {
        let statement = client
            .prepare_cached(
                "select 'cluster' as kind, cluster_id as id
                   from cluster_platform_components where component_id = $1
                 union all
                 select 'platform component', component_id
                   from platform_component_dependencies where depends_on_id = $1
                 order by 1, 2",
            )
            .await?;
        Ok(client
            .query(&statement, &[&id])
            .await?
            .iter()
            .map(|row| Referrer {
                kind: if row.get::<_, &str>(0) == "cluster" {
                    "cluster"
                } else {
                    "platform component"
                },
                id: row.get(1),
            })
            .collect())
    }

    async fn delete(client: &impl GenericClient, id: &str) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached("delete from platform_components where id = $1")
            .await?;
        client.execute(&statement, &[&id]).await?;
        Ok(())
    }
}
