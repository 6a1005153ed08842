//! `rolebindings`: rolebinding definitions.

use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::Value;
use tokio_postgres::Row;

use super::{Listed, Page, Param, Resource, StoreError, Versioned, list_unfiltered, parse_stored};
use crate::domain::{Kind, NamespaceId, RoleBinding, RoleBindingId, Subject, SubjectKind};

/// A subject as stored: the same JSON shape the domain serialises to.
#[derive(Deserialize)]
struct StoredSubject {
    kind: String,
    name: String,
    namespace: Option<String>,
    #[serde(rename = "apiGroup")]
    api_group: Option<String>,
}

fn subjects_json(binding: &RoleBinding) -> Value {
    serde_json::to_value(&binding.subjects).expect("subjects serialise to JSON")
}

impl Resource for RoleBinding {
    const KIND: Kind = Kind::RoleBinding;
    const TABLE: &'static str = "rolebindings";
    const SELECT: &'static str = "select id, role, subjects, revision from rolebindings";
    const COLUMNS: &'static [&'static str] = &["role", "subjects"];
    const UNIQUE: &'static [(&'static str, &'static str)] = &[("rolebindings_pkey", "id")];
    const REFERENCED_BY_CLUSTERS: Option<(&'static str, &'static str)> =
        Some(("cluster_rolebindings", "rolebinding_id"));
    type Filter = ();

    fn id(&self) -> &str {
        self.id.as_str()
    }

    fn from_row(row: &Row) -> Result<Versioned<RoleBinding>, StoreError> {
        let stored: Vec<StoredSubject> = parse_stored(
            "subjects",
            serde_json::from_value(row.get::<_, Value>("subjects")),
        )?;
        let subjects = stored
            .into_iter()
            .map(|s| {
                Ok(Subject {
                    kind: parse_stored("subject kind", SubjectKind::parse(&s.kind))?,
                    name: s.name,
                    namespace: s
                        .namespace
                        .map(|n| parse_stored("subject namespace", NamespaceId::parse(n)))
                        .transpose()?,
                    api_group: s.api_group,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Versioned {
            revision: row.get("revision"),
            value: RoleBinding {
                id: parse_stored(
                    "rolebinding id",
                    RoleBindingId::parse(row.get::<_, String>("id")),
                )?,
                role: row.get("role"),
                subjects,
            },
        })
    }

    fn row(&self) -> Vec<Param> {
        vec![Box::new(self.role.clone()), Box::new(subjects_json(self))]
    }

    async fn list(
        client: &impl GenericClient,
        _filter: &(),
        page: Page,
    ) -> Result<Listed<Versioned<Self>>, StoreError> {
        list_unfiltered(client, page).await
    }
}
