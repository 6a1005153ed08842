//! The ExternalService endpoints Flux polls: merge rules one by one, order, and contract.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, cluster, component, spawn_app};

const COMPONENTS: &str = "/api/v2/flux/clusters/demo-01.k8s.example.com/platform-components";

fn input<'a>(reply: &'a crate::helpers::Reply, id: &str) -> &'a Value {
    reply.body["inputs"]
        .as_array()
        .expect("inputs is an array")
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no input {id} in {}", reply.text))
}

fn ids(reply: &crate::helpers::Reply) -> Vec<String> {
    reply.body["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn platform_components_have_exactly_the_contract_fields() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let r = app.flux(COMPONENTS).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(keys(&r.body), BTreeSet::from(["inputs"]));
    assert_eq!(
        input(&r, "cert-manager"),
        &json!({
            "id": "cert-manager",
            "component_path": "charts/cert-manager",
            "component_version": "1.0.0",
            "cluster_env_enabled": false,
            "depends_on": [],
            "enabled": true,
            "patches": {},
            "cluster": {"name": "demo-01", "dns": "demo-01.k8s.example.com", "environment": "dev"},
            "source": {"oci_url": "oci://registry.example.com/cert-manager", "oci_tag": "1.0.0"}
        })
    );
}

#[tokio::test]
async fn the_clusters_oci_tag_override_wins_and_changes_nothing_else() {
    let app = spawn_app().await;
    app.seed_demo().await;
    app.patch(
        "/clusters/demo-01",
        &json!({"platform_components": [
            {"id": "cert-manager", "enabled": true, "oci_tag": "v1.16.2"},
            {"id": "ingress-nginx", "enabled": true}
        ]}),
    )
    .await;
    let r = app.flux(COMPONENTS).await;
    let cert = input(&r, "cert-manager");
    assert_eq!(cert["source"]["oci_tag"], "v1.16.2");
    assert_eq!(cert["component_path"], "charts/cert-manager");
    assert_eq!(
        input(&r, "ingress-nginx")["source"]["oci_tag"],
        "1.0.0",
        "other components keep the default"
    );
}

#[tokio::test]
async fn the_clusters_component_path_override_wins() {
    let app = spawn_app().await;
    app.seed_demo().await;
    app.patch(
        "/clusters/demo-01",
        &json!({"platform_components": [
            {"id": "cert-manager", "enabled": true, "component_path": "forks/cert-manager"},
            {"id": "ingress-nginx", "enabled": true}
        ]}),
    )
    .await;
    let r = app.flux(COMPONENTS).await;
    assert_eq!(
        input(&r, "cert-manager")["component_path"],
        "forks/cert-manager"
    );
    assert_eq!(input(&r, "cert-manager")["source"]["oci_tag"], "1.0.0");
}

#[tokio::test]
async fn catalog_fields_follow_catalog_changes_on_every_cluster_without_an_override() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let mut overridden = cluster("demo-02", &["cert-manager"]);
    overridden["platform_components"][0]["oci_tag"] = json!("pinned");
    app.create("/clusters", overridden).await;
    app.patch(
        "/platform_components/cert-manager",
        &json!({"component_version": "1.16.2", "cluster_env_enabled": true, "oci_url": "https://charts.jetstack.io", "oci_tag": "v1.16.2"}),
    )
    .await;
    let r = app.flux(COMPONENTS).await;
    let cert = input(&r, "cert-manager");
    assert_eq!(cert["component_version"], "1.16.2");
    assert_eq!(cert["cluster_env_enabled"], true);
    assert_eq!(
        cert["source"],
        json!({"oci_url": "https://charts.jetstack.io", "oci_tag": "v1.16.2"})
    );
    let pinned = app
        .flux("/api/v2/flux/clusters/demo-02.k8s.example.com/platform-components")
        .await;
    let cert = input(&pinned, "cert-manager");
    assert_eq!(
        cert["source"]["oci_tag"], "pinned",
        "the override still wins"
    );
    assert_eq!(
        cert["source"]["oci_url"], "https://charts.jetstack.io",
        "the URL is always the catalog's"
    );
    assert_eq!(cert["component_version"], "1.16.2");
}

#[tokio::test]
async fn depends_on_comes_from_the_catalog() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let r = app.flux(COMPONENTS).await;
    assert_eq!(
        input(&r, "ingress-nginx")["depends_on"],
        json!(["cert-manager"])
    );
}

