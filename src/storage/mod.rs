//! PostgreSQL storage. Only domain types go in and come out; all SQL lives in this module,
//! one file per table group, and every write is one transaction.

pub mod audit;
pub mod changes;
mod clusters;
mod components;
pub mod connect;
pub mod credentials;
mod impact;
pub mod migrate;
mod namespaces;
mod rolebindings;
pub mod write;

use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;

use crate::domain::{FieldErrors, Kind, validation::Rejection};

pub use write::{
    CatalogReport, DocumentOf, Documents, Existing, Outcome, Preconditions, RevisionMatch,
    WriteContext, Written,
};

pub use clusters::ClusterFilter;
pub use components::ComponentFilter;

/// Validated names are bound as text parameters, so queries take them as they are.
macro_rules! bind_as_text {
    ($($name:ty),*) => {$(
        impl tokio_postgres::types::ToSql for $name {
            fn to_sql(
                &self,
                ty: &tokio_postgres::types::Type,
                out: &mut bytes::BytesMut,
            ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.as_str().to_sql(ty, out)
            }

            fn accepts(ty: &tokio_postgres::types::Type) -> bool {
                <&str as tokio_postgres::types::ToSql>::accepts(ty)
            }

            tokio_postgres::types::to_sql_checked!();
        }
    )*};
}

bind_as_text!(
    crate::domain::ClusterId,
    crate::domain::ClusterName,
    crate::domain::ClusterDns,
    crate::domain::ComponentId,
    crate::domain::NamespaceId,
    crate::domain::RoleBindingId
);

/// Why a storage operation did not happen. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create named an id, or another unique value, that is taken.
    #[error("{kind} with {field} {value:?} already exists")]
    AlreadyExists {
        kind: &'static str,
        field: &'static str,
        value: String,
    },
    /// No resource with this id.
    #[error("no {kind} with id {id:?}")]
    NotFound { kind: &'static str, id: String },
    /// `If-Match`, `If-None-Match` or a `revision` in the body did not hold.
    #[error("precondition failed: the {kind} is at revision {current:?}")]
    PreconditionFailed {
        kind: &'static str,
        /// `None`: the resource does not exist.
        current: Option<i64>,
    },
    /// `depends_on` would form a cycle; the ids along it, the first repeated at the end.
    #[error("dependency cycle: {}", .0.join(" -> "))]
    DependencyCycle(Vec<String>),
    /// The write would leave clusters with inputs Flux cannot use.
    #[error("Flux could not use the result: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    BreaksFlux(Vec<crate::domain::impact::Violation>),
    /// A delete of something that clusters or other components still reference.
    #[error("{kind} {id:?} is still referenced by {}", describe_referrers(.referrers))]
    StillReferenced {
        kind: &'static str,
        id: String,
        referrers: Vec<Referrer>,
    },
    /// References to catalog entries that do not exist, by request field.
    #[error("unknown references: {0}")]
    UnknownReferences(FieldErrors),
    /// The new content computed from the stored one was refused.
    #[error("{0}")]
    Rejected(Rejection),
    /// A concurrent write changed what this one depended on; retrying is safe.
    #[error("a concurrent change conflicted with this one")]
    Conflict(#[source] tokio_postgres::Error),
    /// The database did not answer (down, unreachable, pool exhausted).
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// An operation took longer than the configured bound: the database is stuck or
    /// cut off. A write may still take effect if it was committing when this happened.
    #[error("the database did not answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// A stored row that does not parse back into the domain.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Something that holds a reference, for the message of a refused delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub kind: &'static str,
    pub id: String,
}

fn describe_referrers(referrers: &[Referrer]) -> String {
    referrers
        .iter()
        .map(|r| format!("{} {:?}", r.kind, r.id))
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        let code = error.as_db_error().map(|db| db.code().clone());
        match code {
            // Races the explicit checks could not see (a referenced row deleted between
            // check and insert is impossible thanks to the key-share locks, but a
            // serialization failure or deadlock is always possible): the caller may retry.
            Some(c)
                if c == SqlState::T_R_SERIALIZATION_FAILURE
                    || c == SqlState::T_R_DEADLOCK_DETECTED
                    || c == SqlState::FOREIGN_KEY_VIOLATION
                    || c == SqlState::UNIQUE_VIOLATION =>
            {
                StoreError::Conflict(error)
            }
            Some(c)
                if c.code().starts_with("08")
                    || c == SqlState::ADMIN_SHUTDOWN
                    || c == SqlState::CRASH_SHUTDOWN
                    || c == SqlState::CANNOT_CONNECT_NOW
                    || c == SqlState::TOO_MANY_CONNECTIONS =>
            {
                StoreError::Unavailable(error.into())
            }
            Some(_) => StoreError::Unexpected(error.into()),
            None if error.is_closed() || io_error(&error) => StoreError::Unavailable(error.into()),
            None => StoreError::Unexpected(error.into()),
        }
    }
}

