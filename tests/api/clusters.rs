//! `/clusters`.

use serde_json::{Value, json};

use crate::helpers::{at_revision, cluster, component, spawn_app, spawn_app_with};

fn full_cluster() -> Value {
    json!({
        "id": "prod-eu-1",
        "cluster_name": "prod-eu-1",
        "cluster_dns": "prod-eu-1.k8s.example.com",
        "environment": "prod",
        "node_count": 12,
        "vm_image": "ubuntu-24.04-k0s",
        "k0s_version": "v1.31.2+k0s.0",
        "platform_components": [
            {"id": "ingress-nginx", "enabled": true, "oci_tag": "4.12.0"},
            {"id": "cert-manager", "enabled": true, "component_path": "forks/cert-manager"}
        ],
        "namespaces": [{"id": "monitoring"}],
        "rolebindings": [{"id": "platform-admins"}],
        "patches": {
            "ingress-nginx": {
                "controller.replicaCount": 3,
                "controller.image.tag": "1.12",
                "controller.enabled": true,
                "ratio": 0.75,
                "nothing": null,
                "list": [1, "two", {"three": 3}],
                "nested": {"a": {"b": "c"}}
            }
        }
    })
}

async fn seed_catalog(app: &crate::helpers::TestApp) {
    app.create("/platform_components", component("cert-manager", &[]))
        .await;
    app.create(
        "/platform_components",
        component("ingress-nginx", &["cert-manager"]),
    )
    .await;
    app.create("/namespaces", json!({"id": "monitoring"})).await;
    app.create(
        "/rolebindings",
        json!({"id": "platform-admins", "role": "cluster-admin"}),
    )
    .await;
}

#[tokio::test]
async fn a_cluster_round_trips_exactly_including_patch_value_types() {
    let app = spawn_app().await;
    seed_catalog(&app).await;
    let body = full_cluster();
    let r = app.post("/clusters", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("location"), Some("/clusters/prod-eu-1"));
    assert_eq!(r.body, at_revision(body.clone(), 1));
    let stored = app.get("/clusters/prod-eu-1").await.body;
    assert_eq!(stored, at_revision(body, 1));
    let patches = &stored["patches"]["ingress-nginx"];
    assert!(
        patches["controller.replicaCount"].is_u64(),
        "a number stays a number"
    );
    assert!(
        patches["controller.image.tag"].is_string(),
        "a string stays a string"
    );
    assert_eq!(patches["ratio"], json!(0.75));
    assert!(patches["nothing"].is_null());
}

