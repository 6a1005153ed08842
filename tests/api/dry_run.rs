//! Conditional writes, and seeing what a change does to the fleet before (and as) it happens.

use serde_json::{Value, json};

use crate::helpers::{TestApp, cluster, component, reply, spawn_app};

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> crate::helpers::Reply {
    let mut request = app.request(method, path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    reply(request.send().await.unwrap()).await
}

#[tokio::test]
async fn reads_carry_an_etag_and_answer_304_when_it_is_current() {
    let app = spawn_app().await;
    app.create("/namespaces", json!({"id": "ns"})).await;
    let r = app.get("/namespaces/ns").await;
    assert_eq!(r.header("etag"), Some("\"1\""));
    let r = send(
        &app,
        reqwest::Method::GET,
        "/namespaces/ns",
        &[("if-none-match", "\"1\"")],
        None,
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.text.is_empty());
    app.patch("/namespaces/ns", &json!({"labels": {"a": "b"}}))
        .await;
    let r = send(
        &app,
        reqwest::Method::GET,
        "/namespaces/ns",
        &[("if-none-match", "\"1\"")],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some("\"2\""));
}

#[tokio::test]
async fn if_match_with_a_stale_revision_is_412_and_writes_nothing() {
    let app = spawn_app().await;
    app.create("/namespaces", json!({"id": "ns"})).await;
    app.patch("/namespaces/ns", &json!({"labels": {"v": "2"}}))
        .await;
    for (method, body) in [
        (
            reqwest::Method::PUT,
            Some(json!({"labels": {"v": "stale"}})),
        ),
        (
            reqwest::Method::PATCH,
            Some(json!({"labels": {"v": "stale"}})),
        ),
        (reqwest::Method::DELETE, None),
    ] {
        let r = send(
            &app,
            method.clone(),
            "/namespaces/ns",
            &[("if-match", "\"1\"")],
            body,
        )
        .await;
        assert_eq!(r.status, 412, "{method}: {}", r.text);
        assert_eq!(r.code(), "PRECONDITION_FAILED");
        assert_eq!(r.body["current_revision"], 2);
        assert_eq!(r.header("etag"), Some("\"2\""));
    }
    assert_eq!(
        app.get("/namespaces/ns").await.body["labels"],
        json!({"v": "2"})
    );
    let r = send(
        &app,
        reqwest::Method::PATCH,
        "/namespaces/ns",
        &[("if-match", "\"1\", \"2\"")],
        Some(json!({"labels": {}})),
    )
    .await;
    assert_eq!(r.status, 200, "any listed revision will do: {}", r.text);
    let r = send(
        &app,
        reqwest::Method::DELETE,
        "/namespaces/ns",
        &[("if-match", "*")],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_revision_in_the_body_is_a_precondition_like_if_match() {
    let app = spawn_app().await;
    let created = app.create("/namespaces", json!({"id": "ns"})).await;
    app.patch("/namespaces/ns", &json!({"labels": {"v": "2"}}))
        .await;
    // A client that PUTs back what it read at revision 1 is told it is stale.
    let mut stale = created.clone();
    stale["labels"] = json!({"v": "mine"});
    let r = app.put("/namespaces/ns", &stale).await;
    assert_eq!(r.status, 412, "{}", r.text);
    let mut fresh = app.get("/namespaces/ns").await.body;
    fresh["labels"] = json!({"v": "mine"});
    let r = app.put("/namespaces/ns", &fresh).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["revision"], 3);
}

#[tokio::test]
async fn if_none_match_star_creates_only_what_does_not_exist() {
    let app = spawn_app().await;
    let r = send(
        &app,
        reqwest::Method::POST,
        "/namespaces",
        &[("if-none-match", "*")],
        Some(json!({"id": "ns"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = send(
        &app,
        reqwest::Method::POST,
        "/namespaces",
        &[("if-none-match", "*")],
        Some(json!({"id": "ns"})),
    )
    .await;
    assert_eq!(r.status, 412, "{}", r.text);
    assert_eq!(r.body["current_revision"], 1);
}

#[tokio::test]
async fn an_update_that_changes_nothing_keeps_the_revision_and_is_not_audited() {
    let app = spawn_app().await;
    let created = app
        .create("/namespaces", json!({"id": "ns", "labels": {"a": "b"}}))
        .await;
    let r = app.put("/namespaces/ns", &created).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["revision"], 1);
    assert_eq!(app.count("audit_log").await, 1);
}

/// Three clusters use cert-manager: two with the catalog's tag, one with its own.
async fn fleet(app: &TestApp) {
    app.create("/platform_components", component("cert-manager", &[]))
        .await;
    app.create("/platform_components", component("other", &[]))
        .await;
    app.create("/clusters", cluster("uses-default-1", &["cert-manager"]))
        .await;
    app.create(
        "/clusters",
        cluster("uses-default-2", &["cert-manager", "other"]),
    )
    .await;
    let mut pinned = cluster("overrides", &["cert-manager"]);
    pinned["platform_components"][0]["oci_tag"] = json!("pinned");
    app.create("/clusters", pinned).await;
    app.create("/clusters", cluster("unrelated", &["other"]))
        .await;
}

#[tokio::test]
async fn a_dry_run_lists_exactly_the_clusters_that_use_the_catalog_default() {
    let app = spawn_app().await;
    fleet(&app).await;
    let audit_before = app.count("audit_log").await;
    let r = app
        .patch(
            "/platform_components/cert-manager?dry_run=true",
            &json!({"oci_tag": "2.0.0"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["dry_run"], true);
    assert_eq!(r.body["outcome"], "updated");
    assert_eq!(r.body["revision"], 2);
    assert_eq!(r.body["resource"]["oci_tag"], "2.0.0");
    assert_eq!(r.header("x-flux-changed-clusters"), Some("2"));
    let changes = r.body["changes"].as_array().unwrap();
    let clusters: Vec<&str> = changes
        .iter()
        .map(|c| c["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(clusters, ["uses-default-1", "uses-default-2"]);
    assert_eq!(
        changes[0]["endpoints"],
        json!({"platform-components": {"added": [], "removed": [], "changed": [
            {"id": "cert-manager", "fields": [{"field": "source.oci_tag", "old": "1.0.0", "new": "2.0.0"}]}
        ]}})
    );
    assert_eq!(changes[0]["cluster_dns"], "uses-default-1.k8s.example.com");

    // Nothing was written or audited.
    assert_eq!(
        app.get("/platform_components/cert-manager").await.body["oci_tag"],
        "1.0.0"
    );
    assert_eq!(app.count("audit_log").await, audit_before);
}

#[tokio::test]
async fn a_dry_run_of_a_refused_write_is_refused_the_same_way() {
    let app = spawn_app().await;
    fleet(&app).await;
    let r = app
        .post("/clusters?dry_run=true", &cluster("uses-default-1", &[]))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    let r = app
        .delete("/platform_components/cert-manager?dry_run=true")
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "STILL_REFERENCED");
    let r = app
        .post("/clusters?dry_run=maybe", &cluster("x", &[]))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_fields(), ["dry_run"]);
}

#[tokio::test]
async fn dry_runs_of_a_create_and_a_delete_show_whole_inputs_appearing_and_going() {
    let app = spawn_app().await;
    fleet(&app).await;
    let r = app
        .post("/clusters?dry_run=true", &cluster("new-one", &["other"]))
        .await;
    assert_eq!(
        r.status, 200,
        "a dry-run create creates nothing: {}",
        r.text
    );
    assert_eq!(r.body["outcome"], "created");
    assert!(r.header("location").is_none());
    let endpoints = &r.body["changes"][0]["endpoints"];
    assert_eq!(endpoints["platform-components"]["added"][0]["id"], "other");
    assert_eq!(
        endpoints["clusters"]["added"][0]["cluster_dns"],
        "new-one.k8s.example.com"
    );
    assert_eq!(app.get("/clusters/new-one").await.status, 404);

    let r = app.delete("/clusters/unrelated?dry_run=true").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["outcome"], "deleted");
    assert_eq!(
        r.body["changes"][0]["endpoints"]["platform-components"]["removed"],
        json!(["other"])
    );
    assert_eq!(
        r.body["changes"][0]["endpoints"]["clusters"]["removed"],
        json!(["unrelated"])
    );
    assert_eq!(app.get("/clusters/unrelated").await.status, 200);
}

#[tokio::test]
async fn a_real_write_reports_its_changes_on_request() {
    let app = spawn_app().await;
    fleet(&app).await;
    let plain = app
        .patch(
            "/clusters/uses-default-1",
            &json!({"patches": {"cert-manager": {"replicas": 2}}}),
        )
        .await;
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.body["id"], "uses-default-1",
        "without the header, the answer is the resource"
    );
    assert_eq!(plain.header("x-flux-changed-clusters"), Some("1"));

    let r = send(
        &app,
        reqwest::Method::PATCH,
        "/clusters/uses-default-1",
        &[
            ("x-flux-changes", "true"),
            ("content-type", "application/merge-patch+json"),
        ],
        Some(json!({"patches": {"cert-manager": {"replicas": 3}}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["dry_run"], false);
    assert_eq!(r.body["revision"], 3);
    assert_eq!(
        r.body["changes"][0]["endpoints"]["platform-components"]["changed"][0]["fields"],
        json!([{"field": "patches.replicas", "old": 2, "new": 3}])
    );
    assert_eq!(
        app.get("/clusters/uses-default-1").await.body["revision"],
        3,
        "it was written"
    );
}

/// The documented shape of a change report lists the same fields real reports have.
#[tokio::test]
async fn documented_change_schemas_match_real_reports() {
    let app = spawn_app().await;
    fleet(&app).await;
    let r = app
        .patch(
            "/platform_components/cert-manager?dry_run=true",
            &json!({"oci_tag": "2.0.0"}),
        )
        .await;
    let document: Value =
        serde_json::from_str(&flux_catalog::http::openapi::json_document()).unwrap();
    let schemas = &document["components"]["schemas"];
    let keys = |v: &Value| -> std::collections::BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys(&r.body), keys(&schemas["WriteReport"]["properties"]));
    let change = &r.body["changes"][0];
    assert_eq!(keys(change), keys(&schemas["ClusterChange"]["properties"]));
    let endpoint = &change["endpoints"]["platform-components"];
    assert_eq!(
        keys(endpoint),
        keys(&schemas["EndpointChange"]["properties"])
    );
    assert_eq!(
        keys(&endpoint["changed"][0]),
        keys(&schemas["InputChange"]["properties"])
    );
    assert_eq!(
        keys(&endpoint["changed"][0]["fields"][0]),
        keys(&schemas["FieldChange"]["properties"])
    );
}

#[tokio::test]
async fn malformed_conditional_and_report_headers_are_400_naming_the_header() {
    let app = spawn_app().await;
    app.create("/namespaces", json!({"id": "ns"})).await;
    for (header, value) in [
        ("if-match", ""),
        ("if-match", "1"),
        ("if-match", "\"1\", "),
        ("if-none-match", "\"1\""),
        ("x-flux-changes", "yes"),
    ] {
        let r = send(
            &app,
            reqwest::Method::PATCH,
            "/namespaces/ns",
            &[(header, value)],
            Some(json!({"labels": {"a": "b"}})),
        )
        .await;
        assert_eq!(r.status, 400, "{header}: {value:?}: {}", r.text);
        assert_eq!(r.error_fields().len(), 1, "{}", r.text);
        assert!(
            r.error_fields()[0].eq_ignore_ascii_case(header),
            "{}",
            r.text
        );
    }
    assert_eq!(
        app.get("/namespaces/ns").await.body["revision"],
        1,
        "nothing written"
    );
}
