//! The in-memory snapshot the Flux endpoints answer from.
//!
//! A fleet's clusters poll every few minutes, forever, so the work is done when data
//! changes, not when it is read: each cluster's three responses are kept serialised, with
//! their gzip encoding and ETag computed once. A request costs a map lookup and a write of
//! shared bytes, and keeps being answered while the database is away.
//!
//! The snapshot follows the database through the change log (see `storage::changes`):
//! writes append to it and NOTIFY in their own transaction; every replica LISTENs, and also
//! polls the change counter (hot standbys get no notifications, and notifications sent while
//! a connection is down are lost). Catching up rebuilds only the clusters the new entries
//! name, read together with the log in one repeatable-read transaction.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio_postgres::AsyncMessage;

use crate::domain::Cluster;
use crate::domain::impact::FluxView;
use crate::domain::merge::{ClusterInput, FluxInputs};
use crate::metrics::Metrics;
use crate::storage::changes::{CHANGES_CHANNEL, ClusterBatch, FleetUpdate};
use crate::storage::connect::Connector;
use crate::storage::{Store, StoreError};

/// One response body, ready to send in either encoding.
#[derive(Debug)]
pub struct Encoded {
    pub identity: Bytes,
    pub gzip: Bytes,
    /// Strong validator of `identity`, quoted; the gzip encoding's is this with `-gzip`.
    /// Ready to be sent as they are: responses are prepared once, sent many times.
    pub etag: Bytes,
    pub gzip_etag: Bytes,
}

impl Encoded {
    pub fn new(identity: Vec<u8>) -> Self {
        let digest = Sha256::digest(&identity);
        let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(identity.len() / 4),
            // The fastest level: a whole fleet is compressed at start-up, and on these
            // bodies it gives 11x where the default gives 13x (bench/RESULTS.md).
            flate2::Compression::fast(),
        );
        encoder
            .write_all(&identity)
            .expect("writing to a Vec cannot fail");
        let gzip = encoder.finish().expect("writing to a Vec cannot fail");
        // Kept for as long as the data does not change: exactly sized, not with the spare
        // capacity the buffers grew with.
        Self {
            identity: Bytes::from(identity.into_boxed_slice()),
            gzip: Bytes::from(gzip.into_boxed_slice()),
            etag: Bytes::from(format!("\"{tag}\"")),
            gzip_etag: Bytes::from(format!("\"{tag}-gzip\"")),
        }
    }

    /// The ExternalService document `{"inputs": [...]}` of these inputs.
    fn of<T: serde::Serialize>(inputs: &[T]) -> Self {
        Self::new(FluxInputs { inputs }.to_json())
    }
}

/// A cluster's three Flux responses.
#[derive(Debug)]
pub struct ClusterResponses {
    pub platform_components: Encoded,
    pub namespaces: Encoded,
    pub rolebindings: Encoded,
}

/// A cluster as the snapshot keeps it.
struct Built {
    id: String,
    summary: ClusterInput,
    responses: Arc<ClusterResponses>,
}

fn build(inputs: FluxView<'_>) -> Built {
    Built {
        id: inputs.summary.id.to_string(),
        responses: Arc::new(ClusterResponses {
            platform_components: Encoded::of(&inputs.platform_components),
            namespaces: Encoded::of(&inputs.namespaces),
            rolebindings: Encoded::of(&inputs.rolebindings),
        }),
        summary: inputs.summary,
    }
}

/// Computes and encodes a batch's clusters on every core: a fleet's first load is a few
/// hundred megabytes of JSON to serialise and compress.
fn build_all(batch: ClusterBatch) -> Result<Vec<Built>, StoreError> {
    let build_each = |clusters: &[Cluster]| -> Result<Vec<Built>, StoreError> {
        clusters
            .iter()
            .map(|cluster| batch.inputs(cluster).map(build))
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if batch.clusters.len() < 64 || threads == 1 {
        return build_each(&batch.clusters);
    }
    let chunk = batch.clusters.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = batch
            .clusters
            .chunks(chunk)
            .map(|clusters| scope.spawn(|| build_each(clusters)))
            .collect();
        let mut built = Vec::with_capacity(batch.clusters.len());
        for handle in handles {
            built.extend(
                handle
                    .join()
                    .expect("building a cluster's responses does not panic")?,
            );
        }
        Ok(built)
    })
}

/// What the snapshot holds at one version.
#[derive(Default)]
struct Contents {
    by_dns: HashMap<String, Arc<ClusterResponses>>,
    dns_by_id: HashMap<String, String>,
    summaries: BTreeMap<String, ClusterInput>,
    /// The fleet listing: `None` for every cluster, `Some(environment)` for one tier.
    fleet: HashMap<Option<String>, Arc<Encoded>>,
}

