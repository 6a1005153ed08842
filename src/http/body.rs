//! Reading request bodies and query strings into typed values, with errors that name the
//! offending field instead of a line and column.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::domain::validation::map_entry_path;
use crate::domain::{FieldError, FieldErrors};

/// Which media types a body may be sent as. A body must say which: without a
/// `Content-Type` it is refused, since a browser sends such a body cross-site without
/// asking first (as it does form and `text/plain` bodies).
#[derive(Debug, Clone, Copy)]
pub enum MediaTypes {
    /// `application/json`.
    Json,
    /// `application/merge-patch+json` (RFC 7396), or `application/json` for clients that
    /// cannot set that one.
    MergePatch,
}

impl MediaTypes {
    fn accepts(self, essence: &str) -> bool {
        match self {
            Self::Json => essence == "application/json",
            Self::MergePatch => {
                essence == "application/merge-patch+json" || essence == "application/json"
            }
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::Json => "Content-Type: application/json",
            Self::MergePatch => "Content-Type: application/merge-patch+json (or application/json)",
        }
    }
}

/// What a request body may be (settings `http.max_body_bytes`, `http.body_timeout_ms`,
/// `http.max_json_depth`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    /// From the first byte read to the last: a client trickling its body is cut off.
    pub timeout: Duration,
    pub max_depth: usize,
}

/// Reads the whole body, refusing it before buffering when it is declared or turns out to
/// be larger than the limit, when it does not arrive in time, when it nests too deep, or
/// when it is of a media type this endpoint does not take.
pub async fn read(
    request: &HttpRequest,
    mut payload: Payload,
    limits: &BodyLimits,
    media_types: MediaTypes,
) -> Result<Bytes, ApiError> {
    let limit = limits.max_bytes;
    let Some(content_type) = request.headers().get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType {
            given: None,
            expected: media_types.expected(),
        });
    };
    let given = content_type.to_str().unwrap_or("(not text)").to_owned();
    let essence = given
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !media_types.accepts(&essence) {
        return Err(ApiError::UnsupportedMediaType {
            given: Some(given),
            expected: media_types.expected(),
        });
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    let deadline = tokio::time::Instant::now() + limits.timeout;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => return Err(ApiError::BodyTimeout(limits.timeout)),
        };
        let chunk =
            chunk.map_err(|e| ApiError::MalformedJson(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    if nesting_depth(&body) > limits.max_depth {
        return Err(ApiError::MalformedJson(format!(
            "the document nests objects and arrays deeper than {} levels (http.max_json_depth)",
            limits.max_depth
        )));
    }
    Ok(body.freeze())
}

/// How deep objects and arrays nest in a JSON text (brackets inside strings do not count).
/// Malformed text gets some number; the parser reports what is wrong with it.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Parses a JSON document into `T`: malformed JSON is `MALFORMED_JSON`, a document of the
/// wrong shape is `INVALID_REQUEST` naming the field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        if error.inner().is_data() {
            ApiError::InvalidRequest(single(field_error(&error)))
        } else if bytes.iter().all(u8::is_ascii_whitespace) {
            ApiError::MalformedJson("the body is empty; send a JSON document".to_owned())
        } else {
            ApiError::MalformedJson(error.inner().to_string())
        }
    })?;
    deserializer.end().map_err(|e| {
        ApiError::MalformedJson(format!("unexpected data after the JSON document: {e}"))
    })?;
    refuse_duplicate_keys(bytes)?;
    Ok(value)
}

