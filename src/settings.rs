//! Configuration: built-in defaults, then an optional file, then environment variables.
//!
//! Environment variables use the names users know from the API reference (`API_MODE`,
//! `AUTH_TOKEN`, `CRUD_AUTH_TOKEN`, `DATABASE_URL`, `LISTEN_ADDR`, `SEED_FILE`); every other
//! setting is `FLUX_CATALOG_<SECTION>__<KEY>`, e.g. `FLUX_CATALOG_HTTP__MAX_BODY_BYTES`.

use std::collections::HashMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use config::{Config, Environment, File};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::Environments;
use crate::storage::connect::{ConnectionString, Connector, RootCert, SslMode, Tls};

/// Which endpoints a server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Flux endpoints and reads only; writes answer 405. The default, and what replicas
    /// that only serve Flux run.
    ReadOnly,
    /// Reads and writes.
    Crud,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read-only" => Ok(Self::ReadOnly),
            "crud" => Ok(Self::Crud),
            other => Err(format!("must be \"read-only\" or \"crud\", got {other:?}")),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReadOnly => "read-only",
            Self::Crud => "crud",
        })
    }
}

/// Everything the server needs, parsed and checked once at start-up.
#[derive(Clone)]
pub struct Settings {
    pub api_mode: Mode,
    pub listen_addr: SocketAddr,
    /// Grants reads (and writes when no write token is set).
    pub auth_token: Option<SecretString>,
    /// Grants reads and writes in crud mode.
    pub crud_auth_token: Option<SecretString>,
    pub environments: Environments,
    /// A catalog document loaded at start-up.
    pub seed_file: Option<PathBuf>,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub snapshot: SnapshotSettings,
    /// What every cluster's Flux inputs must stay within; writes that break it are refused.
    pub flux: crate::domain::impact::FluxLimits,
    /// `/metrics` needs the read token.
    pub metrics_require_token: bool,
    /// Text lines or JSON objects (see `logging`).
    pub log_format: crate::logging::Format,
    pub rate_limit: RateLimitSettings,
    pub cors: CorsSettings,
    /// Keys that were set but mean nothing here, for a warning.
    pub unknown_keys: Vec<String>,
}

#[derive(Clone)]
pub struct DatabaseSettings {
    /// `None`: run the embedded PostgreSQL.
    pub url: Option<SecretString>,
    /// TLS to `url`'s server: `sslmode` and `sslrootcert` from the URL, else the `ssl_mode`
    /// and `ssl_root_cert` settings; CA certificates already loaded.
    pub tls: Tls,
    /// Names where the URL and TLS settings came from, for connection errors.
    tls_label: String,
    pub pool_size: usize,
    /// How long a request waits for a database connection before answering 503.
    pub wait_timeout: Duration,
    /// How long one operation on the database (a read, a whole write, a batch of a
    /// snapshot load) may take before the database counts as unavailable.
    pub operation_timeout: Duration,
    /// Apply migrations at start-up (under an advisory lock). Turn off when a separate job
    /// migrates and the server's role has no DDL rights.
    pub migrate_on_start: bool,
    pub embedded_data_dir: PathBuf,
    pub embedded_bin_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For`/`Forwarded` headers the access log and the
    /// rate limits believe.
    pub trusted_proxies: TrustedProxies,
    /// Connections served at once, over all workers; more wait in the listen backlog.
    pub max_connections: usize,
    /// A connection whose response makes no progress for this long (a client that stopped
    /// reading) is closed.
    pub send_timeout: Duration,
    /// How long a request body may take to arrive in full; then 408 and the connection closes.
    pub body_timeout: Duration,
    /// Writes (dry runs included) processed at once; more wait up to the database's
    /// `wait_timeout`, then get 503.
    pub max_concurrent_writes: usize,
    /// Requests with more header fields are refused with 431.
    pub max_header_count: usize,
    /// Requests whose header fields (names and values) add up to more are refused with 431.
    pub max_header_bytes: usize,
    /// Request bodies nested deeper (objects and arrays) are refused with 400.
    pub max_json_depth: usize,
}

/// The most header fields the HTTP library parses at all: `http.max_header_count` can only
/// be lower.
pub const HEADER_COUNT_CEILING: usize = 96;

/// The networks of the reverse proxies in front of the server. Forwarding headers are
/// believed only from a peer in one of them: anyone else can write anything there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Addresses (`10.0.0.7`, `::1`) or networks in CIDR notation (`10.0.0.0/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut networks = Vec::new();
        for entry in entries.iter().map(|e| e.as_ref().trim()) {
            if entry.is_empty() {
                continue;
            }
            let network = match entry.parse::<std::net::IpAddr>() {
                Ok(address) => ipnet::IpNet::from(address),
                Err(_) => entry.parse::<ipnet::IpNet>().map_err(|_| {
                    format!("{entry:?} is neither an IP address nor a network like 10.0.0.0/8")
                })?,
            };
            networks.push(network.trunc());
        }
        Ok(Self(networks))
    }

    /// Whether `address` (an IPv4-mapped IPv6 address counts as the IPv4 one) is a proxy's.
    pub fn contains(&self, address: std::net::IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|network| network.contains(&address))
    }
}

/// How many requests each client may make; see `http::rate_limit` for who counts as a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Flux endpoints with a valid token, per token and client address.
    pub flux: RateQuota,
    /// Every other endpoint with a valid token, per token.
    pub api: RateQuota,
    /// Requests without a valid token, and the OpenAPI documents, per client address.
    pub anonymous: RateQuota,
    /// Most clients tracked per budget; beyond it, new clients share one budget.
    pub max_clients: usize,
}

/// A token bucket: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    pub per_minute: u32,
    pub burst: u32,
}

/// Which browser origins may call the API (CORS). Empty: none, and no CORS headers at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsSettings {
    /// Exact origins (`https://ui.example.com`, lowercase, no path).
    pub allowed_origins: Vec<String>,
    /// `*` was listed: any origin may read the public paths (probes, OpenAPI documents).
    pub any_origin_on_public_paths: bool,
    /// How long a browser may cache a preflight's answer.
    pub max_age: Duration,
}

