//! flux-catalog: a catalog of platform components and clusters in PostgreSQL, served to
//! Flux Operator's `ResourceSetInputProvider` (`type: ExternalService`) and edited over REST.
//!
//! Layers, each depending only on those below it: [`domain`] (types, rules, the merge; no
//! I/O), [`storage`] (PostgreSQL), [`snapshot`] (the in-memory Flux responses that follow
//! it), [`http`] (actix-web), and [`startup`] wiring them together from [`settings`].
//! [`metrics`] and [`logging`] sit beside `domain` at the bottom: they import nothing of the crate; the
//! snapshot and the HTTP layer record into the first.

pub mod domain;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod settings;
pub mod snapshot;
pub mod startup;
pub mod storage;
