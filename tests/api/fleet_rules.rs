//! Nothing the API accepts can leave Flux stuck: cycles, missing dependencies, inputs Flux
//! would drop, responses it could not read. Checked on every write path, with nothing
//! written when refused.

use serde_json::json;

use crate::helpers::{TestApp, cluster, component, spawn_app, spawn_app_with};

async fn chain(app: &TestApp) {
    // a <- b <- c
    app.create("/platform_components", component("a", &[]))
        .await;
    app.create("/platform_components", component("b", &["a"]))
        .await;
    app.create("/platform_components", component("c", &["b"]))
        .await;
}

#[tokio::test]
async fn a_dependency_cycle_is_refused_and_shown() {
    let app = spawn_app().await;
    chain(&app).await;
    let r = app
        .patch("/platform_components/a", &json!({"depends_on": ["c"]}))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "DEPENDENCY_CYCLE");
    let cycle: Vec<&str> = r.body["cycle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(cycle.first(), cycle.last(), "the cycle closes: {cycle:?}");
    let members: std::collections::BTreeSet<&str> = cycle.iter().copied().collect();
    assert_eq!(members, ["a", "b", "c"].into());
    assert!(
        r.body["detail"].as_str().unwrap().contains(" -> "),
        "{}",
        r.text
    );
    assert_eq!(
        app.get("/platform_components/a").await.body["depends_on"],
        json!([]),
        "nothing written"
    );
}

#[tokio::test]
async fn an_enabled_component_without_its_dependency_is_refused_naming_it() {
    let app = spawn_app().await;
    chain(&app).await;
    let r = app.post("/clusters", &cluster("c1", &["b"])).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.code(), "BREAKS_FLUX");
    assert_eq!(r.body["violations"][0]["cluster"], "c1");
    assert_eq!(r.body["violations"][0]["rule"], "missing_dependency");
    let message = r.body["violations"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("\"b\"") && message.contains("\"a\""),
        "{message}"
    );
    assert_eq!(app.count("clusters").await, 0);

    // With the dependency it is accepted; disabled, the dependent needs nothing.
    app.create("/clusters", cluster("c1", &["a", "b"])).await;
    let mut off = cluster("c2", &["b"]);
    off["platform_components"][0]["enabled"] = json!(false);
    app.create("/clusters", off).await;
}

#[tokio::test]
async fn disabling_a_dependency_others_still_need_is_refused() {
    let app = spawn_app().await;
    chain(&app).await;
    app.create("/clusters", cluster("c1", &["a", "b"])).await;
    let r = app
        .patch("/clusters/c1", &json!({"platform_components": [{"id": "a", "enabled": false}, {"id": "b", "enabled": true}]}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(
        r.body["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("disables \"a\""),
        "{}",
        r.text
    );
}

/// A catalog change is checked against every cluster it reaches.
#[tokio::test]
async fn a_new_dependency_is_refused_while_clusters_lack_it_and_names_them() {
    let app = spawn_app().await;
    for id in ["x", "y", "needed"] {
        app.create("/platform_components", component(id, &[])).await;
    }
    app.create("/clusters", cluster("has-both", &["x", "needed"]))
        .await;
    app.create("/clusters", cluster("lacks-1", &["x"])).await;
    app.create("/clusters", cluster("lacks-2", &["x", "y"]))
        .await;
    app.create("/clusters", cluster("unrelated", &["y"])).await;
    let r = app
        .patch("/platform_components/x", &json!({"depends_on": ["needed"]}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let clusters: Vec<&str> = r.body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(clusters, ["lacks-1", "lacks-2"]);
    assert_eq!(
        app.get("/platform_components/x").await.body["depends_on"],
        json!([])
    );
}

#[tokio::test]
async fn a_response_over_the_size_limit_is_refused_naming_the_cluster() {
    let app = spawn_app_with(|env| {
        env.insert(
            "FLUX_CATALOG_FLUX__MAX_RESPONSE_BYTES".into(),
            "2000".into(),
        );
    })
    .await;
    app.create("/platform_components", component("a", &[]))
        .await;
    app.create("/namespaces", json!({"id": "ns"})).await;
    let mut c = cluster("c1", &["a"]);
    c["namespaces"] = json!([{"id": "ns"}]);
    app.create("/clusters", c.clone()).await;

    // Through the cluster itself...
    let r = app
        .patch(
            "/clusters/c1",
            &json!({"patches": {"a": {"blob": "x".repeat(3000)}}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["violations"][0]["rule"], "response_too_large");
    assert_eq!(r.body["violations"][0]["cluster"], "c1");
    // ...and through a catalog entry it references.
    let r = app
        .patch(
            "/namespaces/ns",
            &json!({"annotations": {"example.com/blob": "y".repeat(3000)}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(
        r.body["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("namespaces response"),
        "{}",
        r.text
    );
    assert_eq!(
        app.get("/namespaces/ns").await.body["annotations"],
        json!({}),
        "nothing written"
    );
}

#[tokio::test]
async fn more_inputs_than_flux_keeps_are_refused_unless_the_limit_is_raised() {
    let limited = spawn_app_with(|env| {
        env.insert("FLUX_CATALOG_FLUX__MAX_INPUTS".into(), "2".into());
    })
    .await;
    for id in ["a", "b", "c"] {
        limited
            .create("/platform_components", component(id, &[]))
            .await;
    }
    let r = limited
        .post("/clusters", &cluster("c1", &["a", "b", "c"]))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["violations"][0]["rule"], "too_many_inputs");
    assert!(
        r.body["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("filter.limit"),
        "{}",
        r.text
    );

    let default = limited
        .sibling(|env| {
            env.insert("FLUX_CATALOG_FLUX__MAX_INPUTS".into(), "100".into());
        })
        .await;
    assert_eq!(
        default
            .post("/clusters", &cluster("c1", &["a", "b", "c"]))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn a_rollback_is_checked_like_any_write() {
    let app = spawn_app().await;
    chain(&app).await;
    // Revision 1 uses a and b; revision 2 only a.
    app.create("/clusters", cluster("c1", &["a", "b"])).await;
    app.patch(
        "/clusters/c1",
        &json!({"platform_components": [{"id": "a", "enabled": true}]}),
    )
    .await;
    // Since then b also needs d, which revision 1 does not have.
    app.create("/platform_components", component("d", &[]))
        .await;
    let r = app
        .patch("/platform_components/b", &json!({"depends_on": ["a", "d"]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post("/clusters/c1/rollback", &json!({"revision": 1}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.code(), "BREAKS_FLUX");
    assert!(
        r.body["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("\"d\""),
        "{}",
        r.text
    );
    assert_eq!(
        app.get("/clusters/c1").await.body["revision"],
        2,
        "nothing written"
    );
}

#[tokio::test]
async fn a_seed_document_is_checked_on_its_final_state() {
    let db = crate::helpers::TestDatabase::create().await;
    let dir = std::env::temp_dir().join(format!(
        "flux-catalog-seed-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("catalog.json");
    std::fs::write(
        &file,
        json!({
            "platform_components": [component("a", &[]), component("b", &["a"])],
            "clusters": [cluster("c1", &["b"])]
        })
        .to_string(),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flux-catalog"))
        .args(["seed", file.to_str().unwrap()])
        .env("DATABASE_URL", &db.connection_string)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("depends on \"a\""), "{stderr}");
    let sql = db.client().await;
    let stored: i64 = sql
        .query_one("select count(*) from platform_components", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "all or nothing");
    std::fs::remove_dir_all(dir).unwrap();
}
