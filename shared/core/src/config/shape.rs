//! Structural check of a config document against the config's own JSON
//! Schema: unknown fields (with "did you mean"), missing fields and wrong
//! types, all of them in one pass. serde alone stops at the first error.

use super::ConfigError;
use serde_json::{Map, Value};

/// Checks `doc` against `schema` (as produced by schemars) and returns every problem found.
pub fn check(schema: &Value, doc: &Value) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    Walker { root: schema }.walk(schema, doc, "", &mut errors);
    errors
}

/// `doc` without the fields `check` reported as unknown, so the rest can
/// still be checked for meaning in the same run.
pub fn without_unknown_fields(doc: &Value, errors: &[ConfigError]) -> Value {
    let mut pruned = doc.clone();
    for e in errors.iter().filter(|e| e.message.starts_with("unknown field")) {
        let mut segments = pointer_segments(&e.path);
        let Some(last) = segments.pop() else { continue };
        let parent = if segments.is_empty() {
            String::new()
        } else {
            format!("/{}", segments.join("/"))
        };
        if let Some(Value::Object(map)) = pruned.pointer_mut(&parent) {
            map.remove(&last);
        }
    }
    pruned
}

/// `pipelines[0].sweep.grid` → `["pipelines", "0", "sweep", "grid"]`.
fn pointer_segments(path: &str) -> Vec<String> {
    path.split('.')
        .flat_map(|part| {
            let mut pieces = part.split('[');
            let head = pieces.next().unwrap_or_default().to_owned();
            std::iter::once(head)
                .chain(pieces.map(|p| p.trim_end_matches(']').to_owned()))
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .map(|s| s.replace('~', "~0").replace('/', "~1"))
        .collect()
}

struct Walker<'a> {
    root: &'a Value,
}

impl<'a> Walker<'a> {
    fn resolve(&self, schema: &'a Value) -> &'a Value {
        let mut s = schema;
        // Bounded: schemars never chains references more than a few deep.
        for _ in 0..8 {
            match s.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let pointer = r.trim_start_matches('#');
                    match self.root.pointer(pointer) {
                        Some(target) => s = target,
                        None => return s,
                    }
                }
                None => return s,
            }
        }
        s
    }

    fn walk(&self, schema: &'a Value, doc: &Value, path: &str, errors: &mut Vec<ConfigError>) {
        let schema = self.resolve(schema);
        if let Some(branches) = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(Value::as_array) {
            self.walk_alternatives(branches, doc, path, errors);
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(doc) {
                errors.push(ConfigError::new(
                    path,
                    format!("{} is not allowed", short(doc)),
                    format!("use one of {}", list(allowed)),
                ));
            }
            return;
        }
        if let Some(constant) = schema.get("const") {
            if constant != doc {
                errors.push(ConfigError::new(
                    path,
                    format!("{} is not allowed", short(doc)),
                    format!("use {constant}"),
                ));
            }
            return;
        }
        if !type_matches(schema.get("type"), doc) {
            let expected = describe_type(schema.get("type"));
            errors.push(ConfigError::new(
                path,
                format!("expected {expected}, found {}", kind_of(doc)),
                format!("write {expected} here"),
            ));
            return;
        }
        match doc {
            Value::Object(map) => self.walk_object(schema, map, path, errors),
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item_schema, item, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            _ => {}
        }
    }

    fn walk_alternatives(&self, branches: &'a [Value], doc: &Value, path: &str, errors: &mut Vec<ConfigError>) {
        let mut best: Option<Vec<ConfigError>> = None;
        for branch in branches {
            let mut found = Vec::new();
            self.walk(branch, doc, path, &mut found);
            if found.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|b| found.len() < b.len()) {
                best = Some(found);
            }
        }
        // Documented enum variants become one `const` branch each: list them.
        let choices: Option<Vec<Value>> = branches
            .iter()
            .map(|b| {
                let b = self.resolve(b);
                b.get("const")
                    .map(|c| vec![c.clone()])
                    .or_else(|| b.get("enum").and_then(Value::as_array).cloned())
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.concat());
        if let Some(choices) = choices {
            errors.push(ConfigError::new(
                path,
                format!("{} is not allowed", short(doc)),
                format!("use one of {}", list(&choices)),
            ));
            return;
        }
        // An optional section of the right kind: its own errors name the field.
        let same_kind: Vec<&Value> = branches
            .iter()
            .filter(|b| {
                let t = self.resolve(b).get("type");
                t.is_some_and(|t| t != "null") && type_matches(t, doc) && matches!(doc, Value::Object(_))
            })
            .collect();
        if let [branch] = same_kind[..] {
            self.walk(branch, doc, path, errors);
            return;
        }
        // Scalars and nullable fields: one message naming what fits reads better
        // than the first branch's complaint.
        let all_scalar = branches.iter().all(|b| {
            let b = self.resolve(b);
            b.get("type").is_some_and(|t| t.is_string() || t.is_array())
        });
        if all_scalar {
            let names: Vec<String> = branches.iter().map(|b| describe_type(self.resolve(b).get("type"))).collect();
            let expected = names.join(" or ");
            errors.push(ConfigError::new(
                path,
                format!("expected {expected}, found {}", kind_of(doc)),
                format!("write {expected} here"),
            ));
        } else if let Some(found) = best {
            errors.extend(found);
        }
    }

    fn walk_object(&self, schema: &'a Value, map: &Map<String, Value>, path: &str, errors: &mut Vec<ConfigError>) {
        let empty = Map::new();
        let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    let field = join(path, name);
                    let hint = properties
                        .get(name)
                        .map(|s| self.resolve(s))
                        .and_then(|s| s.get("description"))
                        .and_then(Value::as_str)
                        .map(first_sentence)
                        .unwrap_or_default();
                    errors.push(ConfigError::new(
                        &field,
                        "is required but missing".to_owned(),
                        format!("add `{name}`{}", if hint.is_empty() { String::new() } else { format!(": {hint}") }),
                    ));
                }
            }
        }
        let additional = schema.get("additionalProperties");
        for (key, value) in map {
            let field = join(path, key);
            if let Some(property) = properties.get(key) {
                self.walk(property, value, &field, errors);
            } else {
                match additional {
                    Some(Value::Bool(false)) => errors.push(unknown_field(&field, key, properties)),
                    Some(s @ Value::Object(_)) => self.walk(s, value, &field, errors),
                    _ if !properties.is_empty() => errors.push(unknown_field(&field, key, properties)),
                    _ => {}
                }
            }
        }
    }
}

