//! What a change does to the fleet: everything Flux receives for a cluster, the rules those
//! inputs must meet so Flux can act on them, and the difference between two states.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::cluster::Cluster;
use super::component::PlatformComponent;
use super::merge::{
    self, ClusterInput, DanglingReference, FLUX_MAX_RESPONSE_BYTES, FluxInputs, NamespaceInput,
    PlatformComponentInput, RoleBindingInput,
};
use super::names::{ClusterDns, ClusterId, ComponentId, NamespaceId, RoleBindingId};
use super::namespace::Namespace;
use super::rolebinding::RoleBinding;
use super::validation::map_entry_path;

/// A Flux endpoint, named as in its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    PlatformComponents,
    Namespaces,
    Rolebindings,
    /// The fleet listing, `/api/v2/flux/clusters`.
    Clusters,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PlatformComponents => "platform-components",
            Self::Namespaces => "namespaces",
            Self::Rolebindings => "rolebindings",
            Self::Clusters => "clusters",
        })
    }
}

/// Everything Flux receives about one cluster: its three endpoints' inputs and its entry in
/// the fleet listing.
#[derive(Debug, Clone, PartialEq)]
pub struct FluxView<'a> {
    pub summary: ClusterInput,
    pub platform_components: Vec<PlatformComponentInput<'a>>,
    pub namespaces: Vec<NamespaceInput<'a>>,
    pub rolebindings: Vec<RoleBindingInput<'a>>,
}

/// The catalog entries a set of clusters references, for computing their inputs.
#[derive(Debug, Clone, Default)]
pub struct References {
    pub components: BTreeMap<ComponentId, PlatformComponent>,
    pub namespaces: BTreeMap<NamespaceId, Namespace>,
    pub rolebindings: BTreeMap<RoleBindingId, RoleBinding>,
}

impl<'a> FluxView<'a> {
    /// Borrows from `cluster` and `references`.
    pub fn compute(
        cluster: &'a Cluster,
        references: &'a References,
    ) -> Result<Self, DanglingReference> {
        Ok(Self {
            summary: merge::cluster_inputs([cluster]).remove(0),
            platform_components: merge::platform_component_inputs(cluster, |id| {
                references.components.get(id)
            })?,
            namespaces: merge::namespace_inputs(cluster, |id| references.namespaces.get(id))?,
            rolebindings: merge::rolebinding_inputs(cluster, |id| references.rolebindings.get(id))?,
        })
    }

    pub fn cluster(&self) -> &ClusterId {
        &self.summary.id
    }
}

/// An input of a Flux response, matched across two states by its id.
trait Input: Serialize + PartialEq {
    fn input_id(&self) -> &str;
}

impl Input for PlatformComponentInput<'_> {
    fn input_id(&self) -> &str {
        self.id.as_str()
    }
}

impl Input for NamespaceInput<'_> {
    fn input_id(&self) -> &str {
        self.id.as_str()
    }
}

impl Input for RoleBindingInput<'_> {
    fn input_id(&self) -> &str {
        self.id.as_str()
    }
}

impl Input for ClusterInput {
    fn input_id(&self) -> &str {
        self.id.as_str()
    }
}

fn to_value<T: Serialize>(input: &T) -> Value {
    serde_json::to_value(input).expect("inputs serialise")
}

/// Limits that keep a cluster's inputs usable by Flux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FluxLimits {
    /// Flux keeps only the first `filter.limit` inputs (100 unless configured) and silently
    /// drops the rest, so a cluster may not have more on any endpoint.
    pub max_inputs: usize,
    /// Flux reads at most 900 KiB of a response.
    pub max_response_bytes: usize,
}

impl Default for FluxLimits {
    fn default() -> Self {
        Self {
            max_inputs: 100,
            max_response_bytes: FLUX_MAX_RESPONSE_BYTES,
        }
    }
}

/// A rule a cluster's inputs break; each would leave Flux stuck or wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// An enabled component depends on one the cluster does not reference, or has disabled:
    /// Flux would wait for it forever.
    MissingDependency {
        cluster: ClusterId,
        component: ComponentId,
        dependency: ComponentId,
        disabled: bool,
    },
    TooManyInputs {
        cluster: ClusterId,
        endpoint: Endpoint,
        count: usize,
        limit: usize,
    },
    ResponseTooLarge {
        cluster: ClusterId,
        endpoint: Endpoint,
        bytes: usize,
        limit: usize,
    },
}