impl CorsSettings {
    fn check(raw: RawCors) -> Result<Self, SettingsError> {
        let mut settings = Self {
            max_age: Duration::from_secs(raw.max_age_secs),
            ..Self::default()
        };
        for entry in raw.allowed_origins.iter().map(|e| e.trim()) {
            match entry {
                "" => {}
                "*" => settings.any_origin_on_public_paths = true,
                origin => settings.allowed_origins.push(
                    serialized_origin(origin).map_err(|e| invalid("cors.allowed_origins", e))?,
                ),
            }
        }
        Ok(settings)
    }
}

/// `origin` as browsers send it in `Origin`: `scheme://host[:port]`, lowercase, nothing
/// after the authority. Anything else could never match, so it is refused.
fn serialized_origin(origin: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        Err(format!(
            "{origin:?} is not an origin like https://ui.example.com or http://localhost:3000 \
             ({why}); `*` opens only the public paths"
        ))
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return refuse("no scheme");
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return refuse("the scheme must be http or https");
    }
    if authority.is_empty()
        || authority.chars().any(|c| {
            matches!(c, '/' | '?' | '#' | '@' | '*') || c.is_whitespace() || c.is_control()
        })
    {
        return refuse("only scheme, host and port; no path, not even a trailing slash");
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return refuse("the port is not a number");
    }
    Ok(origin.to_ascii_lowercase())
}

/// How the in-memory snapshot the Flux endpoints answer from follows the database.
#[derive(Debug, Clone)]
pub struct SnapshotSettings {
    /// How often the change counter is checked, besides change notifications.
    pub poll_interval: Duration,
    /// How long that check may take before the database counts as unreachable.
    pub check_timeout: Duration,
}

/// The file and environment layers, before checking.
#[derive(Deserialize)]
struct RawSettings {
    api_mode: String,
    listen_addr: String,
    auth_token: Option<String>,
    crud_auth_token: Option<String>,
    environments: Vec<String>,
    seed_file: Option<PathBuf>,
    database: RawDatabase,
    http: RawHttp,
    flux: RawFlux,
    snapshot: RawSnapshot,
    metrics: RawMetrics,
    log_format: String,
    rate_limit: RawRateLimit,
    cors: RawCors,
}

#[derive(Deserialize)]
struct RawMetrics {
    require_token: bool,
}

#[derive(Deserialize)]
struct RawRateLimit {
    enabled: bool,
    flux_per_minute: u32,
    flux_burst: u32,
    api_per_minute: u32,
    api_burst: u32,
    anonymous_per_minute: u32,
    anonymous_burst: u32,
    max_clients: usize,
}

#[derive(Deserialize)]
struct RawCors {
    allowed_origins: Vec<String>,
    max_age_secs: u64,
}

#[derive(Deserialize)]
struct RawSnapshot {
    poll_interval_ms: u64,
    check_timeout_ms: u64,
}

#[derive(Deserialize)]
struct RawFlux {
    max_inputs: usize,
    max_response_bytes: usize,
}

