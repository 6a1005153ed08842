//! Builders for the unit tests: one valid resource of each kind, to adjust per test.

use super::cluster::ComponentRef;
use super::names::{ClusterDns, ClusterId, ClusterName, ComponentId};
use super::{Cluster, PlatformComponent};

/// A catalog component named `id`, depending on `depends_on`.
pub fn component(id: &str, depends_on: &[&str]) -> PlatformComponent {
    PlatformComponent {
        id: ComponentId::parse(id).unwrap(),
        component_path: format!("charts/{id}"),
        component_version: "1.2.3".to_owned(),
        cluster_env_enabled: false,
        oci_url: format!("oci://registry.example.com/{id}"),
        oci_tag: "1.2.3".to_owned(),
        depends_on: depends_on
            .iter()
            .map(|d| ComponentId::parse(*d).unwrap())
            .collect(),
    }
}

/// An enabled reference to component `id`, without overrides.
pub fn reference(id: &str) -> ComponentRef {
    ComponentRef {
        id: ComponentId::parse(id).unwrap(),
        enabled: true,
        oci_tag: None,
        component_path: None,
        patches: None,
    }
}

/// Cluster `demo-01` (`demo-01.k8s.example.com`, `dev`) with these component references.
pub fn cluster(refs: Vec<ComponentRef>) -> Cluster {
    Cluster {
        id: ClusterId::parse("demo-01").unwrap(),
        cluster_name: ClusterName::parse("demo-01").unwrap(),
        cluster_dns: ClusterDns::parse("demo-01.k8s.example.com").unwrap(),
        environment: "dev".to_owned(),
        node_count: Some(3),
        vm_image: None,
        k0s_version: None,
        platform_components: refs,
        namespaces: vec![],
        rolebindings: vec![],
    }
}
