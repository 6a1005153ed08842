//! Integration tests: a real server over real HTTP on a real PostgreSQL, one database per test.

mod auth;
mod bad_input;
mod clusters;
mod components;
mod concurrency;
mod cors;
mod dry_run;
mod fleet_rules;
mod flux;
mod helpers;
mod history;
mod integrity;
mod lists;
mod namespaces;
mod process;
mod rate_limit;
mod replicas;
mod rolebindings;
mod schema;
mod service;
mod tls;
