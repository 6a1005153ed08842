//! Catalog defaults + a cluster's references = the inputs Flux receives for that cluster.
//!
//! Flux Operator's `ExternalService` provider requires a top-level `inputs` array in which
//! every element has a string `id` unique in the response, reads at most 900 KiB, and keeps
//! only the first `filter.limit` inputs (100 unless configured). The functions here produce
//! those arrays; [`FluxInputs`] is the response document.
//!
//! # Order
//! Inputs have one documented order, so the same data always gives byte-identical JSON and
//! Flux never sees a change that is not one:
//! - platform components: dependencies before their dependents (counting only dependencies
//!   the cluster references), ties broken by id; components caught in a dependency cycle
//!   follow the rest, by id;
//! - namespaces, rolebindings and clusters: by id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::Serialize;

use super::cluster::{Cluster, Patches};
use super::component::PlatformComponent;
use super::names::{ClusterDns, ClusterId, ClusterName, ComponentId, NamespaceId, RoleBindingId};
use super::namespace::Namespace;
use super::rolebinding::{RoleBinding, Subject, SubjectKind};

/// The largest body the Flux provider reads.
pub const FLUX_MAX_RESPONSE_BYTES: usize = 900 * 1024;

/// The response document of every Flux endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FluxInputs<'a, T> {
    pub inputs: &'a [T],
}

impl<T: Serialize> FluxInputs<'_, T> {
    /// The response body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("inputs serialise")
    }

    /// The length of [`Self::to_json`], without building it.
    pub fn json_len(&self) -> usize {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0 += bytes.len();
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        serde_json::to_writer(&mut count, self).expect("inputs serialise");
        count.0
    }
}

// Inputs borrow from the cluster and catalog entries they are computed from: a fleet's
// inputs are computed on every write and every snapshot rebuild, and kept only long enough
// to be serialised or compared.

/// The cluster an input is for, as templates see it (`inputs.cluster.name` ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClusterInfo<'a> {
    pub name: &'a ClusterName,
    pub dns: &'a ClusterDns,
    pub environment: &'a str,
}

/// One platform component as a cluster installs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlatformComponentInput<'a> {
    pub id: &'a ComponentId,
    pub component_path: &'a str,
    pub component_version: &'a str,
    pub cluster_env_enabled: bool,
    pub depends_on: &'a [ComponentId],
    pub enabled: bool,
    pub patches: &'a Patches,
    pub cluster: ClusterInfo<'a>,
    pub source: OciSource<'a>,
}

/// Where the component's chart or artifact comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OciSource<'a> {
    pub oci_url: &'a str,
    pub oci_tag: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceInput<'a> {
    pub id: &'a NamespaceId,
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    pub cluster: ClusterInfo<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleBindingInput<'a> {
    pub id: &'a RoleBindingId,
    pub role: &'a str,
    pub subjects: Vec<SubjectInput<'a>>,
    pub cluster: ClusterInfo<'a>,
}

/// A subject as Flux receives it. Flux renders with `missingkey=error`, and one subject
/// without a key the template names stalls the cluster's whole ResourceSet, so every
/// subject has every key: `namespace` and `apiGroup` are `""` when unset, which Kubernetes
/// reads as unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectInput<'a> {
    pub kind: SubjectKind,
    pub name: &'a str,
    pub namespace: &'a str,
    #[serde(rename = "apiGroup")]
    pub api_group: &'a str,
}

impl<'a> From<&'a Subject> for SubjectInput<'a> {
    fn from(subject: &'a Subject) -> Self {
        Self {
            kind: subject.kind,
            name: &subject.name,
            namespace: subject.namespace.as_ref().map_or("", |n| n.as_str()),
            api_group: subject.api_group.as_deref().unwrap_or(""),
        }
    }
}

/// One cluster in the fleet listing used by management-cluster provisioners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterInput {
    pub id: ClusterId,
    pub cluster_name: ClusterName,
    pub cluster_dns: ClusterDns,
    pub environment: String,
}

