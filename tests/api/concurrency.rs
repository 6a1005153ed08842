//! No lost updates, and answers that match what is stored, whatever the interleaving.

use std::collections::BTreeSet;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, cluster, component, reply, spawn_app};

const WRITERS: usize = 8;
const UPDATES: usize = 500;

/// One client's read-modify-write: read the cluster, add a patch key to what it read, and
/// write the whole patch map back with `If-Match`, re-reading on 412. Without the
/// precondition, two writers that read the same revision would each erase the other's key.
async fn add_patch_key(app: &TestApp, key: &str) -> (i64, u32) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let current = app.get("/clusters/c1").await;
        let etag = current.header("etag").expect("GET has an ETag").to_owned();
        let mut patches = current.body["patches"]["a"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        patches.insert(key.to_owned(), json!(attempts));
        let r = reply(
            app.request(reqwest::Method::PUT, "/clusters/c1")
                .header("if-match", &etag)
                .json(&json!({"patches": {"a": patches}}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        match r.status {
            200 => return (r.body["revision"].as_i64().unwrap(), attempts),
            412 => {
                assert_eq!(r.code(), "PRECONDITION_FAILED");
                assert!(r.body["current_revision"].is_i64(), "{}", r.text);
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
}

#[tokio::test]
async fn concurrent_read_modify_write_with_if_match_loses_no_acknowledged_update() {
    let app = spawn_app().await;
    app.create("/platform_components", component("a", &[]))
        .await;
    app.create("/clusters", cluster("c1", &["a"])).await;

    let writers = (0..WRITERS).map(|writer| {
        let app = &app;
        async move {
            let mut acknowledged = Vec::new();
            for n in (writer..UPDATES).step_by(WRITERS) {
                let key = format!("update-{n:03}");
                let (revision, attempts) = add_patch_key(app, &key).await;
                acknowledged.push((key, revision, attempts));
            }
            acknowledged
        }
    });
    let acknowledged: Vec<(String, i64, u32)> =
        join_all(writers).await.into_iter().flatten().collect();
    assert_eq!(acknowledged.len(), UPDATES);
    let retries: u32 = acknowledged
        .iter()
        .map(|(_, _, attempts)| attempts - 1)
        .sum();
    assert!(
        retries > 0,
        "the writers never collided, so the test proved nothing"
    );

    // Every acknowledged key is in the final state.
    let stored = app.get("/clusters/c1").await.body;
    let keys: BTreeSet<String> = stored["patches"]["a"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let expected: BTreeSet<String> = acknowledged.iter().map(|(k, _, _)| k.clone()).collect();
    assert_eq!(keys, expected);

    // Each acknowledged revision is a distinct audited update whose `after` has its key.
    let revisions: BTreeSet<i64> = acknowledged.iter().map(|(_, r, _)| *r).collect();
    assert_eq!(
        revisions.len(),
        UPDATES,
        "two updates were acknowledged with the same revision"
    );
    assert_eq!(stored["revision"], json!(UPDATES as i64 + 1));
    let rows = app
        .sql
        .query(
            "select revision, after from audit_log
              where kind = 'cluster' and resource_id = 'c1' and action = 'update' order by revision",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), UPDATES);
    for (key, revision, _) in &acknowledged {
        let row = rows
            .iter()
            .find(|row| row.get::<_, i64>(0) == *revision)
            .unwrap_or_else(|| panic!("revision {revision} is not in the audit log"));
        let after: Value = row.get(1);
        assert!(
            after["patches"]["a"].get(key).is_some(),
            "audit of revision {revision} lacks {key}"
        );
    }
}

/// The ids of the references a stored cluster lists under `field`.
fn reference_ids(cluster: &Value, field: &str) -> Vec<String> {
    cluster[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} of {cluster}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The ids of the inputs Flux is served for `cluster`'s components.
async fn served_components(app: &TestApp, cluster: &str) -> Vec<String> {
    let r = app
        .flux(&format!(
            "/api/v2/flux/clusters/{cluster}.k8s.example.com/platform-components"
        ))
        .await;
    assert_eq!(r.status, 200, "Flux inputs of {cluster}: {}", r.text);
    r.body["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Deleting a catalog component while clusters referencing it are being created and
/// updated. The foreign keys (`on delete restrict`) already make a stored reference to a
/// missing component impossible, so counting such rows proves nothing. What the race can
/// break is the answers: every request gets a deliberate one (never a 5xx), the delete and
/// a write referencing the component never both succeed, and what each answer says is what
/// is stored and what Flux is served afterwards.
#[tokio::test]
async fn racing_deletes_of_a_component_answer_consistently_with_what_is_stored() {
    let app = spawn_app().await;
    app.create("/platform_components", component("base", &[]))
        .await;
    app.create("/clusters", cluster("steady", &["base"])).await;
    let mut outcomes = BTreeSet::new();
    for round in 0..25 {
        let id = format!("doomed-{round}");
        let new_id = format!("c-{round}");
        app.create("/platform_components", component(&id, &[]))
            .await;
        let new_cluster = cluster(&new_id, &["base", &id]);
        let update = json!({"platform_components": [{"id": "base", "enabled": true}, {"id": id, "enabled": true}]});
        let path = format!("/platform_components/{id}");
        let (created, updated, deleted) = tokio::join!(
            app.post("/clusters", &new_cluster),
            app.patch("/clusters/steady", &update),
            app.delete(&path),
        );
        let context = format!(
            "round {round}: create {} {} / update {} {} / delete {} {}",
            created.status,
            created.text,
            updated.status,
            updated.text,
            deleted.status,
            deleted.text
        );
        for r in [&created, &updated, &deleted] {
            assert!(matches!(r.status, 200 | 201 | 409 | 422), "{context}");
        }
        outcomes.insert((created.status, updated.status, deleted.status));
        let both_and_base = ["base".to_owned(), id.clone()];

        // The delete and a write referencing the component never both succeed, and the
        // component is there exactly when its delete was refused.
        let stored_component = app.get(&path).await;
        if deleted.status == 200 {
            assert_eq!(stored_component.status, 404, "{context}");
            assert_ne!(created.status, 201, "{context}: created referencing it");
            assert_ne!(updated.status, 200, "{context}: updated to reference it");
        } else {
            assert_eq!(stored_component.status, 200, "{context}");
        }

        // The new cluster exists exactly when its create succeeded, with both references,
        // and Flux serves it both.
        let stored_new = app.get(&format!("/clusters/{new_id}")).await;
        if created.status == 201 {
            assert_eq!(stored_new.status, 200, "{context}");
            assert_eq!(
                reference_ids(&stored_new.body, "platform_components"),
                both_and_base,
                "{context}"
            );
            let served = served_components(&app, &new_id).await;
            assert!(served.contains(&id), "{context}: Flux gets {served:?}");
        } else {
            assert_eq!(stored_new.status, 404, "{context}: {}", stored_new.text);
        }

        // The steady cluster references the component exactly when its update succeeded.
        let steady = app.get("/clusters/steady").await;
        assert_eq!(steady.status, 200, "{context}");
        let served = served_components(&app, "steady").await;
        if updated.status == 200 {
            assert_eq!(
                reference_ids(&steady.body, "platform_components"),
                both_and_base,
                "{context}"
            );
            assert!(served.contains(&id), "{context}: Flux gets {served:?}");
        } else {
            assert_eq!(
                reference_ids(&steady.body, "platform_components"),
                ["base"],
                "{context}"
            );
            assert_eq!(served, ["base"], "{context}");
        }

        // Put the steady cluster back for the next round.
        let reset = app
            .patch(
                "/clusters/steady",
                &json!({"platform_components": [{"id": "base", "enabled": true}]}),
            )
            .await;
        assert_eq!(reset.status, 200, "{}", reset.text);
    }
    println!("outcomes (create, update, delete) seen: {outcomes:?}");
}
