//! `/rolebindings`: rolebinding definitions.

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
use crate::domain::rolebinding::{check_role, check_subject_name};
use crate::domain::{FieldErrors, NamespaceId, RoleBinding, RoleBindingId, Subject, SubjectKind};

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
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        min_length = 1,
        max_length = 63
    )]
    pub id: String,
    /// The (Cluster)Role to bind.
    #[schema(min_length = 1, max_length = 253)]
    pub role: String,
    #[serde(default)]
    pub subjects: Vec<SubjectBody>,
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
#[allow(dead_code)] // documents the partial body; requests are merged as JSON, then parsed as RoleBindingBody
pub struct RoleBindingUpdate {
    /// Must equal the id in the path if sent.
    id: Option<String>,
    role: Option<String>,
    subjects: Option<Vec<SubjectBody>>,
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RoleBindingQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

impl ListQuery for RoleBindingQuery {
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

impl ApiResource for RoleBinding {
    const COLLECTION: &'static str = "/rolebindings";
    type Body = RoleBindingBody;
    type Query = RoleBindingQuery;

    fn to_body(&self) -> RoleBindingBody {
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

/// List rolebinding definitions, by id.
#[utoipa::path(get, operation_id = "listRoleBindings", path = "/rolebindings", tag = "rolebindings",
    params(RoleBindingQuery),
    responses(
        (status = 200, description = "One page of rolebindings", body = [RoleBindingBody],
            headers(("X-Total-Count" = i64, description = "All rolebindings"),
                    ("Link" = String, description = "RFC 8288 links to the next and previous pages"))),
        QueryErrors, AuthErrors))]
pub async fn list(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    crud::list::<RoleBinding>(&state, &request).await
}

/// Get one rolebinding definition.
#[utoipa::path(get, operation_id = "getRoleBinding", path = "/rolebindings/{id}", tag = "rolebindings",
    params(("id" = String, Path, description = "Rolebinding id")),
    responses((status = 200, description = "The rolebinding", body = RoleBindingBody), NotFoundError, AuthErrors))]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::get::<RoleBinding>(&state, &id).await
}

/// Define a rolebinding.
#[utoipa::path(post, operation_id = "createRoleBinding", path = "/rolebindings", tag = "rolebindings",
    request_body = RoleBindingBody,
    responses(
        (status = 201, description = "Created", body = RoleBindingBody,
            headers(("Location" = String, description = "Path of the new rolebinding"))),
        BodyErrors, ConflictError, WriteErrors, AuthErrors))]
pub async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::create::<RoleBinding>(&state, &request, payload).await
}

/// Change a rolebinding definition: fields sent replace the stored ones, fields omitted keep their value.
#[utoipa::path(put, operation_id = "replaceRoleBinding", path = "/rolebindings/{id}", tag = "rolebindings",
    params(("id" = String, Path, description = "Rolebinding id")),
    request_body = RoleBindingUpdate,
    responses((status = 200, description = "The updated rolebinding", body = RoleBindingBody),
        BodyErrors, NotFoundError, ConflictError, WriteErrors, AuthErrors))]
pub async fn replace(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<RoleBinding>(&state, &request, &id, payload, UpdateKind::Replace).await
}

/// Change a rolebinding definition with an RFC 7396 JSON merge patch.
#[utoipa::path(patch, operation_id = "patchRoleBinding", path = "/rolebindings/{id}", tag = "rolebindings",
    params(("id" = String, Path, description = "Rolebinding id")),
    request_body(content = RoleBindingUpdate, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The updated rolebinding", body = RoleBindingBody),
        BodyErrors, NotFoundError, ConflictError, WriteErrors, AuthErrors))]
pub async fn patch(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<RoleBinding>(&state, &request, &id, payload, UpdateKind::MergePatch).await
}

/// Delete a rolebinding definition; refused while clusters reference it.
#[utoipa::path(delete, operation_id = "deleteRoleBinding", path = "/rolebindings/{id}", tag = "rolebindings",
    params(("id" = String, Path, description = "Rolebinding id")),
    responses((status = 200, description = "The deleted rolebinding", body = RoleBindingBody),
        NotFoundError, DeleteConflictError, WriteErrors, AuthErrors))]
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::delete::<RoleBinding>(&state, &id).await
}
