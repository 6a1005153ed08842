//! `/platform_components`: the catalog of installable components.

use actix_web::web::{self, Data, Path, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::crud::{self, HistoryEntry, PagingQuery, RollbackRequest, UpdateKind, WriteQuery};
use super::crud::{ApiResource, ListQuery};
use super::docs::{
    AuthErrors, BodyErrors, ConflictError, DeleteConflictError, NotFoundError, PreconditionError,
    QueryErrors, WriteErrors, WriteHeaders,
};
use super::error::ApiError;
use crate::domain::Rules;
use crate::domain::component::{
    check_component_path, check_component_version, check_oci_tag, check_oci_url,
};
use crate::domain::{ComponentId, FieldErrors, PlatformComponent};
use crate::settings::Mode;
use crate::storage::ComponentFilter;

/// A catalog entry: what clusters install unless they override `component_path` or `oci_tag`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "id": "ingress-nginx",
    "component_path": "ingress-nginx",
    "component_version": "4.11.3",
    "cluster_env_enabled": false,
    "oci_url": "oci://ghcr.io/example/charts",
    "oci_tag": "4.11.3",
    "depends_on": ["cert-manager"]
}))]
pub struct PlatformComponentBody {
    /// Unique id; becomes part of Kubernetes object names (RFC 1123 label).
    #[schema(
        pattern = "dns1123-label", // replaced by openapi::NamePatterns
        min_length = 1,
        max_length = 63
    )]
    pub id: String,
    /// Chart name or relative path inside the OCI artifact.
    #[schema(min_length = 1, max_length = 253)]
    pub component_path: String,
    /// Upstream version; `latest` means not pinned.
    #[schema(min_length = 1, max_length = 128)]
    pub component_version: String,
    /// When true, templates append `/{environment}` to the path.
    #[serde(default)]
    pub cluster_env_enabled: bool,
    /// Helm repository (`https://`) or OCI registry (`oci://`) URL.
    #[schema(min_length = 1, max_length = 2048)]
    pub oci_url: String,
    /// Default chart or artifact tag; clusters may override it.
    #[schema(min_length = 1, max_length = 128)]
    pub oci_tag: String,
    /// Ids of catalog components that must be ready first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Set by the server: 1 on creation, +1 on every change; the `ETag` is this, quoted.
    /// Sent in an update, the update applies only to this revision (like `If-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only, minimum = 1)]
    pub revision: Option<i64>,
}

/// Fields to change; omitted fields keep their value (PUT), or RFC 7396 merge-patch
/// semantics (PATCH, where `null` resets a field to its default).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the partial body; requests are merged as JSON, then parsed as PlatformComponentBody
pub struct PlatformComponentUpdate {
    /// Must equal the id in the path if sent.
    id: Option<String>,
    component_path: Option<String>,
    component_version: Option<String>,
    cluster_env_enabled: Option<bool>,
    oci_url: Option<String>,
    oci_tag: Option<String>,
    depends_on: Option<Vec<String>>,
    /// The revision the change is based on; refused with 412 if the stored one differs.
    revision: Option<i64>,
}

/// List filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ComponentQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// Only components with exactly this version.
    component_version: Option<String>,
}

impl ListQuery for ComponentQuery {
    type Filter = ComponentFilter;
    fn limit(&self) -> Option<i64> {
        self.limit
    }
    fn offset(&self) -> Option<i64> {
        self.offset
    }
    fn filter_params(&self) -> Vec<(&'static str, String)> {
        self.component_version
            .iter()
            .map(|v| ("component_version", v.clone()))
            .collect()
    }
    fn into_filter(self) -> ComponentFilter {
        ComponentFilter {
            component_version: self.component_version,
        }
    }
}

impl ApiResource for PlatformComponent {
    const COLLECTION: &'static str = "/platform_components";
    type Body = PlatformComponentBody;
    type Query = ComponentQuery;

    fn to_body(&self, revision: i64) -> PlatformComponentBody {
        PlatformComponentBody {
            id: self.id.to_string(),
            component_path: self.component_path.clone(),
            component_version: self.component_version.clone(),
            cluster_env_enabled: self.cluster_env_enabled,
            oci_url: self.oci_url.clone(),
            oci_tag: self.oci_tag.clone(),
            depends_on: self.depends_on.iter().map(ToString::to_string).collect(),
            revision: Some(revision),
        }
    }

    fn from_body(body: PlatformComponentBody, _rules: &Rules) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let id = errors.check("id", ComponentId::parse(body.id));
        errors.check("component_path", check_component_path(&body.component_path));
        errors.check(
            "component_version",
            check_component_version(&body.component_version),
        );
        errors.check("oci_url", check_oci_url(&body.oci_url));
        errors.check("oci_tag", check_oci_tag(&body.oci_tag));
        let depends_on: Vec<Option<ComponentId>> = body
            .depends_on
            .into_iter()
            .enumerate()
            .map(|(i, d)| errors.check(&format!("depends_on[{i}]"), ComponentId::parse(d)))
            .collect();
        let (Some(id), false) = (id, depends_on.contains(&None)) else {
            return Err(errors);
        };
        let component = PlatformComponent {
            id,
            component_path: body.component_path,
            component_version: body.component_version,
            cluster_env_enabled: body.cluster_env_enabled,
            oci_url: body.oci_url,
            oci_tag: body.oci_tag,
            depends_on: depends_on.into_iter().flatten().collect(),
        };
        errors.extend(component.check_dependencies());
        errors.into_result(|| component)
    }
}

