//! The endpoints Flux Operator's `ResourceSetInputProvider` (`type: ExternalService`) polls.
//! Served in both modes; responses follow the ExternalService contract (see `domain::merge`).

use std::collections::BTreeMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::body;
use super::connection::sliced;
use super::docs::{AuthErrors, NotFoundError, QueryErrors};
use super::error::ApiError;
use super::metrics::{FluxEndpoint, RouteTemplate};
use crate::domain::{ClusterDns, FieldErrors};
use crate::snapshot::{ClusterResponses, Encoded, Lookup};

/// Seconds since the snapshot was last confirmed in sync with the database.
pub const AGE_HEADER: &str = "x-catalog-age";
/// `true` while the database cannot be reached and the snapshot may be behind it.
pub const STALE_HEADER: &str = "x-catalog-stale";

/// The headers of every Flux endpoint's 200 response, for the OpenAPI document (added to
/// each operation under [`CLUSTERS_PATH`] by [`super::openapi`]): name, type, description.
pub const RESPONSE_HEADERS: [(&str, &str, &str); 3] = [
    (
        "ETag",
        "string",
        "Hash of the body (with -gzip when gzip-encoded)",
    ),
    (
        "X-Catalog-Age",
        "integer",
        "Seconds since the snapshot was last confirmed in sync with the database",
    ),
    (
        "X-Catalog-Stale",
        "string",
        "true while the database cannot be reached",
    ),
];

/// Whether the client takes gzip (Go's HTTP client, hence Flux, asks for it by default).
fn accepts_gzip(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Whether `If-None-Match` names this response in either encoding (weak comparison).
fn not_modified(request: &HttpRequest, encoded: &Encoded) -> bool {
    let Some(value) = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    value.split(',').any(|tag| {
        let tag = tag.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag == "*"
            || tag.as_bytes() == encoded.etag.as_ref()
            || tag.as_bytes() == encoded.gzip_etag.as_ref()
    })
}

/// Sends stored bytes: a lookup and a write, nothing computed per request.
fn respond(request: &HttpRequest, state: &AppState, encoded: &Encoded) -> HttpResponse {
    let gzip = accepts_gzip(request);
    let (age, stale) = state.snapshot.freshness();
    let unchanged = not_modified(request, encoded);
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    let etag = if gzip {
        &encoded.gzip_etag
    } else {
        &encoded.etag
    };
    response
        .insert_header((header::ETAG, header_value(etag)))
        .insert_header((header::VARY, HeaderValue::from_static("Accept-Encoding")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((AGE_HEADER, HeaderValue::from(age)));
    if stale {
        response.insert_header((STALE_HEADER, HeaderValue::from_static("true")));
    }
    if unchanged {
        return response.finish();
    }
    response.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    if gzip {
        response
            .insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")))
            .body(sliced(encoded.gzip.clone()))
    } else {
        response.body(sliced(encoded.identity.clone()))
    }
}

/// A header value the snapshot prepared, shared rather than copied.
fn header_value(bytes: &bytes::Bytes) -> HeaderValue {
    HeaderValue::from_maybe_shared(bytes.clone()).expect("the snapshot makes valid header values")
}

fn not_loaded() -> ApiError {
    ApiError::NotReady("the catalog snapshot has not been loaded from the database yet".to_owned())
}

/// One of a cluster's responses, from the snapshot.
fn cluster_response(
    state: &AppState,
    request: &HttpRequest,
    cluster_dns: &str,
    pick: impl FnOnce(&ClusterResponses) -> &Encoded,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound(format!("no cluster with cluster_dns {cluster_dns:?}"));
    // A name that is not a DNS name cannot be stored.
    ClusterDns::parse(cluster_dns).map_err(|_| not_found())?;
    match state.snapshot.cluster(cluster_dns) {
        Lookup::Found(responses) => Ok(respond(request, state, pick(&responses))),
        Lookup::NotFound => Err(not_found()),
        Lookup::NotLoaded => Err(not_loaded()),
    }
}

/// The cluster's platform components, catalog defaults merged with the cluster's overrides.
///
/// Ordered so that dependencies come before their dependents, ties by id. Disabled
/// components are included with `enabled: false`, so Flux removes them. Served from the
/// in-memory snapshot, also while the database is unreachable.
#[utoipa::path(get, operation_id = "getPlatformComponentInputs", path = "/api/v2/flux/clusters/{cluster_dns}/platform-components", tag = "flux",
    params(("cluster_dns" = String, Path, description = "The cluster's DNS name", example = "demo-cluster-01.k8s.example.com"),
           FluxHeaders),
    responses((status = 200, description = "ExternalService inputs", body = PlatformComponentInputs),
        (status = 304, description = "Not modified: If-None-Match names the current body"),
        NotFoundError, QueryErrors, AuthErrors))]
pub fn platform_components(
    state: &AppState,
    request: &HttpRequest,
    cluster_dns: &str,
) -> Result<HttpResponse, ApiError> {
    cluster_response(state, request, cluster_dns, |r| &r.platform_components)
}

/// The cluster's namespaces with their labels and annotations, by id.
#[utoipa::path(get, operation_id = "getNamespaceInputs", path = "/api/v2/flux/clusters/{cluster_dns}/namespaces", tag = "flux",
    params(("cluster_dns" = String, Path, description = "The cluster's DNS name"), FluxHeaders),
    responses((status = 200, description = "ExternalService inputs", body = NamespaceInputs),
        (status = 304, description = "Not modified: If-None-Match names the current body"),
        NotFoundError, QueryErrors, AuthErrors))]
pub fn namespaces(
    state: &AppState,
    request: &HttpRequest,
    cluster_dns: &str,
) -> Result<HttpResponse, ApiError> {
    cluster_response(state, request, cluster_dns, |r| &r.namespaces)
}

