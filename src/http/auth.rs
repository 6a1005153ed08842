//! Authentication and authorization for every endpoint except the probes and the OpenAPI
//! document.
//!
//! A credential is a secret sent as `Authorization: Bearer <secret>`, as the password of
//! HTTP Basic (Flux's provider secret carries either a bearer `token` or a
//! `username`/`password` pair), or as `X-API-Key: <secret>`. It is either one of the two
//! built-in tokens (`AUTH_TOKEN`, `CRUD_AUTH_TOKEN`) or a named credential stored in the
//! database (see [`Named`]). What it may do is its scopes; [`need`] says what a request
//! needs and [`crate::domain::scope::permits`] whether the scopes allow it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use base64::Engine;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::error::ApiError;
use crate::domain::scope::{Need, Scope, permits};
use crate::settings::{Mode, Settings};
use crate::storage::Store;

/// The header a credential may also be sent in, alone.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The prefix of every generated secret, so that secret scanners recognise leaked ones.
pub const SECRET_PREFIX: &str = "fcat_";

/// Who made a request, as far as the service can tell: the name of the credential used,
/// and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `env:AUTH_TOKEN`, `env:CRUD_AUTH_TOKEN`, or a named credential's name; never the
    /// secret.
    pub name: Arc<str>,
    pub scopes: Arc<[Scope]>,
}

impl Principal {
    pub fn may(&self, need: &Need) -> bool {
        permits(&self.scopes, need)
    }
}

struct Builtin {
    principal: Principal,
    /// Secrets are compared as SHA-256 digests: equal length whatever was sent, so the
    /// constant-time comparison leaks neither content nor length.
    digest: [u8; 32],
}

/// The SHA-256 digest a secret is known by (and stored as).
pub fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// A new secret: [`SECRET_PREFIX`] and 256 random bits, base64url without padding.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// One verified named credential.
struct Entry {
    principal: Principal,
    digest: [u8; 32],
    expires_at: Option<OffsetDateTime>,
    /// Unix seconds of the last use seen here (0: none), and of the last one written to
    /// the database: last use is written in batches, never per request.
    used: AtomicI64,
    flushed: AtomicI64,
}

#[derive(Default)]
struct Table {
    /// The credentials counter the table is as of; `None` before the first load.
    version: Option<i64>,
    by_digest: HashMap<[u8; 32], Entry>,
}

/// The named credentials, kept in memory and reloaded when the database's credentials
/// counter moves (see [`Named::follow`]), so no request waits for the database and a
/// revocation reaches every replica within [`POLL_EVERY`] and a reload.
#[derive(Default)]
pub struct Named {
    table: RwLock<Table>,
}

/// How often each replica asks whether credentials changed: one tiny query.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How often last use is written.
pub const TOUCH_EVERY: Duration = Duration::from_secs(10);

