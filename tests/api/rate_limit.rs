//! Rate limits over real HTTP: a client beyond its budget gets 429 with `Retry-After`, the
//! `RateLimit-*` headers and a problem document, and nothing is done for it; budgets are
//! per token (Flux endpoints: per token and address) and, without a valid token, per
//! address; the probes are never limited.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{READ_TOKEN, Reply, TestApp, WRITE_TOKEN, reply, spawn_app_with};

/// Settings for the test server, as environment variables.
pub fn with(pairs: &[(&str, &str)]) -> impl FnOnce(&mut HashMap<String, String>) + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |env| env.extend(pairs)
}

/// A request with `token` (if any), from `client` as a trusted proxy would name it (if any).
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    client: Option<&str>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(client) = client {
        request = request.header("X-Forwarded-For", client);
    }
    reply(request.send().await.unwrap()).await
}

async fn get(app: &TestApp, path: &str, token: Option<&str>, client: Option<&str>) -> Reply {
    send(app, Method::GET, path, token, client).await
}

fn assert_rate_limited(reply: &Reply, whose: &str) {
    assert_eq!(reply.status, 429, "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.code(), "RATE_LIMITED");
    assert_eq!(reply.body["status"], 429);
    assert_eq!(reply.body["type"], "urn:flux-catalog:problem:rate-limited");
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(detail.contains(whose), "{detail}");
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
    let reset: u64 = reply.header("ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset >= retry_after);
    assert!(reply.header("x-request-id").is_some());
}

/// No refill during a test: one request a minute.
const SLOW: [(&str, &str); 6] = [
    ("FLUX_CATALOG_RATE_LIMIT__API_PER_MINUTE", "1"),
    ("FLUX_CATALOG_RATE_LIMIT__FLUX_PER_MINUTE", "1"),
    ("FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_PER_MINUTE", "1"),
    ("FLUX_CATALOG_RATE_LIMIT__API_BURST", "2"),
    ("FLUX_CATALOG_RATE_LIMIT__FLUX_BURST", "2"),
    ("FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_BURST", "2"),
];

#[tokio::test]
async fn a_client_beyond_its_budget_gets_429_is_not_served_and_recovers_after_retry_after() {
    let app = spawn_app_with(with(&[
        ("FLUX_CATALOG_RATE_LIMIT__API_PER_MINUTE", "600"),
        ("FLUX_CATALOG_RATE_LIMIT__API_BURST", "3"),
    ]))
    .await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let reply = get(&app, "/namespaces", Some(WRITE_TOKEN), None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("ratelimit-limit"), Some("3"));
        assert!(reply.header("ratelimit-reset").is_some());
        remaining.push(reply.header("ratelimit-remaining").unwrap().to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);

    // Refused before anything is done: the namespace is not created.
    let refused = reply(
        app.request(Method::POST, "/namespaces")
            .json(&json!({"id": "team-a"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_rate_limited(&refused, "for this token");

    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let again = get(&app, "/namespaces", Some(WRITE_TOKEN), None).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body, json!([]), "the refused POST created nothing");
}

#[tokio::test]
async fn one_token_using_up_its_budget_leaves_other_tokens_and_clients_theirs() {
    let app = spawn_app_with(with(&SLOW)).await;
    for _ in 0..2 {
        assert_eq!(
            get(&app, "/clusters", Some(WRITE_TOKEN), None).await.status,
            200
        );
    }
    assert_rate_limited(
        &get(&app, "/clusters", Some(WRITE_TOKEN), None).await,
        "for this token",
    );
    // The read token has a budget of its own, on the API and on the Flux endpoints.
    assert_eq!(
        get(&app, "/clusters", Some(READ_TOKEN), None).await.status,
        200
    );
    let flux = get(&app, "/api/v2/flux/clusters", Some(READ_TOKEN), None).await;
    assert_eq!(flux.status, 200, "{}", flux.text);
    // So do clients without a token.
    assert_eq!(get(&app, "/openapi.json", None, None).await.status, 200);
}

#[tokio::test]
async fn flux_reads_count_per_token_and_client_address() {
    let app = spawn_app_with(with(&[
        ("FLUX_CATALOG_RATE_LIMIT__FLUX_PER_MINUTE", "1"),
        ("FLUX_CATALOG_RATE_LIMIT__FLUX_BURST", "2"),
        ("FLUX_CATALOG_HTTP__TRUSTED_PROXIES", "127.0.0.1"),
    ]))
    .await;
    let path = "/api/v2/flux/clusters";
    let (a, b) = (Some("198.51.100.1"), Some("198.51.100.2"));
    for _ in 0..2 {
        let reply = get(&app, path, Some(READ_TOKEN), a).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("ratelimit-limit"), Some("2"));
    }
    assert_rate_limited(
        &get(&app, path, Some(READ_TOKEN), a).await,
        "for this token from this address",
    );
    // Another cluster with the same read token is not held back by the first.
    assert_eq!(get(&app, path, Some(READ_TOKEN), b).await.status, 200);
    // Nor is the same token on the rest of the API.
    assert_eq!(
        get(&app, "/clusters", Some(READ_TOKEN), a).await.status,
        200
    );

    // Without trusted proxies, X-Forwarded-For names no one: the peer is the client.
    let untrusting = app
        .sibling(with(&[
            ("FLUX_CATALOG_RATE_LIMIT__FLUX_PER_MINUTE", "1"),
            ("FLUX_CATALOG_RATE_LIMIT__FLUX_BURST", "2"),
        ]))
        .await;
    assert_eq!(
        get(&untrusting, path, Some(READ_TOKEN), a).await.status,
        200
    );
    assert_eq!(
        get(&untrusting, path, Some(READ_TOKEN), b).await.status,
        200
    );
    assert_rate_limited(
        &get(&untrusting, path, Some(READ_TOKEN), Some("198.51.100.3")).await,
        "for this token from this address",
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_are_limited_per_address_without_locking_out_valid_ones() {
    let mut settings = SLOW.to_vec();
    settings.push(("FLUX_CATALOG_HTTP__TRUSTED_PROXIES", "127.0.0.1"));
    let app = spawn_app_with(with(&settings)).await;
    let (a, b) = (Some("203.0.113.1"), Some("203.0.113.2"));

    // Wrong tokens, no token: 401 while the address has budget left, then 429.
    let wrong = get(&app, "/clusters", Some("guess-1"), a).await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    assert_eq!(wrong.header("ratelimit-remaining"), Some("1"));
    assert_eq!(get(&app, "/clusters", None, a).await.status, 401);
    let refused = get(&app, "/clusters", Some("guess-2"), a).await;
    assert_rate_limited(&refused, "from this address without a valid token");
    // Each guess is not a client of its own.
    assert_eq!(get(&app, "/clusters", Some("guess-3"), a).await.status, 429);
    // The OpenAPI documents count against the same budget.
    assert_eq!(get(&app, "/openapi.json", None, a).await.status, 429);

    // Another address still gets its 401.
    assert_eq!(get(&app, "/clusters", Some("guess-4"), b).await.status, 401);
    // A valid token from the refused address is served: a neighbour behind the same NAT
    // (or anyone, behind a proxy not in trusted_proxies) cannot lock the fleet out.
    assert_eq!(
        get(&app, "/clusters", Some(READ_TOKEN), a).await.status,
        200
    );
}

#[tokio::test]
async fn the_probes_are_never_limited() {
    let app = spawn_app_with(with(&[
        ("FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_PER_MINUTE", "1"),
        ("FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_BURST", "1"),
    ]))
    .await;
    assert_eq!(get(&app, "/openapi.yaml", None, None).await.status, 200);
    assert_eq!(get(&app, "/openapi.yaml", None, None).await.status, 429);
    for _ in 0..20 {
        for probe in ["/health", "/ready"] {
            let reply = get(&app, probe, None, None).await;
            assert_eq!(reply.status, 200, "{probe}: {}", reply.text);
            assert_eq!(reply.header("ratelimit-limit"), None, "{probe}");
        }
    }
}

#[tokio::test]
async fn rate_limits_can_be_turned_off() {
    let app = spawn_app_with(with(&[
        ("FLUX_CATALOG_RATE_LIMIT__ENABLED", "false"),
        ("FLUX_CATALOG_RATE_LIMIT__API_PER_MINUTE", "1"),
        ("FLUX_CATALOG_RATE_LIMIT__API_BURST", "1"),
    ]))
    .await;
    for _ in 0..5 {
        let reply = get(&app, "/clusters", Some(WRITE_TOKEN), None).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("ratelimit-limit"), None);
    }
}
