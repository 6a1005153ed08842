//! The kinds of catalog resource, listed once. The audit log's names, the catalog document's
//! lists, the REST collections and the database's constraint on the audit log all follow
//! [`Kind::ALL`]; a test checks the constraint against it.

use std::fmt;

/// A kind of catalog resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    PlatformComponent,
    Namespace,
    RoleBinding,
    Cluster,
}

impl Kind {
    /// Every kind, in the order a whole catalog is written: what clusters reference first.
    pub const ALL: [Kind; 4] = [
        Kind::Namespace,
        Kind::RoleBinding,
        Kind::PlatformComponent,
        Kind::Cluster,
    ];

    /// The name in the audit log and its `kind` filter: `platform_component`.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::PlatformComponent => "platform_component",
            Kind::Namespace => "namespace",
            Kind::RoleBinding => "rolebinding",
            Kind::Cluster => "cluster",
        }
    }

    /// The name in messages: `platform component`.
    pub const fn label(self) -> &'static str {
        match self {
            Kind::PlatformComponent => "platform component",
            Kind::Namespace => "namespace",
            Kind::RoleBinding => "rolebinding",
            Kind::Cluster => "cluster",
        }
    }

    /// The collection: the list's name in a catalog document and the REST path's first
    /// segment, `platform_components`.
    pub const fn collection(self) -> &'static str {
        match self {
            Kind::PlatformComponent => "platform_components",
            Kind::Namespace => "namespaces",
            Kind::RoleBinding => "rolebindings",
            Kind::Cluster => "clusters",
        }
    }

    /// The kind with this audit-log name.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The audit log's name for credential changes, which are audited like catalog writes but
/// are no catalog resource.
pub const CREDENTIAL_AUDIT_KIND: &str = "credential";

/// Every `kind` the audit log holds: each kind's name, then credentials.
pub const fn audited_kinds() -> [&'static str; 5] {
    let [a, b, c, d] = Kind::ALL;
    [
        a.name(),
        b.name(),
        c.name(),
        d.name(),
        CREDENTIAL_AUDIT_KIND,
    ]
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
            assert_eq!(
                Kind::ALL
                    .iter()
                    .filter(|k| k.collection() == kind.collection())
                    .count(),
                1
            );
        }
        assert_eq!(Kind::from_name("platform component"), None);
    }
}
