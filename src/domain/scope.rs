//! What a credential may do: its scopes, and the one rule saying which requests they allow.

use std::fmt;

use super::ClusterDns;

/// One thing a credential may do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every read: the REST resources, the changes feed, every cluster's Flux inputs.
    Read,
    /// Catalog writes.
    Write,
    /// Credentials and the audit log.
    Admin,
    /// Only this cluster's Flux endpoints.
    Cluster(ClusterDns),
}

/// What a request needs, as the HTTP layer classifies it (`http::auth::need`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    Read,
    /// One cluster's Flux inputs, by its DNS name as the path gives it.
    ClusterRead(String),
    Write,
    Admin,
}

/// Why a scope was refused: for the 400 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a scope: use read, write, admin or cluster:<cluster_dns> ({reason})")]
pub struct ScopeError {
    pub given: String,
    pub reason: String,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let error = |reason: String| ScopeError {
            given: s.to_owned(),
            reason,
        };
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => match other.strip_prefix("cluster:") {
                Some(dns) => ClusterDns::parse(dns)
                    .map(Scope::Cluster)
                    .map_err(|e| error(format!("the cluster DNS name {e}"))),
                None => Err(error("unknown scope".to_owned())),
            },
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Read => f.write_str("read"),
            Scope::Write => f.write_str("write"),
            Scope::Admin => f.write_str("admin"),
            Scope::Cluster(dns) => write!(f, "cluster:{dns}"),
        }
    }
}

/// Whether credentials with `scopes` may make a request that needs `need`. Scopes do not
/// imply one another: a credential that writes and reads has both.
pub fn permits(scopes: &[Scope], need: &Need) -> bool {
    scopes.iter().any(|scope| match (scope, need) {
        (Scope::Read, Need::Read | Need::ClusterRead(_)) => true,
        (Scope::Cluster(dns), Need::ClusterRead(wanted)) => dns.as_str() == wanted,
        (Scope::Write, Need::Write) | (Scope::Admin, Need::Admin) => true,
        _ => false,
    })
}

/// The scopes that allow `need`, as the OpenAPI document lists them per operation.
pub fn allowing(need: &Need) -> Vec<String> {
    match need {
        Need::Read => vec!["read".to_owned()],
        Need::ClusterRead(dns) => vec!["read".to_owned(), format!("cluster:{dns}")],
        Need::Write => vec!["write".to_owned()],
        Need::Admin => vec!["admin".to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(list: &[&str]) -> Vec<Scope> {
        list.iter().map(|s| Scope::parse(s).unwrap()).collect()
    }

    #[test]
    fn scopes_round_trip_and_bad_ones_are_refused() {
        for s in ["read", "write", "admin", "cluster:a.example.com"] {
            assert_eq!(Scope::parse(s).unwrap().to_string(), s);
        }
        for s in ["", "Read", "cluster:", "cluster:UPPER", "delete"] {
            assert!(Scope::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn a_cluster_scope_reads_only_its_own_cluster() {
        let c = scopes(&["cluster:a.example.com"]);
        assert!(permits(&c, &Need::ClusterRead("a.example.com".into())));
        assert!(!permits(&c, &Need::ClusterRead("b.example.com".into())));
        assert!(!permits(&c, &Need::Read));
        assert!(!permits(&c, &Need::Write));
        assert!(!permits(&c, &Need::Admin));
    }

    #[test]
    fn scopes_do_not_imply_one_another() {
        let r = scopes(&["read"]);
        assert!(permits(&r, &Need::ClusterRead("x".into())) && permits(&r, &Need::Read));
        assert!(!permits(&r, &Need::Write) && !permits(&r, &Need::Admin));
        let w = scopes(&["write"]);
        assert!(permits(&w, &Need::Write) && !permits(&w, &Need::Read));
        let a = scopes(&["admin"]);
        assert!(permits(&a, &Need::Admin) && !permits(&a, &Need::Write));
    }
}
