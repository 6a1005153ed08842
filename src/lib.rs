//! flux-catalog (in progress)

pub mod domain;
pub mod storage;
