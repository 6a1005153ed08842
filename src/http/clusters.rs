//! `/clusters`: clusters and what they take from the catalog.

use actix_web::web::{self, Data, Path, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::crud::{self, HistoryEntry, PagingQuery, RollbackRequest, UpdateKind, WriteQuery};
use super::crud::{ApiResource, ListQuery};
use super::docs::{
    AuthErrors, BodyErrors, ConflictError, DeleteConflictError, NotFoundError, PreconditionError,
    QueryErrors, WriteErrors, WriteHeaders,
};
use super::error::ApiError;
use super::tokens;
use crate::domain::Rules;
use crate::domain::cluster::{attach_patches, check_info_text};
use crate::domain::component::{check_component_path, check_oci_tag};
use crate::domain::{
    Cluster, ClusterDns, ClusterId, ClusterName, ComponentId, ComponentRef, FieldErrors,
    NamespaceId, RoleBindingId,
};
use crate::settings::Mode;
use crate::storage::ClusterFilter;
use crate::storage::credentials::Change;

/// A cluster, the catalog entries it references, and its per-cluster overrides.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "id": "demo-cluster-01",
    "cluster_name": "demo-cluster-01",
    "cluster_dns": "demo-cluster-01.k8s.example.com",
    "environment": "dev",
    "node_count": 3,
    "platform_components": [
        {"id": "cert-manager", "enabled": true},
        {"id": "ingress-nginx", "enabled": true, "oci_tag": "4.12.0"}
    ],
    "namespaces": [{"id": "monitoring"}],
    "rolebindings": [{"id": "platform-admins"}],
    "patches": {"ingress-nginx": {"controller.replicaCount": 3}}
}))]
pub struct ClusterBody {
    /// Unique id (RFC 1123 label).
    #[schema(
        pattern = "dns1123-label", // replaced by openapi::NamePatterns
        min_length = 1,
        max_length = 63
    )]
    pub id: String,
    /// The name templates see as `cluster.name` (RFC 1123 label).
    #[schema(
        pattern = "dns1123-label", // replaced by openapi::NamePatterns
        min_length = 1,
        max_length = 63
    )]
    pub cluster_name: String,
    /// The cluster's DNS name, unique; Flux endpoints are addressed by it.
    #[schema(
        pattern = "dns1123-subdomain", // replaced by openapi::NamePatterns
        min_length = 1,
        max_length = 253
    )]
    pub cluster_dns: String,
    /// One of the configured tiers (by default `dev`, `qa`, `uat`, `prod`).
    pub environment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2147483647)]
    pub node_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 253)]
    pub vm_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 253)]
    pub k0s_version: Option<String>,
    /// Catalog components this cluster installs, each at most once.
    #[serde(default)]
    pub platform_components: Vec<ComponentRefBody>,
    /// Namespace definitions this cluster creates, each at most once.
    #[serde(default)]
    pub namespaces: Vec<ReferenceBody>,
    /// Rolebinding definitions this cluster creates, each at most once.
    #[serde(default)]
    pub rolebindings: Vec<ReferenceBody>,
    /// Per-component values, `{component_id: {key: value}}`, for referenced components
    /// only. Values keep their JSON type.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Object>)]
    pub patches: BTreeMap<String, Map<String, Value>>,
    /// Set by the server: 1 on creation, +1 on every change; the `ETag` is this, quoted.
    /// Sent in an update, the update applies only to this revision (like `If-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only, minimum = 1)]
    pub revision: Option<i64>,
}

/// A cluster's use of a catalog component, with optional overrides.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentRefBody {
    /// Id of a catalog component.
    #[schema(
        pattern = "dns1123-label", // replaced by openapi::NamePatterns
        min_length = 1,
        max_length = 63
    )]
    pub id: String,
    /// `false` keeps the component listed so Flux removes it from the cluster.
    pub enabled: bool,
    /// Replaces the catalog's `oci_tag` on this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 128)]
    pub oci_tag: Option<String>,
    /// Replaces the catalog's `component_path` on this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 253)]
    pub component_path: Option<String>,
}

/// A reference to a namespace or rolebinding definition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceBody {
    #[schema(
        pattern = "dns1123-label", // replaced by openapi::NamePatterns
        min_length = 1,
        max_length = 63
    )]
    pub id: String,
}

