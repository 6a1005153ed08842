//! flux-catalog: a catalog of platform components and clusters in PostgreSQL, served to
//! Flux Operator's `ResourceSetInputProvider` (`type: ExternalService`) and edited over REST.

pub mod domain;
