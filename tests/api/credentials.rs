//! Named, scoped, revocable credentials (issue 10): what each scope opens, a cluster's
//! credential confined to its cluster, revocation and expiry on every replica within a
//! second, and secrets shown exactly once.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{READ_TOKEN, Reply, TestApp, cluster, reply, spawn_app};

const OWN: &str = "demo-01.k8s.example.com";
const OTHER: &str = "demo-02.k8s.example.com";

/// The demo catalog and a second cluster.
async fn two_clusters(app: &TestApp) {
    app.seed_demo().await;
    app.create("/clusters", cluster("demo-02", &["cert-manager"]))
        .await;
}

/// How a secret is sent; every way must work the same.
#[derive(Clone, Copy, Debug)]
enum Via {
    Bearer,
    Basic,
    ApiKey,
}

async fn call(app: &TestApp, method: Method, path: &str, secret: &str, via: Via) -> Reply {
    let request = app.client.request(method.clone(), app.url(path));
    let request = match via {
        Via::Bearer => request.bearer_auth(secret),
        Via::Basic => request.basic_auth("flux", Some(secret)),
        Via::ApiKey => request.header("x-api-key", secret),
    };
    let request = match method {
        Method::POST => request.json(&json!({"id": "probe-ns"})),
        _ => request,
    };
    reply(request.send().await.unwrap()).await
}

