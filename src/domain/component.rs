//! Catalog platform components: what can be installed on a cluster, and from where.

use std::collections::HashSet;

use super::names::ComponentId;
use super::validation::{self, FieldErrors};

/// A catalog entry. Clusters reference it and may override `component_path` and
/// `oci_tag`; everything else reaches Flux as the catalog says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformComponent {
    pub id: ComponentId,
    /// Chart name, or path inside the OCI artifact.
    pub component_path: String,
    /// Upstream version; `latest` means not pinned.
    pub component_version: String,
    /// When true, templates append `/{environment}` to the path.
    pub cluster_env_enabled: bool,
    /// Helm repository or OCI registry URL.
    pub oci_url: String,
    /// Default chart or artifact tag.
    pub oci_tag: String,
    /// Components that must be ready before this one, in the order given.
    pub depends_on: Vec<ComponentId>,
}

const PATH_MAX: usize = 253;
const VERSION_MAX: usize = 128;
/// OCI distribution spec: tags are at most 128 characters.
const TAG_MAX: usize = 128;
const URL_MAX: usize = 2048;

/// A chart name or a relative path inside an artifact; absolute paths and `..` could make a
/// template read outside the artifact.
pub fn check_component_path(path: &str) -> Result<(), String> {
    validation::token(path, PATH_MAX)?;
    if path.starts_with('/') {
        return Err("must be a relative path (no leading '/')".to_owned());
    }
    if path.contains('\\') {
        return Err("must use '/' as separator, not '\\'".to_owned());
    }
    if path
        .split('/')
        .any(|segment| segment == ".." || segment.is_empty())
    {
        return Err("must not contain '..' or empty path segments".to_owned());
    }
    Ok(())
}

pub fn check_component_version(version: &str) -> Result<(), String> {
    validation::token(version, VERSION_MAX)
}

/// Tags are used verbatim as `ref.tag` (or a semver range) by the templates, so only the
/// shape every such use shares is enforced: a short string without whitespace.
pub fn check_oci_tag(tag: &str) -> Result<(), String> {
    validation::token(tag, TAG_MAX)
}

/// Flux sources accept `oci://` registries and `https://` (or `http://`) Helm repositories.
pub fn check_oci_url(url: &str) -> Result<(), String> {
    validation::token(url, URL_MAX)?;
    let rest = ["oci://", "https://", "http://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .ok_or_else(|| "must start with oci://, https:// or http://".to_owned())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err("must name a host after the scheme".to_owned());
    }
    Ok(())
}

impl PlatformComponent {
    /// Rules across fields: a component cannot wait for itself, and a dependency is listed once.
    pub fn check_dependencies(&self) -> FieldErrors {
        let mut errors = FieldErrors::new();
        let mut seen = HashSet::new();
        for (i, dependency) in self.depends_on.iter().enumerate() {
            let field = format!("depends_on[{i}]");
            if *dependency == self.id {
                errors.add(
                    field,
                    format!("component {:?} cannot depend on itself", self.id.as_str()),
                );
            } else if !seen.insert(dependency) {
                errors.add(
                    field,
                    format!("{:?} is listed more than once", dependency.as_str()),
                );
            }
        }
        errors
    }
}

/// An order of `components` in which every component comes after those of its
/// dependencies that are also in the list, or the first dependency cycle found, as the ids
/// along it with the first repeated at the end (`a -> b -> a`).
pub fn dependency_order(components: &[PlatformComponent]) -> Result<Vec<usize>, Vec<ComponentId>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    let index: std::collections::HashMap<&ComponentId, usize> = components
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.id, i))
        .collect();
    let mut marks = vec![Mark::New; components.len()];
    let mut order = Vec::with_capacity(components.len());
    // Iterative depth-first search: catalogs can be deep enough to make recursion a risk.
    for start in 0..components.len() {
        if marks[start] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::Visiting;
        while let Some((node, next_dependency)) = stack.pop() {
            let dependencies = &components[node].depends_on;
            if next_dependency < dependencies.len() {
                stack.push((node, next_dependency + 1));
                let Some(&dependency) = index.get(&dependencies[next_dependency]) else {
                    continue;
                };
                match marks[dependency] {
                    Mark::New => {
                        marks[dependency] = Mark::Visiting;
                        stack.push((dependency, 0));
                    }
                    Mark::Visiting => {
                        let from = stack
                            .iter()
                            .position(|(n, _)| *n == dependency)
                            .unwrap_or(0);
                        let mut cycle: Vec<ComponentId> = stack[from..]
                            .iter()
                            .map(|(n, _)| components[*n].id.clone())
                            .collect();
                        cycle.push(components[dependency].id.clone());
                        return Err(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                order.push(node);
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::component;

    #[test]
    fn component_paths_stay_inside_the_artifact() {
        for ok in ["cert-manager", "charts/cert-manager", "a/b/c"] {
            assert!(check_component_path(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/etc", "../x", "a/../b", "a//b", "a/", "a b", "a\\b"] {
            assert!(
                check_component_path(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn oci_urls_need_a_known_scheme_and_a_host() {
        for ok in [
            "oci://ghcr.io/org/charts",
            "https://charts.jetstack.io",
            "http://chartmuseum.local:8080/charts",
        ] {
            assert!(check_oci_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ghcr.io/org",
            "ftp://x",
            "oci://",
            "https:///path",
            "oci://a b",
        ] {
            assert!(check_oci_url(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn dependency_order_puts_dependencies_first() {
        let components = [
            component("c", &["b"]),
            component("a", &[]),
            component("b", &["a", "outside"]),
        ];
        let order: Vec<&str> = dependency_order(&components)
            .unwrap()
            .into_iter()
            .map(|i| components[i].id.as_str())
            .collect();
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[test]
    fn dependency_order_reports_the_cycle() {
        let components = [
            component("a", &["b"]),
            component("b", &["c"]),
            component("c", &["a"]),
            component("d", &[]),
        ];
        let cycle: Vec<String> = dependency_order(&components)
            .unwrap_err()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        assert_eq!(cycle, ["a", "b", "c", "a"]);
    }

    #[test]
    fn a_component_cannot_depend_on_itself_or_twice_on_the_same_one() {
        assert!(component("a", &["b", "c"]).check_dependencies().is_empty());
        let errors = component("a", &["b", "a", "b"]).check_dependencies();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["depends_on[1]", "depends_on[2]"]);
    }
}
