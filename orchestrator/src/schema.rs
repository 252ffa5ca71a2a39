//! JSON Schemas of `kind: Playbook` and `kind: Action`, generated from [`crate::document`], and
//! the HTTP API's OpenAPI document (`openapi.json`, from [`crate::server::openapi`]).
//!
//! Every object is closed (`additionalProperties: false`), as the loader rejects unknown fields.
//! The generated files are committed under `schemas/` for editors and clients; a test fails when
//! they are stale.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use crate::document::action::ActionDocument;
use crate::document::playbook::PlaybookDocument;

/// File name → pretty JSON, for every kind and the OpenAPI document.
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("playbook.schema.json", render::<PlaybookDocument>("Playbook")),
        ("action.schema.json", render::<ActionDocument>("Action")),
        ("openapi.json", crate::server::openapi::render()),
    ]
}

fn render<T: schemars::JsonSchema>(kind: &str) -> String {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut value = schema.to_value();
    close_objects(&mut value);
    if let Some(root) = value.as_object_mut() {
        root.insert(
            "$id".into(),
            Value::String(format!(
                "https://rootfix.dev/schemas/{}.schema.json",
                kind.to_lowercase()
            )),
        );
        if let Some(Value::Object(props)) = root.get_mut("properties") {
            props.insert("kind".into(), serde_json::json!({"const": kind}));
            props.insert(
                "apiVersion".into(),
                serde_json::json!({"const": crate::document::API_VERSION}),
            );
        }
    }
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

pub(crate) fn close_objects(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let is_object = map.get("type").is_some_and(|t| {
                t == "object"
                    || t.as_array()
                        .is_some_and(|types| types.iter().any(|t| t == "object"))
            });
            let is_object_with_properties = is_object && map.contains_key("properties");
            if is_object_with_properties && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for child in map.values_mut() {
                close_objects(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}
