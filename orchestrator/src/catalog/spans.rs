//! Where each field of a YAML document was written.
//!
//! serde_yaml gives typed values but no positions; this module replays the same text through
//! yaml-rust2's event parser and records, for every field path (`spec.tree.children[0].when`), the
//! position of its key and of its value. The checks then report problems at the exact place.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::problem::{Position, TextEnd};

/// How a scalar was written; needed to map an offset inside its text back to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    /// `|` or `>`: the text starts on the next line.
    Block,
}

/// Position of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpan {
    /// Where the key was written (absent for sequence items and the root).
    pub key: Option<Position>,
    /// Where the value starts.
    pub value: Position,
    /// Set when the value is a scalar.
    pub style: Option<ScalarStyle>,
}

/// Field path → span, for one document.
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    spans: HashMap<String, FieldSpan>,
    /// For each block scalar (`|`, `>`): its content lines as (line, column of the first
    /// character, characters).
    blocks: HashMap<String, Vec<(usize, usize, usize)>>,
}

impl SpanIndex {
    /// Indexes `text`; a text that does not parse gives an empty index (serde_yaml reports the error).
    pub fn build(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        let end = TextEnd::of(text);
        for span in builder.spans.values_mut() {
            span.value = end.clamp(span.value);
            span.key = span.key.map(|k| end.clamp(k));
        }
        let lines: Vec<&str> = text.lines().collect();
        let blocks = builder
            .spans
            .iter()
            .filter(|(_, span)| span.style == Some(ScalarStyle::Block))
            .map(|(path, span)| (path.clone(), block_lines(&lines, span.value.line)))
            .collect();
        Self {
            spans: builder.spans,
            blocks,
        }
    }

    pub fn get(&self, path: &str) -> Option<&FieldSpan> {
        self.spans.get(path)
    }

    /// Position of the key of `path` if it has one, else of its value; falls back to the nearest
    /// ancestor that was written, then to the start of the file.
    pub fn key_position(&self, path: &str) -> Position {
        self.nearest(path, |span| span.key.unwrap_or(span.value))
    }

    /// Position of the value of `path`, or of the nearest ancestor that was written.
    pub fn value_position(&self, path: &str) -> Position {
        self.nearest(path, |span| span.value)
    }

    /// Position of the character at `offset` (in chars) inside the scalar value of `path`, for
    /// single-line plain and quoted scalars; other styles point at the value's start line.
    pub fn position_in_value(&self, path: &str, line_in_value: usize, col_in_value: usize) -> Position {
        let Some(span) = self.spans.get(path) else {
            return self.value_position(path);
        };
        match span.style {
            Some(ScalarStyle::Plain) if line_in_value <= 1 => Position::new(
                span.value.line,
                span.value.column + col_in_value.saturating_sub(1),
            ),
            Some(ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted) if line_in_value <= 1 => {
                Position::new(span.value.line, span.value.column + col_in_value)
            }
            Some(ScalarStyle::Block) => self.position_in_block(path, span, line_in_value, col_in_value),
            _ => span.value,
        }
    }

    /// In a block scalar, each content line gave its text and one separator (a newline for `|`,
    /// a space for `>`): a column of the first line may run on into the next ones.
    fn position_in_block(&self, path: &str, span: &FieldSpan, line: usize, column: usize) -> Position {
        let lines = self.blocks.get(path).map(Vec::as_slice).unwrap_or_default();
        let Some(rest) = lines.get(line.saturating_sub(1)..) else {
            return span.value;
        };
        let mut column = column.max(1);
        for &(file_line, first, chars) in rest {
            if column <= chars + 1 {
                return Position::new(file_line, first + column - 1);
            }
            column -= chars + 1;
        }
        span.value
    }

    fn nearest(&self, path: &str, pick: impl Fn(&FieldSpan) -> Position) -> Position {
        let mut current = path;
        loop {
            if let Some(span) = self.spans.get(current) {
                return pick(span);
            }
            match parent_path(current) {
                Some(parent) => current = parent,
                None => return Position::new(1, 1),
            }
        }
    }
}

