//! `/tokens`: named credentials, managed with scope `admin` (crud mode). The same
//! [`issue`] serves `POST /tokens` and `flux-catalog token create`.

use actix_web::web::{self, Data, Path, Payload, ServiceConfig};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::auth::{self, Principal};
use super::body::{self, MediaTypes};
use super::crud::timestamp;
use super::docs::{AuthErrors, BodyErrors, NotFoundError};
use super::error::ApiError;
use super::{AppState, RequestId, get_only};
use crate::domain::{FieldErrors, Scope};
use crate::storage::Store;
use crate::storage::credentials::{Change, CredentialInfo, NewCredential};

pub const PATH: &str = "/tokens";

/// A credential to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// 1 to 128 letters, digits and `.`, `_`, `:`, `@`, `-`, starting with a letter or digit.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")]
    pub name: String,
    /// `read`, `write`, `admin` or `cluster:<cluster_dns>`; at least one.
    pub scopes: Vec<String>,
    /// When it stops working (RFC 3339, in the future); never without it.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A credential as listed: never its secret nor its digest.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub name: String,
    pub scopes: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Written in batches: up to a few seconds behind.
    pub last_used_at: Option<String>,
    /// The cluster it was issued with (deleting the cluster revokes it).
    pub cluster_id: Option<String>,
}

/// A credential just created, with its secret: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub credential: TokenView,
    /// The secret (`fcat_…`). Shown once; only its digest is kept.
    pub token: String,
}

impl From<CredentialInfo> for TokenView {
    fn from(info: CredentialInfo) -> Self {
        Self {
            name: info.name,
            scopes: info.scopes.iter().map(ToString::to_string).collect(),
            created_at: timestamp(info.created_at),
            expires_at: info.expires_at.map(timestamp),
            last_used_at: info.last_used_at.map(timestamp),
            cluster_id: info.cluster_id,
        }
    }
}

fn plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-'))
}

/// Checks a request, naming each bad field: the name, the scopes, the expiry.
pub fn check(
    request: &TokenRequest,
    now: OffsetDateTime,
) -> Result<(Vec<Scope>, Option<OffsetDateTime>), FieldErrors> {
    let mut errors = FieldErrors::new();
    if !plain_name(&request.name) {
        errors.add(
            "name",
            "must be 1 to 128 letters, digits, '.', '_', ':', '@' or '-', starting with a \
             letter or digit",
        );
    }
    if request.name.starts_with("env:") {
        errors.add("name", "names starting with env: are the built-in tokens'");
    }
    if request.scopes.is_empty() {
        errors.add("scopes", "must name at least one scope");
    }
    let mut scopes = Vec::new();
    for (i, scope) in request.scopes.iter().enumerate() {
        match Scope::parse(scope) {
            Ok(scope) if !scopes.contains(&scope) => scopes.push(scope),
            Ok(_) => errors.add(format!("scopes[{i}]"), "is listed twice"),
            Err(error) => errors.add(format!("scopes[{i}]"), error.to_string()),
        }
    }
    let expires_at = match &request.expires_at {
        None => None,
        Some(text) => match OffsetDateTime::parse(text, &Rfc3339) {
            Ok(at) if at > now => Some(at),
            Ok(_) => {
                errors.add("expires_at", "must be in the future");
                None
            }
            Err(error) => {
                errors.add("expires_at", format!("must be an RFC 3339 time: {error}"));
                None
            }
        },
    };
    errors.into_result(|| (scopes, expires_at))
}

/// Creates a credential: a new secret, stored as its digest, and the audit record. The
/// secret is returned to be shown once.
pub async fn issue(
    store: &Store,
    request: &TokenRequest,
    cluster_id: Option<&str>,
    change: &Change<'_>,
) -> Result<(CredentialInfo, String), ApiError> {
    let (scopes, expires_at) =
        check(request, OffsetDateTime::now_utc()).map_err(ApiError::InvalidRequest)?;
    let secret = auth::new_secret();
    let info = store
        .create_credential(
            &NewCredential {
                name: &request.name,
                digest: auth::digest(secret.as_bytes()),
                scopes: &scopes,
                expires_at,
                cluster_id,
            },
            change,
        )
        .await?;
    Ok((info, secret))
}

fn actor(request: &HttpRequest) -> (String, Option<String>) {
    let extensions = request.extensions();
    (
        extensions
            .get::<Principal>()
            .map_or_else(|| "unknown".to_owned(), |p| p.name.to_string()),
        extensions.get::<RequestId>().map(|r| r.0.clone()),
    )
}

/// Creates a named credential and shows its secret, this once.
#[utoipa::path(post, operation_id = "createToken", path = "/tokens", tag = "credentials",
    request_body(content = TokenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The credential and its secret, shown only now", body = IssuedToken),
        (status = 403, description = "The credential lacks scope admin", body = super::error::Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "A credential with this name exists", body = super::error::Problem,
            content_type = "application/problem+json"),
        BodyErrors, AuthErrors))]
pub async fn create(
    state: Data<AppState>,
    request: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read(&request, payload, &state.bodies, MediaTypes::Json).await?;
    let body: TokenRequest = body::parse_document(&bytes)?;
    let (actor, request_id) = actor(&request);
    let change = Change {
        actor: &actor,
        request_id: request_id.as_deref(),
    };
    let (info, token) = issue(&state.store, &body, None, &change).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(IssuedToken {
            credential: info.into(),
            token,
        }))
}

/// Every named credential, by name: never a secret nor a digest.
#[utoipa::path(get, operation_id = "listTokens", path = "/tokens", tag = "credentials",
    responses(
        (status = 200, description = "Every named credential", body = [TokenView]),
        (status = 403, description = "The credential lacks scope admin", body = super::error::Problem,
            content_type = "application/problem+json"),
        AuthErrors))]
pub async fn list(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let listed: Vec<TokenView> = state
        .store
        .credentials()
        .await?
        .into_iter()
        .map(TokenView::from)
        .collect();
    Ok(HttpResponse::Ok().json(listed))
}

/// Revokes a named credential: every replica refuses it within a second.
#[utoipa::path(delete, operation_id = "revokeToken", path = "/tokens/{name}", tag = "credentials",
    params(("name" = String, Path, description = "The credential's name")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "The credential lacks scope admin", body = super::error::Problem,
            content_type = "application/problem+json"),
        NotFoundError, AuthErrors))]
pub async fn revoke(
    state: Data<AppState>,
    request: HttpRequest,
    name: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (actor, request_id) = actor(&request);
    state
        .store
        .revoke_credential(
            &name,
            &Change {
                actor: &actor,
                request_id: request_id.as_deref(),
            },
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(config: &mut ServiceConfig) {
    config.service(
        web::resource(PATH)
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(web::to(super::not_allowed("GET, HEAD, POST", false))),
    );
    config.service(
        web::resource("/tokens/{name}")
            .route(web::delete().to(revoke))
            .default_service(web::to(super::not_allowed("DELETE", false))),
    );
    let _ = get_only;
}
