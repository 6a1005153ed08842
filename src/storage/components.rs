//! `platform_components` and their dependency lists.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{
    Listed, Page, Param, Referrer, Resource, StoreError, Versioned, find_all, list_page,
    missing_ids, parse_stored, referencing_clusters,
};
use crate::domain::component::dependency_order;
use crate::domain::{ComponentId, FieldErrors, Kind, PlatformComponent};

/// Narrows a component list; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ComponentFilter {
    pub component_version: Option<String>,
}

/// The whole catalog, for rules over all of it.
async fn find_every(client: &impl GenericClient) -> Result<Vec<PlatformComponent>, StoreError> {
    let sql = format!("{} order by id", PlatformComponent::SELECT);
    let found = find_all(client, &sql, &[], PlatformComponent::from_row).await?;
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
    const KIND: Kind = Kind::PlatformComponent;
    const TABLE: &'static str = "platform_components";
    const SELECT: &'static str = "
        select id, component_path, component_version, cluster_env_enabled, oci_url, oci_tag,
               revision,
               array(select d.depends_on_id
                       from platform_component_dependencies d
                      where d.component_id = platform_components.id
                      order by d.position) as depends_on
          from platform_components";
    const COLUMNS: &'static [&'static str] = &[
        "component_path",
        "component_version",
        "cluster_env_enabled",
        "oci_url",
        "oci_tag",
    ];
    const UNIQUE: &'static [(&'static str, &'static str)] = &[("platform_components_pkey", "id")];
    const REFERENCED_BY_CLUSTERS: Option<(&'static str, &'static str)> =
        Some(("cluster_platform_components", "component_id"));
    type Filter = ComponentFilter;

    fn id(&self) -> &str {
        self.id.as_str()
    }

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

    fn row(&self) -> Vec<Param> {
        vec![
            Box::new(self.component_path.clone()),
            Box::new(self.component_version.clone()),
            Box::new(self.cluster_env_enabled),
            Box::new(self.oci_url.clone()),
            Box::new(self.oci_tag.clone()),
        ]
    }

    async fn list(
        client: &impl GenericClient,
        filter: &ComponentFilter,
        page: Page,
    ) -> Result<Listed<Versioned<Self>>, StoreError> {
        const WHERE: &str = "where ($1::text is null or component_version = $1)";
        list_page(
            client,
            &format!("{} {WHERE}", Self::SELECT),
            "id",
            &format!("select count(*) from platform_components {WHERE}"),
            &[&filter.component_version],
            page,
            Self::from_row,
        )
        .await
    }

    async fn lock_references(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        let wanted: Vec<&str> = self.depends_on.iter().map(|d| d.as_str()).collect();
        let missing = missing_ids(client, Self::TABLE, &wanted).await?;
        if missing.is_empty() {
            return Ok(());
        }
        let mut errors = FieldErrors::new();
        for (i, id) in missing {
            errors.add(
                format!("depends_on[{i}]"),
                format!("no {} with id {id:?} exists in the catalog", Self::KIND),
            );
        }
        Err(StoreError::UnknownReferences(errors))
    }

    async fn write_owned_rows(
        &self,
        client: &impl GenericClient,
        replacing: bool,
    ) -> Result<(), StoreError> {
        if replacing {
            let clear = client
                .prepare_cached(
                    "delete from platform_component_dependencies where component_id = $1",
                )
                .await?;
            client.execute(&clear, &[&self.id]).await?;
        }
        insert_dependencies(client, self).await
    }

    async fn referrers(client: &impl GenericClient, id: &str) -> Result<Vec<Referrer>, StoreError> {
        let (table, column) = Self::REFERENCED_BY_CLUSTERS.expect("clusters reference components");
        let mut referrers = referencing_clusters(client, table, column, id).await?;
        let dependents = find_all(
            client,
            "select component_id from platform_component_dependencies
              where depends_on_id = $1 order by component_id",
            &[&id],
            |row| {
                Ok(Referrer {
                    kind: Self::KIND.label(),
                    id: row.get(0),
                })
            },
        )
        .await?;
        referrers.extend(dependents);
        Ok(referrers)
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
