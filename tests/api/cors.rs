//! CORS over real HTTP, as a browser would exercise it: off by default; a listed origin
//! may read responses (errors included) and the headers it needs; a preflight needs no
//! token; any other origin gets no CORS header; `*` opens only the public paths.

use reqwest::Method;

use crate::helpers::{Reply, TestApp, WRITE_TOKEN, reply, spawn_app, spawn_app_with};
use crate::rate_limit::with;

const UI: &str = "https://ui.example.com";
const EVIL: &str = "https://evil.example.com";

async fn from(app: &TestApp, origin: &str, path: &str, token: Option<&str>) -> Reply {
    let mut request = app.client.get(app.url(path)).header("Origin", origin);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    reply(request.send().await.unwrap()).await
}

/// What a browser sends before a cross-origin PATCH with a token and a precondition.
async fn preflight(app: &TestApp, origin: &str, path: &str) -> Reply {
    reply(
        app.client
            .request(Method::OPTIONS, app.url(path))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PATCH")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type,if-match,x-request-id",
            )
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn cors_headers(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

/// Every value of a (possibly repeated) list header, lowercase.
fn list(reply: &Reply, name: &str) -> Vec<String> {
    reply
        .headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|item| item.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let app = spawn_app().await;
    let reply = from(&app, UI, "/clusters", Some(WRITE_TOKEN)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(cors_headers(&reply), Vec::<String>::new());
    let reply = preflight(&app, UI, "/clusters/a").await;
    assert_eq!(cors_headers(&reply), Vec::<String>::new());
    assert_ne!(reply.status, 204, "no preflight is answered");
}

#[tokio::test]
async fn a_listed_origin_may_read_responses_errors_included_and_the_headers_it_needs() {
    let app = spawn_app_with(with(&[
        ("FLUX_CATALOG_CORS__ALLOWED_ORIGINS", UI),
        ("FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_PER_MINUTE", "1"),
        ("FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_BURST", "1"),
    ]))
    .await;
    let reply = from(&app, UI, "/clusters", Some(WRITE_TOKEN)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some(UI));
    assert!(list(&reply, "vary").contains(&"origin".to_owned()));
    let exposed = list(&reply, "access-control-expose-headers");
    for name in [
        "etag",
        "location",
        "x-request-id",
        "x-total-count",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "retry-after",
        "x-catalog-age",
        "x-catalog-stale",
    ] {
        assert!(exposed.contains(&name.to_owned()), "{name} in {exposed:?}");
    }
    assert_eq!(reply.header("access-control-allow-credentials"), None);

    // The page can read why a request failed: 401, then 429.
    let unauthorized = from(&app, UI, "/clusters", None).await;
    assert_eq!(unauthorized.status, 401);
    assert_eq!(unauthorized.header("access-control-allow-origin"), Some(UI));
    let limited = from(&app, UI, "/clusters", None).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("access-control-allow-origin"), Some(UI));
}

#[tokio::test]
async fn a_preflight_needs_no_token_and_is_not_counted() {
    let app = spawn_app_with(with(&[
        ("FLUX_CATALOG_CORS__ALLOWED_ORIGINS", UI),
        ("FLUX_CATALOG_CORS__MAX_AGE_SECS", "300"),
        ("FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_PER_MINUTE", "1"),
        ("FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_BURST", "1"),
    ]))
    .await;
    for _ in 0..3 {
        let reply = preflight(&app, UI, "/clusters/a.example.com").await;
        assert_eq!(reply.status, 204, "{}", reply.text);
        assert_eq!(reply.header("access-control-allow-origin"), Some(UI));
        let methods = list(&reply, "access-control-allow-methods");
        for method in ["get", "post", "put", "patch", "delete"] {
            assert!(
                methods.contains(&method.to_owned()),
                "{method}: {methods:?}"
            );
        }
        let headers = list(&reply, "access-control-allow-headers");
        for name in ["authorization", "content-type", "if-match", "x-request-id"] {
            assert!(headers.contains(&name.to_owned()), "{name}: {headers:?}");
        }
        assert_eq!(reply.header("access-control-max-age"), Some("300"));
        assert!(list(&reply, "vary").contains(&"origin".to_owned()));
        assert_eq!(reply.header("ratelimit-limit"), None);
    }
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers() {
    let app = spawn_app_with(with(&[("FLUX_CATALOG_CORS__ALLOWED_ORIGINS", UI)])).await;
    let reply = from(&app, EVIL, "/clusters", Some(WRITE_TOKEN)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(cors_headers(&reply), Vec::<String>::new());
    assert!(
        list(&reply, "vary").contains(&"origin".to_owned()),
        "a cache must not give this answer to the listed origin"
    );
    let reply = preflight(&app, EVIL, "/clusters/a.example.com").await;
    assert_ne!(reply.status, 204);
    assert_eq!(cors_headers(&reply), Vec::<String>::new());
}

#[tokio::test]
async fn the_wildcard_opens_only_the_public_paths() {
    let app = spawn_app_with(with(&[("FLUX_CATALOG_CORS__ALLOWED_ORIGINS", "*")])).await;
    let document = from(&app, EVIL, "/openapi.json", None).await;
    assert_eq!(document.status, 200);
    assert_eq!(document.header("access-control-allow-origin"), Some("*"));
    let api = from(&app, EVIL, "/clusters", Some(WRITE_TOKEN)).await;
    assert_eq!(api.status, 200);
    assert_eq!(cors_headers(&api), Vec::<String>::new());
    assert_eq!(
        cors_headers(&preflight(&app, EVIL, "/clusters/a.example.com").await),
        Vec::<String>::new()
    );
}
