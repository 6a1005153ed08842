//! The whole catalog at once: what a catalog document holds, once every entry is valid.

use super::{Cluster, Namespace, PlatformComponent, RoleBinding};

/// Resources of every kind, to be written together in one transaction. Components come in
/// dependency order (see [`super::component::dependency_order`]).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub platform_components: Vec<PlatformComponent>,
    pub namespaces: Vec<Namespace>,
    pub rolebindings: Vec<RoleBinding>,
    pub clusters: Vec<Cluster>,
}
