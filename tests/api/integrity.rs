//! Races, transactions and failures: what the schema and the transactions guarantee.

use std::collections::BTreeSet;

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{cluster, component, spawn_app};

/// Deleting a namespace while a cluster referencing it is being created. The foreign keys
/// (`on delete restrict`) already make a stored reference to a missing namespace impossible,
/// so counting such rows proves nothing. What the race can break is the answers: exactly
/// one of the two requests wins, never with a 5xx, and what each answer says is what is
/// stored and what Flux is served afterwards.
#[tokio::test]
async fn racing_deletes_and_references_answer_consistently_with_what_is_stored() {
    let app = spawn_app().await;
    let mut outcomes = BTreeSet::new();
    for round in 0..30 {
        let ns = format!("ns-{round}");
        let id = format!("c-{round}");
        app.create("/namespaces", json!({"id": ns})).await;
        let mut body = cluster(&id, &[]);
        body["namespaces"] = json!([{"id": ns}]);
        let namespace_path = format!("/namespaces/{ns}");
        let (created, deleted) =
            tokio::join!(app.post("/clusters", &body), app.delete(&namespace_path));
        let context = format!(
            "round {round}: create {} {} / delete {} {}",
            created.status, created.text, deleted.status, deleted.text
        );
        assert!(
            matches!((created.status, deleted.status), (201, 409) | (422, 200)),
            "{context}"
        );
        outcomes.insert((created.status, deleted.status));

        let namespace = app.get(&namespace_path).await;
        let stored_cluster = app.get(&format!("/clusters/{id}")).await;
        let flux = app
            .flux(&format!(
                "/api/v2/flux/clusters/{id}.k8s.example.com/namespaces"
            ))
            .await;
        if created.status == 201 {
            // The create won: the namespace survived, and the cluster uses it.
            assert_eq!(namespace.status, 200, "{context}: {}", namespace.text);
            assert_eq!(
                stored_cluster.status, 200,
                "{context}: {}",
                stored_cluster.text
            );
            assert_eq!(
                stored_cluster.body["namespaces"],
                json!([{"id": ns}]),
                "{context}"
            );
            assert_eq!(flux.status, 200, "{context}: {}", flux.text);
            let served: Vec<&str> = flux.body["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|input| input["id"].as_str().unwrap())
                .collect();
            assert_eq!(served, [ns.as_str()], "{context}");
        } else {
            // The delete won: the namespace is gone and the cluster was never stored.
            assert_eq!(namespace.status, 404, "{context}: {}", namespace.text);
            assert_eq!(
                stored_cluster.status, 404,
                "{context}: {}",
                stored_cluster.text
            );
            assert_eq!(flux.status, 404, "{context}: {}", flux.text);
        }
    }
    println!("outcomes (create, delete) seen: {outcomes:?}");
}

/// Concurrent merge patches of one cluster, each adding its own patch key: every
/// acknowledged change is in the final state (updates are serialised, none is lost).
#[tokio::test]
async fn concurrent_updates_of_one_cluster_lose_nothing() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    app.create("/clusters", cluster("c1", &["a"])).await;
    let writers = (0..8).map(|writer| {
        let app = &app;
        async move {
            let mut acknowledged = Vec::new();
            for n in 0..15 {
                let key = format!("w{writer}-{n}");
                let r = app
                    .patch("/clusters/c1", &json!({"patches": {"a": {key.clone(): n}}}))
                    .await;
                assert_eq!(r.status, 200, "{}", r.text);
                acknowledged.push(key);
            }
            acknowledged
        }
    });
    let acknowledged: BTreeSet<String> = join_all(writers).await.into_iter().flatten().collect();
    let stored = app.get("/clusters/c1").await.body["patches"]["a"].clone();
    let stored: BTreeSet<String> = stored.as_object().unwrap().keys().cloned().collect();
    assert_eq!(acknowledged.len(), 120);
    assert_eq!(stored, acknowledged);
}

