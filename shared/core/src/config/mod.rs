//! Loading and validating the configuration document.

mod model;
pub(crate) mod shape;
mod validate;

pub use model::*;

use std::fmt;

/// One problem in a configuration document: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigError {
    /// Field path, e.g. `pipelines[0].sweep.max_parallel`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl ConfigError {
    pub(crate) fn new(path: &str, message: String, fix: String) -> Self {
        let path = if path.is_empty() {
            "(document)".to_owned()
        } else {
            path.to_owned()
        };
        ConfigError { path, message, fix }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (fix: {})", self.path, self.message, self.fix)
    }
}

/// Every problem found in a configuration document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} configuration error(s):\n{}", .0.len(), .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// The JSON Schema of the configuration document.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
}

/// Parses and validates a YAML (or JSON) configuration document, reporting every error at once.
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let doc: serde_json::Value = serde_yaml::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        ConfigErrors(vec![ConfigError::new(
            "",
            format!("not valid YAML{at}: {e}"),
            "fix the YAML syntax (indentation, quotes, colons)".to_owned(),
        )])
    })?;
    let mut errors = shape::check(&schema(), &doc);
    let pruned = shape::without_unknown_fields(&doc, &errors);
    match serde_json::from_value::<Config>(pruned) {
        Ok(config) => {
            errors.extend(validate::validate(&config));
            if errors.is_empty() {
                return Ok(config);
            }
        }
        // Structural errors already explain why the document does not deserialize.
        Err(_) if !errors.is_empty() => {}
        Err(e) => errors.push(ConfigError::new(
            "",
            e.to_string(),
            "check the field against `retrain schema`".to_owned(),
        )),
    }
    Err(ConfigErrors(errors))
}
