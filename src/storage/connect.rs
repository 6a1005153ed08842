//! Connections to PostgreSQL, with TLS as libpq's `sslmode` and `sslrootcert` describe it.
//!
//! tokio-postgres parses connection strings itself but knows only `sslmode=disable|prefer|
//! require` and refuses `sslrootcert`, and it leaves certificate checks to the TLS connector.
//! So [`ConnectionString::parse`] takes both parameters out before the driver sees the
//! string, [`Tls`] turns them into a rustls client configuration that checks what libpq
//! checks, and [`Connector`] is the one way this service opens a connection: for the pool,
//! for migrations and for the LISTEN connection of the snapshot.
//!
//! | `sslmode`     | TLS                         | certificate checked                         |
//! |---------------|-----------------------------|---------------------------------------------|
//! | `disable`     | never                       | -                                           |
//! | `prefer`      | when the server offers it   | no                                          |
//! | `require`     | always                      | no; the chain, as `verify-ca`, with a CA    |
//! | `verify-ca`   | always                      | chain up to the CA                          |
//! | `verify-full` | always                      | chain, and the host name (or IP) in its SAN |
//!
//! The CA comes from `sslrootcert` (a PEM file), or from the system's trust store for
//! `verify-ca`/`verify-full` without one and for `sslrootcert=system` (which, as in libpq 16,
//! allows only `verify-full`). TLS is never used over a Unix socket, as in libpq.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::Host;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values that this service supports (not `allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(format!(
                "{other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            )),
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        })
    }
}

/// Where the CA certificates that a server's certificate must chain to come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of one or more CA certificates.
    File(PathBuf),
    /// The system's trust store (`sslrootcert=system`; `SSL_CERT_FILE` and `SSL_CERT_DIR`
    /// override where it is read from).
    System,
}

impl From<&str> for RootCert {
    fn from(value: &str) -> Self {
        if value == "system" {
            Self::System
        } else {
            Self::File(PathBuf::from(value))
        }
    }
}

impl fmt::Display for RootCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::System => f.write_str("system"),
        }
    }
}

/// A connection string (URL or key=value form) with `sslmode` and `sslrootcert` taken out
/// and the rest parsed by the driver.
#[derive(Debug)]
pub struct ConnectionString {
    /// Everything else; its `ssl_mode` is the driver's default until a [`Connector`] sets it.
    pub config: tokio_postgres::Config,
    pub ssl_mode: Option<SslMode>,
    pub ssl_root_cert: Option<RootCert>,
}

/// Why a connection string was refused. Never repeats the string, which may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionStringError {
    #[error("sslmode {0}")]
    SslMode(String),
    #[error("not a PostgreSQL connection string: {0}")]
    Driver(#[source] tokio_postgres::Error),
}

