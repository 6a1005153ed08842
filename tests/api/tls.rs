//! TLS to PostgreSQL: a private server that takes TCP connections over TLS only (`hostssl`,
//! no `host` line), and the real binary connecting to it with each `sslmode`.
//!
//! The server is shared by the tests of this file (each uses its own database) and stops
//! when the test process ends, however it ends: a watchdog shell stops it once the pipe
//! only this process writes to reaches end of file, then removes its directory.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use flux_catalog::storage::connect::{Connector, RootCert, SslMode, Tls};
use serde_json::Value;

use crate::helpers::{READ_TOKEN, WRITE_TOKEN, cluster, component, reply};
use crate::process::{Server, command};

/// How long a `flux-catalog migrate` run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);

const WATCHDOG: &str = r#"
dir=$1
shift
"$@" </dev/null >>"$dir/postgres.log" 2>&1 &
pid=$!
while read -r _; do :; done
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf -- "$dir"
"#;

/// The shared server: listens on 127.0.0.1 and 127.0.0.2, with a certificate for
/// `localhost` and `127.0.0.1` signed by `ca`.
struct TlsServer {
    port: u16,
    dir: PathBuf,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that signed nothing here.
    other_ca: PathBuf,
    /// Its end of file stops the server.
    _stop: Mutex<ChildStdin>,
}

fn server() -> &'static TlsServer {
    static SERVER: OnceLock<TlsServer> = OnceLock::new();
    // On a thread of its own: starting waits on a runtime of its own, which cannot run
    // inside the test's.
    SERVER.get_or_init(|| {
        std::thread::spawn(TlsServer::start)
            .join()
            .expect("start the TLS PostgreSQL")
    })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` from the PostgreSQL installation.
fn postgres_bin(program: &str) -> PathBuf {
    embedded_pg::find_bin_dir(None)
        .expect("the PostgreSQL server binaries are installed")
        .join(program)
}

/// `program`, run as the `postgres` user when we are root (initdb and postgres refuse to
/// run as root).
fn as_postgres(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    command.current_dir("/");
    command
}

/// A CA certificate and its key, with a distinct name so the other CA is not mistaken for it.
fn new_ca(name: &str) -> (rcgen::CertificateParams, rcgen::KeyPair) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    (params, rcgen::KeyPair::generate().unwrap())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TlsServer {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "flux-catalog-tls-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

        let (ca_params, ca_key) = new_ca("flux-catalog test CA");
        let (other_params, other_key) = new_ca("another test CA");
        let mut server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        server_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

        let ca = dir.join("ca.crt");
        let other_ca = dir.join("other-ca.crt");
        std::fs::write(&ca, ca_params.self_signed(&ca_key).unwrap().pem()).unwrap();
        std::fs::write(
            &other_ca,
            other_params.self_signed(&other_key).unwrap().pem(),
        )
        .unwrap();
        std::fs::write(dir.join("server.crt"), server_cert.pem()).unwrap();
        let key = dir.join("server.key");
        std::fs::write(&key, server_key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown to the postgres user");
        }

        let data = dir.join("data");
        let output = as_postgres(postgres_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "initdb: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // TCP only over TLS: no plain `host` line.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostssl all all 127.0.0.2/32 trust\n\
             hostssl all all ::1/128 trust\n",
        )
        .unwrap();

        let port = free_port();
        let mut watchdog = as_postgres("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(&dir)
            .arg(postgres_bin("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            // ::1 too, in case `localhost` resolves to it; a machine without IPv6 only warns.
            .args(["-c", "listen_addresses=127.0.0.1,127.0.0.2,::1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "ssl=on", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!(
                "ssl_cert_file={}",
                dir.join("server.crt").display()
            ))
            .arg("-c")
            .arg(format!("ssl_key_file={}", key.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stop = watchdog.stdin.take().unwrap();
        // Reaped by nobody: the watchdog outlives this handle, and ends with the process.
        drop(watchdog);
        let server = TlsServer {
            port,
            dir,
            ca,
            other_ca,
            _stop: Mutex::new(stop),
        };
        server.wait_accepting();
        server
    }

    /// Waits until a TLS connection (checked against the CA) gets an answer.
    fn wait_accepting(&self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        runtime.block_on(async {
            loop {
                match self.admin().await {
                    Ok(_) => return,
                    Err(error) => assert!(
                        Instant::now() < deadline,
                        "the TLS PostgreSQL did not start: {error}\n{}",
                        self.log()
                    ),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }

    fn log(&self) -> String {
        let mut log = String::new();
        let _ = std::fs::File::open(self.dir.join("postgres.log"))
            .and_then(|mut f| f.read_to_string(&mut log));
        log
    }

    /// A connection as the test's own client (verify-full against the CA), to database `db`.
    async fn connect_to(
        &self,
        db: &str,
    ) -> Result<tokio_postgres::Client, flux_catalog::storage::connect::ConnectError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host("localhost")
            .port(self.port)
            .user("postgres")
            .dbname(db)
            .application_name("tls-test")
            .connect_timeout(Duration::from_secs(5));
        let tls = Tls::new(SslMode::VerifyFull, Some(RootCert::File(self.ca.clone()))).unwrap();
        let (client, connection) = Connector::new(config, tls, "the test").connect().await?;
        tokio::spawn(connection);
        Ok(client)
    }

    async fn admin(
        &self,
    ) -> Result<tokio_postgres::Client, flux_catalog::storage::connect::ConnectError> {
        self.connect_to("postgres").await
    }

    /// A new, empty database for one test.
    async fn create_database(&self) -> String {
        let name = format!("tls_{}", uuid::Uuid::new_v4().simple());
        self.admin()
            .await
            .unwrap()
            .batch_execute(&format!("create database {name}"))
            .await
            .unwrap();
        name
    }

    /// `postgresql://postgres@HOST:PORT/DB?QUERY`.
    fn url(&self, host: &str, db: &str, query: &str) -> String {
        let url = format!("postgresql://postgres@{host}:{}/{db}", self.port);
        if query.is_empty() {
            url
        } else {
            format!("{url}?{query}")
        }
    }
}

