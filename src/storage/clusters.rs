//! `clusters` and their references: `cluster_platform_components` (with overrides and
//! patches), `cluster_namespaces`, `cluster_rolebindings`.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;

use super::{
    Listed, Page, Param, Resource, StoreError, Versioned, find_one, list_page, missing_ids,
    parse_stored,
};
use crate::domain::{
    Cluster, ClusterDns, ClusterId, ClusterName, ComponentId, ComponentRef, FieldErrors, Kind,
    Namespace, NamespaceId, PlatformComponent, RoleBinding, RoleBindingId,
};

/// Narrows a cluster list; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ClusterFilter {
    pub cluster_dns: Option<String>,
    pub environment: Option<String>,
}

/// Loads the references of all `clusters` with three queries, whatever their number.
async fn with_references(
    client: &impl GenericClient,
    mut clusters: Vec<Versioned<Cluster>>,
) -> Result<Vec<Versioned<Cluster>>, StoreError> {
    if clusters.is_empty() {
        return Ok(clusters);
    }
    let ids: Vec<&str> = clusters.iter().map(|c| c.value.id.as_str()).collect();

    let statement = client
        .prepare_cached(
            "select cluster_id, component_id, enabled, oci_tag, component_path, patches
               from cluster_platform_components
              where cluster_id = any($1::text[])
              order by cluster_id, position",
        )
        .await?;
    let mut components: HashMap<String, Vec<ComponentRef>> = HashMap::new();
    for row in client.query(&statement, &[&ids]).await? {
        let patches = match row.get::<_, Option<Value>>("patches") {
            None => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => {
                return Err(StoreError::Corrupt(format!(
                    "patches must be an object: {other}"
                )));
            }
        };
        components
            .entry(row.get(0))
            .or_default()
            .push(ComponentRef {
                id: parse_stored(
                    "component reference",
                    ComponentId::parse(row.get::<_, String>(1)),
                )?,
                enabled: row.get("enabled"),
                oci_tag: row.get("oci_tag"),
                component_path: row.get("component_path"),
                patches,
            });
    }

    let mut namespaces = reference_lists(
        client,
        "select cluster_id, namespace_id from cluster_namespaces
          where cluster_id = any($1::text[]) order by cluster_id, position",
        &ids,
        NamespaceId::parse,
    )
    .await?;
    let mut rolebindings = reference_lists(
        client,
        "select cluster_id, rolebinding_id from cluster_rolebindings
          where cluster_id = any($1::text[]) order by cluster_id, position",
        &ids,
        RoleBindingId::parse,
    )
    .await?;

    for Versioned { value: cluster, .. } in &mut clusters {
        let id = cluster.id.as_str();
        cluster.platform_components = components.remove(id).unwrap_or_default();
        cluster.namespaces = namespaces.remove(id).unwrap_or_default();
        cluster.rolebindings = rolebindings.remove(id).unwrap_or_default();
    }
    Ok(clusters)
}

async fn reference_lists<T, E: std::fmt::Display>(
    client: &impl GenericClient,
    sql: &str,
    cluster_ids: &[&str],
    parse: impl Fn(String) -> Result<T, E>,
) -> Result<HashMap<String, Vec<T>>, StoreError> {
    let statement = client.prepare_cached(sql).await?;
    let mut lists: HashMap<String, Vec<T>> = HashMap::new();
    for row in client.query(&statement, &[&cluster_ids]).await? {
        let reference = parse_stored("cluster reference", parse(row.get(1)))?;
        lists.entry(row.get(0)).or_default().push(reference);
    }
    Ok(lists)
}

/// The clusters with these ids (those that exist), with their references.
pub(super) async fn find_many(
    client: &impl GenericClient,
    ids: &[&str],
) -> Result<Vec<Cluster>, StoreError> {
    let found = super::find_many::<Cluster>(client, ids).await?;
    Ok(with_references(client, found)
        .await?
        .into_iter()
        .map(|c| c.value)
        .collect())
}