/// Fields to change (PUT: omitted fields keep their value and lists are replaced whole;
/// PATCH: RFC 7396 merge patch, where `patches` merge per key and `null` removes).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the partial body; requests are merged as JSON, then parsed as ClusterBody
pub struct ClusterUpdate {
    /// Must equal the id in the path if sent.
    id: Option<String>,
    cluster_name: Option<String>,
    cluster_dns: Option<String>,
    environment: Option<String>,
    node_count: Option<u32>,
    vm_image: Option<String>,
    k0s_version: Option<String>,
    platform_components: Option<Vec<ComponentRefBody>>,
    namespaces: Option<Vec<ReferenceBody>>,
    rolebindings: Option<Vec<ReferenceBody>>,
    #[schema(value_type = Option<BTreeMap<String, Object>>)]
    patches: Option<BTreeMap<String, Map<String, Value>>>,
    /// The revision the change is based on; refused with 412 if the stored one differs.
    revision: Option<i64>,
}

/// List filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClusterQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// Only the cluster with this DNS name.
    cluster_dns: Option<String>,
    /// Only clusters in this environment, one of the configured tiers (anything else is a 400).
    environment: Option<String>,
}

impl ListQuery for ClusterQuery {
    type Filter = ClusterFilter;
    fn limit(&self) -> Option<i64> {
        self.limit
    }
    fn offset(&self) -> Option<i64> {
        self.offset
    }
    fn filter_params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        if let Some(dns) = &self.cluster_dns {
            params.push(("cluster_dns", dns.clone()));
        }
        if let Some(environment) = &self.environment {
            params.push(("environment", environment.clone()));
        }
        params
    }
    /// An environment outside the configured tiers (a typo, `PROD`, an empty value) is
    /// refused: no cluster can be in it.
    fn check(&self, rules: &Rules) -> FieldErrors {
        let mut errors = FieldErrors::new();
        if let Some(environment) = &self.environment {
            errors.check("environment", rules.environments.check(environment));
        }
        errors
    }
    fn into_filter(self) -> ClusterFilter {
        ClusterFilter {
            cluster_dns: self.cluster_dns,
            environment: self.environment,
        }
    }
}

impl ApiResource for Cluster {
    const COLLECTION: &'static str = "/clusters";
    type Body = ClusterBody;
    type Query = ClusterQuery;

    fn to_body(&self, revision: i64) -> ClusterBody {
        ClusterBody {
            id: self.id.to_string(),
            cluster_name: self.cluster_name.to_string(),
            cluster_dns: self.cluster_dns.to_string(),
            environment: self.environment.clone(),
            node_count: self.node_count,
            vm_image: self.vm_image.clone(),
            k0s_version: self.k0s_version.clone(),
            platform_components: self
                .platform_components
                .iter()
                .map(|r| ComponentRefBody {
                    id: r.id.to_string(),
                    enabled: r.enabled,
                    oci_tag: r.oci_tag.clone(),
                    component_path: r.component_path.clone(),
                })
                .collect(),
            namespaces: self
                .namespaces
                .iter()
                .map(|n| ReferenceBody { id: n.to_string() })
                .collect(),
            rolebindings: self
                .rolebindings
                .iter()
                .map(|r| ReferenceBody { id: r.to_string() })
                .collect(),
            patches: self
                .patches()
                .into_iter()
                .map(|(id, patches)| (id.to_owned(), patches.clone()))
                .collect(),
            revision: Some(revision),
        }
    }

    fn from_body(body: ClusterBody, rules: &Rules) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let id = errors.check("id", ClusterId::parse(body.id));
        let cluster_name = errors.check("cluster_name", ClusterName::parse(body.cluster_name));
        let cluster_dns = errors.check("cluster_dns", ClusterDns::parse(body.cluster_dns));
        errors.check("environment", rules.environments.check(&body.environment));
        if let Some(value) = &body.vm_image {
            errors.check("vm_image", check_info_text(value));
        }
        if let Some(value) = &body.k0s_version {
            errors.check("k0s_version", check_info_text(value));
        }
        if body.node_count.is_some_and(|n| i32::try_from(n).is_err()) {
            errors.add("node_count", format!("must be at most {}", i32::MAX));
        }