impl ConnectionString {
    /// Parses `conninfo`; of repeated `sslmode` or `sslrootcert` parameters the last counts, and
    /// an empty value counts as not given (both as in libpq).
    pub fn parse(conninfo: &str) -> Result<Self, ConnectionStringError> {
        let (rest, params) = if is_url(conninfo) {
            strip_url_params(conninfo)
        } else {
            strip_keyword_params(conninfo)
        };
        let mut ssl_mode = None;
        let mut ssl_root_cert = None;
        for (key, value) in params {
            match (key, value.is_empty()) {
                (TlsParam::Mode, false) => {
                    ssl_mode = Some(value.parse().map_err(ConnectionStringError::SslMode)?)
                }
                (TlsParam::Mode, true) => ssl_mode = None,
                (TlsParam::RootCert, false) => ssl_root_cert = Some(RootCert::from(&*value)),
                (TlsParam::RootCert, true) => ssl_root_cert = None,
            }
        }
        let config =
            tokio_postgres::Config::from_str(&rest).map_err(ConnectionStringError::Driver)?;
        Ok(Self {
            config,
            ssl_mode,
            ssl_root_cert,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsParam {
    Mode,
    RootCert,
}

impl TlsParam {
    fn named(key: &str) -> Option<Self> {
        match key {
            "sslmode" => Some(Self::Mode),
            "sslrootcert" => Some(Self::RootCert),
            _ => None,
        }
    }
}

fn is_url(conninfo: &str) -> bool {
    conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://")
}

/// The URL without its `sslmode`/`sslrootcert` query parameters, and their decoded values.
/// The query starts at the first `?` after the credentials, where the driver looks for it.
fn strip_url_params(url: &str) -> (String, Vec<(TlsParam, String)>) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let after_credentials = url[after_scheme..]
        .find('@')
        .map_or(after_scheme, |i| after_scheme + i + 1);
    let Some(question) = url[after_credentials..]
        .find('?')
        .map(|i| after_credentials + i)
    else {
        return (url.to_owned(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for piece in url[question + 1..].split('&') {
        let param = piece.split_once('=').and_then(|(key, value)| {
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8()
                .ok()?;
            Some((TlsParam::named(&key)?, value))
        });
        match param {
            Some((param, value)) => taken.push((
                param,
                percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned(),
            )),
            None => kept.push(piece),
        }
    }
    let mut rest = url[..question].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    (rest, taken)
}

/// The key=value string without its `sslmode`/`sslrootcert` pairs, and their values. Reads
/// pairs the way the driver does (`key = value`, `'quoted \' value'`, `\` escapes); a string it
/// cannot read is returned whole, for the driver to report.
fn strip_keyword_params(conninfo: &str) -> (String, Vec<(TlsParam, String)>) {
    fn skip_whitespace(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    }
    let mut pairs = Vec::new();
    let mut chars = conninfo.char_indices().peekable();
    loop {
        skip_whitespace(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        skip_whitespace(&mut chars);
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return (conninfo.to_owned(), Vec::new());
        }
        skip_whitespace(&mut chars);
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            loop {
                match chars.next() {
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                    Some((_, c)) => value.push(c),
                    None => return (conninfo.to_owned(), Vec::new()),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next().map(|(_, c)| c));
                } else {
                    value.push(c);
                }
            }
        }
        let end = chars.peek().map_or(conninfo.len(), |&(i, _)| i);
        pairs.push((start..end, TlsParam::named(&key), value));
    }
    let mut rest = String::new();
    let mut taken = Vec::new();
    let mut copied_to = 0;
    for (span, param, value) in pairs {
        if let Some(param) = param {
            rest.push_str(&conninfo[copied_to..span.start]);
            copied_to = span.end;
            taken.push((param, value));
        }
    }
    rest.push_str(&conninfo[copied_to..]);
    (rest, taken)
}

/// What a server's certificate is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// Encrypted, but any certificate is accepted (`prefer`, `require` without a CA).
    Nothing,
    /// The chain up to a trusted CA (`verify-ca`, `require` with a CA).
    Chain,
    /// The chain and the host name (`verify-full`).
    ChainAndName,
}

/// The TLS part of connecting: a mode and the rustls configuration that implements it, with
/// the CA certificates already loaded. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    mode: SslMode,
    root_cert: Option<RootCert>,
    checks: Checks,
    make: MakeRustlsConnect,
}

/// A CA that cannot be used, or a mode that does not go with it. Names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA certificates from {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a PEM file of CA certificates: {source}")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: PathBuf },
    #[error("certificate {index} in {path} cannot be used as a CA certificate: {source}")]
    NotACa {
        path: PathBuf,
        index: usize,
        #[source]
        source: rustls::Error,
    },
    #[error("the system's trust store holds no CA certificates{0}")]
    NoSystemCertificates(String),
    #[error("sslmode {0} may not be used with sslrootcert=system (use verify-full)")]
    WeakModeWithSystemRoots(SslMode),
    #[error("cannot configure TLS: {0}")]
    Rustls(#[source] rustls::Error),
}

impl Tls {
    /// TLS for `mode`, checking certificates against `root_cert` (or, for `verify-ca` and
    /// `verify-full` without one, the system's trust store). Reads the CA certificates now.
    pub fn new(mode: SslMode, root_cert: Option<RootCert>) -> Result<Self, TlsError> {
        if root_cert == Some(RootCert::System) && mode != SslMode::VerifyFull {
            return Err(TlsError::WeakModeWithSystemRoots(mode));
        }
        let checks = match (mode, &root_cert) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Checks::Nothing,
            (SslMode::Require, Some(_)) | (SslMode::VerifyCa, _) => Checks::Chain,
            (SslMode::VerifyFull, _) => Checks::ChainAndName,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?;
        let config = match checks {
            Checks::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
            Checks::Chain => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly {
                    roots: Arc::new(load_roots(root_cert.as_ref())?),
                    provider,
                }))
                .with_no_client_auth(),
            Checks::ChainAndName => builder
                .with_root_certificates(load_roots(root_cert.as_ref())?)
                .with_no_client_auth(),
        };
        Ok(Self {
            mode,
            root_cert,
            checks,
            make: MakeRustlsConnect::new(config),
        })
    }

