//! The `flux-catalog` binary as users run it: configuration refusal, seeding, graceful
//! shutdown, the embedded default, the access log.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{READ_TOKEN, TestDatabase, WRITE_TOKEN, reply};

const BINARY: &str = env!("CARGO_BIN_EXE_flux-catalog");

/// The binary with a clean environment (nothing inherited but PATH and HOME).
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args).env_clear();
    for variable in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(variable) {
            command.env(variable, value);
        }
    }
    command.env("RUST_LOG", "info");
    command
}

pub fn demo_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/catalog.json")
}

#[test]
fn serving_without_a_token_is_refused_with_a_clear_message() {
    let output = command(&["serve"])
        .env("API_MODE", "crud")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AUTH_TOKEN") && stderr.contains("required"),
        "{stderr}"
    );
}

#[test]
fn invalid_configuration_is_refused_naming_the_variable() {
    for (variable, value) in [("API_MODE", "writable"), ("LISTEN_ADDR", "everywhere")] {
        let output = command(&["serve"])
            .env("AUTH_TOKEN", "t")
            .env(variable, value)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}={value}: {stderr}");
    }
}

#[test]
fn the_openapi_command_prints_the_checked_in_document() {
    let output = command(&["openapi"]).output().unwrap();
    assert!(output.status.success());
    let checked_in =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.yaml"))
            .unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), checked_in);
}

#[tokio::test]
async fn seeding_twice_loads_the_catalog_once() {
    let db = TestDatabase::create().await;
    let seed = || {
        let output = command(&["seed", demo_catalog().to_str().unwrap()])
            .env("DATABASE_URL", &db.connection_string)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    let first = seed();
    assert!(
        first.contains("clusters: 3 created, 0 updated, 0 unchanged"),
        "{first}"
    );
    let second = seed();
    assert!(
        second.contains("platform_components: 0 created, 0 updated, 7 unchanged"),
        "{second}"
    );
    assert!(
        second.contains("clusters: 0 created, 0 updated, 3 unchanged"),
        "{second}"
    );
    let sql = db.client().await;
    let count: i64 = sql
        .query_one("select count(*) from cluster_platform_components", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 18);
}

#[tokio::test]
async fn an_invalid_catalog_document_loads_nothing_and_names_the_fields() {
    let db = TestDatabase::create().await;
    let dir = tempdir();
    let file = dir.join("bad.json");
    std::fs::write(
        &file,
        json!({
            "namespaces": [{"id": "fine"}],
            "clusters": [{"id": "c", "cluster_name": "c", "cluster_dns": "c.example.com", "environment": "moon"}]
        })
        .to_string(),
    )
    .unwrap();
    let output = command(&["seed", file.to_str().unwrap()])
        .env("DATABASE_URL", &db.connection_string)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("clusters[0].environment"), "{stderr}");
    let sql = db.client().await;
    let count: i64 = sql
        .query_one("select count(*) from namespaces", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0, "all or nothing");
    std::fs::remove_dir_all(dir).unwrap();
}

pub fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "flux-catalog-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `flux-catalog serve` and everything it has logged so far.
pub struct Server {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<String>>,
    /// Copies the server's stderr into `log` until it closes.
    reader: std::thread::JoinHandle<()>,
}

impl Server {
    /// Starts `serve` (crud mode and the test tokens unless `command` sets them) and waits
    /// until it is ready.
    pub fn start(command: Command) -> Server {
        let server = Server::spawn(command);
        server.wait_ready();
        server
    }