/// A cluster references something its catalog does not hold. The schema's foreign keys
/// make this impossible for stored data; it signals a caller handing in the wrong catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster {cluster:?} references unknown {kind} {id:?}")]
pub struct DanglingReference {
    pub cluster: String,
    pub kind: &'static str,
    pub id: String,
}

pub fn cluster_info(cluster: &Cluster) -> ClusterInfo<'_> {
    ClusterInfo {
        name: &cluster.cluster_name,
        dns: &cluster.cluster_dns,
        environment: &cluster.environment,
    }
}

/// What a component without patches on a cluster gets: `{}`.
static NO_PATCHES: LazyLock<Patches> = LazyLock::new(Patches::new);

/// Merges the catalog into a cluster's platform component references.
///
/// Precedence, field by field:
/// - `id`, `enabled`: the cluster's reference (a disabled component stays in the list, so
///   Flux removes what it had installed);
/// - `component_path`, `source.oci_tag`: the cluster's override when set, else the catalog;
/// - `component_version`, `cluster_env_enabled`, `depends_on`, `source.oci_url`: the catalog;
/// - `patches`: the cluster's patches for this component, `{}` when it has none. Patches
///   replace nothing in the catalog; they are handed to the templates as given.
///
/// Ordered dependencies first (see the module documentation).
pub fn platform_component_inputs<'a>(
    cluster: &'a Cluster,
    catalog: impl Fn(&ComponentId) -> Option<&'a PlatformComponent>,
) -> Result<Vec<PlatformComponentInput<'a>>, DanglingReference> {
    let info = cluster_info(cluster);
    let mut merged = Vec::with_capacity(cluster.platform_components.len());
    for reference in &cluster.platform_components {
        let component = catalog(&reference.id).ok_or_else(|| DanglingReference {
            cluster: cluster.id.to_string(),
            kind: "platform component",
            id: reference.id.to_string(),
        })?;
        merged.push(PlatformComponentInput {
            id: &reference.id,
            component_path: reference
                .component_path
                .as_deref()
                .unwrap_or(&component.component_path),
            component_version: &component.component_version,
            cluster_env_enabled: component.cluster_env_enabled,
            depends_on: &component.depends_on,
            enabled: reference.enabled,
            patches: reference.patches.as_ref().unwrap_or(&NO_PATCHES),
            cluster: info,
            source: OciSource {
                oci_url: &component.oci_url,
                oci_tag: reference.oci_tag.as_deref().unwrap_or(&component.oci_tag),
            },
        });
    }
    Ok(in_dependency_order(merged))
}

/// Kahn's algorithm with the ready set kept sorted by id, so ties resolve the same way
/// every time.
fn in_dependency_order(inputs: Vec<PlatformComponentInput<'_>>) -> Vec<PlatformComponentInput<'_>> {
    let position: BTreeMap<&str, usize> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| (input.id.as_str(), i))
        .collect();
    let mut waiting_on = vec![0usize; inputs.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); inputs.len()];
    for (i, input) in inputs.iter().enumerate() {
        let on_cluster: BTreeSet<usize> = input
            .depends_on
            .iter()
            .filter_map(|d| position.get(d.as_str()).copied())
            .collect();
        waiting_on[i] = on_cluster.len();
        for dependency in on_cluster {
            dependents[dependency].push(i);
        }
    }
    let mut ready: BTreeSet<(&str, usize)> = inputs
        .iter()
        .enumerate()
        .filter(|(i, _)| waiting_on[*i] == 0)
        .map(|(i, input)| (input.id.as_str(), i))
        .collect();
    let mut order = Vec::with_capacity(inputs.len());
    while let Some((_, i)) = ready.pop_first() {
        order.push(i);
        for &dependent in &dependents[i] {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                ready.insert((inputs[dependent].id.as_str(), dependent));
            }
        }
    }
    if order.len() < inputs.len() {
        let mut in_cycle: Vec<usize> = (0..inputs.len()).filter(|i| waiting_on[*i] > 0).collect();
        in_cycle.sort_by(|a, b| inputs[*a].id.cmp(inputs[*b].id));
        order.extend(in_cycle);
    }
    let mut slots: Vec<Option<PlatformComponentInput>> = inputs.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("each index is ordered once"))
        .collect()
}

