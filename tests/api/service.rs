//! Probes, the OpenAPI document, routing and the error format.

use serde_json::Value;

use crate::helpers::{
    READ_TOKEN, WRITE_TOKEN, connection_string_for, reply, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn health_needs_no_token_and_says_ok() {
    let app = spawn_app().await;
    let r = reply(app.client.get(app.url("/health")).send().await.unwrap()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn ready_is_200_while_the_database_answers() {
    let app = spawn_app().await;
    let r = reply(app.client.get(app.url("/ready")).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ok");
}

#[tokio::test]
async fn ready_is_503_with_the_reason_when_the_database_is_gone() {
    let app = spawn_app_with(|env| {
        env.insert(
            "DATABASE_URL".into(),
            connection_string_for("no_such_database"),
        );
    })
    .await;
    // 503 from the start; the reason names the database's error once the first attempt
    // to load has failed (it may still be under way at the first look).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = reply(app.client.get(app.url("/ready")).send().await.unwrap()).await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(r.code(), "NOT_READY");
        let detail = r.body["detail"].as_str().unwrap();
        if detail.contains("no_such_database") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/ready never said why: {detail}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let health = reply(app.client.get(app.url("/health")).send().await.unwrap()).await;
    assert_eq!(
        health.status, 200,
        "liveness does not depend on the database"
    );
    let read = app.get("/clusters").await;
    assert_eq!(read.status, 503, "{}", read.text);
    assert_eq!(read.code(), "STORE_UNAVAILABLE");
    assert_eq!(read.header("retry-after"), Some("5"));
}

#[tokio::test]
async fn ready_answers_at_once_while_a_silent_database_keeps_the_snapshot_from_loading() {
    // Accepts connections (the kernel does) but never speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let app = spawn_app_with(|env| {
        env.insert(
            "DATABASE_URL".into(),
            format!("postgres://nobody@127.0.0.1:{port}/none"),
        );
    })
    .await;
    let started = std::time::Instant::now();
    let r = reply(app.client.get(app.url("/ready")).send().await.unwrap()).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(
        r.body["detail"].as_str().unwrap().contains("not loaded"),
        "{}",
        r.text
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    let flux = app.flux("/api/v2/flux/clusters").await;
    assert_eq!(flux.status, 503, "{}", flux.text);
    assert_eq!(flux.code(), "NOT_READY");
    drop(silent);
}

#[tokio::test]
async fn the_openapi_document_is_served_as_yaml_and_json_without_a_token() {
    let app = spawn_app().await;
    let yaml = reply(
        app.client
            .get(app.url("/openapi.yaml"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(yaml.status, 200);
    assert!(
        yaml.header("content-type")
            .unwrap()
            .starts_with("application/yaml")
    );
    assert!(
        yaml.text.starts_with("openapi: 3.1"),
        "{}",
        &yaml.text[..40]
    );
    let json = reply(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(json.status, 200);
    assert_eq!(json.body["info"]["title"], "flux-catalog");
    assert!(
        json.body["paths"]["/api/v2/flux/clusters/{cluster_dns}/platform-components"].is_object()
    );
}

#[test]
fn the_checked_in_openapi_document_matches_the_code() {
    let generated = flux_catalog::http::openapi::yaml_document();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.yaml");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == checked_in,
        "openapi/openapi.yaml is out of date with the code; regenerate it with\n\n    \
         cargo run -- openapi > openapi/openapi.yaml\n"
    );
}

/// Every operation the document describes is routed, with the write token in crud mode:
/// none answers "no route" or 405.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let document: Value =
        serde_json::from_str(&flux_catalog::http::openapi::json_document()).unwrap();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", "nothing-here")
                .replace("{cluster_dns}", "nothing.example.com");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = reply(
                app.client
                    .request(method.clone(), app.url(&concrete))
                    .bearer_auth(WRITE_TOKEN)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            let detail = r.body["detail"].as_str().unwrap_or("");
            assert!(
                !detail.starts_with("no route"),
                "{method} {path} is documented but not routed"
            );
            assert_ne!(
                r.status, 405,
                "{method} {path} is documented but answers 405"
            );
            let documented =
                item[method.as_str().to_lowercase()]["responses"][r.status.to_string()].is_object();
            assert!(
                documented,
                "{method} {path} answered {} which its documentation does not list: {}",
                r.status, r.text
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 46);
}

#[tokio::test]
async fn unknown_paths_get_a_json_404() {
    let app = spawn_app().await;
    let r = app.get("/no/such/thing").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "NOT_FOUND");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
}

#[tokio::test]
async fn methods_a_path_does_not_serve_get_405_naming_those_it_does() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/clusters", "GET, HEAD, POST"),
        (
            reqwest::Method::POST,
            "/clusters/x",
            "GET, HEAD, PUT, PATCH, DELETE",
        ),
        (reqwest::Method::POST, "/api/v2/flux/clusters", "GET, HEAD"),
        (
            reqwest::Method::PUT,
            "/api/v2/flux/clusters/demo-01.k8s.example.com/namespaces",
            "GET, HEAD",
        ),
        (reqwest::Method::PUT, "/health", "GET, HEAD"),
    ] {
        let r = reply(app.request(method.clone(), path).send().await.unwrap()).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.code(), "METHOD_NOT_ALLOWED");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
}

#[tokio::test]
async fn every_error_is_a_problem_document() {
    let app = spawn_app().await;
    let r = reply(
        app.client
            .get(app.url("/clusters/nope"))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(
            !r.body[field].is_null(),
            "problem lacks {field}: {}",
            r.text
        );
    }
    assert_eq!(r.body["status"], 404);
    assert_eq!(r.body["type"], "urn:flux-catalog:problem:not-found");
    assert!(r.body["detail"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn responses_carry_a_request_id_and_echo_a_plain_one_from_the_client() {
    let app = spawn_app().await;
    let generated = reply(app.client.get(app.url("/health")).send().await.unwrap()).await;
    assert_eq!(generated.header("x-request-id").map(str::len), Some(32));
    let echoed = reply(
        app.client
            .get(app.url("/health"))
            .header("x-request-id", "trace-42")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-42"));
    let refused = reply(
        app.client
            .get(app.url("/clusters"))
            .header("x-request-id", "trace-43")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("x-request-id"),
        Some("trace-43"),
        "also on responses refused by authentication"
    );
    let replaced = reply(
        app.client
            .get(app.url("/health"))
            .header("x-request-id", "a b<script>")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_ne!(replaced.header("x-request-id"), Some("a b<script>"));
}

#[tokio::test]
async fn trailing_and_doubled_slashes_reach_the_same_route() {
    let app = spawn_app().await;
    app.seed_demo().await;
    assert_eq!(app.get("/clusters/").await.status, 200);
    assert_eq!(app.get("//clusters/demo-01").await.body["id"], "demo-01");
    assert_eq!(
        app.flux("/api/v2/flux/clusters/demo-01.k8s.example.com/platform-components/")
            .await
            .status,
        200
    );
}

/// HEAD is answered like GET, headers and length included, without a body (RFC 9110 says
/// every server supports it; load balancers and monitors use it).
#[tokio::test]
async fn head_gets_the_headers_of_get_without_a_body() {
    let app = spawn_app().await;
    app.seed_demo().await;
    for path in [
        "/health",
        "/clusters/demo-01",
        "/api/v2/flux/clusters/demo-01.k8s.example.com/platform-components",
    ] {
        let get = app.get(path).await;
        assert_eq!(get.status, 200, "GET {path}");
        let head = reply(
            app.request(reqwest::Method::HEAD, path)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(head.status, 200, "HEAD {path}: {}", head.text);
        assert_eq!(head.text, "", "HEAD {path} has no body");
        assert_eq!(
            head.header("content-length"),
            Some(get.text.len().to_string().as_str()),
            "HEAD {path} gives GET's length"
        );
        assert_eq!(head.header("etag"), get.header("etag"), "HEAD {path}");
    }
    let unauthenticated = reply(
        app.client
            .head(app.url("/clusters/demo-01"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        unauthenticated.status, 401,
        "HEAD needs the token GET needs"
    );
}