fn io_error(error: &tokio_postgres::Error) -> bool {
    std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>())
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match error {
            PoolError::Backend(e) => match StoreError::from(e) {
                StoreError::Unexpected(e) => StoreError::Unavailable(e),
                other => other,
            },
            PoolError::Timeout(_) | PoolError::Closed => StoreError::Unavailable(error.into()),
            other => StoreError::Unexpected(other.into()),
        }
    }
}

/// The name of the unique constraint a write violated, if that is why it failed.
fn violated_unique_constraint(error: &tokio_postgres::Error) -> Option<&str> {
    let db = error.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION)
        .then(|| db.constraint())
        .flatten()
}

/// How clients page through lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// One page of a list and how many items the whole list has.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// A stored resource and its revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub revision: i64,
    pub value: T,
}

/// A value bound to a statement parameter.
pub(crate) type Param = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;

/// A kind of catalog resource: how it is read, written and deleted in SQL. Each kind has
/// one table keyed by `id` (plus, for some, tables of rows it owns); the default methods do
/// the single-table work from the constants, so a kind writes only what is its own. The
/// transaction handling around these functions is written once, in [`write`].
#[allow(async_fn_in_trait)] // used with concrete types only; no Send bound is needed
pub trait Resource: Sized + Clone + PartialEq {
    const KIND: Kind;
    /// The table of this kind's rows, keyed by `id`.
    const TABLE: &'static str;
    /// Reads rows of this kind (for [`Resource::from_row`]); a `where` on `id` may follow.
    const SELECT: &'static str;
    /// The row's columns besides `id` and `revision`, in the order [`Resource::row`]
    /// gives their values.
    const COLUMNS: &'static [&'static str];
    /// Unique constraints of the table and the request field each protects, so a write
    /// that collides is reported as that field's conflict.
    const UNIQUE: &'static [(&'static str, &'static str)];
    /// Where clusters list their references to this kind: (table, column).
    const REFERENCED_BY_CLUSTERS: Option<(&'static str, &'static str)>;
    /// Whether writing this kind changes cluster rows. Writes of catalog entries change
    /// only what clusters resolve to, so their checks need not read the clusters twice.
    const WRITES_CLUSTER_ROWS: bool = false;
    type Filter;

    fn id(&self) -> &str;

    /// A row of [`Resource::SELECT`], parsed.
    fn from_row(row: &tokio_postgres::Row) -> Result<Versioned<Self>, StoreError>;

    /// The values of [`Resource::COLUMNS`].
    fn row(&self) -> Vec<Param>;

    /// The value of a unique field, for the message of a collision on it.
    fn unique_value(&self, _field: &str) -> String {
        self.id().to_owned()
    }

    /// With `lock`, the row is locked for update until the transaction ends.
    async fn find(
        client: &impl GenericClient,
        id: &str,
        lock: bool,
    ) -> Result<Option<Versioned<Self>>, StoreError> {
        let sql = format!("{} where id = $1", Self::SELECT);
        find_one(client, &sql, id, lock, Self::from_row).await
    }

    async fn list(
        client: &impl GenericClient,
        filter: &Self::Filter,
        page: Page,
    ) -> Result<Listed<Versioned<Self>>, StoreError>;

    /// Checks that everything referenced exists and keeps it from being deleted until the
    /// transaction ends.
    async fn lock_references(&self, _client: &impl GenericClient) -> Result<(), StoreError> {
        Ok(())
    }

    async fn insert(&self, client: &impl GenericClient, revision: i64) -> Result<(), StoreError> {
        let columns = Self::COLUMNS.join(", ");
        let placeholders: Vec<String> = (1..=Self::COLUMNS.len() + 2)
            .map(|n| format!("${n}"))
            .collect();
        let sql = format!(
            "insert into {} (id, {columns}, revision) values ({})",
            Self::TABLE,
            placeholders.join(", ")
        );
        self.write_row(client, &sql, revision).await?;
        self.write_owned_rows(client, false).await
    }

    /// Replaces the stored row with the same id (which exists and is locked).
    async fn replace(&self, client: &impl GenericClient, revision: i64) -> Result<(), StoreError> {
        let assignments: Vec<String> = Self::COLUMNS
            .iter()
            .enumerate()
            .map(|(i, column)| format!("{column} = ${}", i + 2))
            .collect();
        let sql = format!(
            "update {} set {}, revision = ${}, updated_at = now() where id = $1",
            Self::TABLE,
            assignments.join(", "),
            Self::COLUMNS.len() + 2
        );
        self.write_row(client, &sql, revision).await?;
        self.write_owned_rows(client, true).await
    }

    /// Runs `sql` with `id`, the row's values and `revision`; a collision on a unique
    /// field is reported as that field's conflict.
    async fn write_row(
        &self,
        client: &impl GenericClient,
        sql: &str,
        revision: i64,
    ) -> Result<(), StoreError> {
        let id = self.id();
        let row = self.row();
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&id];
        params.extend(
            row.iter()
                .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync)),
        );
        params.push(&revision);
        let statement = client.prepare_cached(sql).await?;
        client.execute(&statement, &params).await.map_err(|e| {
            unique_violation(e, Self::KIND.label(), Self::UNIQUE, |field| {
                self.unique_value(field)
            })
        })?;
        Ok(())
    }

    /// Writes the rows in other tables that belong to this one (a component's
    /// dependencies, a cluster's references), after its own row; `replacing` when the old
    /// ones must go first.
    async fn write_owned_rows(
        &self,
        _client: &impl GenericClient,
        _replacing: bool,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Who still references the (locked) row with this id.
    async fn referrers(client: &impl GenericClient, id: &str) -> Result<Vec<Referrer>, StoreError> {
        match Self::REFERENCED_BY_CLUSTERS {
            Some((table, column)) => referencing_clusters(client, table, column, id).await,
            None => Ok(Vec::new()),
        }
    }

    async fn delete(client: &impl GenericClient, id: &str) -> Result<(), StoreError> {
        delete_by_id(client, Self::TABLE, id).await
    }

    /// What goes with the resource when it is deleted, besides the rows it owns, audited
    /// as `context`'s: a cluster's credentials.
    async fn delete_dependents(
        _client: &impl GenericClient,
        _id: &str,
        _context: &WriteContext,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Ids of the clusters whose Flux inputs include the resource with this id.
    async fn dependent_clusters(
        client: &impl GenericClient,
        id: &str,
    ) -> Result<Vec<String>, StoreError> {
        match Self::REFERENCED_BY_CLUSTERS {
            Some((table, column)) => Ok(referencing_clusters(client, table, column, id)
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect()),
            None => Ok(Vec::new()),
        }
    }

    /// Rules over the whole catalog that a write of this kind could break (dependency
    /// cycles, for components), checked after the write in its transaction.
    async fn check_catalog(_client: &impl GenericClient) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The rows of a kind without list filters, one page at a time.
async fn list_unfiltered<R: Resource>(
    client: &impl GenericClient,
    page: Page,
) -> Result<Listed<Versioned<R>>, StoreError> {
    let count = format!("select count(*) from {}", R::TABLE);
    list_page(client, R::SELECT, "id", &count, &[], page, R::from_row).await
}

/// The rows of a kind with these ids (those that exist).
async fn find_many<R: Resource>(
    client: &impl GenericClient,
    ids: &[&str],
) -> Result<Vec<Versioned<R>>, StoreError> {
    let sql = format!("{} where id = any($1::text[]) order by id", R::SELECT);
    find_all(client, &sql, &[&ids], R::from_row).await
}

/// A read-only transaction that sees one snapshot of the database, so that everything read
/// in it agrees (a page and its total, credentials and their counter, the fleet and the
/// change-log position).
async fn consistent_read(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

/// The connection pool and every operation on the catalog.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// Opens the pool's connections, and names the server and settings when that fails.
    connector: connect::Connector,
    operation_timeout: Duration,
}

/// How to reach the database and how many connections to keep.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: usize,
    /// How long a request waits for a connection (also for a new one to be made).
    pub wait_timeout: Duration,
    /// How long one operation may take once it has a connection (see [`Store::bounded`]).
    pub operation_timeout: Duration,
}

impl Store {
    pub fn new(connector: connect::Connector, options: &PoolOptions) -> Result<Self, StoreError> {
        let manager = Manager::from_connect(
            connector.config().clone(),
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(options.wait_timeout))
            .recycle_timeout(Some(options.wait_timeout))
            .build()
            .map_err(|e| StoreError::Unexpected(e.into()))?;
        Ok(Self {
            pool,
            connector,
            operation_timeout: options.operation_timeout,
        })
    }

    /// A store of its own with one connection to the same database, for a task that must
    /// not queue behind requests for the shared pool: the snapshot's checks and catch-ups,
    /// which keep `/ready` and the Flux endpoints truthful while writes crowd the pool.
    pub fn with_own_connection(&self) -> Result<Self, StoreError> {
        let wait = self.pool.timeouts().wait.unwrap_or(self.operation_timeout);
        Self::new(
            self.connector.clone(),
            &PoolOptions {
                max_size: 1,
                wait_timeout: wait,
                operation_timeout: self.operation_timeout,
            },
        )
    }

    /// Runs one operation on the database, giving up after the operation timeout. A
    /// database that stops answering without closing its connections (frozen, or cut off
    /// by a network that drops packets) would otherwise hold requests forever.
    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.operation_timeout, operation)
            .await
            .map_err(|_| StoreError::TimedOut(self.operation_timeout))?
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|error| match error {
            // A new connection failed (refused, TLS, authentication): say where to and with
            // which settings, as start-up does.
            deadpool_postgres::PoolError::Backend(error) => {
                StoreError::Unavailable(self.connector.failure(error).into())
            }
            other => other.into(),
        })
    }

    /// The pool's size and use, for metrics.
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    /// Answers when the database answers: for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            client.simple_query("select 1").await?;
            Ok(())
        })
        .await
    }

    pub async fn get<R: Resource>(&self, id: &str) -> Result<Option<Versioned<R>>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            R::find(&client, id, false).await
        })
        .await
    }

    /// A page and the total, read from one snapshot so they agree.
    pub async fn list<R: Resource>(
        &self,
        filter: &R::Filter,
        page: Page,
    ) -> Result<Listed<Versioned<R>>, StoreError> {
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = consistent_read(&mut client).await?;
            let listed = R::list(&tx, filter, page).await?;
            tx.commit().await?;
            Ok(listed)
        })
        .await
    }

    /// Closes every connection; further operations fail as unavailable.
    pub fn close(&self) {
        self.pool.close();
    }
}