#[tokio::test]
async fn patches_are_the_clusters_for_that_component_and_empty_for_others() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let patches = json!({"controller.replicaCount": 3, "controller.service.type": "LoadBalancer", "debug": false, "weights": [1.5, 2]});
    app.patch(
        "/clusters/demo-01",
        &json!({"patches": {"ingress-nginx": patches}}),
    )
    .await;
    let r = app.flux(COMPONENTS).await;
    assert_eq!(input(&r, "ingress-nginx")["patches"], patches);
    assert_eq!(input(&r, "cert-manager")["patches"], json!({}));
}

#[tokio::test]
async fn a_disabled_component_is_listed_with_enabled_false() {
    let app = spawn_app().await;
    app.seed_demo().await;
    app.patch(
        "/clusters/demo-01",
        &json!({"platform_components": [
            {"id": "cert-manager", "enabled": true},
            {"id": "ingress-nginx", "enabled": false}
        ]}),
    )
    .await;
    let r = app.flux(COMPONENTS).await;
    assert_eq!(input(&r, "ingress-nginx")["enabled"], false);
    assert_eq!(input(&r, "cert-manager")["enabled"], true);
}

#[tokio::test]
async fn the_cluster_block_names_the_cluster() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    app.create(
        "/clusters",
        json!({"id": "edge-7", "cluster_name": "edge-seven", "cluster_dns": "edge7.example.net", "environment": "uat",
               "platform_components": [{"id": "a", "enabled": true}]}),
    )
    .await;
    let r = app
        .flux("/api/v2/flux/clusters/edge7.example.net/platform-components")
        .await;
    assert_eq!(
        input(&r, "a")["cluster"],
        json!({"name": "edge-seven", "dns": "edge7.example.net", "environment": "uat"})
    );
}

async fn many_components(app: &TestApp) {
    // zeta <- alpha <- beta, mid alone, omega depends on a component the cluster lacks.
    app.create("/platform_components", component("zeta", &[]))
        .await;
    app.create("/platform_components", component("alpha", &["zeta"]))
        .await;
    app.create("/platform_components", component("mid", &[]))
        .await;
    app.create("/platform_components", component("beta", &["alpha", "mid"]))
        .await;
    app.create("/platform_components", component("outside", &[]))
        .await;
    app.create("/platform_components", component("omega", &["outside"]))
        .await;
    // omega is disabled: enabled without its dependency, the cluster would be refused.
    let mut c = cluster("demo-01", &["beta", "omega", "mid", "alpha", "zeta"]);
    c["platform_components"][1]["enabled"] = json!(false);
    app.create("/clusters", c).await;
}

#[tokio::test]
async fn dependencies_come_before_dependents_with_ties_by_id() {
    let app = spawn_app().await;
    many_components(&app).await;
    let r = app.flux(COMPONENTS).await;
    assert_eq!(ids(&r), ["mid", "omega", "zeta", "alpha", "beta"]);
}

