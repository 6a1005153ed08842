//! Every write goes through here, in one transaction: take the catalog's write lock, check
//! the client's preconditions, apply the change, check every rule on the result (including
//! what each affected cluster's Flux inputs would become), compute the difference Flux will
//! see, append the audit record, and commit, or, for a dry run, roll it all back.

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::Transaction;
use serde_json::Value;

use super::audit::{self, NewRecord};
use super::impact::Reached;
use super::{Resource, Store, StoreError, Versioned};
use crate::domain::impact::{self, ClusterChange, ClusterInputs, FluxLimits};
use crate::domain::validation::Rejection;
use crate::domain::{Cluster, Namespace, PlatformComponent, RoleBinding};

/// Serialises writes. Each write's checks then see the result of every write before it,
/// so no interleaving of accepted writes can reach a state a single write would be refused
/// for (a dependency cycle built from two halves, a dependency disabled while another
/// change enables its dependent). Writes are rare next to Flux's reads, which never wait
/// for it.
const WRITE_LOCK_KEY: i64 = 0x666c_7578_6361_7432; // "fluxcat2"

/// The resource as clients see it, for the audit log and history. Implemented by the HTTP
/// layer, which owns that shape.
pub trait Document {
    fn document(&self, revision: i64) -> Value;
}

/// Which revisions `If-Match` (or a `revision` in the body) accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevisionMatch {
    /// `*`: any, as long as the resource exists.
    Any,
    OneOf(Vec<i64>),
}

/// Conditions the stored resource must meet for the write to happen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub if_match: Option<RevisionMatch>,
    /// `If-None-Match: *`: the resource must not exist.
    pub if_none_match_any: bool,
    /// A `revision` sent in an update's body: the stored one must be this.
    pub revision: Option<i64>,
}

/// Who writes, and how.
#[derive(Debug, Clone)]
pub struct WriteContext {
    /// The credential's name, for the audit log.
    pub actor: String,
    pub request_id: Option<String>,
    /// Check and compute everything, then roll back: nothing is written or audited.
    pub dry_run: bool,
    pub limits: FluxLimits,
}

/// What a write did to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    /// The new content equals the stored one: nothing written, no new revision.
    Unchanged,
    Deleted,
}

/// The result of a write (or of a dry run: what the write would do).
#[derive(Debug, Clone)]
pub struct Written<R> {
    /// The resource after the write; for a delete, the deleted content at its last revision.
    pub resource: Versioned<R>,
    pub outcome: Outcome,
    /// The revision this write produced (for a delete, the deletion's own); the stored
    /// revision when unchanged.
    pub revision: i64,
    /// Clusters whose Flux inputs change, with how.
    pub changes: Vec<ClusterChange>,
}

/// What the write wants, decided from the current state.
enum Intent<R> {
    Put(R),
    Delete,
}

/// How the audit log names the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Create or update, whichever the current state calls for.
    Put,
    Delete,
    Rollback,
}

/// When the Flux rules are checked.
enum Checks {
    /// Right after this write, reporting the changes.
    Now,
    /// At the end of a multi-resource transaction.
    Deferred,
}

/// The clusters a transaction's writes reach, collected for the change log (and for the
/// deferred checks), and when their Flux rules are checked.
struct Reach<'a> {
    clusters: &'a mut BTreeSet<String>,
    checks: Checks,
}

impl Store {
    /// Creates `resource`; 409 if its id exists (412 with `If-None-Match: *`).
    pub async fn create<R: Resource + Document>(
        &self,
        resource: R,
        preconditions: &Preconditions,
        context: &WriteContext,
    ) -> Result<Written<R>, StoreError> {
        let id = resource.id().to_owned();
        self.write_one(
            &id,
            preconditions,
            context,
            Action::Put,
            |current| match current {
                Some(_) => Err(StoreError::AlreadyExists {
                    kind: R::KIND,
                    field: "id",
                    value: resource.id().to_owned(),
                }),
                None => Ok(Intent::Put(resource)),
            },
        )
        .await
    }

