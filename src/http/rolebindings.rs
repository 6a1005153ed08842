//! `/rolebindings`: rolebinding definitions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::crud::{ApiResource, PagingQuery, Rules};
use crate::domain::rolebinding::{check_role, check_subject_name};
use crate::domain::{FieldErrors, NamespaceId, RoleBinding, RoleBindingId, Subject, SubjectKind};

/// A role granted to subjects on the clusters that reference this definition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "id": "platform-admins",
    "role": "cluster-admin",
    "subjects": [{"kind": "Group", "name": "platform-team", "apiGroup": "rbac.authorization.k8s.io"}]
}))]
pub struct RoleBindingBody {
    /// Unique id; the binding's name (RFC 1123 label).
    #[schema(
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        min_length = 1,
        max_length = 63
    )]
    pub id: String,
    /// The (Cluster)Role to bind.
    #[schema(min_length = 1, max_length = 253)]
    pub role: String,
    #[serde(default)]
    pub subjects: Vec<SubjectBody>,
    /// Set by the server: 1 on creation, +1 on every change; the `ETag` is this, quoted.
    /// Sent in an update, the update applies only to this revision (like `If-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only, minimum = 1)]
    pub revision: Option<i64>,
}

/// An RBAC subject, as in `rbac.authorization.k8s.io/v1`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectBody {
    #[schema(value_type = SubjectKindName)]
    pub kind: String,
    #[schema(min_length = 1, max_length = 253)]
    pub name: String,
    /// For ServiceAccounts: the account's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `rbac.authorization.k8s.io` for User and Group, empty for ServiceAccount.
    #[serde(rename = "apiGroup", default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
}

/// The subject kinds RBAC knows.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the values of SubjectBody::kind
pub enum SubjectKindName {
    User,
    Group,
    ServiceAccount,
}

/// Fields to change (PUT: omitted fields keep their value; PATCH: RFC 7396 merge patch).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the partial body; requests are merged as JSON, then parsed as RoleBindingBody
pub struct RoleBindingUpdate {
    /// Must equal the id in the path if sent.
    id: Option<String>,
    role: Option<String>,
    subjects: Option<Vec<SubjectBody>>,
    /// The revision the change is based on; refused with 412 if the stored one differs.
    revision: Option<i64>,
}

impl ApiResource for RoleBinding {
    const COLLECTION: &'static str = "/rolebindings";
    type Body = RoleBindingBody;
    type Query = PagingQuery;

    fn to_body(&self, revision: i64) -> RoleBindingBody {
        RoleBindingBody {
            id: self.id.to_string(),
            role: self.role.clone(),
            subjects: self
                .subjects
                .iter()
                .map(|s| SubjectBody {
                    kind: format!("{:?}", s.kind),
                    name: s.name.clone(),
                    namespace: s.namespace.as_ref().map(ToString::to_string),
                    api_group: s.api_group.clone(),
                })
                .collect(),
            revision: Some(revision),
        }
    }

    fn from_body(body: RoleBindingBody, _rules: &Rules) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let id = errors.check("id", RoleBindingId::parse(body.id));
        errors.check("role", check_role(&body.role));
        let mut subjects = Vec::with_capacity(body.subjects.len());
        for (i, s) in body.subjects.into_iter().enumerate() {
            let field = format!("subjects[{i}]");
            let kind = errors.check(&format!("{field}.kind"), SubjectKind::parse(&s.kind));
            errors.check(&format!("{field}.name"), check_subject_name(&s.name));
            // Some(None): no namespace given; None: an invalid one was given.
            let namespace = match s.namespace {
                None => Some(None),
                Some(n) => errors
                    .check(&format!("{field}.namespace"), NamespaceId::parse(n))
                    .map(Some),
            };
            if let (Some(kind), Some(namespace)) = (kind, namespace) {
                let subject = Subject {
                    kind,
                    name: s.name,
                    namespace,
                    api_group: s.api_group,
                };
                errors.extend(subject.check(&field));
                subjects.push(subject);
            }
        }
        match id {
            Some(id) if errors.is_empty() => Ok(RoleBinding {
                id,
                role: body.role,
                subjects,
            }),
            _ => Err(errors),
        }
    }
}

super::crud::resource_handlers! {
    resource: RoleBinding,
    body: RoleBindingBody,
    update: RoleBindingUpdate,
    query: PagingQuery,
    write_response: RoleBindingWriteResponse,
    tag: "rolebindings",
    collection: "/rolebindings",
    item: "/rolebindings/{id}",
    history: "/rolebindings/{id}/history",
    rollback: "/rolebindings/{id}/rollback",
    operation: ("RoleBinding", "RoleBindings"),
    id: "Rolebinding id",
    summaries: {
        list: "List rolebinding definitions, by id.",
        get: "Get one rolebinding definition.",
        create: "Define a rolebinding.",
        replace: "Change a rolebinding definition: fields sent replace the stored ones, fields omitted keep their value.",
        patch: "Change a rolebinding definition with an RFC 7396 JSON merge patch.",
        delete: "Delete a rolebinding definition; refused while clusters reference it.",
    },
}
