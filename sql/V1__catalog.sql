-- The catalog and the clusters that reference it.
--
-- Integrity lives here, not only in the service: a row written by any client (psql, a
-- future migration, a second service version during a rollout) cannot break what Flux
-- receives. Table names are plural throughout.

-- Ids become Kubernetes object names in ResourceSet templates, so they are RFC 1123 labels;
-- the API checks the same rule and says which field broke it. Columns that own an id check
-- it; columns that reference one inherit the check through their foreign key. (A domain
-- type would say this more briefly, but client drivers then refuse plain text parameters.)
create function is_k8s_label(value text) returns boolean
    language sql immutable strict parallel safe
    as $$ select value ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' $$;

create table platform_components (
    id                  text primary key
        constraint platform_components_id_format check (is_k8s_label(id)),
    component_path      text not null,
    component_version   text not null,
    cluster_env_enabled boolean not null default false,
    oci_url             text not null,
    oci_tag             text not null,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now()
);

-- One row per dependency, in the order the client gave them.
create table platform_component_dependencies (
    component_id  text not null,
    depends_on_id text not null,
    position      integer not null,
    constraint platform_component_dependencies_pkey primary key (component_id, depends_on_id),
    constraint platform_component_dependencies_position_key unique (component_id, position),
    constraint platform_component_dependencies_not_self check (component_id <> depends_on_id),
    -- A component's own dependency list goes with it...
    constraint platform_component_dependencies_component_fk foreign key (component_id)
        references platform_components (id) on delete cascade,
    -- ...but a component others wait for cannot disappear under them.
    constraint platform_component_dependencies_depends_on_fk foreign key (depends_on_id)
        references platform_components (id) on delete restrict
);
-- The restrict check and "who depends on X" look rows up by the referenced side.
create index platform_component_dependencies_depends_on_idx
    on platform_component_dependencies (depends_on_id);

create table namespaces (
    id          text primary key
        constraint namespaces_id_format check (is_k8s_label(id)),
    -- String maps; keys and values are checked against Kubernetes' rules by the API.
    labels      jsonb not null default '{}'
        constraint namespaces_labels_object check (jsonb_typeof(labels) = 'object'),
    annotations jsonb not null default '{}'
        constraint namespaces_annotations_object check (jsonb_typeof(annotations) = 'object'),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

create table rolebindings (
    id         text primary key
        constraint rolebindings_id_format check (is_k8s_label(id)),
    role       text not null,
    -- RBAC subjects exactly as templates copy them into a RoleBinding.
    subjects   jsonb not null default '[]'
        constraint rolebindings_subjects_array check (jsonb_typeof(subjects) = 'array'),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table clusters (
    id           text primary key
        constraint clusters_id_format check (is_k8s_label(id)),
    cluster_name text not null
        constraint clusters_cluster_name_format check (is_k8s_label(cluster_name)),
    -- The key Flux endpoints are addressed by: two clusters with one DNS name would make
    -- one of them unreachable.
    cluster_dns  text not null constraint clusters_cluster_dns_key unique,
    -- Checked against the configured tiers on write; not a constraint here, because the
    -- tiers are configuration and may change while rows exist.
    environment  text not null,
    node_count   integer constraint clusters_node_count_not_negative check (node_count >= 0),
    vm_image     text,
    k0s_version  text,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);
create index clusters_environment_idx on clusters (environment);

create table cluster_platform_components (
    cluster_id     text not null,
    component_id   text not null,
    position       integer not null,
    enabled        boolean not null,
    -- Null: use the catalog's value.
    oci_tag        text,
    component_path text,
    -- Null: the cluster gives no patches for this component (Flux gets {}).
    patches        jsonb
        constraint cluster_platform_components_patches_object
            check (patches is null or jsonb_typeof(patches) = 'object'),
    -- The primary key is also what makes a duplicate reference impossible.
    constraint cluster_platform_components_pkey primary key (cluster_id, component_id),
    constraint cluster_platform_components_position_key unique (cluster_id, position),
    -- References are part of the cluster and go with it...
    constraint cluster_platform_components_cluster_fk foreign key (cluster_id)
        references clusters (id) on delete cascade,
    -- ...but removing a catalog entry in use would silently uninstall it everywhere.
    constraint cluster_platform_components_component_fk foreign key (component_id)
        references platform_components (id) on delete restrict
);
create index cluster_platform_components_component_idx
    on cluster_platform_components (component_id);

create table cluster_namespaces (
    cluster_id   text not null,
    namespace_id text not null,
    position     integer not null,
    constraint cluster_namespaces_pkey primary key (cluster_id, namespace_id),
    constraint cluster_namespaces_position_key unique (cluster_id, position),
    constraint cluster_namespaces_cluster_fk foreign key (cluster_id)
        references clusters (id) on delete cascade,
    constraint cluster_namespaces_namespace_fk foreign key (namespace_id)
        references namespaces (id) on delete restrict
);
create index cluster_namespaces_namespace_idx on cluster_namespaces (namespace_id);

create table cluster_rolebindings (
    cluster_id     text not null,
    rolebinding_id text not null,
    position       integer not null,
    constraint cluster_rolebindings_pkey primary key (cluster_id, rolebinding_id),
    constraint cluster_rolebindings_position_key unique (cluster_id, position),
    constraint cluster_rolebindings_cluster_fk foreign key (cluster_id)
        references clusters (id) on delete cascade,
    constraint cluster_rolebindings_rolebinding_fk foreign key (rolebinding_id)
        references rolebindings (id) on delete restrict
);
create index cluster_rolebindings_rolebinding_idx on cluster_rolebindings (rolebinding_id);
