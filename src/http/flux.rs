//! The endpoints Flux Operator's `ResourceSetInputProvider` (`type: ExternalService`) polls.
//! Served in both modes; responses follow the ExternalService contract (see `domain::merge`).

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::body;
use super::docs::{AuthErrors, NotFoundError, QueryErrors};
use super::error::ApiError;
use crate::domain::ClusterDns;
use crate::domain::merge::{self, FLUX_MAX_RESPONSE_BYTES, FluxInputs};
use crate::storage::flux::Needs;

fn inputs_response<T: Serialize>(inputs: Vec<T>, what: &str) -> HttpResponse {
    let body = serde_json::to_vec(&FluxInputs { inputs }).expect("inputs serialise");
    if body.len() > FLUX_MAX_RESPONSE_BYTES {
        // Flux reads at most 900 KiB and would fail on this; make it visible to operators.
        log::warn!(
            "{what}: response of {} bytes exceeds the {FLUX_MAX_RESPONSE_BYTES} bytes Flux reads",
            body.len()
        );
    }
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(body)
}

async fn load(
    state: &AppState,
    cluster_dns: &str,
    needs: Needs,
) -> Result<(crate::domain::Cluster, crate::storage::flux::ClusterCatalog), ApiError> {
    let not_found = || ApiError::NotFound(format!("no cluster with cluster_dns {cluster_dns:?}"));
    // A name that is not a DNS name cannot be stored; no need to ask the database.
    ClusterDns::parse(cluster_dns).map_err(|_| not_found())?;
    state
        .store
        .cluster_for_flux(cluster_dns, needs)
        .await?
        .ok_or_else(not_found)
}

/// The cluster's platform components, catalog defaults merged with the cluster's overrides.
///
/// Ordered so that dependencies come before their dependents, ties by id. Disabled
/// components are included with `enabled: false`, so Flux removes them.
#[utoipa::path(get, operation_id = "getPlatformComponentInputs", path = "/api/v2/flux/clusters/{cluster_dns}/platform-components", tag = "flux",
    params(("cluster_dns" = String, Path, description = "The cluster's DNS name", example = "demo-cluster-01.k8s.example.com")),
    responses((status = 200, description = "ExternalService inputs", body = PlatformComponentInputs),
        NotFoundError, AuthErrors))]
pub async fn platform_components(
    state: web::Data<AppState>,
    cluster_dns: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (cluster, catalog) = load(&state, &cluster_dns, Needs::PlatformComponents).await?;
    let inputs = merge::platform_component_inputs(&cluster, |id| catalog.components.get(id))?;
    Ok(inputs_response(inputs, &cluster_dns))
}

/// The cluster's namespaces with their labels and annotations, by id.
#[utoipa::path(get, operation_id = "getNamespaceInputs", path = "/api/v2/flux/clusters/{cluster_dns}/namespaces", tag = "flux",
    params(("cluster_dns" = String, Path, description = "The cluster's DNS name")),
    responses((status = 200, description = "ExternalService inputs", body = NamespaceInputs),
        NotFoundError, AuthErrors))]
pub async fn namespaces(
    state: web::Data<AppState>,
    cluster_dns: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (cluster, catalog) = load(&state, &cluster_dns, Needs::Namespaces).await?;
    let inputs = merge::namespace_inputs(&cluster, |id| catalog.namespaces.get(id))?;
    Ok(inputs_response(inputs, &cluster_dns))
}

/// The cluster's rolebindings with their role and subjects, by id.
#[utoipa::path(get, operation_id = "getRoleBindingInputs", path = "/api/v2/flux/clusters/{cluster_dns}/rolebindings", tag = "flux",
    params(("cluster_dns" = String, Path, description = "The cluster's DNS name")),
    responses((status = 200, description = "ExternalService inputs", body = RoleBindingInputs),
        NotFoundError, AuthErrors))]
