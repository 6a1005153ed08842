//! `/namespaces`.

use serde_json::json;

use crate::helpers::{at_revision, spawn_app};

#[tokio::test]
async fn namespaces_keep_their_labels_and_annotations() {
    let app = spawn_app().await;
    let body = json!({
        "id": "monitoring",
        "labels": {"app.kubernetes.io/part-of": "observability", "team": ""},
        "annotations": {"example.com/description": "Prometheus, Grafana: the lot.\nSecond line."}
    });
    let r = app.post("/namespaces", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("location"), Some("/namespaces/monitoring"));
    assert_eq!(
        app.get("/namespaces/monitoring").await.body,
        at_revision(body, 1)
    );
}

#[tokio::test]
async fn labels_and_annotations_default_to_empty_maps() {
    let app = spawn_app().await;
    let r = app.post("/namespaces", &json!({"id": "bare"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"id": "bare", "labels": {}, "annotations": {}, "revision": 1})
    );
}

#[tokio::test]
async fn put_replaces_a_map_whole_and_patch_merges_it() {
    let app = spawn_app().await;
    app.create(
        "/namespaces",
        json!({"id": "n", "labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}),
    )
    .await;
    let r = app
        .put("/namespaces/n", &json!({"labels": {"c": "3"}}))
        .await;
    assert_eq!(
        r.body,
        json!({"id": "n", "labels": {"c": "3"}, "annotations": {"x": "y"}, "revision": 2}),
        "{}",
        r.text
    );
    let r = app
        .patch("/namespaces/n", &json!({"labels": {"d": "4", "c": null}}))
        .await;
    assert_eq!(
        r.body,
        json!({"id": "n", "labels": {"d": "4"}, "annotations": {"x": "y"}, "revision": 3}),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_namespace_in_use_cannot_be_deleted() {
    let app = spawn_app().await;
    app.create("/namespaces", json!({"id": "n"})).await;
    let mut c = crate::helpers::cluster("c1", &[]);
    c["namespaces"] = json!([{"id": "n"}]);
    app.create("/clusters", c).await;
    let r = app.delete("/namespaces/n").await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "STILL_REFERENCED");
    assert_eq!(
        r.body["referenced_by"],
        json!([{"kind": "cluster", "id": "c1"}])
    );
    app.delete("/clusters/c1").await;
    assert_eq!(app.delete("/namespaces/n").await.status, 200);
}