/// The content lines of a block scalar whose text starts on 1-based line `start` (where
/// yaml-rust2 marks it): that line and the next ones indented at least as much (or blank).
fn block_lines(lines: &[&str], start: usize) -> Vec<(usize, usize, usize)> {
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let after = lines.iter().enumerate().skip(start.saturating_sub(1));
    let Some(first) = after.clone().map(|(_, l)| *l).find(|l| !l.trim().is_empty()) else {
        return Vec::new();
    };
    let width = indent(first);
    after
        .take_while(|(_, l)| l.trim().is_empty() || indent(l) >= width)
        .map(|(i, l)| {
            let content = l.get(width..).unwrap_or_default();
            (i + 1, width + 1, content.chars().count())
        })
        .collect()
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `.`.
fn parent_path(path: &str) -> Option<&str> {
    if path == "." || path.is_empty() {
        return None;
    }
    match path.rfind(['.', '[']) {
        Some(0) | None => Some("."),
        Some(i) => Some(&path[..i]),
    }
}

/// Joins a child key onto a path.
pub fn join_key(parent: &str, key: &str) -> String {
    if parent == "." || parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Joins a sequence index onto a path.
pub fn join_index(parent: &str, index: usize) -> String {
    if parent == "." || parent.is_empty() {
        format!("[{index}]")
    } else {
        format!("{parent}[{index}]")
    }
}

enum Frame {
    Mapping {
        path: String,
        /// Block mappings report their start at an odd place; the first key's mark is used instead.
        awaiting_first_key: bool,
        /// The key just read, waiting for its value.
        pending_key: Option<(String, Position)>,
    },
    Sequence {
        path: String,
        next_index: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    spans: HashMap<String, FieldSpan>,
}

fn position(mark: Marker) -> Position {
    Position::new(mark.line(), mark.col() + 1)
}

impl Builder {
    /// Records a value that starts at `mark` and returns its path, or `None` if the value is a key.
    fn place_value(
        &mut self,
        mark: Marker,
        style: Option<ScalarStyle>,
        key_text: Option<&str>,
    ) -> Option<String> {
        let pos = position(mark);
        match self.stack.last_mut() {
            None => {
                self.spans.insert(
                    ".".into(),
                    FieldSpan {
                        key: None,
                        value: pos,
                        style,
                    },
                );
                Some(".".into())
            }
            Some(Frame::Sequence { path, next_index }) => {
                let child = join_index(path, *next_index);
                *next_index += 1;
                self.spans.insert(
                    child.clone(),
                    FieldSpan {
                        key: None,
                        value: pos,
                        style,
                    },
                );
                Some(child)
            }
            Some(Frame::Mapping {
                path,
                pending_key,
                awaiting_first_key,
            }) => match pending_key.take() {
                Some((key, key_pos)) => {
                    let child = join_key(path, &key);
                    self.spans.insert(
                        child.clone(),
                        FieldSpan {
                            key: Some(key_pos),
                            value: pos,
                            style,
                        },
                    );
                    Some(child)
                }
                None => {
                    if *awaiting_first_key {
                        *awaiting_first_key = false;
                        if let Some(span) = self.spans.get_mut(path.as_str()) {
                            span.value = pos;
                        }
                    }
                    // This scalar is a key; complex keys are recorded by their text if any.
                    *pending_key = Some((key_text.unwrap_or("?").to_string(), pos));
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, _, _) => {
                let style = match style {
                    TScalarStyle::SingleQuoted => ScalarStyle::SingleQuoted,
                    TScalarStyle::DoubleQuoted => ScalarStyle::DoubleQuoted,
                    TScalarStyle::Literal | TScalarStyle::Folded => ScalarStyle::Block,
                    _ => ScalarStyle::Plain,
                };
                self.place_value(mark, Some(style), Some(&text));
            }
            Event::Alias(_) => {
                self.place_value(mark, None, Some("*alias"));
            }
            Event::MappingStart(..) => {
                let path = self.place_value(mark, None, None).unwrap_or_else(|| "?".into());
                self.stack.push(Frame::Mapping {
                    path,
                    pending_key: None,
                    awaiting_first_key: true,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.place_value(mark, None, None).unwrap_or_else(|| "?".into());
                self.stack.push(Frame::Sequence { path, next_index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "apiVersion: rootfix/v1\nspec:\n  tree:\n    id: root\n    children:\n      - id: a\n        when: 'x > 1'\n      - id: b\n";

    #[test]
    fn records_keys_and_values_of_nested_fields() {
        let index = SpanIndex::build(DOC);
        let span = index.get("spec.tree.children[0].when").copied();
        assert_eq!(
            span,
            Some(FieldSpan {
                key: Some(Position::new(7, 9)),
                value: Position::new(7, 15),
                style: Some(ScalarStyle::SingleQuoted)
            })
        );
        assert_eq!(
            index.value_position("spec.tree.children[1].id"),
            Position::new(8, 13)
        );
        assert_eq!(index.key_position("spec.tree.id"), Position::new(4, 5));
    }

    #[test]
    fn missing_fields_fall_back_to_the_nearest_ancestor() {
        let index = SpanIndex::build(DOC);
        assert_eq!(
            index.key_position("spec.tree.children[1].remedy"),
            Position::new(8, 9)
        );
        assert_eq!(index.key_position("nothing.here"), Position::new(1, 1));
    }

    #[test]
    fn positions_inside_quoted_values_skip_the_quote() {
        let index = SpanIndex::build(DOC);
        // 'x > 1': the `>` is the 3rd character of the expression.
        assert_eq!(
            index.position_in_value("spec.tree.children[0].when", 1, 3),
            Position::new(7, 18)
        );
    }

    #[test]
    fn positions_inside_block_scalars_follow_their_lines() {
        let doc = "a:\n  q: >-\n    sum(x{s=\"1\"})\n    / y\n  w: |\n    one\n    two\n";
        let index = SpanIndex::build(doc);
        // `>-`: the lines are joined by spaces; the 15th character is the `/` on line 4.
        assert_eq!(index.position_in_value("a.q", 1, 1), Position::new(3, 5));
        assert_eq!(index.position_in_value("a.q", 1, 7), Position::new(3, 11));
        assert_eq!(index.position_in_value("a.q", 1, 15), Position::new(4, 5));
        // `|`: a CEL error's own line and column.
        assert_eq!(index.position_in_value("a.w", 2, 2), Position::new(7, 6));
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("a.b[2].c"), Some("a.b[2]"));
        assert_eq!(parent_path("a.b[2]"), Some("a.b"));
        assert_eq!(parent_path("a"), Some("."));
        assert_eq!(parent_path("."), None);
    }

    #[test]
    fn no_position_lies_past_the_end_of_the_text() {
        // The `config` fuzz target's crash: a one-line file whose root is an empty tagged value,
        // which yaml-rust2 marks on line 2.
        let index = SpanIndex::build("!$$$$$$$$$       # relative t$$$]Z");
        assert_eq!(index.key_position("tokens"), Position::new(1, 35));
    }
}
