//! Token authentication for every endpoint except the probes and the OpenAPI document.
//!
//! Flux's provider secret carries either a bearer `token` or a `username`/`password` pair,
//! so both `Authorization: Bearer <token>` and HTTP Basic with the token as password work.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use base64::Engine;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use crate::settings::{Mode, Settings};

/// Who made a request, as far as the service can tell: the name of the credential used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `env:AUTH_TOKEN` or `env:CRUD_AUTH_TOKEN`; never the token itself.
    pub name: &'static str,
    pub can_write: bool,
}

struct Token {
    principal: Principal,
    /// Tokens are compared as SHA-256 digests: equal length whatever was sent, so the
    /// constant-time comparison leaks neither content nor length.
    digest: [u8; 32],
}

/// The tokens this server accepts.
pub struct Credentials {
    tokens: Vec<Token>,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Credentials {
    /// The read token grants reads; in crud mode `CRUD_AUTH_TOKEN` grants writes, or the
    /// read token does when no write token is set. A read-only server accepts no write
    /// credential at all.
    pub fn from_settings(settings: &Settings) -> Self {
        let crud = settings.api_mode == Mode::Crud;
        let mut tokens = Vec::new();
        if let Some(token) = &settings.auth_token {
            tokens.push(Token {
                principal: Principal {
                    name: "env:AUTH_TOKEN",
                    can_write: crud && settings.crud_auth_token.is_none(),
                },
                digest: digest(token.expose_secret().as_bytes()),
            });
        }
        if let (true, Some(token)) = (crud, &settings.crud_auth_token) {
            tokens.push(Token {
                principal: Principal {
                    name: "env:CRUD_AUTH_TOKEN",
                    can_write: true,
                },
                digest: digest(token.expose_secret().as_bytes()),
            });
        }
        Self { tokens }
    }

    /// The principal whose token the `Authorization` header carries, if any. Every token is
    /// compared, so timing does not reveal which one matched; the most privileged match wins
    /// (the two tokens may be equal).
    pub fn authenticate(&self, authorization: Option<&header::HeaderValue>) -> Option<Principal> {
        let presented = presented_token(authorization?)?;
        let presented = digest(&presented);
        let mut found: Option<&Principal> = None;
        for token in &self.tokens {
            if bool::from(token.digest.ct_eq(&presented))
                && found.is_none_or(|f| token.principal.can_write && !f.can_write)
            {
                found = Some(&token.principal);
            }
        }
        found.cloned()
    }
}

/// The token in a Bearer or Basic `Authorization` header (scheme names are case-insensitive).
fn presented_token(value: &header::HeaderValue) -> Option<Vec<u8>> {
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

/// Writes are every method but GET, HEAD and OPTIONS; reading the audit log counts as one
/// (it shows every change and who made it). On a read-only server any valid token passes,
/// so that a write then meets the route's 405 instead of a misleading 403.
fn needs_write(mode: Mode, method: &Method, path: &str) -> bool {
    mode == Mode::Crud
        && (!matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
            || path == "/audit"
            || path.starts_with("/audit/"))
}

/// The request's one credential: its `Authorization` header, if any. `Authorization` is
/// the only header a credential is accepted in; more than one of it is refused (400), as
/// which one counted would depend on who reads the headers.
pub fn credential(headers: &header::HeaderMap) -> Result<Option<&header::HeaderValue>, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION);
    let first = values.next();
    let more = values.count();
    if more > 0 {
        return Err(ApiError::InvalidRequest(
            crate::domain::FieldErrors::single(
                "Authorization",
                format!("sent {} times; send exactly one credential", more + 1),
            ),
        ));
    }
    Ok(first)
}

/// What a request may do: its principal, or the error that refuses it (400 for more than
/// one credential, 401 without a valid one, 403 for a read credential on a write).
pub fn authorize(
    credentials: &Credentials,
    mode: Mode,
    method: &Method,
    path: &str,
    headers: &header::HeaderMap,
) -> Result<Principal, ApiError> {
    let presented = credential(headers)?;
    match credentials.authenticate(presented) {
        None => Err(ApiError::Unauthorized(if presented.is_some() {
            "the credentials are not valid for this server"
        } else {
            "send a token: Authorization: Bearer <token> (or HTTP Basic with the token as password)"
        })),
        Some(principal) if needs_write(mode, method, path) && !principal.can_write => {
            Err(ApiError::Forbidden(
                "this token may only read; writes and the audit log need CRUD_AUTH_TOKEN",
            ))
        }
        Some(principal) => Ok(principal),
    }
}

/// Middleware: [`authorize`]; the [`Principal`] is put in the request's extensions.
pub async fn require_credentials(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .clone();
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

    fn credentials(pairs: &[(&str, &str)]) -> Credentials {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Credentials::from_settings(&Settings::load(None, &env).unwrap())
    }

    fn who(credentials: &Credentials, header: &str) -> Option<(&'static str, bool)> {
        credentials
            .authenticate(Some(&HeaderValue::from_str(header).unwrap()))
            .map(|p| (p.name, p.can_write))
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
        assert_eq!(who(&c, "Bearer r"), Some(("env:AUTH_TOKEN", false)));
        assert_eq!(who(&c, "bearer w"), Some(("env:CRUD_AUTH_TOKEN", true)));
        assert_eq!(
            who(&c, &basic("flux", "w")),
            Some(("env:CRUD_AUTH_TOKEN", true))
        );
        assert_eq!(who(&c, &basic("", "r")), Some(("env:AUTH_TOKEN", false)));
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
        assert_eq!(who(&c, "Bearer r"), Some(("env:AUTH_TOKEN", true)));
        let c = credentials(&[
            ("API_MODE", "read-only"),
            ("AUTH_TOKEN", "r"),
            ("CRUD_AUTH_TOKEN", "w"),
        ]);
        assert_eq!(who(&c, "Bearer r"), Some(("env:AUTH_TOKEN", false)));
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
        assert_eq!(who(&c, "Bearer same"), Some(("env:CRUD_AUTH_TOKEN", true)));
    }

    #[test]
    fn safe_methods_only_read() {
        assert!(!needs_write(Mode::Crud, &Method::GET, "/clusters"));
        assert!(needs_write(Mode::Crud, &Method::PATCH, "/clusters/x"));
        assert!(needs_write(Mode::Crud, &Method::GET, "/audit"));
        assert!(!needs_write(Mode::ReadOnly, &Method::DELETE, "/clusters/x"));
    }
}