fn unknown_field(field: &str, key: &str, known: &Map<String, Value>) -> ConfigError {
    let closest = known
        .keys()
        .map(|k| (strsim::jaro_winkler(k, key), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.clone());
    let names: Vec<&String> = known.keys().collect();
    let fix = match closest {
        Some(k) => format!("did you mean `{k}`?"),
        None => format!(
            "remove it; known fields here: {}",
            names.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        ),
    };
    ConfigError::new(field, format!("unknown field `{key}`"), fix)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_matches(ty: Option<&Value>, doc: &Value) -> bool {
    match ty {
        None => true,
        Some(Value::String(t)) => one_type_matches(t, doc),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(|t| one_type_matches(t, doc)),
        Some(_) => true,
    }
}

fn one_type_matches(t: &str, doc: &Value) -> bool {
    match t {
        "object" => doc.is_object(),
        "array" => doc.is_array(),
        "string" => doc.is_string(),
        "boolean" => doc.is_boolean(),
        "null" => doc.is_null(),
        "integer" => doc.is_i64() || doc.is_u64(),
        "number" => doc.is_number(),
        _ => true,
    }
}

fn describe_type(ty: Option<&Value>) -> String {
    let one = |t: &str| match t {
        "object" => "a mapping",
        "array" => "a list",
        "string" => "a string",
        "boolean" => "true or false",
        "null" => "nothing",
        "integer" => "a whole number",
        "number" => "a number",
        _ => "a value",
    };
    match ty {
        Some(Value::String(t)) => one(t).to_owned(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "a value".to_owned(),
    }
}

fn kind_of(doc: &Value) -> String {
    match doc {
        Value::Null => "nothing".to_owned(),
        Value::Bool(_) => "true/false".to_owned(),
        Value::Number(_) => format!("the number {doc}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

fn short(doc: &Value) -> String {
    let s = doc.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

fn list(values: &[Value]) -> String {
    values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

fn first_sentence(s: &str) -> String {
    s.split_inclusive(". ").next().unwrap_or(s).trim().trim_end_matches('.').to_owned()
}
