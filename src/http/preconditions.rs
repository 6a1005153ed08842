//! Conditional requests (RFC 9110 section 13): `ETag`, `If-Match`, `If-None-Match`.
//!
//! A resource's entity tag is its revision in quotes (`"7"`): a strong validator, since
//! the representation is a function of the revision.

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderValue};

use crate::storage::{Preconditions, RevisionMatch};

pub fn etag(revision: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).expect("digits and quotes are a valid header")
}

/// The revisions a list of entity tags names; `None` for `*`. Tags that are not revisions
/// of this service (or are weak, for `If-Match`'s strong comparison) name nothing.
fn revisions(value: &str, weak_allowed: bool) -> Option<Vec<i64>> {
    if value.trim() == "*" {
        return None;
    }
    Some(
        value
            .split(',')
            .filter_map(|tag| {
                let tag = tag.trim();
                let tag = match tag.strip_prefix("W/") {
                    Some(weak) if weak_allowed => weak,
                    Some(_) => return None,
                    None => tag,
                };
                tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
            })
            .collect(),
    )
}

fn header(request: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The preconditions of a write, from its headers.
pub fn from_headers(request: &HttpRequest) -> Preconditions {
    Preconditions {
        if_match: header(request, header::IF_MATCH).map(|value| match revisions(value, false) {
            None => RevisionMatch::Any,
            Some(list) => RevisionMatch::OneOf(list),
        }),
        if_none_match_any: header(request, header::IF_NONE_MATCH).is_some_and(|v| v.trim() == "*"),
        revision: None,
    }
}

/// Whether a GET's `If-None-Match` already has this revision (weak comparison), so the
/// answer is 304 Not Modified.
pub fn not_modified(request: &HttpRequest, revision: i64) -> bool {
    match header(request, header::IF_NONE_MATCH).map(|v| revisions(v, true)) {
        Some(None) => true,
        Some(Some(list)) => list.contains(&revision),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_are_quoted_revisions() {
        assert_eq!(revisions("\"3\"", false), Some(vec![3]));
        assert_eq!(revisions("\"3\", \"5\"", false), Some(vec![3, 5]));
        assert_eq!(revisions("*", false), None);
        assert_eq!(
            revisions("W/\"3\"", false),
            Some(vec![]),
            "If-Match compares strongly"
        );
        assert_eq!(revisions("W/\"3\"", true), Some(vec![3]));
        assert_eq!(
            revisions("3, \"x\", \"\"", false),
            Some(vec![]),
            "unquoted or foreign tags match nothing"
        );
        assert_eq!(etag(12).to_str().unwrap(), "\"12\"");
    }
}
