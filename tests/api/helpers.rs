//! Test harness: a real PostgreSQL and a real HTTP server per test.
//!
//! With `DATABASE_URL` set, tests use that server (its database is only used to create
//! others); without it, the first test of the process starts a private, throw-away
//! PostgreSQL from the machine's installation. Each test gets its own database, copied
//! from a template migrated once, and its own server on a free port.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use embedded_pg::{EmbeddedOptions, EmbeddedPostgres};
use flux_catalog::settings::Settings;
use flux_catalog::startup::Application;
use flux_catalog::storage::connect::Connector;
use flux_catalog::storage::{PoolOptions, Store, migrate};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;

pub const READ_TOKEN: &str = "test-read-token";
pub const WRITE_TOKEN: &str = "test-write-token";

/// The PostgreSQL server of this test process.
struct TestServer {
    /// Points at a maintenance database (used to create and drop test databases).
    maintenance: tokio_postgres::Config,
    /// Builds a connection string for another database on the same server.
    connection_string: Box<dyn Fn(&str) -> String + Send + Sync>,
    _embedded: Option<EmbeddedPostgres>,
}

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let maintenance = tokio_postgres::Config::from_str(&url).expect("DATABASE_URL parses");
            TestServer {
                connection_string: Box::new(move |db| with_database(&url, db)),
                maintenance,
                _embedded: None,
            }
        }
        _ => {
            let embedded = EmbeddedPostgres::start(EmbeddedOptions::ephemeral_for_tests())
                .expect("start the test PostgreSQL (is the PostgreSQL server package installed?)");
            let base = embedded.connection_string("postgres");
            TestServer {
                maintenance: embedded.connect_config("postgres"),
                connection_string: Box::new(move |db| with_database(&base, db)),
                _embedded: Some(embedded),
            }
        }
    })
}

/// `conninfo` pointed at database `db`, in either URL or key=value form.
fn with_database(conninfo: &str, db: &str) -> String {
    if conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://") {
        let (base, query) = conninfo
            .split_once('?')
            .map_or((conninfo, None), |(b, q)| (b, Some(q)));
        let after_scheme = base.find("://").map_or(0, |i| i + 3);
        let base = match base[after_scheme..].find('/') {
            Some(slash) => &base[..after_scheme + slash],
            None => base,
        };
        match query {
            Some(q) => format!("{base}/{db}?{q}"),
            None => format!("{base}/{db}"),
        }
    } else {
        let kept: Vec<&str> = conninfo
            .split_whitespace()
            .filter(|part| !part.starts_with("dbname="))
            .collect();
        format!("{} dbname={db}", kept.join(" "))
    }
}

async fn connect(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// `conninfo` connecting as `user` (without a password), in either URL or key=value form.
pub fn with_user(conninfo: &str, user: &str) -> String {
    if let Some((scheme, rest)) = conninfo.split_once("://") {
        let host_and_rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
        format!("{scheme}://{user}@{host_and_rest}")
    } else {
        let kept: Vec<&str> = conninfo
            .split_whitespace()
            .filter(|part| !part.starts_with("user=") && !part.starts_with("password="))
            .collect();
        format!("{} user={user}", kept.join(" "))
    }
}

/// A connection string for database `db` on the test server (which may not exist).
pub fn connection_string_for(db: &str) -> String {
    (server().connection_string)(db)
}

fn config_for(db: &str) -> tokio_postgres::Config {
    tokio_postgres::Config::from_str(&(server().connection_string)(db))
        .expect("test connection string parses")
}

/// A template database migrated once per schema version: creating a test database from
/// it is a file copy, much faster than running the migrations each time.
async fn template_database() -> String {
    let mut hasher = Sha256::new();
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/sql"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        hasher.update(std::fs::read(file).unwrap());
    }
    let digest = hasher.finalize();
    let name = format!("flux_catalog_template_{}", &hex(&digest)[..16]);

    let admin = connect(&server().maintenance).await;
    // Other test processes may be doing the same right now.
    admin
        .execute("select pg_advisory_lock(7243001)", &[])
        .await
        .unwrap();
    let exists = admin
        .query_opt("select 1 from pg_database where datname = $1", &[&name])
        .await
        .unwrap()
        .is_some();
    if !exists {
        let building = format!("{name}_building");
        admin
            .batch_execute(&format!("drop database if exists {building}"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("create database {building}"))
            .await
            .unwrap();
        migrate::run(&Connector::plain(
            config_for(&building),
            "the test template",
        ))
        .await
        .expect("migrate the template");
        admin
            .batch_execute(&format!("alter database {building} rename to {name}"))
            .await
            .unwrap();
    }
    admin
        .execute("select pg_advisory_unlock(7243001)", &[])
        .await
        .unwrap();
    name
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh, migrated database for one test; dropped when the returned guard drops.
pub struct TestDatabase {
    pub name: String,
    pub config: tokio_postgres::Config,
    pub connection_string: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let template = template_database().await;
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&server().maintenance).await;
        admin
            .batch_execute(&format!("create database {name} template {template}"))
            .await
            .expect("create the test database");
        Self {
            config: config_for(&name),
            connection_string: (server().connection_string)(&name),
            name,
        }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.config).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        clean_up(vec![format!(
            "drop database if exists {} with (force)",
            self.name
        )]);
    }
}