pub async fn rolebindings(
    state: web::Data<AppState>,
    cluster_dns: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (cluster, catalog) = load(&state, &cluster_dns, Needs::RoleBindings).await?;
    let inputs = merge::rolebinding_inputs(&cluster, |id| catalog.rolebindings.get(id))?;
    Ok(inputs_response(inputs, &cluster_dns))
}

/// Narrows the fleet listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClusterInputsQuery {
    /// Only clusters in this environment: large fleets exceed the 900 KiB Flux reads (at
    /// about 7,000 clusters) and Flux keeps only `filter.limit` inputs, so provisioners
    /// usually poll one environment each.
    environment: Option<String>,
}

/// Every cluster, by id: for management-cluster provisioners.
#[utoipa::path(get, operation_id = "getClusterInputs", path = "/api/v2/flux/clusters", tag = "flux",
    params(ClusterInputsQuery),
    responses((status = 200, description = "ExternalService inputs", body = ClusterInputs),
        QueryErrors, AuthErrors))]
pub async fn clusters(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: ClusterInputsQuery = body::parse_query(request.query_string())?;
    let clusters = state
        .store
        .all_clusters(query.environment.as_deref())
        .await?;
    Ok(inputs_response(
        merge::cluster_inputs(&clusters),
        "cluster list",
    ))
}

// The response shapes, for the OpenAPI document. They mirror `domain::merge`'s types, which
// stay free of documentation concerns; a test compares them with real responses.
#[allow(dead_code)]
mod schema {
    use super::*;

    /// The cluster an input is for.
    #[derive(ToSchema)]
    pub struct ClusterInfo {
        pub name: String,
        pub dns: String,
        pub environment: String,
    }

    /// Where the chart or artifact comes from.
    #[derive(ToSchema)]
    pub struct OciSource {
        pub oci_url: String,
        /// The cluster's override if set, else the catalog default.
        pub oci_tag: String,
    }

    /// One platform component as the cluster installs it.
    #[derive(ToSchema)]
    pub struct PlatformComponentInput {
        pub id: String,
        /// The cluster's override if set, else the catalog default.
        pub component_path: String,
        pub component_version: String,
        pub cluster_env_enabled: bool,
        pub depends_on: Vec<String>,
        pub enabled: bool,
        /// The cluster's patches for this component; `{}` when none.
        #[schema(value_type = Object)]
        pub patches: BTreeMap<String, Value>,
        pub cluster: ClusterInfo,
        pub source: OciSource,
    }

    /// An RBAC subject; `namespace` and `apiGroup` appear only when set.
    #[derive(Serialize, ToSchema)]
    pub struct FluxSubject {
        pub kind: String,
        pub name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub namespace: Option<String>,
        #[serde(rename = "apiGroup", skip_serializing_if = "Option::is_none")]
        pub api_group: Option<String>,
    }

    #[derive(ToSchema)]
    pub struct NamespaceInput {
        pub id: String,
        pub labels: BTreeMap<String, String>,
        pub annotations: BTreeMap<String, String>,
        pub cluster: ClusterInfo,
    }

    #[derive(ToSchema)]
    pub struct RoleBindingInput {
        pub id: String,
        pub role: String,
        pub subjects: Vec<FluxSubject>,
        pub cluster: ClusterInfo,
    }

    #[derive(ToSchema)]
    pub struct ClusterInput {
        pub id: String,
        pub cluster_name: String,
        pub cluster_dns: String,
        pub environment: String,
    }

    #[derive(ToSchema)]
    pub struct PlatformComponentInputs {
        pub inputs: Vec<PlatformComponentInput>,
    }

    #[derive(ToSchema)]
    pub struct NamespaceInputs {
        pub inputs: Vec<NamespaceInput>,
    }

    #[derive(ToSchema)]
    pub struct RoleBindingInputs {
        pub inputs: Vec<RoleBindingInput>,
    }

    #[derive(ToSchema)]
    pub struct ClusterInputs {
        pub inputs: Vec<ClusterInput>,
    }
}

pub use schema::{ClusterInputs, NamespaceInputs, PlatformComponentInputs, RoleBindingInputs};
