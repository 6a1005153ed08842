//! `GET /audit`: every accepted write, newest first. Needs scope `admin` (`CRUD_AUTH_TOKEN` has it).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::body;
use super::crud::{self, ListQuery, page_response, timestamp};
use super::docs::{AuthErrors, QueryErrors};
use super::error::ApiError;
use crate::domain::FieldErrors;
use crate::storage::audit::{AuditFilter, AuditRecord};

/// Filters and paging; every filter is optional.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `cluster`, `platform_component`, `namespace` or `rolebinding`.
    kind: Option<String>,
    /// Only records of the resource with this id.
    id: Option<String>,
    /// Only records of this credential, such as `env:CRUD_AUTH_TOKEN`.
    actor: Option<String>,
    /// `create`, `update`, `delete` or `rollback`.
    action: Option<String>,
    /// Only records written at or after this time (RFC 3339).
    since: Option<String>,
    /// Only records written at or before this time (RFC 3339).
    until: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

const ACTIONS: [&str; 4] = ["create", "update", "delete", "rollback"];

impl ListQuery for AuditQuery {
    type Filter = ();
    fn limit(&self) -> Option<i64> {
        self.limit
    }
    fn offset(&self) -> Option<i64> {
        self.offset
    }
    fn filter_params(&self) -> Vec<(&'static str, String)> {
        [
            ("kind", &self.kind),
            ("id", &self.id),
            ("actor", &self.actor),
            ("action", &self.action),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
        .collect()
    }
    fn into_filter(self) {}
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        let mut errors = FieldErrors::new();
        let one_of =
            |field: &str, value: &Option<String>, known: &[&str], errors: &mut FieldErrors| {
                if let Some(value) = value
                    && !known.contains(&value.as_str())
                {
                    errors.add(field, format!("must be one of {known:?}, got {value:?}"));
                }
            };
        one_of(
            "kind",
            &self.kind,
            &crate::domain::kind::audited_kinds(),
            &mut errors,
        );
        one_of("action", &self.action, &ACTIONS, &mut errors);
        let mut time = |field: &str, value: &Option<String>| -> Option<OffsetDateTime> {
            let value = value.as_ref()?;
            errors.check(
                field,
                OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
                    format!("must be an RFC 3339 time such as 2026-11-23T12:00:00Z, got {value:?}")
                }),
            )
        };
        let since = time("since", &self.since);
        let until = time("until", &self.until);
        errors
            .into_result(|| AuditFilter {
                kind: self.kind.clone(),
                resource_id: self.id.clone(),
                actor: self.actor.clone(),
                action: self.action.clone(),
                since,
                until,
            })
            .map_err(ApiError::InvalidRequest)
    }
}

/// One accepted write.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// The credential's name, such as `env:CRUD_AUTH_TOKEN`; never the secret.
    pub actor: String,
    /// `create`, `update`, `delete` or `rollback`.
    pub action: String,
    /// `cluster`, `platform_component`, `namespace`, `rolebinding` or `credential`.
    pub kind: String,
    pub resource_id: String,
    /// The revision the write produced.
    pub revision: i64,
    /// The `X-Request-Id` of the request that wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The resource before (`null` for a create) and after (`null` for a delete).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

impl From<AuditRecord> for AuditEntry {
    fn from(record: AuditRecord) -> Self {
        Self {
            id: record.id,
            at: timestamp(record.at),
            actor: record.actor,
            action: record.action,
            kind: record.kind,
            resource_id: record.resource_id,
            revision: record.revision,
            request_id: record.request_id,
            before: record.before,
            after: record.after,
        }
    }
}

/// Every accepted write, newest first. Needs scope `admin` (`CRUD_AUTH_TOKEN` has it).
#[utoipa::path(get, operation_id = "listAudit", path = "/audit", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "One page of records, newest first", body = [AuditEntry],
            headers(("X-Total-Count" = i64, description = "Records matching the filters"),
                    ("Link" = String, description = "RFC 8288 links to the next and previous pages"))),
        (status = 403, description = "The credential lacks scope admin", body = super::error::Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "A read-only server: the audit log is served in crud mode only", body = super::error::Problem,
            content_type = "application/problem+json"),
        QueryErrors, AuthErrors))]
pub async fn list(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: AuditQuery = body::parse_query(request.query_string())?;
    let page = crud::page(&query)?;
    let filter = query.filter()?;
    let listed = state.store.audit(&filter, page).await?;
    let entries: Vec<AuditEntry> = listed.items.into_iter().map(AuditEntry::from).collect();
    Ok(page_response(
        "/audit",
        &query.filter_params(),
        page,
        listed.total,
        &entries,
    ))
}
