//! Conditional requests (RFC 9110 section 13): `ETag`, `If-Match`, `If-None-Match`.
//!
//! A resource's entity tag is its revision in quotes (`"7"`): a strong validator, since
//! the representation is a function of the revision.

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderValue};

use super::error::ApiError;
use crate::domain::FieldErrors;
use crate::storage::{Preconditions, RevisionMatch};

pub fn etag(revision: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).expect("digits and quotes are a valid header")
}

/// An `If-Match` / `If-None-Match` value: `*`, or entity tags (`"7"`, `W/"7"`) separated
/// by commas. `None` when malformed.
fn entity_tags(value: &str) -> Option<EntityTags> {
    let value = value.trim();
    if value == "*" {
        return Some(EntityTags::Any);
    }
    let tags = value
        .split(',')
        .map(|tag| {
            let tag = tag.trim();
            let (weak, opaque) = match tag.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, tag),
            };
            let inner = opaque.strip_prefix('"')?.strip_suffix('"')?;
            (!inner.contains('"')).then(|| (weak, inner.parse::<i64>().ok()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(EntityTags::List(tags))
}

enum EntityTags {
    Any,
    /// (weak, the revision the tag names if it is one of ours)
    List(Vec<(bool, Option<i64>)>),
}

impl EntityTags {
    /// The revisions named; weak tags only count for weak comparison.
    fn revisions(&self, weak_allowed: bool) -> Option<Vec<i64>> {
        match self {
            Self::Any => None,
            Self::List(tags) => Some(
                tags.iter()
                    .filter(|(weak, _)| weak_allowed || !weak)
                    .filter_map(|(_, revision)| *revision)
                    .collect(),
            ),
        }
    }
}

fn header(request: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

fn malformed(name: &str) -> ApiError {
    ApiError::InvalidRequest(FieldErrors::single(
        name,
        "must be * or a comma-separated list of entity tags such as \"7\"",
    ))
}

/// The preconditions of a write, from its headers; 400 when one is malformed.
pub fn from_headers(request: &HttpRequest) -> Result<Preconditions, ApiError> {
    let if_match = match header(request, header::IF_MATCH) {
        None => None,
        Some(value) => {
            let tags = entity_tags(value).ok_or_else(|| malformed("If-Match"))?;
            // If-Match compares strongly: a weak tag never matches.
            Some(match tags.revisions(false) {
                None => RevisionMatch::Any,
                Some(list) => RevisionMatch::OneOf(list),
            })
        }
    };
    let if_none_match_any = match header(request, header::IF_NONE_MATCH) {
        None => false,
        Some(value) => match entity_tags(value).ok_or_else(|| malformed("If-None-Match"))? {
            EntityTags::Any => true,
            EntityTags::List(_) => {
                return Err(ApiError::InvalidRequest(FieldErrors::single(
                    "If-None-Match",
                    "on a write only * is meaningful (create only if absent)",
                )));
            }
        },
    };
    Ok(Preconditions {
        if_match,
        if_none_match_any,
        revision: None,
    })
}

/// Whether a GET's `If-None-Match` already has this revision (weak comparison), so the
/// answer is 304 Not Modified. A malformed value matches nothing.
pub fn not_modified(request: &HttpRequest, revision: i64) -> bool {
    match header(request, header::IF_NONE_MATCH).and_then(entity_tags) {
        Some(tags) => tags
            .revisions(true)
            .is_none_or(|list| list.contains(&revision)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_are_quoted_revisions() {
        let revisions = |value: &str, weak: bool| entity_tags(value).map(|t| t.revisions(weak));
        assert_eq!(revisions("\"3\"", false), Some(Some(vec![3])));
        assert_eq!(revisions("\"3\", \"5\"", false), Some(Some(vec![3, 5])));
        assert_eq!(revisions("*", false), Some(None));
        assert_eq!(
            revisions("W/\"3\"", false),
            Some(Some(vec![])),
            "If-Match compares strongly"
        );
        assert_eq!(revisions("W/\"3\"", true), Some(Some(vec![3])));
        assert_eq!(
            revisions("\"x\", \"\"", false),
            Some(Some(vec![])),
            "foreign tags match nothing"
        );
        for malformed in ["", "3", "\"3", "\"3\", ", "W/3", "\"a\"b\""] {
            assert!(
                entity_tags(malformed).is_none(),
                "{malformed:?} is not a list of entity tags"
            );
        }
        assert_eq!(etag(12).to_str().unwrap(), "\"12\"");
    }
}