#[derive(Deserialize)]
struct RawDatabase {
    url: Option<String>,
    ssl_mode: Option<String>,
    ssl_root_cert: Option<String>,
    pool_size: usize,
    wait_timeout_ms: u64,
    operation_timeout_ms: u64,
    migrate_on_start: bool,
    embedded_data_dir: PathBuf,
    embedded_bin_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
struct RawHttp {
    max_body_bytes: usize,
    workers: usize,
    shutdown_timeout_secs: u64,
    trusted_proxies: Vec<String>,
    max_connections: usize,
    send_timeout_ms: u64,
    body_timeout_ms: u64,
    max_concurrent_writes: usize,
    max_header_count: usize,
    max_header_bytes: usize,
    max_json_depth: usize,
}

/// Environment variables with the API reference's names, and the keys they set.
const REFERENCE_VARIABLES: [(&str, &str); 6] = [
    ("API_MODE", "api_mode"),
    ("AUTH_TOKEN", "auth_token"),
    ("CRUD_AUTH_TOKEN", "crud_auth_token"),
    ("DATABASE_URL", "database.url"),
    ("LISTEN_ADDR", "listen_addr"),
    ("SEED_FILE", "seed_file"),
];

const PREFIX: &str = "FLUX_CATALOG";
/// Read by the command line, not a setting.
pub const CONFIG_FILE_VARIABLE: &str = "FLUX_CATALOG_CONFIG";

/// The environment variable that sets `key`.
pub fn variable_of(key: &str) -> String {
    REFERENCE_VARIABLES
        .iter()
        .find(|(_, k)| *k == key)
        .map(|(v, _)| (*v).to_owned())
        .unwrap_or_else(|| format!("{PREFIX}_{}", key.replace('.', "__").to_ascii_uppercase()))
}

/// Where a key can be set from, for error messages.
fn sources_of(key: &str) -> String {
    format!("{key} (environment variable {})", variable_of(key))
}

/// Every setting and what it does, for `serve --help` and the documentation; a test checks
/// it against the settings' types and defaults.
pub const DESCRIPTIONS: [(&str, &str); 42] = [
    (
        "api_mode",
        "read-only (Flux endpoints and reads) or crud (also writes)",
    ),
    (
        "listen_addr",
        "address to listen on, an IP or a host name with a port",
    ),
    ("auth_token", "the read token (required to serve)"),
    ("crud_auth_token", "the write token, in crud mode"),
    (
        "environments",
        "the environment tiers clusters may be in, comma-separated",
    ),
    (
        "seed_file",
        "catalog document whose missing resources are created at start-up",
    ),
    (
        "database.url",
        "PostgreSQL connection string; without it, an embedded PostgreSQL",
    ),
    (
        "database.ssl_mode",
        "disable, prefer, require, verify-ca or verify-full, when DATABASE_URL sets no sslmode",
    ),
    (
        "database.ssl_root_cert",
        "CA certificates (PEM file, or system) when DATABASE_URL sets no sslrootcert",
    ),
    ("database.pool_size", "connections to the database"),
    (
        "database.wait_timeout_ms",
        "how long a request waits for a connection",
    ),
    (
        "database.operation_timeout_ms",
        "how long one database operation may take",
    ),
    ("database.migrate_on_start", "apply migrations at start-up"),
    (
        "database.embedded_data_dir",
        "the embedded PostgreSQL's data directory",
    ),
    (
        "database.embedded_bin_dir",
        "where initdb and postgres are (default: searched)",
    ),
    (
        "http.max_body_bytes",
        "larger request bodies are refused with 413",
    ),
    ("http.workers", "worker threads; 0 is one per core"),
    (
        "http.shutdown_timeout_secs",
        "how long in-flight requests may finish on SIGTERM or SIGINT",
    ),
    (
        "http.trusted_proxies",
        "reverse proxies (IPs or CIDR networks, comma-separated) whose X-Forwarded-For the access log and the rate limits believe",
    ),
    (
        "http.max_connections",
        "connections served at once; more wait to be accepted",
    ),
    (
        "http.send_timeout_ms",
        "a response that makes no progress this long (a client not reading) closes its connection",
    ),
    (
        "http.body_timeout_ms",
        "how long a request body may take to arrive; then 408",
    ),
    (
        "http.max_concurrent_writes",
        "writes and dry runs processed at once; more wait up to database.wait_timeout_ms, then 503",
    ),
    (
        "http.max_header_count",
        "requests with more header fields get 431 (at most 96)",
    ),
    (
        "http.max_header_bytes",
        "requests whose header fields add up to more bytes get 431",
    ),
    (
        "http.max_json_depth",
        "request bodies nested deeper get 400",
    ),
    (
        "snapshot.poll_interval_ms",
        "how often the snapshot checks the database besides notifications",
    ),
    ("snapshot.check_timeout_ms", "how long that check may take"),
    ("log_format", "text, or json for one JSON object per line"),
    (
        "metrics.require_token",
        "whether /metrics needs the read token (default: no token)",
    ),
    (
        "flux.max_inputs",
        "most inputs one cluster may have on an endpoint",
    ),
    (
        "flux.max_response_bytes",
        "largest Flux response a write may produce",
    ),
    (
        "rate_limit.enabled",
        "limit requests per client (429 with Retry-After beyond the budget)",
    ),
    (
        "rate_limit.flux_per_minute",
        "Flux endpoints: requests per minute per token and client address",
    ),
    (
        "rate_limit.flux_burst",
        "Flux endpoints: requests at once per token and client address",
    ),
    (
        "rate_limit.api_per_minute",
        "every other endpoint: requests per minute per token",
    ),
    (
        "rate_limit.api_burst",
        "every other endpoint: requests at once per token",
    ),
    (
        "rate_limit.anonymous_per_minute",
        "requests per minute per client address without a valid token (and the OpenAPI documents)",
    ),
    (
        "rate_limit.anonymous_burst",
        "requests at once per client address without a valid token",
    ),
    (
        "rate_limit.max_clients",
        "most clients tracked per budget; beyond it, new clients share one",
    ),
    (
        "cors.allowed_origins",
        "browser origins allowed to call the API, comma-separated; * opens only the public paths; empty: no CORS",
    ),
    (
        "cors.max_age_secs",
        "how long browsers may cache a CORS preflight answer",
    ),
];

/// The environment variables `serve` reads, one line each, with their defaults.
pub fn variables_help() -> String {
    let defaults = layers(None, &HashMap::new()).ok();
    let mut text = String::from("Environment variables:\n");
    for (key, about) in DESCRIPTIONS {
        let default = defaults
            .as_ref()
            .and_then(|d| d.get::<config::Value>(key).ok())
            .map(|v| match v.clone().into_array() {
                Ok(list) => list
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                Err(_) => v.to_string(),
            });
        text.push_str(&format!("  {:<46} {about}", variable_of(key)));
        if let Some(default) = default {
            text.push_str(&format!(" [default: {default}]"));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "  {CONFIG_FILE_VARIABLE:<46} a YAML file of these settings, below the environment\n"
    ));
    text
}

/// Configuration that cannot be used, with a message for the operator.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(String);

impl Settings {
    /// Loads the layers: defaults, then `config_file` if given, then `env` (normally the
    /// process environment).
    pub fn load(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, SettingsError> {
        let config = layers(config_file, env).map_err(|e| SettingsError(e.to_string()))?;
        // Keys that mean nothing here are not an error, only a warning: a Kubernetes Service
        // named `flux-catalog` injects `FLUX_CATALOG_SERVICE_HOST` and friends into every
        // pod of its namespace. What is known is what `RawSettings` has a field for.
        let mut unknown_keys = Vec::new();
        let raw: RawSettings =
            serde_ignored::deserialize(config, |path| unknown_keys.push(path.to_string()))
                .map_err(|e| SettingsError(describe_config_error(e)))?;
        unknown_keys.sort();
        Self::check(raw, unknown_keys)
    }

    /// Loads from the process environment.
    pub fn from_process(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load(config_file, &std::env::vars().collect())
    }

    /// Checks every value, naming the setting (and its environment variable) of the first
    /// one that cannot be used.
    fn check(raw: RawSettings, unknown_keys: Vec<String>) -> Result<Self, SettingsError> {
        Ok(Settings {
            api_mode: raw.api_mode.parse().map_err(|e| invalid("api_mode", e))?,
            listen_addr: listen_addr(&raw.listen_addr)?,
            auth_token: token("auth_token", raw.auth_token)?,
            crud_auth_token: token("crud_auth_token", raw.crud_auth_token)?,
            environments: Environments::new(raw.environments)
                .map_err(|e| invalid("environments", e))?,
            seed_file: raw.seed_file.filter(|p| !p.as_os_str().is_empty()),
            database: DatabaseSettings::check(raw.database)?,
            http: HttpSettings::check(raw.http)?,
            snapshot: SnapshotSettings {
                poll_interval: Duration::from_millis(raw.snapshot.poll_interval_ms.max(10)),
                check_timeout: Duration::from_millis(raw.snapshot.check_timeout_ms.max(10)),
            },
            flux: flux_limits(raw.flux)?,
            metrics_require_token: raw.metrics.require_token,
            log_format: raw
                .log_format
                .parse()
                .map_err(|e| invalid("log_format", e))?,
            rate_limit: rate_limit(raw.rate_limit)?,
            cors: CorsSettings::check(raw.cors)?,
            unknown_keys,
        })
    }

    /// What validating resources depends on in this deployment.
    pub fn rules(&self) -> crate::domain::Rules {
        crate::domain::Rules {
            environments: self.environments.clone(),
        }
    }

    /// The read token; serving without one is refused.
    pub fn require_tokens(&self) -> Result<(), SettingsError> {
        if self.auth_token.is_none() {
            return Err(SettingsError(format!(
                "{} is required to serve: every endpoint but /health, /ready and the OpenAPI \
                 document needs a token",
                sources_of("auth_token")
            )));
        }
        Ok(())
    }
}

/// A value of `key` that cannot be used, and why.
fn invalid(key: &str, reason: impl fmt::Display) -> SettingsError {
    SettingsError(format!("{}: {reason}", sources_of(key)))
}

/// At least 1, or refused naming `key`.
fn positive<T: PartialOrd + From<u8>>(key: &str, value: T) -> Result<T, SettingsError> {
    if value < T::from(1) {
        return Err(invalid(key, "must be at least 1"));
    }
    Ok(value)
}

/// An address to listen on: an IP address or a host name (`localhost:8080`) with a port.
fn listen_addr(value: &str) -> Result<SocketAddr, SettingsError> {
    let problem = |reason: String| {
        invalid(
            "listen_addr",
            format!(
                "{value:?} is not an address to listen on like 0.0.0.0:8080 or localhost:8080: {reason}"
            ),
        )
    };
    if let Ok(address) = value.parse() {
        return Ok(address);
    }
    value
        .to_socket_addrs()
        .map_err(|e| problem(e.to_string()))?
        .next()
        .ok_or_else(|| problem("the name has no address".to_owned()))
}

/// A token from the environment; empty means unset.
fn token(key: &str, value: Option<String>) -> Result<Option<SecretString>, SettingsError> {
    match value {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) if t.chars().any(|c| c.is_whitespace() || c.is_control()) => Err(invalid(
            key,
            "must not contain whitespace or control characters (a trailing newline from a file?)",
        )),
        Some(t) => Ok(Some(SecretString::from(t))),
    }
}

impl DatabaseSettings {
    fn check(raw: RawDatabase) -> Result<Self, SettingsError> {
        let ssl_mode = match raw.ssl_mode.filter(|m| !m.is_empty()) {
            None => None,
            Some(mode) => Some(
                mode.parse::<SslMode>()
                    .map_err(|e| invalid("database.ssl_mode", e))?,
            ),
        };
        let ssl_root_cert = raw
            .ssl_root_cert
            .filter(|c| !c.is_empty())
            .map(|c| RootCert::from(c.as_str()));
        let (url, tls, tls_label) = match raw.url.filter(|u| !u.is_empty()) {
            // The embedded server is reached over a Unix socket: no TLS.
            None => (None, Tls::disabled(), "the embedded PostgreSQL".to_owned()),
            Some(url) => {
                // Parse now so a typo stops start-up; the message never repeats the URL,
                // which may hold a password.
                let parsed = ConnectionString::parse(&url)
                    .map_err(|e| invalid("database.url", e.to_string()))?;
                let (tls, label) = tls_for(&parsed, ssl_mode, ssl_root_cert)
                    .map_err(|(key, reason)| invalid(key, reason))?;
                (Some(SecretString::from(url)), tls, label)
            }
        };
        Ok(Self {
            url,
            tls,
            tls_label,
            pool_size: positive("database.pool_size", raw.pool_size)?,
            wait_timeout: Duration::from_millis(raw.wait_timeout_ms),
            operation_timeout: Duration::from_millis(positive(
                "database.operation_timeout_ms",
                raw.operation_timeout_ms,
            )?),
            migrate_on_start: raw.migrate_on_start,
            embedded_data_dir: raw.embedded_data_dir,
            embedded_bin_dir: raw.embedded_bin_dir,
        })
    }
}

impl HttpSettings {
    fn check(raw: RawHttp) -> Result<Self, SettingsError> {
        Ok(Self {
            max_body_bytes: positive("http.max_body_bytes", raw.max_body_bytes)?,
            workers: raw.workers,
            shutdown_timeout: Duration::from_secs(raw.shutdown_timeout_secs),
            trusted_proxies: TrustedProxies::parse(&raw.trusted_proxies)
                .map_err(|e| invalid("http.trusted_proxies", e))?,
            max_connections: positive("http.max_connections", raw.max_connections)?,
            send_timeout: Duration::from_millis(positive(
                "http.send_timeout_ms",
                raw.send_timeout_ms,
            )?),
            body_timeout: Duration::from_millis(positive(
                "http.body_timeout_ms",
                raw.body_timeout_ms,
            )?),
            max_concurrent_writes: positive(
                "http.max_concurrent_writes",
                raw.max_concurrent_writes,
            )?,
            max_header_count: match positive("http.max_header_count", raw.max_header_count)? {
                n if n > HEADER_COUNT_CEILING => {
                    return Err(invalid(
                        "http.max_header_count",
                        format!(
                            "must be at most {HEADER_COUNT_CEILING}, the HTTP library's own limit"
                        ),
                    ));
                }
                n => n,
            },
            max_header_bytes: positive("http.max_header_bytes", raw.max_header_bytes)?,
            max_json_depth: positive("http.max_json_depth", raw.max_json_depth)?,
        })
    }
}

fn flux_limits(raw: RawFlux) -> Result<crate::domain::impact::FluxLimits, SettingsError> {
    Ok(crate::domain::impact::FluxLimits {
        max_inputs: positive("flux.max_inputs", raw.max_inputs)?,
        max_response_bytes: positive("flux.max_response_bytes", raw.max_response_bytes)?,
    })
}

fn rate_limit(raw: RawRateLimit) -> Result<RateLimitSettings, SettingsError> {
    let quota = |class: &str, per_minute: u32, burst: u32| {
        Ok::<_, SettingsError>(RateQuota {
            per_minute: positive(&format!("rate_limit.{class}_per_minute"), per_minute)?,
            burst: positive(&format!("rate_limit.{class}_burst"), burst)?,
        })
    };
    Ok(RateLimitSettings {
        enabled: raw.enabled,
        flux: quota("flux", raw.flux_per_minute, raw.flux_burst)?,
        api: quota("api", raw.api_per_minute, raw.api_burst)?,
        anonymous: quota("anonymous", raw.anonymous_per_minute, raw.anonymous_burst)?,
        max_clients: positive("rate_limit.max_clients", raw.max_clients)?,
    })
}

fn layers(
    config_file: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<Config, config::ConfigError> {
    let mut builder = Config::builder()
        .set_default("api_mode", "read-only")?
        .set_default("listen_addr", "0.0.0.0:8080")?
        .set_default("environments", Environments::default().as_slice().to_vec())?
        .set_default("database.pool_size", 16)?
        .set_default("database.wait_timeout_ms", 5000)?
        .set_default("database.operation_timeout_ms", 30_000)?
        .set_default("database.migrate_on_start", true)?
        .set_default("database.embedded_data_dir", ".flux-catalog/postgres")?
        .set_default("http.max_body_bytes", 1024 * 1024)?
        .set_default("http.workers", 0)?
        .set_default("http.shutdown_timeout_secs", 30)?
        .set_default("http.trusted_proxies", Vec::<String>::new())?
        .set_default("http.max_connections", 4096)?
        .set_default("http.send_timeout_ms", 15_000)?
        .set_default("http.body_timeout_ms", 30_000)?
        .set_default("http.max_concurrent_writes", 4)?
        .set_default("http.max_header_count", 64)?
        .set_default("http.max_header_bytes", 16 * 1024)?
        .set_default("http.max_json_depth", 64)?
        .set_default("snapshot.poll_interval_ms", 1000)?
        .set_default("snapshot.check_timeout_ms", 1000)?
        .set_default("metrics.require_token", false)?
        .set_default("log_format", "text")?
        .set_default("flux.max_inputs", 100)?
        .set_default("flux.max_response_bytes", 900 * 1024)?
        // The arithmetic behind these is in docs/configuration.md ("Rate limits").
        .set_default("rate_limit.enabled", true)?
        .set_default("rate_limit.flux_per_minute", 60_000)?
        .set_default("rate_limit.flux_burst", 60_000)?
        .set_default("rate_limit.api_per_minute", 36_000)?
        .set_default("rate_limit.api_burst", 6_000)?
        .set_default("rate_limit.anonymous_per_minute", 120)?
        .set_default("rate_limit.anonymous_burst", 60)?
        .set_default("rate_limit.max_clients", 100_000)?
        .set_default("cors.allowed_origins", Vec::<String>::new())?
        .set_default("cors.max_age_secs", 600)?;
    if let Some(path) = config_file {
        builder = builder.add_source(File::from(path).required(true));
    }
    let prefixed: config::Map<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{PREFIX}_")) && k.as_str() != CONFIG_FILE_VARIABLE)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    builder = builder.add_source(
        Environment::with_prefix(PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("environments")
            .with_list_parse_key("http.trusted_proxies")
            .with_list_parse_key("cors.allowed_origins")
            .source(Some(prefixed)),
    );
    for (variable, key) in REFERENCE_VARIABLES {
        if let Some(value) = env.get(variable) {
            builder = builder.set_override(key, value.as_str())?;
        }
    }
    builder.build()
}

fn describe_config_error(error: config::ConfigError) -> String {
    match &error {
        config::ConfigError::Type { key: Some(key), .. }
        | config::ConfigError::At { key: Some(key), .. } => {
            format!("{}: {error}", sources_of(key))
        }
        _ => error.to_string(),
    }
}

impl fmt::Debug for Settings {
    /// The effective configuration for the start-up log: secrets never appear, only
    /// whether they are set; the database is shown without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |s: &Option<SecretString>| if s.is_some() { "<set>" } else { "<not set>" };
        f.debug_struct("Settings")
            .field("api_mode", &self.api_mode.to_string())
            .field("listen_addr", &self.listen_addr)
            .field("auth_token", &set(&self.auth_token))
            .field("crud_auth_token", &set(&self.crud_auth_token))
            .field("environments", &self.environments.as_slice())
            .field("seed_file", &self.seed_file)
            .field("database", &self.database)
            .field("http", &self.http)
            .field("snapshot", &self.snapshot)
            .field("flux", &self.flux)
            .field("rate_limit", &self.rate_limit)
            .field("cors", &self.cors)
            .field("metrics_require_token", &self.metrics_require_token)
            .field("log_format", &self.log_format)
            .finish()
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field(
                "url",
                &self.url.as_ref().map(|u| redacted_url(u.expose_secret())),
            )
            .field("tls", &self.tls)
            .field("pool_size", &self.pool_size)
            .field("wait_timeout", &self.wait_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("embedded_data_dir", &self.embedded_data_dir)
            .field("embedded_bin_dir", &self.embedded_bin_dir)
            .finish()
    }
}

/// Host, port, database and user of a connection string; never the password.
pub fn redacted_url(url: &str) -> String {
    match ConnectionString::parse(url) {
        Ok(ConnectionString { config, .. }) => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(host) => host.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            format!(
                "host={} port={:?} dbname={} user={} password={}",
                hosts.join(","),
                config.get_ports(),
                config.get_dbname().unwrap_or("(default)"),
                config.get_user().unwrap_or("(default)"),
                if config.get_password().is_some() {
                    "<redacted>"
                } else {
                    "<none>"
                }
            )
        }
        Err(_) => "<unparseable>".to_owned(),
    }
}

/// TLS from the URL's `sslmode`/`sslrootcert`, else from the `ssl_mode`/`ssl_root_cert`
/// settings, with a label naming where each came from; on error, the key to blame.
fn tls_for(
    url: &ConnectionString,
    ssl_mode: Option<SslMode>,
    ssl_root_cert: Option<RootCert>,
) -> Result<(Tls, String), (&'static str, String)> {
    const URL: &str = "database.url";
    let mode = match (url.ssl_mode, ssl_mode) {
        (Some(mode), _) => Some((mode, URL)),
        (None, Some(mode)) => Some((mode, "database.ssl_mode")),
        (None, None) => None,
    };
    let root_cert = match (&url.ssl_root_cert, ssl_root_cert) {
        (Some(root_cert), _) => Some((root_cert.clone(), URL)),
        (None, Some(root_cert)) => Some((root_cert, "database.ssl_root_cert")),
        (None, None) => None,
    };
    // As in libpq 16: the system's trust store means verify-full unless a mode is given.
    let (mode, mode_key) = match mode {
        Some((mode, key)) => (mode, Some(key)),
        None if matches!(root_cert, Some((RootCert::System, _))) => (SslMode::VerifyFull, None),
        None => (SslMode::Prefer, None),
    };
    let root_key = root_cert.as_ref().map(|(_, key)| *key);
    let tls = Tls::new(mode, root_cert.map(|(root_cert, _)| root_cert)).map_err(|e| {
        use crate::storage::connect::TlsError;
        let key = match e {
            TlsError::WeakModeWithSystemRoots(_) => mode_key.or(root_key),
            _ => root_key,
        }
        .unwrap_or(URL);
        let reason = match e {
            TlsError::WeakModeWithSystemRoots(_) => e.to_string(),
            _ if key == URL => format!("sslrootcert: {e}"),
            _ => e.to_string(),
        };
        (key, reason)
    })?;
    let mut label = format!("{}; {tls}", variable_of(URL));
    if mode_key.is_none() && mode == SslMode::Prefer {
        label.push_str(" (the default)");
    }
    let root_key = root_key.filter(|_| tls.checks_certificates());
    let from_settings: Vec<String> = [("sslmode", mode_key), ("sslrootcert", root_key)]
        .into_iter()
        .filter_map(|(name, key)| {
            key.filter(|k| *k != URL)
                .map(|k| format!("{name} from {}", variable_of(k)))
        })
        .collect();
    if !from_settings.is_empty() {
        label = format!("{label}; {}", from_settings.join(", "));
    }
    Ok((tls, label))
}

impl DatabaseSettings {
    /// The driver configuration for `url`, without `sslmode` and `sslrootcert` (see
    /// [`DatabaseSettings::connector`], which adds TLS).
    pub fn connect_config(&self) -> Option<tokio_postgres::Config> {
        let url = self.url.as_ref()?;
        let mut config = ConnectionString::parse(url.expose_secret()).ok()?.config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.wait_timeout);
        }
        config.application_name("flux-catalog");
        Some(config)
    }

    /// Opens connections to `url` with its TLS settings; `None` without a URL.
    pub fn connector(&self) -> Option<Connector> {
        Some(Connector::new(
            self.connect_config()?,
            self.tls.clone(),
            self.tls_label.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_read_only_on_port_8080_with_the_standard_tiers() {
        let s = Settings::load(None, &env(&[])).unwrap();
        assert_eq!(s.api_mode, Mode::ReadOnly);
        assert_eq!(s.listen_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(s.environments, Environments::default());
        assert_eq!(s.http.max_body_bytes, 1024 * 1024);
        assert!(s.database.url.is_none());
        assert!(s.require_tokens().is_err(), "no token, no serving");
    }

    #[test]
    fn reference_variable_names_and_prefixed_settings_apply() {
        let s = Settings::load(
            None,
            &env(&[
                ("API_MODE", "crud"),
                ("AUTH_TOKEN", "read-secret"),
                ("LISTEN_ADDR", "127.0.0.1:9000"),
                ("FLUX_CATALOG_HTTP__MAX_BODY_BYTES", "2048"),
                ("FLUX_CATALOG_ENVIRONMENTS", "dev,prod"),
                ("FLUX_CATALOG_DATABASE__MIGRATE_ON_START", "false"),
                ("FLUX_CATALOG_DATABASE__OPERATION_TIMEOUT_MS", "2500"),
            ]),
        )
        .unwrap();
        assert_eq!(s.database.operation_timeout, Duration::from_millis(2500));
        assert_eq!(s.api_mode, Mode::Crud);
        assert_eq!(s.listen_addr.port(), 9000);
        assert_eq!(s.http.max_body_bytes, 2048);
        assert_eq!(s.environments.as_slice(), ["dev", "prod"]);
        assert!(!s.database.migrate_on_start);
        assert_eq!(
            s.auth_token.as_ref().unwrap().expose_secret(),
            "read-secret"
        );
    }

    #[test]
    fn a_file_sits_between_defaults_and_the_environment() {
        let dir =
            std::env::temp_dir().join(format!("flux-catalog-settings-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.yaml");
        std::fs::write(
            &file,
            "api_mode: crud\nhttp:\n  workers: 3\nlisten_addr: 127.0.0.1:1\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file), &env(&[("LISTEN_ADDR", "127.0.0.1:2")])).unwrap();
        assert_eq!(s.api_mode, Mode::Crud, "from the file");
        assert_eq!(s.http.workers, 3, "from the file");
        assert_eq!(
            s.listen_addr.port(),
            2,
            "the environment wins over the file"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn invalid_values_are_refused_naming_the_variable() {
        let cases = [
            (("API_MODE", "write"), "API_MODE"),
            (("LISTEN_ADDR", "localhost"), "LISTEN_ADDR"),
            (
                ("FLUX_CATALOG_HTTP__MAX_BODY_BYTES", "lots"),
                "FLUX_CATALOG_HTTP__MAX_BODY_BYTES",
            ),
            (
                ("FLUX_CATALOG_ENVIRONMENTS", "dev,Prod"),
                "FLUX_CATALOG_ENVIRONMENTS",
            ),
            (
                ("DATABASE_URL", "postgres://u:pw@host:notaport/db"),
                "DATABASE_URL",
            ),
            (("AUTH_TOKEN", "secret\n"), "AUTH_TOKEN"),
            (
                ("FLUX_CATALOG_DATABASE__OPERATION_TIMEOUT_MS", "0"),
                "FLUX_CATALOG_DATABASE__OPERATION_TIMEOUT_MS",
            ),
            (
                (
                    "FLUX_CATALOG_HTTP__TRUSTED_PROXIES",
                    "10.0.0.0/8,proxy.local",
                ),
                "FLUX_CATALOG_HTTP__TRUSTED_PROXIES",
            ),
            (
                ("FLUX_CATALOG_RATE_LIMIT__API_BURST", "0"),
                "FLUX_CATALOG_RATE_LIMIT__API_BURST",
            ),
            (
                (
                    "FLUX_CATALOG_CORS__ALLOWED_ORIGINS",
                    "https://ui.example.com/",
                ),
                "FLUX_CATALOG_CORS__ALLOWED_ORIGINS",
            ),
            (
                ("FLUX_CATALOG_CORS__ALLOWED_ORIGINS", "ui.example.com"),
                "FLUX_CATALOG_CORS__ALLOWED_ORIGINS",
            ),
            (
                (
                    "FLUX_CATALOG_CORS__ALLOWED_ORIGINS",
                    "https://*.example.com",
                ),
                "FLUX_CATALOG_CORS__ALLOWED_ORIGINS",
            ),
        ];
        for ((variable, value), named) in cases {
            let error = match Settings::load(None, &env(&[(variable, value)])) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{variable}={value:?} should be refused"),
            };
            assert!(error.contains(named), "{variable}={value:?}: {error}");
            assert!(
                !error.contains("pw@"),
                "the password must not be echoed: {error}"
            );
        }
    }

    /// Every described key is a setting, and every setting with a default is described.
    #[test]
    fn the_described_settings_are_the_settings() {
        for (key, _) in DESCRIPTIONS {
            let value = match key {
                "api_mode" => "crud",
                "listen_addr" => "127.0.0.1:1",
                "database.url" => "postgres://localhost/x",
                "environments" => "dev",
                "database.migrate_on_start" => "false",
                "database.ssl_mode" => "require",
                "http.trusted_proxies" => "10.0.0.0/8,192.0.2.7",
                "log_format" => "json",
                "metrics.require_token" => "true",
                "rate_limit.enabled" => "false",
                "cors.allowed_origins" => "https://ui.example.com,*",
                _ => "7",
            };
            let s = Settings::load(None, &env(&[(&variable_of(key), value)]))
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            assert!(s.unknown_keys.is_empty(), "{key} is not a setting");
        }
        let defaults: config::Map<String, config::Value> = layers(None, &HashMap::new())
            .unwrap()
            .try_deserialize()
            .unwrap();
        for (section, value) in defaults {
            let keys: Vec<String> = match value.clone().into_table() {
                Ok(table) => table.keys().map(|k| format!("{section}.{k}")).collect(),
                Err(_) => vec![section],
            };
            for key in keys {
                assert!(
                    DESCRIPTIONS.iter().any(|(k, _)| *k == key),
                    "{key} has a default but no description"
                );
            }
        }
        assert!(variables_help().contains("FLUX_CATALOG_HTTP__SHUTDOWN_TIMEOUT_SECS"));
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks_and_none_by_default() {
        let s = Settings::load(None, &env(&[])).unwrap();
        assert_eq!(s.http.trusted_proxies, TrustedProxies::default());
        let s = Settings::load(
            None,
            &env(&[(
                "FLUX_CATALOG_HTTP__TRUSTED_PROXIES",
                "10.0.0.0/8, 192.0.2.7,fd00::/8",
            )]),
        )
        .unwrap();
        let trusted = &s.http.trusted_proxies;
        for inside in ["10.1.2.3", "192.0.2.7", "fd00::1", "::ffff:10.9.9.9"] {
            assert!(trusted.contains(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["11.0.0.1", "192.0.2.8", "::1", "127.0.0.1"] {
            assert!(!trusted.contains(outside.parse().unwrap()), "{outside}");
        }
    }

    #[test]
    fn cors_is_off_by_default_and_origins_are_kept_as_browsers_send_them() {
        let s = Settings::load(None, &env(&[])).unwrap();
        assert_eq!(s.cors.allowed_origins, Vec::<String>::new());
        assert!(!s.cors.any_origin_on_public_paths);
        let s = Settings::load(
            None,
            &env(&[(
                "FLUX_CATALOG_CORS__ALLOWED_ORIGINS",
                "https://UI.example.com, http://localhost:3000,*,http://[::1]:8080",
            )]),
        )
        .unwrap();
        assert_eq!(
            s.cors.allowed_origins,
            [
                "https://ui.example.com",
                "http://localhost:3000",
                "http://[::1]:8080"
            ]
        );
        assert!(s.cors.any_origin_on_public_paths);
    }

    #[test]
    fn rate_limits_are_on_by_default() {
        let s = Settings::load(None, &env(&[])).unwrap();
        assert!(s.rate_limit.enabled);
        assert_eq!(
            s.rate_limit.flux,
            RateQuota {
                per_minute: 60_000,
                burst: 60_000
            }
        );
    }

    #[test]
    fn kubernetes_service_link_variables_do_not_stop_start_up() {
        let s = Settings::load(
            None,
            &env(&[
                ("FLUX_CATALOG_SERVICE_HOST", "10.0.0.1"),
                ("FLUX_CATALOG_PORT", "tcp://10.0.0.1:8080"),
                ("FLUX_CATALOG_CONFIG", "/etc/flux-catalog/config.yaml"),
            ]),
        )
        .unwrap();
        assert_eq!(s.unknown_keys, ["port", "service_host"]);
    }

    #[test]
    fn the_logged_configuration_shows_no_secret() {
        let s = Settings::load(
            None,
            &env(&[
                ("AUTH_TOKEN", "read-secret-1"),
                ("CRUD_AUTH_TOKEN", "write-secret-2"),
                (
                    "DATABASE_URL",
                    "postgres://flux:db-secret-3@db.example.com:5432/catalog",
                ),
            ]),
        )
        .unwrap();
        let logged = format!("{s:?}");
        for secret in ["read-secret-1", "write-secret-2", "db-secret-3"] {
            assert!(!logged.contains(secret), "{logged}");
        }
        assert!(
            logged.contains("db.example.com") && logged.contains("catalog"),
            "{logged}"
        );
    }

    fn tls_of(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::load(None, &env(pairs)).map_err(|e| e.to_string())
    }

    #[test]
    fn the_ssl_settings_apply_when_the_url_does_not_set_them() {
        let ca = crate::storage::connect::TestCa::new();
        let ca_path = ca.0.display().to_string();
        let s = tls_of(&[
            ("DATABASE_URL", "postgres://flux@db.example.com/catalog"),
            ("FLUX_CATALOG_DATABASE__SSL_MODE", "verify-ca"),
            ("FLUX_CATALOG_DATABASE__SSL_ROOT_CERT", &ca_path),
        ])
        .unwrap();
        assert_eq!(s.database.tls.mode(), SslMode::VerifyCa);
        assert!(s.database.tls.checks_certificates());
        let connector = s.database.connector().unwrap();
        assert_eq!(
            connector.config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let label = format!("{connector:?}");
        assert!(
            label.contains("sslmode from FLUX_CATALOG_DATABASE__SSL_MODE")
                && label.contains("sslrootcert from FLUX_CATALOG_DATABASE__SSL_ROOT_CERT"),
            "{label}"
        );
        assert!(format!("{s:?}").contains(&format!("sslrootcert={ca_path}")));
    }

    #[test]
    fn the_url_beats_the_ssl_settings() {
        let ca = crate::storage::connect::TestCa::new();
        let ca_path = ca.0.display().to_string();
        let s = tls_of(&[
            (
                "DATABASE_URL",
                "postgres://flux:db-secret@db.example.com/catalog?sslmode=disable",
            ),
            ("FLUX_CATALOG_DATABASE__SSL_MODE", "verify-full"),
            (
                "FLUX_CATALOG_DATABASE__SSL_ROOT_CERT",
                "/nonexistent/ca.crt",
            ),
        ]);
        // disable reads no CA, so the missing file does not matter.
        let s = s.unwrap();
        assert_eq!(s.database.tls.mode(), SslMode::Disable);
        let config = s.database.connector().unwrap();
        assert_eq!(
            config.config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        let s = tls_of(&[
            (
                "DATABASE_URL",
                &format!("host=db.example.com sslrootcert='{ca_path}'"),
            ),
            ("FLUX_CATALOG_DATABASE__SSL_MODE", "require"),
            (
                "FLUX_CATALOG_DATABASE__SSL_ROOT_CERT",
                "/nonexistent/ca.crt",
            ),
        ])
        .unwrap();
        assert_eq!(s.database.tls.mode(), SslMode::Require);
        assert!(
            s.database.tls.checks_certificates(),
            "require with a CA checks the chain"
        );
    }

    #[test]
    fn without_any_tls_setting_the_mode_is_prefer_and_system_roots_mean_verify_full() {
        let s = tls_of(&[("DATABASE_URL", "postgres://db.example.com/catalog")]).unwrap();
        assert_eq!(s.database.tls.mode(), SslMode::Prefer);
        assert!(!s.database.tls.checks_certificates());
        // Without DATABASE_URL (the embedded server) no TLS is used, whatever is set.
        let s = tls_of(&[("FLUX_CATALOG_DATABASE__SSL_MODE", "verify-full")]).unwrap();
        assert_eq!(s.database.tls.mode(), SslMode::Disable);
    }

    #[test]
    fn unusable_tls_settings_are_refused_naming_the_setting() {
        let ca = crate::storage::connect::TestCa::new();
        let ca_path = ca.0.display().to_string();
        /// The environment, and what the message must contain.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: [Case; 6] = [
            (
                &[("DATABASE_URL", "postgres://u:db-secret@h/db?sslmode=verify")],
                &[
                    "database.url (environment variable DATABASE_URL): sslmode \"verify\" is not \
                   one of disable, prefer, require, verify-ca, verify-full",
                ],
            ),
            (
                &[
                    ("DATABASE_URL", "postgres://u:db-secret@h/db"),
                    ("FLUX_CATALOG_DATABASE__SSL_MODE", "verify"),
                ],
                &[
                    "database.ssl_mode (environment variable FLUX_CATALOG_DATABASE__SSL_MODE): \
                   \"verify\" is not one of",
                ],
            ),
            (
                &[
                    ("DATABASE_URL", "postgres://u:db-secret@h/db"),
                    ("FLUX_CATALOG_DATABASE__SSL_MODE", "verify-full"),
                    (
                        "FLUX_CATALOG_DATABASE__SSL_ROOT_CERT",
                        "/nonexistent/ca.crt",
                    ),
                ],
                &[
                    "FLUX_CATALOG_DATABASE__SSL_ROOT_CERT",
                    "/nonexistent/ca.crt",
                ],
            ),
            (
                &[(
                    "DATABASE_URL",
                    "postgres://u:db-secret@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.crt",
                )],
                &["DATABASE_URL", "sslrootcert", "/nonexistent/ca.crt"],
            ),
            (
                &[
                    (
                        "DATABASE_URL",
                        "postgres://u:db-secret@h/db?sslmode=require",
                    ),
                    ("FLUX_CATALOG_DATABASE__SSL_ROOT_CERT", "system"),
                ],
                &[
                    "DATABASE_URL",
                    "sslmode require may not be used with sslrootcert=system",
                ],
            ),
            (
                &[
                    (
                        "DATABASE_URL",
                        "postgres://u:db-secret@h/db?sslcert=/client.crt",
                    ),
                    ("FLUX_CATALOG_DATABASE__SSL_ROOT_CERT", &ca_path),
                ],
                &["DATABASE_URL", "not a PostgreSQL connection string"],
            ),
        ];
        for (pairs, expected) in cases {
            let error = match tls_of(pairs) {
                Err(e) => e,
                Ok(_) => panic!("{pairs:?} should be refused"),
            };
            for part in expected {
                assert!(
                    error.contains(part),
                    "{pairs:?}: {part:?} missing from {error}"
                );
            }
            assert!(!error.contains("db-secret"), "{error}");
        }
    }
}