    /// No TLS at all, as for a server reached over a Unix socket.
    pub fn disabled() -> Self {
        Self::new(SslMode::Disable, None).expect("disable needs no CA")
    }

    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// Whether the server's certificate is checked against a CA (its chain at least).
    pub fn checks_certificates(&self) -> bool {
        self.checks != Checks::Nothing
    }

    /// The driver's mode for `config`: verification is ours, so the verifying modes are its
    /// `require`; and libpq never uses TLS over a Unix socket.
    fn driver_mode(&self, config: &tokio_postgres::Config) -> tokio_postgres::config::SslMode {
        let only_unix_sockets = config.get_hostaddrs().is_empty()
            && !config.get_hosts().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|host| !matches!(host, Host::Tcp(_)));
        match self.mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            _ if only_unix_sockets => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }
}

impl fmt::Display for Tls {
    /// `sslmode=require, sslrootcert=/etc/ca.crt (chain checked)`, for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sslmode={}", self.mode)?;
        if let Some(root_cert) = &self.root_cert {
            if self.checks != Checks::Nothing {
                write!(f, ", sslrootcert={root_cert}")?;
            }
        } else if self.checks != Checks::Nothing {
            f.write_str(", CA from the system's trust store")?;
        }
        if self.mode == SslMode::Require && self.checks == Checks::Chain {
            f.write_str(" (certificate chain checked, as with verify-ca)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The CA certificates of `root_cert`, or of the system's trust store without one.
fn load_roots(root_cert: Option<&RootCert>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(RootCert::File(path)) => {
            for (index, certificate) in read_pem_certificates(path)?.into_iter().enumerate() {
                roots.add(certificate).map_err(|source| TlsError::NotACa {
                    path: path.clone(),
                    index: index + 1,
                    source,
                })?;
            }
        }
        Some(RootCert::System) | None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(TlsError::NoSystemCertificates(if errors.is_empty() {
                    String::new()
                } else {
                    format!(": {}", errors.join("; "))
                }));
            }
        }
    }
    Ok(roots)
}

fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

/// Accepts any certificate (`prefer`, and `require` without a CA, as libpq does): encrypted,
/// but open to an active man in the middle. The handshake signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain up to a trusted CA but not the name (`verify-ca`).
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let certificate = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &certificate,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        AnyCertificate(self.provider.clone()).verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        AnyCertificate(self.provider.clone()).verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The connection half that the caller must drive (spawn or poll).
pub type Connection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

/// How to reach the database: the driver configuration, TLS, and a label naming where they
/// were configured, for error messages. Every connection of the service is opened with one.
#[derive(Clone)]
pub struct Connector {
    config: tokio_postgres::Config,
    tls: Tls,
    label: Arc<str>,
}

impl Connector {
    /// `label` names where the settings came from, e.g. `DATABASE_URL; sslmode=verify-full`;
    /// connection errors repeat it. `config`'s own `ssl_mode` is replaced by `tls`'s.
    pub fn new(mut config: tokio_postgres::Config, tls: Tls, label: impl Into<String>) -> Self {
        config.ssl_mode(tls.driver_mode(&config));
        Self {
            config,
            tls,
            label: label.into().into(),
        }
    }

    /// Without TLS, as for the embedded server (a Unix socket).
    pub fn plain(config: tokio_postgres::Config, label: impl Into<String>) -> Self {
        Self::new(config, Tls::disabled(), label)
    }

    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    /// Opens one connection; the caller drives the returned [`Connection`].
    pub async fn connect(&self) -> Result<(Client, Connection), ConnectError> {
        self.config
            .connect(self.tls.make.clone())
            .await
            .map_err(|error| self.failure(error))
    }

