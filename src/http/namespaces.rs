//! `/namespaces`: namespace definitions.

use actix_web::web::{self, Data, Path, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::crud::ApiResource;
use super::crud::{self, HistoryEntry, PagingQuery, RollbackRequest, UpdateKind, WriteQuery};
use super::docs::{
    AuthErrors, BodyErrors, ConflictError, DeleteConflictError, NotFoundError, PreconditionError,
    QueryErrors, WriteErrors, WriteHeaders,
};
use super::error::ApiError;
use crate::domain::Rules;
use crate::domain::namespace::{check_annotations, check_labels};
use crate::domain::{FieldErrors, Namespace, NamespaceId};
use crate::settings::Mode;

/// A namespace to create on the clusters that reference it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "id": "monitoring",
    "labels": {"app.kubernetes.io/part-of": "observability", "pod-security.kubernetes.io/enforce": "baseline"},
    "annotations": {"example.com/owner": "platform-team"}
}))]
pub struct NamespaceBody {
    /// Unique id; the namespace's name (RFC 1123 label).
    #[schema(
        pattern = "dns1123-label", // replaced by openapi::NamePatterns
        min_length = 1,
        max_length = 63
    )]
    pub id: String,
    /// Kubernetes labels: keys are qualified names, values at most 63 characters.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Kubernetes annotations: keys are qualified names, 256 KiB in all.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Set by the server: 1 on creation, +1 on every change; the `ETag` is this, quoted.
    /// Sent in an update, the update applies only to this revision (like `If-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only, minimum = 1)]
    pub revision: Option<i64>,
}

/// Fields to change (PUT: omitted fields keep their value; PATCH: RFC 7396 merge patch).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the partial body; requests are merged as JSON, then parsed as NamespaceBody
pub struct NamespaceUpdate {
    /// Must equal the id in the path if sent.
    id: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    /// The revision the change is based on; refused with 412 if the stored one differs.
    revision: Option<i64>,
}

impl ApiResource for Namespace {
    const COLLECTION: &'static str = "/namespaces";
    type Body = NamespaceBody;
    type Query = PagingQuery;

    fn to_body(&self, revision: i64) -> NamespaceBody {
        NamespaceBody {
            id: self.id.to_string(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            revision: Some(revision),
        }
    }

    fn from_body(body: NamespaceBody, _rules: &Rules) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let id = errors.check("id", NamespaceId::parse(body.id));
        errors.extend(check_labels(&body.labels));
        errors.extend(check_annotations(&body.annotations));
        match id {
            Some(id) if errors.is_empty() => Ok(Namespace {
                id,
                labels: body.labels,
                annotations: body.annotations,
            }),
            _ => Err(errors),
        }
    }
}

// --- Handlers: each documented operation calls the flow every resource shares
// (`super::crud`).

/// The resource; or, for a dry run or with `X-Flux-Changes: true`, a report of
/// the write with what changes for Flux.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documents the two shapes a write answers with
pub enum NamespaceWriteResponse {
    Resource(NamespaceBody),
    Report(crud::WriteReport),
}

#[utoipa::path(get, operation_id = "listNamespaces", path = "/namespaces", tag = "namespaces",
    summary = "List namespace definitions, by id.", params(PagingQuery),
    responses(
        (status = 200, description = "One page, sorted by id", body = [NamespaceBody],
            headers(("X-Total-Count" = i64, description = "Items matching the filters, on all pages"),
                    ("Link" = String, description = "RFC 8288 links to the next and previous pages"))),
        QueryErrors, AuthErrors))]
pub async fn list(state: Data<AppState>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    crud::list::<Namespace>(&state, &request).await
}

#[utoipa::path(get, operation_id = "getNamespace", path = "/namespaces/{id}", tag = "namespaces",
    summary = "Get one namespace definition.",
    params(("id" = String, Path, description = "Namespace id"),
           ("If-None-Match" = Option<String>, Header, description = "An ETag you have; 304 if it is current")),
    responses(
        (status = 200, description = "The resource", body = NamespaceBody,
            headers(("ETag" = String, description = "The revision, quoted"))),
        (status = 304, description = "Not modified: your copy is current"),
        NotFoundError, AuthErrors))]
