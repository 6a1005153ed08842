//! `/namespaces`: namespace definitions.

use std::collections::BTreeMap;

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::crud::{self, ApiResource, ListQuery, Rules, UpdateKind};
use super::docs::{
    AuthErrors, BodyErrors, ConflictError, DeleteConflictError, NotFoundError, QueryErrors,
    WriteErrors,
};
use super::error::ApiError;
use crate::domain::namespace::{check_annotations, check_labels};
use crate::domain::{FieldErrors, Namespace, NamespaceId};

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
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
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
}

/// Fields to change (PUT: omitted fields keep their value; PATCH: RFC 7396 merge patch).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the partial body; requests are merged as JSON, then parsed as NamespaceBody
pub struct NamespaceUpdate {
    /// Must equal the id in the path if sent.
    id: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NamespaceQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

impl ListQuery for NamespaceQuery {
    type Filter = ();
    fn limit(&self) -> Option<i64> {
        self.limit
    }
    fn offset(&self) -> Option<i64> {
        self.offset
    }
    fn filter_params(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    fn into_filter(self) {}
}

impl ApiResource for Namespace {
    const COLLECTION: &'static str = "/namespaces";
    type Body = NamespaceBody;
    type Query = NamespaceQuery;

    fn to_body(&self) -> NamespaceBody {
        NamespaceBody {
            id: self.id.to_string(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
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

/// List namespace definitions, by id.
#[utoipa::path(get, operation_id = "listNamespaces", path = "/namespaces", tag = "namespaces",
    params(NamespaceQuery),
    responses(
        (status = 200, description = "One page of namespaces", body = [NamespaceBody],
            headers(("X-Total-Count" = i64, description = "All namespaces"),
                    ("Link" = String, description = "RFC 8288 links to the next and previous pages"))),
        QueryErrors, AuthErrors))]
pub async fn list(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    crud::list::<Namespace>(&state, &request).await
}

/// Get one namespace definition.
#[utoipa::path(get, operation_id = "getNamespace", path = "/namespaces/{id}", tag = "namespaces",
    params(("id" = String, Path, description = "Namespace id")),
    responses((status = 200, description = "The namespace", body = NamespaceBody), NotFoundError, AuthErrors))]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::get::<Namespace>(&state, &id).await
}

/// Define a namespace.
#[utoipa::path(post, operation_id = "createNamespace", path = "/namespaces", tag = "namespaces",
    request_body = NamespaceBody,
    responses(
        (status = 201, description = "Created", body = NamespaceBody,
            headers(("Location" = String, description = "Path of the new namespace"))),
        BodyErrors, ConflictError, WriteErrors, AuthErrors))]
pub async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::create::<Namespace>(&state, &request, payload).await
}

/// Change a namespace definition: fields sent replace the stored ones, fields omitted keep their value.
#[utoipa::path(put, operation_id = "replaceNamespace", path = "/namespaces/{id}", tag = "namespaces",
    params(("id" = String, Path, description = "Namespace id")),
    request_body = NamespaceUpdate,
    responses((status = 200, description = "The updated namespace", body = NamespaceBody),
        BodyErrors, NotFoundError, ConflictError, WriteErrors, AuthErrors))]
pub async fn replace(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<Namespace>(&state, &request, &id, payload, UpdateKind::Replace).await
}

/// Change a namespace definition with an RFC 7396 JSON merge patch.
#[utoipa::path(patch, operation_id = "patchNamespace", path = "/namespaces/{id}", tag = "namespaces",
    params(("id" = String, Path, description = "Namespace id")),
    request_body(content = NamespaceUpdate, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The updated namespace", body = NamespaceBody),
        BodyErrors, NotFoundError, ConflictError, WriteErrors, AuthErrors))]
pub async fn patch(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<Namespace>(&state, &request, &id, payload, UpdateKind::MergePatch).await
}

/// Delete a namespace definition; refused while clusters reference it.
#[utoipa::path(delete, operation_id = "deleteNamespace", path = "/namespaces/{id}", tag = "namespaces",
    params(("id" = String, Path, description = "Namespace id")),
    responses((status = 200, description = "The deleted namespace", body = NamespaceBody),
        NotFoundError, DeleteConflictError, WriteErrors, AuthErrors))]
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::delete::<Namespace>(&state, &id).await
}
