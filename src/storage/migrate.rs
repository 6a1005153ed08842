//! Schema migrations from `sql/`, embedded in the binary.

use tokio_postgres::NoTls;

use super::StoreError;

mod embedded {
    refinery::embed_migrations!("sql");
}

/// Arbitrary but fixed: every replica that starts at once takes the same lock, so exactly
/// one migrates and the others wait and then find nothing to do.
const MIGRATION_LOCK_KEY: i64 = 0x666c_7578_6361_7431; // "fluxcat1"

/// Applies every migration not applied yet, under a session-level advisory lock. A database
/// that cannot be reached is [`StoreError::Unavailable`] (worth retrying); a migration that
/// fails is [`StoreError::Unexpected`].
///
/// Runs on a dedicated connection, not a pooled one, so the lock ends with the session even
/// if a migration fails half-way.
pub async fn run(config: &tokio_postgres::Config) -> Result<Vec<String>, StoreError> {
    let (mut client, connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|e| match StoreError::from(e) {
                // Whatever stops a connection at start-up (refused, unknown host, timed out,
                // authentication) is the database not being reachable yet, as far as waiting goes.
                StoreError::Unexpected(e) => StoreError::Unavailable(e),
                other => other,
            })?;
    let driver = tokio::spawn(connection);
    client
        .execute("select pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let report = embedded::migrations::runner()
        .set_migration_table_name("flux_catalog_schema_history")
        .run_async(&mut client)
        .await;
    drop(client);
    let _ = driver.await;
    let applied = report
        .map_err(|e| StoreError::Unexpected(anyhow::Error::new(e).context("a migration failed")))?
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect();
    Ok(applied)
}