    /// Starts `serve` and waits only until it listens (its log names the port).
    pub fn spawn(mut command: Command) -> Server {
        let configured: Vec<_> = command.get_envs().map(|(k, _)| k.to_owned()).collect();
        for (variable, value) in [
            ("AUTH_TOKEN", READ_TOKEN),
            ("CRUD_AUTH_TOKEN", WRITE_TOKEN),
            ("API_MODE", "crud"),
        ] {
            if !configured.iter().any(|k| k == variable) {
                command.env(variable, value);
            }
        }
        let mut child = command
            .arg("serve")
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("(port ")
                    .nth(1)
                    .and_then(|rest| rest.split(')').next())
                {
                    let _ = port_tx.send(port.parse::<u16>().unwrap());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server did not start:\n{}", log.lock().unwrap()));
        Server {
            child,
            port,
            log,
            reader,
        }
    }

    /// `GET path` with the read token, as Flux asks.
    pub async fn read(&self, path: &str) -> crate::helpers::Reply {
        reply(
            reqwest::Client::new()
                .get(self.url(path))
                .bearer_auth(READ_TOKEN)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// The status and body of a plain `GET path`.
    pub fn get(&self, path: &str) -> (u16, String) {
        status_and_body(&self.raw(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()))
    }

    /// Sends `request` byte for byte and returns the whole answer.
    pub fn raw(&self, request: &[u8]) -> String {
        self.try_raw(request).unwrap()
    }

    fn try_raw(&self, request: &[u8]) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(request)?;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// The access log line of the request with id `rid` (its text after the log prefix),
    /// waiting a little for it to be written.
    pub fn access_line(&self, rid: &str) -> String {
        let marker = format!(" rid={rid}");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| l.ends_with(&marker)) {
                return line
                    .split_once("flux_catalog::access] ")
                    .unwrap_or_else(|| panic!("not an access log line: {line}"))
                    .1
                    .to_owned();
            }
            assert!(Instant::now() < deadline, "no line for {rid}:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for `/ready`, as a Kubernetes readiness probe would: the snapshot is loaded.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = self
                .try_raw(b"GET /ready HTTP/1.0\r\n\r\n")
                .map(|answer| status_and_body(&answer).0 == 200);
            if matches!(ready, Ok(true)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server never became ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends a signal by name (`TERM`, `INT`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and says whether it exited successfully.
    pub fn wait(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The last lines may still be in the pipe: let the reader take them (it ends
                // at once unless a child process, an embedded PostgreSQL, holds the pipe).
                let drained = Instant::now();
                while !self.reader.is_finished() && drained.elapsed() < Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return status.success();
            }
            assert!(
                start.elapsed() < limit,
                "the server did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The status and body of an HTTP answer.
fn status_and_body(answer: &str) -> (u16, String) {
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kubernetes stops pods with SIGTERM, a terminal with SIGINT: both must drain.
#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_cleanly() {
    drains_on("TERM", "SIGTERM").await;
}

#[tokio::test]
async fn sigint_lets_an_in_flight_request_finish_then_exits_cleanly() {
    drains_on("INT", "SIGINT").await;
}

/// A slow request (a body sent in two halves) is in flight when the signal comes; it is
/// answered and stored, the process exits cleanly, and the log says what happened.
async fn drains_on(signal: &str, logged: &str) {
    let db = TestDatabase::create().await;
    let mut server = Server::start({
        let mut c = command(&[]);
        c.env("DATABASE_URL", &db.connection_string);
        c
    });
    // A create whose body arrives in two halves, with SIGTERM in between.
    let body = json!({"id": "in-flight", "labels": {"sent": "slowly"}})
        .to_string()
        .into_bytes();
    let (first, second) = body.split_at(body.len() / 2);
    let (first, second) = (first.to_vec(), second.to_vec());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let stream = futures_util::stream::unfold(
        (Some(first), Some(second), Some(rx)),
        |(first, second, rx)| async move {
            if let Some(first) = first {
                return Some((Ok::<_, std::io::Error>(first), (None, second, rx)));
            }
            if let (Some(second), Some(rx)) = (second, rx) {
                let _ = rx.await;
                return Some((Ok(second), (None, None, None)));
            }
            None
        },
    );
    let client = reqwest::Client::new();
    let request = client
        .post(server.url("/namespaces"))
        .bearer_auth(WRITE_TOKEN)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let in_flight = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal(signal);
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(()).unwrap();
    let r = reply(
        in_flight
            .await
            .unwrap()
            .expect("the in-flight request is answered"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        server.wait(Duration::from_secs(20)),
        "exit status after {logged}:\n{}",
        server.log()
    );
    let log = server.log();
    assert!(
        log.contains(&format!("{logged} received")) && log.contains("in-flight requests finished"),
        "the log says what happened:\n{log}"
    );
    assert!(!log.contains("forced shutdown"), "{log}");
    let sql = db.client().await;
    let stored: i64 = sql
        .query_one(
            "select count(*) from namespaces where id = 'in-flight'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn the_embedded_default_keeps_its_data_across_restarts_and_stops_with_the_server() {
    let dir = tempdir();
    let data = dir.join("pgdata");
    let start = || {
        let mut c = command(&[]);
        c.env("FLUX_CATALOG_DATABASE__EMBEDDED_DATA_DIR", &data)
            .env("SEED_FILE", demo_catalog());
        Server::start(c)
    };
    let client = reqwest::Client::new();

    let mut first = start();
    let log = first.log();
    assert!(log.contains("embedded PostgreSQL"), "{log}");
    assert!(
        log.contains("clusters: 3 created"),
        "the seed file was loaded: {log}"
    );
    let r = reply(
        client
            .post(first.url("/namespaces"))
            .bearer_auth(WRITE_TOKEN)
            .json(&json!({"id": "kept"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Edits to what the seed file also defines: a restart with SEED_FILE must keep them.
    for (path, change) in [
        (
            "/platform_components/cert-manager",
            json!({"oci_tag": "v9.9.9"}),
        ),
        ("/clusters/demo-prod-01", json!({"node_count": 42})),
    ] {
        let r = reply(
            client
                .patch(first.url(path))
                .bearer_auth(WRITE_TOKEN)
                .header("content-type", "application/merge-patch+json")
                .body(change.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    first.terminate();
    assert!(first.wait(Duration::from_secs(30)), "{}", first.log());
    assert!(
        !data.join("postmaster.pid").exists(),
        "PostgreSQL stopped with the server:\n{}",
        first.log()
    );

    let second = start();
    assert!(
        second
            .log()
            .contains("clusters: 0 created, 0 updated, 3 unchanged"),
        "{}",
        second.log()
    );
    let r = second.read("/namespaces/kept").await;
    assert_eq!(r.status, 200, "the data survived the restart: {}", r.text);
    for (path, field, edited) in [
        (
            "/platform_components/cert-manager",
            "oci_tag",
            json!("v9.9.9"),
        ),
        ("/clusters/demo-prod-01", "node_count", json!(42)),
    ] {
        let r = second.read(path).await;
        assert_eq!(
            r.body[field], edited,
            "the seed file undid the edit of {path}: {}",
            r.text
        );
    }
    let r = second
        .read("/api/v2/flux/clusters/demo-prod-01.k8s.example.com/platform-components")
        .await;
    assert_eq!(r.body["inputs"].as_array().unwrap().len(), 7);
    drop(second);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn the_access_log_has_a_line_per_request_and_never_a_token() {
    let db = TestDatabase::create().await;
    let server = Server::start({
        let mut c = command(&[]);
        c.env("DATABASE_URL", &db.connection_string);
        c
    });
    let client = reqwest::Client::new();
    client
        .get(server.url("/clusters"))
        .bearer_auth(READ_TOKEN)
        .header("x-request-id", "log-probe-1")
        .send()
        .await
        .unwrap();
    client
        .get(server.url("/clusters"))
        .bearer_auth("a-wrong-token-value")
        .send()
        .await
        .unwrap();
    client
        .get(server.url("/clusters"))
        .basic_auth("flux", Some(WRITE_TOKEN))
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("rid=log-probe-1") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("rid=log-probe-1"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("\"GET /clusters HTTP/1.1\" 200"), "{line}");
    assert!(line.contains("ms"), "the duration is logged: {line}");
    assert!(log.contains("\"GET /clusters HTTP/1.1\" 401"), "{log}");
    for secret in [READ_TOKEN, WRITE_TOKEN, "a-wrong-token-value"] {
        assert!(!log.contains(secret), "the log contains {secret}:\n{log}");
    }
}

/// The fields of an access log line: words, and quoted strings whose `\"` and `\\` are
/// escapes. Panics on a quote that is not closed.
fn access_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {}
            '"' => {
                let mut field = String::from('"');
                loop {
                    match chars.next() {
                        Some('\\') => {
                            field.push('\\');
                            field.push(chars.next().expect("an escape is complete"));
                        }
                        Some('"') => break,
                        Some(c) => field.push(c),
                        None => panic!("unclosed quote in {line}"),
                    }
                }
                field.push('"');
                fields.push(field);
            }
            c => {
                let mut field = String::from(c);
                while let Some(c) = chars.next_if(|c| *c != ' ') {
                    field.push(c);
                }
                fields.push(field);
            }
        }
    }
    fields
}

/// Starts the binary with the test database and `env` set.
fn start_with(db: &TestDatabase, env: &[(&str, &str)]) -> Server {
    let mut c = command(&[]);
    c.env("DATABASE_URL", &db.connection_string);
    for (name, value) in env {
        c.env(name, value);
    }
    Server::start(c)
}

/// A client can write anything into `X-Forwarded-For`; only a configured proxy's word
/// counts, and then the right-most address that is not a proxy's is the client.
#[tokio::test]
async fn the_access_log_names_the_peer_and_believes_forwarding_headers_only_from_trusted_proxies() {
    let forged = "evil\" \"GET /audit-x HTTP/1.1\" 200";
    let db = TestDatabase::create().await;
    let client = reqwest::Client::new();
    let get = |server: &Server, rid: &str, forwarded_for: &str| {
        client
            .get(server.url("/clusters"))
            .bearer_auth(READ_TOKEN)
            .header("x-request-id", rid)
            .header("x-forwarded-for", forwarded_for)
            .send()
    };

    let direct = start_with(&db, &[]);
    get(&direct, "direct-1", forged).await.unwrap();
    get(&direct, "direct-2", "198.51.100.7").await.unwrap();
    for rid in ["direct-1", "direct-2"] {
        let line = direct.access_line(rid);
        assert!(
            line.starts_with("127.0.0.1 \"GET /clusters HTTP/1.1\" 200 "),
            "without trusted proxies the peer is the client: {line}"
        );
    }
    assert!(!direct.log().contains("/audit-x"), "{}", direct.log());
    drop(direct);

    let proxied = start_with(
        &db,
        &[(
            "FLUX_CATALOG_HTTP__TRUSTED_PROXIES",
            "127.0.0.1, 10.0.0.0/8",
        )],
    );
    get(&proxied, "proxied-1", "198.51.100.7, 203.0.113.9, 10.1.2.3")
        .await
        .unwrap();
    get(&proxied, "proxied-2", forged).await.unwrap();
    let line = proxied.access_line("proxied-1");
    assert!(
        line.starts_with("203.0.113.9 \"GET /clusters HTTP/1.1\" 200 "),
        "the right-most address that is not a trusted proxy: {line}"
    );
    let line = proxied.access_line("proxied-2");
    assert!(
        line.starts_with("127.0.0.1 \"GET /clusters HTTP/1.1\" 200 "),
        "what is not an address is not believed: {line}"
    );
    assert!(!proxied.log().contains("/audit-x"), "{}", proxied.log());
}

/// Quotes, backslashes and bytes outside printable ASCII in what a client sends are
/// escaped, so every request is one line of the same seven fields.
#[tokio::test]
async fn the_access_log_escapes_what_clients_write_so_a_request_is_one_line_of_fixed_fields() {
    let db = TestDatabase::create().await;
    let server = start_with(&db, &[]);
    let client = reqwest::Client::new();
    client
        .get(server.url("/clusters"))
        .bearer_auth(READ_TOKEN)
        .header("x-request-id", "agent-1")
        .header("user-agent", "x\" 200 0 0.1ms \"forged\\")
        .send()
        .await
        .unwrap();
    let answer = server.raw(
        format!(
            "GET /clusters HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READ_TOKEN}\r\n\
             X-Request-Id: agent-2\r\nUser-Agent: zo\u{eb}\t\u{202e}\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let line = server.access_line("agent-1");
    let fields = access_fields(&line);
    assert_eq!(fields.len(), 7, "{line}: {fields:?}");
    assert_eq!(fields[1], "\"GET /clusters HTTP/1.1\"", "{line}");
    assert_eq!(fields[2], "200", "{line}");
    assert_eq!(fields[5], r#""x\" 200 0 0.1ms \"forged\\""#, "{line}");

    let line = server.access_line("agent-2");
    let fields = access_fields(&line);
    assert_eq!(fields.len(), 7, "{line}: {fields:?}");
    assert_eq!(fields[5], r#""zo\xc3\xab\x09\xe2\x80\xae""#, "{line}");
}

/// Clients sometimes put a token in the query (`?access_token=`) or in the URL's userinfo;
/// they get 401, and the log shows neither.
#[tokio::test]
async fn the_access_log_never_shows_query_values_or_userinfo() {
    let db = TestDatabase::create().await;
    let server = start_with(&db, &[]);
    let r = reply(
        reqwest::Client::new()
            .get(server.url("/clusters?limit=5&access_token=query-secret-1"))
            .header("x-request-id", "query-1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let answer = server.raw(
        format!(
            "GET http://flux:userinfo-secret-2@127.0.0.1:{}/clusters?userinfo-secret-3 HTTP/1.1\r\n\
             Host: 127.0.0.1\r\nX-Request-Id: userinfo-1\r\nConnection: close\r\n\r\n",
            server.port
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let line = server.access_line("query-1");
    assert!(
        line.contains("\"GET /clusters?limit=<redacted>&access_token=<redacted> HTTP/1.1\" 401 "),
        "{line}"
    );
    let line = server.access_line("userinfo-1");
    assert!(line.contains("\"GET http://127.0.0.1:"), "{line}");
    let log = server.log();
    for secret in ["query-secret-1", "userinfo-secret-2", "userinfo-secret-3"] {
        assert!(!log.contains(secret), "the log contains {secret}:\n{log}");
    }
}

/// The fenced code blocks of section `heading` (a whole `## ` line) of `docs/<file>`, in
/// order, each with its language tag (`sh`, `sql`, ...).
pub fn documented_blocks(file: &str, heading: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("docs/{file} has no section {heading}"));
    let end = text[start + 1..]
        .find("\n## ")
        .map_or(text.len(), |i| start + 1 + i);
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text[start..end].lines() {
        let fence = line.trim_start().starts_with("```");
        match (open.as_mut(), fence) {
            (None, true) => {
                open = Some((
                    line.trim().trim_start_matches('`').to_owned(),
                    String::new(),
                ))
            }
            (Some(_), true) => blocks.extend(open.take()),
            (Some((_, body)), false) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, false) => {}
        }
    }
    blocks
}

/// Runs every curl command of the "Calling it" section of the API documentation, in order,
/// against `server` (loaded with the demo catalog, with the demo's tokens), and fails
/// unless each answers below 400.
pub fn run_the_api_examples(server: &Server) {
    let examples: String = documented_blocks("api.md", "## Calling it")
        .into_iter()
        .filter(|(language, _)| language == "sh")
        .map(|(_, body)| body)
        .collect();
    assert!(
        examples.matches("curl ").count() >= 30,
        "found too few examples:\n{examples}"
    );
    let body = std::env::temp_dir().join(format!("readme-{}", uuid::Uuid::new_v4().simple()));
    let script = format!(
        r#"set -euo pipefail
curl() {{
  local code
  code=$(command curl -sS -o "{body}" -w '%{{http_code}}' "$@")
  if [ "$code" -ge 400 ]; then echo "HTTP $code from: curl $*"; cat "{body}"; echo; exit 1; fi
}}
{examples}"#,
        body = body.display(),
        examples = examples.replace("http://127.0.0.1:8080", &server.url(""))
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("bash runs");
    let _ = std::fs::remove_file(&body);
    assert!(
        output.status.success(),
        "a documented example failed:\n{}{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
}

/// Every curl command of the "Calling it" section of the API documentation, run in order
/// against a server loaded with the demo catalog, answers below 400.
#[tokio::test]
async fn the_documented_examples_work() {
    let db = TestDatabase::create().await;
    let server = Server::start({
        let mut c = command(&[]);
        c.env("DATABASE_URL", &db.connection_string)
            .env("SEED_FILE", demo_catalog());
        c.env("AUTH_TOKEN", "demo-read-token")
            .env("CRUD_AUTH_TOKEN", "demo-write-token");
        c
    });
    run_the_api_examples(&server);
}

/// The database usually starts after the service in a cluster: the server listens at once,
/// answers /health, says on /ready why it is not ready (naming DATABASE_URL), and becomes
/// ready once the database arrives, migrations and seed included.
#[tokio::test]
async fn a_database_arriving_late_is_waited_for() {
    let dir = tempdir();
    let data = dir.join("late");
    // embedded-pg puts the socket beside the data directory: known before it starts.
    let socket_dir = dir.join("late.sock");
    let mut server = Server::spawn({
        let mut c = command(&[]);
        c.env(
            "DATABASE_URL",
            format!(
                "host={} dbname=postgres user=postgres connect_timeout=2",
                socket_dir.display()
            ),
        )
        .env("SEED_FILE", demo_catalog());
        c
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut waited_reason = String::new();
    while Instant::now() < deadline {
        assert_eq!(server.get("/health").0, 200, "{}", server.log());
        let (status, body) = server.get("/ready");
        assert_eq!(status, 503, "ready without a database: {body}");
        waited_reason = body;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        waited_reason.contains("DATABASE_URL"),
        "/ready names the database it waits for: {waited_reason}"
    );
    let log = server.log();
    assert!(
        log.contains("WARN") && log.contains("DATABASE_URL") && log.contains("retrying"),
        "each attempt is logged:\n{log}"
    );

    let options = embedded_pg::EmbeddedOptions {
        ephemeral: true,
        durable: false,
        ..embedded_pg::EmbeddedOptions::persistent(data.clone())
    };
    let database =
        tokio::task::spawn_blocking(move || embedded_pg::EmbeddedPostgres::start(options))
            .await
            .unwrap()
            .unwrap();
    server.wait_ready();
    let r = server
        .read("/api/v2/flux/clusters/demo-prod-01.k8s.example.com/platform-components")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["inputs"].as_array().unwrap().len(), 7, "seeded");
    server.terminate();
    assert!(server.wait(Duration::from_secs(30)), "{}", server.log());
    drop(database);
    std::fs::remove_dir_all(dir).ok();
}

/// A port in use fails at once, before any database work, naming LISTEN_ADDR. (Had it
/// tried the database first, it would wait for it forever: nothing listens there.)
#[test]
fn a_busy_port_fails_fast_naming_the_variable() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut child = command(&["serve"])
        .env("AUTH_TOKEN", READ_TOKEN)
        .env("LISTEN_ADDR", format!("localhost:{port}"))
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve kept running with its port taken");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("LISTEN_ADDR"), "{stderr}");
}

/// With the embedded default, a PostgreSQL that dies must not leave a server whose writes
/// fail forever while its probes say 200: it stops, non-zero, so its supervisor restarts it.
#[tokio::test]
async fn a_dead_embedded_postgresql_stops_the_server() {
    let dir = tempdir();
    let data = dir.join("pgdata");
    let mut server = Server::start({
        let mut c = command(&[]);
        c.env("FLUX_CATALOG_DATABASE__EMBEDDED_DATA_DIR", &data);
        c
    });
    let pid = std::fs::read_to_string(data.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server kept running without its database:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{}", server.log());
    assert!(
        server.log().contains("the embedded PostgreSQL ended"),
        "{}",
        server.log()
    );
    std::fs::remove_dir_all(dir).ok();
}

/// `FLUX_CATALOG_LOG_FORMAT=json`: every line the server writes is one JSON object, and an
/// access line carries its fields as keys of their own.
#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_access_fields_as_keys() {
    let db = TestDatabase::create().await;
    let server = start_with(&db, &[("FLUX_CATALOG_LOG_FORMAT", "json")]);
    reqwest::Client::new()
        .get(server.url("/clusters?access_token=leaked"))
        .bearer_auth(READ_TOKEN)
        .header("x-request-id", "json-probe-1")
        .header("user-agent", "probe\"agent")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("json-probe-1") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log();
    let mut access = None;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        for key in ["time", "level", "target", "message"] {
            assert!(object[key].is_string(), "{key} missing: {line}");
        }
        if object["request_id"] == "json-probe-1" {
            access = Some(object);
        }
    }
    let access = access.unwrap_or_else(|| panic!("no access line in:\n{log}"));
    assert_eq!(access["target"], "flux_catalog::access");
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["path"], "/clusters?access_token=<redacted>");
    assert_eq!(access["status"], 400, "an unknown parameter is refused");
    assert_eq!(access["client"], "127.0.0.1");
    assert!(access["duration_ms"].is_number(), "{access}");
    assert!(access["size"].is_u64(), "{access}");
    assert_eq!(access["user_agent"], "probe\\\"agent");
    assert!(!log.contains("leaked"), "{log}");
    assert!(!log.contains(READ_TOKEN), "{log}");
}

#[test]
fn an_unknown_log_format_is_refused_naming_the_variable() {
    let output = command(&["serve"])
        .env("FLUX_CATALOG_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FLUX_CATALOG_LOG_FORMAT") && stderr.contains("\"text\" or \"json\""),
        "{stderr}"
    );
}

/// `flux-catalog token create` against the database: the first admin credential needs no
/// token. Its secret is printed alone on stdout and nowhere else; `token list` shows no
/// secret; `token revoke` is seen by a running server within a second.
#[tokio::test]
async fn the_first_admin_credential_is_made_from_the_command_line() {
    let db = TestDatabase::create().await;
    let token = |args: &[&str]| {
        let mut all = vec!["token"];
        all.extend_from_slice(args);
        let output = command(&all)
            .env("DATABASE_URL", &db.connection_string)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{args:?}: {stderr}");
        (String::from_utf8(output.stdout).unwrap(), stderr)
    };
    let (stdout, stderr) = token(&[
        "create",
        "--name",
        "first-admin",
        "--scope",
        "admin",
        "--expires",
        "1d",
    ]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let admin = lines[0].to_owned();
    assert!(admin.starts_with("fcat_"), "{admin}");
    assert!(!stderr.contains(&admin), "{stderr}");

    let server = start_with(&db, &[]);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let created = loop {
        let r = reply(
            client
                .post(server.url("/tokens"))
                .header("x-api-key", &admin)
                .json(&json!({"name": "ci", "scopes": ["read"]}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        if r.status != 401 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(created.status, 201, "{}", created.text);
    let ci = created.body["token"].as_str().unwrap().to_owned();

    let (listed, _) = token(&["list"]);
    assert!(listed.contains("first-admin\tadmin\t"), "{listed}");
    assert!(listed.contains("ci\tread\t"), "{listed}");
    assert!(
        !listed.contains(&admin) && !listed.contains(&ci),
        "{listed}"
    );

    let read = |secret: String| {
        let client = client.clone();
        let url = server.url("/clusters");
        async move {
            client
                .get(url)
                .bearer_auth(secret)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // New credentials, like revocations, reach the server within a second.
    let issued = Instant::now();
    while read(ci.clone()).await != 200 {
        assert!(
            issued.elapsed() < Duration::from_secs(1),
            "not accepted yet"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token(&["revoke", "ci"]);
    let revoked = Instant::now();
    while read(ci.clone()).await != 401 {
        assert!(revoked.elapsed() < Duration::from_secs(1), "still accepted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = server.log();
    for secret in [&admin, &ci] {
        assert!(
            !log.contains(secret.as_str()),
            "the log shows a secret:\n{log}"
        );
    }
}
