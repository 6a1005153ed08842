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
use crate::domain::impact::{self, ClusterChange, FluxLimits, FluxView};
use crate::domain::validation::Rejection;
use crate::domain::{Catalog, Cluster, Kind, Namespace, PlatformComponent, RoleBinding};

/// Serialises writes. Each write's checks then see the result of every write before it,
/// so no interleaving of accepted writes can reach a state a single write would be refused
/// for (a dependency cycle built from two halves, a dependency disabled while another
/// change enables its dependent). Writes are rare next to Flux's reads, which never wait
/// for it.
pub const WRITE_LOCK_KEY: i64 = 0x666c_7578_6361_7432; // "fluxcat2"

/// The resource at a revision as clients see it, for the audit log and history. The caller
/// gives it: storage keeps these documents but the shape belongs to the API above.
pub type DocumentOf<R> = fn(&R, i64) -> Value;

/// [`DocumentOf`] for every kind, for writes of a whole catalog.
#[derive(Clone, Copy)]
pub struct Documents {
    pub platform_component: DocumentOf<PlatformComponent>,
    pub namespace: DocumentOf<Namespace>,
    pub rolebinding: DocumentOf<RoleBinding>,
    pub cluster: DocumentOf<Cluster>,
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

/// The clusters a transaction's writes fan out to, collected for the change log (and for
/// the deferred checks), and when their Flux rules are checked.
struct Fanout<'a> {
    clusters: &'a mut BTreeSet<String>,
    checks: Checks,
}