        let mut platform_components = Vec::with_capacity(body.platform_components.len());
        for (i, reference) in body.platform_components.into_iter().enumerate() {
            let field = format!("platform_components[{i}]");
            if let Some(tag) = &reference.oci_tag {
                errors.check(&format!("{field}.oci_tag"), check_oci_tag(tag));
            }
            if let Some(path) = &reference.component_path {
                errors.check(
                    &format!("{field}.component_path"),
                    check_component_path(path),
                );
            }
            if let Some(id) = errors.check(&format!("{field}.id"), ComponentId::parse(reference.id))
            {
                platform_components.push(ComponentRef {
                    id,
                    enabled: reference.enabled,
                    oci_tag: reference.oci_tag,
                    component_path: reference.component_path,
                    patches: None,
                });
            }
        }
        let namespaces = references(
            "namespaces",
            body.namespaces,
            NamespaceId::parse,
            &mut errors,
        );
        let rolebindings = references(
            "rolebindings",
            body.rolebindings,
            RoleBindingId::parse,
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        errors.extend(attach_patches(&mut platform_components, body.patches));
        let (Some(id), Some(cluster_name), Some(cluster_dns)) = (id, cluster_name, cluster_dns)
        else {
            return Err(errors);
        };
        let cluster = Cluster {
            id,
            cluster_name,
            cluster_dns,
            environment: body.environment,
            node_count: body.node_count,
            vm_image: body.vm_image,
            k0s_version: body.k0s_version,
            platform_components,
            namespaces,
            rolebindings,
        };
        errors.extend(cluster.check_duplicate_references());
        errors.into_result(|| cluster)
    }
}

fn references<T, E: std::fmt::Display>(
    list: &str,
    bodies: Vec<ReferenceBody>,
    parse: impl Fn(String) -> Result<T, E>,
    errors: &mut FieldErrors,
) -> Vec<T> {
    bodies
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| errors.check(&format!("{list}[{i}].id"), parse(r.id)))
        .collect()
}

// --- Handlers: each documented operation calls the flow every resource shares
// (`super::crud`).

/// The resource; or, for a dry run or with `X-Flux-Changes: true`, a report of
/// the write with what changes for Flux.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documents the two shapes a write answers with
pub enum ClusterWriteResponse {
    Resource(ClusterBody),
    Report(crud::WriteReport),
}

/// What creating a cluster answers: [`ClusterWriteResponse`], or, with `issue_token=true`,
/// the cluster and its credential.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documents the shapes a create answers with
pub enum ClusterCreateResponse {
    Resource(ClusterBody),
    Report(crud::WriteReport),
    WithCredential(ClusterWithCredential),
}

/// A cluster created with `issue_token=true`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation type: the response is built as JSON
pub struct ClusterWithCredential {
    pub cluster: ClusterBody,
    /// Scope `cluster:<cluster_dns>`, named `cluster-<id>`; its secret in `token`, shown
    /// only now.
    pub credential: tokens::IssuedToken,
}

#[utoipa::path(get, operation_id = "listClusters", path = "/clusters", tag = "clusters",
    summary = "List clusters, by id.", params(ClusterQuery),
    responses(
        (status = 200, description = "One page, sorted by id", body = [ClusterBody],
            headers(("X-Total-Count" = i64, description = "Items matching the filters, on all pages"),
                    ("Link" = String, description = "RFC 8288 links to the next and previous pages"))),
        QueryErrors, AuthErrors))]
pub async fn list(state: Data<AppState>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    crud::list::<Cluster>(&state, &request).await
}

#[utoipa::path(get, operation_id = "getCluster", path = "/clusters/{id}", tag = "clusters",
    summary = "Get one cluster.",
    params(("id" = String, Path, description = "Cluster id"),
           ("If-None-Match" = Option<String>, Header, description = "An ETag you have; 304 if it is current")),
    responses(
        (status = 200, description = "The resource", body = ClusterBody,
            headers(("ETag" = String, description = "The revision, quoted"))),
        (status = 304, description = "Not modified: your copy is current"),
        NotFoundError, AuthErrors))]
pub async fn get(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::get::<Cluster>(&state, &request, &id).await
}

