//! The Flux inputs of a set of clusters, read inside a write's transaction so the checks
//! and the difference a write reports see exactly what that transaction sees.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use deadpool_postgres::GenericClient;

use super::{Resource, StoreError, clusters};
use crate::domain::impact::{FluxView, References};
use crate::domain::{Cluster, Namespace, PlatformComponent, RoleBinding};

/// The clusters a write reaches, with the catalog entries they reference, read inside the
/// write's transaction.
pub(super) struct Reached {
    /// Shared with the state after a catalog write, which has the same cluster rows.
    clusters: Arc<Vec<Cluster>>,
    references: References,
}

impl Reached {
    /// The clusters with these ids that exist. A fixed number of queries, however many.
    pub(super) async fn read(
        client: &impl GenericClient,
        cluster_ids: &BTreeSet<String>,
    ) -> Result<Self, StoreError> {
        let (clusters, references) = clusters_with_references(client, cluster_ids).await?;
        Ok(Self {
            clusters: Arc::new(clusters),
            references,
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
            references: references_of(client, &self.clusters).await?,
        })
    }

    /// Each cluster's inputs, by id.
    pub(super) fn inputs(&self) -> Result<BTreeMap<String, FluxView<'_>>, StoreError> {
        self.clusters
            .iter()
            .map(|cluster| Ok((cluster.id.to_string(), compute(cluster, &self.references)?)))
            .collect()
    }
}

/// A cluster's inputs from data read back from the database.
pub(super) fn compute<'a>(
    cluster: &'a Cluster,
    references: &'a References,
) -> Result<FluxView<'a>, StoreError> {
    FluxView::compute(cluster, references).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The clusters with these ids that exist, and the catalog entries they reference.
pub(super) async fn clusters_with_references(
    client: &impl GenericClient,
    cluster_ids: &BTreeSet<String>,
) -> Result<(Vec<Cluster>, References), StoreError> {
    if cluster_ids.is_empty() {
        return Ok((Vec::new(), References::default()));
    }
    let ids: Vec<&str> = cluster_ids.iter().map(String::as_str).collect();
    let clusters = clusters::find_many(client, &ids).await?;
    let references = references_of(client, &clusters).await?;
    Ok((clusters, references))
}

/// The catalog entries these clusters reference.
async fn references_of(
    client: &impl GenericClient,
    clusters: &[Cluster],
) -> Result<References, StoreError> {
    let mut components = BTreeSet::new();
    let mut namespaces = BTreeSet::new();
    let mut rolebindings = BTreeSet::new();
    for cluster in clusters {
        components.extend(cluster.platform_components.iter().map(|r| r.id.as_str()));
        namespaces.extend(cluster.namespaces.iter().map(|n| n.as_str()));
        rolebindings.extend(cluster.rolebindings.iter().map(|r| r.as_str()));
    }
    Ok(References {
        components: entries(client, components, |c: &PlatformComponent| c.id.clone()).await?,
        namespaces: entries(client, namespaces, |n: &Namespace| n.id.clone()).await?,
        rolebindings: entries(client, rolebindings, |r: &RoleBinding| r.id.clone()).await?,
    })
}

/// The entries of one kind with these ids (those that exist), by id.
async fn entries<R: Resource, K: Ord>(
    client: &impl GenericClient,
    ids: BTreeSet<&str>,
    key: impl Fn(&R) -> K,
) -> Result<BTreeMap<K, R>, StoreError> {
    let ids: Vec<&str> = ids.into_iter().collect();
    Ok(super::find_many::<R>(client, &ids)
        .await?
        .into_iter()
        .map(|found| (key(&found.value), found.value))
        .collect())
}