/// Runs `statements` one by one on the maintenance database, ignoring failures: for guards
/// that remove what a test created (databases, roles) when it ends, even by a panic.
pub fn clean_up(statements: Vec<String>) {
    let maintenance = server().maintenance.clone();
    // Drop runs inside the test's runtime; a separate thread with its own runtime can
    // block on the cleanup without stalling it.
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            if let Ok((client, connection)) = maintenance.connect(NoTls).await {
                tokio::spawn(connection);
                for statement in statements {
                    let _ = client.batch_execute(&statement).await;
                }
            }
        });
    })
    .join();
}

/// A connection to the maintenance database, as the test server's superuser.
pub async fn maintenance_client() -> tokio_postgres::Client {
    connect(&server().maintenance).await
}

/// The settings a test server starts with: crud mode, distinct read and write tokens.
pub fn test_env(db: &TestDatabase) -> HashMap<String, String> {
    [
        ("API_MODE", "crud"),
        ("AUTH_TOKEN", READ_TOKEN),
        ("CRUD_AUTH_TOKEN", WRITE_TOKEN),
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("FLUX_CATALOG_HTTP__WORKERS", "2"),
        ("FLUX_CATALOG_DATABASE__POOL_SIZE", "8"),
        ("DATABASE_URL", db.connection_string.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// Shared by sibling servers; dropped with the last of them.
    pub db: Arc<TestDatabase>,
    /// A direct connection, to look at rows or to sabotage the schema.
    pub sql: tokio_postgres::Client,
}

/// A server in crud mode on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server on a fresh database, with the environment changed by `customize` (as the
/// process environment would change it).
pub async fn spawn_app_with(customize: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    spawn_on(Arc::new(TestDatabase::create().await), customize).await
}

async fn spawn_on(
    db: Arc<TestDatabase>,
    customize: impl FnOnce(&mut HashMap<String, String>),
) -> TestApp {
    // Server logs in test output, filtered by RUST_LOG (off unless set).
    let _ = env_logger::builder().is_test(true).try_init();
    let mut env = test_env(&db);
    customize(&mut env);
    let settings = Settings::load(None, &env).expect("test settings are valid");
    let env = env;
    let store = Store::new(
        settings
            .database
            .connector()
            .expect("tests always set DATABASE_URL"),
        &PoolOptions {
            max_size: settings.database.pool_size,
            wait_timeout: settings.database.wait_timeout,
            operation_timeout: settings.database.operation_timeout,
        },
    )
    .unwrap();
    let notifications = settings
        .database
        .connector()
        .expect("tests always set DATABASE_URL");
    let application =
        Application::build(&settings, store, notifications).expect("build the application");
    let address = format!("http://127.0.0.1:{}", application.port());
    // Tests that point the server at a broken database want to see it not ready.
    if env.get("DATABASE_URL") == Some(&db.connection_string) {
        assert!(
            application
                .snapshot()
                .wait_loaded(std::time::Duration::from_secs(30))
                .await,
            "the snapshot did not load"
        );
    }
    tokio::spawn(application.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        sql: db.client().await,
        db,
    }
}

impl TestApp {
    /// Another server on the same database, as a second replica would be.
    pub async fn sibling(&self, customize: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
        spawn_on(self.db.clone(), customize).await
    }
}

/// A response read whole: status, headers and body as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem's `code`, for error responses.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The fields named in a validation problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        text,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request with the write token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(WRITE_TOKEN)
    }

    pub async fn get(&self, path: &str) -> Reply {
        reply(
            self.request(reqwest::Method::GET, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// GET with the read token, as Flux does.
    pub async fn flux(&self, path: &str) -> Reply {
        reply(
            self.client
                .get(self.url(path))
                .bearer_auth(READ_TOKEN)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        reply(
            self.request(reqwest::Method::POST, path)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        reply(
            self.request(reqwest::Method::PUT, path)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        reply(
            self.request(reqwest::Method::PATCH, path)
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        reply(
            self.request(reqwest::Method::DELETE, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// POST that must succeed; returns the created resource.
    pub async fn create(&self, collection: &str, body: Value) -> Value {
        let reply = self.post(collection, &body).await;
        assert_eq!(
            reply.status, 201,
            "creating {body} in {collection}: {}",
            reply.text
        );
        reply.body
    }

    /// Rows in `table`, to prove what was (not) written.
    pub async fn count(&self, table: &str) -> i64 {
        self.sql
            .query_one(&format!("select count(*) from {table}"), &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Rows in every catalog table, to prove a refused request wrote nothing at all.
    pub async fn all_counts(&self) -> Vec<(&'static str, i64)> {
        let mut counts = Vec::new();
        for table in [
            "platform_components",
            "platform_component_dependencies",
            "namespaces",
            "rolebindings",
            "clusters",
            "cluster_platform_components",
            "cluster_namespaces",
            "cluster_rolebindings",
        ] {
            counts.push((table, self.count(table).await));
        }
        counts
    }

    /// A small catalog: cert-manager, ingress-nginx (depends on cert-manager), a namespace,
    /// a rolebinding, and cluster `demo-01` using them.
    pub async fn seed_demo(&self) {
        self.create("/platform_components", component("cert-manager", &[]))
            .await;
        self.create(
            "/platform_components",
            component("ingress-nginx", &["cert-manager"]),
        )
        .await;
        self.create(
            "/namespaces",
            json!({"id": "monitoring", "labels": {"team": "platform"}}),
        )
        .await;
        self.create(
            "/rolebindings",
            json!({"id": "platform-admins", "role": "cluster-admin",
                   "subjects": [{"kind": "Group", "name": "platform-team", "apiGroup": "rbac.authorization.k8s.io"}]}),
        )
        .await;
        self.create(
            "/clusters",
            cluster("demo-01", &["cert-manager", "ingress-nginx"]),
        )
        .await;
    }
}

/// `body` as the server shows it at `revision`.
pub fn at_revision(mut body: Value, revision: i64) -> Value {
    body["revision"] = json!(revision);
    body
}

/// A valid component body.
pub fn component(id: &str, depends_on: &[&str]) -> Value {
    json!({
        "id": id,
        "component_path": format!("charts/{id}"),
        "component_version": "1.0.0",
        "cluster_env_enabled": false,
        "oci_url": format!("oci://registry.example.com/{id}"),
        "oci_tag": "1.0.0",
        "depends_on": depends_on,
    })
}

/// A valid cluster body referencing these components (enabled, no overrides).
pub fn cluster(id: &str, components: &[&str]) -> Value {
    json!({
        "id": id,
        "cluster_name": id,
        "cluster_dns": format!("{id}.k8s.example.com"),
        "environment": "dev",
        "platform_components": components.iter().map(|c| json!({"id": c, "enabled": true})).collect::<Vec<_>>(),
    })
}
