//! CORS: which web pages, besides the service's own, may call the API from a browser.
//!
//! Off unless `cors.allowed_origins` names origins: then no response carries a CORS header
//! and browsers keep other sites' pages from reading any of them. When on:
//! - a listed origin gets `Access-Control-Allow-Origin` with its own name on every response
//!   (errors and 429s included, so the page can read why), and the headers it may read
//!   (`Access-Control-Expose-Headers`);
//! - `*` lets any origin read the public paths only (probes, OpenAPI documents): a page
//!   elsewhere may show the API's documentation, but only a listed origin may use a token;
//! - any other origin gets no CORS header at all, and its browser refuses the response;
//! - a preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is
//!   answered here, before authentication and rate limits (browsers send it without the
//!   token); from any other origin it goes on as an ordinary `OPTIONS` request;
//! - `Access-Control-Allow-Credentials` is never sent: tokens go in an explicit
//!   `Authorization` header, which needs no credentials mode, and no cookie or cached Basic
//!   login of a browser may act for a page;
//! - every response says `Vary: Origin`, so a cache never hands one origin's answer to
//!   another.
//!
//! A small middleware rather than actix-cors, which answers refused preflights with a
//! plain-text 400 (every error here is a problem document) and cannot tell public paths
//! from the others without the same code as here.

use actix_web::HttpResponse;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

use crate::settings::{CorsSettings, Mode};

/// The request headers a page may send, besides the ones browsers always allow.
pub const ALLOWED_HEADERS: [&str; 7] = [
    "Authorization",
    "X-API-Key",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    super::REQUEST_ID_HEADER,
    super::crud::CHANGES_HEADER,
];

/// The response headers a page may read, besides the ones browsers always show.
fn exposed_headers() -> Vec<&'static str> {
    let mut exposed = vec![
        header::ETAG.as_str(),
        header::LOCATION.as_str(),
        header::LINK.as_str(),
        header::ALLOW.as_str(),
        header::RETRY_AFTER.as_str(),
        super::REQUEST_ID_HEADER,
        super::crud::TOTAL_COUNT_HEADER,
        super::crud::CHANGED_CLUSTERS_HEADER,
        super::flux::AGE_HEADER,
        super::flux::STALE_HEADER,
    ];
    exposed.extend(super::rate_limit::HEADERS.iter().map(|(name, _)| *name));
    exposed
}

/// The CORS answers of one server, prepared once.
pub struct Policy {
    origins: Vec<String>,
    any_origin_on_public_paths: bool,
    methods: HeaderValue,
    allowed_headers: HeaderValue,
    exposed_headers: HeaderValue,
    max_age: HeaderValue,
}

fn joined(names: &[&str]) -> HeaderValue {
    HeaderValue::from_str(&names.join(", ")).expect("header names are valid header values")
}

impl Policy {
    /// The policy `settings` describe; `None` when no origin is allowed (CORS off).
    pub fn from_settings(settings: &CorsSettings, mode: Mode) -> Option<Self> {
        if settings.allowed_origins.is_empty() && !settings.any_origin_on_public_paths {
            return None;
        }
        Some(Self {
            origins: settings.allowed_origins.clone(),
            any_origin_on_public_paths: settings.any_origin_on_public_paths,
            methods: HeaderValue::from_static(match mode {
                Mode::Crud => "GET, HEAD, POST, PUT, PATCH, DELETE",
                Mode::ReadOnly => "GET, HEAD",
            }),
            allowed_headers: joined(&ALLOWED_HEADERS),
            exposed_headers: joined(&exposed_headers()),
            max_age: HeaderValue::from(settings.max_age.as_secs()),
        })
    }

    /// `Access-Control-Allow-Origin` for a request from `origin` to `path`, if it is allowed.
    pub fn allow_origin(&self, origin: Option<&HeaderValue>, path: &str) -> Option<HeaderValue> {
        let origin = origin?;
        let text = origin.to_str().ok()?;
        if self.origins.iter().any(|o| o.eq_ignore_ascii_case(text)) {
            Some(origin.clone())
        } else if self.any_origin_on_public_paths && super::PUBLIC_PATHS.contains(&path) {
            Some(HeaderValue::from_static("*"))
        } else {
            None
        }
    }
}

/// Middleware: see the module documentation.
pub async fn cors(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = super::state_of(&request);
    let Some(policy) = state.cors.as_ref() else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    let allowed = policy.allow_origin(request.headers().get(header::ORIGIN), request.path());
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let (true, Some(origin)) = (preflight, &allowed) {
        let response = HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, policy.methods.clone()))
            .insert_header((
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                policy.allowed_headers.clone(),
            ))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, policy.max_age.clone()))
            .insert_header((header::VARY, HeaderValue::from_static("Origin")))
            .finish();
        return Ok(request.into_response(response).map_into_right_body());
    }
    let mut response: ServiceResponse<EitherBody<_>> =
        next.call(request).await?.map_into_left_body();
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            policy.exposed_headers.clone(),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy(origins: &[&str], any: bool) -> Option<Policy> {
        Policy::from_settings(
            &CorsSettings {
                allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
                any_origin_on_public_paths: any,
                max_age: Duration::from_secs(600),
            },
            Mode::Crud,
        )
    }

    fn allowed(policy: &Policy, origin: &str, path: &str) -> Option<String> {
        policy
            .allow_origin(Some(&HeaderValue::from_str(origin).unwrap()), path)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn no_origins_means_no_policy() {
        assert!(policy(&[], false).is_none());
    }

    #[test]
    fn listed_origins_everywhere_and_the_wildcard_only_on_public_paths() {
        let p = policy(&["https://ui.example.com"], true).unwrap();
        let ui = "https://ui.example.com";
        assert_eq!(allowed(&p, ui, "/clusters").as_deref(), Some(ui));
        assert_eq!(
            allowed(&p, "https://UI.example.com", "/clusters").as_deref(),
            Some("https://UI.example.com")
        );
        assert_eq!(allowed(&p, "https://evil.example.com", "/clusters"), None);
        assert_eq!(
            allowed(&p, "https://evil.example.com", "/openapi.json").as_deref(),
            Some("*")
        );
        assert_eq!(allowed(&p, "null", "/clusters"), None);
        assert!(p.allow_origin(None, "/clusters").is_none());
        let listed_only = policy(&["https://ui.example.com"], false).unwrap();
        assert_eq!(
            allowed(&listed_only, "https://evil.example.com", "/openapi.json"),
            None
        );
    }

    #[test]
    fn pages_may_read_every_header_the_api_sends_for_them() {
        let exposed = exposed_headers().join(",").to_ascii_lowercase();
        for name in [
            "etag",
            "location",
            "x-request-id",
            "ratelimit-remaining",
            "retry-after",
            "x-catalog-age",
            "x-catalog-stale",
        ] {
            assert!(exposed.contains(name), "{name} in {exposed}");
        }
    }
}
