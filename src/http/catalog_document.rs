//! The catalog document: the whole catalog in the API's shapes, one list per kind, every
//! list optional:
//! `{"platform_components": [...], "namespaces": [...], "rolebindings": [...], "clusters": [...]}`.
//!
//! Loading one (`flux-catalog seed FILE`, or `SEED_FILE` at start-up) writes it in one
//! transaction and leaves resources the document does not mention alone; loading it again
//! changes nothing. It lives in the HTTP layer because its shapes are the API's.

use std::path::Path;

use serde::Deserialize;

use super::crud::{ApiResource, DOCUMENTS};
use super::{ClusterBody, NamespaceBody, PlatformComponentBody, RoleBindingBody};
use crate::domain::component::dependency_order;
use crate::domain::impact::FluxLimits;
use crate::domain::{Catalog, FieldErrors, PlatformComponent, Rules};
use crate::storage::{CatalogReport, Existing, Outcome, Store, StoreError, WriteContext};

/// The catalog document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogDocument {
    #[serde(default)]
    pub platform_components: Vec<PlatformComponentBody>,
    #[serde(default)]
    pub namespaces: Vec<NamespaceBody>,
    #[serde(default)]
    pub rolebindings: Vec<RoleBindingBody>,
    #[serde(default)]
    pub clusters: Vec<ClusterBody>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a catalog document: {reason}")]
    Parse { path: String, reason: String },
    #[error("{path} is not valid:\n  {}", .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
    Invalid { path: String, errors: FieldErrors },
    #[error("{path} has a dependency cycle: {cycle}")]
    Cycle { path: String, cycle: String },
    #[error("loading {path} failed: {source}")]
    Store { path: String, source: StoreError },
}

fn convert<R: ApiResource>(
    bodies: Vec<R::Body>,
    rules: &Rules,
    errors: &mut FieldErrors,
) -> Vec<R> {
    bodies
        .into_iter()
        .enumerate()
        .filter_map(|(i, body)| match R::from_body(body, rules) {
            Ok(resource) => Some(resource),
            Err(e) => {
                errors.extend(e.prefixed(&format!("{}[{i}]", R::KIND.collection())));
                None
            }
        })
        .collect()
}

/// Parses and checks a document: every rule of the API applies.
pub fn parse_document(path: &Path, text: &[u8], rules: &Rules) -> Result<Catalog, LoadError> {
    let shown = path.display().to_string();
    let document: CatalogDocument = super::parse_document(text).map_err(|e| LoadError::Parse {
        path: shown.clone(),
        reason: e.problem().detail,
    })?;
    let mut errors = FieldErrors::new();
    let mut platform_components: Vec<PlatformComponent> =
        convert(document.platform_components, rules, &mut errors);
    let namespaces = convert(document.namespaces, rules, &mut errors);
    let rolebindings = convert(document.rolebindings, rules, &mut errors);
    let clusters = convert(document.clusters, rules, &mut errors);
    if !errors.is_empty() {
        return Err(LoadError::Invalid {
            path: shown,
            errors,
        });
    }
    // Dependencies must exist before the components that depend on them are written.
    let order = dependency_order(&platform_components).map_err(|cycle| LoadError::Cycle {
        path: shown.clone(),
        cycle: cycle
            .iter()
            .map(|id| id.as_str())
            .collect::<Vec<_>>()
            .join(" -> "),
    })?;
    let mut slots: Vec<Option<PlatformComponent>> =
        platform_components.drain(..).map(Some).collect();
    let platform_components = order.into_iter().filter_map(|i| slots[i].take()).collect();
    Ok(Catalog {
        platform_components,
        namespaces,
        rolebindings,
        clusters,
    })
}

/// Reads, checks and applies the document at `path`, audited as `seed:<path>`; what
/// `existing` says happens to resources that already exist.
pub async fn load_file(
    store: &Store,
    path: &Path,
    existing: Existing,
    rules: &Rules,
    limits: FluxLimits,
) -> Result<CatalogReport, LoadError> {
    let shown = path.display().to_string();
    let text = std::fs::read(path).map_err(|source| LoadError::Read {
        path: shown.clone(),
        source,
    })?;
    let catalog = parse_document(path, &text, rules)?;
    let context = WriteContext {
        actor: format!("seed:{shown}"),
        request_id: None,
        dry_run: false,
        limits,
    };
    store
        .apply_catalog(&catalog, existing, &DOCUMENTS, &context)
        .await
        .map_err(|source| LoadError::Store {
            path: shown,
            source,
        })
}

/// One part per kind: "namespaces: 2 created, 1 updated, 0 unchanged; ...".
pub fn summarize(report: &CatalogReport) -> String {
    report
        .by_kind()
        .iter()
        .map(|(kind, outcomes)| {
            let count = |o: Outcome| outcomes.iter().filter(|(_, x)| *x == o).count();
            format!(
                "{}: {} created, {} updated, {} unchanged",
                kind.collection(),
                count(Outcome::Created),
                count(Outcome::Updated),
                count(Outcome::Unchanged)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
