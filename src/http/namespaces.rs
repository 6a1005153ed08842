//! `/namespaces`: namespace definitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::crud::{ApiResource, PagingQuery, Rules};
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

super::crud::resource_handlers! {
    resource: Namespace,
    body: NamespaceBody,
    update: NamespaceUpdate,
    query: PagingQuery,
    write_response: NamespaceWriteResponse,
    tag: "namespaces",
    collection: "/namespaces",
    item: "/namespaces/{id}",
    history: "/namespaces/{id}/history",
    rollback: "/namespaces/{id}/rollback",
    operation: ("Namespace", "Namespaces"),
    id: "Namespace id",
    summaries: {
        list: "List namespace definitions, by id.",
        get: "Get one namespace definition.",
        create: "Define a namespace.",
        replace: "Change a namespace definition: fields sent replace the stored ones, fields omitted keep their value.",
        patch: "Change a namespace definition with an RFC 7396 JSON merge patch.",
        delete: "Delete a namespace definition; refused while clusters reference it.",
    },
}