/// Ids among `wanted` with no row in `table`, each with its position in `wanted`. The rows
/// found are key-share locked, so they cannot be deleted before this transaction ends.
async fn missing_ids<'w>(
    client: &impl GenericClient,
    table: &'static str,
    wanted: &'w [&'w str],
) -> Result<Vec<(usize, &'w str)>, StoreError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // The table name is one of a fixed set of literals, never input.
    let sql = format!("select id from {table} where id = any($1::text[]) for key share");
    let statement = client.prepare_cached(&sql).await?;
    let rows = client.query(&statement, &[&wanted]).await?;
    let found: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(wanted
        .iter()
        .enumerate()
        .filter(|(_, id)| !found.contains(**id))
        .map(|(i, id)| (i, *id))
        .collect())
}

fn parse_stored<T, E: std::fmt::Display>(what: &str, value: Result<T, E>) -> Result<T, StoreError> {
    value.map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

// --- Helpers shared by the table modules. Table and column names passed to them are
// always literals of those modules, never input.

/// The row `sql` (which ends in a `where` on `$1`) finds for `id`, parsed; with `lock`, the
/// row is locked for update until the transaction ends.
async fn find_one<T>(
    client: &impl GenericClient,
    sql: &str,
    id: &str,
    lock: bool,
    parse: impl Fn(&tokio_postgres::Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let sql = if lock {
        format!("{sql} for update")
    } else {
        sql.to_owned()
    };
    let statement = client.prepare_cached(&sql).await?;
    client
        .query_opt(&statement, &[&id])
        .await?
        .as_ref()
        .map(parse)
        .transpose()
}

/// Every row `sql` returns, parsed.
async fn find_all<T>(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    parse: impl Fn(&tokio_postgres::Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let statement = client.prepare_cached(sql).await?;
    client
        .query(&statement, params)
        .await?
        .iter()
        .map(parse)
        .collect()
}

/// One page (`select` ends with the filter; `order by` and paging are appended) and the
/// number of rows `count` finds with the same filter parameters.
async fn list_page<T>(
    client: &impl GenericClient,
    select: &str,
    order_by: &str,
    count: &str,
    filters: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    page: Page,
    parse: impl Fn(&tokio_postgres::Row) -> Result<T, StoreError>,
) -> Result<Listed<T>, StoreError> {
    let n = filters.len();
    let sql = format!(
        "{select} order by {order_by} limit ${} offset ${}",
        n + 1,
        n + 2
    );
    let mut params = filters.to_vec();
    params.push(&page.limit);
    params.push(&page.offset);
    let items = find_all(client, &sql, &params, parse).await?;
    let statement = client.prepare_cached(count).await?;
    let total: i64 = client.query_one(&statement, filters).await?.get(0);
    Ok(Listed { items, total })
}

async fn delete_by_id(
    client: &impl GenericClient,
    table: &str,
    id: &str,
) -> Result<(), StoreError> {
    let statement = client
        .prepare_cached(&format!("delete from {table} where id = $1"))
        .await?;
    client.execute(&statement, &[&id]).await?;
    Ok(())
}

/// Clusters whose `table.column` references `id`.
async fn referencing_clusters(
    client: &impl GenericClient,
    table: &str,
    column: &str,
    id: &str,
) -> Result<Vec<Referrer>, StoreError> {
    let sql = format!("select cluster_id from {table} where {column} = $1 order by cluster_id");
    find_all(client, &sql, &[&id], |row| {
        Ok(Referrer {
            kind: Kind::Cluster.label(),
            id: row.get(0),
        })
    })
    .await
}

/// A write's error, with the violation of one of `unique` (constraint, field) turned into
/// `AlreadyExists` naming the field and the value `value_of` gives for it.
fn unique_violation(
    error: tokio_postgres::Error,
    kind: &'static str,
    unique: &[(&str, &'static str)],
    value_of: impl Fn(&str) -> String,
) -> StoreError {
    let violated = violated_unique_constraint(&error);
    match unique
        .iter()
        .find(|(constraint, _)| Some(*constraint) == violated)
    {
        Some((_, field)) => StoreError::AlreadyExists {
            kind,
            field,
            value: value_of(field),
        },
        None => error.into(),
    }
}
