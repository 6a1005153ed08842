//! Who may do what, in both modes.

use base64::Engine;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    READ_TOKEN, TestApp, WRITE_TOKEN, component, reply, spawn_app, spawn_app_with,
};

#[derive(Clone, Copy, Debug)]
enum Credential {
    None,
    Bearer(&'static str),
    Basic(&'static str),
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    credential: Credential,
) -> crate::helpers::Reply {
    let mut request = app.client.request(method.clone(), app.url(path));
    request = match credential {
        Credential::None => request,
        Credential::Bearer(token) => request.bearer_auth(token),
        Credential::Basic(token) => request.basic_auth("flux", Some(token)),
    };
    if method == Method::POST {
        request = request.json(&component("probe", &[]));
    } else if method == Method::PUT {
        request = request.json(&json!({"oci_tag": "3.0.0"}));
    } else if method == Method::PATCH {
        request = request
            .header("content-type", "application/merge-patch+json")
            .body(json!({"oci_tag": "2.0.0"}).to_string());
    }
    reply(request.send().await.unwrap()).await
}

const READS: [&str; 4] = [
    "/api/v2/flux/clusters",
    "/api/v2/flux/clusters/demo-01.k8s.example.com/platform-components",
    "/platform_components",
    "/platform_components/cert-manager",
];

#[tokio::test]
async fn crud_mode_matrix() {
    let app = spawn_app().await;
    app.seed_demo().await;

    for path in READS {
        let r = call(&app, Method::GET, path, Credential::None).await;
        assert_eq!(r.status, 401, "GET {path} without a token");
        assert_eq!(r.code(), "UNAUTHORIZED");
        assert!(
            r.header("www-authenticate").unwrap().contains("Bearer"),
            "GET {path}"
        );
        assert!(
            r.header("www-authenticate").unwrap().contains("Basic"),
            "GET {path}"
        );
        assert_eq!(
            call(&app, Method::GET, path, Credential::Bearer("wrong"))
                .await
                .status,
            401,
            "GET {path} wrong token"
        );
        for credential in [
            Credential::Bearer(READ_TOKEN),
            Credential::Basic(READ_TOKEN),
            Credential::Bearer(WRITE_TOKEN),
            Credential::Basic(WRITE_TOKEN),
        ] {
            assert_eq!(
                call(&app, Method::GET, path, credential).await.status,
                200,
                "GET {path} with {credential:?}"
            );
        }
    }

    let writes = [
        (Method::POST, "/platform_components", 201),
        (Method::PATCH, "/platform_components/probe", 200),
        (Method::PUT, "/platform_components/probe", 200),
        (Method::DELETE, "/platform_components/probe", 200),
    ];
    for (method, path, success) in writes {
        let r = call(&app, method.clone(), path, Credential::None).await;
        assert_eq!(r.status, 401, "{method} {path} without a token");
        assert_eq!(
            call(&app, method.clone(), path, Credential::Bearer("wrong"))
                .await
                .status,
            401
        );
        assert_eq!(
            call(&app, method.clone(), path, Credential::Basic("wrong"))
                .await
                .status,
            401
        );
        let r = call(&app, method.clone(), path, Credential::Bearer(READ_TOKEN)).await;
        assert_eq!(
            r.status, 403,
            "{method} {path} with the read token: {}",
            r.text
        );
        assert_eq!(r.code(), "FORBIDDEN");
        assert_eq!(
            call(&app, method.clone(), path, Credential::Basic(READ_TOKEN))
                .await
                .status,
            403
        );
        let r = call(&app, method.clone(), path, Credential::Bearer(WRITE_TOKEN)).await;
        assert_eq!(
            r.status, success,
            "{method} {path} with the write token: {}",
            r.text
        );
    }
    let r = call(
        &app,
        Method::POST,
        "/platform_components",
        Credential::Basic(WRITE_TOKEN),
    )
    .await;
    assert_eq!(
        r.status, 201,
        "Basic auth carries the write token too: {}",
        r.text
    );
}

#[tokio::test]
async fn read_only_mode_serves_reads_and_refuses_every_write_with_405() {
    let app = spawn_app_with(|env| {
        env.insert("API_MODE".into(), "read-only".into());
    })
    .await;
    for path in [
        "/api/v2/flux/clusters",
        "/platform_components",
        "/clusters",
        "/namespaces",
        "/rolebindings",
    ] {
        assert_eq!(
            call(&app, Method::GET, path, Credential::Bearer(READ_TOKEN))
                .await
                .status,
            200,
            "GET {path}"
        );
        assert_eq!(
            call(&app, Method::GET, path, Credential::None).await.status,
            401,
            "GET {path}"
        );
    }
    for (method, path) in [
        (Method::POST, "/platform_components"),
        (Method::POST, "/clusters"),
        (Method::PUT, "/namespaces/x"),
        (Method::PATCH, "/rolebindings/x"),
        (Method::DELETE, "/clusters/x"),
    ] {
        let r = call(&app, method.clone(), path, Credential::Bearer(READ_TOKEN)).await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text);
        assert_eq!(r.code(), "METHOD_NOT_ALLOWED");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        assert!(
            r.body["detail"].as_str().unwrap().contains("read-only"),
            "{}",
            r.text
        );
        assert_eq!(
            call(&app, method.clone(), path, Credential::None)
                .await
                .status,
            401,
            "{method} {path}"
        );
        // A read-only server does not know the write token at all.
        assert_eq!(
            call(&app, method.clone(), path, Credential::Bearer(WRITE_TOKEN))
                .await
                .status,
            401
        );
    }
    // The audit log is a crud server's (documented as this 404).
    let audit = call(&app, Method::GET, "/audit", Credential::Bearer(READ_TOKEN)).await;
    assert_eq!(audit.status, 404, "{}", audit.text);
    assert_eq!(audit.code(), "NOT_FOUND");
    assert_eq!(app.count("platform_components").await, 0);
}

#[tokio::test]
async fn without_a_write_token_the_read_token_writes_in_crud_mode() {
    let app = spawn_app_with(|env| {
        env.remove("CRUD_AUTH_TOKEN");
    })
    .await;
    let r = call(
        &app,
        Method::POST,
        "/platform_components",
        Credential::Bearer(READ_TOKEN),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn probes_and_the_openapi_document_need_no_token_even_with_a_wrong_one() {
    let app = spawn_app().await;
    for path in ["/health", "/ready", "/openapi.yaml", "/openapi.json"] {
        assert_eq!(
            call(&app, Method::GET, path, Credential::None).await.status,
            200,
            "{path}"
        );
        assert_eq!(
            call(&app, Method::GET, path, Credential::Bearer("wrong"))
                .await
                .status,
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn malformed_authorization_headers_are_refused_not_crashed_on() {
    let app = spawn_app().await;
    let encoded = base64::engine::general_purpose::STANDARD.encode(READ_TOKEN);
    for header in [
        "Bearer",
        "Bearer ",
        "Basic",
        "Basic %%%",
        &format!("Basic {encoded}"),
        "Token x",
    ] {
        let r = reply(
            app.client
                .get(app.url("/clusters"))
                .header("authorization", header)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 401, "Authorization: {header:?}");
    }
}

/// `GET /clusters` sent byte for byte with this `Authorization` value, bypassing client
/// libraries that refuse control characters; the status code and the whole raw response.
async fn raw_get_clusters(app: &TestApp, authorization: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut request = b"GET /clusters HTTP/1.1\r\nHost: localhost\r\nAuthorization: ".to_vec();
    request.extend_from_slice(authorization);
    request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    // A blocking socket on a blocking thread: the test's runtime stays free.
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        stream.write_all(&request).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        String::from_utf8_lossy(&response).into_owned()
    })
    .await
    .unwrap();
    let status = response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    (status, response)
}

/// Bytes `HeaderValue::from_str` will not build go out raw. A DEL (0x7f) is refused by the
/// HTTP parser (400); bytes above 0x7f pass it and reach the server's own check, which must
/// refuse them (401). Either way nothing is served, also when the byte trails or leads a
/// valid token.
#[tokio::test]
async fn authorization_headers_with_bytes_clients_refuse_to_send_are_refused() {
    let app = spawn_app().await;
    app.seed_demo().await;
    // The same raw request with a valid token is served: the refusals below are not an
    // artefact of how the request is written.
    let (status, response) =
        raw_get_clusters(&app, format!("Bearer {READ_TOKEN}").as_bytes()).await;
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("demo-01"), "{response}");

    for value in [
        b"\x7f".to_vec(),
        b"Bearer \x7f".to_vec(),
        format!("Bearer {READ_TOKEN}\x7f").into_bytes(),
        format!("Bearer \x7f{READ_TOKEN}").into_bytes(),
        b"\xff".to_vec(),
        [format!("Bearer {READ_TOKEN}").as_bytes(), b"\xff"].concat(),
    ] {
        let (status, response) = raw_get_clusters(&app, &value).await;
        let shown = String::from_utf8_lossy(&value);
        assert!(
            matches!(status, 400 | 401),
            "Authorization: {shown:?} answered {status}: {response}"
        );
        assert!(
            !response.contains("demo-01") && !response.contains("cert-manager"),
            "Authorization: {shown:?} returned data: {response}"
        );
    }
}

/// Two credentials in one request are ambiguous (which one counts depends on who reads
/// the headers), so such a request is refused outright, whatever the order and even when
/// both are valid, before anything is read or written.
#[tokio::test]
async fn a_request_with_two_authorization_headers_is_refused_with_400() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("flux:{WRITE_TOKEN}"))
    );
    let pairs = [
        (format!("Bearer {WRITE_TOKEN}"), "Bearer wrong".to_owned()),
        ("Bearer wrong".to_owned(), format!("Bearer {WRITE_TOKEN}")),
        (
            format!("Bearer {READ_TOKEN}"),
            format!("Bearer {WRITE_TOKEN}"),
        ),
        (format!("Bearer {WRITE_TOKEN}"), basic.clone()),
    ];
    for (first, second) in &pairs {
        for (method, path) in [
            (Method::GET, "/clusters"),
            (Method::POST, "/platform_components"),
        ] {
            let mut request = app
                .client
                .request(method.clone(), app.url(path))
                .header("authorization", first)
                .header("authorization", second);
            if method == Method::POST {
                request = request.json(&component("probe", &[]));
            }
            let r = reply(request.send().await.unwrap()).await;
            assert_eq!(
                r.status, 400,
                "{method} {path} with {first:?} and {second:?}: {}",
                r.text
            );
            assert_eq!(r.code(), "INVALID_REQUEST", "{}", r.text);
            assert_eq!(r.error_fields(), ["Authorization"], "{}", r.text);
            assert!(
                !r.text.contains(WRITE_TOKEN) && !r.text.contains(READ_TOKEN),
                "the problem repeats no credential: {}",
                r.text
            );
        }
    }
    assert_eq!(
        app.count("platform_components").await,
        2,
        "nothing was written"
    );
}

