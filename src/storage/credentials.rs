//! Named credentials: their digests and scopes, never their secrets. Every change is
//! audited in its own transaction; the `credentials_version` counter (moved by a trigger)
//! tells every replica to reload.

use deadpool_postgres::GenericClient;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::Row;

use super::audit::{self, NewRecord};
use super::{Store, StoreError, find_all};
use crate::domain::Scope;
use crate::domain::kind::CREDENTIAL_AUDIT_KIND;

/// A credential as it may be shown: no secret, no digest.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialInfo {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub cluster_id: Option<String>,
}

/// What a server needs to verify a credential.
#[derive(Debug, Clone)]
pub struct ActiveCredential {
    pub name: String,
    /// SHA-256 of the secret.
    pub digest: [u8; 32],
    pub scopes: Vec<Scope>,
    pub expires_at: Option<OffsetDateTime>,
}

/// A credential about to be stored.
pub struct NewCredential<'a> {
    pub name: &'a str,
    pub digest: [u8; 32],
    pub scopes: &'a [Scope],
    pub expires_at: Option<OffsetDateTime>,
    pub cluster_id: Option<&'a str>,
}

/// Who changes a credential, for the audit log.
pub struct Change<'a> {
    pub actor: &'a str,
    pub request_id: Option<&'a str>,
}

fn scopes_of(row: &Row, name: &str) -> Vec<Scope> {
    row.get::<_, Vec<String>>("scopes")
        .iter()
        .filter_map(|s| match Scope::parse(s) {
            Ok(scope) => Some(scope),
            Err(error) => {
                // Only a hand-edited row gets here; the scope is ignored, never widened.
                log::warn!("credential {name:?}: ignoring scope {error}");
                None
            }
        })
        .collect()
}

fn info_of(row: &Row) -> Result<CredentialInfo, StoreError> {
    let name: String = row.get("name");
    Ok(CredentialInfo {
        scopes: scopes_of(row, &name),
        created_at: row.get("created_at"),
        expires_at: row.get("expires_at"),
        last_used_at: row.get("last_used_at"),
        cluster_id: row.get("cluster_id"),
        name,
    })
}

const INFO: &str = "name, scopes, created_at, expires_at, last_used_at, cluster_id";

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("timestamps format")
}

impl CredentialInfo {
    /// What the audit log keeps of it (no last use: that is no change).
    pub fn audited(&self) -> Value {
        json!({
            "name": self.name,
            "scopes": self.scopes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "created_at": rfc3339(self.created_at),
            "expires_at": self.expires_at.map(rfc3339),
            "cluster_id": self.cluster_id,
        })
    }
}

async fn audit_change(
    client: &impl GenericClient,
    change: &Change<'_>,
    action: &str,
    name: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), StoreError> {
    let revision = audit::last_revision(client, CREDENTIAL_AUDIT_KIND, name).await? + 1;
    audit::append(
        client,
        NewRecord {
            actor: change.actor,
            action,
            kind: CREDENTIAL_AUDIT_KIND,
            resource_id: name,
            revision,
            request_id: change.request_id,
            before,
            after,
        },
    )
    .await
}

