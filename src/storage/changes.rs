//! What the in-memory snapshots of every replica read to follow the database: the change
//! log, and the Flux inputs of the clusters a change touched, from one consistent view.

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::GenericClient;

use super::impact::cluster_inputs;
use super::{Store, StoreError, find_all};
use crate::domain::impact::ClusterInputs;

pub use super::write::CHANGES_CHANNEL;

/// How the fleet changed since a version.
#[derive(Debug, Clone)]
pub enum FleetUpdate {
    /// Nothing since; `version` is the current one.
    UpToDate { version: i64 },
    /// The inputs of the clusters changed since, as of `version`. `gone` are clusters that
    /// changed and no longer exist.
    Changed {
        version: i64,
        clusters: BTreeMap<String, ClusterInputs>,
        gone: BTreeSet<String>,
    },
    /// Every cluster, as of `version` (first load).
    Everything {
        version: i64,
        clusters: BTreeMap<String, ClusterInputs>,
    },
}

async fn current_version(client: &impl GenericClient) -> Result<i64, StoreError> {
    let statement = client
        .prepare_cached("select coalesce(max(version), 0) from change_log")
        .await?;
    Ok(client.query_one(&statement, &[]).await?.get(0))
}

impl Store {
    /// The change counter: the version of the last committed change.
    pub async fn change_counter(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        current_version(&client).await
    }

    /// What changed after `since` (everything when `None`), read in one repeatable-read
    /// snapshot, so the inputs are exactly those of the returned version.
    pub async fn fleet_since(&self, since: Option<i64>) -> Result<FleetUpdate, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let version = current_version(&tx).await?;
        let update = match since {
            Some(since) if since >= version => FleetUpdate::UpToDate { version },
            Some(since) => {
                let ids: BTreeSet<String> = find_all(
                    &tx,
                    "select distinct unnest(cluster_ids) from change_log where version > $1",
                    &[&since],
                    |row| Ok(row.get::<_, String>(0)),
                )
                .await?
                .into_iter()
                .collect();
                let clusters = cluster_inputs(&tx, &ids).await?;
                let gone = ids
                    .into_iter()
                    .filter(|id| !clusters.contains_key(id))
                    .collect();
                FleetUpdate::Changed {
                    version,
                    clusters,
                    gone,
                }
            }
            None => {
                let ids: BTreeSet<String> = find_all(&tx, "select id from clusters", &[], |row| {
                    Ok(row.get::<_, String>(0))
                })
                .await?
                .into_iter()
                .collect();
                FleetUpdate::Everything {
                    version,
                    clusters: cluster_inputs(&tx, &ids).await?,
                }
            }
        };
        tx.commit().await?;
        Ok(update)
    }
}