impl Contents {
    /// Stores a cluster's responses; true when its entry in the fleet listing changed.
    fn put(&mut self, built: Built) -> bool {
        let dns = built.summary.cluster_dns.to_string();
        if let Some(old) = self.dns_by_id.insert(built.id.clone(), dns.clone())
            && old != dns
        {
            self.by_dns.remove(&old);
        }
        self.by_dns.insert(dns, built.responses);
        let listing_changed = self.summaries.get(&built.id) != Some(&built.summary);
        self.summaries.insert(built.id, built.summary);
        listing_changed
    }

    /// Forgets a cluster; true when it was there.
    fn remove(&mut self, id: &str) -> bool {
        if let Some(dns) = self.dns_by_id.remove(id) {
            self.by_dns.remove(&dns);
        }
        self.summaries.remove(id).is_some()
    }

    fn rebuild_fleet(&mut self) {
        let mut by_environment: BTreeMap<&str, Vec<&ClusterInput>> = BTreeMap::new();
        for summary in self.summaries.values() {
            by_environment
                .entry(&summary.environment)
                .or_default()
                .push(summary);
        }
        let mut fleet = HashMap::new();
        let all: Vec<&ClusterInput> = self.summaries.values().collect();
        fleet.insert(None, Arc::new(Encoded::of(&all)));
        for (environment, summaries) in by_environment {
            fleet.insert(
                Some(environment.to_owned()),
                Arc::new(Encoded::of(&summaries)),
            );
        }
        self.fleet = fleet;
    }
}

/// What a lookup found.
pub enum Lookup<T> {
    /// The first load has not succeeded yet.
    NotLoaded,
    NotFound,
    Found(T),
}

/// The snapshot's state, for `/ready` and response headers.
#[derive(Debug, Clone)]
pub struct Status {
    pub loaded: bool,
    /// The change-log version the contents reflect.
    pub version: Option<i64>,
    /// Since the snapshot was last confirmed in sync with the database.
    pub age: Option<Duration>,
    /// Why the last attempt to reach the database failed, if it did.
    pub database_error: Option<String>,
    pub clusters: usize,
}

pub struct Snapshot {
    store: Store,
    contents: RwLock<Option<Contents>>,
    /// Read on every Flux request, so kept in atomics rather than behind the lock.
    version: AtomicI64,
    synced_at_ms: AtomicU64,
    database_ok: AtomicBool,
    database_error: Mutex<Option<String>>,
    started: Instant,
    /// One catch-up at a time; concurrent callers wait and then find nothing to do.
    syncing: tokio::sync::Mutex<()>,
    check_timeout: Duration,
    empty_fleet: Arc<Encoded>,
    metrics: Arc<Metrics>,
}

const NOT_LOADED: i64 = -1;

/// Why the snapshot catches up: a label of `flux_catalog_snapshot_rebuilds_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The database announced a change.
    Notification,
    /// The periodic check found one (a standby, or a lost announcement).
    Poll,
    /// This server wrote it and catches up before answering.
    Write,
}

impl Cause {
    fn label(self) -> &'static str {
        match self {
            Self::Notification => "notification",
            Self::Poll => "poll",
            Self::Write => "write",
        }
    }
}