    /// `error`, from connecting with this connector, described with the server and settings.
    pub fn failure(&self, error: tokio_postgres::Error) -> ConnectError {
        ConnectError {
            message: format!(
                "cannot connect to PostgreSQL at {} ({}): {}",
                self.servers(),
                self.label,
                cause(&error)
            ),
            error,
        }
    }

    /// `host:port` of each server the configuration lists (with the `hostaddr` connected to,
    /// if given); never the user or password.
    pub fn servers(&self) -> String {
        let ports = self.config.get_ports();
        let hosts = self.config.get_hosts();
        let addresses = self.config.get_hostaddrs();
        (0..hosts.len().max(addresses.len()))
            .map(|i| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                let address = addresses.get(i);
                match (hosts.get(i), address) {
                    (Some(Host::Tcp(name)), Some(address)) => {
                        format!("{name}:{port} (address {address})")
                    }
                    (Some(Host::Tcp(name)), None) if name.contains(':') => {
                        format!("[{name}]:{port}")
                    }
                    (Some(Host::Tcp(name)), None) => format!("{name}:{port}"),
                    (Some(Host::Unix(path)), _) => format!("{}:{port}", path.display()),
                    (None, Some(std::net::IpAddr::V6(address))) => format!("[{address}]:{port}"),
                    (None, Some(address)) => format!("{address}:{port}"),
                    (None, None) => unreachable!("the index is below one of the lengths"),
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("servers", &self.servers())
            .field("tls", &self.tls)
            .field("label", &self.label)
            .finish()
    }
}

/// The pool opens its connections the same way.
impl deadpool_postgres::Connect for Connector {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> futures_util::future::BoxFuture<
        '_,
        Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let pg_config = pg_config.clone();
        let tls = self.tls.make.clone();
        Box::pin(async move {
            let (client, connection) = pg_config.connect(tls).await?;
            let driver = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    log::debug!("pooled database connection ended: {error}");
                }
            });
            Ok((client, driver))
        })
    }
}

/// A connection that could not be opened: the server, the settings, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    message: String,
    error: tokio_postgres::Error,
}

impl ConnectError {
    /// Whether waiting may fix it: the server was unreachable, refused the connection, or
    /// is starting or shutting down. A certificate or authentication problem, or a
    /// database that does not exist, needs the configuration changed instead.
    pub fn is_transient(&self) -> bool {
        use tokio_postgres::error::SqlState;
        if let Some(db) = self.error.as_db_error() {
            return [
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(db.code());
        }
        !cause(&self.error).starts_with("TLS:")
    }

    /// The driver's error, for callers that look at SQLSTATE codes.
    pub fn into_driver_error(self) -> tokio_postgres::Error {
        self.error
    }
}

impl From<ConnectError> for tokio_postgres::Error {
    fn from(error: ConnectError) -> Self {
        error.error
    }
}

/// The driver's message, with a TLS failure shown as rustls reports it and a hint for the
/// certificate problems the settings can fix.
fn cause(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        // The driver's own text is only "db error".
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut source = std::error::Error::source(error);
    while let Some(current) = source {
        let tls = current.downcast_ref::<rustls::Error>().or_else(|| {
            current
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return format!("TLS: {tls}{}", hint(tls));
        }
        source = current.source();
    }
    let message = error.to_string();
    match message.strip_prefix("error performing TLS handshake: ") {
        Some(rest) => format!("TLS: {rest}"),
        None => message,
    }
}

fn hint(error: &rustls::Error) -> &'static str {
    use rustls::CertificateError as E;
    match error {
        rustls::Error::InvalidCertificate(
            E::NotValidForName | E::NotValidForNameContext { .. },
        ) => {
            " (sslmode=verify-full checks that the host name of the connection string is in the \
             server's certificate; verify-ca checks the chain only)"
        }
        rustls::Error::InvalidCertificate(E::UnknownIssuer) => {
            " (the server's certificate is not signed by a CA in sslrootcert)"
        }
        _ => "",
    }
}

/// A self-signed CA certificate in a file, removed on drop, for unit tests here and in
/// `settings`.
#[cfg(test)]
pub(crate) struct TestCa(pub(crate) PathBuf);

#[cfg(test)]
impl TestCa {
    pub(crate) fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        let path = std::env::temp_dir().join(format!(
            "flux-catalog-test-ca-{}.crt",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, certificate.pem()).unwrap();
        Self(path)
    }
}

#[cfg(test)]
impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(conninfo: &str) -> ConnectionString {
        ConnectionString::parse(conninfo)
            .unwrap_or_else(|e| panic!("{conninfo:?} should parse: {e}"))
    }

