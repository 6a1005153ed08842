//! Several server processes on one database, and the database going away under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use embedded_pg::{EmbeddedOptions, EmbeddedPostgres};
use serde_json::{Value, json};

use crate::helpers::{READ_TOKEN, TestDatabase, WRITE_TOKEN, reply, with_user};
use crate::process::{Server, command, demo_catalog};

const DEV_COMPONENTS: &str =
    "/api/v2/flux/clusters/demo-dev-01.k8s.example.com/platform-components";

/// The tag a server's Flux response gives cert-manager on demo-dev-01 (which uses the
/// catalog's), and whether the response says it is stale.
async fn cert_manager_tag(client: &reqwest::Client, server: &Server) -> (String, bool) {
    let r = reply(
        client
            .get(server.url(DEV_COMPONENTS))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let tag = r.body["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "cert-manager")
        .map(|i| i["source"]["oci_tag"].as_str().unwrap().to_owned())
        .unwrap();
    (tag, r.header("x-catalog-stale") == Some("true"))
}

async fn set_cert_manager_tag(
    client: &reqwest::Client,
    crud: &Server,
    tag: &str,
) -> crate::helpers::Reply {
    reply(
        client
            .patch(crud.url("/platform_components/cert-manager"))
            .bearer_auth(WRITE_TOKEN)
            .header("content-type", "application/merge-patch+json")
            .body(json!({"oci_tag": tag}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// How long until `server` serves `tag`, polling every 10 ms, up to `limit`.
async fn time_until_tag(
    client: &reqwest::Client,
    server: &Server,
    tag: &str,
    since: Instant,
    limit: Duration,
) -> Duration {
    loop {
        if cert_manager_tag(client, server).await.0 == tag {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < limit,
            "{tag} not visible after {limit:?}:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A crud server and two read-only replicas on one database. The replicas use a read-only
/// role of their own (no DDL rights: migrations off), so their connections can be cut
/// alone.
#[tokio::test]
async fn writes_reach_every_read_only_replica_within_a_second_also_after_they_lost_the_database() {
    let db = TestDatabase::create().await;
    let sql = db.client().await;
    let role = format!(
        "replica_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    sql.batch_execute(&format!(
        "create role {role} login;
         grant usage on schema public to {role};
         grant select on all tables in schema public to {role};"
    ))
    .await
    .unwrap();

    let crud = Server::start({
        let mut c = command(&[]);
        c.env("DATABASE_URL", &db.connection_string)
            .env("SEED_FILE", demo_catalog());
        c
    });
    let replicas: Vec<Server> = (0..2)
        .map(|_| {
            let mut c = command(&[]);
            c.env("API_MODE", "read-only")
                .env("DATABASE_URL", with_user(&db.connection_string, &role))
                .env("FLUX_CATALOG_DATABASE__MIGRATE_ON_START", "false");
            Server::start(c)
        })
        .collect();
    let client = reqwest::Client::new();
    for replica in &replicas {
        assert_eq!(
            cert_manager_tag(&client, replica).await.0,
            "v1.16.2",
            "the replica loaded the demo"
        );
    }

    // A write through the crud server reaches each replica within a second.
    let written = Instant::now();
    assert_eq!(
        set_cert_manager_tag(&client, &crud, "v1.16.9").await.status,
        200
    );
    for replica in &replicas {
        let took =
            time_until_tag(&client, replica, "v1.16.9", written, Duration::from_secs(5)).await;
        assert!(took < Duration::from_secs(1), "visible after {took:?}");
    }

    // Cut the replicas off. They keep serving the snapshot and say it is stale.
    sql.batch_execute(&format!(
        "alter role {role} nologin;
         select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}';"
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for replica in &replicas {
        assert_eq!(
            cert_manager_tag(&client, replica).await,
            ("v1.16.9".to_owned(), true)
        );
        let ready = reply(client.get(replica.url("/ready")).send().await.unwrap()).await;
        assert_eq!(ready.status, 200, "{}", ready.text);
        assert_eq!(ready.body["database"], "unavailable");
    }

    // A write while they are away reaches them once they are back.
    assert_eq!(
        set_cert_manager_tag(&client, &crud, "v1.16.10")
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for replica in &replicas {
        assert_eq!(
            cert_manager_tag(&client, replica).await.0,
            "v1.16.9",
            "still cut off"
        );
    }
    sql.batch_execute(&format!("alter role {role} login"))
        .await
        .unwrap();
    let restored = Instant::now();
    for replica in &replicas {
        // At most one poll interval, plus making a new connection.
        let took = time_until_tag(
            &client,
            replica,
            "v1.16.10",
            restored,
            Duration::from_secs(5),
        )
        .await;
        assert!(
            took < Duration::from_millis(1500),
            "visible {took:?} after the database came back"
        );
        assert_eq!(
            cert_manager_tag(&client, replica).await,
            ("v1.16.10".to_owned(), false)
        );
    }
    drop(replicas);
    drop(crud);
    sql.batch_execute(&format!(
        "select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}';
         drop owned by {role}; drop role {role};"
    ))
    .await
    .unwrap();
}

/// PostgreSQL stops while Flux is polling both servers: every poll is still answered, from
/// the snapshot; writes fail cleanly; once PostgreSQL is back the servers catch up, and
/// every write acknowledged before the outage is there.
#[tokio::test]
async fn flux_keeps_answering_while_postgres_is_down_and_replicas_catch_up_after() {
    // A short path keeps the socket beside the data directory, so it is the same after a restart.
    let dir = std::path::PathBuf::from(format!(
        "/tmp/fc-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let options = || EmbeddedOptions {
        durable: false,
        ..EmbeddedOptions::persistent(dir.join("pg"))
    };
    let postgres = EmbeddedPostgres::start(options()).expect("start PostgreSQL");
    postgres.ensure_database("catalog").await.unwrap();
    let url = postgres.connection_string("catalog");

    let crud = Server::start({
        let mut c = command(&[]);
        c.env("DATABASE_URL", &url).env("SEED_FILE", demo_catalog());
        c
    });
    let reader = Server::start({
        let mut c = command(&[]);
        c.env("API_MODE", "read-only").env("DATABASE_URL", &url);
        c
    });
    let client = reqwest::Client::new();
    let create_namespace = |id: String| {
        let request = client
            .post(crud.url("/namespaces"))
            .bearer_auth(WRITE_TOKEN)
            .json(&json!({"id": id}));
        async move { reply(request.send().await.unwrap()).await }
    };
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let id = format!("before-{i}");
        assert_eq!(create_namespace(id.clone()).await.status, 201);
        acknowledged.push(id);
    }

    // Flux polls both servers, all the time.
    let stop = Arc::new(AtomicBool::new(false));
    let paths: Vec<String> = ["demo-dev-01", "demo-qa-01", "demo-prod-01"]
        .iter()
        .flat_map(|c| {
            ["platform-components", "namespaces", "rolebindings"]
                .map(|e| format!("/api/v2/flux/clusters/{c}.k8s.example.com/{e}"))
        })
        .collect();
    let pollers: Vec<_> = [crud.url(""), reader.url("")]
        .into_iter()
        .flat_map(|base| [base.clone(), base])
        .enumerate()
        .map(|(n, base)| {
            let (client, stop, paths) = (client.clone(), stop.clone(), paths.clone());
            tokio::spawn(async move {
                let (mut answered, mut stale, mut failures) = (0u32, 0u32, Vec::new());
                let mut i = n;
                while !stop.load(Ordering::Relaxed) {
                    let path = &paths[i % paths.len()];
                    i += 1;
                    match client
                        .get(format!("{base}{path}"))
                        .bearer_auth(READ_TOKEN)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => {
                            answered += 1;
                            stale += u32::from(r.headers().get("x-catalog-stale").is_some());
                        }
                        Ok(r) => failures.push(format!("{path}: {}", r.status())),
                        Err(e) => failures.push(format!("{path}: {e}")),
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (answered, stale, failures)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The outage.
    tokio::task::spawn_blocking(move || postgres.stop())
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let refused = create_namespace("during".to_owned()).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.code(), "STORE_UNAVAILABLE");
    for server in [&crud, &reader] {
        let ready = reply(client.get(server.url("/ready")).send().await.unwrap()).await;
        assert_eq!(
            ready.status, 200,
            "ready while the snapshot is held: {}",
            ready.text
        );
        assert_eq!(ready.body["database"], "unavailable");
        assert!(
            ready.body["snapshot"]["age_seconds"].as_f64().unwrap() >= 1.0,
            "{}",
            ready.text
        );
        assert!(ready.body["database_error"].is_string());
    }

    // PostgreSQL comes back; the servers find it by themselves.
    let postgres = EmbeddedPostgres::start(options()).expect("restart PostgreSQL");
    let back = Instant::now();
    loop {
        let r = create_namespace("after".to_owned()).await;
        if r.status == 201 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "writes did not resume: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let written = Instant::now();
    assert_eq!(
        set_cert_manager_tag(&client, &crud, "v1.17.0").await.status,
        200
    );
    let took = time_until_tag(&client, &reader, "v1.17.0", written, Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_secs(1),
        "the reader caught up in {took:?}"
    );
    assert!(
        !cert_manager_tag(&client, &reader).await.1,
        "no longer stale"
    );

    stop.store(true, Ordering::Relaxed);
    let (mut answered, mut stale) = (0, 0);
    for poller in pollers {
        let (a, s, failures) = poller.await.unwrap();
        assert!(failures.is_empty(), "Flux requests failed: {failures:?}");
        answered += a;
        stale += s;
    }
    assert!(answered > 100, "the pollers ran: {answered}");
    assert!(
        stale > 0,
        "responses during the outage said they were stale"
    );

    for id in acknowledged
        .iter()
        .chain(std::iter::once(&"after".to_owned()))
    {
        let r = reply(
            client
                .get(crud.url(&format!("/namespaces/{id}")))
                .bearer_auth(READ_TOKEN)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            r.status, 200,
            "acknowledged write {id} is there: {}",
            r.text
        );
    }
    let r = reply(
        client
            .get(crud.url("/namespaces/during"))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 404, "the refused write left nothing");
    let body: Value = reply(
        client
            .get(reader.url("/api/v2/flux/clusters"))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await
    .body;
    assert_eq!(body["inputs"].as_array().unwrap().len(), 3);

    drop(reader);
    drop(crud);
    tokio::task::spawn_blocking(move || postgres.stop())
        .await
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(dir).ok();
}

/// A process's parent, from `/proc` (the fourth field, after the parenthesised name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split(' ').nth(1)?.parse().ok()
}

/// Sends `signal` to a PostgreSQL server's postmaster and every process it started. A
/// `runuser` above the postmaster (when the tests run as root) stops itself when its child
/// stops, so `CONT` goes to it too.
fn signal_postgres(data_dir: &std::path::Path, signal: &str) {
    let pid_file = std::fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
    let postmaster: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>()
            && parent_of(pid) == Some(postmaster)
        {
            pids.push(pid);
        }
    }
    if signal == "CONT" {
        pids.extend(parent_of(postmaster));
    }
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{signal} {}", pids.join(" ")))
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

/// A database that stops answering without closing its connections (frozen here; a
/// partition that drops packets looks the same) must not hold requests forever: reads and
/// writes that need it answer 503 once the operation timeout has passed, Flux keeps being
/// served from the snapshot, and everything resumes when the database does.
#[tokio::test]
async fn a_database_that_stops_answering_gets_503_not_a_hang() {
    let dir = crate::process::tempdir();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let postgres = EmbeddedPostgres::start(EmbeddedOptions {
        durable: false,
        ..EmbeddedOptions::persistent(dir.join("pg"))
    })
    .expect("start PostgreSQL");
    postgres.ensure_database("catalog").await.unwrap();
    let crud = Server::start({
        let mut c = command(&[]);
        c.env("DATABASE_URL", postgres.connection_string("catalog"))
            .env("SEED_FILE", demo_catalog())
            .env("FLUX_CATALOG_DATABASE__OPERATION_TIMEOUT_MS", "1500");
        c
    });
    // Without the bound these requests would wait as long as the database is frozen; the
    // client gives up well after the bound, so a hang fails the test instead of stalling it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let get = |path: &str| {
        let request = client.get(crud.url(path)).bearer_auth(READ_TOKEN);
        async move { reply(request.send().await.expect("an answer, not a hang")).await }
    };
    let patch_node_count = |count: u32| {
        let request = client
            .patch(crud.url("/clusters/demo-dev-01"))
            .bearer_auth(WRITE_TOKEN)
            .header("content-type", "application/merge-patch+json")
            .json(&json!({"node_count": count}));
        async move { reply(request.send().await.expect("an answer, not a hang")).await }
    };
    assert_eq!(get("/clusters/demo-dev-01").await.status, 200);

    signal_postgres(postgres.data_dir(), "STOP");
    let read = get("/clusters/demo-dev-01").await;
    assert_eq!(read.status, 503, "{}", read.text);
    assert_eq!(read.code(), "STORE_UNAVAILABLE");
    assert_eq!(read.header("retry-after"), Some("5"));
    let write = patch_node_count(7).await;
    assert_eq!(write.status, 503, "{}", write.text);
    assert!(
        write.body["detail"]
            .as_str()
            .unwrap()
            .contains("did not answer within 1500 ms"),
        "{}",
        write.text
    );
    let flux = get(DEV_COMPONENTS).await;
    assert_eq!(
        flux.status, 200,
        "Flux is served from the snapshot: {}",
        flux.text
    );
    let ready = get("/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.text);

    signal_postgres(postgres.data_dir(), "CONT");
    let back = Instant::now();
    loop {
        let r = patch_node_count(9).await;
        if r.status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "writes did not resume: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get("/clusters/demo-dev-01").await.body["node_count"], 9);
    loop {
        let ready = get("/ready").await;
        if ready.body["database"] == "ok" {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "the snapshot did not find the database again: {}",
            ready.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    drop(crud);
    tokio::task::spawn_blocking(move || postgres.stop())
        .await
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(dir).ok();
}