/// Deletes the credentials issued with a cluster, auditing each, in the cluster's
/// deletion's transaction.
pub(super) async fn revoke_issued_with(
    client: &impl GenericClient,
    cluster_id: &str,
    context: &super::WriteContext,
) -> Result<(), StoreError> {
    let revoked = find_all(
        client,
        &format!("delete from credentials where cluster_id = $1 returning {INFO}"),
        &[&cluster_id],
        info_of,
    )
    .await?;
    let change = Change {
        actor: &context.actor,
        request_id: context.request_id.as_deref(),
    };
    for info in revoked {
        audit_change(
            client,
            &change,
            "delete",
            &info.name,
            Some(info.audited()),
            None,
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// Stores a credential and its audit record; `AlreadyExists` when the name is taken.
    pub async fn create_credential(
        &self,
        new: &NewCredential<'_>,
        change: &Change<'_>,
    ) -> Result<CredentialInfo, StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let scopes: Vec<String> = new.scopes.iter().map(ToString::to_string).collect();
            let row = tx
                .query_opt(
                    &format!(
                        "insert into credentials (name, digest, scopes, expires_at, cluster_id)
                         values ($1, $2, $3, $4, $5)
                         on conflict (name) do nothing
                         returning {INFO}"
                    ),
                    &[
                        &new.name,
                        &new.digest.as_slice(),
                        &scopes,
                        &new.expires_at,
                        &new.cluster_id,
                    ],
                )
                .await?;
            let Some(row) = row else {
                return Err(StoreError::AlreadyExists {
                    kind: "credential",
                    field: "name",
                    value: new.name.to_owned(),
                });
            };
            let info = info_of(&row)?;
            audit_change(&tx, change, "create", new.name, None, Some(info.audited())).await?;
            tx.commit().await?;
            Ok(info)
        })
        .await
    }

    /// Every credential, by name.
    pub async fn credentials(&self) -> Result<Vec<CredentialInfo>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            find_all(
                &client,
                &format!("select {INFO} from credentials order by name"),
                &[],
                info_of,
            )
            .await
        })
        .await
    }

    /// Deletes a credential and audits it; `NotFound` when there is none by that name.
    pub async fn revoke_credential(
        &self,
        name: &str,
        change: &Change<'_>,
    ) -> Result<CredentialInfo, StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let row = tx
                .query_opt(
                    &format!("delete from credentials where name = $1 returning {INFO}"),
                    &[&name],
                )
                .await?;
            let Some(row) = row else {
                return Err(StoreError::NotFound {
                    kind: "credential",
                    id: name.to_owned(),
                });
            };
            let info = info_of(&row)?;
            audit_change(&tx, change, "delete", name, Some(info.audited()), None).await?;
            tx.commit().await?;
            Ok(info)
        })
        .await
    }

    /// The credentials counter: moves whenever a credential is created, changed or deleted.
    pub async fn credentials_version(&self) -> Result<i64, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached("select version from credentials_version")
                .await?;
            Ok(client.query_one(&statement, &[]).await?.get(0))
        })
        .await
    }

    /// Every credential that verifies requests, and the counter they are as of (read from
    /// one snapshot, so a change after it moves the counter past the returned one).
    pub async fn active_credentials(&self) -> Result<(i64, Vec<ActiveCredential>), StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = super::consistent_read(&mut client).await?;
            let version: i64 = tx
                .query_one("select version from credentials_version", &[])
                .await?
                .get(0);
            let active = find_all(
                &tx,
                "select name, digest, scopes, expires_at from credentials",
                &[],
                |row| {
                    let name: String = row.get("name");
                    let digest: Vec<u8> = row.get("digest");
                    Ok(ActiveCredential {
                        scopes: scopes_of(row, &name),
                        digest: digest.try_into().map_err(|_| {
                            StoreError::Unexpected(anyhow::anyhow!("a digest is not 32 bytes"))
                        })?,
                        expires_at: row.get("expires_at"),
                        name,
                    })
                },
            )
            .await?;
            tx.commit().await?;
            Ok((version, active))
        })
        .await
    }

    /// Records when credentials were last used, many in one statement; never moves a time
    /// backwards.
    pub async fn touch_credentials(
        &self,
        used: &[(String, OffsetDateTime)],
    ) -> Result<(), StoreError> {
        let (names, times): (Vec<&str>, Vec<OffsetDateTime>) =
            used.iter().map(|(n, t)| (n.as_str(), *t)).unzip();
        self.bounded(async {
            let client = self.client().await?;
            client
                .execute(
                    "update credentials c set last_used_at = u.at
                       from unnest($1::text[], $2::timestamptz[]) as u(name, at)
                      where c.name = u.name
                        and (c.last_used_at is null or c.last_used_at < u.at)",
                    &[&names, &times],
                )
                .await?;
            Ok(())
        })
        .await
    }
}