impl Snapshot {
    pub fn new(store: Store, check_timeout: Duration, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            store,
            contents: RwLock::new(None),
            version: AtomicI64::new(NOT_LOADED),
            synced_at_ms: AtomicU64::new(0),
            database_ok: AtomicBool::new(false),
            database_error: Mutex::new(Some("loading".to_owned())),
            started: Instant::now(),
            syncing: tokio::sync::Mutex::new(()),
            check_timeout,
            empty_fleet: Arc::new(Encoded::of::<ClusterInput>(&[])),
        })
    }

    /// The responses of the cluster with this DNS name.
    pub fn cluster(&self, dns: &str) -> Lookup<Arc<ClusterResponses>> {
        let contents = self
            .contents
            .read()
            .expect("the snapshot lock is never poisoned");
        match contents.as_ref() {
            None => Lookup::NotLoaded,
            Some(contents) => match contents.by_dns.get(dns) {
                Some(responses) => Lookup::Found(responses.clone()),
                None => Lookup::NotFound,
            },
        }
    }

    /// The fleet listing, whole or for one environment.
    pub fn fleet(&self, environment: Option<&str>) -> Lookup<Arc<Encoded>> {
        let contents = self
            .contents
            .read()
            .expect("the snapshot lock is never poisoned");
        match contents.as_ref() {
            None => Lookup::NotLoaded,
            Some(contents) => Lookup::Found(
                contents
                    .fleet
                    .get(&environment.map(str::to_owned))
                    .cloned()
                    .unwrap_or_else(|| self.empty_fleet.clone()),
            ),
        }
    }

    /// Seconds since the snapshot was last confirmed in sync, and whether the database
    /// failed since: cheap enough for every response.
    pub fn freshness(&self) -> (u64, bool) {
        let now = self.started.elapsed().as_millis() as u64;
        let synced = self.synced_at_ms.load(Ordering::Relaxed);
        (
            now.saturating_sub(synced) / 1000,
            !self.database_ok.load(Ordering::Relaxed),
        )
    }

    pub fn status(&self) -> Status {
        let version = self.version.load(Ordering::Acquire);
        let loaded = version != NOT_LOADED;
        let now = self.started.elapsed().as_millis() as u64;
        let clusters = self
            .contents
            .read()
            .expect("the snapshot lock is never poisoned")
            .as_ref()
            .map_or(0, |c| c.by_dns.len());
        Status {
            loaded,
            version: loaded.then_some(version),
            age: loaded.then(|| {
                Duration::from_millis(now.saturating_sub(self.synced_at_ms.load(Ordering::Relaxed)))
            }),
            database_error: self
                .database_error
                .lock()
                .expect("the snapshot lock is never poisoned")
                .clone(),
            clusters,
        }
    }

    fn mark_synced(&self) {
        self.synced_at_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let was_ok = self.database_ok.swap(true, Ordering::Relaxed);
        *self
            .database_error
            .lock()
            .expect("the snapshot lock is never poisoned") = None;
        if !was_ok && self.version.load(Ordering::Acquire) != NOT_LOADED {
            log::info!("snapshot: in sync with the database again");
        }
    }

    fn mark_failed(&self, error: &StoreError) {
        let was_ok = self.database_ok.swap(false, Ordering::Relaxed);
        let reason = match error {
            StoreError::Unavailable(cause) => format!("the database is unreachable: {cause:#}"),
            other => other.to_string(),
        };
        let mut last = self
            .database_error
            .lock()
            .expect("the snapshot lock is never poisoned");
        if was_ok {
            log::warn!("snapshot: cannot reach the database, serving the last snapshot: {reason}");
        } else if self.version.load(Ordering::Acquire) == NOT_LOADED
            && last.as_deref() != Some(reason.as_str())
        {
            // Nothing is served until the first load: say why at once (a refused TLS
            // handshake, say, when migrations did not connect first), and again only when
            // the cause changes.
            log::warn!("snapshot: cannot load the catalog from the database: {reason}");
        }
        *last = Some(reason);
    }

    /// Says why the database is not used yet (start-up waiting for it to arrive), for
    /// `/ready` until the first load.
    pub fn note_waiting(&self, reason: String) {
        self.database_ok.store(false, Ordering::Relaxed);
        *self
            .database_error
            .lock()
            .expect("the snapshot lock is never poisoned") = Some(reason);
    }

    /// Brings the snapshot up to the database's latest committed change: everything on the
    /// first call, then only the clusters changed since.
    pub async fn sync(&self, cause: Cause) -> Result<(), StoreError> {
        let _one_at_a_time = self.syncing.lock().await;
        let result = self.catch_up(cause).await;
        match &result {
            Ok(()) => self.mark_synced(),
            Err(error) => {
                self.metrics.snapshot_failures.inc();
                self.mark_failed(error)
            }
        }
        result
    }

    async fn catch_up(&self, cause: Cause) -> Result<(), StoreError> {
        let current = self.version.load(Ordering::Acquire);
        let since = (current != NOT_LOADED).then_some(current);
        if let Some(since) = since {
            // The cheap, bounded check that runs every poll interval.
            let counter = tokio::time::timeout(self.check_timeout, self.store.change_counter())
                .await
                .map_err(|_| {
                    StoreError::Unavailable(anyhow::anyhow!(
                        "no answer within {} ms",
                        self.check_timeout.as_millis()
                    ))
                })??;
            if counter <= since {
                return Ok(());
            }
        }
        let started = Instant::now();
        // Batches are serialised and compressed on blocking threads while the next one is
        // read from the database.
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<ClusterBatch>(2);
        let reading = self.store.fleet_since(since, sender);
        let building = async move {
            let mut built = Vec::new();
            while let Some(batch) = receiver.recv().await {
                let batch = tokio::task::spawn_blocking(move || build_all(batch))
                    .await
                    .map_err(|e| {
                        StoreError::Unexpected(anyhow::anyhow!("building the snapshot failed: {e}"))
                    })??;
                built.extend(batch);
            }
            Ok::<_, StoreError>(built)
        };
        let (update, built) = tokio::join!(reading, building);
        // A failed build stops the reading too; report the build's error, not that.
        let built = built?;
        let (version, gone, everything) = match update? {
            FleetUpdate::UpToDate { .. } => return Ok(()),
            FleetUpdate::Changed { version, gone } => (version, gone, false),
            FleetUpdate::Everything { version } => (version, Default::default(), true),
        };
        let count = built.len();

        let mut guard = self
            .contents
            .write()
            .expect("the snapshot lock is never poisoned");
        let contents = if everything {
            guard.insert(Contents::default())
        } else {
            guard.get_or_insert_with(Contents::default)
        };
        // The fleet listing is rebuilt only when an entry of it changed: a catalog change
        // reaching every cluster leaves it as it is.
        let mut listing_changed = everything;
        for id in &gone {
            listing_changed |= contents.remove(id);
        }
        for cluster in built {
            listing_changed |= contents.put(cluster);
        }
        if listing_changed {
            contents.rebuild_fleet();
        }
        self.version.store(version, Ordering::Release);
        drop(guard);
        let took = started.elapsed();
        self.metrics
            .snapshot_rebuild_seconds
            .observe(took.as_secs_f64());
        self.metrics
            .snapshot_rebuilds
            .with_label_values(&[if everything { "load" } else { cause.label() }])
            .inc();
        let what = if everything { "loaded" } else { "updated" };
        log::info!(
            "snapshot {what} to version {version}: {count} cluster(s) rebuilt, {} removed, in {} ms",
            gone.len(),
            took.as_millis()
        );
        Ok(())
    }

    /// Follows the database until the process ends: catches up at once, then whenever a
    /// write is announced and at least every `interval`. Never gives up; failures are
    /// reported once by `status` and the log, and the last snapshot keeps being served.
    pub async fn follow(self: Arc<Self>, notifications: Connector, interval: Duration) {
        let (wake, mut woken) = tokio::sync::mpsc::unbounded_channel::<()>();
        tokio::spawn(listen(notifications, wake));
        let mut cause = Cause::Poll;
        loop {
            let _ = self.sync(cause).await;
            cause = tokio::select! {
                _ = woken.recv() => Cause::Notification,
                _ = tokio::time::sleep(interval) => Cause::Poll,
            };
            // Several announcements while catching up need one more catch-up, not several.
            while woken.try_recv().is_ok() {}
        }
    }

    /// Waits for the first load, up to `limit`.
    pub async fn wait_loaded(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.version.load(Ordering::Acquire) == NOT_LOADED {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

/// LISTENs for change announcements and wakes the follower on each, and after every
/// reconnect (announcements sent meanwhile are lost). A hot standby refuses LISTEN; then
/// polling alone keeps the snapshot current and LISTEN is retried rarely.
async fn listen(connector: Connector, wake: tokio::sync::mpsc::UnboundedSender<()>) {
    let mut quiet = false;
    loop {
        let outcome = async {
            let (client, mut connection) = connector.connect().await?;
            let (ended_tx, mut ended) = tokio::sync::oneshot::channel();
            let forward = wake.clone();
            tokio::spawn(async move {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(message) = messages.next().await {
                    match message {
                        Ok(AsyncMessage::Notification(_)) => {
                            let _ = forward.send(());
                        }
                        Ok(_) => {}
                        Err(error) => {
                            let _ = ended_tx.send(Some(error));
                            return;
                        }
                    }
                }
                let _ = ended_tx.send(None);
            });
            client
                .batch_execute(&format!("listen {CHANGES_CHANNEL}"))
                .await?;
            let _ = wake.send(());
            let ended = (&mut ended).await.ok().flatten();
            drop(client);
            match ended {
                Some(error) => Err(error),
                None => Ok(()),
            }
        }
        .await;
        if wake.is_closed() {
            return;
        }
        let pause = match &outcome {
            Err(error)
                if error.code()
                    == Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION) =>
            {
                if !quiet {
                    log::info!(
                        "snapshot: the database refuses LISTEN (a hot standby?); polling only"
                    );
                    quiet = true;
                }
                Duration::from_secs(60)
            }
            Err(error) => {
                log::debug!("snapshot: change notifications interrupted: {error}");
                Duration::from_secs(1)
            }
            Ok(()) => Duration::from_secs(1),
        };
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_gzip_encoding_decompresses_to_the_body_and_etags_follow_the_content() {
        let body = br#"{"inputs":[{"id":"a"}]}"#.repeat(50);
        let encoded = Encoded::new(body.clone());
        let mut decompressed = Vec::new();
        flate2::read::GzDecoder::new(&encoded.gzip[..])
            .read_to_end(&mut decompressed)
            .unwrap();
        assert_eq!(decompressed, body);
        assert!(encoded.gzip.len() < body.len() / 5);
        assert_ne!(encoded.etag, encoded.gzip_etag);
        assert_eq!(
            Encoded::new(body.clone()).etag,
            encoded.etag,
            "same body, same tag"
        );
        assert_ne!(Encoded::new(b"{}".to_vec()).etag, encoded.etag);
    }
}