impl Violation {
    pub fn cluster(&self) -> &ClusterId {
        match self {
            Self::MissingDependency { cluster, .. }
            | Self::TooManyInputs { cluster, .. }
            | Self::ResponseTooLarge { cluster, .. } => cluster,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingDependency {
                cluster,
                component,
                dependency,
                disabled,
            } => {
                let state = if *disabled {
                    "disables"
                } else {
                    "does not reference"
                };
                write!(
                    f,
                    "cluster \"{cluster}\" enables \"{component}\", which depends on \"{dependency}\", \
                     but {state} \"{dependency}\"; Flux would wait for it forever"
                )
            }
            Self::TooManyInputs {
                cluster,
                endpoint,
                count,
                limit,
            } => write!(
                f,
                "cluster \"{cluster}\" would have {count} {endpoint} inputs; Flux keeps only the \
                 first {limit} (filter.limit) and would silently drop the rest"
            ),
            Self::ResponseTooLarge {
                cluster,
                endpoint,
                bytes,
                limit,
            } => write!(
                f,
                "cluster \"{cluster}\" would get a {endpoint} response of {bytes} bytes; Flux \
                 reads at most {limit}"
            ),
        }
    }
}

/// Every rule `inputs` break, in a stable order.
pub fn check(inputs: &FluxView<'_>, limits: FluxLimits) -> Vec<Violation> {
    let cluster = inputs.cluster();
    let mut violations = Vec::new();

    let enabled: BTreeMap<&str, bool> = inputs
        .platform_components
        .iter()
        .map(|c| (c.id.as_str(), c.enabled))
        .collect();
    for component in inputs.platform_components.iter().filter(|c| c.enabled) {
        for dependency in component.depends_on {
            match enabled.get(dependency.as_str()) {
                Some(true) => {}
                state => violations.push(Violation::MissingDependency {
                    cluster: cluster.clone(),
                    component: component.id.clone(),
                    dependency: dependency.clone(),
                    disabled: state.is_some(),
                }),
            }
        }
    }

    // Sizes are those of the bodies the endpoints send, counted without building them.
    fn body_len<T: Serialize>(inputs: &[T]) -> usize {
        FluxInputs { inputs }.json_len()
    }
    let endpoints = [
        (
            Endpoint::PlatformComponents,
            inputs.platform_components.len(),
            body_len(&inputs.platform_components),
        ),
        (
            Endpoint::Namespaces,
            inputs.namespaces.len(),
            body_len(&inputs.namespaces),
        ),
        (
            Endpoint::Rolebindings,
            inputs.rolebindings.len(),
            body_len(&inputs.rolebindings),
        ),
    ];
    for (endpoint, count, bytes) in endpoints {
        if count > limits.max_inputs {
            violations.push(Violation::TooManyInputs {
                cluster: cluster.clone(),
                endpoint,
                count,
                limit: limits.max_inputs,
            });
        }
        if bytes > limits.max_response_bytes {
            violations.push(Violation::ResponseTooLarge {
                cluster: cluster.clone(),
                endpoint,
                bytes,
                limit: limits.max_response_bytes,
            });
        }
    }
    violations
}

/// How one cluster's Flux inputs change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterChange {
    pub cluster: ClusterId,
    pub cluster_dns: ClusterDns,
    /// Only the endpoints whose inputs change.
    pub endpoints: BTreeMap<Endpoint, EndpointChange>,
}

/// How one endpoint's inputs change, by input id.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EndpointChange {
    /// Inputs that appear, whole.
    pub added: Vec<Value>,
    /// Ids of inputs that disappear.
    pub removed: Vec<String>,
    pub changed: Vec<InputChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputChange {
    pub id: String,
    pub fields: Vec<FieldChange>,
}