/// serde_json keeps the last of an object's duplicate keys without a word (and typed
/// structs refuse them only at their own level), so a patch value sent twice would be half
/// lost. Any object with a key twice, at any depth, is refused, naming the object.
fn refuse_duplicate_keys(bytes: &[u8]) -> Result<(), ApiError> {
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

    struct UniqueKeys;

    impl<'de> Deserialize<'de> for UniqueKeys {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(UniqueKeys)
        }
    }

    impl<'de> Visitor<'de> for UniqueKeys {
        type Value = UniqueKeys;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
            Ok(UniqueKeys)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
            Ok(UniqueKeys)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
            Ok(UniqueKeys)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
            Ok(UniqueKeys)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self, E> {
            Ok(UniqueKeys)
        }
        fn visit_unit<E>(self) -> Result<Self, E> {
            Ok(UniqueKeys)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self, A::Error> {
            while items.next_element::<UniqueKeys>()?.is_some() {}
            Ok(UniqueKeys)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = entries.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(de::Error::custom(format!("duplicate key {key:?}")));
                }
                entries.next_value::<UniqueKeys>()?;
            }
            Ok(UniqueKeys)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize::<_, UniqueKeys>(&mut deserializer)
        .map(|_| ())
        .map_err(|error| ApiError::InvalidRequest(single(field_error(&error))))
}

/// Parses a JSON object, for partial updates.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match parse::<Value>(bytes)? {
        Value::Object(map) => Ok(map),
        other => Err(not_an_object(&other)),
    }
}

/// Parses a resource document, which must be a JSON object. (serde would also fill a
/// struct from an array, which would turn `[1, 2]` into an error about `[0]`.)
pub fn parse_document<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(not_an_object(&parse::<Value>(bytes)?));
    }
    parse(bytes)
}

fn not_an_object(value: &Value) -> ApiError {
    ApiError::InvalidRequest(FieldErrors::single(
        "body",
        format!("must be a JSON object, got {}", json_type(value)),
    ))
}

/// Turns a document assembled by the server (stored resource plus a client's partial
/// update) into `T`, naming the field that does not fit.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, FieldErrors> {
    serde_path_to_error::deserialize(value).map_err(|error| single(field_error(&error)))
}

/// Parses a query string into `T` (which should deny unknown fields), naming the parameter.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    // PostgreSQL text cannot hold NUL, so no stored value can match one.
    if let Some((name, _)) = form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        return Err(ApiError::InvalidRequest(FieldErrors::single(
            name.replace('\0', "\\0"),
            "must not contain NUL characters",
        )));
    }
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let mut field = path_string(error.path());
        let message = error.inner().to_string();
        if let Some(name) = missing_field(&message).or_else(|| unknown_field(&message)) {
            field = name.to_owned();
        }
        ApiError::InvalidRequest(FieldErrors::single(
            if field.is_empty() { "query" } else { &field },
            message,
        ))
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn path_string(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out = if out.is_empty() && is_plain(key) {
                    key.clone()
                } else if out.is_empty() {
                    format!("{key:?}")
                } else {
                    map_entry_path(&out, key)
                };
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// serde reports "missing field `x`" at the level of the enclosing object (an unknown or
/// duplicate field's path already ends with it); the client wants the field itself.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// Query strings are flat, and serde_urlencoded reports unknown keys without a path.
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
}

fn field_error(error: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let raw = error.inner().to_string();
    // serde_json appends " at line L column C", meaningless to a client that sent one line.
    let message = match raw.rfind(" at line ") {
        Some(at) => raw[..at].to_owned(),
        None => raw,
    };
    let mut field = path_string(error.path());
    if let Some(name) = missing_field(&message) {
        field = if field.is_empty() {
            name.to_owned()
        } else {
            map_entry_path(&field, name)
        };
    }
    if field.is_empty() {
        field = "body".to_owned();
    }
    FieldError { field, message }
}

