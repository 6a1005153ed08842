//! The Flux inputs of a set of clusters, read inside a write's transaction so the checks
//! and the difference a write reports see exactly what that transaction sees.

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::GenericClient;

use super::{StoreError, clusters, components, namespaces, rolebindings};
use crate::domain::impact::{Catalog, ClusterInputs};

/// Inputs of the clusters with these ids that exist, by id. A fixed number of queries,
/// however many clusters.
pub(super) async fn cluster_inputs(
    client: &impl GenericClient,
    cluster_ids: &BTreeSet<String>,
) -> Result<BTreeMap<String, ClusterInputs>, StoreError> {
    if cluster_ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids: Vec<&str> = cluster_ids.iter().map(String::as_str).collect();
    let clusters = clusters::find_many(client, &ids).await?;

    let mut wanted_components = BTreeSet::new();
    let mut wanted_namespaces = BTreeSet::new();
    let mut wanted_rolebindings = BTreeSet::new();
    for cluster in &clusters {
        wanted_components.extend(cluster.platform_components.iter().map(|r| r.id.as_str()));
        wanted_namespaces.extend(cluster.namespaces.iter().map(|n| n.as_str()));
        wanted_rolebindings.extend(cluster.rolebindings.iter().map(|r| r.as_str()));
    }
    let as_vec =
        |set: BTreeSet<&str>| -> Vec<String> { set.into_iter().map(str::to_owned).collect() };
    let (wanted_components, wanted_namespaces, wanted_rolebindings) = (
        as_vec(wanted_components),
        as_vec(wanted_namespaces),
        as_vec(wanted_rolebindings),
    );
    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let catalog = Catalog {
        components: components::find_many(client, &refs(&wanted_components))
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect(),
        namespaces: namespaces::find_many(client, &refs(&wanted_namespaces))
            .await?
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect(),
        rolebindings: rolebindings::find_many(client, &refs(&wanted_rolebindings))
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect(),
    };
    clusters
        .iter()
        .map(|cluster| {
            let inputs = ClusterInputs::compute(cluster, &catalog)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((cluster.id.to_string(), inputs))
        })
        .collect()
}