#[tokio::test]
async fn the_same_data_always_gives_the_same_bytes() {
    let app = spawn_app().await;
    many_components(&app).await;
    let first = app.flux(COMPONENTS).await.text;
    for _ in 0..5 {
        assert_eq!(app.flux(COMPONENTS).await.text, first);
    }
    // The order the cluster lists its references in does not matter either.
    let reference_order = |cluster: &Value| -> Vec<String> {
        cluster["platform_components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let new_order = ["zeta", "alpha", "mid", "omega", "beta"];
    let before = app.get("/clusters/demo-01").await;
    assert_eq!(before.status, 200, "{}", before.text);
    assert_ne!(
        reference_order(&before.body),
        new_order,
        "the cluster already lists its references in the new order"
    );
    let reordered: Vec<Value> = new_order
        .iter()
        .map(|c| json!({"id": c, "enabled": *c != "omega"}))
        .collect();
    let r = app
        .put(
            "/clusters/demo-01",
            &json!({"platform_components": reordered}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Without this, a write that was refused or ignored would leave the bytes equal too.
    let after = app.get("/clusters/demo-01").await;
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(
        reference_order(&after.body),
        new_order,
        "the stored order did not change"
    );
    assert_eq!(app.flux(COMPONENTS).await.text, first);
}

#[tokio::test]
async fn namespaces_resolve_their_definitions_by_id() {
    let app = spawn_app().await;
    app.create("/namespaces", json!({"id": "web", "labels": {"tier": "frontend"}, "annotations": {"example.com/owner": "web-team"}})).await;
    app.create("/namespaces", json!({"id": "apps"})).await;
    let mut c = cluster("demo-01", &[]);
    c["namespaces"] = json!([{"id": "web"}, {"id": "apps"}]);
    app.create("/clusters", c).await;
    let r = app
        .flux("/api/v2/flux/clusters/demo-01.k8s.example.com/namespaces")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let block = json!({"name": "demo-01", "dns": "demo-01.k8s.example.com", "environment": "dev"});
    assert_eq!(
        r.body,
        json!({"inputs": [
            {"id": "apps", "labels": {}, "annotations": {}, "cluster": block},
            {"id": "web", "labels": {"tier": "frontend"}, "annotations": {"example.com/owner": "web-team"}, "cluster": block}
        ]})
    );
}

#[tokio::test]
async fn rolebindings_resolve_their_definitions_by_id() {
    let app = spawn_app().await;
    app.seed_demo().await;
    app.create("/rolebindings", json!({"id": "auditors", "role": "view", "subjects": [{"kind": "User", "name": "audit@example.com"}]})).await;
    app.patch(
        "/clusters/demo-01",
        &json!({"rolebindings": [{"id": "platform-admins"}, {"id": "auditors"}]}),
    )
    .await;
    let r = app
        .flux("/api/v2/flux/clusters/demo-01.k8s.example.com/rolebindings")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let block = json!({"name": "demo-01", "dns": "demo-01.k8s.example.com", "environment": "dev"});
    assert_eq!(
        r.body,
        json!({"inputs": [
            {"id": "auditors", "role": "view",
             "subjects": [{"kind": "User", "name": "audit@example.com", "namespace": "", "apiGroup": ""}], "cluster": block},
            {"id": "platform-admins", "role": "cluster-admin",
             "subjects": [{"kind": "Group", "name": "platform-team", "namespace": "", "apiGroup": "rbac.authorization.k8s.io"}], "cluster": block}
        ]})
    );
}

#[tokio::test]
async fn the_fleet_listing_has_every_cluster_with_exactly_four_fields() {
    let app = spawn_app().await;
    for id in ["b-cluster", "a-cluster"] {
        app.create("/clusters", cluster(id, &[])).await;
    }
    let r = app.flux("/api/v2/flux/clusters").await;
    assert_eq!(
        r.body,
        json!({"inputs": [
            {"id": "a-cluster", "cluster_name": "a-cluster", "cluster_dns": "a-cluster.k8s.example.com", "environment": "dev"},
            {"id": "b-cluster", "cluster_name": "b-cluster", "cluster_dns": "b-cluster.k8s.example.com", "environment": "dev"}
        ]})
    );
}

#[tokio::test]
async fn inputs_is_an_empty_array_never_null() {
    let app = spawn_app().await;
    assert_eq!(
        app.flux("/api/v2/flux/clusters").await.body,
        json!({"inputs": []})
    );
    app.create("/clusters", cluster("demo-01", &[])).await;
    for endpoint in ["platform-components", "namespaces", "rolebindings"] {
        let r = app
            .flux(&format!(
                "/api/v2/flux/clusters/demo-01.k8s.example.com/{endpoint}"
            ))
            .await;
        assert_eq!(r.body, json!({"inputs": []}), "{endpoint}");
    }
}

#[tokio::test]
async fn an_unknown_cluster_is_a_404_on_every_endpoint() {
    let app = spawn_app().await;
    for endpoint in ["platform-components", "namespaces", "rolebindings"] {
        let r = app
            .flux(&format!(
                "/api/v2/flux/clusters/ghost.example.com/{endpoint}"
            ))
            .await;
        assert_eq!(r.status, 404, "{endpoint}");
        assert_eq!(r.code(), "NOT_FOUND");
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("ghost.example.com")
        );
    }
}

#[tokio::test]
async fn a_realistic_large_cluster_stays_well_under_900_kib() {
    let app = spawn_app().await;
    let mut refs = Vec::new();
    let mut patches = serde_json::Map::new();
    for i in 0..100 {
        let id = format!("component-{i:03}");
        let depends_on: Vec<String> = (0..i.min(3))
            .map(|d| format!("component-{:03}", i - 1 - d))
            .collect();
        let mut body = component(&id, &[]);
        body["depends_on"] = json!(depends_on);
        body["oci_url"] = json!(format!("oci://registry.example.com/platform/charts/{id}"));
        app.create("/platform_components", body).await;
        refs.push(json!({"id": id, "enabled": true, "oci_tag": if i % 5 == 0 { Some("2.0.0") } else { None }}));
        patches.insert(id, json!({"replicaCount": i, "image.tag": format!("v{i}.0.0"), "resources.limits.memory": "512Mi",
                                  "ingress.enabled": i % 2 == 0, "podAnnotations": {"example.com/owner": "platform-team"}}));
    }
    app.create(
        "/clusters",
        json!({"id": "big", "cluster_name": "big", "cluster_dns": "big.example.com", "environment": "prod",
               "platform_components": refs, "patches": patches}),
    )
    .await;
    let r = app
        .flux("/api/v2/flux/clusters/big.example.com/platform-components")
        .await;
    assert_eq!(r.status, 200);
    let inputs = r.body["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 100);
    let unique: BTreeSet<&str> = inputs.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 100, "ids are unique");
    assert!(r.text.len() < 900 * 1024, "{} bytes", r.text.len());
    let position = |id: &str| inputs.iter().position(|i| i["id"] == id).unwrap();
    for input in inputs {
        for dependency in input["depends_on"].as_array().unwrap() {
            assert!(
                position(dependency.as_str().unwrap()) < position(input["id"].as_str().unwrap())
            );
        }
    }
}

#[tokio::test]
async fn a_read_only_replica_serves_the_flux_endpoints_from_the_same_database() {
    let writer = spawn_app().await;
    writer.seed_demo().await;
    let reader = writer
        .sibling(|env| {
            env.insert("API_MODE".into(), "read-only".into());
        })
        .await;
    let expected = writer.flux(COMPONENTS).await;
    let r = reader.flux(COMPONENTS).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, expected.text);
    for endpoint in ["namespaces", "rolebindings"] {
        let path = format!("/api/v2/flux/clusters/demo-01.k8s.example.com/{endpoint}");
        assert_eq!(
            reader.flux(&path).await.text,
            writer.flux(&path).await.text,
            "{endpoint}"
        );
    }
    assert_eq!(
        reader.flux("/api/v2/flux/clusters").await.text,
        writer.flux("/api/v2/flux/clusters").await.text
    );
}

/// The documented response schemas list the same fields the endpoints send.
#[tokio::test]
async fn documented_flux_schemas_match_the_responses() {
    let app = spawn_app().await;
    app.seed_demo().await;
    app.patch(
        "/clusters/demo-01",
        &json!({"namespaces": [{"id": "monitoring"}], "rolebindings": [{"id": "platform-admins"}]}),
    )
    .await;
    let document: Value =
        serde_json::from_str(&flux_catalog::http::openapi::json_document()).unwrap();
    let schemas = &document["components"]["schemas"];
    let properties = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    };
    let sent = |value: &Value| -> BTreeSet<String> {
        value.as_object().unwrap().keys().cloned().collect()
    };
    for (endpoint, schema) in [
        ("platform-components", "PlatformComponentInput"),
        ("namespaces", "NamespaceInput"),
        ("rolebindings", "RoleBindingInput"),
    ] {
        let r = app
            .flux(&format!(
                "/api/v2/flux/clusters/demo-01.k8s.example.com/{endpoint}"
            ))
            .await;
        let first = &r.body["inputs"][0];
        assert_eq!(sent(first), properties(schema), "{endpoint}");
        assert_eq!(
            sent(&first["cluster"]),
            properties("ClusterInfo"),
            "{endpoint}"
        );
    }
    let r = app.flux(COMPONENTS).await;
    assert_eq!(
        sent(&r.body["inputs"][0]["source"]),
        properties("OciSource")
    );
    let r = app.flux("/api/v2/flux/clusters").await;
    assert_eq!(sent(&r.body["inputs"][0]), properties("ClusterInput"));
}

#[tokio::test]
async fn the_fleet_listing_can_be_narrowed_to_one_environment() {
    let app = spawn_app().await;
    for (id, environment) in [("a", "dev"), ("b", "prod"), ("c", "prod")] {
        let mut body = cluster(id, &[]);
        body["environment"] = json!(environment);
        app.create("/clusters", body).await;
    }
    let r = app.flux("/api/v2/flux/clusters?environment=prod").await;
    assert_eq!(ids(&r), ["b", "c"]);
    let r = app.flux("/api/v2/flux/clusters?enviroment=prod").await;
    assert_eq!(
        r.status, 400,
        "a mistyped filter must not return the whole fleet: {}",
        r.text
    );
    assert_eq!(r.error_fields(), ["enviroment"]);
}

/// Flux polls forever: an unchanged body is a 304, and bodies go out gzip-encoded when the
/// client takes it (Go's HTTP client does), decoding to exactly the plain body.
#[tokio::test]
async fn responses_carry_a_strong_etag_honour_if_none_match_and_come_gzipped_on_request() {
    use std::io::Read;
    let app = spawn_app().await;
    app.seed_demo().await;
    let get = |headers: Vec<(&'static str, String)>| {
        let mut request = app
            .client
            .get(app.url(COMPONENTS))
            .bearer_auth(crate::helpers::READ_TOKEN);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap() }
    };

    let plain = get(vec![]).await;
    assert_eq!(plain.status(), 200);
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "{etag}"
    );
    assert_eq!(plain.headers()["vary"], "Accept-Encoding");
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(
        plain.headers()["x-catalog-age"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert!(
        plain.headers().get("x-catalog-stale").is_none(),
        "the database is fine"
    );
    let plain_body = plain.bytes().await.unwrap();

    let zipped = get(vec![("accept-encoding", "gzip, deflate".into())]).await;
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let gzip_etag = zipped.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(
        gzip_etag, etag,
        "another encoding, another strong validator"
    );
    let zipped_body = zipped.bytes().await.unwrap();
    assert!(zipped_body.len() < plain_body.len());
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&zipped_body[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(
        decoded,
        plain_body.to_vec(),
        "gzip decodes to exactly the plain body"
    );
    let refused = get(vec![("accept-encoding", "gzip;q=0".into())]).await;
    assert!(
        refused.headers().get("content-encoding").is_none(),
        "q=0 refuses gzip"
    );

    for tag in [
        etag.clone(),
        gzip_etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
    ] {
        let cached = get(vec![("if-none-match", tag.clone())]).await;
        assert_eq!(cached.status(), 304, "If-None-Match: {tag}");
        assert!(cached.bytes().await.unwrap().is_empty());
    }
    assert_eq!(
        get(vec![("if-none-match", "\"stale\"".into())])
            .await
            .status(),
        200
    );

    // A change to what this cluster receives gives a new tag; the old one no longer matches.
    app.patch(
        "/platform_components/cert-manager",
        &json!({"oci_tag": "9.9.9"}),
    )
    .await;
    let changed = get(vec![("if-none-match", etag.clone())]).await;
    assert_eq!(changed.status(), 200);
    let changed_etag = changed.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(changed_etag, etag);
    // One that does not, keeps it: the tag read after the unrelated change is the one read
    // after the relevant change, so a Flux that already holds it gets a 304.
    app.create("/platform_components", component("unused", &[]))
        .await;
    let after_unrelated = get(vec![]).await;
    assert_eq!(after_unrelated.status(), 200);
    assert_eq!(
        after_unrelated.headers()["etag"].to_str().unwrap(),
        changed_etag,
        "a component no cluster uses changed this cluster's ETag"
    );
    let cached = get(vec![("if-none-match", changed_etag.clone())]).await;
    assert_eq!(cached.status(), 304, "If-None-Match: {changed_etag}");
}

/// A replica's first load reads the fleet a batch of clusters at a time, and a catalog change
/// that reaches every cluster is rebuilt the same way: with more clusters than one batch,
/// every cluster is still served exactly as the server that made the writes serves it.
#[tokio::test]
async fn a_replica_loads_and_follows_a_fleet_larger_than_one_batch() {
    const CLUSTERS: usize = 600;
    let writer = spawn_app().await;
    let dir = crate::process::tempdir();
    let file = dir.join("fleet.json");
    let clusters: Vec<Value> = (0..CLUSTERS)
        .map(|n| {
            let mut body = cluster(&format!("c{n:03}"), &["base", "app"]);
            body["environment"] = json!(["dev", "prod"][n % 2]);
            body["namespaces"] = json!([{"id": format!("ns-{}", n % 3)}]);
            body
        })
        .collect();
    std::fs::write(
        &file,
        json!({
            "platform_components": [component("base", &[]), component("app", &["base"])],
            "namespaces": (0..3).map(|n| json!({"id": format!("ns-{n}")})).collect::<Vec<_>>(),
            "clusters": clusters,
        })
        .to_string(),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flux-catalog"))
        .args(["seed", file.to_str().unwrap()])
        .env("DATABASE_URL", &writer.db.connection_string)
        .env("AUTH_TOKEN", "unused")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    let reader = writer
        .sibling(|env| {
            env.insert("API_MODE".into(), "read-only".into());
        })
        .await;
    let fleet = reader.flux("/api/v2/flux/clusters").await;
    assert_eq!(fleet.body["inputs"].as_array().unwrap().len(), CLUSTERS);
    // The writer follows the seed (written by another process) through the change log.
    let last = "/api/v2/flux/clusters/c599.k8s.example.com/platform-components";
    for _ in 0..100 {
        if writer.flux(last).await.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(fleet.text, writer.flux("/api/v2/flux/clusters").await.text);
    for n in 0..CLUSTERS {
        for endpoint in ["platform-components", "namespaces"] {
            let path = format!("/api/v2/flux/clusters/c{n:03}.k8s.example.com/{endpoint}");
            let served = reader.flux(&path).await;
            assert_eq!(served.status, 200, "{path}");
            assert_eq!(served.text, writer.flux(&path).await.text, "{path}");
        }
    }

    let r = writer
        .patch("/platform_components/base", &json!({"oci_tag": "2.0.0"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-flux-changed-clusters"), Some("600"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut behind: Vec<usize> = (0..CLUSTERS).collect();
    while !behind.is_empty() && std::time::Instant::now() < deadline {
        let mut still = Vec::new();
        for n in behind {
            let path = format!("/api/v2/flux/clusters/c{n:03}.k8s.example.com/platform-components");
            if input(&reader.flux(&path).await, "base")["source"]["oci_tag"] != "2.0.0" {
                still.push(n);
            }
        }
        behind = still;
    }
    assert!(
        behind.is_empty(),
        "{} clusters never showed the change",
        behind.len()
    );
    assert_eq!(
        reader.flux("/api/v2/flux/clusters").await.text,
        fleet.text,
        "a catalog change leaves the fleet listing as it was"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Flux garbage-collects what it made from a provider whose inputs come back empty, so a
/// typo in an environment filter must be an error, never an empty fleet; the same on the
/// REST list.
#[tokio::test]
async fn an_environment_outside_the_tiers_is_refused_never_an_empty_fleet() {
    let app = spawn_app().await;
    app.seed_demo().await;
    for path in ["/api/v2/flux/clusters", "/clusters"] {
        for typo in ["PROD", "staging", "", "prod%20"] {
            let r = app.flux(&format!("{path}?environment={typo}")).await;
            assert_eq!(r.status, 400, "{path}?environment={typo}: {}", r.text);
            assert_eq!(r.error_fields(), ["environment"], "{}", r.text);
            assert!(
                r.text.contains("dev") && r.text.contains("prod"),
                "the allowed tiers are named: {}",
                r.text
            );
        }
        let r = app.flux(&format!("{path}?environment=dev")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let listed = if path == "/clusters" {
            r.body.as_array().unwrap().len()
        } else {
            r.body["inputs"].as_array().unwrap().len()
        };
        assert_eq!(listed, 1, "demo-01 is in dev: {}", r.text);
    }
}

/// Flux renders with `missingkey=error`: a template naming `apiGroup` or `namespace` must
/// not stall on the subject that has none. Every subject carries every key.
#[tokio::test]
async fn every_subject_carries_every_key_a_template_may_name() {
    let app = spawn_app().await;
    app.seed_demo().await;
    app.create(
        "/rolebindings",
        json!({"id": "mixed", "role": "view", "subjects": [
            {"kind": "ServiceAccount", "name": "flux", "namespace": "flux-system"},
            {"kind": "Group", "name": "auditors"},
            {"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}
        ]}),
    )
    .await;
    let r = app
        .put(
            "/clusters/demo-01",
            &json!({"rolebindings": [{"id": "mixed"}, {"id": "platform-admins"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .flux("/api/v2/flux/clusters/demo-01.k8s.example.com/rolebindings")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut seen = 0;
    for input in r.body["inputs"].as_array().unwrap() {
        for subject in input["subjects"].as_array().unwrap() {
            let keys: BTreeSet<&str> = subject
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["apiGroup", "kind", "name", "namespace"]),
                "{subject}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 4, "{}", r.text);
    let service_account = &r.body["inputs"][0]["subjects"][0];
    assert_eq!(
        service_account["apiGroup"], "",
        "unset is empty: {service_account}"
    );
    assert_eq!(service_account["namespace"], "flux-system");
}
