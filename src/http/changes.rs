//! The documented shape of the change reports writes give (`domain::impact`), mirrored
//! here so the domain stays free of documentation concerns; a test compares them with real
//! reports.
#![allow(dead_code)] // documentation types: described, never constructed

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

/// How one cluster's Flux inputs change.
#[derive(ToSchema)]
#[schema(as = ClusterChange)]
pub struct ClusterChangeDoc {
    pub cluster: String,
    pub cluster_dns: String,
    /// By endpoint (`platform-components`, `namespaces`, `rolebindings`, `clusters` for the
    /// fleet listing); only those that change.
    pub endpoints: BTreeMap<String, EndpointChangeDoc>,
}

/// How one endpoint's inputs change.
#[derive(ToSchema)]
#[schema(as = EndpointChange)]
pub struct EndpointChangeDoc {
    /// Inputs that appear, whole.
    #[schema(value_type = Vec<Object>)]
    pub added: Vec<Value>,
    /// Ids of inputs that disappear.
    pub removed: Vec<String>,
    pub changed: Vec<InputChangeDoc>,
}

/// One input that changes, with each changed field.
#[derive(ToSchema)]
#[schema(as = InputChange)]
pub struct InputChangeDoc {
    pub id: String,
    pub fields: Vec<FieldChangeDoc>,
}

/// A changed value by its path in the input; `old` or `new` is absent when the field
/// appears or disappears.
#[derive(ToSchema)]
#[schema(as = FieldChange)]
pub struct FieldChangeDoc {
    pub field: String,
    #[schema(value_type = Option<Value>)]
    pub old: Option<Value>,
    #[schema(value_type = Option<Value>)]
    pub new: Option<Value>,
}
