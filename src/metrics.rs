//! The service's Prometheus metrics: every family, its name, help and labels, in one place.
//! The snapshot and the HTTP layer record into them; `GET /metrics` renders them. Nothing
//! here imports the rest of the crate. Each server has its own registry, so servers sharing
//! a process (as in the tests) count apart.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Request latencies, in seconds: Flux reads take well under a millisecond, writes that
/// reach a large fleet seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Snapshot rebuilds, in seconds: one cluster takes milliseconds, a fleet's first load
/// seconds.
const REBUILD_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 15.0];

pub struct Metrics {
    registry: Registry,
    /// `route` is the route's template (`/clusters/{id}`), never the raw path, so cluster
    /// names do not become label values; `unmatched` for paths no route serves.
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    /// Flux answers by endpoint (`platform-components`, `namespaces`, `rolebindings`,
    /// `clusters`) and status (200, 304, 404...).
    pub flux_responses: IntCounterVec,
    /// Body bytes sent to Flux, by endpoint and encoding (`gzip`, `identity`).
    pub flux_bytes: IntCounterVec,
    pub snapshot_clusters: IntGauge,
    pub snapshot_version: IntGauge,
    pub snapshot_age_seconds: IntGauge,
    pub snapshot_stale: IntGauge,
    pub snapshot_rebuild_seconds: Histogram,
    /// By cause: `load` (everything), `notification`, `poll`, `write` (this server's own).
    pub snapshot_rebuilds: IntCounterVec,
    pub snapshot_failures: IntCounter,
    /// The pool's connections by `state`: `max`, `open`, `in_use`; and requests `waiting`.
    pub pool_connections: IntGaugeVec,
    pub pool_waiting: IntGauge,
    /// Writes by `kind` (the collection), `outcome` (created, updated, unchanged, deleted)
    /// and `dry_run`.
    pub writes: IntCounterVec,
    /// Writes refused, by `kind` and `reason` (the problem's code, lower-cased).
    pub writes_refused: IntCounterVec,
}

impl Metrics {
    pub fn new(version: &str) -> Self {
        let registry = Registry::new();
        let counters = |name: &str, help: &str, labels: &[&str]| {
            let family = IntCounterVec::new(Opts::new(name, help), labels).expect("valid family");
            registry
                .register(Box::new(family.clone()))
                .expect("registered once");
            family
        };
        let gauge = |name: &str, help: &str| {
            let gauge = IntGauge::new(name, help).expect("valid gauge");
            registry
                .register(Box::new(gauge.clone()))
                .expect("registered once");
            gauge
        };
        let requests = counters(
            "flux_catalog_http_requests_total",
            "HTTP requests answered, by route template, method and status",
            &["route", "method", "status"],
        );
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "flux_catalog_http_request_duration_seconds",
                "Time from a request's head to its response, by route template and method",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )
        .expect("valid family");
        registry
            .register(Box::new(request_seconds.clone()))
            .expect("registered once");
        let flux_responses = counters(
            "flux_catalog_flux_responses_total",
            "Answers to Flux, by endpoint and status (304: the client's copy was current)",
            &["endpoint", "status"],
        );
        let flux_bytes = counters(
            "flux_catalog_flux_response_bytes_total",
            "Body bytes sent to Flux, by endpoint and content encoding",
            &["endpoint", "encoding"],
        );
        let snapshot_clusters = gauge(
            "flux_catalog_snapshot_clusters",
            "Clusters whose Flux answers the snapshot holds",
        );
        let snapshot_version = gauge(
            "flux_catalog_snapshot_version",
            "The database change the snapshot has caught up to",
        );
        let snapshot_age_seconds = gauge(
            "flux_catalog_snapshot_age_seconds",
            "Seconds since the snapshot last confirmed it is current (X-Catalog-Age)",
        );
        let snapshot_stale = gauge(
            "flux_catalog_snapshot_stale",
            "1 while the snapshot cannot reach the database and serves its last state",
        );
        let snapshot_rebuild_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "flux_catalog_snapshot_rebuild_duration_seconds",
                "Time to read and re-serialise what a change touched",
            )
            .buckets(REBUILD_BUCKETS.to_vec()),
        )
        .expect("valid histogram");
        registry
            .register(Box::new(snapshot_rebuild_seconds.clone()))
            .expect("registered once");
        let snapshot_rebuilds = counters(
            "flux_catalog_snapshot_rebuilds_total",
            "Snapshot rebuilds, by cause: load, notification, poll, write",
            &["cause"],
        );
        let snapshot_failures = IntCounter::new(
            "flux_catalog_snapshot_sync_failures_total",
            "Times the snapshot could not check or catch up with the database",
        )
        .expect("valid counter");
        registry
            .register(Box::new(snapshot_failures.clone()))
            .expect("registered once");
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "flux_catalog_db_pool_connections",
                "Database pool connections: max (the configured size), open, in_use",
            ),
            &["state"],
        )
        .expect("valid family");
        registry
            .register(Box::new(pool_connections.clone()))
            .expect("registered once");
        let pool_waiting = gauge(
            "flux_catalog_db_pool_waiting",
            "Requests waiting for a database connection",
        );
        let writes = counters(
            "flux_catalog_writes_total",
            "Catalog writes done, by kind, outcome and whether they were dry runs",
            &["kind", "outcome", "dry_run"],
        );
        let writes_refused = counters(
            "flux_catalog_writes_refused_total",
            "Catalog writes refused, by kind and reason (the problem code)",
            &["kind", "reason"],
        );
        let build_info = IntGaugeVec::new(
            Opts::new(
                "flux_catalog_build_info",
                "Always 1; the version is a label",
            ),
            &["version"],
        )
        .expect("valid family");
        build_info.with_label_values(&[version]).set(1);
        registry
            .register(Box::new(build_info))
            .expect("registered once");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("registered once");
        Self {
            registry,
            requests,
            request_seconds,
            flux_responses,
            flux_bytes,
            snapshot_clusters,
            snapshot_version,
            snapshot_age_seconds,
            snapshot_stale,
            snapshot_rebuild_seconds,
            snapshot_rebuilds,
            snapshot_failures,
            pool_connections,
            pool_waiting,
            writes,
            writes_refused,
        }
    }

    /// Every family in Prometheus' text format.
    pub fn render(&self) -> Vec<u8> {
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .expect("metrics encode to text");
        text
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_renders_with_its_help_and_type() {
        let metrics = Metrics::new("1.2.3");
        metrics
            .requests
            .with_label_values(&["/clusters/{id}", "GET", "200"])
            .inc();
        let text = String::from_utf8(metrics.render()).unwrap();
        assert!(text.contains("# TYPE flux_catalog_http_requests_total counter"));
        assert!(text.contains(
            r#"flux_catalog_http_requests_total{method="GET",route="/clusters/{id}",status="200"} 1"#
        ));
        assert!(text.contains(r#"flux_catalog_build_info{version="1.2.3"} 1"#));
        assert!(text.contains("# TYPE flux_catalog_snapshot_rebuild_duration_seconds histogram"));
    }
}
