//! Clients that hold on to what the server gives them, or give it too slowly, too much or
//! too many at once (issue 11's findings 1 to 3, and the configurable limits). The
//! repeatable attack with memory figures is `scripts/attack.sh`.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{READ_TOKEN, TestApp, WRITE_TOKEN, component, spawn_app_with};

fn socket_address(app: &TestApp) -> std::net::SocketAddr {
    app.address.trim_start_matches("http://").parse().unwrap()
}

/// Reads until the server closes the connection or `limit` passes; what was read, and
/// whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => return (received, false),
        }
    }
}

/// Finding 1: a client that pipelines requests for a large document and stops reading is
/// disconnected once its response has made no progress for `http.send_timeout_ms`, instead
/// of holding the response (and the connection) for ever.
#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let app = spawn_app_with(|env| {
        env.insert("FLUX_CATALOG_HTTP__SEND_TIMEOUT_MS".into(), "500".into());
    })
    .await;
    // A small receive window, so the server's writes block soon.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(socket_address(&app)).await.unwrap();
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: test\r\n\r\n".repeat(50);
    stream.write_all(&request).await.unwrap();

    // Not reading for a while: far longer than the send timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(
        closed,
        "the server still holds the connection of a client that stopped reading"
    );
    let document_bytes = app.client.get(app.url("/openapi.json")).send().await;
    let document_bytes = document_bytes.unwrap().bytes().await.unwrap().len();
    assert!(
        received.len() < 50 * document_bytes,
        "all 50 responses were sent ({} bytes): the client was never cut off",
        received.len()
    );
}

/// Finding 1: connections beyond `http.max_connections` wait to be accepted; they are
/// served once a connection closes.
#[tokio::test]
async fn connections_beyond_the_limit_wait_for_one_to_close() {
    let app = spawn_app_with(|env| {
        env.insert("FLUX_CATALOG_HTTP__WORKERS".into(), "1".into());
        env.insert("FLUX_CATALOG_HTTP__MAX_CONNECTIONS".into(), "2".into());
    })
    .await;
    let address = socket_address(&app);
    let ask = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(ask).await.unwrap();
        let mut buffer = [0; 1024];
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }

    // The third is queued by the kernel, not served.
    let mut third = TcpStream::connect(address).await.unwrap();
    third.write_all(ask).await.unwrap();
    let mut buffer = [0; 1024];
    let early = tokio::time::timeout(Duration::from_millis(1500), third.read(&mut buffer)).await;
    assert!(
        early.is_err(),
        "a third connection was served beyond the limit of 2"
    );

    drop(held.pop());
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buffer))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
}