fn node_count(cluster: &Cluster) -> Option<i32> {
    // Validated as u32 at the edge; the column is an integer with a non-negative check.
    cluster
        .node_count
        .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

async fn insert_references(
    client: &impl GenericClient,
    cluster: &Cluster,
) -> Result<(), StoreError> {
    let id = cluster.id.as_str();
    let refs = &cluster.platform_components;
    let component_ids: Vec<&str> = refs.iter().map(|r| r.id.as_str()).collect();
    let enabled: Vec<bool> = refs.iter().map(|r| r.enabled).collect();
    let oci_tags: Vec<Option<&str>> = refs.iter().map(|r| r.oci_tag.as_deref()).collect();
    let paths: Vec<Option<&str>> = refs.iter().map(|r| r.component_path.as_deref()).collect();
    let patches: Vec<Option<Value>> = refs
        .iter()
        .map(|r| r.patches.clone().map(Value::Object))
        .collect();
    let statement = client
        .prepare_cached(
            "insert into cluster_platform_components
               (cluster_id, component_id, position, enabled, oci_tag, component_path, patches)
             select $1, r.component_id, r.position::integer, r.enabled, r.oci_tag,
                    r.component_path, r.patches
               from unnest($2::text[], $3::boolean[], $4::text[], $5::text[], $6::jsonb[])
                    with ordinality as r(component_id, enabled, oci_tag, component_path, patches, position)",
        )
        .await?;
    client
        .execute(
            &statement,
            &[&id, &component_ids, &enabled, &oci_tags, &paths, &patches],
        )
        .await?;

    let namespaces: Vec<&str> = cluster.namespaces.iter().map(|n| n.as_str()).collect();
    let statement = client
        .prepare_cached(
            "insert into cluster_namespaces (cluster_id, namespace_id, position)
             select $1, n.id, n.position::integer
               from unnest($2::text[]) with ordinality as n(id, position)",
        )
        .await?;
    client.execute(&statement, &[&id, &namespaces]).await?;

    let rolebindings: Vec<&str> = cluster.rolebindings.iter().map(|r| r.as_str()).collect();
    let statement = client
        .prepare_cached(
            "insert into cluster_rolebindings (cluster_id, rolebinding_id, position)
             select $1, r.id, r.position::integer
               from unnest($2::text[]) with ordinality as r(id, position)",
        )
        .await?;
    client.execute(&statement, &[&id, &rolebindings]).await?;
    Ok(())
}

impl Resource for Cluster {
    /// Revokes the credentials issued with the cluster, each audited.
    async fn delete_dependents(
        client: &impl GenericClient,
        id: &str,
        context: &super::WriteContext,
    ) -> Result<(), StoreError> {
        super::credentials::revoke_issued_with(client, id, context).await
    }

    const KIND: Kind = Kind::Cluster;
    const TABLE: &'static str = "clusters";
    const SELECT: &'static str = "
        select id, cluster_name, cluster_dns, environment, node_count, vm_image,
               k0s_version, revision
          from clusters";
    const COLUMNS: &'static [&'static str] = &[
        "cluster_name",
        "cluster_dns",
        "environment",
        "node_count",
        "vm_image",
        "k0s_version",
    ];
    /// Creates and updates can collide on the id or on the DNS name.
    const UNIQUE: &'static [(&'static str, &'static str)] = &[
        ("clusters_pkey", "id"),
        ("clusters_cluster_dns_key", "cluster_dns"),
    ];
    /// Nothing references a cluster; its own references are deleted with it.
    const REFERENCED_BY_CLUSTERS: Option<(&'static str, &'static str)> = None;
    const WRITES_CLUSTER_ROWS: bool = true;
    type Filter = ClusterFilter;

    fn id(&self) -> &str {
        self.id.as_str()
    }

    /// A cluster row before its references are attached.
    fn from_row(row: &Row) -> Result<Versioned<Cluster>, StoreError> {
        let node_count: Option<i32> = row.get("node_count");
        let value = Cluster {
            id: parse_stored("cluster id", ClusterId::parse(row.get::<_, String>("id")))?,
            cluster_name: parse_stored(
                "cluster name",
                ClusterName::parse(row.get::<_, String>("cluster_name")),
            )?,
            cluster_dns: parse_stored(
                "cluster dns",
                ClusterDns::parse(row.get::<_, String>("cluster_dns")),
            )?,
            environment: row.get("environment"),
            node_count: node_count
                .map(|n| parse_stored("node count", u32::try_from(n)))
                .transpose()?,
            vm_image: row.get("vm_image"),
            k0s_version: row.get("k0s_version"),
            platform_components: Vec::new(),
            namespaces: Vec::new(),
            rolebindings: Vec::new(),
        };
        Ok(Versioned {
            revision: row.get("revision"),
            value,
        })
    }

    fn row(&self) -> Vec<Param> {
        vec![
            Box::new(self.cluster_name.clone()),
            Box::new(self.cluster_dns.clone()),
            Box::new(self.environment.clone()),
            Box::new(node_count(self)),
            Box::new(self.vm_image.clone()),
            Box::new(self.k0s_version.clone()),
        ]
    }

    fn unique_value(&self, field: &str) -> String {
        match field {
            "cluster_dns" => self.cluster_dns.to_string(),
            _ => self.id.to_string(),
        }
    }

    async fn find(
        client: &impl GenericClient,
        id: &str,
        lock: bool,
    ) -> Result<Option<Versioned<Self>>, StoreError> {
        let sql = format!("{} where id = $1", Self::SELECT);
        let Some(cluster) = find_one(client, &sql, id, lock, Self::from_row).await? else {
            return Ok(None);
        };
        Ok(with_references(client, vec![cluster]).await?.pop())
    }

    async fn list(
        client: &impl GenericClient,
        filter: &ClusterFilter,
        page: Page,
    ) -> Result<Listed<Versioned<Self>>, StoreError> {
        const WHERE: &str = "where ($1::text is null or cluster_dns = $1)
                               and ($2::text is null or environment = $2)";
        let listed = list_page(
            client,
            &format!("{} {WHERE}", Self::SELECT),
            "id",
            &format!("select count(*) from clusters {WHERE}"),
            &[&filter.cluster_dns, &filter.environment],
            page,
            Self::from_row,
        )
        .await?;
        Ok(Listed {
            items: with_references(client, listed.items).await?,
            total: listed.total,
        })
    }

    async fn lock_references(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        let mut errors = FieldErrors::new();
        // (kind, its table, the ids this cluster references); the cluster's field is
        // named after the kind's collection.
        let lists: [(Kind, &str, Vec<&str>); 3] = [
            (
                Kind::PlatformComponent,
                PlatformComponent::TABLE,
                self.platform_components
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect(),
            ),
            (
                Kind::Namespace,
                Namespace::TABLE,
                self.namespaces.iter().map(|n| n.as_str()).collect(),
            ),
            (
                Kind::RoleBinding,
                RoleBinding::TABLE,
                self.rolebindings.iter().map(|r| r.as_str()).collect(),
            ),
        ];
        for (kind, table, ids) in &lists {
            for (i, id) in missing_ids(client, table, ids).await? {
                errors.add(
                    format!("{}[{i}].id", kind.collection()),
                    format!("no {kind} with id {id:?} exists in the catalog"),
                );
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(StoreError::UnknownReferences(errors))
        }
    }

    async fn write_owned_rows(
        &self,
        client: &impl GenericClient,
        replacing: bool,
    ) -> Result<(), StoreError> {
        if replacing {
            for table in [
                "cluster_platform_components",
                "cluster_namespaces",
                "cluster_rolebindings",
            ] {
                let statement = client
                    .prepare_cached(&format!("delete from {table} where cluster_id = $1"))
                    .await?;
                client.execute(&statement, &[&self.id]).await?;
            }
        }
        insert_references(client, self).await
    }

    async fn dependent_clusters(
        _client: &impl GenericClient,
        id: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(vec![id.to_owned()])
    }
}