/// Creates a credential through the API (with the write token, which has scope admin) and
/// returns its secret.
async fn create(app: &TestApp, name: &str, scopes: &[&str], expires_at: Option<&str>) -> String {
    let mut body = json!({"name": name, "scopes": scopes});
    if let Some(at) = expires_at {
        body["expires_at"] = json!(at);
    }
    let r = app.post("/tokens", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let secret = r.body["token"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("fcat_") && secret.len() >= 5 + 43,
        "{secret}"
    );
    secret
}

/// Waits until `app` accepts `secret` (it learns of new credentials within a second).
async fn until_accepted(app: &TestApp, secret: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = call(app, Method::GET, path, secret, Via::Bearer).await;
        if r.status != 401 {
            return;
        }
        assert!(Instant::now() < deadline, "never accepted: {}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long until `app` refuses `secret` with 401, polling every 20 ms for up to 5 s.
async fn until_refused(app: &TestApp, secret: &str, path: &str) -> Duration {
    let started = Instant::now();
    loop {
        let r = call(app, Method::GET, path, secret, Via::Bearer).await;
        if r.status == 401 {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rfc3339_in(seconds: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Every scope against every endpoint family, through each way of sending a secret.
#[tokio::test]
async fn scope_matrix() {
    let app = spawn_app().await;
    two_clusters(&app).await;
    let families: [(&str, Method, String); 8] = [
        ("fleet listing", Method::GET, "/api/v2/flux/clusters".into()),
        (
            "own cluster",
            Method::GET,
            format!("/api/v2/flux/clusters/{OWN}/platform-components"),
        ),
        (
            "other cluster",
            Method::GET,
            format!("/api/v2/flux/clusters/{OTHER}/namespaces"),
        ),
        ("REST read", Method::GET, "/clusters".into()),
        (
            "changes",
            Method::GET,
            "/platform_components/cert-manager/history".into(),
        ),
        ("REST write", Method::POST, "/namespaces".into()),
        ("audit", Method::GET, "/audit".into()),
        ("credentials", Method::GET, "/tokens".into()),
    ];
    // Which families each scope opens, in the order above.
    let matrix: [(&str, [bool; 8]); 4] = [
        ("read", [true, true, true, true, true, false, false, false]),
        (
            "write",
            [false, false, false, false, false, true, false, false],
        ),
        (
            "admin",
            [false, false, false, false, false, false, true, true],
        ),
        (
            "cluster:demo-01.k8s.example.com",
            [false, true, false, false, false, false, false, false],
        ),
    ];
    let mut secrets = Vec::new();
    for (i, (scope, _)) in matrix.iter().enumerate() {
        secrets.push(create(&app, &format!("matrix-{i}"), &[scope], None).await);
    }
    until_accepted(&app, secrets.last().unwrap(), &families[1].2).await;
    for ((scope, allowed), secret) in matrix.iter().zip(&secrets) {
        for (((family, method, path), allowed), via) in families
            .iter()
            .zip(allowed)
            .zip([Via::Bearer, Via::Basic, Via::ApiKey].into_iter().cycle())
        {
            let r = call(&app, method.clone(), path, secret, via).await;
            if *allowed {
                assert!(
                    r.status < 300,
                    "{scope} on {family} ({via:?}): {} {}",
                    r.status,
                    r.text
                );
            } else {
                assert_eq!(r.status, 403, "{scope} on {family} ({via:?}): {}", r.text);
                assert_eq!(r.code(), "FORBIDDEN");
            }
        }
    }
    // The write went in under the credential's name.
    let audit = app.get("/audit?kind=namespace&id=probe-ns").await;
    assert_eq!(audit.body[0]["actor"], "matrix-1", "{}", audit.text);
}

/// A cluster's credential reads its own cluster's inputs and nothing else: another
/// cluster, the fleet listing and the REST resources answer 403 without any data.
#[tokio::test]
async fn a_cluster_credential_reads_only_its_own_cluster() {
    let app = spawn_app().await;
    two_clusters(&app).await;
    let secret = create(&app, "dev-01", &[&format!("cluster:{OWN}")], None).await;
    let own = format!("/api/v2/flux/clusters/{OWN}/platform-components");
    until_accepted(&app, &secret, &own).await;
    let r = call(&app, Method::GET, &own, &secret, Via::Basic).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.body["inputs"].as_array().unwrap().is_empty());
    for path in [
        format!("/api/v2/flux/clusters/{OTHER}/platform-components"),
        format!("/api/v2/flux/clusters/{OTHER}/rolebindings"),
        "/api/v2/flux/clusters".to_owned(),
        "/clusters".to_owned(),
        "/clusters/demo-01".to_owned(),
        "/tokens".to_owned(),
    ] {
        let r = call(&app, Method::GET, &path, &secret, Via::Bearer).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert!(
            r.body.get("inputs").is_none() && !r.text.contains(OTHER),
            "{path}: {}",
            r.text
        );
    }
}

/// A revocation through one replica is refused by another within a second.
#[tokio::test]
async fn a_revocation_reaches_another_replica_within_a_second() {
    let app = spawn_app().await;
    two_clusters(&app).await;
    let other = app.sibling(|_| {}).await;
    let secret = create(&app, "ci", &["read"], None).await;
    until_accepted(&other, &secret, "/clusters").await;
    let r = app.delete("/tokens/ci").await;
    assert_eq!(r.status, 204, "{}", r.text);
    let took = until_refused(&other, &secret, "/clusters").await;
    assert!(
        took < Duration::from_secs(1),
        "the other replica took {took:?}"
    );
    assert_eq!(app.delete("/tokens/ci").await.status, 404);
}

/// A credential stops working when it expires, on every replica, without anyone acting.
#[tokio::test]
async fn an_expired_credential_is_refused() {
    let app = spawn_app().await;
    let other = app.sibling(|_| {}).await;
    let expires = Instant::now() + Duration::from_secs(4);
    let secret = create(&app, "short", &["read"], Some(&rfc3339_in(4))).await;
    until_accepted(&app, &secret, "/clusters").await;
    until_accepted(&other, &secret, "/clusters").await;
    assert!(
        Instant::now() < expires,
        "the machine is too slow for this test"
    );
    tokio::time::sleep_until((expires + Duration::from_millis(100)).into()).await;
    for server in [&app, &other] {
        let r = call(server, Method::GET, "/clusters", &secret, Via::Bearer).await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let listed = app.get("/tokens").await;
    assert_eq!(listed.body[0]["name"], "short");
    assert!(listed.body[0]["expires_at"].is_string());
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let app = spawn_app().await;
    for (body, field) in [
        (json!({"name": "x", "scopes": ["root"]}), "scopes[0]"),
        (
            json!({"name": "x", "scopes": ["cluster:Not_DNS"]}),
            "scopes[0]",
        ),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "", "scopes": ["read"]}), "name"),
        (
            json!({"name": "env:AUTH_TOKEN", "scopes": ["read"]}),
            "name",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "expires_at": "tomorrow"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "expires_at": rfc3339_in(-60)}),
            "expires_at",
        ),
    ] {
        let r = app.post("/tokens", &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(
            r.error_fields().contains(&field.to_owned()),
            "{body}: {}",
            r.text
        );
    }
    create(&app, "twice", &["read"], None).await;
    let r = app
        .post("/tokens", &json!({"name": "twice", "scopes": ["read"]}))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    // The read token has no scope admin.
    let r = reply(
        app.client
            .get(app.url("/tokens"))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 403);
}

/// Two different credentials in one request are refused, whichever is valid; the same
/// secret in both headers is one credential.
#[tokio::test]
async fn two_credentials_in_one_request_are_refused() {
    let app = spawn_app().await;
    let send = |authorization: &'static str, key: &'static str| {
        app.client
            .get(app.url("/clusters"))
            .bearer_auth(authorization)
            .header("x-api-key", key)
            .send()
    };
    for (authorization, key) in [(READ_TOKEN, "wrong"), ("wrong", READ_TOKEN)] {
        let r = reply(send(authorization, key).await.unwrap()).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.error_fields(), vec!["X-API-Key".to_owned()]);
    }
    assert_eq!(send(READ_TOKEN, READ_TOKEN).await.unwrap().status(), 200);
}

/// After its creation, a secret appears in no response, no audit record and no row.
#[tokio::test]
async fn a_secret_is_shown_once_and_never_again() {
    let app = spawn_app().await;
    let secret = create(&app, "once", &["read", "write"], None).await;
    until_accepted(&app, &secret, "/clusters").await;
    let revoked = create(&app, "gone", &["admin"], None).await;
    assert_eq!(app.delete("/tokens/gone").await.status, 204);
    let mut seen = Vec::new();
    for path in ["/tokens", "/audit", "/audit?kind=credential", "/clusters"] {
        seen.push(app.get(path).await.text);
    }
    seen.push(
        call(&app, Method::GET, "/clusters", &secret, Via::Bearer)
            .await
            .text,
    );
    let rows = app
        .sql
        .query("select t::text from credentials t", &[])
        .await
        .unwrap();
    seen.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    let audit = app
        .sql
        .query("select a::text from audit_log a", &[])
        .await
        .unwrap();
    seen.extend(audit.iter().map(|r| r.get::<_, String>(0)));
    for text in &seen {
        for s in [&secret, &revoked] {
            assert!(!text.contains(s.as_str()), "a secret in {text}");
            assert!(
                !text.contains(&s["fcat_".len()..]),
                "a secret's body in {text}"
            );
        }
        assert!(!text.contains("digest"), "{text}");
    }
    let listed = app.get("/tokens").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["scopes"], json!(["read", "write"]));
    // Each change is audited under the credential's name, by whoever made it.
    let audit = app.get("/audit?kind=credential").await;
    let records: Vec<(Value, Value, Value)> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["resource_id"].clone(),
                r["action"].clone(),
                r["actor"].clone(),
            )
        })
        .collect();
    assert_eq!(
        records,
        vec![
            (json!("gone"), json!("delete"), json!("env:CRUD_AUTH_TOKEN")),
            (json!("gone"), json!("create"), json!("env:CRUD_AUTH_TOKEN")),
            (json!("once"), json!("create"), json!("env:CRUD_AUTH_TOKEN")),
        ]
    );
}