/// Sends the head of a request with `Expect: 100-continue` and returns the first answer
/// (up to the end of its head); then, if that was `100 Continue`, sends `body` and
/// returns the final answer's status line as well.
async fn expect_continue(app: &TestApp, head: String, body: &'static str) -> (String, String) {
    use std::io::{Read, Write};
    let address = app.address.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let read_head = |stream: &mut std::net::TcpStream| {
            let mut answer = Vec::new();
            let mut byte = [0u8; 1];
            while !answer.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => answer.push(byte[0]),
                    _ => break,
                }
            }
            String::from_utf8_lossy(&answer).into_owned()
        };
        let first = read_head(&mut stream);
        if !first.starts_with("HTTP/1.1 100") {
            return (first, String::new());
        }
        stream.write_all(body.as_bytes()).unwrap();
        (first, read_head(&mut stream))
    })
    .await
    .unwrap()
}

/// `Expect: 100-continue` asks the server whether to send the body; a request the server
/// will refuse (no or bad credentials, a read token on a write, two credentials, a body over
/// the limit) is answered with that refusal, never with `100 Continue`.
#[tokio::test]
async fn expect_100_continue_is_answered_only_after_authentication_and_the_size_check() {
    let app = spawn_app_with(|env| {
        env.insert("FLUX_CATALOG_HTTP__MAX_BODY_BYTES".into(), "512".into());
    })
    .await;
    let body = r#"{"id": "n1"}"#;
    let head = |authorization: &[String], length: usize| {
        let mut head = format!(
            "POST /namespaces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\nExpect: 100-continue\r\n"
        );
        for value in authorization {
            head.push_str(&format!("Authorization: {value}\r\n"));
        }
        head.push_str("\r\n");
        head
    };
    let write = format!("Bearer {WRITE_TOKEN}");
    let refused = [
        ("no credentials", head(&[], body.len()), "401"),
        (
            "a wrong token",
            head(&["Bearer wrong".into()], body.len()),
            "401",
        ),
        (
            "the read token on a write",
            head(&[format!("Bearer {READ_TOKEN}")], body.len()),
            "403",
        ),
        (
            "two credentials",
            head(&[write.clone(), write.clone()], body.len()),
            "400",
        ),
        (
            "a body over the limit",
            head(std::slice::from_ref(&write), 100_000),
            "413",
        ),
    ];
    for (what, head, status) in refused {
        let (first, _) = expect_continue(&app, head, body).await;
        assert!(
            first.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: expected {status} without 100 Continue, got {first:?}"
        );
        assert!(
            first.contains("application/problem+json"),
            "{what}: {first:?}"
        );
    }
    assert_eq!(app.count("namespaces").await, 0);

    let (first, last) = expect_continue(&app, head(&[write], body.len()), body).await;
    assert!(first.starts_with("HTTP/1.1 100 Continue"), "{first:?}");
    assert!(last.starts_with("HTTP/1.1 201"), "{last:?}");
    assert_eq!(app.count("namespaces").await, 1);
}