pub async fn get(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::get::<Namespace>(&state, &request, &id).await
}

#[utoipa::path(post, operation_id = "createNamespace", path = "/namespaces", tag = "namespaces",
    summary = "Define a namespace.", params(WriteQuery, WriteHeaders),
    request_body = NamespaceBody,
    responses(
        (status = 201, description = "Created", body = NamespaceWriteResponse,
            headers(("Location" = String, description = "Path of the new resource"),
                    ("ETag" = String, description = "The revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs changed"))),
        (status = 200, description = "Dry run: what creating would do", body = NamespaceWriteResponse),
        BodyErrors, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn create(
    state: Data<AppState>,
    request: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::create::<Namespace>(&state, &request, payload).await
}

#[utoipa::path(put, operation_id = "replaceNamespace", path = "/namespaces/{id}", tag = "namespaces",
    summary = "Change a namespace definition: fields sent replace the stored ones, fields omitted keep their value.",
    params(("id" = String, Path, description = "Namespace id"), WriteQuery, WriteHeaders),
    request_body = NamespaceUpdate,
    responses(
        (status = 200, description = "The updated resource (or a report)", body = NamespaceWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn replace(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<Namespace>(&state, &request, &id, payload, UpdateKind::Replace).await
}

#[utoipa::path(patch, operation_id = "patchNamespace", path = "/namespaces/{id}", tag = "namespaces",
    summary = "Change a namespace definition with an RFC 7396 JSON merge patch.",
    params(("id" = String, Path, description = "Namespace id"), WriteQuery, WriteHeaders),
    request_body(content = NamespaceUpdate, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The updated resource (or a report)", body = NamespaceWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn patch(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<Namespace>(&state, &request, &id, payload, UpdateKind::MergePatch).await
}

#[utoipa::path(delete, operation_id = "deleteNamespace", path = "/namespaces/{id}", tag = "namespaces",
    summary = "Delete a namespace definition; refused while clusters reference it.",
    params(("id" = String, Path, description = "Namespace id"), WriteQuery, WriteHeaders),
    responses(
        (status = 200, description = "The deleted resource (or a report)", body = NamespaceWriteResponse,
            headers(("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        QueryErrors, NotFoundError, DeleteConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn delete(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::delete::<Namespace>(&state, &request, &id).await
}

#[utoipa::path(get, operation_id = "getNamespaceHistory", path = "/namespaces/{id}/history", tag = "namespaces",
    summary = "Revisions of this resource, newest first; also after it was deleted.",
    params(("id" = String, Path, description = "Namespace id"), PagingQuery),
    responses(
        (status = 200, description = "One page of revisions", body = [HistoryEntry],
            headers(("X-Total-Count" = i64, description = "Revisions on all pages"),
                    ("Link" = String, description = "RFC 8288 links to the next and previous pages"))),
        QueryErrors, NotFoundError, AuthErrors))]
pub async fn history(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::history::<Namespace>(&state, &request, &id).await
}

#[utoipa::path(post, operation_id = "rollbackNamespace", path = "/namespaces/{id}/rollback", tag = "namespaces",
    summary = "Make an earlier revision's content current again, as a new revision (re-creates a deleted resource).",
    params(("id" = String, Path, description = "Namespace id"), WriteQuery, WriteHeaders),
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "The restored resource (or a report)", body = NamespaceWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        (status = 201, description = "Re-created a deleted resource", body = NamespaceWriteResponse),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn rollback(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::rollback::<Namespace>(&state, &request, &id, payload).await
}

/// Registers this resource's routes; writes only in crud mode.
pub fn configure(config: &mut ServiceConfig, mode: Mode) {
    crud::register(
        config,
        mode,
        "/namespaces",
        crud::Routes {
            list: web::get().to(list),
            get: web::get().to(get),
            history: web::get().to(history),
            create: web::post().to(create),
            replace: web::put().to(replace),
            patch: web::patch().to(patch),
            delete: web::delete().to(delete),
            rollback: web::post().to(rollback),
        },
    );
}