fn single(error: FieldError) -> FieldErrors {
    FieldErrors::single(error.field, error.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        id: String,
        items: Vec<Item>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        enabled: bool,
    }

    fn invalid(body: &str) -> (String, String) {
        match parse_document::<Doc>(body.as_bytes()) {
            Err(ApiError::InvalidRequest(errors)) => {
                let e = errors.iter().next().unwrap();
                (e.field.clone(), e.message.clone())
            }
            other => panic!("{body}: expected INVALID_REQUEST, got {other:?}"),
        }
    }

    #[test]
    fn nesting_depth_counts_brackets_outside_strings_only() {
        assert_eq!(nesting_depth(br#"{}"#), 1);
        assert_eq!(nesting_depth(br#"{"a": [1, {"b": []}], "c": {}}"#), 4);
        assert_eq!(nesting_depth(br#"{"a": "[[[{{{", "b": "\"[["}"#), 1);
        assert_eq!(nesting_depth(br#""no nesting""#), 0);
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(nesting_depth(deep.as_bytes()), 200);
    }

    #[test]
    fn errors_name_the_field_not_the_position() {
        let (field, message) =
            invalid(r#"{"id": "a", "items": [{"enabled": true}, {"enabled": "yes"}]}"#);
        assert_eq!(field, "items[1].enabled");
        assert!(
            message.starts_with("invalid type: string \"yes\", expected a boolean"),
            "{message}"
        );
        assert!(!message.contains("line"), "{message}");
    }

    #[test]
    fn missing_and_unknown_fields_are_named_themselves() {
        assert_eq!(invalid(r#"{"items": []}"#).0, "id");
        assert_eq!(
            invalid(r#"{"id": "a", "items": [{"enabled": true, "extra": 1}]}"#).0,
            "items[0].extra"
        );
        assert_eq!(invalid(r#"{"id": "a", "items": [], "nope": 1}"#).0, "nope");
    }

    #[test]
    fn map_keys_with_separators_are_quoted() {
        let (field, _) =
            invalid(r#"{"id": "a", "items": [], "labels": {"app.kubernetes.io/name": 3}}"#);
        assert_eq!(field, r#"labels."app.kubernetes.io/name""#);
    }

    #[test]
    fn the_wrong_root_type_names_the_body() {
        assert_eq!(
            invalid("[1, 2]"),
            (
                "body".to_owned(),
                "must be a JSON object, got an array".to_owned()
            )
        );
        assert!(matches!(
            parse_document::<Doc>(b"nonsense"),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn malformed_json_and_empty_bodies_are_told_apart() {
        assert!(matches!(
            parse::<Doc>(b"{\"id\": "),
            Err(ApiError::MalformedJson(_))
        ));
        match parse::<Doc>(b"  ") {
            Err(ApiError::MalformedJson(m)) => assert!(m.contains("empty"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(parse::<Value>(b"{} {}"), Err(ApiError::MalformedJson(_))),
            "trailing data"
        );
    }

    #[test]
    fn a_key_sent_twice_is_refused_at_any_depth() {
        let field = |body: &str| match parse::<Value>(body.as_bytes()) {
            Err(ApiError::InvalidRequest(e)) => {
                let e = e.iter().next().unwrap();
                (e.field.clone(), e.message.clone())
            }
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(
            field(r#"{"patches": {"loki": {"replicas": 1, "replicas": 2}}}"#),
            (
                "patches.loki".to_owned(),
                "duplicate key \"replicas\"".to_owned()
            )
        );
        assert_eq!(field(r#"{"id": "a", "id": "b"}"#).0, "body");
        assert_eq!(field(r#"{"a": [{"k": 1, "k": 1}]}"#).0, "a[0]");
        assert!(parse::<Value>(br#"{"a": {"k": 1}, "b": {"k": 1}}"#).is_ok());
    }

    #[test]
    fn query_errors_name_the_parameter() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Query {
            limit: Option<i64>,
        }
        let field = |q: &str| match parse_query::<Query>(q) {
            Err(ApiError::InvalidRequest(e)) => e.iter().next().unwrap().field.clone(),
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(field("limit=abc"), "limit");
        assert_eq!(field("limt=5"), "limt");
        assert!(parse_query::<Query>("limit=5").is_ok());
        assert!(parse_query::<Query>("").is_ok());
    }
}
