//! `GET /metrics`: the families a platform team scrapes exist, carry the documented labels,
//! and move with what the server does.

use serde_json::json;

use crate::helpers::{READ_TOKEN, TestApp, cluster, component, spawn_app, spawn_app_with};

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    response.text().await.unwrap()
}

/// The value of the sample `name{labels}` (labels as Prometheus prints them, sorted by
/// name), or 0 when it is not there yet.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn every_family_is_exposed_without_a_token() {
    let app = spawn_app().await;
    // Families with labels appear with their first sample: make one of each.
    app.create("/platform_components", component("cert-manager", &[]))
        .await;
    app.post("/platform_components", &json!({})).await;
    app.flux("/api/v2/flux/clusters").await;
    let text = scrape(&app).await;
    for family in [
        "flux_catalog_http_requests_total",
        "flux_catalog_http_request_duration_seconds",
        "flux_catalog_flux_responses_total",
        "flux_catalog_flux_response_bytes_total",
        "flux_catalog_snapshot_clusters",
        "flux_catalog_snapshot_version",
        "flux_catalog_snapshot_age_seconds",
        "flux_catalog_snapshot_stale",
        "flux_catalog_snapshot_rebuild_duration_seconds",
        "flux_catalog_snapshot_rebuilds_total",
        "flux_catalog_snapshot_sync_failures_total",
        "flux_catalog_db_pool_connections",
        "flux_catalog_db_pool_waiting",
        "flux_catalog_writes_total",
        "flux_catalog_writes_refused_total",
        "flux_catalog_build_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} is missing from:\n{text}"
        );
    }
    assert_eq!(
        sample(&text, r#"flux_catalog_db_pool_connections{state="max"}"#),
        8.0,
        "the configured pool size"
    );
    assert_eq!(
        sample(
            &text,
            r#"flux_catalog_snapshot_rebuilds_total{cause="load"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn requests_flux_answers_and_writes_are_counted_by_template_never_by_raw_path() {
    let app = spawn_app().await;
    app.create("/platform_components", component("cert-manager", &[]))
        .await;
    app.create("/clusters", cluster("edge-01", &["cert-manager"]))
        .await;
    let before = scrape(&app).await;

    let path = "/api/v2/flux/clusters/edge-01.k8s.example.com/platform-components";
    let first = app.flux(path).await;
    assert_eq!(first.status, 200);
    let etag = first.header("etag").unwrap().to_owned();
    let again = app
        .client
        .get(app.url(path))
        .bearer_auth(READ_TOKEN)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(
        app.flux("/api/v2/flux/clusters/nowhere.example.com/namespaces")
            .await
            .status,
        404
    );
    let refused = app
        .post("/platform_components", &json!({"id": "Not A Name"}))
        .await;
    assert!(refused.status >= 400);
    let invalid = {
        let mut body = component("bad", &[]);
        body["oci_url"] = json!("not a url");
        app.post("/platform_components", &body).await
    };
    assert_eq!(invalid.status, 422, "{}", invalid.text);
    let dry = app
        .patch(
            "/platform_components/cert-manager?dry_run=true",
            &json!({"component_version": "2.0.0"}),
        )
        .await;
    assert_eq!(dry.status, 200);

    let after = scrape(&app).await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    let template = "/api/v2/flux/clusters/{cluster_dns}/platform-components";
    assert_eq!(
        moved(&format!(
            r#"flux_catalog_http_requests_total{{method="GET",route="{template}",status="200"}}"#
        )),
        1.0
    );
    assert_eq!(
        moved(&format!(
            r#"flux_catalog_http_requests_total{{method="GET",route="{template}",status="304"}}"#
        )),
        1.0
    );
    assert_eq!(
        moved(r#"flux_catalog_flux_responses_total{endpoint="platform-components",status="200"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"flux_catalog_flux_responses_total{endpoint="platform-components",status="304"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"flux_catalog_flux_responses_total{endpoint="namespaces",status="404"}"#),
        1.0
    );
    assert_eq!(
        moved(
            r#"flux_catalog_flux_response_bytes_total{encoding="identity",endpoint="platform-components"}"#
        ),
        first.text.len() as f64
    );
    assert_eq!(
        moved(&format!(
            r#"flux_catalog_http_request_duration_seconds_count{{method="GET",route="{template}"}}"#
        )),
        2.0
    );
    assert_eq!(
        moved(
            r#"flux_catalog_writes_total{dry_run="true",kind="platform_components",outcome="updated"}"#
        ),
        1.0
    );
    assert_eq!(
        moved(
            r#"flux_catalog_writes_refused_total{kind="platform_components",reason="validation_failed"}"#
        ),
        1.0,
        "{after}"
    );
    assert!(
        sample(
            &after,
            r#"flux_catalog_writes_total{dry_run="false",kind="clusters",outcome="created"}"#
        ) >= 1.0
    );
    // Each real write is caught up once: by the writer itself before it answers, unless the
    // change notification got there first.
    let caught_up: f64 = ["write", "notification", "poll"]
        .iter()
        .map(|cause| {
            sample(
                &after,
                &format!(r#"flux_catalog_snapshot_rebuilds_total{{cause="{cause}"}}"#),
            )
        })
        .sum();
    assert!(caught_up >= 2.0, "{after}");
    assert_eq!(sample(&after, "flux_catalog_snapshot_clusters"), 1.0);
    // Cluster names and other raw path text never become label values.
    assert!(!after.contains("edge-01"), "{after}");
    assert!(!after.contains("nowhere"), "{after}");
}

#[tokio::test]
async fn metrics_can_require_the_read_token() {
    let app = spawn_app_with(|env| {
        env.insert("FLUX_CATALOG_METRICS__REQUIRE_TOKEN".into(), "true".into());
    })
    .await;
    let anonymous = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let with_token = app.get("/metrics").await;
    assert_eq!(with_token.status, 200);
    assert!(with_token.text.contains("flux_catalog_build_info"));
}
