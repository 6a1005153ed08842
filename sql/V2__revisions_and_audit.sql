-- Revisions for optimistic concurrency, and the audit log that doubles as history.

-- Each resource's revision: 1 when created, +1 on every change. A resource deleted and
-- created again continues from where its history stopped (see audit_log), so a revision
-- number never means two different contents.
alter table platform_components add column revision bigint not null default 1
    constraint platform_components_revision_positive check (revision > 0);
alter table namespaces add column revision bigint not null default 1
    constraint namespaces_revision_positive check (revision > 0);
alter table rolebindings add column revision bigint not null default 1
    constraint rolebindings_revision_positive check (revision > 0);
alter table clusters add column revision bigint not null default 1
    constraint clusters_revision_positive check (revision > 0);

-- One row per accepted write, appended in the write's own transaction: a write without its
-- record cannot commit. `before` and `after` are the resource as the API shows it (null
-- before a create and after a delete), so history and rollback need nothing else.
create table audit_log (
    id          bigint generated always as identity primary key,
    at          timestamptz not null default now(),
    -- The credential's name (env:CRUD_AUTH_TOKEN ...), never a secret.
    actor       text not null,
    action      text not null
        constraint audit_log_action_known check (action in ('create', 'update', 'delete', 'rollback')),
    kind        text not null
        constraint audit_log_kind_known
            check (kind in ('cluster', 'platform_component', 'namespace', 'rolebinding')),
    resource_id text not null,
    -- The revision this write produced; a delete gets its own, after the last content's.
    revision    bigint not null constraint audit_log_revision_positive check (revision > 0),
    request_id  text,
    before      jsonb,
    after       jsonb,
    constraint audit_log_revision_key unique (kind, resource_id, revision),
    constraint audit_log_states check (before is not null or after is not null)
);
-- Newest first, optionally for one actor or action; history is served by the unique key.
create index audit_log_at_idx on audit_log (at desc, id desc);
create index audit_log_actor_idx on audit_log (actor, id desc);
