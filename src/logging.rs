//! Log output: env_logger's text lines (the default), or, with
//! `FLUX_CATALOG_LOG_FORMAT=json`, one JSON object per line for log pipelines: `time`,
//! `level`, `target`, `message`, and a record's key-values as keys of their own (an access
//! line's `client`, `method`, `path`, `status`, `duration_ms`, `request_id`...). Levels and
//! targets are filtered by `RUST_LOG` in both. Imports nothing of the crate.

use std::io::Write;
use std::str::FromStr;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Chooses the format, like the settings key `log_format`; read directly when the
/// settings cannot be, so that their error is itself logged in the chosen format.
pub const FORMAT_VARIABLE: &str = "FLUX_CATALOG_LOG_FORMAT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("must be \"text\" or \"json\", got {other:?}")),
        }
    }
}

/// Installs the logger; `RUST_LOG` filters (default: `info`).
pub fn init(format: Format) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == Format::Json {
        builder.format(|out, record| {
            writeln!(out, "{}", json_line(record, OffsetDateTime::now_utc()))
        });
    }
    builder.init();
}

/// The format the environment asks for; text when unset or unknown (the settings then
/// refuse the unknown value).
pub fn format_from_env() -> Format {
    std::env::var(FORMAT_VARIABLE)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(Format::Text)
}

/// One record as a JSON object on one line (serde_json escapes every control character).
fn json_line(record: &log::Record<'_>, at: OffsetDateTime) -> String {
    let mut object = Map::new();
    object.insert(
        "time".into(),
        at.format(&Rfc3339)
            .unwrap_or_else(|_| at.unix_timestamp().to_string())
            .into(),
    );
    object.insert("level".into(), record.level().as_str().into());
    object.insert("target".into(), record.target().into());
    object.insert("message".into(), record.args().to_string().into());
    let mut fields = Fields(&mut object);
    // A visitor that never fails.
    let _ = record.key_values().visit(&mut fields);
    Value::Object(object).to_string()
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(n) = value.to_i64() {
            n.into()
        } else if let Some(n) = value.to_f64() {
            // Milliseconds to the microsecond are enough.
            ((n * 1000.0).round() / 1000.0).into()
        } else if let Some(b) = value.to_bool() {
            b.into()
        } else if let Some(s) = value.to_borrowed_str() {
            s.into()
        } else if value.to_string() == "None" {
            Value::Null
        } else {
            value.to_string().into()
        };
        // The record's own keys win: a field cannot overwrite `message` or `level`.
        self.0.entry(key.as_str().to_owned()).or_insert(json);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_line_of_json_with_its_fields_as_keys() {
        let line = json_line(
            &log::Record::builder()
                .level(log::Level::Info)
                .target("flux_catalog::access")
                .args(format_args!("a \"quoted\"\nmessage"))
                .key_values(&[
                    ("status", log::kv::Value::from(200u16)),
                    ("client", log::kv::Value::from("127.0.0.1")),
                    ("duration_ms", log::kv::Value::from(1.23456f64)),
                    ("size", log::kv::Value::null()),
                    ("message", log::kv::Value::from("forged")),
                ])
                .build(),
            OffsetDateTime::UNIX_EPOCH,
        );
        assert!(!line.contains('\n'), "{line}");
        let object: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(object["time"], "1970-01-01T00:00:00Z");
        assert_eq!(object["level"], "INFO");
        assert_eq!(object["target"], "flux_catalog::access");
        assert_eq!(object["message"], "a \"quoted\"\nmessage");
        assert_eq!(object["status"], 200);
        assert_eq!(object["client"], "127.0.0.1");
        assert_eq!(object["duration_ms"], 1.235);
        assert_eq!(object["size"], Value::Null);
    }

    #[test]
    fn only_text_and_json_are_formats() {
        assert_eq!("json".parse(), Ok(Format::Json));
        assert_eq!("text".parse(), Ok(Format::Text));
        assert!("JSON".parse::<Format>().is_err());
    }
}