// --- Handlers: each documented operation calls the flow every resource shares
// (`super::crud`).

/// The resource; or, for a dry run or with `X-Flux-Changes: true`, a report of
/// the write with what changes for Flux.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documents the two shapes a write answers with
pub enum PlatformComponentWriteResponse {
    Resource(PlatformComponentBody),
    Report(crud::WriteReport),
}

#[utoipa::path(get, operation_id = "listPlatformComponents", path = "/platform_components", tag = "platform components",
    summary = "List catalog components, by id.", params(ComponentQuery),
    responses(
        (status = 200, description = "One page, sorted by id", body = [PlatformComponentBody],
            headers(("X-Total-Count" = i64, description = "Items matching the filters, on all pages"),
                    ("Link" = String, description = "RFC 8288 links to the next and previous pages"))),
        QueryErrors, AuthErrors))]
pub async fn list(state: Data<AppState>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    crud::list::<PlatformComponent>(&state, &request).await
}

#[utoipa::path(get, operation_id = "getPlatformComponent", path = "/platform_components/{id}", tag = "platform components",
    summary = "Get one catalog component.",
    params(("id" = String, Path, description = "Component id"),
           ("If-None-Match" = Option<String>, Header, description = "An ETag you have; 304 if it is current")),
    responses(
        (status = 200, description = "The resource", body = PlatformComponentBody,
            headers(("ETag" = String, description = "The revision, quoted"))),
        (status = 304, description = "Not modified: your copy is current"),
        NotFoundError, AuthErrors))]
pub async fn get(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::get::<PlatformComponent>(&state, &request, &id).await
}

#[utoipa::path(post, operation_id = "createPlatformComponent", path = "/platform_components", tag = "platform components",
    summary = "Add a component to the catalog. Every `depends_on` id must exist.", params(WriteQuery, WriteHeaders),
    request_body = PlatformComponentBody,
    responses(
        (status = 201, description = "Created", body = PlatformComponentWriteResponse,
            headers(("Location" = String, description = "Path of the new resource"),
                    ("ETag" = String, description = "The revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs changed"))),
        (status = 200, description = "Dry run: what creating would do", body = PlatformComponentWriteResponse),
        BodyErrors, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn create(
    state: Data<AppState>,
    request: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::create::<PlatformComponent>(&state, &request, payload).await
}

#[utoipa::path(put, operation_id = "replacePlatformComponent", path = "/platform_components/{id}", tag = "platform components",
    summary = "Change a component: fields sent replace the stored ones, fields omitted keep their value.",
    params(("id" = String, Path, description = "Component id"), WriteQuery, WriteHeaders),
    request_body = PlatformComponentUpdate,
    responses(
        (status = 200, description = "The updated resource (or a report)", body = PlatformComponentWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn replace(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<PlatformComponent>(&state, &request, &id, payload, UpdateKind::Replace).await
}

#[utoipa::path(patch, operation_id = "patchPlatformComponent", path = "/platform_components/{id}", tag = "platform components",
    summary = "Change a component with an RFC 7396 JSON merge patch.",
    params(("id" = String, Path, description = "Component id"), WriteQuery, WriteHeaders),
    request_body(content = PlatformComponentUpdate, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The updated resource (or a report)", body = PlatformComponentWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn patch(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<PlatformComponent>(&state, &request, &id, payload, UpdateKind::MergePatch).await
}

#[utoipa::path(delete, operation_id = "deletePlatformComponent", path = "/platform_components/{id}", tag = "platform components",
    summary = "Remove a component from the catalog; refused while clusters or other components reference it.",
    params(("id" = String, Path, description = "Component id"), WriteQuery, WriteHeaders),
    responses(
        (status = 200, description = "The deleted resource (or a report)", body = PlatformComponentWriteResponse,
            headers(("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        QueryErrors, NotFoundError, DeleteConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn delete(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::delete::<PlatformComponent>(&state, &request, &id).await
}

#[utoipa::path(get, operation_id = "getPlatformComponentHistory", path = "/platform_components/{id}/history", tag = "platform components",
    summary = "Revisions of this resource, newest first; also after it was deleted.",
    params(("id" = String, Path, description = "Component id"), PagingQuery),
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
    crud::history::<PlatformComponent>(&state, &request, &id).await
}

#[utoipa::path(post, operation_id = "rollbackPlatformComponent", path = "/platform_components/{id}/rollback", tag = "platform components",
    summary = "Make an earlier revision's content current again, as a new revision (re-creates a deleted resource).",
    params(("id" = String, Path, description = "Component id"), WriteQuery, WriteHeaders),
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "The restored resource (or a report)", body = PlatformComponentWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        (status = 201, description = "Re-created a deleted resource", body = PlatformComponentWriteResponse),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn rollback(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::rollback::<PlatformComponent>(&state, &request, &id, payload).await
}

/// Registers this resource's routes; writes only in crud mode.
pub fn configure(config: &mut ServiceConfig, mode: Mode) {
    crud::register(
        config,
        mode,
        "/platform_components",
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