/// `flux-catalog migrate` with `env`; whether it succeeded, and what it logged.
fn migrate(env: &[(&str, String)]) -> (bool, String) {
    let mut command = command(&["migrate"]);
    for (variable, value) in env {
        command.env(variable, value);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "flux-catalog migrate did not finish within {RUN_LIMIT:?}: {}",
                reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.success(), reader.join().unwrap())
}

/// Asserts that a migrate run succeeded, and that the migrations are in the database.
async fn assert_migrates(env: &[(&str, String)], db: &str, case: &str) {
    let (ok, log) = migrate(env);
    assert!(ok, "{case}: migrate failed:\n{log}");
    let applied: i64 = server()
        .connect_to(db)
        .await
        .unwrap()
        .query_one("select count(*) from flux_catalog_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert!(applied > 0, "{case}: no migration recorded");
}

/// Asserts that a migrate run failed with a message containing each of `expected`.
fn assert_refused(env: &[(&str, String)], case: &str, expected: &[&str]) -> String {
    let (ok, log) = migrate(env);
    assert!(!ok, "{case}: migrate should have failed:\n{log}");
    for part in expected {
        assert!(log.contains(part), "{case}: {part:?} missing from:\n{log}");
    }
    log
}

/// `flux-catalog serve` with `env`, until it logs a line containing `needle` (then it is
/// stopped) or `RUN_LIMIT` passes (then the test fails); what it logged.
fn serve_until_logged(env: &[(&str, String)], needle: &str) -> String {
    let mut command = command(&["serve"]);
    command
        .env("AUTH_TOKEN", READ_TOKEN)
        .env("LISTEN_ADDR", "127.0.0.1:0");
    for (variable, value) in env {
        command.env(variable, value);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let mut log = String::new();
    let found = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
                if line.contains(needle) {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        found,
        "{needle:?} was not logged within {RUN_LIMIT:?}:\n{log}"
    );
    log
}

fn url_env(url: String) -> Vec<(&'static str, String)> {
    vec![("DATABASE_URL", url)]
}

#[tokio::test]
async fn verify_full_serves_over_encrypted_connections_only() {
    let server = server();
    let db = server.create_database().await;
    let url = server.url(
        "localhost",
        &db,
        &format!("sslmode=verify-full&sslrootcert={}", server.ca.display()),
    );
    let app = tokio::task::spawn_blocking(move || {
        let mut c = command(&[]);
        c.env("DATABASE_URL", url);
        Server::start(c)
    })
    .await
    .unwrap();
    let log = app.log();
    assert!(
        log.contains("sslmode=verify-full"),
        "the start-up log names the TLS settings:\n{log}"
    );

    let client = reqwest::Client::new();
    for (collection, body) in [
        ("/platform_components", component("cert-manager", &[])),
        ("/clusters", cluster("tls-01", &["cert-manager"])),
    ] {
        let r = reply(
            client
                .post(app.url(collection))
                .bearer_auth(WRITE_TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 201, "{collection}: {}", r.text);
    }
    // The snapshot catches up through the LISTEN connection (or its poll).
    let deadline = Instant::now() + Duration::from_secs(10);
    let inputs = loop {
        let r = reply(
            client
                .get(app.url("/api/v2/flux/clusters/tls-01.k8s.example.com/platform-components"))
                .bearer_auth(READ_TOKEN)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if r.status == 200 {
            break r.body["inputs"].clone();
        }
        assert!(Instant::now() < deadline, "no Flux inputs: {}", r.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        inputs.as_array().map(Vec::len),
        Some(1),
        "one component: {inputs}"
    );
    assert_eq!(inputs[0]["id"], Value::from("cert-manager"));

    // Every connection of the service is encrypted, the LISTEN one included. (Unencrypted
    // ones could not exist: the server has no `host` line; this checks the view agrees.)
    let admin = server.admin().await.unwrap();
    let row = admin
        .query_one(
            "select count(*) filter (where s.ssl),
                    count(*) filter (where not s.ssl),
                    count(*) filter (where s.ssl and a.query ilike 'listen %')
               from pg_stat_ssl s join pg_stat_activity a using (pid)
              where a.usename = 'postgres' and a.application_name = 'flux-catalog'
                and a.datname = $1",
            &[&db],
        )
        .await
        .unwrap();
    let (encrypted, plain, listening): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert!(encrypted >= 2, "pool and LISTEN connections: {encrypted}");
    assert_eq!(plain, 0, "unencrypted connections from the service");
    assert_eq!(listening, 1, "the LISTEN connection is encrypted");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_naming_sslrootcert() {
    let server = server();
    let db = server.create_database().await;
    let other = server.other_ca.display().to_string();
    let with_password = server
        .url(
            "localhost",
            &db,
            &format!("sslmode=verify-full&sslrootcert={other}"),
        )
        .replace("postgres@", "postgres:s3cret-pw@");
    let log = assert_refused(
        &url_env(with_password.clone()),
        "another CA",
        &[
            &format!("cannot connect to PostgreSQL at localhost:{}", server.port),
            "DATABASE_URL",
            &format!("sslrootcert={other}"),
            "TLS: invalid peer certificate",
            "not signed by a CA in sslrootcert",
        ],
    );
    assert!(
        !log.contains("s3cret-pw"),
        "the password is never shown:\n{log}"
    );
    // Without migrations at start-up, the pool's first connection says the same.
    let log = tokio::task::spawn_blocking(move || {
        serve_until_logged(
            &[
                ("DATABASE_URL", with_password),
                (
                    "FLUX_CATALOG_DATABASE__MIGRATE_ON_START",
                    "false".to_owned(),
                ),
            ],
            "cannot connect to PostgreSQL",
        )
    })
    .await
    .unwrap();
    assert!(
        log.contains("DATABASE_URL; sslmode=verify-full, sslrootcert=")
            && log.contains("TLS: invalid peer certificate"),
        "{log}"
    );
    assert!(
        !log.contains("s3cret-pw"),
        "the password is never shown:\n{log}"
    );
    // verify-ca checks the chain too.
    assert_refused(
        &url_env(server.url(
            "localhost",
            &db,
            &format!("sslmode=verify-ca&sslrootcert={other}"),
        )),
        "another CA, verify-ca",
        &["DATABASE_URL", "TLS: invalid peer certificate"],
    );
    // require with a CA behaves as verify-ca, as in libpq.
    assert_refused(
        &url_env(server.url(
            "localhost",
            &db,
            &format!("sslmode=require&sslrootcert={other}"),
        )),
        "another CA, require",
        &["as with verify-ca", "TLS: invalid peer certificate"],
    );
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let server = server();
    let db = server.create_database().await;
    let ca = server.ca.display().to_string();
    assert_refused(
        &url_env(server.url(
            "127.0.0.2",
            &db,
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        )),
        "an address not in the certificate",
        &[
            &format!("cannot connect to PostgreSQL at 127.0.0.2:{}", server.port),
            "DATABASE_URL",
            "TLS: invalid peer certificate: certificate not valid for name \"127.0.0.2\"",
            "verify-full checks that the host name",
        ],
    );
    // A name not in the certificate, in key=value form (`hostaddr` is where it connects).
    let keyword_form = |mode: &str| {
        format!(
            "host=db.invalid hostaddr=127.0.0.1 port={} user=postgres dbname={db} \
             sslmode={mode} sslrootcert='{ca}'",
            server.port
        )
    };
    assert_refused(
        &url_env(keyword_form("verify-full")),
        "a name not in the certificate",
        &[
            "DATABASE_URL",
            "certificate not valid for name \"db.invalid\"",
        ],
    );
    assert_migrates(
        &url_env(server.url(
            "127.0.0.2",
            &db,
            &format!("sslmode=verify-ca&sslrootcert={ca}"),
        )),
        &db,
        "verify-ca to 127.0.0.2",
    )
    .await;
    assert_migrates(
        &url_env(keyword_form("verify-ca")),
        &db,
        "verify-ca to db.invalid",
    )
    .await;
}

#[tokio::test]
async fn require_and_prefer_encrypt_without_a_ca_and_disable_is_turned_away() {
    let server = server();
    let db = server.create_database().await;
    assert_migrates(
        &url_env(server.url("127.0.0.2", &db, "sslmode=require")),
        &db,
        "require without a CA",
    )
    .await;
    assert_migrates(
        &url_env(server.url("localhost", &db, "")),
        &db,
        "prefer, the default",
    )
    .await;
    assert_refused(
        &url_env(server.url("127.0.0.1", &db, "sslmode=disable")),
        "disable against a TLS-only server",
        &["DATABASE_URL; sslmode=disable", "no encryption"],
    );
}

#[tokio::test]
async fn the_ssl_settings_apply_when_the_url_does_not_set_them() {
    let server = server();
    let db = server.create_database().await;
    let ca = server.ca.display().to_string();
    let other = server.other_ca.display().to_string();
    let plain_url = server.url("localhost", &db, "");
    assert_migrates(
        &[
            ("DATABASE_URL", plain_url.clone()),
            ("FLUX_CATALOG_DATABASE__SSL_MODE", "verify-full".to_owned()),
            ("FLUX_CATALOG_DATABASE__SSL_ROOT_CERT", ca.clone()),
        ],
        &db,
        "verify-full from the settings",
    )
    .await;
    assert_refused(
        &[
            ("DATABASE_URL", plain_url.clone()),
            ("FLUX_CATALOG_DATABASE__SSL_MODE", "verify-full".to_owned()),
            ("FLUX_CATALOG_DATABASE__SSL_ROOT_CERT", other.clone()),
        ],
        "another CA from the settings",
        &[
            "sslrootcert from FLUX_CATALOG_DATABASE__SSL_ROOT_CERT",
            "sslmode from FLUX_CATALOG_DATABASE__SSL_MODE",
            "TLS: invalid peer certificate",
        ],
    );
    // The URL's sslmode wins: disable, which this server turns away.
    assert_refused(
        &[
            (
                "DATABASE_URL",
                server.url("127.0.0.1", &db, "sslmode=disable"),
            ),
            ("FLUX_CATALOG_DATABASE__SSL_MODE", "verify-full".to_owned()),
            ("FLUX_CATALOG_DATABASE__SSL_ROOT_CERT", ca.clone()),
        ],
        "the URL's sslmode beats the setting",
        &["sslmode=disable", "no encryption"],
    );
    // The URL's sslrootcert wins too.
    assert_migrates(
        &[
            (
                "DATABASE_URL",
                server.url("localhost", &db, &format!("sslrootcert={ca}")),
            ),
            ("FLUX_CATALOG_DATABASE__SSL_MODE", "verify-full".to_owned()),
            ("FLUX_CATALOG_DATABASE__SSL_ROOT_CERT", other),
        ],
        &db,
        "the URL's sslrootcert beats the setting",
    )
    .await;
    // Values that cannot work stop start-up before any connection, naming the setting.
    assert_refused(
        &[
            ("DATABASE_URL", plain_url.clone()),
            ("FLUX_CATALOG_DATABASE__SSL_MODE", "verify".to_owned()),
        ],
        "a bad mode",
        &[
            "FLUX_CATALOG_DATABASE__SSL_MODE",
            "\"verify\" is not one of",
        ],
    );
    assert_refused(
        &[(
            "DATABASE_URL",
            server.url("localhost", &db, "sslmode=verify"),
        )],
        "a bad mode in the URL",
        &[
            "database.url (environment variable DATABASE_URL): sslmode \"verify\" is not one of \
           disable, prefer, require, verify-ca, verify-full",
        ],
    );
    let missing = server.dir.join("missing.crt").display().to_string();
    assert_refused(
        &[
            ("DATABASE_URL", plain_url),
            ("FLUX_CATALOG_DATABASE__SSL_MODE", "verify-ca".to_owned()),
            ("FLUX_CATALOG_DATABASE__SSL_ROOT_CERT", missing.clone()),
        ],
        "a missing CA file",
        &["FLUX_CATALOG_DATABASE__SSL_ROOT_CERT", &missing],
    );
}

#[tokio::test]
async fn the_system_trust_store_is_used_without_a_ca_file() {
    let server = server();
    let db = server.create_database().await;
    // SSL_CERT_FILE stands in for the system's trust store.
    let with_store = |url: String, store: &Path| {
        vec![
            ("DATABASE_URL", url),
            ("SSL_CERT_FILE", store.display().to_string()),
        ]
    };
    assert_migrates(
        &with_store(
            server.url("localhost", &db, "sslrootcert=system"),
            &server.ca,
        ),
        &db,
        "sslrootcert=system (verify-full by default)",
    )
    .await;
    assert_migrates(
        &with_store(
            server.url("localhost", &db, "sslmode=verify-full"),
            &server.ca,
        ),
        &db,
        "verify-full without sslrootcert",
    )
    .await;
    assert_refused(
        &with_store(
            server.url("localhost", &db, "sslmode=verify-full"),
            &server.other_ca,
        ),
        "a trust store without the CA",
        &[
            "CA from the system's trust store",
            "TLS: invalid peer certificate",
        ],
    );
    assert_refused(
        &with_store(
            server.url("localhost", &db, "sslmode=require&sslrootcert=system"),
            &server.ca,
        ),
        "a weak mode with the system's store",
        &[
            "DATABASE_URL",
            "sslmode require may not be used with sslrootcert=system",
        ],
    );
}
