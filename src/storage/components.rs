//! `platform_components` and their dependency lists.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{
    Listed, Page, Referrer, Resource, StoreError, Versioned, delete_by_id, find_all, find_one,
    list_page, missing_ids, parse_stored, referencing_clusters, unique_violation,
};
use crate::domain::component::dependency_order;
use crate::domain::{ComponentId, FieldErrors, PlatformComponent};

/// Narrows a component list; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ComponentFilter {
    pub component_version: Option<String>,
}

const SELECT: &str = "
    select c.id, c.component_path, c.component_version, c.cluster_env_enabled,
           c.oci_url, c.oci_tag, c.revision,
           array(select d.depends_on_id
                   from platform_component_dependencies d
                  where d.component_id = c.id
                  order by d.position) as depends_on
      from platform_components c";

fn from_row(row: &Row) -> Result<Versioned<PlatformComponent>, StoreError> {
    let id: String = row.get("id");
    let depends_on: Vec<String> = row.get("depends_on");
    let value = PlatformComponent {
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
    };
    Ok(Versioned {
        revision: row.get("revision"),
        value,
    })
}

/// The values of a `platform_components` row, in column order: id, component_path,
/// component_version, cluster_env_enabled, oci_url, oci_tag, revision.
fn row_values<'a>(
    c: &'a PlatformComponent,
    revision: &'a i64,
) -> [&'a (dyn tokio_postgres::types::ToSql + Sync); 7] {
    [
        &c.id,
        &c.component_path,
        &c.component_version,
        &c.cluster_env_enabled,
        &c.oci_url,
        &c.oci_tag,
        revision,
    ]
}

/// The catalog entries with these ids (those that exist).
pub(super) async fn find_many(
    client: &impl GenericClient,
    ids: &[&str],
) -> Result<Vec<PlatformComponent>, StoreError> {
    let sql = format!("{SELECT} where c.id = any($1::text[])");
    let found = find_all(client, &sql, &[&ids], from_row).await?;
    Ok(found.into_iter().map(|v| v.value).collect())
}

/// The whole catalog, for rules over all of it.
async fn find_every(client: &impl GenericClient) -> Result<Vec<PlatformComponent>, StoreError> {
    let found = find_all(client, &format!("{SELECT} order by c.id"), &[], from_row).await?;
    Ok(found.into_iter().map(|v| v.value).collect())
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
        .execute(&statement, &[&component.id, &depends_on])
        .await?;
    Ok(())
}

impl Resource for PlatformComponent {
    const KIND: &'static str = "platform component";
    const AUDIT_KIND: &'static str = "platform_component";
    type Filter = ComponentFilter;

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
            &format!("{SELECT} where c.id = $1"),
            id,
            lock,
            from_row,
        )
        .await
    }

    async fn list(
        client: &impl GenericClient,
        filter: &ComponentFilter,
        page: Page,
    ) -> Result<Listed<Versioned<Self>>, StoreError> {
        const WHERE: &str = "where ($1::text is null or component_version = $1)";
        list_page(
            client,
            &format!("{SELECT} {WHERE}"),
            "id",
            &format!("select count(*) from platform_components {WHERE}"),
            &[&filter.component_version],
            page,
            from_row,
        )
        .await
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

    async fn insert(&self, client: &impl GenericClient, revision: i64) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached(
                "insert into platform_components
                   (id, component_path, component_version, cluster_env_enabled, oci_url, oci_tag,
                    revision)
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await?;
        client
            .execute(&statement, &row_values(self, &revision))
            .await
            .map_err(|e| {
                unique_violation(e, Self::KIND, &[("platform_components_pkey", "id")], |_| {
                    self.id.to_string()
                })
            })?;
        insert_dependencies(client, self).await
    }

    async fn replace(&self, client: &impl GenericClient, revision: i64) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached(
                "update platform_components
                    set component_path = $2, component_version = $3, cluster_env_enabled = $4,
                        oci_url = $5, oci_tag = $6, revision = $7, updated_at = now()
                  where id = $1",
            )
            .await?;
        client
            .execute(&statement, &row_values(self, &revision))
            .await?;
        let clear = client
            .prepare_cached("delete from platform_component_dependencies where component_id = $1")
            .await?;
        client.execute(&clear, &[&self.id]).await?;
        insert_dependencies(client, self).await
    }

    async fn referrers(client: &impl GenericClient, id: &str) -> Result<Vec<Referrer>, StoreError> {
        let mut referrers =
            referencing_clusters(client, "cluster_platform_components", "component_id", id).await?;
        let dependents = find_all(
            client,
            "select component_id from platform_component_dependencies
              where depends_on_id = $1 order by component_id",
            &[&id],
            |row| {
                Ok(Referrer {
                    kind: "platform component",
                    id: row.get(0),
                })
            },
        )
        .await?;
        referrers.extend(dependents);
        Ok(referrers)
    }

    async fn delete(client: &impl GenericClient, id: &str) -> Result<(), StoreError> {
        delete_by_id(client, "platform_components", id).await
    }

    async fn dependent_clusters(
        client: &impl GenericClient,
        id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let referrers =
            referencing_clusters(client, "cluster_platform_components", "component_id", id).await?;
        Ok(referrers.into_iter().map(|r| r.id).collect())
    }

    /// `depends_on` forms no cycle anywhere in the catalog: a component waiting for itself
    /// would never become ready on any cluster.
    async fn check_catalog(client: &impl GenericClient) -> Result<(), StoreError> {
        let catalog = find_every(client).await?;
        dependency_order(&catalog).map_err(|cycle| {
            StoreError::DependencyCycle(cycle.into_iter().map(|id| id.into_string()).collect())
        })?;
        Ok(())
    }
}