impl Named {
    fn authenticate(&self, digest: &[u8; 32], now: OffsetDateTime) -> Option<Principal> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        // The map finds the entry by the digest of the secret (which tells an attacker
        // nothing about any stored digest); the comparison itself is constant-time.
        let entry = table.by_digest.get(digest)?;
        if !bool::from(entry.digest.ct_eq(digest)) || entry.expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        entry
            .used
            .fetch_max(now.unix_timestamp(), Ordering::Relaxed);
        Some(entry.principal.clone())
    }

    /// Replaces the table, carrying over last uses not written yet.
    fn replace(&self, version: i64, active: Vec<crate::storage::credentials::ActiveCredential>) {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        let mut by_digest = HashMap::with_capacity(active.len());
        for credential in active {
            let carried = table.by_digest.get(&credential.digest);
            let entry = Entry {
                principal: Principal {
                    name: credential.name.into(),
                    scopes: credential.scopes.into(),
                },
                digest: credential.digest,
                expires_at: credential.expires_at,
                used: AtomicI64::new(carried.map_or(0, |e| e.used.load(Ordering::Relaxed))),
                flushed: AtomicI64::new(carried.map_or(0, |e| e.flushed.load(Ordering::Relaxed))),
            };
            by_digest.insert(credential.digest, entry);
        }
        *table = Table {
            version: Some(version),
            by_digest,
        };
    }

    fn version(&self) -> Option<i64> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).version
    }

    /// Last uses not written yet, marked as written.
    fn unwritten_uses(&self) -> Vec<(String, OffsetDateTime)> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        table
            .by_digest
            .values()
            .filter_map(|entry| {
                let used = entry.used.load(Ordering::Relaxed);
                let flushed = entry.flushed.swap(used, Ordering::Relaxed);
                (used > flushed)
                    .then(|| OffsetDateTime::from_unix_timestamp(used).ok())
                    .flatten()
                    .map(|at| (entry.principal.name.to_string(), at))
            })
            .collect()
    }

    /// Follows the database for as long as the server runs: reloads when the credentials
    /// counter moves, and writes last uses every [`TOUCH_EVERY`]. A database that does not
    /// answer leaves the last table in place (expiry still applies) and is logged once per
    /// outage. A server that may not write last use (a read-only role without the grant,
    /// a hot standby) says so once and stops trying.
    pub async fn follow(self: Arc<Self>, store: Store) {
        use crate::storage::StoreError;
        let mut failing = false;
        let mut touching = true;
        let mut since_touch = Duration::ZERO;
        let mut ticks = tokio::time::interval(POLL_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let outcome = async {
                let version = store.credentials_version().await?;
                if self.version() != Some(version) {
                    let (version, active) = store.active_credentials().await?;
                    self.replace(version, active);
                }
                Ok::<_, StoreError>(())
            }
            .await;
            match outcome {
                Ok(()) if failing => {
                    log::info!("credentials: following the database again");
                    failing = false;
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    log::warn!(
                        "credentials: cannot read the database ({error}); named credentials \
                         stay as last read until it answers"
                    );
                    failing = true;
                }
                Err(_) => {}
            }
            since_touch += POLL_EVERY;
            if !touching || failing || since_touch < TOUCH_EVERY {
                continue;
            }
            since_touch = Duration::ZERO;
            let used = self.unwritten_uses();
            if used.is_empty() {
                continue;
            }
            match store.touch_credentials(&used).await {
                Ok(()) | Err(StoreError::Unavailable(_) | StoreError::TimedOut(_)) => {}
                Err(error) => {
                    log::warn!(
                        "credentials: this server cannot record when credentials were last \
                         used ({error}), and stops trying; grant its database role UPDATE \
                         (last_used_at) ON credentials (see docs/operating.md, Database \
                         roles and privileges)"
                    );
                    touching = false;
                }
            }
        }
    }
}

/// The credentials this server accepts: the built-in tokens and the named ones.
pub struct Credentials {
    builtins: Vec<Builtin>,
    pub named: Arc<Named>,
}

impl Credentials {
    /// The read token has scope `read`; in crud mode `CRUD_AUTH_TOKEN` has `read`, `write`
    /// and `admin` (it managed the audit log before credentials had scopes), or the read
    /// token has them when no write token is set. A read-only server accepts no write
    /// token at all.
    pub fn from_settings(settings: &Settings) -> Self {
        let crud = settings.api_mode == Mode::Crud;
        let all = || -> Arc<[Scope]> { vec![Scope::Read, Scope::Write, Scope::Admin].into() };
        let mut builtins = Vec::new();
        if let Some(token) = &settings.auth_token {
            builtins.push(Builtin {
                principal: Principal {
                    name: "env:AUTH_TOKEN".into(),
                    scopes: if crud && settings.crud_auth_token.is_none() {
                        all()
                    } else {
                        vec![Scope::Read].into()
                    },
                },
                digest: digest(token.expose_secret().as_bytes()),
            });
        }
        if let (true, Some(token)) = (crud, &settings.crud_auth_token) {
            builtins.push(Builtin {
                principal: Principal {
                    name: "env:CRUD_AUTH_TOKEN".into(),
                    scopes: all(),
                },
                digest: digest(token.expose_secret().as_bytes()),
            });
        }
        Self {
            builtins,
            named: Arc::default(),
        }
    }

