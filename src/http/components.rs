//! `/platform_components`: the catalog of installable components.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::crud::{ApiResource, ListQuery, Rules};
use crate::domain::component::{
    check_component_path, check_component_version, check_oci_tag, check_oci_url,
};
use crate::domain::{ComponentId, FieldErrors, PlatformComponent};
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
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
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

super::crud::resource_handlers! {
    resource: PlatformComponent,
    body: PlatformComponentBody,
    update: PlatformComponentUpdate,
    query: ComponentQuery,
    write_response: PlatformComponentWriteResponse,
    tag: "platform components",
    collection: "/platform_components",
    item: "/platform_components/{id}",
    history: "/platform_components/{id}/history",
    rollback: "/platform_components/{id}/rollback",
    operation: ("PlatformComponent", "PlatformComponents"),
    id: "Component id",
    summaries: {
        list: "List catalog components, by id.",
        get: "Get one catalog component.",
        create: "Add a component to the catalog. Every `depends_on` id must exist.",
        replace: "Change a component: fields sent replace the stored ones, fields omitted keep their value.",
        patch: "Change a component with an RFC 7396 JSON merge patch.",
        delete: "Remove a component from the catalog; refused while clusters or other components reference it.",
    },
}
