//! Reads for the Flux endpoints: one cluster and the catalog entries it references, taken
//! from one consistent snapshot so a response never mixes two states of the catalog.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;

use super::{Store, StoreError, clusters, components, namespaces, rolebindings};
use crate::domain::{
    Cluster, ComponentId, Namespace, NamespaceId, PlatformComponent, RoleBinding, RoleBindingId,
};

/// Which catalog entries a Flux response needs besides the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    PlatformComponents,
    Namespaces,
    RoleBindings,
}

/// One cluster with the definitions it references (only those `Needs` asked for).
#[derive(Debug, Clone, Default)]
pub struct ClusterCatalog {
    pub components: HashMap<ComponentId, PlatformComponent>,
    pub namespaces: HashMap<NamespaceId, Namespace>,
    pub rolebindings: HashMap<RoleBindingId, RoleBinding>,
}

impl Store {
    /// The cluster with this DNS name and what it references; `None` when no cluster has it.
    pub async fn cluster_for_flux(
        &self,
        cluster_dns: &str,
        needs: Needs,
    ) -> Result<Option<(Cluster, ClusterCatalog)>, StoreError> {
        let mut client = self.pool().get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let Some(cluster) = clusters::find_by_dns(&tx, cluster_dns).await? else {
            return Ok(None);
        };
        let catalog = load_referenced(&tx, &cluster, needs).await?;
        tx.commit().await?;
        Ok(Some((cluster, catalog)))
    }

    /// Every cluster (without references), by id, optionally only those in `environment`.
    pub async fn all_clusters(
        &self,
        environment: Option<&str>,
    ) -> Result<Vec<Cluster>, StoreError> {
        let client = self.pool().get().await?;
        clusters::all_without_references(&client, environment).await
    }
}

async fn load_referenced(
    client: &impl GenericClient,
    cluster: &Cluster,
    needs: Needs,
) -> Result<ClusterCatalog, StoreError> {
    let mut catalog = ClusterCatalog::default();
    match needs {
        Needs::PlatformComponents => {
            let ids: Vec<&str> = cluster
                .platform_components
                .iter()
                .map(|r| r.id.as_str())
                .collect();
            catalog.components = components::find_many(client, &ids)
                .await?
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect();
        }
        Needs::Namespaces => {
            let ids: Vec<&str> = cluster.namespaces.iter().map(|n| n.as_str()).collect();
            catalog.namespaces = namespaces::find_many(client, &ids)
                .await?
                .into_iter()
                .map(|n| (n.id.clone(), n))
                .collect();
        }
        Needs::RoleBindings => {
            let ids: Vec<&str> = cluster.rolebindings.iter().map(|r| r.as_str()).collect();
            catalog.rolebindings = rolebindings::find_many(client, &ids)
                .await?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect();
        }
    }
    Ok(catalog)
}
