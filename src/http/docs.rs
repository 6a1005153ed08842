//! Error responses shared by many operations, for the OpenAPI document. Each set is
//! disjoint in status codes so they can be combined in `responses(...)`.
#![allow(dead_code)] // documentation types: described, never constructed

use utoipa::{IntoParams, IntoResponses};

use super::error::Problem;

/// Every authenticated operation.
#[derive(IntoResponses)]
pub enum AuthErrors {
    /// Missing or invalid credentials; `WWW-Authenticate` names the accepted schemes.
    #[response(status = 401, content_type = "application/problem+json",
        headers(("WWW-Authenticate" = String, description = "Bearer and Basic challenges")))]
    Unauthorized(Problem),
    /// A bug or a broken database; the cause is in the server log only.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
    /// The database is unreachable or did not answer in time (`STORE_UNAVAILABLE`); nothing
    /// was written, unless the detail says a write was cut off while it may have been
    /// committing. On the Flux endpoints, which answer from memory: the first snapshot load
    /// has not succeeded yet (`NOT_READY`).
    #[response(status = 503, content_type = "application/problem+json",
        headers(("Retry-After" = String, description = "Seconds to wait before retrying")))]
    Unavailable(Problem),
}

/// Every write.
#[derive(IntoResponses)]
pub enum WriteErrors {
    /// The credential lacks scope `write` (`CRUD_AUTH_TOKEN` has it).
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// The server runs in `read-only` mode, which serves no writes.
    #[response(status = 405, content_type = "application/problem+json",
        headers(("Allow" = String, description = "The methods this path serves")))]
    NotAllowed(Problem),
}

/// Every operation with a request body.
#[derive(IntoResponses)]
pub enum BodyErrors {
    /// Malformed JSON (`MALFORMED_JSON`), or a document of the wrong shape: wrong types,
    /// unknown or missing fields (`INVALID_REQUEST`).
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// The body exceeds the configured limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The `Content-Type` is not accepted here.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Values that break a rule (`VALIDATION_FAILED`) or reference catalog entries that do
    /// not exist (`UNKNOWN_REFERENCE`), `errors` naming each field; or a result Flux could
    /// not use (`BREAKS_FLUX`: a missing dependency, too many inputs, a response over
    /// 900 KiB), `violations` naming each cluster.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
}

/// Operations on one resource.
#[derive(IntoResponses)]
pub enum NotFoundError {
    /// No resource with this id.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// Creates and updates.
#[derive(IntoResponses)]
pub enum ConflictError {
    /// The id or `cluster_dns` is taken (`ALREADY_EXISTS`), `depends_on` would form a cycle
    /// (`DEPENDENCY_CYCLE`, `cycle` shows it), or a concurrent write interfered (`CONFLICT`,
    /// safe to retry).
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
}

/// Writes with preconditions.
#[derive(IntoResponses)]
pub enum PreconditionError {
    /// `If-Match`, `If-None-Match` or the body's `revision` did not hold; `current_revision`
    /// (and the `ETag` header) give the stored revision.
    #[response(status = 412, content_type = "application/problem+json",
        headers(("ETag" = String, description = "The current revision, quoted, if the resource exists")))]
    PreconditionFailed(Problem),
}

/// The request headers every write understands.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct WriteHeaders {
    /// Write only if the stored revision is one of these ETags (`*`: if it exists).
    #[param(
        rename = "If-Match",
        pattern = r#"^\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$"#
    )]
    if_match: Option<String>,
    /// `*`: create only if nothing with this id exists.
    #[param(rename = "If-None-Match", pattern = r"^\s*\*\s*$")]
    if_none_match: Option<String>,
    /// `true`: answer with a report of the write, including what changes for Flux.
    #[param(rename = "X-Flux-Changes")]
    x_flux_changes: Option<bool>,
}

/// Deletes.
#[derive(IntoResponses)]
pub enum DeleteConflictError {
    /// Still referenced (`STILL_REFERENCED`, `referenced_by` lists by whom), or a concurrent
    /// write interfered (`CONFLICT`).
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
}

/// List operations.
#[derive(IntoResponses)]
pub enum QueryErrors {
    /// An unknown query parameter, or `limit`/`offset` out of range (`INVALID_REQUEST`).
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
}

/// Every operation the rate limits apply to (all but the probes), as one shared component;
/// `openapi::RateLimitResponses` adds it, following `rate_limit::UNLIMITED_PATHS`.
#[derive(IntoResponses)]
pub enum RateLimited {
    /// This client used up its request budget (`RATE_LIMITED`): its token on this endpoint
    /// (on the Flux endpoints: its token from its address), or, without a valid token, its
    /// address. Only when rate limits are on.
    #[response(status = 429, content_type = "application/problem+json",
        headers(("Retry-After" = String, description = "Seconds to wait before retrying")))]
    TooManyRequests(Problem),
}