/// Last use is recorded without a write per request: in a batch, within seconds.
#[tokio::test]
async fn last_use_is_recorded_in_batches() {
    let app = spawn_app().await;
    let secret = create(&app, "used", &["read"], None).await;
    until_accepted(&app, &secret, "/clusters").await;
    assert!(app.get("/tokens").await.body[0]["last_used_at"].is_null());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if app.get("/tokens").await.body[0]["last_used_at"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "last use never recorded");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A provisioning pipeline gets the cluster and its phone-home credential in one call;
/// deleting the cluster revokes the credential, audited.
#[tokio::test]
async fn a_cluster_can_be_created_with_its_credential_and_deleting_it_revokes_it() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let r = app
        .post(
            "/clusters?issue_token=true",
            &cluster("demo-02", &["cert-manager"]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["cluster"]["id"], "demo-02");
    let credential = &r.body["credential"];
    assert_eq!(credential["name"], "cluster-demo-02");
    assert_eq!(credential["scopes"], json!([format!("cluster:{OTHER}")]));
    let secret = credential["token"].as_str().unwrap().to_owned();
    let own = format!("/api/v2/flux/clusters/{OTHER}/namespaces");
    until_accepted(&app, &secret, &own).await;
    let r = call(&app, Method::GET, &own, &secret, Via::Basic).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call(
        &app,
        Method::GET,
        &format!("/api/v2/flux/clusters/{OWN}/namespaces"),
        &secret,
        Via::Basic,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);

    assert_eq!(app.delete("/clusters/demo-02").await.status, 200);
    let took = until_refused(&app, &secret, &own).await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    let audit = app.get("/audit?kind=credential&id=cluster-demo-02").await;
    let actions: Vec<&str> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "create"], "{}", audit.text);
    assert!(app.get("/tokens").await.body.as_array().unwrap().is_empty());

    // Only cluster creation issues credentials, and never in a dry run.
    for (path, body) in [
        ("/namespaces?issue_token=true", json!({"id": "x"})),
        (
            "/clusters?issue_token=true&dry_run=true",
            cluster("demo-03", &[]),
        ),
    ] {
        let r = app.post(path, &body).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(r.error_fields(), vec!["issue_token".to_owned()], "{path}");
    }
}
