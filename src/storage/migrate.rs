//! Schema migrations from `sql/`, embedded in the binary.

use super::connect::Connector;

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
pub async fn run(connector: &Connector) -> Result<Vec<String>, StoreError> {
    // A database that is not there yet is worth waiting for; a refused certificate or
    // password is not. Either way the message names the server and the settings.
    let (mut client, connection) = connector.connect().await.map_err(|e| {
        if e.is_transient() {
            StoreError::Unavailable(e.into())
        } else {
            StoreError::Unexpected(e.into())
        }
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