    /// The principal whose secret was presented, if any. Every built-in token is
    /// compared, so timing does not reveal which one matched; the most privileged match
    /// wins (the two tokens may be equal).
    pub fn authenticate(&self, presented: &[u8]) -> Option<Principal> {
        let presented = digest(presented);
        let mut found: Option<&Principal> = None;
        for token in &self.builtins {
            if bool::from(token.digest.ct_eq(&presented))
                && found.is_none_or(|f| token.principal.scopes.len() > f.scopes.len())
            {
                found = Some(&token.principal);
            }
        }
        match found {
            Some(principal) => Some(principal.clone()),
            None => self
                .named
                .authenticate(&presented, OffsetDateTime::now_utc()),
        }
    }
}

/// The secret in a Bearer or Basic `Authorization` header (scheme names are
/// case-insensitive).
fn authorization_secret(value: &header::HeaderValue) -> Option<Vec<u8>> {
    let value = value.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(credentials.as_bytes().to_vec())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        Some(decoded[colon + 1..].to_vec())
    } else {
        None
    }
}

/// What a request needs, by method and path (slashes folded): the credentials and the
/// audit log need `admin`; other writes `write`; one cluster's Flux endpoints `read` or
/// that cluster's scope; every other read `read`. On a read-only server everything is a
/// read, so that a write meets the route's 405 instead of a misleading 403.
pub fn need(mode: Mode, method: &Method, path: &str) -> Need {
    if mode == Mode::ReadOnly {
        return cluster_read(path).map_or(Need::Read, |dns| Need::ClusterRead(dns.to_owned()));
    }
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under("/audit") || under(super::tokens::PATH) {
        Need::Admin
    } else if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        Need::Write
    } else {
        cluster_read(path).map_or(Need::Read, |dns| Need::ClusterRead(dns.to_owned()))
    }
}

/// The cluster DNS name of a path to one cluster's Flux endpoint.
fn cluster_read(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix(super::flux::CLUSTERS_PATH)?
        .strip_prefix('/')?;
    Some(rest.split_once('/')?.0)
}

fn twice(field: &'static str, count: usize) -> ApiError {
    ApiError::InvalidRequest(crate::domain::FieldErrors::single(
        field,
        format!("sent {count} times; send exactly one credential"),
    ))
}

/// The request's one credential: the secret of its `Authorization` header or of its
/// `X-API-Key`, if any. More than one (two of a header, or different secrets in the two)
/// is refused (400), as which one counted would depend on who reads the headers. An `Authorization` header of
/// an unknown scheme presents an empty secret, which no credential has.
pub fn credential(headers: &header::HeaderMap) -> Result<Option<Vec<u8>>, ApiError> {
    let authorization: Vec<_> = headers.get_all(header::AUTHORIZATION).collect();
    let keys: Vec<_> = headers.get_all(API_KEY_HEADER).collect();
    if authorization.len() > 1 {
        return Err(twice("Authorization", authorization.len()));
    }
    if keys.len() > 1 {
        return Err(twice("X-API-Key", keys.len()));
    }
    let from_authorization = authorization
        .first()
        .map(|value| authorization_secret(value).unwrap_or_default());
    let from_key = keys
        .first()
        .map(|value| value.as_bytes().trim_ascii().to_vec());
    match (from_authorization, from_key) {
        // The same secret twice names one credential (clients that fill in every scheme
        // the OpenAPI document declares send both).
        (Some(a), Some(k)) if a == k => Ok(Some(a)),
        (Some(_), Some(_)) => Err(ApiError::InvalidRequest(
            crate::domain::FieldErrors::single(
                "X-API-Key",
                "sent with a different credential in Authorization; send exactly one",
            ),
        )),
        (Some(secret), None) | (None, Some(secret)) => Ok(Some(secret)),
        (None, None) => Ok(None),
    }
}

