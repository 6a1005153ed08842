//! Integration tests: a real server over real HTTP on a real PostgreSQL, one database per test.

mod api_browser;
mod auth;
mod bad_input;
mod clusters;
mod components;
mod concurrency;
mod cors;
mod credentials;
mod dry_run;
mod fleet_rules;
mod flux;
mod helpers;
mod history;
mod hostile;
mod integrity;
mod lists;
mod metrics;
mod namespaces;
mod operating;
mod process;
mod rate_limit;
mod replicas;
mod rolebindings;
mod schema;
mod service;
mod tls;
