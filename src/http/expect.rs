//! `Expect: 100-continue`: the client asks whether to send the body. The server must decide
//! what it can before answering `100 Continue`, or a client (or a proxy buffering for it)
//! sends a body the server then refuses.
//!
//! actix-http answers `Expect` in its connection dispatcher, before any actix-web middleware
//! runs, through the `expect` service of its `HttpService`; actix-web's `HttpServer` always
//! uses the default one, which continues at once. So the server is built from actix-server
//! and actix-http directly (`startup::Application::build_on`) with [`service`] here, which
//! applies the same checks the request would meet later: the credential (400, 401, 403, as
//! `auth::authorize` decides them) and the declared `Content-Length` against the body limit
//! (413). A refused request gets its problem document, without `100 Continue`, and the
//! connection is closed as its body is unread.

use std::time::Instant;

use actix_http::body::BoxBody;
use actix_http::{Request, Response};
use actix_service::{ServiceFactory, fn_service};
use actix_web::http::header;
use actix_web::{HttpMessage, ResponseError, web};

use super::error::ApiError;
use super::{AppState, access, auth};

/// `path` with slashes folded as `normalize_path` will fold them.
fn folded(path: &str) -> String {
    format!(
        "/{}",
        path.split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/")
    )
}

/// What a request announcing a body must pass before the server asks for the body.
pub fn check(state: &AppState, request: &Request) -> Result<(), ApiError> {
    let folded = folded(request.path());
    if !super::is_public(&folded) {
        auth::authorize(
            &state.credentials,
            state.mode,
            request.method(),
            &folded,
            request.headers(),
        )?;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.bodies.max_bytes as u64) {
        return Err(ApiError::PayloadTooLarge {
            limit: state.bodies.max_bytes,
        });
    }
    Ok(())
}

/// The `expect` service of the HTTP service: continues a request that passes [`check`],
/// answers any other with its problem document (and logs it, as the access log would).
pub fn service(
    state: web::Data<AppState>,
) -> impl ServiceFactory<
    Request,
    Config = (),
    Response = Request,
    Error = Response<BoxBody>,
    InitError = (),
> + Clone {
    fn_service(move |request: Request| {
        let state = state.clone();
        async move {
            let started = Instant::now();
            match check(&state, &request) {
                Ok(()) => Ok(request),
                Err(error) => {
                    let id = super::request_id_of(request.headers());
                    let mut response = error.error_response();
                    if let Ok(value) = header::HeaderValue::from_str(&id) {
                        response.headers_mut().insert(
                            header::HeaderName::from_static(super::REQUEST_ID_HEADER),
                            value,
                        );
                    }
                    if log::log_enabled!(target: access::ACCESS_LOG, log::Level::Info) {
                        let client = access::client_address(
                            request.peer_addr().map(|a| a.ip()),
                            request.headers(),
                            &state.trusted_proxies,
                        );
                        let line = access::RequestLine::new(
                            client,
                            request.method(),
                            request.uri(),
                            request.version(),
                            request.headers(),
                        );
                        let size = match actix_web::body::MessageBody::size(response.body()) {
                            actix_web::body::BodySize::Sized(n) => Some(n),
                            _ => None,
                        };
                        access::write(&line, response.status().as_u16(), size, started, &id);
                    }
                    Err(response.into())
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_paths_are_those_of_the_probes_documents_and_api_browser() {
        let is_public = |path| crate::http::is_public(&folded(path));
        for path in [
            "/health",
            "//ready/",
            "/openapi.yaml",
            "/openapi.json",
            "/docs/",
            "/docs/swagger-ui.css",
            "/docs//no/such/file",
        ] {
            assert!(is_public(path), "{path}");
        }
        for path in [
            "/",
            "/clusters",
            "/health/x",
            "/healthz",
            "/api/v2/flux/clusters",
            "/docsx",
            "/docs.json",
        ] {
            assert!(!is_public(path), "{path}");
        }
    }
}
