//! What the in-memory snapshots of every replica read to follow the database: the change
//! log, and the Flux inputs of the clusters a change touched, from one consistent view.

use std::collections::BTreeSet;

use deadpool_postgres::GenericClient;

use super::impact::{clusters_with_references, compute};
use super::{Store, StoreError, find_all};
use crate::domain::Cluster;
use crate::domain::impact::{FluxView, References};

pub use super::write::CHANGES_CHANNEL;

/// How the fleet changed since a version. The inputs of the clusters concerned are sent
/// separately, in batches (see [`Store::fleet_since`]).
#[derive(Debug, Clone)]
pub enum FleetUpdate {
    /// Nothing since; `version` is the current one.
    UpToDate { version: i64 },
    /// Clusters changed since, as of `version`: those that still exist were sent; `gone`
    /// are those that changed and no longer exist.
    Changed {
        version: i64,
        gone: BTreeSet<String>,
    },
    /// Every cluster was sent, as of `version` (first load).
    Everything { version: i64 },
}

/// Clusters read together, with the catalog entries they reference. Their inputs are
/// computed by whoever takes the batch, so that CPU work can happen off the reading task.
#[derive(Debug)]
pub struct ClusterBatch {
    pub clusters: Vec<Cluster>,
    references: References,
}

impl ClusterBatch {
    /// The Flux inputs of one of the batch's clusters.
    pub fn inputs<'a>(&'a self, cluster: &'a Cluster) -> Result<FluxView<'a>, StoreError> {
        compute(cluster, &self.references)
    }
}

/// Clusters per batch: a fleet's first load is read, computed and serialised a batch at a
/// time, so it never holds more than a few batches in their intermediate forms, and the
/// next batch is read while the last one is serialised.
const BATCH: usize = 250;

async fn current_version(client: &impl GenericClient) -> Result<i64, StoreError> {
    let statement = client
        .prepare_cached("select coalesce(max(version), 0) from change_log")
        .await?;
    Ok(client.query_one(&statement, &[]).await?.get(0))
}

impl Store {
    /// The change counter: the version of the last committed change.
    pub async fn change_counter(&self) -> Result<i64, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            current_version(&client).await
        })
        .await
    }

    /// What changed after `since` (everything when `None`), read in one repeatable-read
    /// snapshot, so the inputs sent to `batches` are exactly those of the returned version.
    /// Each step on the database is bounded by the operation timeout, not the whole: a
    /// large fleet's first load takes as long as it takes.
    pub async fn fleet_since(
        &self,
        since: Option<i64>,
        batches: tokio::sync::mpsc::Sender<ClusterBatch>,
    ) -> Result<FleetUpdate, StoreError> {
        let mut client = self.client().await?;
        let tx = self
            .bounded(async { Ok(super::consistent_read(&mut client).await?) })
            .await?;
        let version = self.bounded(current_version(&tx)).await?;
        let ids: Vec<String> = match since {
            Some(since) if since >= version => return Ok(FleetUpdate::UpToDate { version }),
            Some(since) => {
                self.bounded(find_all(
                    &tx,
                    "select distinct unnest(cluster_ids) as id from change_log
                      where version > $1 order by id",
                    &[&since],
                    |row| Ok(row.get::<_, String>(0)),
                ))
                .await?
            }
            None => {
                self.bounded(find_all(
                    &tx,
                    "select id from clusters order by id",
                    &[],
                    |row| Ok(row.get::<_, String>(0)),
                ))
                .await?
            }
        };
        let mut gone = BTreeSet::new();
        for chunk in ids.chunks(BATCH) {
            let wanted: BTreeSet<String> = chunk.iter().cloned().collect();
            let (clusters, references) =
                self.bounded(clusters_with_references(&tx, &wanted)).await?;
            let found: BTreeSet<&str> = clusters.iter().map(|c| c.id.as_str()).collect();
            gone.extend(
                chunk
                    .iter()
                    .filter(|id| !found.contains(id.as_str()))
                    .cloned(),
            );
            batches
                .send(ClusterBatch {
                    clusters,
                    references,
                })
                .await
                .map_err(|_| {
                    StoreError::Unexpected(anyhow::anyhow!("the snapshot stopped taking clusters"))
                })?;
        }
        self.bounded(async { Ok(tx.commit().await?) }).await?;
        Ok(match since {
            Some(_) => FleetUpdate::Changed { version, gone },
            None => FleetUpdate::Everything { version },
        })
    }
}