/// The cluster's rolebindings with their role and subjects, by id.
#[utoipa::path(get, operation_id = "getRoleBindingInputs", path = "/api/v2/flux/clusters/{cluster_dns}/rolebindings", tag = "flux",
    params(("cluster_dns" = String, Path, description = "The cluster's DNS name"), FluxHeaders),
    responses((status = 200, description = "ExternalService inputs", body = RoleBindingInputs),
        (status = 304, description = "Not modified: If-None-Match names the current body"),
        NotFoundError, QueryErrors, AuthErrors))]
pub fn rolebindings(
    state: &AppState,
    request: &HttpRequest,
    cluster_dns: &str,
) -> Result<HttpResponse, ApiError> {
    cluster_response(state, request, cluster_dns, |r| &r.rolebindings)
}

/// Where the per-cluster endpoints live, below the fleet listing.
pub const CLUSTERS_PATH: &str = "/api/v2/flux/clusters";

/// Routes `/api/v2/flux/clusters/{cluster_dns}/{endpoint}` by splitting the path, rather
/// than through the router's pattern matching, which costs a regular-expression match per
/// request: measurable at Flux's request rates.
pub async fn cluster_endpoint(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let no_route = || ApiError::NotFound(format!("no route for {}", request.path()));
    let rest = request
        .path()
        .strip_prefix(CLUSTERS_PATH)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(no_route)?;
    let (cluster_dns, endpoint) = rest.split_once('/').ok_or_else(no_route)?;
    type Serve = fn(&AppState, &HttpRequest, &str) -> Result<HttpResponse, ApiError>;
    let (serve, name, template): (Serve, _, _) = match endpoint {
        "platform-components" => (
            platform_components,
            "platform-components",
            "/api/v2/flux/clusters/{cluster_dns}/platform-components",
        ),
        "namespaces" => (
            namespaces,
            "namespaces",
            "/api/v2/flux/clusters/{cluster_dns}/namespaces",
        ),
        "rolebindings" => (
            rolebindings,
            "rolebindings",
            "/api/v2/flux/clusters/{cluster_dns}/rolebindings",
        ),
        _ => return Err(no_route()),
    };
    {
        let mut extensions = request.extensions_mut();
        extensions.insert(RouteTemplate(template));
        extensions.insert(FluxEndpoint(name));
    }
    if request.method() != actix_web::http::Method::GET {
        return Err(ApiError::MethodNotAllowed {
            allow: "GET, HEAD",
            read_only: false,
        });
    }
    // They take no parameters; one sent (`?environment=prod`, say) would otherwise be
    // silently ignored. Flux sends none, so its requests cost one emptiness check.
    if !request.query_string().is_empty() {
        body::parse_query::<NoParameters>(request.query_string())?;
    }
    let cluster_dns = percent_decoded(cluster_dns).ok_or_else(|| {
        ApiError::NotFound(format!("no cluster with cluster_dns {cluster_dns:?}"))
    })?;
    serve(&state, &request, &cluster_dns)
}

/// A path segment with its `%XX` escapes decoded; `None` if they do not form UTF-8.
fn percent_decoded(segment: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !segment.contains('%') {
        return Some(segment.into());
    }
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| segment.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).ok().map(Into::into)
}

/// The per-cluster endpoints' parameters: none.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParameters {}

/// Narrows the fleet listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClusterInputsQuery {
    /// Only clusters in this environment: large fleets exceed the 900 KiB Flux reads (at
    /// about 7,000 clusters) and Flux keeps only `filter.limit` inputs, so provisioners
    /// usually poll one environment each. One of the configured tiers: anything else (a
    /// typo, `PROD`, an empty value) is a 400, never an empty list Flux would prune from.
    environment: Option<String>,
}

/// The conditional and content-coding headers the Flux endpoints honour.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents request headers
pub struct FluxHeaders {
    /// An ETag from an earlier response; 304 when it is still current.
    #[param(rename = "If-None-Match")]
    if_none_match: Option<String>,
    /// `gzip` to receive the body gzip-encoded.
    #[param(rename = "Accept-Encoding")]
    accept_encoding: Option<String>,
}

/// Every cluster, by id: for management-cluster provisioners.
#[utoipa::path(get, operation_id = "getClusterInputs", path = "/api/v2/flux/clusters", tag = "flux",
    params(ClusterInputsQuery, FluxHeaders),
    responses((status = 200, description = "ExternalService inputs", body = ClusterInputs),
        (status = 304, description = "Not modified: If-None-Match names the current body"),
        QueryErrors, AuthErrors))]
pub async fn clusters(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    request.extensions_mut().insert(FluxEndpoint("clusters"));
    let query: ClusterInputsQuery = body::parse_query(request.query_string())?;
    // A typo must never look like an empty fleet: Flux would delete what it made from it.
    if let Some(environment) = &query.environment {
        state
            .rules
            .environments
            .check(environment)
            .map_err(|reason| {
                ApiError::InvalidRequest(FieldErrors::single("environment", reason))
            })?;
    }
    match state.snapshot.fleet(query.environment.as_deref()) {
        Lookup::Found(encoded) => Ok(respond(&request, &state, &encoded)),
        Lookup::NotFound | Lookup::NotLoaded => Err(not_loaded()),
    }
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

    /// An RBAC subject. Every key is always present, so one template serves every subject
    /// under Flux's `missingkey=error`: `namespace` and `apiGroup` are `""` when unset.
    #[derive(Serialize, ToSchema)]
    pub struct FluxSubject {
        pub kind: String,
        pub name: String,
        pub namespace: String,
        #[serde(rename = "apiGroup")]
        pub api_group: String,
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
