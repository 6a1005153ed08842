//! `/rolebindings`: rolebinding definitions.

use actix_web::web::{self, Data, Path, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
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
use crate::domain::rolebinding::{check_role, check_subject_name};
use crate::domain::{FieldErrors, NamespaceId, RoleBinding, RoleBindingId, Subject, SubjectKind};
use crate::settings::Mode;

/// A role granted to subjects on the clusters that reference this definition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "id": "platform-admins",
    "role": "cluster-admin",
    "subjects": [{"kind": "Group", "name": "platform-team", "apiGroup": "rbac.authorization.k8s.io"}]
}))]
pub struct RoleBindingBody {
    /// Unique id; the binding's name (RFC 1123 label).
    #[schema(
        pattern = "dns1123-label", // replaced by openapi::NamePatterns
        min_length = 1,
        max_length = 63
    )]
    pub id: String,
    /// The (Cluster)Role to bind.
    #[schema(min_length = 1, max_length = 253)]
    pub role: String,
    #[serde(default)]
    pub subjects: Vec<SubjectBody>,
    /// Set by the server: 1 on creation, +1 on every change; the `ETag` is this, quoted.
    /// Sent in an update, the update applies only to this revision (like `If-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only, minimum = 1)]
    pub revision: Option<i64>,
}

/// An RBAC subject, as in `rbac.authorization.k8s.io/v1`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectBody {
    #[schema(value_type = SubjectKindName)]
    pub kind: String,
    #[schema(min_length = 1, max_length = 253)]
    pub name: String,
    /// For ServiceAccounts: the account's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `rbac.authorization.k8s.io` for User and Group, empty for ServiceAccount.
    #[serde(rename = "apiGroup", default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
}

/// The subject kinds RBAC knows.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the values of SubjectBody::kind
pub enum SubjectKindName {
    User,
    Group,
    ServiceAccount,
}

/// Fields to change (PUT: omitted fields keep their value; PATCH: RFC 7396 merge patch).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the partial body; requests are merged as JSON, then parsed as RoleBindingBody
pub struct RoleBindingUpdate {
    /// Must equal the id in the path if sent.
    id: Option<String>,
    role: Option<String>,
    subjects: Option<Vec<SubjectBody>>,
    /// The revision the change is based on; refused with 412 if the stored one differs.
    revision: Option<i64>,
}

impl ApiResource for RoleBinding {
    const COLLECTION: &'static str = "/rolebindings";
    type Body = RoleBindingBody;
    type Query = PagingQuery;

    fn to_body(&self, revision: i64) -> RoleBindingBody {
        RoleBindingBody {
            id: self.id.to_string(),
            role: self.role.clone(),
            subjects: self
                .subjects
                .iter()
                .map(|s| SubjectBody {
                    kind: format!("{:?}", s.kind),
                    name: s.name.clone(),
                    namespace: s.namespace.as_ref().map(ToString::to_string),
                    api_group: s.api_group.clone(),
                })
                .collect(),
            revision: Some(revision),
        }
    }

    fn from_body(body: RoleBindingBody, _rules: &Rules) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let id = errors.check("id", RoleBindingId::parse(body.id));
        errors.check("role", check_role(&body.role));
        let mut subjects = Vec::with_capacity(body.subjects.len());
        for (i, s) in body.subjects.into_iter().enumerate() {
            let field = format!("subjects[{i}]");
            let kind = errors.check(&format!("{field}.kind"), SubjectKind::parse(&s.kind));
            errors.check(&format!("{field}.name"), check_subject_name(&s.name));
            // Some(None): no namespace given; None: an invalid one was given.
            let namespace = match s.namespace {
                None => Some(None),
                Some(n) => errors
                    .check(&format!("{field}.namespace"), NamespaceId::parse(n))
                    .map(Some),
            };
            if let (Some(kind), Some(namespace)) = (kind, namespace) {
                let subject = Subject {
                    kind,
                    name: s.name,
                    namespace,
                    api_group: s.api_group,
                };
                errors.extend(subject.check(&field));
                subjects.push(subject);
            }
        }
        match id {
            Some(id) if errors.is_empty() => Ok(RoleBinding {
                id,
                role: body.role,
                subjects,
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
pub enum RoleBindingWriteResponse {
    Resource(RoleBindingBody),
    Report(crud::WriteReport),
}

#[utoipa::path(get, operation_id = "listRoleBindings", path = "/rolebindings", tag = "rolebindings",
    summary = "List rolebinding definitions, by id.", params(PagingQuery),
    responses(
        (status = 200, description = "One page, sorted by id", body = [RoleBindingBody],
            headers(("X-Total-Count" = i64, description = "Items matching the filters, on all pages"),
                    ("Link" = String, description = "RFC 8288 links to the next and previous pages"))),
        QueryErrors, AuthErrors))]
pub async fn list(state: Data<AppState>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    crud::list::<RoleBinding>(&state, &request).await
}

#[utoipa::path(get, operation_id = "getRoleBinding", path = "/rolebindings/{id}", tag = "rolebindings",
    summary = "Get one rolebinding definition.",
    params(("id" = String, Path, description = "Rolebinding id"),
           ("If-None-Match" = Option<String>, Header, description = "An ETag you have; 304 if it is current")),
    responses(
        (status = 200, description = "The resource", body = RoleBindingBody,
            headers(("ETag" = String, description = "The revision, quoted"))),
        (status = 304, description = "Not modified: your copy is current"),
        NotFoundError, AuthErrors))]