    /// Replaces the resource with what `change` makes of the stored one. The stored one is
    /// read under the write lock, so concurrent updates apply one after the other and none
    /// is lost.
    pub async fn update<R: Resource + Document>(
        &self,
        id: &str,
        preconditions: &Preconditions,
        context: &WriteContext,
        change: impl FnOnce(&R) -> Result<R, Rejection>,
    ) -> Result<Written<R>, StoreError> {
        self.write_one(
            id,
            preconditions,
            context,
            Action::Put,
            |current| match current {
                None => Err(not_found::<R>(id)),
                Some(current) => {
                    let updated = change(&current.value).map_err(StoreError::Rejected)?;
                    debug_assert_eq!(updated.id(), id, "an update must not change the id");
                    Ok(Intent::Put(updated))
                }
            },
        )
        .await
    }

    /// Deletes the resource, unless something still references it.
    pub async fn delete<R: Resource + Document>(
        &self,
        id: &str,
        preconditions: &Preconditions,
        context: &WriteContext,
    ) -> Result<Written<R>, StoreError> {
        self.write_one(
            id,
            preconditions,
            context,
            Action::Delete,
            |current| match current {
                None => Err(not_found::<R>(id)),
                Some(_) => Ok(Intent::Delete),
            },
        )
        .await
    }

    /// Makes `content` (an earlier revision's) the resource's content again, as a new
    /// revision; re-creates the resource if it was deleted.
    pub async fn restore<R: Resource + Document>(
        &self,
        id: &str,
        content: R,
        preconditions: &Preconditions,
        context: &WriteContext,
    ) -> Result<Written<R>, StoreError> {
        self.write_one(id, preconditions, context, Action::Rollback, |_| {
            Ok(Intent::Put(content))
        })
        .await
    }

    async fn write_one<R: Resource + Document>(
        &self,
        id: &str,
        preconditions: &Preconditions,
        context: &WriteContext,
        action: Action,
        decide: impl FnOnce(Option<&Versioned<R>>) -> Result<Intent<R>, StoreError>,
    ) -> Result<Written<R>, StoreError> {
        self.bounded(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            take_write_lock(&tx).await?;
            let mut affected = BTreeSet::new();
            let written = apply(
                &tx,
                id,
                preconditions,
                context,
                action,
                decide,
                Reach {
                    clusters: &mut affected,
                    checks: Checks::Now,
                },
            )
            .await?;
            if written.outcome != Outcome::Unchanged {
                record_change(&tx, context, &affected).await?;
            }
            finish(tx, context).await?;
            Ok(written)
        })
        .await
    }
}

fn not_found<R: Resource>(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: R::KIND,
        id: id.to_owned(),
    }
}

async fn take_write_lock(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("select pg_advisory_xact_lock($1)", &[&WRITE_LOCK_KEY])
        .await?;
    Ok(())
}

/// The channel writes notify replicas on; the payload is the new change-log version.
pub const CHANGES_CHANNEL: &str = "flux_catalog_changes";

/// Appends the change to the log replicas follow and notifies them (delivered on commit).
/// Dry runs record nothing.
async fn record_change(
    tx: &Transaction<'_>,
    context: &WriteContext,
    clusters: &BTreeSet<String>,
) -> Result<(), StoreError> {
    if context.dry_run {
        return Ok(());
    }
    let ids: Vec<&str> = clusters.iter().map(String::as_str).collect();
    let statement = tx
        .prepare_cached("insert into change_log (cluster_ids) values ($1) returning version")
        .await?;
    let version: i64 = tx.query_one(&statement, &[&ids]).await?.get(0);
    tx.execute(
        "select pg_notify($1, $2)",
        &[&CHANGES_CHANNEL, &version.to_string()],
    )
    .await?;
    Ok(())
}

/// Commits, or rolls back a dry run.
async fn finish(tx: Transaction<'_>, context: &WriteContext) -> Result<(), StoreError> {
    if context.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(())
}

fn check_preconditions<R: Resource>(
    preconditions: &Preconditions,
    current: Option<i64>,
) -> Result<(), StoreError> {
    let failed = || StoreError::PreconditionFailed {
        kind: R::KIND,
        current,
    };
    if preconditions.if_none_match_any && current.is_some() {
        return Err(failed());
    }
    if preconditions.revision.is_some() && preconditions.revision != current {
        return Err(failed());
    }
    match (&preconditions.if_match, current) {
        (None, _) => Ok(()),
        (Some(RevisionMatch::Any), Some(_)) => Ok(()),
        (Some(RevisionMatch::OneOf(accepted)), Some(revision)) if accepted.contains(&revision) => {
            Ok(())
        }
        (Some(_), _) => Err(failed()),
    }
}

