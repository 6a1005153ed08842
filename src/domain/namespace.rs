//! Namespace definitions clusters can reference.

use std::collections::BTreeMap;

use super::kubernetes;
use super::names::NamespaceId;
use super::validation::{FieldErrors, map_entry_path};

/// A namespace to create on the clusters that reference it, with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub id: NamespaceId,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Label keys and values as the Kubernetes API server checks them.
pub fn check_labels(labels: &BTreeMap<String, String>) -> FieldErrors {
    let mut errors = FieldErrors::new();
    for (key, value) in labels {
        let field = map_entry_path("labels", key);
        if let Err(reason) = kubernetes::qualified_name(key) {
            errors.add(&field, format!("invalid label key: {reason}"));
        }
        if let Err(reason) = kubernetes::label_value(value) {
            errors.add(&field, format!("invalid label value: {reason}"));
        }
    }
    errors
}

/// Annotation keys as the Kubernetes API server checks them, and their total size.
pub fn check_annotations(annotations: &BTreeMap<String, String>) -> FieldErrors {
    let mut errors = FieldErrors::new();
    for (key, value) in annotations {
        if let Err(reason) = kubernetes::qualified_name(key) {
            errors.add(
                map_entry_path("annotations", key),
                format!("invalid annotation key: {reason}"),
            );
        }
        if value.contains('\0') {
            errors.add(
                map_entry_path("annotations", key),
                "must not contain NUL characters",
            );
        }
    }
    errors.check(
        "annotations",
        kubernetes::annotations_total_size(annotations),
    );
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_errors_name_the_offending_key() {
        let errors = check_labels(&map(&[
            ("app", "ok"),
            ("bad key", "v"),
            ("team", "has space"),
        ]));
        let rendered: Vec<_> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(rendered.len(), 2, "{rendered:?}");
        assert!(rendered[0].starts_with("labels.\"bad key\": invalid label key"));
        assert!(rendered[1].starts_with("labels.team: invalid label value"));
    }

    #[test]
    fn annotation_values_are_free_but_keys_are_checked() {
        assert!(check_annotations(&map(&[("example.com/note", "any text: {}\n")])).is_empty());
        assert!(!check_annotations(&map(&[("not/a/key", "x")])).is_empty());
    }
}