pub async fn get(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::get::<RoleBinding>(&state, &request, &id).await
}

#[utoipa::path(post, operation_id = "createRoleBinding", path = "/rolebindings", tag = "rolebindings",
    summary = "Define a rolebinding.", params(WriteQuery, WriteHeaders),
    request_body = RoleBindingBody,
    responses(
        (status = 201, description = "Created", body = RoleBindingWriteResponse,
            headers(("Location" = String, description = "Path of the new resource"),
                    ("ETag" = String, description = "The revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs changed"))),
        (status = 200, description = "Dry run: what creating would do", body = RoleBindingWriteResponse),
        BodyErrors, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn create(
    state: Data<AppState>,
    request: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::create::<RoleBinding>(&state, &request, payload).await
}

#[utoipa::path(put, operation_id = "replaceRoleBinding", path = "/rolebindings/{id}", tag = "rolebindings",
    summary = "Change a rolebinding definition: fields sent replace the stored ones, fields omitted keep their value.",
    params(("id" = String, Path, description = "Rolebinding id"), WriteQuery, WriteHeaders),
    request_body = RoleBindingUpdate,
    responses(
        (status = 200, description = "The updated resource (or a report)", body = RoleBindingWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn replace(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<RoleBinding>(&state, &request, &id, payload, UpdateKind::Replace).await
}

#[utoipa::path(patch, operation_id = "patchRoleBinding", path = "/rolebindings/{id}", tag = "rolebindings",
    summary = "Change a rolebinding definition with an RFC 7396 JSON merge patch.",
    params(("id" = String, Path, description = "Rolebinding id"), WriteQuery, WriteHeaders),
    request_body(content = RoleBindingUpdate, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The updated resource (or a report)", body = RoleBindingWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn patch(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<RoleBinding>(&state, &request, &id, payload, UpdateKind::MergePatch).await
}

#[utoipa::path(delete, operation_id = "deleteRoleBinding", path = "/rolebindings/{id}", tag = "rolebindings",
    summary = "Delete a rolebinding definition; refused while clusters reference it.",
    params(("id" = String, Path, description = "Rolebinding id"), WriteQuery, WriteHeaders),
    responses(
        (status = 200, description = "The deleted resource (or a report)", body = RoleBindingWriteResponse,
            headers(("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        QueryErrors, NotFoundError, DeleteConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn delete(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::delete::<RoleBinding>(&state, &request, &id).await
}

#[utoipa::path(get, operation_id = "getRoleBindingHistory", path = "/rolebindings/{id}/history", tag = "rolebindings",
    summary = "Revisions of this resource, newest first; also after it was deleted.",
    params(("id" = String, Path, description = "Rolebinding id"), PagingQuery),
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
    crud::history::<RoleBinding>(&state, &request, &id).await
}

#[utoipa::path(post, operation_id = "rollbackRoleBinding", path = "/rolebindings/{id}/rollback", tag = "rolebindings",
    summary = "Make an earlier revision's content current again, as a new revision (re-creates a deleted resource).",
    params(("id" = String, Path, description = "Rolebinding id"), WriteQuery, WriteHeaders),
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "The restored resource (or a report)", body = RoleBindingWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        (status = 201, description = "Re-created a deleted resource", body = RoleBindingWriteResponse),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn rollback(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::rollback::<RoleBinding>(&state, &request, &id, payload).await
}

/// Registers this resource's routes; writes only in crud mode.
pub fn configure(config: &mut ServiceConfig, mode: Mode) {
    crud::register(
        config,
        mode,
        "/rolebindings",
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
