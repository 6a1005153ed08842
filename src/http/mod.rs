//! The HTTP API: routing, authentication, and one module per resource.

pub mod access;
mod admission;
mod audit;
pub mod auth;
mod body;
mod browser;
pub mod catalog_document;
mod changes;
mod clusters;
mod components;
pub mod connection;
pub mod cors;
pub mod crud;
mod docs;
pub mod error;
pub mod expect;
mod flux;
mod health;
pub mod metrics;
mod namespaces;
pub mod openapi;
mod preconditions;
pub mod rate_limit;
mod rolebindings;
pub mod tokens;

pub use access::{ACCESS_LOG, access_log};
pub use admission::WriteSlots;
pub use body::{BodyLimits, parse_document};
pub use clusters::ClusterBody;
pub use components::PlatformComponentBody;
pub use namespaces::NamespaceBody;
pub use rolebindings::RoleBindingBody;

use std::future::{Ready, ready};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, HttpResponse, web};

use self::auth::Credentials;
use self::error::ApiError;
use crate::domain::Rules;
use crate::settings::Mode;
use crate::storage::Store;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub mode: Mode,
    pub credentials: Credentials,
    pub rules: Rules,
    /// What request bodies may be.
    pub bodies: body::BodyLimits,
    /// Writes processed at once.
    pub writes: admission::WriteSlots,
    /// What request headers may be.
    pub headers: HeaderLimits,
    /// What the Flux endpoints answer from.
    pub snapshot: std::sync::Arc<crate::snapshot::Snapshot>,
    /// What each cluster's Flux inputs must stay within; checked on every write.
    pub limits: crate::domain::impact::FluxLimits,
    /// Peers whose forwarding headers name the client, for the access log and rate limits.
    pub trusted_proxies: crate::settings::TrustedProxies,
    /// What `/metrics` shows.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// `None` when rate limiting is off.
    pub rate_limits: Option<rate_limit::RateLimits>,
    /// `None` when CORS is off.
    pub cors: Option<cors::Policy>,
}

/// A handler answering 405 with the methods the path does serve.
fn not_allowed(
    allow: &'static str,
    read_only: bool,
) -> impl Fn() -> Ready<Result<HttpResponse, ApiError>> + Clone + 'static {
    move || ready(Err(ApiError::MethodNotAllowed { allow, read_only }))
}

/// A path that serves only GET (and so HEAD); other methods get 405.
fn get_only(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(not_allowed("GET, HEAD", false)))
}

/// The paths that need no credential: the probes, the OpenAPI document and the API browser
/// (with its files, see [`is_public`]). Everything else needs a token (also checked before
/// `100 Continue`, see [`expect`]).
pub const PUBLIC_PATHS: [&str; 5] = [
    "/health",
    "/ready",
    "/openapi.yaml",
    "/openapi.json",
    browser::PATH,
];

