//! docs/operating.md, exactly as written: the database roles section's SQL and commands run
//! in order on a fresh database, then each server does its job with only its own role's
//! rights and PostgreSQL refuses what a role must not do; the backup section's commands
//! give a database that serves the same and carries on.

use std::collections::HashMap;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_postgres::error::SqlState;

use crate::helpers::{
    Reply, clean_up, connection_string_for, maintenance_client, reply, with_user,
};
use crate::process::{
    Server, command, demo_catalog, documented_blocks, run_the_api_examples, tempdir,
};

const ROLES: &str = "## Database roles and privileges";
const BACKUPS: &str = "## Backups and restore";
/// The databases the sections create; the roles are those they create with `CREATE ROLE`.
const DOCUMENTED_DATABASES: [&str; 2] = ["flux_catalog", "flux_catalog_restored"];
const OWNER: &str = "flux_catalog_migrate";
const READ_TOKEN: &str = "demo-read-token";
const WRITE_TOKEN: &str = "demo-write-token";

/// `text` with each whole identifier found in `names` replaced: `flux_catalog` is renamed,
/// `flux_catalog_schema_history` is not.
fn rename(text: &str, names: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars().map(Some).chain([None]) {
        if let Some(c) = c.filter(|c| c.is_ascii_alphanumeric() || *c == '_') {
            word.push(c);
            continue;
        }
        out.push_str(names.get(&word).unwrap_or(&word));
        word.clear();
        out.extend(c);
    }
    out
}

