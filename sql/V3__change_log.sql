-- What each committed write changed for Flux, so every replica's in-memory snapshot can
-- follow the database by rebuilding only the clusters a change touches.
--
-- Writes append a row in their own transaction (and NOTIFY flux_catalog_changes with the
-- version). Replicas remember the last version they applied; `max(version)` is the change
-- counter they poll, which also reaches replicas NOTIFY cannot (hot standbys) and covers
-- notifications lost across a reconnect. Writes are serialised by an advisory lock, so
-- versions commit in increasing order; a rolled-back write leaves a harmless gap.
create table change_log (
    version     bigint generated always as identity primary key,
    at          timestamptz not null default now(),
    -- Clusters whose Flux inputs may have changed (deleted ones included). Catalog changes
    -- that no cluster uses list none but still move the counter.
    cluster_ids text[] not null
);