/// Finding 2: a burst of writes stuck behind the catalog's write lock neither exhausts the
/// pool for reads nor makes the snapshot believe the database is gone: writes beyond
/// `http.max_concurrent_writes` wait briefly, then get 503 `BUSY` with `Retry-After`.
#[tokio::test]
async fn a_burst_of_writes_does_not_starve_reads_or_readiness() {
    let app = spawn_app_with(|env| {
        env.insert("FLUX_CATALOG_DATABASE__POOL_SIZE".into(), "3".into());
        env.insert(
            "FLUX_CATALOG_DATABASE__WAIT_TIMEOUT_MS".into(),
            "1000".into(),
        );
        env.insert(
            "FLUX_CATALOG_HTTP__MAX_CONCURRENT_WRITES".into(),
            "1".into(),
        );
        env.insert(
            "FLUX_CATALOG_SNAPSHOT__POLL_INTERVAL_MS".into(),
            "100".into(),
        );
        env.insert(
            "FLUX_CATALOG_SNAPSHOT__CHECK_TIMEOUT_MS".into(),
            "300".into(),
        );
    })
    .await;
    app.create("/platform_components", component("cert-manager", &[]))
        .await;

    // Every write now waits for this transaction's lock, holding what it took meanwhile.
    let mut locker = app.db.client().await;
    let lock = locker.transaction().await.unwrap();
    lock.execute(
        "select pg_advisory_xact_lock($1)",
        &[&flux_catalog::storage::write::WRITE_LOCK_KEY],
    )
    .await
    .unwrap();

    let writes: Vec<_> = (0..12)
        .map(|_| {
            let request = app
                .client
                .patch(app.url("/platform_components/cert-manager?dry_run=true"))
                .bearer_auth(WRITE_TOKEN)
                .header("content-type", "application/merge-patch+json")
                .body(r#"{"component_version": "9.9.9"}"#);
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();

    // Several snapshot checks fall in this time.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["database"], "ok", "{}", ready.text);
    let started = Instant::now();
    let read = app
        .client
        .get(app.url("/platform_components/cert-manager"))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "a database-backed read was starved");
    assert!(started.elapsed() < Duration::from_millis(900));

    lock.commit().await.unwrap();
    let mut statuses = Vec::new();
    for write in writes {
        let response = write.await.unwrap();
        let status = response.status().as_u16();
        if status == 503 {
            assert_eq!(
                response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap()),
                Some("1")
            );
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["code"], "BUSY", "{body}");
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        statuses.iter().filter(|&&s| s == 503).count() >= 10,
        "writes beyond the one slot should be refused as busy: {statuses:?}"
    );
}

/// Finding 3: a body trickling in is cut off after `http.body_timeout_ms` with 408, and
/// the connection is closed (what is left of the body cannot be read as a request).
#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off() {
    let app = spawn_app_with(|env| {
        env.insert("FLUX_CATALOG_HTTP__BODY_TIMEOUT_MS".into(), "1000".into());
    })
    .await;
    let mut stream = TcpStream::connect(socket_address(&app)).await.unwrap();
    let head = format!(
        "POST /platform_components HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {WRITE_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut reader = reader;
    let mut response = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut response)).await;
    trickle.abort();
    assert!(read.is_ok(), "the server waited for the whole slow body");
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 408"),
        "expected 408, got {response:?}"
    );
    assert!(response.contains("REQUEST_TIMEOUT"), "{response}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "cut off after {took:?}, not about the 1 s timeout"
    );
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_refused_with_431() {
    let app = spawn_app_with(|env| {
        env.insert("FLUX_CATALOG_HTTP__MAX_HEADER_COUNT".into(), "8".into());
        env.insert("FLUX_CATALOG_HTTP__MAX_HEADER_BYTES".into(), "2048".into());
    })
    .await;
    let mut many = app.client.get(app.url("/health"));
    for i in 0..10 {
        many = many.header(format!("x-extra-{i}"), "1");
    }
    let r = crate::helpers::reply(many.send().await.unwrap()).await;
    assert_eq!(r.status, 431, "{}", r.text);
    assert_eq!(r.code(), "HEADERS_TOO_LARGE");
    assert!(r.text.contains("http.max_header_count"), "{}", r.text);

    let large = app
        .client
        .get(app.url("/health"))
        .header("x-large", "a".repeat(3000));
    let r = crate::helpers::reply(large.send().await.unwrap()).await;
    assert_eq!(r.status, 431, "{}", r.text);
    assert!(r.text.contains("http.max_header_bytes"), "{}", r.text);

    let fine = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(fine.status(), 200);
}

#[tokio::test]
async fn bodies_nested_deeper_than_the_limit_are_refused_before_parsing() {
    let app = spawn_app_with(|env| {
        env.insert("FLUX_CATALOG_HTTP__MAX_JSON_DEPTH".into(), "4".into());
    })
    .await;
    let mut body = component("deep", &[]);
    body["values"] = json!({"a": {"b": {"c": {"d": 1}}}});
    let r = app.post("/platform_components", &body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "MALFORMED_JSON");
    assert!(r.text.contains("http.max_json_depth"), "{}", r.text);
    assert_eq!(app.count("platform_components").await, 0);
}

/// The pipeline cap (vendor/README.md) must not lose or reorder requests: a client that
/// pipelines many requests and reads gets every answer, in order.
#[tokio::test]
async fn every_pipelined_request_is_answered_in_order() {
    let app = spawn_app_with(|_| {}).await;
    let mut stream = TcpStream::connect(socket_address(&app)).await.unwrap();
    let mut requests = Vec::new();
    for i in 0..200 {
        // The probes: never rate-limited, so every answer is a 200.
        let path = if i % 2 == 0 { "/health" } else { "/ready" };
        requests.extend_from_slice(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nX-Request-Id: pipelined-{i}\r\n\r\n")
                .as_bytes(),
        );
    }
    requests.extend_from_slice(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(&requests).await.unwrap();
    let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(30)).await;
    assert!(closed, "the server did not answer the whole pipeline");
    let text = String::from_utf8_lossy(&received);
    let statuses: Vec<&str> = text
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|answer| &answer[..3])
        .collect();
    assert_eq!(statuses.len(), 201, "every request is answered once");
    assert!(statuses.iter().all(|s| *s == "200"), "{statuses:?}");
    let positions: Vec<usize> = (0..200)
        .map(|i| {
            text.find(&format!("x-request-id: pipelined-{i}\r\n"))
                .unwrap_or_else(|| panic!("no answer for request {i}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "answers are out of order"
    );
}