impl Store {
    /// Creates `resource`; 409 if its id exists (412 with `If-None-Match: *`).
    pub async fn create<R: Resource>(
        &self,
        resource: R,
        document: DocumentOf<R>,
        preconditions: &Preconditions,
        context: &WriteContext,
    ) -> Result<Written<R>, StoreError> {
        let id = resource.id().to_owned();
        self.write_one(
            &id,
            document,
            preconditions,
            context,
            Action::Put,
            |current| match current {
                Some(_) => Err(StoreError::AlreadyExists {
                    kind: R::KIND.label(),
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
    pub async fn update<R: Resource>(
        &self,
        id: &str,
        document: DocumentOf<R>,
        preconditions: &Preconditions,
        context: &WriteContext,
        change: impl FnOnce(&R) -> Result<R, Rejection>,
    ) -> Result<Written<R>, StoreError> {
        self.write_one(
            id,
            document,
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
    pub async fn delete<R: Resource>(
        &self,
        id: &str,
        document: DocumentOf<R>,
        preconditions: &Preconditions,
        context: &WriteContext,
    ) -> Result<Written<R>, StoreError> {
        self.write_one(
            id,
            document,
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
    pub async fn restore<R: Resource>(
        &self,
        id: &str,
        content: R,
        document: DocumentOf<R>,
        preconditions: &Preconditions,
        context: &WriteContext,
    ) -> Result<Written<R>, StoreError> {
        self.write_one(
            id,
            document,
            preconditions,
            context,
            Action::Rollback,
            |_| Ok(Intent::Put(content)),
        )
        .await
    }

    async fn write_one<R: Resource>(
        &self,
        id: &str,
        document: DocumentOf<R>,
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
                Target {
                    id,
                    document,
                    preconditions,
                    context,
                    action,
                },
                decide,
                Fanout {
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
        kind: R::KIND.label(),
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
        kind: R::KIND.label(),
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

/// What one resource's write is about, besides the change itself.
struct Target<'a, R> {
    id: &'a str,
    document: DocumentOf<R>,
    preconditions: &'a Preconditions,
    context: &'a WriteContext,
    action: Action,
}

/// One resource's write inside `tx`, which holds the write lock: decide, write, check what
/// Flux would get, audit.
async fn apply<R: Resource>(
    tx: &Transaction<'_>,
    target: Target<'_, R>,
    decide: impl FnOnce(Option<&Versioned<R>>) -> Result<Intent<R>, StoreError>,
    fanout: Fanout<'_>,
) -> Result<Written<R>, StoreError> {
    let current = R::find(tx, target.id, true).await?;
    let intent = decide_checked(&target, current.as_ref(), decide)?;
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

    let affected: BTreeSet<String> = R::dependent_clusters(tx, target.id)
        .await?
        .into_iter()
        .collect();
    let reached_before = match fanout.checks {
        Checks::Now => Some(Reached::read(tx, &affected).await?),
        Checks::Deferred => None,
    };
    let last = audit::last_revision(tx, R::KIND.name(), target.id).await?;
    let revision = last.max(current.as_ref().map_or(0, |c| c.revision)) + 1;
    let (resource, outcome) = write_intent(tx, &target, current.as_ref(), intent, revision).await?;
    let changes = match reached_before {
        Some(before) => flux_changes::<R>(tx, &affected, before, target.context.limits).await?,
        None => Vec::new(),
    };
    fanout.clusters.extend(affected);
    if !target.context.dry_run {
        audit_write(tx, &target, current.as_ref(), &resource, outcome, revision).await?;
    }
    Ok(Written {
        resource,
        outcome,
        revision,
        changes,
    })
}

/// The write's intent, once the request is known to be valid and its preconditions hold.
fn decide_checked<R: Resource>(
    target: &Target<'_, R>,
    current: Option<&Versioned<R>>,
    decide: impl FnOnce(Option<&Versioned<R>>) -> Result<Intent<R>, StoreError>,
) -> Result<Intent<R>, StoreError> {
    let current_revision = current.map(|c| c.revision);
    // The request must be valid before its preconditions are evaluated (RFC 9110 13.2.1):
    // a malformed change is a 400 or 422 whatever If-Match says. Both happen under the
    // write lock, so the order changes no outcome, only which refusal is reported.
    let intent = match decide(current) {
        Err(StoreError::AlreadyExists { .. }) if target.preconditions.if_none_match_any => {
            return Err(StoreError::PreconditionFailed {
                kind: R::KIND.label(),
                current: current_revision,
            });
        }
        decided => decided?,
    };
    check_preconditions::<R>(target.preconditions, current_revision)?;
    Ok(intent)
}

/// Writes (or deletes) the row; returns the resource as it now stands (for a delete, as it
/// was) and what happened to it.
async fn write_intent<R: Resource>(
    tx: &Transaction<'_>,
    target: &Target<'_, R>,
    current: Option<&Versioned<R>>,
    intent: Intent<R>,
    revision: i64,
) -> Result<(Versioned<R>, Outcome), StoreError> {
    match intent {
        Intent::Put(new) => {
            new.lock_references(tx).await?;
            let outcome = match current {
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
            Ok((
                Versioned {
                    revision,
                    value: new,
                },
                outcome,
            ))
        }
        Intent::Delete => {
            let current = current
                .cloned()
                .expect("deletes are decided on existing resources");
            let referrers = R::referrers(tx, target.id).await?;
            if !referrers.is_empty() {
                return Err(StoreError::StillReferenced {
                    kind: R::KIND.label(),
                    id: target.id.to_owned(),
                    referrers,
                });
            }
            R::delete_dependents(tx, target.id, target.context).await?;
            R::delete(tx, target.id).await?;
            Ok((current, Outcome::Deleted))
        }
    }
}

/// How the write changes the inputs of the clusters it reaches, refusing it if any of them
/// would break a Flux rule. `before` was read before the write.
async fn flux_changes<R: Resource>(
    tx: &Transaction<'_>,
    affected: &BTreeSet<String>,
    before: Reached,
    limits: FluxLimits,
) -> Result<Vec<ClusterChange>, StoreError> {
    let reached_after = if R::WRITES_CLUSTER_ROWS {
        Reached::read(tx, affected).await?
    } else {
        before.after_catalog_write(tx).await?
    };
    let before = before.inputs()?;
    let after = reached_after.inputs()?;
    refuse_violations(after.values(), limits)?;
    Ok(changes_between(affected, &before, &after))
}

/// Appends the write's audit record, with the resource before and after as clients see it.
async fn audit_write<R: Resource>(
    tx: &Transaction<'_>,
    target: &Target<'_, R>,
    current: Option<&Versioned<R>>,
    resource: &Versioned<R>,
    outcome: Outcome,
    revision: i64,
) -> Result<(), StoreError> {
    let document = target.document;
    let (before, after) = match outcome {
        Outcome::Deleted => (Some(document(&resource.value, resource.revision)), None),
        _ => (
            current.map(|c| document(&c.value, c.revision)),
            Some(document(&resource.value, revision)),
        ),
    };
    let action = match (target.action, outcome) {
        (Action::Rollback, _) => "rollback",
        (_, Outcome::Deleted) => "delete",
        (_, Outcome::Created) => "create",
        _ => "update",
    };
    audit::append(
        tx,
        NewRecord {
            actor: &target.context.actor,
            action,
            kind: R::KIND.name(),
            resource_id: target.id,
            revision,
            request_id: target.context.request_id.as_deref(),
            before,
            after,
        },
    )
    .await
}

/// Every rule the clusters' inputs break, or nothing.
fn refuse_violations<'s, 'a: 's>(
    inputs: impl IntoIterator<Item = &'s FluxView<'a>>,
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
    before: &BTreeMap<String, FluxView<'_>>,
    after: &BTreeMap<String, FluxView<'_>>,
) -> Vec<ClusterChange> {
    clusters
        .iter()
        .filter_map(|id| impact::diff(before.get(id), after.get(id)))
        .collect()
}

/// What writing a whole catalog does to resources that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Leave them as they are: only what is missing is created (`SEED_FILE` at start-up,
    /// which must never undo changes made through the API since).
    Keep,
    /// Replace those that differ (`flux-catalog seed --replace`).
    Replace,
}

/// Per kind, what happened to each resource of an applied catalog, in document order.
#[derive(Debug, Clone, Default)]
pub struct CatalogReport {
    pub platform_components: Vec<(String, Outcome)>,
    pub namespaces: Vec<(String, Outcome)>,
    pub rolebindings: Vec<(String, Outcome)>,
    pub clusters: Vec<(String, Outcome)>,
}

impl CatalogReport {
    /// Each kind's outcomes, in [`Kind::ALL`] order.
    pub fn by_kind(&self) -> [(Kind, &[(String, Outcome)]); 4] {
        Kind::ALL.map(|kind| {
            let outcomes = match kind {
                Kind::PlatformComponent => &self.platform_components,
                Kind::Namespace => &self.namespaces,
                Kind::RoleBinding => &self.rolebindings,
                Kind::Cluster => &self.clusters,
            };
            (kind, outcomes.as_slice())
        })
    }
}

impl Store {
    /// Creates what does not exist and, with [`Existing::Replace`], replaces what differs,
    /// all or nothing, audited like any write. Resources the catalog does not mention are
    /// left alone, so applying the same catalog twice changes nothing the second time.
    /// Components must come in dependency order. The Flux rules are checked once, on the
    /// final state, so a document may fix in a cluster what an earlier entry of it would
    /// otherwise break.
    pub async fn apply_catalog(
        &self,
        catalog: &Catalog,
        existing: Existing,
        documents: &Documents,
        context: &WriteContext,
    ) -> Result<CatalogReport, StoreError> {
        self.bounded(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            take_write_lock(&tx).await?;
            let mut affected = BTreeSet::new();
            let mut report = CatalogReport::default();
            let mut batch = Batch {
                tx: &tx,
                existing,
                context,
                affected: &mut affected,
            };
            // What clusters reference is written before the clusters.
            for kind in Kind::ALL {
                match kind {
                    Kind::Namespace => {
                        report.namespaces = batch
                            .put_each(kind, &catalog.namespaces, documents.namespace)
                            .await?
                    }
                    Kind::RoleBinding => {
                        report.rolebindings = batch
                            .put_each(kind, &catalog.rolebindings, documents.rolebinding)
                            .await?
                    }
                    Kind::PlatformComponent => {
                        report.platform_components = batch
                            .put_each(
                                kind,
                                &catalog.platform_components,
                                documents.platform_component,
                            )
                            .await?
                    }
                    Kind::Cluster => {
                        report.clusters = batch
                            .put_each(kind, &catalog.clusters, documents.cluster)
                            .await?
                    }
                }
            }
            let reached = Reached::read(&tx, &affected).await?;
            refuse_violations(reached.inputs()?.values(), context.limits)?;
            let changed = report
                .by_kind()
                .iter()
                .flat_map(|(_, outcomes)| outcomes.iter())
                .any(|(_, outcome)| *outcome != Outcome::Unchanged);
            if changed {
                record_change(&tx, context, &affected).await?;
            }
            finish(tx, context).await?;
            Ok(report)
        })
        .await
    }
}

/// The writes of one catalog, in one transaction.
struct Batch<'t, 'c> {
    tx: &'t Transaction<'c>,
    existing: Existing,
    context: &'t WriteContext,
    affected: &'t mut BTreeSet<String>,
}

impl Batch<'_, '_> {
    /// Writes each resource of one kind; errors name the entry (`clusters[3]`).
    async fn put_each<R: Resource>(
        &mut self,
        kind: Kind,
        resources: &[R],
        document: DocumentOf<R>,
    ) -> Result<Vec<(String, Outcome)>, StoreError> {
        let list = kind.collection();
        let preconditions = Preconditions::default();
        let mut outcomes = Vec::with_capacity(resources.len());
        for (i, resource) in resources.iter().enumerate() {
            let id = resource.id().to_owned();
            let existing = self.existing;
            let written = apply(
                self.tx,
                Target {
                    id: &id,
                    document,
                    preconditions: &preconditions,
                    context: self.context,
                    action: Action::Put,
                },
                |current| match (current, existing) {
                    // Keeping it is writing what is there: unchanged, nothing recorded.
                    (Some(current), Existing::Keep) => Ok(Intent::Put(current.value.clone())),
                    _ => Ok(Intent::Put(resource.clone())),
                },
                Fanout {
                    clusters: &mut *self.affected,
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
}
