//! Clusters and their references into the catalog.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::names::{ClusterDns, ClusterId, ClusterName, ComponentId, NamespaceId, RoleBindingId};
use super::validation::{self, FieldErrors, map_entry_path};

/// Per-cluster values for one component (for example Helm values), kept exactly as given:
/// a string stays a string and a number a number.
pub type Patches = Map<String, Value>;

/// A cluster and what it takes from the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub id: ClusterId,
    pub cluster_name: ClusterName,
    pub cluster_dns: ClusterDns,
    /// One of the configured tiers at the time it was written.
    pub environment: String,
    pub node_count: Option<u32>,
    pub vm_image: Option<String>,
    pub k0s_version: Option<String>,
    /// In the order given; Flux sees them in dependency order instead.
    pub platform_components: Vec<ComponentRef>,
    pub namespaces: Vec<NamespaceId>,
    pub rolebindings: Vec<RoleBindingId>,
}

/// A cluster's use of one catalog component, with its per-cluster overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentRef {
    pub id: ComponentId,
    /// `false` keeps the component listed so that Flux removes what it installed.
    pub enabled: bool,
    /// Replaces the catalog's `oci_tag` on this cluster.
    pub oci_tag: Option<String>,
    /// Replaces the catalog's `component_path` on this cluster.
    pub component_path: Option<String>,
    /// `None` when the cluster gives no patches for this component.
    pub patches: Option<Patches>,
}

/// The environment tiers clusters may be in; configured, `dev`, `qa`, `uat`, `prod` by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environments(Vec<String>);

impl Environments {
    pub fn new(tiers: Vec<String>) -> Result<Self, String> {
        if tiers.is_empty() {
            return Err("at least one environment tier is needed".to_owned());
        }
        for tier in &tiers {
            super::names::dns1123_label(tier).map_err(|e| format!("tier {tier:?} {e}"))?;
        }
        Ok(Self(tiers))
    }

    pub fn check(&self, environment: &str) -> Result<(), String> {
        if self.0.iter().any(|tier| tier == environment) {
            Ok(())
        } else {
            Err(format!("must be one of {:?}, got {environment:?}", self.0))
        }
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl Default for Environments {
    fn default() -> Self {
        Self(["dev", "qa", "uat", "prod"].map(String::from).to_vec())
    }
}

const INFO_MAX: usize = 253;

/// `vm_image` and `k0s_version` are descriptive; they only must be clean text.
pub fn check_info_text(value: &str) -> Result<(), String> {
    validation::text(value, INFO_MAX)
}

impl Cluster {
    /// Each catalog entry is referenced at most once: two references to one component
    /// would give Flux two inputs with the same id.
    pub fn check_duplicate_references(&self) -> FieldErrors {
        let mut errors = FieldErrors::new();
        duplicates(
            "platform_components",
            self.platform_components.iter().map(|r| r.id.as_str()),
            &mut errors,
        );
        duplicates(
            "namespaces",
            self.namespaces.iter().map(|n| n.as_str()),
            &mut errors,
        );
        duplicates(
            "rolebindings",
            self.rolebindings.iter().map(|r| r.as_str()),
            &mut errors,
        );
        errors
    }

    /// The cluster's patches as one map keyed by component id, the way clients write them.
    pub fn patches(&self) -> BTreeMap<&str, &Patches> {
        self.platform_components
            .iter()
            .filter_map(|r| r.patches.as_ref().map(|p| (r.id.as_str(), p)))
            .collect()
    }
}

fn duplicates<'a>(list: &str, ids: impl Iterator<Item = &'a str>, errors: &mut FieldErrors) {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, id) in ids.enumerate() {
        if let Some(first) = first_seen.get(id) {
            errors.add(
                format!("{list}[{i}].id"),
                format!("{id:?} is already referenced at {list}[{first}]"),
            );
        } else {
            first_seen.insert(id, i);
        }
    }
}

