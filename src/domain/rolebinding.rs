//! Rolebinding definitions clusters can reference.

use serde::Serialize;

use super::names::{NamespaceId, dns1123_subdomain};
use super::validation::{self, FieldErrors};

/// A binding of a role to subjects, created on the clusters that reference it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBinding {
    pub id: super::names::RoleBindingId,
    /// Name of the (Cluster)Role to bind.
    pub role: String,
    pub subjects: Vec<Subject>,
}

/// Who the role is granted to, in the shape of a Kubernetes `rbac.authorization.k8s.io/v1`
/// subject, so templates can copy it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub kind: SubjectKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<NamespaceId>,
    #[serde(rename = "apiGroup", skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
}

/// The subject kinds the RBAC API knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SubjectKind {
    User,
    Group,
    ServiceAccount,
}

pub const RBAC_API_GROUP: &str = "rbac.authorization.k8s.io";

impl SubjectKind {
    pub fn parse(kind: &str) -> Result<Self, String> {
        match kind {
            "User" => Ok(Self::User),
            "Group" => Ok(Self::Group),
            "ServiceAccount" => Ok(Self::ServiceAccount),
            other => Err(format!(
                "must be one of \"User\", \"Group\", \"ServiceAccount\", got {other:?}"
            )),
        }
    }
}

const ROLE_MAX: usize = 253;
const SUBJECT_NAME_MAX: usize = 253;

/// Role names are Kubernetes path segment names (`system:aggregate-to-admin` is valid), so
/// only what the API server refuses for those is refused here.
pub fn check_role(role: &str) -> Result<(), String> {
    validation::token(role, ROLE_MAX)?;
    if role == "." || role == ".." {
        return Err("must not be \".\" or \"..\"".to_owned());
    }
    if let Some(c) = role.chars().find(|c| matches!(c, '/' | '%')) {
        return Err(format!("must not contain {c:?}"));
    }
    Ok(())
}

pub fn check_subject_name(name: &str) -> Result<(), String> {
    validation::text(name, SUBJECT_NAME_MAX)
}

impl Subject {
    /// Rules across a subject's fields, as the RBAC API applies them; `field` is the
    /// subject's path, such as `subjects[0]`.
    pub fn check(&self, field: &str) -> FieldErrors {
        let mut errors = FieldErrors::new();
        match (self.kind, self.api_group.as_deref()) {
            (SubjectKind::ServiceAccount, Some(group)) if !group.is_empty() => errors.add(
                format!("{field}.apiGroup"),
                format!("must be \"\" for a ServiceAccount, got {group:?}"),
            ),
            (SubjectKind::User | SubjectKind::Group, Some(group)) if group != RBAC_API_GROUP => {
                errors.add(
                    format!("{field}.apiGroup"),
                    format!(
                        "must be {RBAC_API_GROUP:?} for a {:?}, got {group:?}",
                        self.kind
                    ),
                )
            }
            _ => {}
        }
        if self.kind == SubjectKind::ServiceAccount
            && let Err(reason) = dns1123_subdomain(&self.name)
        {
            errors.add(
                format!("{field}.name"),
                format!("a ServiceAccount name {reason}"),
            );
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(kind: SubjectKind, name: &str, api_group: Option<&str>) -> Subject {
        Subject {
            kind,
            name: name.to_owned(),
            namespace: None,
            api_group: api_group.map(str::to_owned),
        }
    }

    #[test]
    fn api_group_must_match_the_kind() {
        assert!(
            subject(SubjectKind::Group, "team", Some(RBAC_API_GROUP))
                .check("s")
                .is_empty()
        );
        assert!(
            subject(SubjectKind::User, "jane@example.com", None)
                .check("s")
                .is_empty()
        );
        assert!(
            subject(SubjectKind::ServiceAccount, "flux", Some(""))
                .check("s")
                .is_empty()
        );
        let errors = subject(SubjectKind::ServiceAccount, "flux", Some(RBAC_API_GROUP)).check("s");
        assert_eq!(errors.iter().next().unwrap().field, "s.apiGroup");
        assert!(
            !subject(SubjectKind::Group, "team", Some("apps"))
                .check("s")
                .is_empty()
        );
    }

    #[test]
    fn service_account_names_are_dns_subdomains() {
        let errors = subject(SubjectKind::ServiceAccount, "Flux SA", None).check("subjects[1]");
        assert_eq!(errors.iter().next().unwrap().field, "subjects[1].name");
    }

    #[test]
    fn roles_are_path_segment_names() {
        assert!(check_role("cluster-admin").is_ok());
        assert!(check_role("system:aggregate-to-admin").is_ok());
        for bad in ["", "..", "a/b", "a%b", "a b"] {
            assert!(check_role(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_rbac_kinds_are_known() {
        assert_eq!(SubjectKind::parse("Group"), Ok(SubjectKind::Group));
        assert!(
            SubjectKind::parse("group")
                .unwrap_err()
                .contains("\"group\"")
        );
    }
}
