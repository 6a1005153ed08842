-- Named credentials (issue 10). Only the SHA-256 digest of a secret is kept: secrets are
-- 256 random bits, so a plain digest cannot be reversed, and a leaked table opens nothing.
-- Revoking deletes the row; the audit log keeps what it was.
create table credentials (
    name         text primary key
        constraint credentials_name_plain check (name ~ '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$'),
    digest       bytea not null unique constraint credentials_digest_size check (length(digest) = 32),
    scopes       text[] not null constraint credentials_scopes_some check (cardinality(scopes) > 0),
    created_at   timestamptz not null default now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    -- The cluster whose credential this is, when issued with it: deleting the cluster
    -- deletes (revokes) it.
    cluster_id   text references clusters (id) on delete cascade
);

-- Every replica keeps the credentials in memory and polls this counter (a few times a
-- second, one tiny query) to see a revocation within a second. A statement trigger moves
-- it, so a cascade from a cluster's deletion counts too; last use does not move it.
create table credentials_version (
    only_row boolean primary key default true constraint credentials_version_one_row check (only_row),
    version  bigint not null
);
insert into credentials_version (version) values (0);

create function credentials_changed() returns trigger language plpgsql as $$
begin
    update credentials_version set version = version + 1;
    return null;
end
$$;

create trigger credentials_changed
    after insert or delete or update of name, digest, scopes, expires_at, cluster_id
    on credentials for each statement execute function credentials_changed();

-- Credential changes are audited like catalog writes.
alter table audit_log drop constraint audit_log_kind_known;
alter table audit_log add constraint audit_log_kind_known
    check (kind in ('cluster', 'platform_component', 'namespace', 'rolebinding', 'credential'));
