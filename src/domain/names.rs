//! Names that become Kubernetes object names or DNS names. Each rule lives here once.
//!
//! Ids of catalog entries and clusters end up in `metadata.name` of the objects a
//! ResourceSet renders (often as a suffix, `{{ inputs.id }}-helmrelease`), so they follow
//! the strictest common Kubernetes rule: an RFC 1123 label.

use std::fmt;

use serde::Serialize;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters, got {len}")]
    TooLong { max: usize, len: usize },
    #[error("must contain only lowercase letters, digits and '-', found {0:?}")]
    InvalidChar(char),
    #[error("must start and end with a lowercase letter or digit")]
    BadEdge,
    #[error("must not contain an empty label (a leading, trailing or doubled '.')")]
    EmptyLabel,
    #[error("label {label:?} {reason}")]
    InLabel {
        label: String,
        reason: Box<NameError>,
    },
}

pub const LABEL_MAX: usize = 63;
pub const SUBDOMAIN_MAX: usize = 253;

/// The rule of [`dns1123_label`] (without its length limit) as a regular expression, for
/// the OpenAPI document and for checking the database's own rule against.
pub const DNS1123_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// The rule of [`dns1123_subdomain`] (without its length limits) as a regular expression.
pub const DNS1123_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// RFC 1123 label, as Kubernetes checks it ([`DNS1123_LABEL_PATTERN`]), at most 63 characters.
pub fn dns1123_label(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > LABEL_MAX {
        return Err(NameError::TooLong {
            max: LABEL_MAX,
            len: s.chars().count(),
        });
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::InvalidChar(c));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(NameError::BadEdge);
    }
    Ok(())
}

/// RFC 1123 subdomain where every label is an RFC 1123 label: a DNS name as clusters have.
pub fn dns1123_subdomain(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > SUBDOMAIN_MAX {
        return Err(NameError::TooLong {
            max: SUBDOMAIN_MAX,
            len: s.chars().count(),
        });
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        dns1123_label(label).map_err(|reason| NameError::InLabel {
            label: label.to_owned(),
            reason: Box::new(reason),
        })?;
    }
    Ok(())
}

macro_rules! label_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                dns1123_label(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

label_name!(
    /// Id of a catalog platform component.
    ComponentId
);
label_name!(
    /// Id of a namespace definition.
    NamespaceId
);
label_name!(
    /// Id of a rolebinding definition.
    RoleBindingId
);
label_name!(
    /// Id of a cluster.
    ClusterId
);
label_name!(
    /// A cluster's name as Flux templates see it (`cluster.name`), commonly used in object
    /// names and label values, hence a label too.
    ClusterName
);

/// The DNS name a cluster is known by; the key Flux endpoints are addressed with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ClusterDns(String);

impl ClusterDns {
    pub fn parse(s: impl Into<String>) -> Result<Self, NameError> {
        let s = s.into();
        dns1123_subdomain(&s)?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ClusterDns {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterDns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labels_follow_rfc_1123() {
        let cases: &[(&str, Option<NameError>)] = &[
            ("cert-manager", None),
            ("a", None),
            ("0abc9", None),
            (&"a".repeat(63), None),
            ("", Some(NameError::Empty)),
            (
                &"a".repeat(64),
                Some(NameError::TooLong { max: 63, len: 64 }),
            ),
            ("Cert", Some(NameError::InvalidChar('C'))),
            ("a_b", Some(NameError::InvalidChar('_'))),
            ("a.b", Some(NameError::InvalidChar('.'))),
            ("é", Some(NameError::InvalidChar('é'))),
            ("-a", Some(NameError::BadEdge)),
            ("a-", Some(NameError::BadEdge)),
        ];
        for (input, expected) in cases {
            assert_eq!(
                dns1123_label(input).err(),
                *expected,
                "label {input:?} should give {expected:?}"
            );
        }
    }

    #[test]
    fn subdomains_check_every_label() {
        assert!(dns1123_subdomain("demo-cluster-01.k8s.example.com").is_ok());
        assert!(dns1123_subdomain("localhost").is_ok());
        assert_eq!(
            dns1123_subdomain("a..b").unwrap_err(),
            NameError::EmptyLabel
        );
        assert_eq!(
            dns1123_subdomain("a.b.").unwrap_err(),
            NameError::EmptyLabel
        );
        let err = dns1123_subdomain("ok.Bad.example").unwrap_err();
        assert_eq!(
            err.to_string(),
            "label \"Bad\" must contain only lowercase letters, digits and '-', found 'B'"
        );
        assert!(matches!(
            dns1123_subdomain(&format!("{}.com", "a".repeat(64))),
            Err(NameError::InLabel { .. })
        ));
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(matches!(
            dns1123_subdomain(&long),
            Err(NameError::TooLong { max: 253, .. })
        ));
    }

    /// A pattern's body, for generating strings from it (proptest takes no anchors).
    fn unanchored(pattern: &str) -> &str {
        pattern.trim_start_matches('^').trim_end_matches('$')
    }

    proptest! {
        /// The function and the pattern the OpenAPI document publishes are one rule.
        #[test]
        fn every_label_the_pattern_describes_is_accepted(
            s in unanchored(DNS1123_LABEL_PATTERN).prop_filter("within the length limit", |s| s.len() <= LABEL_MAX)
        ) {
            prop_assert!(ComponentId::parse(s).is_ok());
        }

        #[test]
        fn every_subdomain_the_pattern_describes_is_accepted(
            s in unanchored(DNS1123_SUBDOMAIN_PATTERN).prop_filter("within the length limits", |s| {
                s.len() <= SUBDOMAIN_MAX && s.split('.').all(|l| l.len() <= LABEL_MAX)
            })
        ) {
            prop_assert!(dns1123_subdomain(&s).is_ok());
        }

        #[test]
        fn accepted_labels_are_valid_kubernetes_names(s in "\\PC{0,70}") {
            if let Ok(id) = NamespaceId::parse(s) {
                let id = id.as_str();
                prop_assert!(id.len() <= 63);
                prop_assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
                prop_assert!(!id.starts_with('-') && !id.ends_with('-'));
            }
        }
    }
}