/// The cluster's namespaces with their definitions, by id.
pub fn namespace_inputs<'a>(
    cluster: &'a Cluster,
    definitions: impl Fn(&NamespaceId) -> Option<&'a Namespace>,
) -> Result<Vec<NamespaceInput<'a>>, DanglingReference> {
    let info = cluster_info(cluster);
    let mut inputs = cluster
        .namespaces
        .iter()
        .map(|id| {
            let namespace = definitions(id).ok_or_else(|| DanglingReference {
                cluster: cluster.id.to_string(),
                kind: "namespace",
                id: id.to_string(),
            })?;
            Ok(NamespaceInput {
                id: &namespace.id,
                labels: &namespace.labels,
                annotations: &namespace.annotations,
                cluster: info,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    inputs.sort_by(|a, b| a.id.cmp(b.id));
    Ok(inputs)
}

/// The cluster's rolebindings with their definitions, by id.
pub fn rolebinding_inputs<'a>(
    cluster: &'a Cluster,
    definitions: impl Fn(&RoleBindingId) -> Option<&'a RoleBinding>,
) -> Result<Vec<RoleBindingInput<'a>>, DanglingReference> {
    let info = cluster_info(cluster);
    let mut inputs = cluster
        .rolebindings
        .iter()
        .map(|id| {
            let binding = definitions(id).ok_or_else(|| DanglingReference {
                cluster: cluster.id.to_string(),
                kind: "rolebinding",
                id: id.to_string(),
            })?;
            Ok(RoleBindingInput {
                id: &binding.id,
                role: &binding.role,
                subjects: binding.subjects.iter().map(SubjectInput::from).collect(),
                cluster: info,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    inputs.sort_by(|a, b| a.id.cmp(b.id));
    Ok(inputs)
}

/// The fleet listing, by cluster id.
pub fn cluster_inputs<'a>(clusters: impl IntoIterator<Item = &'a Cluster>) -> Vec<ClusterInput> {
    let mut inputs: Vec<ClusterInput> = clusters
        .into_iter()
        .map(|c| ClusterInput {
            id: c.id.clone(),
            cluster_name: c.cluster_name.clone(),
            cluster_dns: c.cluster_dns.clone(),
            environment: c.environment.clone(),
        })
        .collect();
    inputs.sort_by(|a, b| a.id.cmp(&b.id));
    inputs
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::cluster::ComponentRef;
    use crate::domain::rolebinding::SubjectKind;
    use crate::domain::testing::{cluster, component, reference};

    fn catalog(components: &[PlatformComponent]) -> HashMap<ComponentId, PlatformComponent> {
        components
            .iter()
            .map(|c| (c.id.clone(), c.clone()))
            .collect()
    }

    fn merge<'a>(
        cluster: &'a Cluster,
        catalog: &'a HashMap<ComponentId, PlatformComponent>,
    ) -> Vec<PlatformComponentInput<'a>> {
        platform_component_inputs(cluster, |id| catalog.get(id)).unwrap()
    }

    fn ids<'a>(inputs: &[PlatformComponentInput<'a>]) -> Vec<&'a str> {
        inputs.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn catalog_defaults_apply_when_the_cluster_overrides_nothing() {
        let catalog = catalog(&[component("cert-manager", &[])]);
        let member = cluster(vec![reference("cert-manager")]);
        let inputs = merge(&member, &catalog);
        assert_eq!(
            serde_json::to_value(&inputs[0]).unwrap(),
            json!({
                "id": "cert-manager",
                "component_path": "charts/cert-manager",
                "component_version": "1.2.3",
                "cluster_env_enabled": false,
                "depends_on": [],
                "enabled": true,
                "patches": {},
                "cluster": {"name": "demo-01", "dns": "demo-01.k8s.example.com", "environment": "dev"},
                "source": {"oci_url": "oci://registry.example.com/cert-manager", "oci_tag": "1.2.3"}
            })
        );
    }

    #[test]
    fn override_replaces_default_oci_tag() {
        let catalog = catalog(&[component("a", &[])]);
        let mut r = reference("a");
        r.oci_tag = Some("9.9.9".into());
        let member = cluster(vec![r]);
        let input = &merge(&member, &catalog)[0];
        assert_eq!(input.source.oci_tag, "9.9.9");
        assert_eq!(input.component_path, "charts/a", "path not overridden");
    }

    #[test]
    fn override_replaces_default_component_path() {
        let catalog = catalog(&[component("a", &[])]);
        let mut r = reference("a");
        r.component_path = Some("forks/a".into());
        let member = cluster(vec![r]);
        let input = &merge(&member, &catalog)[0];
        assert_eq!(input.component_path, "forks/a");
        assert_eq!(input.source.oci_tag, "1.2.3", "tag not overridden");
    }

    #[test]
    fn version_env_flag_dependencies_and_url_always_come_from_the_catalog() {
        let mut c = component("b", &["a"]);
        c.cluster_env_enabled = true;
        c.component_version = "latest".into();
        let catalog = catalog(&[component("a", &[]), c]);
        let mut r = reference("b");
        r.oci_tag = Some("x".into());
        r.component_path = Some("y".into());
        let member = cluster(vec![reference("a"), r]);
        let inputs = merge(&member, &catalog);
        let b = inputs.iter().find(|i| i.id.as_str() == "b").unwrap();
        assert_eq!(b.component_version, "latest");
        assert!(b.cluster_env_enabled);
        assert_eq!(ids_of(b.depends_on), ["a"]);
        assert_eq!(b.source.oci_url, "oci://registry.example.com/b");
    }

    fn ids_of(ids: &[ComponentId]) -> Vec<&str> {
        ids.iter().map(|i| i.as_str()).collect()
    }

    #[test]
    fn disabled_component_is_passed_through_with_enabled_false() {
        let catalog = catalog(&[component("a", &[])]);
        let mut r = reference("a");
        r.enabled = false;
        let member = cluster(vec![r]);
        let inputs = merge(&member, &catalog);
        assert_eq!(inputs.len(), 1);
        assert!(!inputs[0].enabled);
    }

    #[test]
    fn patches_are_the_clusters_for_that_component_and_empty_otherwise() {
        let catalog = catalog(&[component("a", &[]), component("b", &[])]);
        let mut a = reference("a");
        a.patches = Some(
            json!({"replicas": 2, "image.tag": "2"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let member = cluster(vec![a, reference("b")]);
        let inputs = merge(&member, &catalog);
        assert_eq!(
            Value::Object(inputs[0].patches.clone()),
            json!({"replicas": 2, "image.tag": "2"})
        );
        assert_eq!(Value::Object(inputs[1].patches.clone()), json!({}));
    }

    #[test]
    fn dependencies_come_before_dependents_with_ties_by_id() {
        let catalog = catalog(&[
            component("zeta", &[]),
            component("alpha", &["zeta"]),
            component("mid", &[]),
            component("beta", &["alpha", "mid"]),
        ]);
        let member = cluster(["beta", "mid", "alpha", "zeta"].map(reference).to_vec());
        assert_eq!(
            ids(&merge(&member, &catalog)),
            ["mid", "zeta", "alpha", "beta"]
        );
    }

    #[test]
    fn dependencies_the_cluster_does_not_reference_do_not_affect_order() {
        let catalog = catalog(&[
            component("a", &["z"]),
            component("b", &[]),
            component("z", &[]),
        ]);
        let member = cluster(vec![reference("b"), reference("a")]);
        let inputs = merge(&member, &catalog);
        assert_eq!(ids(&inputs), ["a", "b"]);
        assert_eq!(
            ids_of(inputs[0].depends_on),
            ["z"],
            "depends_on still says what the catalog says"
        );
    }

    #[test]
    fn components_in_a_cycle_are_still_all_listed_after_the_rest() {
        let catalog = catalog(&[
            component("x", &["y"]),
            component("y", &["x"]),
            component("a", &[]),
        ]);
        let member = cluster(["y", "x", "a"].map(reference).to_vec());
        assert_eq!(ids(&merge(&member, &catalog)), ["a", "x", "y"]);
    }

    #[test]
    fn output_order_is_stable_whatever_the_reference_order() {
        let catalog = catalog(&[
            component("a", &[]),
            component("b", &["a"]),
            component("c", &[]),
        ]);
        let (one, other) = (
            cluster(["c", "b", "a"].map(reference).to_vec()),
            cluster(["a", "c", "b"].map(reference).to_vec()),
        );
        let first = merge(&one, &catalog);
        let second = merge(&other, &catalog);
        assert_eq!(
            serde_json::to_vec(&first).unwrap(),
            serde_json::to_vec(&second).unwrap()
        );
    }

    #[test]
    fn a_reference_missing_from_the_catalog_is_an_error_not_a_gap() {
        let err =
            platform_component_inputs(&cluster(vec![reference("ghost")]), |_| None).unwrap_err();
        assert_eq!(err.id, "ghost");
    }

    #[test]
    fn namespaces_and_rolebindings_carry_their_definition_and_the_cluster() {
        let mut c = cluster(vec![]);
        c.namespaces = vec![
            NamespaceId::parse("b").unwrap(),
            NamespaceId::parse("a").unwrap(),
        ];
        c.rolebindings = vec![RoleBindingId::parse("admins").unwrap()];
        let namespaces: HashMap<_, _> = ["a", "b"]
            .map(|id| {
                let ns = Namespace {
                    id: NamespaceId::parse(id).unwrap(),
                    labels: [("app".to_owned(), id.to_owned())].into(),
                    annotations: BTreeMap::new(),
                };
                (ns.id.clone(), ns)
            })
            .into();
        let binding = RoleBinding {
            id: RoleBindingId::parse("admins").unwrap(),
            role: "cluster-admin".into(),
            subjects: vec![Subject {
                kind: SubjectKind::Group,
                name: "platform-team".into(),
                namespace: None,
                api_group: Some("rbac.authorization.k8s.io".into()),
            }],
        };
        let ns = namespace_inputs(&c, |id| namespaces.get(id)).unwrap();
        assert_eq!(
            ns.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            serde_json::to_value(&ns[0]).unwrap(),
            json!({"id": "a", "labels": {"app": "a"}, "annotations": {},
                   "cluster": {"name": "demo-01", "dns": "demo-01.k8s.example.com", "environment": "dev"}})
        );
        let rb = rolebinding_inputs(&c, |_| Some(&binding)).unwrap();
        assert_eq!(
            serde_json::to_value(&rb[0]).unwrap(),
            json!({"id": "admins", "role": "cluster-admin",
                   "subjects": [{"kind": "Group", "name": "platform-team", "namespace": "", "apiGroup": "rbac.authorization.k8s.io"}],
                   "cluster": {"name": "demo-01", "dns": "demo-01.k8s.example.com", "environment": "dev"}})
        );
    }

    // --- The ExternalService contract, for generated catalogs and clusters. ---

    /// A catalog of `n` components where each may depend on earlier ones (so no cycles),
    /// and a cluster referencing a subset with overrides and patches.
    fn fleet_member() -> impl Strategy<Value = (Vec<PlatformComponent>, Cluster)> {
        (1usize..120)
            .prop_flat_map(|n| {
                let deps = proptest::collection::vec(
                    proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
                    n,
                );
                let refs = proptest::collection::vec(
                    (
                        any::<bool>(),
                        any::<bool>(),
                        any::<bool>(),
                        proptest::option::of(patch_values()),
                    ),
                    n,
                );
                (
                    Just(n),
                    deps,
                    refs,
                    proptest::collection::vec(any::<bool>(), n),
                )
            })
            .prop_map(|(n, deps, refs, referenced)| {
                let components: Vec<PlatformComponent> = (0..n)
                    .map(|i| {
                        let mut depends_on: Vec<ComponentId> = if i == 0 {
                            vec![]
                        } else {
                            deps[i].iter().map(|ix| comp_id(ix.index(i))).collect()
                        };
                        depends_on.sort();
                        depends_on.dedup();
                        PlatformComponent {
                            depends_on,
                            ..component(comp_id(i).as_str(), &[])
                        }
                    })
                    .collect();
                let platform_components = (0..n)
                    .filter(|i| referenced[*i])
                    .map(|i| {
                        let (enabled, tag, path, patches) = refs[i].clone();
                        ComponentRef {
                            id: comp_id(i),
                            enabled,
                            oci_tag: tag.then(|| format!("{i}.0.0-override")),
                            component_path: path.then(|| format!("overrides/{i}")),
                            patches,
                        }
                    })
                    .collect();
                (components, cluster(platform_components))
            })
    }

    fn comp_id(i: usize) -> ComponentId {
        ComponentId::parse(format!("component-{i:03}")).unwrap()
    }

    fn patch_values() -> impl Strategy<Value = Patches> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::from),
            "[a-z0-9.-]{0,40}".prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ];
        proptest::collection::btree_map("[a-zA-Z.]{1,30}", leaf, 0..6)
            .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn every_response_meets_the_external_service_contract((components, cluster) in fleet_member()) {
            let catalog = catalog(&components);
            let inputs = platform_component_inputs(&cluster, |id| catalog.get(id)).unwrap();
            let body = FluxInputs { inputs: &inputs }.to_json();
            prop_assert!(body.len() < FLUX_MAX_RESPONSE_BYTES, "{} bytes", body.len());
            prop_assert_eq!(FluxInputs { inputs: &inputs }.json_len(), body.len());

            let document: Value = serde_json::from_slice(&body).unwrap();
            let array = document["inputs"].as_array().expect("inputs is an array");
            prop_assert_eq!(array.len(), cluster.platform_components.len());
            let mut seen = BTreeSet::new();
            for input in array {
                let id = input["id"].as_str().expect("id is a string");
                prop_assert!(seen.insert(id.to_owned()), "duplicate id {}", id);
            }

            // Dependencies the cluster has come first.
            let position: BTreeMap<&str, usize> = inputs.iter().enumerate().map(|(i, x)| (x.id.as_str(), i)).collect();
            for (i, input) in inputs.iter().enumerate() {
                for dependency in input.depends_on {
                    if let Some(&at) = position.get(dependency.as_str()) {
                        prop_assert!(at < i, "{} must come before {}", dependency, input.id);
                    }
                }
            }

            // Overrides win, the catalog fills the rest.
            for reference in &cluster.platform_components {
                let input = &inputs[position[reference.id.as_str()]];
                let default = &catalog[&reference.id];
                prop_assert_eq!(input.source.oci_tag, reference.oci_tag.as_deref().unwrap_or(&default.oci_tag));
                prop_assert_eq!(input.component_path, reference.component_path.as_deref().unwrap_or(&default.component_path));
                prop_assert_eq!(input.patches, &reference.patches.clone().unwrap_or_default());
                prop_assert_eq!(input.enabled, reference.enabled);
            }
        }
    }
}
