//! No lost updates and no dangling references, whatever the interleaving.

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

/// Deleting a catalog component while clusters referencing it are being created and
/// updated: whatever the interleaving, no stored reference points at a missing component
/// and every request gets a deliberate answer.
#[tokio::test]
async fn racing_deletes_of_a_component_never_leave_a_dangling_reference() {
    let app = spawn_app().await;
    app.create("/platform_components", component("base", &[]))
        .await;
    app.create("/clusters", cluster("steady", &["base"])).await;
    for round in 0..25 {
        let id = format!("doomed-{round}");
        app.create("/platform_components", component(&id, &[]))
            .await;
        let new_cluster = cluster(&format!("c-{round}"), &["base", &id]);
        let update = json!({"platform_components": [{"id": "base", "enabled": true}, {"id": id, "enabled": true}]});
        let path = format!("/platform_components/{id}");
        let (created, updated, deleted) = tokio::join!(
            app.post("/clusters", &new_cluster),
            app.patch("/clusters/steady", &update),
            app.delete(&path),
        );
        for (what, r) in [
            ("create", &created),
            ("update", &updated),
            ("delete", &deleted),
        ] {
            assert!(
                matches!(r.status, 200 | 201 | 409 | 422),
                "round {round}: {what} answered {} {}",
                r.status,
                r.text
            );
        }
        // The delete and a write referencing the component cannot both succeed.
        assert!(
            !(deleted.status == 200 && created.status == 201),
            "round {round}: a cluster was created referencing a deleted component"
        );
        assert!(
            !(deleted.status == 200 && updated.status == 200),
            "round {round}: a cluster was updated to reference a deleted component"
        );
        // Put the steady cluster back for the next round.
        app.patch(
            "/clusters/steady",
            &json!({"platform_components": [{"id": "base", "enabled": true}]}),
        )
        .await;
    }
    let dangling: i64 = app
        .sql
        .query_one(
            "select count(*) from cluster_platform_components r
              where not exists (select 1 from platform_components c where c.id = r.component_id)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dangling, 0);
}
