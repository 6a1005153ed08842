//! The Kubernetes API server's rules for label and annotation keys and values, so that a
//! namespace definition the catalog accepts is one the cluster will accept too.

use std::collections::BTreeMap;

use super::names::dns1123_subdomain;

const NAME_MAX: usize = 63;
/// The API server's limit on all annotation keys and values of one object together.
pub const ANNOTATIONS_TOTAL_MAX: usize = 256 * 1024;

/// A label or annotation key: an optional DNS subdomain prefix and `/`, then a name of at
/// most 63 characters of alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
pub fn qualified_name(key: &str) -> Result<(), String> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() {
                return Err("prefix before '/' must not be empty".to_owned());
            }
            dns1123_subdomain(prefix).map_err(|e| format!("prefix {prefix:?} {e}"))?;
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err("name part must not be empty".to_owned());
    }
    label_value_chars(name).map_err(|e| format!("name part {name:?} {e}"))
}

/// A label value: empty, or at most 63 characters of alphanumerics, `-`, `_` and `.`,
/// starting and ending alphanumeric.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    label_value_chars(value)
}

fn label_value_chars(s: &str) -> Result<(), String> {
    if s.len() > NAME_MAX {
        return Err(format!(
            "must be at most {NAME_MAX} characters, got {}",
            s.chars().count()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "must contain only letters, digits, '-', '_' and '.', found {c:?}"
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge_ok(s.chars().next()) || !edge_ok(s.chars().last()) {
        return Err("must start and end with a letter or digit".to_owned());
    }
    Ok(())
}

/// Annotations have no per-value rule, only a limit on their total size.
pub fn annotations_total_size(annotations: &BTreeMap<String, String>) -> Result<(), String> {
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > ANNOTATIONS_TOTAL_MAX {
        return Err(format!(
            "keys and values together must be at most {ANNOTATIONS_TOTAL_MAX} bytes, got {total}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_as_the_api_server_checks_them() {
        let valid = [
            "app",
            "app.kubernetes.io/name",
            "example.com/Team_Name",
            "a",
            "A-b.c_d",
            "pod-security.kubernetes.io/enforce",
        ];
        for key in valid {
            assert!(qualified_name(key).is_ok(), "{key:?} should be accepted");
        }
        let invalid = [
            ("", "empty"),
            ("/name", "prefix"),
            ("example.com/", "name part"),
            ("Example.com/name", "prefix"),
            ("-app", "start and end"),
            ("app-", "start and end"),
            ("a b", "found ' '"),
            ("a/b/c", "found '/'"),
        ];
        for (key, expected) in invalid {
            let err = qualified_name(key).expect_err(key);
            assert!(
                err.contains(expected),
                "{key:?}: {err:?} should mention {expected:?}"
            );
        }
        assert!(qualified_name(&"a".repeat(64)).is_err());
        assert!(qualified_name(&format!("example.com/{}", "a".repeat(63))).is_ok());
    }

    #[test]
    fn label_values_may_be_empty_but_not_malformed() {
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2.3_rc-1").is_ok());
        assert!(label_value("has space").is_err());
        assert!(label_value("_lead").is_err());
        assert!(label_value(&"x".repeat(64)).is_err());
    }

    #[test]
    fn annotations_are_limited_in_total_size() {
        let mut annotations = BTreeMap::new();
        annotations.insert("a".to_owned(), "x".repeat(ANNOTATIONS_TOTAL_MAX - 1));
        assert!(annotations_total_size(&annotations).is_ok());
        annotations.insert("b".to_owned(), "y".to_owned());
        assert!(annotations_total_size(&annotations).is_err());
    }
}
