//! Schema migrations from `sql/`, embedded in the binary.

use super::connect::Connector;

mod embedded {
    refinery::embed_migrations!("sql");
}

/// Arbitrary but fixed: every replica that starts at once takes the same lock, so exactly
/// one migrates and the others wait and then find nothing to do.
const MIGRATION_LOCK_KEY: i64 = 0x666c_7578_6361_7431; // "fluxcat1"

/// Applies every migration not applied yet, under a session-level advisory lock.
///
/// Runs on a dedicated connection, not a pooled one, so the lock ends with the session even
/// if a migration fails half-way.
pub async fn run(connector: &Connector) -> anyhow::Result<Vec<String>> {
    let (mut client, connection) = connector.connect().await?;
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
    let applied = report?
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect();
    Ok(applied)
}