/// One resource's write inside `tx`, which holds the write lock.
async fn apply<R: Resource + Document>(
    tx: &Transaction<'_>,
    id: &str,
    preconditions: &Preconditions,
    context: &WriteContext,
    action: Action,
    decide: impl FnOnce(Option<&Versioned<R>>) -> Result<Intent<R>, StoreError>,
    reach: Reach<'_>,
) -> Result<Written<R>, StoreError> {
    let current = R::find(tx, id, true).await?;
    let current_revision = current.as_ref().map(|c| c.revision);
    // The request must be valid before its preconditions are evaluated (RFC 9110 13.2.1):
    // a malformed change is a 400 or 422 whatever If-Match says. Both happen under the
    // write lock, so the order changes no outcome, only which refusal is reported.
    let intent = match decide(current.as_ref()) {
        Err(StoreError::AlreadyExists { .. }) if preconditions.if_none_match_any => {
            return Err(StoreError::PreconditionFailed {
                kind: R::KIND,
                current: current_revision,
            });
        }
        decided => decided?,
    };
    check_preconditions::<R>(preconditions, current_revision)?;
    if let (Some(current), Intent::Put(new)) = (&current, &intent)
        && current.value == *new
    {
        return Ok(Written {
            resource: current.clone(),
            outcome: Outcome::Unchanged,
            revision: current.revision,
            changes: Vec::new(),
        });
    }

    let affected: BTreeSet<String> = R::dependent_clusters(tx, id).await?.into_iter().collect();
    let reached_before = match reach.checks {
        Checks::Now => Some(Reached::read(tx, &affected).await?),
        Checks::Deferred => None,
    };

    let last = audit::last_revision(tx, R::AUDIT_KIND, id).await?;
    let revision = last.max(current.as_ref().map_or(0, |c| c.revision)) + 1;
    let (resource, outcome, audit_action) = match intent {
        Intent::Put(new) => {
            new.lock_references(tx).await?;
            let outcome = match &current {
                Some(_) => {
                    new.replace(tx, revision).await?;
                    Outcome::Updated
                }
                None => {
                    new.insert(tx, revision).await?;
                    Outcome::Created
                }
            };
            R::check_catalog(tx).await?;
            let audit_action = match (action, outcome) {
                (Action::Rollback, _) => "rollback",
                (_, Outcome::Created) => "create",
                _ => "update",
            };
            (
                Versioned {
                    revision,
                    value: new,
                },
                outcome,
                audit_action,
            )
        }
        Intent::Delete => {
            let current = current
                .clone()
                .expect("deletes are decided on existing resources");
            let referrers = R::referrers(tx, id).await?;
            if !referrers.is_empty() {
                return Err(StoreError::StillReferenced {
                    kind: R::KIND,
                    id: id.to_owned(),
                    referrers,
                });
            }
            R::delete(tx, id).await?;
            (current, Outcome::Deleted, "delete")
        }
    };

    let changes = match reached_before {
        Some(reached_before) => {
            let before = reached_before.inputs()?;
            let reached_after = if R::WRITES_CLUSTER_ROWS {
                Reached::read(tx, &affected).await?
            } else {
                reached_before.after_catalog_write(tx).await?
            };
            let after = reached_after.inputs()?;
            refuse_violations(after.values(), context.limits)?;
            changes_between(&affected, &before, &after)
        }
        None => Vec::new(),
    };
    reach.clusters.extend(affected);

    if !context.dry_run {
        let (before, after) = match outcome {
            Outcome::Deleted => (Some(resource.value.document(resource.revision)), None),
            _ => (
                current.as_ref().map(|c| c.value.document(c.revision)),
                Some(resource.value.document(revision)),
            ),
        };
        audit::append(
            tx,
            NewRecord {
                actor: &context.actor,
                action: audit_action,
                kind: R::AUDIT_KIND,
                resource_id: id,
                revision,
                request_id: context.request_id.as_deref(),
                before,
                after,
            },
        )
        .await?;
    }
    Ok(Written {
        resource,
        outcome,
        revision,
        changes,
    })
}