/// What a write answers is what reads (and Flux) return afterwards, also for numbers
/// PostgreSQL writes differently: it has no negative zero.
#[tokio::test]
async fn the_write_response_is_what_later_reads_return() {
    let app = spawn_app().await;
    seed_catalog(&app).await;
    app.create("/clusters", full_cluster()).await;
    let r = app
        .patch(
            "/clusters/prod-eu-1",
            &json!({"patches": {"ingress-nginx": {"zero": -0.0, "big": 1e300, "small": 1.5e-7, "huge": 18446744073709551615u64}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let stored = app.get("/clusters/prod-eu-1").await;
    // As text: JSON values compare -0.0 equal to 0.0.
    assert_eq!(r.body.to_string(), stored.body.to_string());
    assert_eq!(
        stored.body["patches"]["ingress-nginx"]["zero"].to_string(),
        "0.0"
    );
    let flux = app
        .flux("/api/v2/flux/clusters/prod-eu-1.k8s.example.com/platform-components")
        .await;
    let input = flux.body["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "ingress-nginx")
        .unwrap();
    assert_eq!(
        input["patches"].to_string(),
        r.body["patches"]["ingress-nginx"].to_string()
    );
}

#[tokio::test]
async fn references_are_stored_as_rows_with_their_overrides() {
    let app = spawn_app().await;
    seed_catalog(&app).await;
    app.create("/clusters", full_cluster()).await;
    let rows = app
        .sql
        .query(
            "select component_id::text, enabled, oci_tag, component_path, patches is not null
               from cluster_platform_components where cluster_id = 'prod-eu-1' order by position",
            &[],
        )
        .await
        .unwrap();
    /// component, enabled, oci_tag, component_path, has patches
    type Row = (String, bool, Option<String>, Option<String>, bool);
    let rows: Vec<Row> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        rows,
        [
            (
                "ingress-nginx".into(),
                true,
                Some("4.12.0".into()),
                None,
                true
            ),
            (
                "cert-manager".into(),
                true,
                None,
                Some("forks/cert-manager".into()),
                false
            ),
        ]
    );
    assert_eq!(app.count("cluster_namespaces").await, 1);
    assert_eq!(app.count("cluster_rolebindings").await, 1);
}

#[tokio::test]
async fn a_second_cluster_with_the_same_dns_name_is_refused() {
    let app = spawn_app().await;
    app.create("/clusters", cluster("a", &[])).await;
    let mut twin = cluster("b", &[]);
    twin["cluster_dns"] = json!("a.k8s.example.com");
    let r = app.post("/clusters", &twin).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "ALREADY_EXISTS");
    assert_eq!(r.error_fields(), ["cluster_dns"]);
    app.create("/clusters", cluster("b", &[])).await;
    let r = app
        .patch("/clusters/b", &json!({"cluster_dns": "a.k8s.example.com"}))
        .await;
    assert_eq!(
        r.status, 409,
        "an update cannot take the name either: {}",
        r.text
    );
    assert_eq!(
        app.get("/clusters/b").await.body["cluster_dns"],
        "b.k8s.example.com"
    );
}

#[tokio::test]
async fn put_keeps_omitted_fields_and_replaces_lists_whole() {
    let app = spawn_app().await;
    seed_catalog(&app).await;
    app.create("/clusters", full_cluster()).await;
    let plain =
        json!([{"id": "ingress-nginx", "enabled": true}, {"id": "cert-manager", "enabled": true}]);
    let r = app
        .put(
            "/clusters/prod-eu-1",
            &json!({"node_count": 20, "platform_components": plain}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut expected = at_revision(full_cluster(), 2);
    expected["node_count"] = json!(20);
    expected["platform_components"] = plain;
    assert_eq!(r.body, expected);
    assert_eq!(app.get("/clusters/prod-eu-1").await.body, expected);
    let overrides: i64 = app
        .sql
        .query_one("select count(*) from cluster_platform_components where oci_tag is not null or component_path is not null", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(overrides, 0, "the overrides went with the replaced list");
}

#[tokio::test]
async fn put_removing_a_component_that_still_has_patches_is_refused() {
    let app = spawn_app().await;
    seed_catalog(&app).await;
    app.create("/clusters", full_cluster()).await;
    let r = app
        .put(
            "/clusters/prod-eu-1",
            &json!({"platform_components": [{"id": "cert-manager", "enabled": true}]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.error_fields(), ["patches.ingress-nginx"]);
    assert_eq!(
        app.get("/clusters/prod-eu-1").await.body,
        at_revision(full_cluster(), 1),
        "unchanged"
    );
}

#[tokio::test]
async fn patch_merges_patches_per_key_and_null_removes() {
    let app = spawn_app().await;
    seed_catalog(&app).await;
    app.create("/clusters", full_cluster()).await;
    let r = app
        .patch(
            "/clusters/prod-eu-1",
            &json!({"vm_image": null, "patches": {"ingress-nginx": {"controller.replicaCount": 5, "ratio": null}, "cert-manager": {"installCRDs": true}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body.get("vm_image").is_none(),
        "null removed the optional field"
    );
    let ingress = &r.body["patches"]["ingress-nginx"];
    assert_eq!(ingress["controller.replicaCount"], 5);
    assert!(ingress.get("ratio").is_none());
    assert_eq!(
        ingress["controller.image.tag"], "1.12",
        "untouched keys stay"
    );
    assert_eq!(
        r.body["patches"]["cert-manager"],
        json!({"installCRDs": true})
    );
    assert_eq!(
        r.body["platform_components"],
        full_cluster()["platform_components"]
    );

    let r = app
        .patch(
            "/clusters/prod-eu-1",
            &json!({"patches": {"ingress-nginx": null}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["patches"].get("ingress-nginx").is_none());
}

#[tokio::test]
async fn delete_removes_the_cluster_and_its_references_but_not_the_catalog() {
    let app = spawn_app().await;
    seed_catalog(&app).await;
    app.create("/clusters", full_cluster()).await;
    let r = app.delete("/clusters/prod-eu-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        at_revision(full_cluster(), 1),
        "the deleted cluster at its last revision"
    );
    assert_eq!(app.get("/clusters/prod-eu-1").await.status, 404);
    for table in [
        "clusters",
        "cluster_platform_components",
        "cluster_namespaces",
        "cluster_rolebindings",
    ] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
    assert_eq!(app.count("platform_components").await, 2);
}

#[tokio::test]
async fn lists_filter_by_dns_name_and_environment() {
    let app = spawn_app().await;
    for (id, environment) in [("a", "dev"), ("b", "prod"), ("c", "prod")] {
        let mut body = cluster(id, &[]);
        body["environment"] = json!(environment);
        app.create("/clusters", body).await;
    }
    let ids = |r: &crate::helpers::Reply| -> Vec<String> {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = app.get("/clusters?environment=prod").await;
    assert_eq!(ids(&r), ["b", "c"]);
    assert_eq!(r.header("x-total-count"), Some("2"));
    let r = app.get("/clusters?cluster_dns=a.k8s.example.com").await;
    assert_eq!(ids(&r), ["a"]);
    let r = app
        .get("/clusters?cluster_dns=a.k8s.example.com&environment=prod")
        .await;
    assert!(ids(&r).is_empty());
}

#[tokio::test]
async fn environments_are_the_configured_tiers() {
    let app = spawn_app_with(|env| {
        env.insert("FLUX_CATALOG_ENVIRONMENTS".into(), "sandbox,live".into());
    })
    .await;
    let mut body = cluster("a", &[]);
    body["environment"] = json!("live");
    assert_eq!(app.post("/clusters", &body).await.status, 201);
    body["id"] = json!("b");
    body["cluster_dns"] = json!("b.example.com");
    body["environment"] = json!("prod");
    let r = app.post("/clusters", &body).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.error_fields(), ["environment"]);
    assert!(
        r.text.contains("sandbox") && r.text.contains("live"),
        "the message lists the tiers: {}",
        r.text
    );
}