/// A database failure half-way through a write leaves nothing behind, and the client sees
/// "internal error", not SQL.
#[tokio::test]
async fn a_failure_half_way_through_a_write_rolls_it_all_back() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    app.create("/rolebindings", json!({"id": "rb", "role": "view"}))
        .await;
    // Sabotage the last table a cluster create writes to.
    app.sql
        .batch_execute("alter table cluster_rolebindings drop column position")
        .await
        .unwrap();
    let mut body = cluster("c1", &["a"]);
    body["rolebindings"] = json!([{"id": "rb"}]);
    let r = app.post("/clusters", &body).await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(r.code(), "INTERNAL_ERROR");
    assert_eq!(r.body["detail"], "internal error");
    for secret in [
        "position",
        "column",
        "cluster_rolebindings",
        "select",
        "insert",
    ] {
        assert!(
            !r.text.to_lowercase().contains(secret),
            "the body leaks {secret:?}: {}",
            r.text
        );
    }
    assert_eq!(
        app.count("clusters").await,
        0,
        "the cluster row was rolled back"
    );
    assert_eq!(
        app.count("cluster_platform_components").await,
        0,
        "and its references"
    );
}

#[tokio::test]
async fn a_broken_schema_on_a_read_is_a_500_without_sql_while_flux_keeps_its_snapshot() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let flux_path = "/api/v2/flux/clusters/demo-01.k8s.example.com/platform-components";
    let before = app.flux(flux_path).await;
    app.sql
        .batch_execute("alter table platform_components drop column oci_url")
        .await
        .unwrap();
    let r = app.get("/platform_components").await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert!(!r.text.contains("oci_url"), "{}", r.text);
    let r = app.flux(flux_path).await;
    assert_eq!(
        r.status, 200,
        "Flux is answered from the snapshot: {}",
        r.text
    );
    assert_eq!(r.text, before.text);
}

/// The schema itself refuses what the API refuses, for writers that bypass the API. Each
/// statement must be refused as an integrity violation (SQLSTATE class 23) by the constraint
/// meant to refuse it: a syntax error, a missing column or a permission problem would also
/// be an error, and would hide a constraint that is gone.
#[tokio::test]
async fn the_schema_enforces_ids_references_and_uniqueness() {
    let app = spawn_app().await;
    app.seed_demo().await;
    // (statement, SQLSTATE, the constraints that may refuse it)
    let refused: [(&str, &str, &[&str]); 7] = [
        (
            "insert into namespaces (id) values ('Not_A_Label')",
            "23514",
            &["namespaces_id_format"],
        ),
        (
            "insert into cluster_platform_components (cluster_id, component_id, position, enabled) values ('demo-01', 'ghost', 9, true)",
            "23503",
            &["cluster_platform_components_component_fk"],
        ),
        (
            "insert into cluster_platform_components (cluster_id, component_id, position, enabled) values ('demo-01', 'cert-manager', 9, true)",
            "23505",
            &["cluster_platform_components_pkey"],
        ),
        (
            "insert into clusters (id, cluster_name, cluster_dns, environment) values ('other', 'other', 'demo-01.k8s.example.com', 'dev')",
            "23505",
            &["clusters_cluster_dns_key"],
        ),
        (
            // Both ingress-nginx and demo-01 use it; either restricting key may fire first.
            "delete from platform_components where id = 'cert-manager'",
            "23503",
            &[
                "platform_component_dependencies_depends_on_fk",
                "cluster_platform_components_component_fk",
            ],
        ),
        (
            "insert into platform_component_dependencies (component_id, depends_on_id, position) values ('cert-manager', 'cert-manager', 1)",
            "23514",
            &["platform_component_dependencies_not_self"],
        ),
        (
            "update cluster_platform_components set patches = '[1]' where cluster_id = 'demo-01'",
            "23514",
            &["cluster_platform_components_patches_object"],
        ),
    ];
    for (statement, code, constraints) in refused {
        let Err(error) = app.sql.batch_execute(statement).await else {
            panic!("the schema accepted: {statement}");
        };
        let actual = error.code().map(|c| c.code()).unwrap_or("none");
        let constraint = error.as_db_error().and_then(|e| e.constraint());
        assert!(
            actual.starts_with("23"),
            "not an integrity violation: {statement}\n  SQLSTATE {actual}: {error:?}"
        );
        assert_eq!(
            actual, code,
            "{statement}\n  refused with SQLSTATE {actual}: {error:?}"
        );
        assert!(
            constraint.is_some_and(|c| constraints.contains(&c)),
            "{statement}\n  refused by {constraint:?}, expected one of {constraints:?}: {error:?}"
        );
    }
}
