//! One error type for every handler, rendered as an RFC 9457 problem document.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::impact::Violation;
use crate::domain::merge::DanglingReference;
use crate::domain::validation::Rejection;
use crate::domain::{FieldError, FieldErrors};
use crate::storage::{Referrer, StoreError};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Stable, machine-readable error codes. Clients branch on these, never on `title` or `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 400: the body is not well-formed JSON.
    MalformedJson,
    /// 400: the body or query does not have the expected shape (types, unknown or missing fields).
    InvalidRequest,
    /// 401: no credentials, or wrong ones.
    Unauthorized,
    /// 403: valid credentials whose scopes do not allow the request.
    Forbidden,
    /// 404: no such resource, cluster or route.
    NotFound,
    /// 405: the method is not served on this path (in `read-only` mode: every write).
    MethodNotAllowed,
    /// 409: a create named an id (or `cluster_dns`) that is taken.
    AlreadyExists,
    /// 409: a delete of something still referenced; `referenced_by` lists by whom.
    StillReferenced,
    /// 409: a concurrent write interfered; retrying is safe.
    Conflict,
    /// 409: `depends_on` would form a cycle; `cycle` shows it.
    DependencyCycle,
    /// 412: `If-Match`, `If-None-Match` or the body's `revision` did not hold;
    /// `current_revision` is the stored one.
    PreconditionFailed,
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge,
    /// 415: the body's media type is not accepted here.
    UnsupportedMediaType,
    /// 408: the body did not arrive within the configured time.
    RequestTimeout,
    /// 431: more request headers, or larger ones, than the configured limits.
    HeadersTooLarge,
    /// 422: the values break a rule; `errors` names each field.
    ValidationFailed,
    /// 422: references to catalog entries that do not exist; `errors` names each field.
    UnknownReference,
    /// 422: the result would leave clusters with inputs Flux cannot use (a missing
    /// dependency, too many inputs, a response too large); `violations` names each.
    BreaksFlux,
    /// 429: this client used up its request budget; `Retry-After` says when to retry.
    RateLimited,
    /// 500: a bug or a broken database; details are in the server log only.
    InternalError,
    /// 503: the database is unreachable, or stopped answering mid-operation.
    StoreUnavailable,
    /// 503: `/ready` only: the service cannot serve yet; `detail` says why.
    NotReady,
    /// 503: too many writes, or too many request bodies, at once; retry after
    /// `Retry-After`.
    Busy,
}

impl ErrorCode {
    fn status(self) -> StatusCode {
        match self {
            Self::MalformedJson | Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::AlreadyExists
            | Self::StillReferenced
            | Self::Conflict
            | Self::DependencyCycle => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::ValidationFailed | Self::UnknownReference | Self::BreaksFlux => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::StoreUnavailable | Self::NotReady | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::MalformedJson => "Malformed JSON",
            Self::InvalidRequest => "Invalid request",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::AlreadyExists => "Already exists",
            Self::StillReferenced => "Still referenced",
            Self::Conflict => "Conflict",
            Self::DependencyCycle => "Dependency cycle",
            Self::PreconditionFailed => "Precondition failed",
            Self::PayloadTooLarge => "Payload too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::RequestTimeout => "Request timeout",
            Self::HeadersTooLarge => "Request header fields too large",
            Self::ValidationFailed => "Validation failed",
            Self::UnknownReference => "Unknown reference",
            Self::BreaksFlux => "Breaks Flux",
            Self::RateLimited => "Too many requests",
            Self::InternalError => "Internal error",
            Self::StoreUnavailable => "Store unavailable",
            Self::NotReady => "Not ready",
            Self::Busy => "Busy",
        }
    }

    /// The code in lower snake case (`validation_failed`), for metric labels.
    pub fn label(self) -> String {
        self.slug().replace('-', "_")
    }

    fn slug(self) -> String {
        format!("{self:?}")
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let dash = (i > 0 && c.is_ascii_uppercase()).then_some('-');
                dash.into_iter()
                    .chain(std::iter::once(c.to_ascii_lowercase()))
            })
            .collect()
    }
}

/// An RFC 9457 problem document; every error response of this service has this shape.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:flux-catalog:problem:validation-failed",
    "title": "Validation failed",
    "status": 422,
    "detail": "1 field is invalid",
    "code": "VALIDATION_FAILED",
    "errors": [{"field": "cluster_dns", "message": "label \"Bad\" must contain only lowercase letters, digits and '-', found 'B'"}]
}))]
pub struct Problem {
    /// Identifies the problem type; one per `code`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    /// What went wrong with this request, for people.
    pub detail: String,
    pub code: ErrorCode,
    /// Each refused field (validation problems only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// Who still references the resource (`STILL_REFERENCED` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referenced_by: Vec<ProblemReferrer>,
    /// The stored revision (`PRECONDITION_FAILED` when the resource exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<i64>,
    /// The ids along the cycle, the first repeated at the end (`DEPENDENCY_CYCLE` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<String>,
    /// What would break, cluster by cluster (`BREAKS_FLUX` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<ProblemViolation>,
}

/// One rule a cluster's Flux inputs would break.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemViolation {
    pub cluster: String,
    /// `missing_dependency`, `too_many_inputs` or `response_too_large`.
    pub rule: String,
    pub message: String,
}

/// One refused field: its path in the request (`platform_components[2].id`) and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemReferrer {
    /// `cluster` or `platform component`.
    pub kind: String,
    pub id: String,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `MALFORMED_JSON`.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// 400 `INVALID_REQUEST`, naming each field.
    #[error("invalid request: {0}")]
    InvalidRequest(FieldErrors),
    /// 401, with a `WWW-Authenticate` challenge.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405, with the methods the path does serve.
    #[error("method not allowed; this path serves {allow}")]
    MethodNotAllowed {
        allow: &'static str,
        read_only: bool,
    },
    /// 409 `ALREADY_EXISTS`.
    #[error("{kind} with {field} {value:?} already exists")]
    AlreadyExists {
        kind: &'static str,
        field: &'static str,
        value: String,
    },
    /// 409 `STILL_REFERENCED`.
    #[error("{kind} {id:?} is still referenced")]
    StillReferenced {
        kind: &'static str,
        id: String,
        referrers: Vec<Referrer>,
    },
    /// 409 `CONFLICT`.
    #[error("a concurrent change conflicted with this one; retry the request")]
    Conflict,
    /// 409 `DEPENDENCY_CYCLE`.
    #[error("depends_on would form a cycle: {}", .0.join(" -> "))]
    DependencyCycle(Vec<String>),
    /// 412, with the stored revision (`None`: no such resource).
    #[error("precondition failed")]
    PreconditionFailed {
        kind: &'static str,
        current: Option<i64>,
    },
    /// 422 `BREAKS_FLUX`.
    #[error("the result would break Flux on {} cluster(s)", .0.len())]
    BreaksFlux(Vec<Violation>),
    /// 413.
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415; `given: None` when no `Content-Type` was sent.
    #[error(
        "{}; send {expected}",
        match given {
            Some(given) => format!("unsupported media type {given:?}"),
            None => "the body has no Content-Type".to_owned(),
        }
    )]
    UnsupportedMediaType {
        given: Option<String>,
        expected: &'static str,
    },
    /// 408: the body did not arrive in time (the connection is closed after the answer).
    #[error("the request body did not arrive within {} s", .0.as_secs())]
    BodyTimeout(std::time::Duration),
    /// 431.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// 503 `BUSY`, with `Retry-After`.
    #[error("{0}")]
    Busy(String),
    /// 422 `VALIDATION_FAILED`.
    #[error("validation failed: {0}")]
    ValidationFailed(FieldErrors),
    /// 422 `UNKNOWN_REFERENCE`.
    #[error("unknown references: {0}")]
    UnknownReference(FieldErrors),
    /// 503 `STORE_UNAVAILABLE`.
    #[error("the database is unavailable")]
    StoreUnavailable(#[source] anyhow::Error),
    /// 503 `STORE_UNAVAILABLE`: the database stopped answering mid-operation.
    #[error(
        "the database did not answer within {} ms; a write that was committing may still \
         take effect, so read the resource back before retrying",
        .0.as_millis()
    )]
    StoreTimedOut(std::time::Duration),
    /// 503 `NOT_READY` (readiness probe).
    #[error("not ready: {0}")]
    NotReady(String),
    /// 429, with `Retry-After`; `client` says whose budget ran out ("for this token").
    #[error("too many requests {client}; retry in {retry_after_secs} s")]
    RateLimited {
        client: &'static str,
        retry_after_secs: u64,
    },
    /// 500; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::MalformedJson(_) => ErrorCode::MalformedJson,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Self::StillReferenced { .. } => ErrorCode::StillReferenced,
            Self::Conflict => ErrorCode::Conflict,
            Self::DependencyCycle(_) => ErrorCode::DependencyCycle,
            Self::PreconditionFailed { .. } => ErrorCode::PreconditionFailed,
            Self::BreaksFlux(_) => ErrorCode::BreaksFlux,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            Self::BodyTimeout(_) => ErrorCode::RequestTimeout,
            Self::HeadersTooLarge(_) => ErrorCode::HeadersTooLarge,
            Self::Busy(_) => ErrorCode::Busy,
            Self::ValidationFailed(_) => ErrorCode::ValidationFailed,
            Self::UnknownReference(_) => ErrorCode::UnknownReference,
            Self::StoreUnavailable(_) | Self::StoreTimedOut(_) => ErrorCode::StoreUnavailable,
            Self::NotReady(_) => ErrorCode::NotReady,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::InvalidRequest(errors) | Self::ValidationFailed(errors) => {
                let n = errors.iter().count();
                let what = if n == 1 { "field is" } else { "fields are" };
                format!("{n} {what} invalid: {errors}")
            }
            Self::UnknownReference(errors) => {
                let n = errors.iter().count();
                let what = if n == 1 {
                    "reference names"
                } else {
                    "references name"
                };
                format!("{n} {what} nothing in the catalog: {errors}")
            }
            Self::MethodNotAllowed {
                allow,
                read_only: true,
            } => format!(
                "this server runs in read-only mode (API_MODE=read-only) and serves only {allow} here; \
                 send writes to a server in crud mode"
            ),
            Self::PreconditionFailed {
                kind,
                current: Some(revision),
            } => format!(
                "the {kind} is at revision {revision}, which the request's If-Match or revision \
                 does not name; read it again and reapply the change"
            ),
            Self::PreconditionFailed {
                kind,
                current: None,
            } => format!("no such {kind} exists, so the precondition cannot hold"),
            Self::BreaksFlux(violations) => {
                const SHOWN: usize = 20;
                let mut shown: Vec<String> = violations
                    .iter()
                    .take(SHOWN)
                    .map(ToString::to_string)
                    .collect();
                if violations.len() > SHOWN {
                    shown.push(format!("and {} more", violations.len() - SHOWN));
                }
                format!(
                    "refused: Flux could not use the result: {}",
                    shown.join("; ")
                )
            }
            Self::StillReferenced {
                kind,
                id,
                referrers,
            } => {
                let list: Vec<String> = referrers
                    .iter()
                    .map(|r| format!("{} {:?}", r.kind, r.id))
                    .collect();
                format!(
                    "{kind} {id:?} cannot be deleted while referenced by {}; remove those references first",
                    list.join(", ")
                )
            }
            other => other.to_string(),
        }
    }

    fn field_errors(&self) -> Vec<ProblemField> {
        let from = |errors: &FieldErrors| {
            errors
                .iter()
                .map(|FieldError { field, message }| ProblemField {
                    field: field.clone(),
                    message: message.clone(),
                })
                .collect()
        };
        match self {
            Self::InvalidRequest(e) | Self::ValidationFailed(e) | Self::UnknownReference(e) => {
                from(e)
            }
            Self::AlreadyExists { field, value, .. } => vec![ProblemField {
                field: (*field).to_owned(),
                message: format!("{value:?} is already taken"),
            }],
            _ => Vec::new(),
        }
    }

    pub fn problem(&self) -> Problem {
        let code = self.code();
        Problem {
            problem_type: format!("urn:flux-catalog:problem:{}", code.slug()),
            title: code.title().to_owned(),
            status: code.status().as_u16(),
            detail: self.detail(),
            code,
            errors: self.field_errors(),
            referenced_by: match self {
                Self::StillReferenced { referrers, .. } => referrers
                    .iter()
                    .map(|r| ProblemReferrer {
                        kind: r.kind.to_owned(),
                        id: r.id.clone(),
                    })
                    .collect(),
                _ => Vec::new(),
            },
            current_revision: match self {
                Self::PreconditionFailed { current, .. } => *current,
                _ => None,
            },
            cycle: match self {
                Self::DependencyCycle(cycle) => cycle.clone(),
                _ => Vec::new(),
            },
            violations: match self {
                Self::BreaksFlux(violations) => violations
                    .iter()
                    .map(|v| ProblemViolation {
                        cluster: v.cluster().to_string(),
                        rule: match v {
                            Violation::MissingDependency { .. } => "missing_dependency",
                            Violation::TooManyInputs { .. } => "too_many_inputs",
                            Violation::ResponseTooLarge { .. } => "response_too_large",
                        }
                        .to_owned(),
                        message: v.to_string(),
                    })
                    .collect(),
                _ => Vec::new(),
            },
        }
    }
}

/// Walks the whole `source()` chain, so a log line shows the root cause.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) => log::error!("internal error: {}", Chain(cause.as_ref())),
            Self::StoreUnavailable(cause) => {
                log::warn!("database unavailable: {}", Chain(cause.as_ref()))
            }
            Self::StoreTimedOut(after) => {
                log::warn!(
                    "database unavailable: no answer within {} ms",
                    after.as_millis()
                )
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE));
        match self {
            Self::Unauthorized(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="flux-catalog", Basic realm="flux-catalog", charset="UTF-8""#),
                ));
            }
            Self::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, *allow));
            }
            Self::StoreUnavailable(_) | Self::StoreTimedOut(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            Self::Busy(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            // What is left of the body would be read as the next request.
            Self::BodyTimeout(_) => {
                response.force_close();
            }
            Self::RateLimited {
                retry_after_secs, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::PreconditionFailed {
                current: Some(revision),
                ..
            } => {
                response.insert_header((header::ETAG, super::preconditions::etag(*revision)));
            }
            _ => {}
        }
        response.body(serde_json::to_vec(&self.problem()).expect("problems serialise"))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists { kind, field, value } => {
                Self::AlreadyExists { kind, field, value }
            }
            StoreError::StillReferenced {
                kind,
                id,
                referrers,
            } => Self::StillReferenced {
                kind,
                id,
                referrers,
            },
            StoreError::UnknownReferences(errors) => Self::UnknownReference(errors),
            StoreError::NotFound { kind, id } => {
                Self::NotFound(format!("no {kind} with id {id:?}"))
            }
            StoreError::PreconditionFailed { kind, current } => {
                Self::PreconditionFailed { kind, current }
            }
            StoreError::DependencyCycle(cycle) => Self::DependencyCycle(cycle),
            StoreError::BreaksFlux(violations) => Self::BreaksFlux(violations),
            StoreError::Rejected(Rejection::Malformed(errors)) => Self::InvalidRequest(errors),
            StoreError::Rejected(Rejection::Invalid(errors)) => Self::ValidationFailed(errors),
            StoreError::Conflict(cause) => {
                log::info!("write refused after a concurrent change: {}", Chain(&cause));
                Self::Conflict
            }
            StoreError::Unavailable(cause) => Self::StoreUnavailable(cause),
            StoreError::TimedOut(after) => Self::StoreTimedOut(after),
            StoreError::Corrupt(what) => {
                Self::Internal(anyhow::anyhow!("corrupt stored data: {what}"))
            }
            StoreError::Unexpected(cause) => Self::Internal(cause),
        }
    }
}

impl From<DanglingReference> for ApiError {
    fn from(error: DanglingReference) -> Self {
        Self::Internal(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_types_are_derived_from_the_code() {
        assert_eq!(ErrorCode::ValidationFailed.slug(), "validation-failed");
        assert_eq!(ErrorCode::NotFound.slug(), "not-found");
        let problem = ApiError::NotFound("no cluster".into()).problem();
        assert_eq!(problem.problem_type, "urn:flux-catalog:problem:not-found");
        assert_eq!(problem.status, 404);
    }

    #[test]
    fn internal_errors_never_reveal_their_cause() {
        let problem =
            ApiError::Internal(anyhow::anyhow!("relation \"clusters\" does not exist")).problem();
        assert_eq!(problem.detail, "internal error");
    }
}
