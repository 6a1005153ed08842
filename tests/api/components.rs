//! `/platform_components`.

use serde_json::json;

use crate::helpers::{at_revision, cluster, component, spawn_app};

#[tokio::test]
async fn a_created_component_is_stored_and_returned_with_its_location() {
    let app = spawn_app().await;
    app.create("/platform_components", component("cert-manager", &[]))
        .await;
    let body = json!({
        "id": "ingress-nginx", "component_path": "ingress-nginx", "component_version": "4.11.3",
        "cluster_env_enabled": true, "oci_url": "https://kubernetes.github.io/ingress-nginx",
        "oci_tag": "4.11.3", "depends_on": ["cert-manager"]
    });
    let r = app.post("/platform_components", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.header("location"),
        Some("/platform_components/ingress-nginx")
    );
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(r.body, at_revision(body.clone(), 1));
    assert_eq!(
        app.get("/platform_components/ingress-nginx").await.body,
        at_revision(body, 1)
    );
    let row = app
        .sql
        .query_one("select component_version, cluster_env_enabled from platform_components where id = 'ingress-nginx'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "4.11.3");
    assert!(row.get::<_, bool>(1));
    assert_eq!(app.count("platform_component_dependencies").await, 1);
}

#[tokio::test]
async fn defaults_apply_to_omitted_optional_fields() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/platform_components",
            &json!({"id": "a", "component_path": "a", "component_version": "latest", "oci_url": "oci://r/a", "oci_tag": "latest"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["cluster_env_enabled"], false);
    assert_eq!(r.body["depends_on"], json!([]));
}

#[tokio::test]
async fn creating_an_existing_id_is_a_409_and_changes_nothing() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    let mut again = component("a", &[]);
    again["oci_tag"] = json!("9.9.9");
    let r = app.post("/platform_components", &again).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "ALREADY_EXISTS");
    assert_eq!(r.error_fields(), ["id"]);
    assert_eq!(
        app.get("/platform_components/a").await.body["oci_tag"],
        "1.0.0"
    );
}

#[tokio::test]
async fn put_replaces_the_fields_sent_and_keeps_the_others() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    app.create("/platform_components", component("b", &[]))
        .await;
    let r = app
        .put(
            "/platform_components/b",
            &json!({"oci_tag": "2.0.0", "depends_on": ["a"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut expected = at_revision(component("b", &["a"]), 2);
    expected["oci_tag"] = json!("2.0.0");
    assert_eq!(r.body, expected);
    assert_eq!(app.get("/platform_components/b").await.body, expected);
}

#[tokio::test]
async fn put_with_the_full_document_is_accepted_as_is() {
    let app = spawn_app().await;
    let original = app
        .create("/platform_components", component("a", &[]))
        .await;
    let r = app.put("/platform_components/a", &original).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, original);
}

#[tokio::test]
async fn patch_merges_and_null_resets_to_the_default() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    let mut with_flag = component("b", &["a"]);
    with_flag["cluster_env_enabled"] = json!(true);
    app.create("/platform_components", with_flag).await;
    let r = app
        .patch(
            "/platform_components/b",
            &json!({"component_version": "2.0.0", "cluster_env_enabled": null, "depends_on": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["component_version"], "2.0.0");
    assert_eq!(r.body["cluster_env_enabled"], false);
    assert_eq!(r.body["depends_on"], json!([]));
    assert_eq!(r.body["oci_tag"], "1.0.0", "untouched");
    assert_eq!(app.count("platform_component_dependencies").await, 0);
}

#[tokio::test]
async fn patch_accepts_application_json_and_refuses_json_patch() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    let send = |content_type: &'static str| {
        app.request(reqwest::Method::PATCH, "/platform_components/a")
            .header("content-type", content_type)
            .body(json!({"oci_tag": "3.0.0"}).to_string())
            .send()
    };
    assert_eq!(send("application/json").await.unwrap().status(), 200);
    let r = crate::helpers::reply(send("application/json-patch+json").await.unwrap()).await;
    assert_eq!(r.status, 415);
    assert_eq!(r.code(), "UNSUPPORTED_MEDIA_TYPE");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("application/merge-patch+json")
    );
}

#[tokio::test]
async fn the_id_cannot_be_changed_by_an_update() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    for r in [
        app.put("/platform_components/a", &json!({"id": "b"})).await,
        app.patch("/platform_components/a", &json!({"id": "b"}))
            .await,
        app.patch("/platform_components/a", &json!({"id": null}))
            .await,
    ] {
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.error_fields(), ["id"]);
    }
    assert_eq!(app.get("/platform_components/a").await.status, 200);
    assert_eq!(app.get("/platform_components/b").await.status, 404);
}

#[tokio::test]
async fn unknown_ids_are_404_for_every_method() {
    let app = spawn_app().await;
    for r in [
        app.get("/platform_components/ghost").await,
        app.put("/platform_components/ghost", &json!({"oci_tag": "1"}))
            .await,
        app.patch("/platform_components/ghost", &json!({"oci_tag": "1"}))
            .await,
        app.delete("/platform_components/ghost").await,
    ] {
        assert_eq!(r.status, 404, "{}", r.text);
        assert_eq!(r.code(), "NOT_FOUND");
    }
}

#[tokio::test]
async fn delete_returns_the_deleted_component() {
    let app = spawn_app().await;
    let created = app
        .create("/platform_components", component("a", &[]))
        .await;
    let r = app.delete("/platform_components/a").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, created);
    assert_eq!(app.get("/platform_components/a").await.status, 404);
    assert_eq!(app.count("platform_components").await, 0);
}

#[tokio::test]
async fn a_component_in_use_cannot_be_deleted_and_the_refusal_names_the_users() {
    let app = spawn_app().await;
    app.create("/platform_components", component("base", &[]))
        .await;
    app.create("/platform_components", component("top", &["base"]))
        .await;
    app.create("/clusters", cluster("c2", &["base"])).await;
    app.create("/clusters", cluster("c1", &["base", "top"]))
        .await;

    let r = app.delete("/platform_components/base").await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "STILL_REFERENCED");
    assert_eq!(
        r.body["referenced_by"],
        json!([{"kind": "cluster", "id": "c1"}, {"kind": "cluster", "id": "c2"}, {"kind": "platform component", "id": "top"}])
    );
    assert!(r.body["detail"].as_str().unwrap().contains("\"c1\""));
    assert_eq!(app.count("platform_components").await, 2);
}

#[tokio::test]
async fn depends_on_must_name_existing_components() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    let r = app
        .post("/platform_components", &component("b", &["a", "ghost"]))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.code(), "UNKNOWN_REFERENCE");
    assert_eq!(r.error_fields(), ["depends_on[1]"]);
    assert_eq!(app.count("platform_components").await, 1);
}

#[tokio::test]
async fn lists_filter_by_component_version() {
    let app = spawn_app().await;
    for (id, version) in [("a", "1.0.0"), ("b", "2.0.0"), ("c", "1.0.0")] {
        let mut body = component(id, &[]);
        body["component_version"] = json!(version);
        app.create("/platform_components", body).await;
    }
    let r = app
        .get("/platform_components?component_version=1.0.0")
        .await;
    assert_eq!(r.status, 200);
    let ids: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(r.header("x-total-count"), Some("2"));
}