/// One changed value, by its path in the input (`source.oci_tag`, `patches.replicas`);
/// `old` or `new` is absent when the field appears or disappears.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// The difference between a cluster's inputs before and after a change (`None` when the
/// cluster does not exist on that side); `None` when nothing Flux receives changes.
pub fn diff(before: Option<&FluxView<'_>>, after: Option<&FluxView<'_>>) -> Option<ClusterChange> {
    let side = after.or(before)?;
    if before == after {
        return None;
    }
    fn of<'s, 'a, T>(
        inputs: Option<&'s FluxView<'a>>,
        pick: impl FnOnce(&'s FluxView<'a>) -> &'s [T],
    ) -> &'s [T] {
        inputs.map_or(&[], pick)
    }
    let endpoints: BTreeMap<Endpoint, EndpointChange> = [
        (
            Endpoint::PlatformComponents,
            diff_endpoint(
                of(before, |i| &i.platform_components),
                of(after, |i| &i.platform_components),
            ),
        ),
        (
            Endpoint::Namespaces,
            diff_endpoint(of(before, |i| &i.namespaces), of(after, |i| &i.namespaces)),
        ),
        (
            Endpoint::Rolebindings,
            diff_endpoint(
                of(before, |i| &i.rolebindings),
                of(after, |i| &i.rolebindings),
            ),
        ),
        (
            Endpoint::Clusters,
            diff_endpoint(
                of(before, |i| std::slice::from_ref(&i.summary)),
                of(after, |i| std::slice::from_ref(&i.summary)),
            ),
        ),
    ]
    .into_iter()
    .filter(|(_, change)| *change != EndpointChange::default())
    .collect();
    (!endpoints.is_empty()).then(|| ClusterChange {
        cluster: side.summary.id.clone(),
        cluster_dns: side.summary.cluster_dns.clone(),
        endpoints,
    })
}

/// Inputs matched by id; added ones in the new order, removed and changed ones by id. Typed
/// inputs are compared first: a fleet-wide change touches one input of each cluster, and
/// only the inputs that differ are turned into JSON values to find their changed fields.
fn diff_endpoint<T: Input>(old: &[T], new: &[T]) -> EndpointChange {
    let old_by_id: HashMap<&str, &T> = old.iter().map(|i| (i.input_id(), i)).collect();
    let new_ids: HashSet<&str> = new.iter().map(Input::input_id).collect();
    let mut change = EndpointChange::default();
    for input in new {
        match old_by_id.get(input.input_id()) {
            None => change.added.push(to_value(input)),
            Some(previous) if *previous != input => {
                let mut fields = Vec::new();
                diff_values("", &to_value(*previous), &to_value(input), &mut fields);
                if !fields.is_empty() {
                    change.changed.push(InputChange {
                        id: input.input_id().to_owned(),
                        fields,
                    });
                }
            }
            Some(_) => {}
        }
    }
    change.changed.sort_by(|a, b| a.id.cmp(&b.id));
    change.removed = old
        .iter()
        .map(Input::input_id)
        .filter(|id| !new_ids.contains(id))
        .map(str::to_owned)
        .collect();
    change.removed.sort();
    change
}