/// Moves a client's `patches` map (`{component_id: {key: value}}`) onto the references it
/// belongs to. Patches for a component the cluster does not reference would never reach
/// Flux, so they are refused rather than silently kept.
pub fn attach_patches(
    refs: &mut [ComponentRef],
    patches: BTreeMap<String, Patches>,
) -> FieldErrors {
    let mut errors = FieldErrors::new();
    for (component, mut values) in patches {
        values.values_mut().for_each(without_negative_zero);
        let field = map_entry_path("patches", &component);
        if let Some(key) = values.keys().find(|k| k.is_empty()) {
            errors.add(map_entry_path(&field, key), "patch keys must not be empty");
            continue;
        }
        if let Some(path) = values
            .iter()
            .find_map(|(key, value)| nul_in(&map_entry_path(&field, key), key, value))
        {
            errors.add(path, "must not contain NUL characters");
            continue;
        }
        match refs.iter_mut().find(|r| r.id.as_str() == component) {
            Some(reference) => reference.patches = Some(values),
            None => errors.add(
                field,
                format!(
                    "the cluster does not reference platform component {component:?}; \
                     add it to platform_components first"
                ),
            ),
        }
    }
    errors
}

/// `-0.0` becomes `0.0`, as PostgreSQL stores it (its numbers have no negative zero), so
/// that what a write answers is what every later read returns.
fn without_negative_zero(value: &mut Value) {
    match value {
        Value::Number(n) if n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) => {
            *value = Value::from(0.0);
        }
        Value::Array(items) => items.iter_mut().for_each(without_negative_zero),
        Value::Object(map) => map.values_mut().for_each(without_negative_zero),
        _ => {}
    }
}

/// The path of the first key or string under `value` that holds a NUL character, which
/// PostgreSQL's JSON cannot store.
fn nul_in(path: &str, key: &str, value: &Value) -> Option<String> {
    if key.contains('\0') {
        return Some(path.to_owned());
    }
    match value {
        Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in(&format!("{path}[{i}]"), "", item)),
        Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| nul_in(&map_entry_path(path, k), k, v)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::reference;
    use serde_json::json;

    fn patches(value: Value) -> BTreeMap<String, Patches> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn patches_are_attached_to_their_reference_and_keep_their_types() {
        let mut refs = vec![reference("a"), reference("b")];
        let errors = attach_patches(
            &mut refs,
            patches(json!({"b": {"replicas": 3, "tag": "3", "on": true, "list": [1, "x"]}})),
        );
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(refs[0].patches, None);
        assert_eq!(
            Value::Object(refs[1].patches.clone().unwrap()),
            json!({"replicas": 3, "tag": "3", "on": true, "list": [1, "x"]})
        );
    }

    #[test]
    fn negative_zero_is_stored_as_zero_as_postgresql_does() {
        let mut refs = vec![reference("a")];
        let patches: BTreeMap<String, Patches> = serde_json::from_str(
            r#"{"a": {"x": -0.0, "y": [-0.0, 1.5], "z": {"w": -0}, "n": -2.0, "i": 0}}"#,
        )
        .unwrap();
        assert!(attach_patches(&mut refs, patches).is_empty());
        let stored = serde_json::to_string(refs[0].patches.as_ref().unwrap()).unwrap();
        assert_eq!(
            stored,
            r#"{"i":0,"n":-2.0,"x":0.0,"y":[0.0,1.5],"z":{"w":0.0}}"#
        );
    }

    #[test]
    fn patches_may_not_hold_nul_characters_anywhere() {
        let mut refs = vec![reference("a")];
        let errors = attach_patches(
            &mut refs,
            patches(json!({"a": {"ok": "x", "deep": {"list": ["fine", "bad\u{0}"]}}})),
        );
        assert_eq!(
            errors.iter().next().unwrap().field,
            "patches.a.deep.list[1]"
        );
        assert_eq!(refs[0].patches, None);
    }

    #[test]
    fn patches_for_unreferenced_components_are_refused() {
        let mut refs = vec![reference("a")];
        let errors = attach_patches(&mut refs, patches(json!({"ghost": {"k": 1}})));
        let error = errors.iter().next().unwrap();
        assert_eq!(error.field, "patches.ghost");
        assert!(error.message.contains("does not reference"));
    }

    #[test]
    fn environments_are_checked_against_the_configured_tiers() {
        let tiers = Environments::default();
        assert!(tiers.check("prod").is_ok());
        assert!(tiers.check("staging").unwrap_err().contains("\"staging\""));
        assert!(Environments::new(vec![]).is_err());
        assert!(Environments::new(vec!["Prod".into()]).is_err());
    }
}
