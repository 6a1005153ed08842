//! The Flux inputs of a set of clusters, read inside a write's transaction so the checks
//! and the difference a write reports see exactly what that transaction sees.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use deadpool_postgres::GenericClient;

use super::{StoreError, clusters, components, namespaces, rolebindings};
use crate::domain::Cluster;
use crate::domain::impact::{Catalog, ClusterInputs};

/// The clusters a write reaches, with the catalog entries they reference, read inside the
/// write's transaction.
pub(super) struct Reached {
    /// Shared with the state after a catalog write, which has the same cluster rows.
    clusters: Arc<Vec<Cluster>>,
    catalog: Catalog,
}

impl Reached {
    /// The clusters with these ids that exist. A fixed number of queries, however many.
    pub(super) async fn read(
        client: &impl GenericClient,
        cluster_ids: &BTreeSet<String>,
    ) -> Result<Self, StoreError> {
        let (clusters, catalog) = clusters_with_catalog(client, cluster_ids).await?;
        Ok(Self {
            clusters: Arc::new(clusters),
            catalog,
        })
    }

    /// The same clusters after a write that changed only catalog entries: their own rows
    /// are as they were, so only what they reference is read again.
    pub(super) async fn after_catalog_write(
        &self,
        client: &impl GenericClient,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            clusters: self.clusters.clone(),
            catalog: catalog_for(client, &self.clusters).await?,
        })
    }

    /// Each cluster's inputs, by id.
    pub(super) fn inputs(&self) -> Result<BTreeMap<String, ClusterInputs<'_>>, StoreError> {
        self.clusters
            .iter()
            .map(|cluster| Ok((cluster.id.to_string(), compute(cluster, &self.catalog)?)))
            .collect()
    }
}

/// A cluster's inputs from data read back from the database.
pub(super) fn compute<'a>(
    cluster: &'a Cluster,
    catalog: &'a Catalog,
) -> Result<ClusterInputs<'a>, StoreError> {
    ClusterInputs::compute(cluster, catalog).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The clusters with these ids that exist, and the catalog entries they reference.
pub(super) async fn clusters_with_catalog(
    client: &impl GenericClient,
    cluster_ids: &BTreeSet<String>,
) -> Result<(Vec<Cluster>, Catalog), StoreError> {
    if cluster_ids.is_empty() {
        return Ok((Vec::new(), Catalog::default()));
    }
    let ids: Vec<&str> = cluster_ids.iter().map(String::as_str).collect();
    let clusters = clusters::find_many(client, &ids).await?;
    let catalog = catalog_for(client, &clusters).await?;
    Ok((clusters, catalog))
}

/// The catalog entries these clusters reference.
async fn catalog_for(
    client: &impl GenericClient,
    clusters: &[Cluster],
) -> Result<Catalog, StoreError> {
    let mut components = BTreeSet::new();
    let mut namespaces = BTreeSet::new();
    let mut rolebindings = BTreeSet::new();
    for cluster in clusters {
        components.extend(cluster.platform_components.iter().map(|r| r.id.as_str()));
        namespaces.extend(cluster.namespaces.iter().map(|n| n.as_str()));
        rolebindings.extend(cluster.rolebindings.iter().map(|r| r.as_str()));
    }
    fn ids(set: BTreeSet<&str>) -> Vec<&str> {
        set.into_iter().collect()
    }
    Ok(Catalog {
        components: components::find_many(client, &ids(components))
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect(),
        namespaces: namespaces::find_many(client, &ids(namespaces))
            .await?
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect(),
        rolebindings: rolebindings::find_many(client, &ids(rolebindings))
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect(),
    })
}