/// Objects are compared member by member; anything else (arrays included) as a whole.
fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<FieldChange>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    map_entry_path(path, key)
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) if x == y => {}
                    (Some(x), Some(y)) => diff_values(&child, x, y, out),
                    (x, y) => out.push(FieldChange {
                        field: child,
                        old: x.cloned(),
                        new: y.cloned(),
                    }),
                }
            }
        }
        _ if old == new => {}
        _ => out.push(FieldChange {
            field: path.to_owned(),
            old: Some(old.clone()),
            new: Some(new.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::cluster::ComponentRef;
    use crate::domain::testing::{self, cluster, component};

    fn reference(id: &str, enabled: bool) -> ComponentRef {
        ComponentRef {
            enabled,
            ..testing::reference(id)
        }
    }

    fn catalog(components: &[PlatformComponent]) -> References {
        References {
            components: components
                .iter()
                .map(|c| (c.id.clone(), c.clone()))
                .collect(),
            ..References::default()
        }
    }

    /// A cluster and the catalog it references; its inputs borrow from it.
    struct Member {
        cluster: Cluster,
        catalog: References,
    }

    impl Member {
        fn inputs(&self) -> FluxView<'_> {
            FluxView::compute(&self.cluster, &self.catalog).unwrap()
        }
    }

    fn member(refs: Vec<ComponentRef>, components: &[PlatformComponent]) -> Member {
        Member {
            cluster: cluster(refs),
            catalog: catalog(components),
        }
    }

    #[test]
    fn an_enabled_component_needs_its_dependencies_referenced_and_enabled() {
        let components = [component("base", &[]), component("app", &["base"])];
        let ok = member(
            vec![reference("base", true), reference("app", true)],
            &components,
        );
        let ok = ok.inputs();
        assert!(check(&ok, FluxLimits::default()).is_empty());

        let missing = member(vec![reference("app", true)], &components);
        let missing = missing.inputs();
        assert!(matches!(
            check(&missing, FluxLimits::default()).as_slice(),
            [Violation::MissingDependency {
                disabled: false,
                ..
            }]
        ));

        let disabled = member(
            vec![reference("base", false), reference("app", true)],
            &components,
        );
        let disabled = disabled.inputs();
        let violations = check(&disabled, FluxLimits::default());
        assert!(matches!(
            violations.as_slice(),
            [Violation::MissingDependency { disabled: true, .. }]
        ));
        assert!(
            violations[0].to_string().contains("disables \"base\""),
            "{}",
            violations[0]
        );

        let both_off = member(
            vec![reference("base", false), reference("app", false)],
            &components,
        );
        let both_off = both_off.inputs();
        assert!(
            check(&both_off, FluxLimits::default()).is_empty(),
            "a disabled component needs nothing"
        );
    }

    #[test]
    fn limits_on_input_count_and_response_size() {
        let components: Vec<_> = (0..5).map(|i| component(&format!("c{i}"), &[])).collect();
        let all = member(
            (0..5).map(|i| reference(&format!("c{i}"), true)).collect(),
            &components,
        );
        let all = all.inputs();
        let limits = FluxLimits {
            max_inputs: 4,
            max_response_bytes: 400,
        };
        let violations = check(&all, limits);
        assert!(violations.iter().any(|v| matches!(
            v,
            Violation::TooManyInputs {
                count: 5,
                limit: 4,
                ..
            }
        )));
        assert!(
            violations
                .iter()
                .any(|v| matches!(v, Violation::ResponseTooLarge { limit: 400, .. }))
        );
        assert!(check(&all, FluxLimits::default()).is_empty());
    }

    #[test]
    fn the_diff_names_changed_fields_with_old_and_new_values() {
        let before = member(
            vec![reference("a", true), reference("b", true)],
            &[component("a", &[]), component("b", &[])],
        );
        let before = before.inputs();
        let mut tagged = component("a", &[]);
        tagged.oci_tag = "2.0.0".to_owned();
        let mut refs = vec![reference("a", true), reference("c", true)];
        refs[0].patches = Some(json!({"replicas": 2}).as_object().unwrap().clone());
        let after = member(refs, &[tagged, component("c", &[])]);
        let after = after.inputs();

        let change = diff(Some(&before), Some(&after)).unwrap();
        assert_eq!(change.cluster.as_str(), "demo-01");
        let components = &change.endpoints[&Endpoint::PlatformComponents];
        assert_eq!(components.removed, ["b"]);
        assert_eq!(components.added.len(), 1);
        assert_eq!(components.added[0]["id"], "c");
        assert_eq!(
            serde_json::to_value(&components.changed).unwrap(),
            json!([{"id": "a", "fields": [
                {"field": "patches.replicas", "new": 2},
                {"field": "source.oci_tag", "old": "1.2.3", "new": "2.0.0"}
            ]}])
        );
        assert!(
            !change.endpoints.contains_key(&Endpoint::Namespaces),
            "unchanged endpoints are left out"
        );
    }

    #[test]
    fn nothing_changes_means_no_change_and_a_new_cluster_is_all_added() {
        let a = member(vec![reference("a", true)], &[component("a", &[])]);
        let a = a.inputs();
        assert_eq!(diff(Some(&a), Some(&a)), None);
        let created = diff(None, Some(&a)).unwrap();
        assert_eq!(created.endpoints[&Endpoint::Clusters].added.len(), 1);
        assert_eq!(
            created.endpoints[&Endpoint::PlatformComponents].added.len(),
            1
        );
        let deleted = diff(Some(&a), None).unwrap();
        assert_eq!(deleted.endpoints[&Endpoint::Clusters].removed, ["demo-01"]);
    }
}
