//! Collecting every problem of one input, so a client can fix them all in one round trip.

use std::fmt;

use super::Environments;

/// What validating a resource may depend on besides the resource itself: the deployment's
/// configuration, read once at start-up.
#[derive(Debug, Clone)]
pub struct Rules {
    pub environments: Environments,
}

/// One refused value. `field` is the value's path in the request document, written the way
/// clients write it (`platform_components[2].id`, `labels."app.kubernetes.io/name"`), because
/// the domain's field names are the API's field names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// All problems found in one input. Empty means valid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records the error of `result`, if any, under `field` and hands back the value.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    /// The same errors, each path placed under `prefix` (`clusters[2]` + `id`).
    pub fn prefixed(self, prefix: &str) -> FieldErrors {
        FieldErrors(
            self.0
                .into_iter()
                .map(|e| FieldError {
                    field: if e.field.starts_with('[') {
                        format!("{prefix}{}", e.field)
                    } else {
                        format!("{prefix}.{}", e.field)
                    },
                    message: e.message,
                })
                .collect(),
        )
    }

    pub fn extend(&mut self, other: FieldErrors) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// Why new content for a resource was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The document does not have the resource's shape: wrong types, unknown or missing
    /// fields, malformed JSON.
    #[error("malformed: {0}")]
    Malformed(FieldErrors),
    /// The document has the right shape but breaks a rule of the catalog.
    #[error("invalid: {0}")]
    Invalid(FieldErrors),
}

/// The path of a map entry, quoted when the key is not a plain identifier, so that
/// `labels."app.kubernetes.io/name"` cannot be misread as nested fields.
pub fn map_entry_path(map: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{map}.{key}")
    } else {
        format!("{map}.{key:?}")
    }
}

/// Characters no value that reaches Flux may hold, whatever else its rule allows: control
/// characters (Unicode category Cc) and format characters (Cf: zero-width spaces and
/// joiners, bidi overrides and isolates, the byte order mark, the soft hyphen, tag
/// characters...). They are invisible or reorder what is shown, so a Kubernetes object
/// holding one would not read as it is.
pub fn unseen(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_control() || c.general_category() == GeneralCategory::Format
}

/// The first character of `value` that [`unseen`] refuses, as a message.
fn refuse_unseen(value: &str) -> Result<(), String> {
    match value.chars().find(|c| unseen(*c)) {
        Some(c) => Err(format!(
            "must not contain control or invisible formatting characters (such as zero-width \
             or bidi controls), found U+{:04X}",
            c as u32
        )),
        None => Ok(()),
    }
}

/// A value with no spaces, control or format characters (versions, tags, paths): what a
/// template can drop into a YAML scalar or a URL without quoting surprises.
pub fn token(value: &str, max_chars: usize) -> Result<(), String> {
    not_empty_within(value, max_chars)?;
    refuse_unseen(value)?;
    if let Some(c) = value.chars().find(|c| c.is_whitespace()) {
        return Err(format!(
            "must not contain whitespace, found U+{:04X}",
            c as u32
        ));
    }
    Ok(())
}

/// Free text for people (image names and the like): no control or format characters, no
/// surrounding whitespace.
pub fn text(value: &str, max_chars: usize) -> Result<(), String> {
    not_empty_within(value, max_chars)?;
    refuse_unseen(value)?;
    if value.trim() != value {
        return Err("must not start or end with whitespace".to_owned());
    }
    Ok(())
}

fn not_empty_within(value: &str, max_chars: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let len = value.chars().count();
    if len > max_chars {
        return Err(format!("must be at most {max_chars} characters, got {len}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_every_problem_in_order() {
        let mut errors = FieldErrors::new();
        assert_eq!(errors.check("a", Ok::<_, String>(1)), Some(1));
        assert_eq!(errors.check::<i32, _>("b", Err("bad")), None);
        errors.add("c", "worse");
        assert_eq!(errors.to_string(), "b: bad; c: worse");
        assert!(errors.into_result(|| ()).is_err());
    }

    #[test]
    fn map_entry_paths_quote_keys_that_contain_separators() {
        assert_eq!(map_entry_path("labels", "app"), "labels.app");
        assert_eq!(
            map_entry_path("labels", "app.kubernetes.io/name"),
            "labels.\"app.kubernetes.io/name\""
        );
        assert_eq!(map_entry_path("labels", ""), "labels.\"\"");
    }

    #[test]
    fn tokens_refuse_whitespace_and_emptiness() {
        assert!(token("1.2.3", 10).is_ok());
        assert!(token("", 10).unwrap_err().contains("empty"));
        assert!(token("1 2", 10).unwrap_err().contains("whitespace"));
        assert!(token("a\u{7}", 10).unwrap_err().contains("control"));
        assert!(token("abcdef", 5).unwrap_err().contains("at most 5"));
    }

    #[test]
    fn text_allows_inner_spaces_but_not_padding() {
        assert!(text("ubuntu 24.04", 20).is_ok());
        assert!(text(" ubuntu", 20).is_err());
        assert!(text("a\nb", 20).is_err());
    }

    /// Control (Cc) and format (Cf) characters, named by code point, in both kinds of value.
    #[test]
    fn control_and_format_characters_are_refused_by_code_point() {
        let refused = [
            ('\u{0}', "U+0000"),
            ('\u{1B}', "U+001B"),
            ('\u{7F}', "U+007F"),
            ('\u{85}', "U+0085"),
            ('\u{9B}', "U+009B"),
            ('\u{AD}', "U+00AD"),
            ('\u{61C}', "U+061C"),
            ('\u{200B}', "U+200B"),
            ('\u{200D}', "U+200D"),
            ('\u{200E}', "U+200E"),
            ('\u{202A}', "U+202A"),
            ('\u{202E}', "U+202E"),
            ('\u{2060}', "U+2060"),
            ('\u{2066}', "U+2066"),
            ('\u{2069}', "U+2069"),
            ('\u{FEFF}', "U+FEFF"),
            ('\u{FFF9}', "U+FFF9"),
            ('\u{E0001}', "U+E0001"),
            ('\u{E0041}', "U+E0041"),
        ];
        for (c, named) in refused {
            for check in [token, text] {
                let error = check(&format!("v1{c}.0"), 20)
                    .expect_err(&format!("U+{:04X} must be refused", c as u32));
                assert!(error.contains(named), "{error}");
            }
        }
        // Visible non-ASCII stays allowed in text (people's names) and tokens.
        assert!(text("Zoë Ångström", 20).is_ok());
        assert!(token("v1.0-ß", 20).is_ok());
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever surrounds it, a value holding a Cc or Cf character is refused, and one
        /// made only of visible characters without spaces is a token.
        #[test]
        fn any_control_or_format_character_is_refused(
            before in "[a-z0-9.\\-]{0,8}",
            after in "[a-z0-9.\\-]{0,8}",
            c in prop::sample::select(
                ('\0'..=char::MAX).filter(|c| unseen(*c)).collect::<Vec<_>>()
            ),
        ) {
            let value = format!("{before}{c}{after}");
            prop_assert!(token(&value, 64).is_err());
            prop_assert!(text(&value, 64).is_err());
        }

        #[test]
        fn visible_characters_pass(value in "[\\p{L}\\p{N}\\p{P}\\p{S}]{1,32}") {
            prop_assert!(value.chars().all(|c| !unseen(c)));
            prop_assert!(token(&value, 64).is_ok(), "{value:?}");
        }
    }
}
