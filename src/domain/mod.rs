//! The catalog's types and rules, and the merge that turns them into Flux inputs.
//!
//! Nothing here does I/O or knows about HTTP or SQL; everything above builds on it.

pub mod catalog;
pub mod cluster;
pub mod component;
pub mod impact;
pub mod kind;
pub mod kubernetes;
pub mod merge;
pub mod names;
pub mod namespace;
pub mod rolebinding;
pub mod scope;
#[cfg(test)]
pub mod testing;
pub mod validation;

pub use catalog::Catalog;
pub use cluster::{Cluster, ComponentRef, Environments, Patches};
pub use component::PlatformComponent;
pub use kind::Kind;
pub use names::{ClusterDns, ClusterId, ClusterName, ComponentId, NamespaceId, RoleBindingId};
pub use namespace::Namespace;
pub use rolebinding::{RoleBinding, Subject, SubjectKind};
pub use scope::{Need, Scope};
pub use validation::{FieldError, FieldErrors, Rules};