#[utoipa::path(post, operation_id = "createCluster", path = "/clusters", tag = "clusters",
    summary = "Register a cluster. Every referenced component, namespace and rolebinding must exist.", params(WriteQuery, WriteHeaders),
    request_body = ClusterBody,
    responses(
        (status = 201, description = "Created. With `issue_token=true`, `{cluster, credential}`: \
the cluster and its credential (scope `cluster:<cluster_dns>`), its secret in `credential.token`, shown only now", body = ClusterCreateResponse,
            headers(("Location" = String, description = "Path of the new resource"),
                    ("ETag" = String, description = "The revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs changed"))),
        (status = 200, description = "Dry run: what creating would do", body = ClusterWriteResponse),
        BodyErrors, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn create(
    state: Data<AppState>,
    request: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::create_then::<Cluster, _>(&state, &request, payload, async |cluster, context| {
        // After the cluster's own transaction: a failure here leaves the cluster without a
        // credential, and says so; `POST /tokens` can issue one.
        let (info, token) = tokens::issue(
            &state.store,
            &tokens::TokenRequest {
                name: format!("cluster-{}", cluster.id),
                scopes: vec![format!("cluster:{}", cluster.cluster_dns)],
                expires_at: None,
            },
            Some(cluster.id.as_ref()),
            &Change {
                actor: &context.actor,
                request_id: context.request_id.as_deref(),
            },
        )
        .await?;
        Ok(Some(
            serde_json::to_value(tokens::IssuedToken {
                credential: info.into(),
                token,
            })
            .expect("credentials serialise"),
        ))
    })
    .await
}

#[utoipa::path(put, operation_id = "replaceCluster", path = "/clusters/{id}", tag = "clusters",
    summary = "Change a cluster: fields sent replace the stored ones (lists whole), fields omitted keep their value.",
    params(("id" = String, Path, description = "Cluster id"), WriteQuery, WriteHeaders),
    request_body = ClusterUpdate,
    responses(
        (status = 200, description = "The updated resource (or a report)", body = ClusterWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn replace(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<Cluster>(&state, &request, &id, payload, UpdateKind::Replace).await
}

#[utoipa::path(patch, operation_id = "patchCluster", path = "/clusters/{id}", tag = "clusters",
    summary = "Change a cluster with an RFC 7396 JSON merge patch.",
    params(("id" = String, Path, description = "Cluster id"), WriteQuery, WriteHeaders),
    request_body(content = ClusterUpdate, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The updated resource (or a report)", body = ClusterWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn patch(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::update::<Cluster>(&state, &request, &id, payload, UpdateKind::MergePatch).await
}

#[utoipa::path(delete, operation_id = "deleteCluster", path = "/clusters/{id}", tag = "clusters",
    summary = "Delete a cluster and its references (the catalog entries stay).",
    params(("id" = String, Path, description = "Cluster id"), WriteQuery, WriteHeaders),
    responses(
        (status = 200, description = "The deleted resource (or a report)", body = ClusterWriteResponse,
            headers(("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        QueryErrors, NotFoundError, DeleteConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn delete(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    crud::delete::<Cluster>(&state, &request, &id).await
}

#[utoipa::path(get, operation_id = "getClusterHistory", path = "/clusters/{id}/history", tag = "clusters",
    summary = "Revisions of this resource, newest first; also after it was deleted.",
    params(("id" = String, Path, description = "Cluster id"), PagingQuery),
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
    crud::history::<Cluster>(&state, &request, &id).await
}

#[utoipa::path(post, operation_id = "rollbackCluster", path = "/clusters/{id}/rollback", tag = "clusters",
    summary = "Make an earlier revision's content current again, as a new revision (re-creates a deleted resource).",
    params(("id" = String, Path, description = "Cluster id"), WriteQuery, WriteHeaders),
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "The restored resource (or a report)", body = ClusterWriteResponse,
            headers(("ETag" = String, description = "The new revision, quoted"),
                    ("X-Flux-Changed-Clusters" = i64, description = "Clusters whose Flux inputs change"))),
        (status = 201, description = "Re-created a deleted resource", body = ClusterWriteResponse),
        BodyErrors, NotFoundError, ConflictError, PreconditionError, WriteErrors, AuthErrors))]
pub async fn rollback(
    state: Data<AppState>,
    request: HttpRequest,
    id: Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    crud::rollback::<Cluster>(&state, &request, &id, payload).await
}

/// Registers this resource's routes; writes only in crud mode.
pub fn configure(config: &mut ServiceConfig, mode: Mode) {
    crud::register(
        config,
        mode,
        "/clusters",
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