    #[test]
    fn url_parameters_are_taken_out_and_the_rest_reaches_the_driver() {
        let parsed = parse(
            "postgresql://flux:pw@db.example.com:6432/catalog?sslmode=verify-full\
             &application_name=x&sslrootcert=%2Fetc%2Fca%20dir%2Froot.crt&connect_timeout=7",
        );
        assert_eq!(parsed.ssl_mode, Some(SslMode::VerifyFull));
        assert_eq!(
            parsed.ssl_root_cert,
            Some(RootCert::File("/etc/ca dir/root.crt".into()))
        );
        let config = parsed.config;
        assert_eq!(config.get_hosts(), [Host::Tcp("db.example.com".into())]);
        assert_eq!(config.get_ports(), [6432]);
        assert_eq!(config.get_dbname(), Some("catalog"));
        assert_eq!(config.get_user(), Some("flux"));
        assert_eq!(config.get_password(), Some(&b"pw"[..]));
        assert_eq!(config.get_application_name(), Some("x"));
        assert_eq!(
            config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(7))
        );
    }

    #[test]
    fn a_url_with_only_tls_parameters_loses_its_query() {
        let (rest, taken) = strip_url_params("postgres://h/db?sslmode=require&sslrootcert=system");
        assert_eq!(rest, "postgres://h/db");
        assert_eq!(
            taken,
            [
                (TlsParam::Mode, "require".to_owned()),
                (TlsParam::RootCert, "system".to_owned())
            ]
        );
        let (rest, taken) = strip_url_params("postgres://u:p?ss@h/db?sslmode=disable");
        assert_eq!(
            rest, "postgres://u:p?ss@h/db",
            "a ? in the password is no query"
        );
        assert_eq!(taken, [(TlsParam::Mode, "disable".to_owned())]);
        let (rest, taken) = strip_url_params("postgres://h/db");
        assert_eq!((rest.as_str(), taken.len()), ("postgres://h/db", 0));
    }

    #[test]
    fn keyword_value_pairs_are_taken_out_and_the_rest_reaches_the_driver() {
        let parsed = parse(
            "host=db.example.com sslmode = verify-ca port=6432 \
             sslrootcert='/etc/ca dir/it\\'s.crt' dbname=catalog user=flux password=pw",
        );
        assert_eq!(parsed.ssl_mode, Some(SslMode::VerifyCa));
        assert_eq!(
            parsed.ssl_root_cert,
            Some(RootCert::File("/etc/ca dir/it's.crt".into()))
        );
        assert_eq!(
            parsed.config.get_hosts(),
            [Host::Tcp("db.example.com".into())]
        );
        assert_eq!(parsed.config.get_ports(), [6432]);
        assert_eq!(parsed.config.get_dbname(), Some("catalog"));
        let (rest, _) = strip_keyword_params("host=h sslmode=require dbname=d");
        assert_eq!(rest, "host=h  dbname=d");
    }

    #[test]
    fn without_tls_parameters_nothing_changes() {
        let parsed = parse("host=/run/postgresql dbname=catalog");
        assert_eq!(parsed.ssl_mode, None);
        assert_eq!(parsed.ssl_root_cert, None);
        assert_eq!(parse("postgres://h/db").ssl_mode, None);
    }

    #[test]
    fn the_last_value_counts_and_an_empty_one_unsets() {
        assert_eq!(
            parse("postgres://h/db?sslmode=disable&sslmode=verify-ca").ssl_mode,
            Some(SslMode::VerifyCa)
        );
        assert_eq!(
            parse("host=h sslrootcert=/ca.crt sslrootcert=''").ssl_root_cert,
            None
        );
        assert_eq!(
            parse("postgres://h/db?sslrootcert=system").ssl_root_cert,
            Some(RootCert::System)
        );
    }

    #[test]
    fn bad_values_are_refused_without_repeating_the_string() {
        for conninfo in [
            "postgres://u:secret-pw@h/db?sslmode=verify",
            "host=h password=secret-pw sslmode=allow",
            "postgres://u:secret-pw@h/db?sslmode=VERIFY-FULL",
        ] {
            let error = ConnectionString::parse(conninfo).unwrap_err().to_string();
            assert!(
                error.starts_with("sslmode \"")
                    && error.ends_with(
                        "is not one of disable, prefer, require, verify-ca, verify-full"
                    ),
                "{conninfo}: {error}"
            );
            assert!(!error.contains("secret-pw"), "{error}");
        }
        for conninfo in [
            "postgres://u:secret-pw@h/db?sslcert=/x",
            "host=h password=secret-pw port=notaport",
            "host=h password='secret-pw",
        ] {
            let error = ConnectionString::parse(conninfo).unwrap_err().to_string();
            assert!(
                error.starts_with("not a PostgreSQL connection string"),
                "{conninfo}: {error}"
            );
            assert!(!error.contains("secret-pw"), "{error}");
        }
    }

    #[test]
    fn errors_name_each_server_but_no_credentials() {
        let servers = |conninfo: &str| Connector::plain(parse(conninfo).config, "x").servers();
        assert_eq!(
            servers("postgres://u:pw@a.example.com,b.example.com:6432/db"),
            "a.example.com:5432,b.example.com:6432"
        );
        assert_eq!(
            servers("host=db.example.com hostaddr=10.0.0.1 port=5433 password=pw"),
            "db.example.com:5433 (address 10.0.0.1)"
        );
        assert_eq!(servers("hostaddr=::1"), "[::1]:5432");
        assert_eq!(servers("host=/run/postgresql"), "/run/postgresql:5432");
    }

    #[test]
    fn the_driver_mode_follows_the_mode_and_is_off_for_unix_sockets() {
        use tokio_postgres::config::SslMode as Driver;
        let ca = TestCa::new();
        let tcp = parse("postgres://h/db").config;
        let socket = parse("host=/run/postgresql").config;
        for (mode, over_tcp) in [
            (SslMode::Disable, Driver::Disable),
            (SslMode::Prefer, Driver::Prefer),
            (SslMode::Require, Driver::Require),
            (SslMode::VerifyCa, Driver::Require),
            (SslMode::VerifyFull, Driver::Require),
        ] {
            let root_cert = (mode != SslMode::Disable).then(|| RootCert::File(ca.0.clone()));
            let tls = Tls::new(mode, root_cert);
            let tls = tls.unwrap_or_else(|e| panic!("{mode}: {e}"));
            assert_eq!(tls.driver_mode(&tcp), over_tcp, "{mode}");
            assert_eq!(tls.driver_mode(&socket), Driver::Disable, "{mode}");
        }
    }

    #[test]
    fn require_with_a_ca_checks_the_chain_and_system_roots_need_verify_full() {
        let file = TestCa::new();
        let ca = RootCert::File(file.0.clone());
        assert_eq!(
            Tls::new(SslMode::Require, None).unwrap().checks,
            Checks::Nothing
        );
        assert_eq!(
            Tls::new(SslMode::Require, Some(ca.clone())).unwrap().checks,
            Checks::Chain
        );
        assert_eq!(
            Tls::new(SslMode::Prefer, Some(ca.clone())).unwrap().checks,
            Checks::Nothing
        );
        assert_eq!(
            Tls::new(SslMode::VerifyFull, Some(ca)).unwrap().checks,
            Checks::ChainAndName
        );
        for mode in [SslMode::Disable, SslMode::Require, SslMode::VerifyCa] {
            let error = Tls::new(mode, Some(RootCert::System)).err().unwrap();
            assert!(
                error.to_string().contains("use verify-full"),
                "{mode}: {error}"
            );
        }
    }

    #[test]
    fn an_unusable_ca_file_is_refused_naming_it() {
        let dir = std::env::temp_dir().join(format!("flux-catalog-ca-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("not-pem.crt");
        std::fs::write(&not_pem, "hello\n").unwrap();
        let broken = dir.join("broken.crt");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let missing = dir.join("missing.crt");
        for path in [&not_pem, &broken, &missing] {
            let error = Tls::new(SslMode::VerifyCa, Some(RootCert::File(path.clone())))
                .err()
                .unwrap_or_else(|| panic!("{} should be refused", path.display()))
                .to_string();
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