/// What a request may do: its principal, or the error that refuses it (400 for more than
/// one credential, 401 without a valid one, 403 when its scopes do not allow the request).
pub fn authorize(
    credentials: &Credentials,
    mode: Mode,
    method: &Method,
    path: &str,
    headers: &header::HeaderMap,
) -> Result<Principal, ApiError> {
    let presented = credential(headers)?;
    let principal = presented
        .as_deref()
        .and_then(|secret| credentials.authenticate(secret));
    match principal {
        None => Err(ApiError::Unauthorized(if presented.is_some() {
            "the credentials are not valid for this server (unknown, revoked or expired)"
        } else {
            "send a token: Authorization: Bearer <token>, HTTP Basic with the token as \
             password, or X-API-Key: <token>"
        })),
        Some(principal) => {
            let need = need(mode, method, path);
            if principal.may(&need) {
                Ok(principal)
            } else {
                Err(ApiError::Forbidden(match need {
                    Need::Read => "this credential may not read this: reads need scope read",
                    Need::ClusterRead(_) => {
                        "this credential may not read this cluster: it needs scope read or \
                         cluster:<cluster_dns> of this cluster"
                    }
                    Need::Write => {
                        "this credential may not write: writes need scope write \
                         (CRUD_AUTH_TOKEN has it)"
                    }
                    Need::Admin => {
                        "this credential may not do this: credentials and the audit log need \
                         scope admin (CRUD_AUTH_TOKEN has it)"
                    }
                }))
            }
        }
    }
}