/// The statements of a SQL block, one by one as psql sends them (`CREATE DATABASE` cannot
/// share a transaction with anything).
fn statements(sql: &str) -> Vec<String> {
    sql.lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The roles a SQL block creates, with their passwords.
fn created_roles(sql: &str) -> Vec<(String, String)> {
    statements(sql)
        .iter()
        .filter_map(|statement| {
            let words: Vec<&str> = statement.split_whitespace().collect();
            match words.as_slice() {
                ["CREATE", "ROLE", name, "LOGIN", "PASSWORD", password] => {
                    Some(((*name).to_owned(), password.trim_matches('\'').to_owned()))
                }
                _ => None,
            }
        })
        .collect()
}

/// A connection string to `database` on the test server, as `user` with `password`.
fn as_role(database: &str, user: &str, password: &str) -> String {
    let base = connection_string_for(database);
    if base.contains("://") {
        with_user(&base, &format!("{user}:{password}"))
    } else {
        format!("{} password={password}", with_user(&base, user))
    }
}

/// A documented URL pointed at the test server, keeping its user, password and database
/// (the host is the documentation's example).
fn on_test_server(url: &str) -> String {
    let config = tokio_postgres::Config::from_str(url).unwrap();
    as_role(
        config.get_dbname().unwrap(),
        config.get_user().unwrap(),
        std::str::from_utf8(config.get_password().unwrap()).unwrap(),
    )
}

/// `sh` with every `postgresql://` URL (the documentation quotes them) on the test server.
fn with_test_urls(sh: &str) -> String {
    let mut out = String::new();
    let mut rest = sh;
    while let Some(start) = rest.find("postgresql://") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find(|c: char| c == '"' || c == '\'' || c.is_whitespace())
            .map_or(rest.len(), |i| start + i);
        out.push_str(&on_test_server(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

async fn connect(conninfo: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::Config::from_str(conninfo)
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect with {conninfo}: {e}"));
    tokio::spawn(connection);
    client
}

/// One documented command line: `NAME=value ... flux-catalog SUBCOMMAND`.
struct Invocation {
    subcommand: String,
    env: Vec<(String, String)>,
}

fn invocations(sh: &str) -> Vec<Invocation> {
    sh.replace("\\\n", " ")
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|line| {
            let mut words = line.split_whitespace();
            let mut env = Vec::new();
            for word in words.by_ref() {
                match word.split_once('=') {
                    Some((name, value)) => env.push((name.to_owned(), value.to_owned())),
                    None => {
                        assert_eq!(word, "flux-catalog", "a documented command: {line}");
                        break;
                    }
                }
            }
            let subcommand = words.next().expect("a subcommand").to_owned();
            Invocation { subcommand, env }
        })
        .collect()
}

/// What a test run creates outside any one database, removed when it ends.
struct Created {
    databases: Vec<String>,
    roles: Vec<String>,
}

impl Drop for Created {
    fn drop(&mut self) {
        let databases = self
            .databases
            .iter()
            .map(|d| format!("drop database if exists {d} with (force)"));
        let roles = self
            .roles
            .iter()
            .map(|r| format!("drop role if exists {r}"));
        clean_up(databases.chain(roles).collect());
    }
}

/// The roles section, done: a migrated database, and a crud and a read-only server on it,
/// each as its own role. Roles are cluster-wide and tests run in parallel, so each run
/// gives the documented names its own.
struct Documented {
    /// This run's name for each documented role and database.
    names: HashMap<String, String>,
    /// By this run's role names.
    passwords: HashMap<String, String>,
    crud: Server,
    /// The crud server's documented environment, on the test server.
    crud_env: Vec<(String, String)>,
    read_only: Server,
    /// Last: the servers stop before their database goes.
    _created: Created,
}

impl Documented {
    async fn set_up() -> Self {
        let blocks = documented_blocks("operating.md", ROLES);
        let (first_language, first) = &blocks[0];
        assert_eq!(first_language, "sql");
        assert!(first.starts_with("-- as a superuser\n"), "{first}");

        let run = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let roles = created_roles(first);
        assert_eq!(roles.len(), 3, "three roles: {first}");
        let mut names: HashMap<String, String> = roles
            .into_iter()
            .map(|(role, _)| {
                let renamed = format!("test_{run}_{}", role.trim_start_matches("flux_catalog_"));
                (role, renamed)
            })
            .collect();
        let created = Created {
            databases: DOCUMENTED_DATABASES
                .iter()
                .map(|d| d.replacen("flux_catalog", &format!("test_{run}"), 1))
                .collect(),
            roles: names.values().cloned().collect(),
        };
        names.extend(
            DOCUMENTED_DATABASES
                .iter()
                .map(|d| d.to_string())
                .zip(created.databases.iter().cloned()),
        );
        let passwords = created_roles(&rename(first, &names)).into_iter().collect();

        let mut servers: HashMap<String, (Server, Vec<(String, String)>)> = HashMap::new();
        for (language, body) in &blocks {
            let body = rename(body, &names);
            match language.as_str() {
                "sql" => run_sql(&names, &passwords, &body).await,
                "sh" => {
                    for invocation in invocations(&body) {
                        let env: Vec<(String, String)> = invocation
                            .env
                            .into_iter()
                            .map(|(k, v)| match k.as_str() {
                                "DATABASE_URL" => (k, on_test_server(&v)),
                                _ => (k, v),
                            })
                            .collect();
                        match invocation.subcommand.as_str() {
                            "migrate" => {
                                let output = command(&["migrate"]).envs(env).output().unwrap();
                                assert!(
                                    output.status.success(),
                                    "{}",
                                    String::from_utf8_lossy(&output.stderr)
                                );
                            }
                            "serve" => {
                                let mode = env
                                    .iter()
                                    .find(|(k, _)| k == "API_MODE")
                                    .map(|(_, v)| v.clone())
                                    .expect("each documented server names its mode");
                                servers.insert(mode, (serve(&env), env));
                            }
                            other => panic!("an undocumented subcommand: {other}"),
                        }
                    }
                }
                other => panic!("a {other} block in {ROLES}"),
            }
        }
        let (crud, crud_env) = servers.remove("crud").expect("a crud server");
        let (read_only, _) = servers.remove("read-only").expect("a read-only server");
        Documented {
            names,
            passwords,
            crud,
            crud_env,
            read_only,
            _created: created,
        }
    }

    /// A connection string as the documented `role` to the documented `database`.
    fn conninfo(&self, role: &str, database: &str) -> String {
        let role = &self.names[role];
        as_role(&self.names[database], role, &self.passwords[role])
    }
}

/// Runs a documented SQL block (renamed with `names`) as its first line says: `-- as a
/// superuser`, or `-- as <owner>, in <database>`.
async fn run_sql(names: &HashMap<String, String>, passwords: &HashMap<String, String>, sql: &str) {
    let who = sql.lines().next().unwrap_or_default();
    let client = if who == "-- as a superuser" {
        maintenance_client().await
    } else {
        let owner = &names[OWNER];
        let database = &names[DOCUMENTED_DATABASES[0]];
        assert_eq!(who, format!("-- as {owner}, in {database}"), "who runs it");
        connect(&as_role(database, owner, &passwords[owner])).await
    };
    for statement in statements(sql) {
        client
            .batch_execute(&statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// `flux-catalog serve` with a documented environment, the demo's tokens, and in crud mode
/// the demo catalog.
fn serve(env: &[(String, String)]) -> Server {
    let mut c = command(&[]);
    c.envs(env.iter().cloned())
        .env("AUTH_TOKEN", READ_TOKEN)
        .env("CRUD_AUTH_TOKEN", WRITE_TOKEN);
    if env.iter().any(|(k, v)| k == "API_MODE" && v == "crud") {
        c.env("SEED_FILE", demo_catalog());
    }
    Server::start(c)
}

/// `GET path` with the demo's read token.
async fn read(client: &reqwest::Client, server: &Server, path: &str) -> Reply {
    reply(
        client
            .get(server.url(path))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn assert_refused(result: Result<u64, tokio_postgres::Error>, what: &str) {
    let error = result.expect_err(what);
    assert_eq!(
        error.code(),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{what}: {error}"
    );
}

#[tokio::test]
async fn the_documented_roles_can_do_their_jobs_and_nothing_more() {
    let documented = Documented::set_up().await;
    let (crud, read_only) = (&documented.crud, &documented.read_only);

    // The crud role does everything the API offers (seeded the demo, every write of the
    // API examples: create, update, delete, rollback, the audit log).
    run_the_api_examples(crud);

    // The read-only replica follows: a new namespace, and the Flux responses, are the same
    // on both servers.
    let client = reqwest::Client::new();
    let created = client
        .post(crud.url("/namespaces"))
        .bearer_auth(WRITE_TOKEN)
        .json(&json!({"id": "seen-by-replicas"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let flux = "/api/v2/flux/clusters/demo-prod-01.k8s.example.com/platform-components";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = read(&client, read_only, "/namespaces/seen-by-replicas").await;
        let (on_replica, on_crud) = (
            read(&client, read_only, flux).await,
            read(&client, crud, flux).await,
        );
        if seen.status == 200 && on_replica.status == 200 && on_replica.text == on_crud.text {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never caught up: {} {}\n{}",
            seen.status,
            on_replica.text,
            read_only.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // With migrations on, a role without DDL rights cannot start.
    let mut with_migrations = Server::spawn({
        let mut c = command(&[]);
        c.envs(documented.crud_env.iter().cloned())
            .env("FLUX_CATALOG_DATABASE__MIGRATE_ON_START", "true");
        c
    });
    assert!(!with_migrations.wait(Duration::from_secs(60)));
    assert!(
        with_migrations
            .log()
            .contains("permission denied for schema public"),
        "{}",
        with_migrations.log()
    );

    // What PostgreSQL refuses each role.
    let database = DOCUMENTED_DATABASES[0];
    let reader = connect(&documented.conninfo("flux_catalog_readonly", database)).await;
    assert_refused(
        reader
            .execute("insert into namespaces (id) values ('refused')", &[])
            .await,
        "a write as the read-only role",
    );
    // It records when credentials were used, and may change nothing else of them.
    reader
        .execute("update credentials set last_used_at = now()", &[])
        .await
        .expect("the read-only role records last use");
    for (sql, what) in [
        (
            "update credentials set scopes = '{admin}'",
            "widening a credential as the read-only role",
        ),
        ("delete from credentials", "revoking as the read-only role"),
    ] {
        assert_refused(reader.execute(sql, &[]).await, what);
    }
    let writer = connect(&documented.conninfo("flux_catalog_crud", database)).await;
    let audited: i64 = writer
        .query_one("select count(*) from audit_log", &[])
        .await
        .unwrap()
        .get(0);
    assert!(audited > 30, "the examples were audited: {audited}");
    for (sql, what) in [
        ("delete from audit_log", "deleting audit records"),
        (
            "update change_log set cluster_ids = '{}'",
            "rewriting the change log",
        ),
        ("truncate change_log", "truncating the change log"),
        (
            "delete from flux_catalog_schema_history",
            "rewriting the migration history",
        ),
        ("drop table clusters", "DDL as the crud role"),
        (
            "create table mine (id int)",
            "creating tables as the crud role",
        ),
    ] {
        assert_refused(writer.execute(sql, &[]).await, what);
    }
}

/// What a client sees of a server: every Flux response (body and ETag), the audit log.
async fn what_clients_see(client: &reqwest::Client, server: &Server) -> Vec<(String, String)> {
    let clusters = read(client, server, "/api/v2/flux/clusters").await;
    assert_eq!(clusters.status, 200, "{}", clusters.text);
    let mut paths = vec!["/api/v2/flux/clusters".to_owned()];
    for cluster in clusters.body["inputs"].as_array().unwrap() {
        let dns = cluster["cluster_dns"].as_str().unwrap();
        for endpoint in ["platform-components", "namespaces", "rolebindings"] {
            paths.push(format!("/api/v2/flux/clusters/{dns}/{endpoint}"));
        }
    }
    assert_eq!(paths.len(), 10, "the demo's three clusters");
    let mut seen = Vec::new();
    for path in paths {
        let r = read(client, server, &path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let etag = r.header("etag").unwrap_or_default().to_owned();
        seen.push((format!("{path} {etag}"), r.text));
    }
    let audit = reply(
        client
            .get(server.url("/audit?limit=100"))
            .bearer_auth(WRITE_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    seen.push(("/audit".to_owned(), audit.text));
    seen
}

/// The change-log version a server has applied, from `/ready`.
async fn applied_version(client: &reqwest::Client, server: &Server) -> i64 {
    let ready = reply(client.get(server.url("/ready")).send().await.unwrap()).await;
    ready.body["snapshot"]["version"].as_i64().unwrap()
}

#[tokio::test]
async fn the_documented_backup_restores_what_clients_saw_and_carries_on_from_there() {
    let documented = Documented::set_up().await;
    run_the_api_examples(&documented.crud);
    let client = reqwest::Client::new();
    let before = what_clients_see(&client, &documented.crud).await;
    let version = applied_version(&client, &documented.crud).await;
    let component = read(
        &client,
        &documented.crud,
        "/platform_components/cert-manager",
    )
    .await;
    let revision = component.body["revision"].as_i64().unwrap();

    // The section's commands, in order, from a directory of their own (the dump's file).
    let dir = tempdir();
    for (language, body) in documented_blocks("operating.md", BACKUPS) {
        let body = rename(&body, &documented.names);
        match language.as_str() {
            "sql" => run_sql(&documented.names, &documented.passwords, &body).await,
            "sh" => {
                let output = Command::new("bash")
                    .arg("-ec")
                    .arg(with_test_urls(&body))
                    .current_dir(&dir)
                    .output()
                    .unwrap();
                assert!(
                    output.status.success(),
                    "{body}{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            other => panic!("a {other} block in {BACKUPS}"),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // The crud server, as documented, on the restored database.
    let restored_database = documented.conninfo("flux_catalog_crud", DOCUMENTED_DATABASES[1]);
    let env: Vec<(String, String)> = documented
        .crud_env
        .iter()
        .map(|(k, v)| match k.as_str() {
            "DATABASE_URL" => (k.clone(), restored_database.clone()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let restored = serve(&env);
    let after = what_clients_see(&client, &restored).await;
    assert_eq!(before.len(), after.len());
    for (before, after) in before.iter().zip(&after) {
        assert_eq!(before, after, "the same after the restore");
    }

    // Revisions, the change log and the audit log carry on where the dump left them.
    let updated = reply(
        client
            .patch(restored.url("/platform_components/cert-manager"))
            .bearer_auth(WRITE_TOKEN)
            .header("content-type", "application/merge-patch+json")
            .header("if-match", format!("\"{revision}\""))
            .body(r#"{"oci_tag": "v1.16.9"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["revision"], revision + 1);
    assert_eq!(applied_version(&client, &restored).await, version + 1);
}
