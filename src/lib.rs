//! flux-catalog (in progress)

pub mod domain;
pub mod embedded_pg;
pub mod storage;