/// Every rule the clusters' inputs break, or nothing.
fn refuse_violations<'s, 'a: 's>(
    inputs: impl IntoIterator<Item = &'s ClusterInputs<'a>>,
    limits: FluxLimits,
) -> Result<(), StoreError> {
    let violations: Vec<_> = inputs
        .into_iter()
        .flat_map(|i| impact::check(i, limits))
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(StoreError::BreaksFlux(violations))
    }
}

fn changes_between(
    clusters: &BTreeSet<String>,
    before: &BTreeMap<String, ClusterInputs<'_>>,
    after: &BTreeMap<String, ClusterInputs<'_>>,
) -> Vec<ClusterChange> {
    clusters
        .iter()
        .filter_map(|id| impact::diff(before.get(id), after.get(id)))
        .collect()
}

/// A whole catalog to create or update in one transaction (see [`Store::apply_catalog`]).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub platform_components: Vec<PlatformComponent>,
    pub namespaces: Vec<Namespace>,
    pub rolebindings: Vec<RoleBinding>,
    pub clusters: Vec<Cluster>,
}

/// Per kind, what happened to each resource of an applied catalog, in document order.
#[derive(Debug, Clone, Default)]
pub struct CatalogReport {
    pub platform_components: Vec<(String, Outcome)>,
    pub namespaces: Vec<(String, Outcome)>,
    pub rolebindings: Vec<(String, Outcome)>,
    pub clusters: Vec<(String, Outcome)>,
}

impl Store {
    /// Creates what does not exist and replaces what differs, all or nothing, audited like
    /// any write. Resources the catalog does not mention are left alone, so applying the
    /// same catalog twice changes nothing the second time. Components must come in
    /// dependency order. The Flux rules are checked once, on the final state, so a
    /// document may fix in a cluster what an earlier entry of it would otherwise break.
    pub async fn apply_catalog(
        &self,
        catalog: &Catalog,
        context: &WriteContext,
    ) -> Result<CatalogReport, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        take_write_lock(&tx).await?;
        let mut affected = BTreeSet::new();
        let report = CatalogReport {
            namespaces: put_each(
                &tx,
                "namespaces",
                &catalog.namespaces,
                context,
                &mut affected,
            )
            .await?,
            rolebindings: put_each(
                &tx,
                "rolebindings",
                &catalog.rolebindings,
                context,
                &mut affected,
            )
            .await?,
            platform_components: put_each(
                &tx,
                "platform_components",
                &catalog.platform_components,
                context,
                &mut affected,
            )
            .await?,
            clusters: put_each(&tx, "clusters", &catalog.clusters, context, &mut affected).await?,
        };
        let reached = Reached::read(&tx, &affected).await?;
        refuse_violations(reached.inputs()?.values(), context.limits)?;
        let changed = [
            &report.namespaces,
            &report.rolebindings,
            &report.platform_components,
            &report.clusters,
        ]
        .iter()
        .flat_map(|outcomes| outcomes.iter())
        .any(|(_, outcome)| *outcome != Outcome::Unchanged);
        if changed {
            record_change(&tx, context, &affected).await?;
        }
        finish(tx, context).await?;
        Ok(report)
    }
}

async fn put_each<R: Resource + Document>(
    tx: &Transaction<'_>,
    list: &str,
    resources: &[R],
    context: &WriteContext,
    affected: &mut BTreeSet<String>,
) -> Result<Vec<(String, Outcome)>, StoreError> {
    let mut outcomes = Vec::with_capacity(resources.len());
    for (i, resource) in resources.iter().enumerate() {
        let id = resource.id().to_owned();
        let written = apply(
            tx,
            &id,
            &Preconditions::default(),
            context,
            Action::Put,
            |_| Ok(Intent::Put(resource.clone())),
            Reach {
                clusters: affected,
                checks: Checks::Deferred,
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::UnknownReferences(errors) => {
                StoreError::UnknownReferences(errors.prefixed(&format!("{list}[{i}]")))
            }
            other => other,
        })?;
        outcomes.push((id, written.outcome));
    }
    Ok(outcomes)
}