/// Middleware: [`authorize`]; the [`Principal`] is put in the request's extensions.
pub async fn require_credentials(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = super::state_of(&request);
    match authorize(
        &state.credentials,
        state.mode,
        request.method(),
        request.path(),
        request.headers(),
    ) {
        Err(error) => Ok(request.error_response(error)),
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.call(request).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use actix_web::http::header::HeaderValue;

    use super::*;
    use crate::storage::credentials::ActiveCredential;

    fn credentials(pairs: &[(&str, &str)]) -> Credentials {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Credentials::from_settings(&Settings::load(None, &env).unwrap())
    }

    /// The principal a header names, and whether it may write.
    fn who(credentials: &Credentials, header: &str) -> Option<(String, bool)> {
        let mut headers = header::HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(header).unwrap(),
        );
        credential(&headers)
            .unwrap()
            .and_then(|secret| credentials.authenticate(&secret))
            .map(|p| (p.name.to_string(), p.may(&Need::Write)))
    }

    fn some(name: &str, write: bool) -> Option<(String, bool)> {
        Some((name.to_owned(), write))
    }

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn bearer_and_basic_carry_the_same_token() {
        let c = credentials(&[
            ("API_MODE", "crud"),
            ("AUTH_TOKEN", "r"),
            ("CRUD_AUTH_TOKEN", "w"),
        ]);
        assert_eq!(who(&c, "Bearer r"), some("env:AUTH_TOKEN", false));
        assert_eq!(who(&c, "bearer w"), some("env:CRUD_AUTH_TOKEN", true));
        assert_eq!(
            who(&c, &basic("flux", "w")),
            some("env:CRUD_AUTH_TOKEN", true)
        );
        assert_eq!(who(&c, &basic("", "r")), some("env:AUTH_TOKEN", false));
        assert_eq!(
            who(&c, &basic("r", "x")),
            None,
            "the token is the password, not the user"
        );
        assert_eq!(who(&c, "Bearer rr"), None);
        assert_eq!(who(&c, "Token r"), None);
        assert_eq!(who(&c, "Basic !!!"), None);
    }

    #[test]
    fn the_read_token_writes_only_in_crud_mode_without_a_write_token() {
        let c = credentials(&[("API_MODE", "crud"), ("AUTH_TOKEN", "r")]);
        assert_eq!(who(&c, "Bearer r"), some("env:AUTH_TOKEN", true));
        let c = credentials(&[
            ("API_MODE", "read-only"),
            ("AUTH_TOKEN", "r"),
            ("CRUD_AUTH_TOKEN", "w"),
        ]);
        assert_eq!(who(&c, "Bearer r"), some("env:AUTH_TOKEN", false));
        assert_eq!(
            who(&c, "Bearer w"),
            None,
            "a read-only server knows no write token"
        );
    }

    #[test]
    fn equal_tokens_give_the_write_principal() {
        let c = credentials(&[
            ("API_MODE", "crud"),
            ("AUTH_TOKEN", "same"),
            ("CRUD_AUTH_TOKEN", "same"),
        ]);
        assert_eq!(who(&c, "Bearer same"), some("env:CRUD_AUTH_TOKEN", true));
    }

    #[test]
    fn what_requests_need() {
        assert_eq!(need(Mode::Crud, &Method::GET, "/clusters"), Need::Read);
        assert_eq!(need(Mode::Crud, &Method::PATCH, "/clusters/x"), Need::Write);
        assert_eq!(need(Mode::Crud, &Method::GET, "/audit"), Need::Admin);
        assert_eq!(need(Mode::Crud, &Method::GET, "/auditx"), Need::Read);
        assert_eq!(need(Mode::Crud, &Method::DELETE, "/tokens/ci"), Need::Admin);
        assert_eq!(
            need(Mode::ReadOnly, &Method::DELETE, "/clusters/x"),
            Need::Read
        );
        let flux = "/api/v2/flux/clusters/a.example.com/namespaces";
        assert_eq!(
            need(Mode::Crud, &Method::GET, flux),
            Need::ClusterRead("a.example.com".into())
        );
        assert_eq!(
            need(Mode::Crud, &Method::GET, "/api/v2/flux/clusters"),
            Need::Read
        );
    }

    #[test]
    fn secrets_are_prefixed_and_random() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with(SECRET_PREFIX) && a.len() == SECRET_PREFIX.len() + 43);
        assert_ne!(a, b);
    }

    fn active(name: &str, secret: &str, expires_at: Option<OffsetDateTime>) -> ActiveCredential {
        ActiveCredential {
            name: name.to_owned(),
            digest: digest(secret.as_bytes()),
            scopes: vec![Scope::Read],
            expires_at,
        }
    }

    #[test]
    fn named_credentials_expire_and_their_last_use_is_written_once() {
        let named = Named::default();
        let now = OffsetDateTime::now_utc();
        let later = now + time::Duration::hours(1);
        named.replace(
            1,
            vec![
                active("ci", "fcat_a", None),
                active("short", "fcat_b", Some(later)),
            ],
        );
        let who = |secret: &str, at| {
            named
                .authenticate(&digest(secret.as_bytes()), at)
                .map(|p| p.name.to_string())
        };
        assert_eq!(who("fcat_a", now).as_deref(), Some("ci"));
        assert_eq!(who("fcat_b", now).as_deref(), Some("short"));
        assert_eq!(who("fcat_b", later), None, "expired at expires_at");
        assert_eq!(who("fcat_c", now), None);
        // A reload keeps uses not written yet; once written, they are not written again.
        named.replace(2, vec![active("ci", "fcat_a", None)]);
        let used: Vec<String> = named.unwritten_uses().into_iter().map(|u| u.0).collect();
        assert_eq!(used, ["ci"]);
        assert!(named.unwritten_uses().is_empty());
        assert_eq!(who("fcat_b", now), None, "gone with the reload");
    }
}
