//! Who changed what: the audit log, each resource's history, and rollback.

use serde_json::{Value, json};

use crate::helpers::{
    READ_TOKEN, at_revision, cluster, component, reply, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn every_write_appends_an_audit_record_with_actor_request_and_both_states() {
    let app = spawn_app().await;
    let created = reply(
        app.request(reqwest::Method::POST, "/platform_components")
            .header("x-request-id", "change-4711")
            .json(&component("a", &[]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(created.status, 201);
    app.patch("/platform_components/a", &json!({"oci_tag": "2.0.0"}))
        .await;
    app.delete("/platform_components/a").await;

    let r = app.get("/audit").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-total-count"), Some("3"));
    let records = r.body.as_array().unwrap();
    let actions: Vec<&str> = records
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "update", "create"], "newest first");
    for record in records {
        assert_eq!(record["actor"], "env:CRUD_AUTH_TOKEN");
        assert_eq!(record["kind"], "platform_component");
        assert_eq!(record["resource_id"], "a");
        assert!(
            record["at"].as_str().unwrap().ends_with('Z'),
            "RFC 3339 in UTC: {}",
            record["at"]
        );
    }
    let create = &records[2];
    assert_eq!(create["request_id"], "change-4711");
    assert_eq!(create["revision"], 1);
    assert!(create["before"].is_null());
    assert_eq!(create["after"], at_revision(component("a", &[]), 1));
    let update = &records[1];
    assert_eq!(update["revision"], 2);
    assert_eq!(update["before"]["oci_tag"], "1.0.0");
    assert_eq!(update["after"]["oci_tag"], "2.0.0");
    let delete = &records[0];
    assert_eq!(delete["revision"], 3, "a deletion is a revision of its own");
    assert_eq!(delete["before"]["oci_tag"], "2.0.0");
    assert!(delete["after"].is_null());
}

#[tokio::test]
async fn the_audit_log_filters_and_pages() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    app.create("/clusters", cluster("c1", &["a"])).await;
    app.patch("/clusters/c1", &json!({"node_count": 3})).await;
    app.create("/namespaces", json!({"id": "ns"})).await;
    let count = |r: &crate::helpers::Reply| r.body.as_array().unwrap().len();

    assert_eq!(count(&app.get("/audit?kind=cluster").await), 2);
    assert_eq!(
        count(&app.get("/audit?kind=cluster&action=update").await),
        1
    );
    assert_eq!(count(&app.get("/audit?id=ns").await), 1);
    assert_eq!(count(&app.get("/audit?actor=env:CRUD_AUTH_TOKEN").await), 4);
    assert_eq!(count(&app.get("/audit?actor=env:AUTH_TOKEN").await), 0);
    assert_eq!(
        count(&app.get("/audit?since=2000-01-01T00:00:00Z").await),
        4
    );
    assert_eq!(
        count(&app.get("/audit?until=2000-01-01T00:00:00Z").await),
        0
    );
    let page = app.get("/audit?limit=3").await;
    assert_eq!(count(&page), 3);
    assert!(page.header("link").unwrap().contains("offset=3"));

    for (query, field) in [
        ("kind=clusters", "kind"),
        ("action=edit", "action"),
        ("since=yesterday", "since"),
        ("who=me", "who"),
    ] {
        let r = app.get(&format!("/audit?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        assert_eq!(r.error_fields(), [field], "{query}");
    }
}

#[tokio::test]
async fn the_audit_log_needs_the_write_credential_and_crud_mode() {
    let app = spawn_app().await;
    let r = reply(
        app.client
            .get(app.url("/audit"))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let reader = app
        .sibling(|env| {
            env.insert("API_MODE".into(), "read-only".into());
        })
        .await;
    let r = reader.flux("/audit").await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn history_lists_revisions_newest_first_even_after_a_delete() {
    let app = spawn_app().await;
    app.create("/namespaces", json!({"id": "ns", "labels": {"v": "1"}}))
        .await;
    app.patch("/namespaces/ns", &json!({"labels": {"v": "2"}}))
        .await;
    app.delete("/namespaces/ns").await;
    let r = app.flux("/namespaces/ns/history").await;
    assert_eq!(
        r.status, 200,
        "history is readable with the read token: {}",
        r.text
    );
    let entries = r.body.as_array().unwrap();
    let revisions: Vec<i64> = entries
        .iter()
        .map(|e| e["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(revisions, [3, 2, 1]);
    assert!(
        entries[0]["resource"].is_null(),
        "revision 3 is the deletion"
    );
    assert_eq!(entries[0]["action"], "delete");
    assert_eq!(entries[1]["resource"]["labels"], json!({"v": "2"}));
    assert_eq!(entries[2]["resource"]["labels"], json!({"v": "1"}));
    assert_eq!(
        app.get("/namespaces/never-existed/history").await.status,
        404
    );
}

#[tokio::test]
async fn rollback_restores_an_earlier_revision_as_a_new_one() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    app.patch("/platform_components/a", &json!({"oci_tag": "2.0.0"}))
        .await;
    app.patch(
        "/platform_components/a",
        &json!({"oci_tag": "3.0.0", "component_version": "3.0.0"}),
    )
    .await;

    let r = app
        .post("/platform_components/a/rollback", &json!({"revision": 1}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, at_revision(component("a", &[]), 4));
    assert_eq!(r.header("etag"), Some("\"4\""));
    let latest = &app.get("/audit?id=a&limit=1").await.body[0];
    assert_eq!(latest["action"], "rollback");
    assert_eq!(latest["revision"], 4);
    assert_eq!(latest["before"]["oci_tag"], "3.0.0");
}

#[tokio::test]
async fn rollback_re_creates_a_deleted_resource_and_revisions_continue() {
    let app = spawn_app().await;
    app.create("/namespaces", json!({"id": "ns", "labels": {"team": "a"}}))
        .await;
    app.delete("/namespaces/ns").await;
    let r = app
        .post("/namespaces/ns/rollback", &json!({"revision": 1}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"id": "ns", "labels": {"team": "a"}, "annotations": {}, "revision": 3})
    );

    // A plain re-create after another delete continues the numbering too.
    app.delete("/namespaces/ns").await;
    let r = app.post("/namespaces", &json!({"id": "ns"})).await;
    assert_eq!(r.body["revision"], 5, "{}", r.text);
}

#[tokio::test]
async fn rollback_refuses_the_deletion_revision_and_unknown_ones() {
    let app = spawn_app().await;
    app.create("/namespaces", json!({"id": "ns"})).await;
    app.delete("/namespaces/ns").await;
    let r = app
        .post("/namespaces/ns/rollback", &json!({"revision": 2}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_fields(), ["revision"]);
    let r = app
        .post("/namespaces/ns/rollback", &json!({"revision": 9}))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = app
        .post("/namespaces/ns/rollback", &json!({"revision": "1"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(app.count("namespaces").await, 0);
}

#[tokio::test]
async fn a_rollback_to_content_that_references_a_deleted_entry_is_refused() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    app.create("/platform_components", component("gone", &[]))
        .await;
    app.create("/clusters", cluster("c1", &["a", "gone"])).await;
    app.patch(
        "/clusters/c1",
        &json!({"platform_components": [{"id": "a", "enabled": true}]}),
    )
    .await;
    app.delete("/platform_components/gone").await;
    let r = app
        .post("/clusters/c1/rollback", &json!({"revision": 1}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.code(), "UNKNOWN_REFERENCE");
}

#[tokio::test]
async fn a_rolled_back_cluster_whose_environment_tier_was_removed_is_refused_clearly() {
    let app = spawn_app().await;
    let mut c = cluster("c1", &[]);
    c["environment"] = json!("uat");
    app.create("/clusters", c).await;
    app.patch("/clusters/c1", &json!({"environment": "prod"}))
        .await;
    let strict = app
        .sibling(|env| {
            env.insert("FLUX_CATALOG_ENVIRONMENTS".into(), "dev,prod".into());
        })
        .await;
    let r = strict
        .post("/clusters/c1/rollback", &json!({"revision": 1}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_fields(), ["environment"]);
}

#[tokio::test]
async fn seeding_is_audited_as_the_seed_file() {
    let app = spawn_app_with(|_| {}).await;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/catalog.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flux-catalog"))
        .args(["seed", file.to_str().unwrap()])
        .env("DATABASE_URL", &app.db.connection_string)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let r = app.get("/audit?kind=cluster").await;
    let actors: Vec<&Value> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["actor"])
        .collect();
    assert_eq!(actors.len(), 3);
    assert!(
        actors
            .iter()
            .all(|a| a.as_str().unwrap().starts_with("seed:")),
        "{actors:?}"
    );
}
