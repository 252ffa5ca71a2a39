//! Reading one file: YAML syntax, `kind` dispatch, typed deserialization, and every unknown field.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::problem::{Position, Problem, TextEnd};
use super::spans::{SpanIndex, join_index, join_key};
use crate::document::API_VERSION;
use crate::document::action::ActionDocument;
use crate::document::playbook::PlaybookDocument;

/// A file's text, with the path it is reported under.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

pub enum Document {
    Playbook(Box<PlaybookDocument>),
    Action(Box<ActionDocument>),
}

/// A file that parsed, with the positions of its fields.
pub struct ParsedFile {
    pub path: PathBuf,
    pub spans: SpanIndex,
    pub document: Document,
}

/// Parses `source`, adding a problem for each thing wrong at this level; `None` when the file
/// could not be read into a document at all.
pub fn parse_source(source: &Source, problems: &mut Vec<Problem>) -> Option<ParsedFile> {
    let path = source.path.as_path();
    let value: serde_yaml::Value = match serde_yaml::from_str(&source.text) {
        Ok(v) => v,
        Err(e) => {
            problems.push(yaml_problem(path, &source.text, ".", &e));
            return None;
        }
    };
    let spans = SpanIndex::build(&source.text);
    let kind = value.get("kind").and_then(serde_yaml::Value::as_str);
    let Some(kind) = kind else {
        problems.push(Problem::new(
            path,
            spans.key_position("kind"),
            "kind",
            "missing; expected Playbook or Action",
        ));
        return None;
    };
    match value.get("apiVersion").and_then(serde_yaml::Value::as_str) {
        Some(API_VERSION) => {}
        Some(other) => problems.push(Problem::new(
            path,
            spans.value_position("apiVersion"),
            "apiVersion",
            format!("`{other}` is not supported; expected {API_VERSION}"),
        )),
        None => problems.push(Problem::new(
            path,
            Position::new(1, 1),
            "apiVersion",
            format!("missing; expected {API_VERSION}"),
        )),
    }
    let document = match kind {
        "Playbook" => Document::Playbook(Box::new(deserialize(source, &spans, problems)?)),
        "Action" => Document::Action(Box::new(deserialize(source, &spans, problems)?)),
        other => {
            problems.push(Problem::new(
                path,
                spans.value_position("kind"),
                "kind",
                format!("unknown kind `{other}`; expected Playbook or Action"),
            ));
            return None;
        }
    };
    Some(ParsedFile {
        path: source.path.clone(),
        spans,
        document,
    })
}

/// Deserializes into `T`, reporting every unknown field and the first type error.
pub(crate) fn deserialize<T: DeserializeOwned>(
    source: &Source,
    spans: &SpanIndex,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let path = source.path.as_path();
    let mut unknown = Vec::new();
    let deserializer = serde_yaml::Deserializer::from_str(&source.text);
    let mut record = |field: serde_ignored::Path<'_>| unknown.push(field_path(&field));
    let ignoring = serde_ignored::Deserializer::new(deserializer, &mut record);
    let result: Result<T, _> = serde_path_to_error::deserialize(ignoring);
    for field in unknown {
        let name = field.rsplit(['.', '[']).next().unwrap_or(&field).to_string();
        problems.push(Problem::new(
            path,
            spans.key_position(&field),
            field.clone(),
            format!("unknown field `{name}`"),
        ));
    }
    match result {
        Ok(document) => Some(document),
        Err(error) => {
            let field = error.path().to_string();
            let field = if field.is_empty() { ".".to_string() } else { field };
            problems.push(yaml_problem(path, &source.text, &field, error.inner()));
            None
        }
    }
}

/// A serde_yaml error as a problem at the error's own location, without the location repeated in
/// the message.
fn yaml_problem(path: &Path, text: &str, field: &str, error: &serde_yaml::Error) -> Problem {
    let position = error.location().map_or(Position::new(1, 1), |l| {
        TextEnd::of(text).clamp(Position::new(l.line(), l.column()))
    });
    let mut message = strip_locations(&error.to_string());
    if field != "."
        && let Some(rest) = message.strip_prefix(&format!("{field}: "))
    {
        message = rest.to_string();
    }
    Problem::new(path, position, field, message)
}

/// serde_ignored's path in this crate's notation (`spec.tree.children[0].foo`).
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => ".".to_string(),
        P::Seq { parent, index } => join_index(&field_path(parent), *index),
        P::Map { parent, key } => join_key(&field_path(parent), key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => field_path(parent),
    }
}

/// Removes every ` at line N column M` from a serde_yaml message: the position is reported apart.
fn strip_locations(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" at line ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + " at line ".len()..];
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let line_len = digits(after);
        let tail = &after[line_len..];
        rest = match tail.strip_prefix(" column ") {
            Some(col) if line_len > 0 => &col[digits(col)..],
            _ => {
                out.push_str(" at line ");
                after
            }
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{Position, Source, parse_source, strip_locations};

    #[test]
    fn strips_every_location() {
        assert_eq!(
            strip_locations(
                "did not find expected key at line 14 column 4, while parsing a block mapping at line 13 column 5"
            ),
            "did not find expected key, while parsing a block mapping"
        );
        assert_eq!(strip_locations("at line endings"), "at line endings");
    }

    #[test]
    fn a_scan_error_at_the_end_of_a_file_is_reported_inside_it() {
        // The fuzz target's crash: three lines, the last one unfinished.
        let source = Source {
            path: "x.yaml".into(),
            text: "apiVapiVersion: rootfix/v1\nkind: Action\nermeta".into(),
        };
        let mut problems = Vec::new();
        assert!(parse_source(&source, &mut problems).is_none());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].position, Position::new(3, 7), "{:?}", problems[0]);
    }
}