/// Whether a path, slashes folded as [`normalize_path`] does, needs no credential: one of
/// [`PUBLIC_PATHS`], or anything under the API browser's (its files, or a 404).
pub fn is_public(path: &str) -> bool {
    PUBLIC_PATHS.contains(&path)
        || path
            .strip_prefix(browser::PATH)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Prometheus metrics: public unless `metrics.require_token` is set.
pub const METRICS_PATH: &str = "/metrics";

/// Registers every route: [`PUBLIC_PATHS`] without a token, everything else behind it.
pub fn configure(config: &mut web::ServiceConfig, mode: Mode, metrics_need_token: bool) {
    let metrics_route = || get_only(METRICS_PATH).route(web::get().to(metrics::metrics));
    if !metrics_need_token {
        config.service(metrics_route());
    }
    for path in PUBLIC_PATHS {
        let route = match path {
            "/health" => web::get().to(health::health),
            "/ready" => web::get().to(health::ready),
            "/openapi.yaml" => web::get().to(openapi::yaml),
            "/openapi.json" => web::get().to(openapi::json),
            browser::PATH => web::get().to(browser::page),
            other => unreachable!("{other} has no handler"),
        };
        config.service(get_only(path).route(route));
    }
    config.service(get_only(browser::FILES).route(web::get().to(browser::file)));

    config.service(
        web::scope("")
            .wrap(from_fn(admission::one_of_few_writes))
            .wrap(from_fn(auth::require_credentials))
            .configure(|config| {
                config.service(
                    web::scope(flux::CLUSTERS_PATH)
                        .service(get_only("").route(web::get().to(flux::clusters)))
                        .default_service(web::to(flux::cluster_endpoint)),
                );
                if mode == Mode::Crud {
                    config.service(get_only("/audit").route(web::get().to(audit::list)));
                    tokens::configure(config);
                }
                if metrics_need_token {
                    config.service(metrics_route());
                }
                clusters::configure(config, mode);
                components::configure(config, mode);
                namespaces::configure(config, mode);
                rolebindings::configure(config, mode);
            })
            .default_service(web::to(|request: actix_web::HttpRequest| {
                ready(Err::<HttpResponse, _>(ApiError::NotFound(format!(
                    "no route for {}",
                    request.path()
                ))))
            })),
    );
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request's id: the client's `X-Request-Id` when it is short and plain, else a new
/// one. Echoed in the response and the access log, so a client's report can be found in
/// the server's log.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn acceptable_request_id(value: &HeaderValue) -> Option<String> {
    let value = value.to_str().ok()?;
    let plain = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    plain.then(|| value.to_owned())
}

/// A new id: random per process, then counted. Unique without a system call per request,
/// which at Flux's request rates is measurable.
fn new_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_owned());
    format!("{prefix}{:016x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The id of a request with these headers (see [`RequestId`]).
pub fn request_id_of(headers: &actix_web::http::header::HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(acceptable_request_id)
        .unwrap_or_else(new_request_id)
}

/// Middleware giving every request (and its response) an id. It sits inside the access
/// log, so the logged line carries the id even for requests refused by authentication.
pub async fn request_id(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id_of(request.headers());
    let value = HeaderValue::from_str(&id).ok();
    request.extensions_mut().insert(RequestId(id));
    // Inner layers answer errors with responses (authentication included), so there is
    // always a response to mark. The request must not be cloned before routing: the router
    // needs it unshared to record path parameters.
    let mut response = next.call(request).await?;
    if let Some(value) = value {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// Middleware answering HEAD like GET, as RFC 9110 asks of every server: routes are GET
/// routes, and the HTTP layer, which saw the request's own method, sends the response's
/// headers (its length included) without the body. Inside the access log, which shows the
/// method as sent.
pub async fn head_as_get(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if request.method() == actix_web::http::Method::HEAD {
        request.head_mut().method = actix_web::http::Method::GET;
    }
    next.call(request).await
}

/// What request headers may be (settings `http.max_header_count`, `http.max_header_bytes`).
#[derive(Debug, Clone, Copy)]
pub struct HeaderLimits {
    pub max_count: usize,
    /// Names and values together.
    pub max_bytes: usize,
}

/// The state every middleware reads, registered on the app in `startup`.
fn state_of(request: &ServiceRequest) -> web::Data<AppState> {
    request
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .clone()
}

/// Middleware refusing, with 431, requests whose headers exceed [`HeaderLimits`].
pub async fn bounded_headers<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let limits = state_of(&request).headers;
    let headers = request.headers();
    let count = headers.len();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let refusal = if count > limits.max_count {
        Some(format!(
            "the request has {count} header fields; at most {} are accepted (http.max_header_count)",
            limits.max_count
        ))
    } else if bytes > limits.max_bytes {
        Some(format!(
            "the request's header fields take {bytes} bytes; at most {} are accepted (http.max_header_bytes)",
            limits.max_bytes
        ))
    } else {
        None
    };
    match refusal {
        Some(reason) => Ok(request
            .error_response(ApiError::HeadersTooLarge(reason))
            .map_into_right_body()),
        None => Ok(next.call(request).await?.map_into_left_body()),
    }
}

/// The path as the client sent it, kept by [`normalize_path`] when it folded it (relative
/// references resolve against the path as sent).
#[derive(Debug, Clone)]
pub struct SentPath(pub String);

/// Middleware folding doubled and trailing slashes (`/clusters/`, `//clusters`) before
/// routing. Paths that need nothing, nearly all of them, cost one scan of their bytes.
pub async fn normalize_path(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let path = request.path();
    let needs = path.contains("//") || (path.len() > 1 && path.ends_with('/'));
    if needs {
        let mut folded = String::with_capacity(path.len());
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            folded.push('/');
            folded.push_str(segment);
        }
        if folded.is_empty() {
            folded.push('/');
        }
        let head = request.head();
        let mut parts = head.uri.clone().into_parts();
        let path_and_query = match head.uri.query() {
            Some(query) => format!("{folded}?{query}"),
            None => folded,
        };
        let sent = SentPath(path.to_owned());
        if let Ok(path_and_query) = path_and_query.parse() {
            parts.path_and_query = Some(path_and_query);
            if let Ok(uri) = actix_web::http::Uri::from_parts(parts) {
                request.match_info_mut().get_mut().update(&uri);
                request.head_mut().uri = uri;
                request.extensions_mut().insert(sent);
            }
        }
    }
    next.call(request).await
}
