//! A LogQL recogniser: a tokenizer and a recursive-descent check of Loki's grammar
//! (<https://grafana.com/docs/loki/latest/query/>), enough to load a query safely.
//!
//! No LogQL parser exists for Rust. This one knows stream selectors (`{l="v", l=~"v", l!="v",
//! l!~"v"}`), line filters (`|= != |~ !~ |> !>` with a string or `ip("…")`, `or`), parsers
//! (`| json`, `| logfmt`, `| regexp "…"`, `| pattern "…"`, `| unpack`), label filters
//! (`| l="v"`, `| l > 5`, `and`, `or`, `,`, parentheses), `| line_format "…"`,
//! `| label_format`, `| unwrap`, `| drop`, `| keep`, `| decolorize`, range aggregations
//! (`count_over_time(… [5m])`, `quantile_over_time(0.99, … [1m])`, `offset`), vector
//! aggregations (`sum by (l) (…)`, `topk(3, …)`), `vector(0)`, `label_replace`, numbers, binary
//! operators with `bool`, `on`/`ignoring` and `group_left`/`group_right`, `#` comments;
//! double-quoted strings with Go's escapes and backtick raw strings.
//!
//! Placeholders: a label value is escaped for a double-quoted string, so a placeholder may sit
//! only inside a double-quoted string that LogQL reads as a value: a selector's matcher value, a
//! line filter's string, a label filter's string. Anywhere else it is refused: outside a string,
//! in a backtick or single-quoted string, after a backslash, and also inside the strings LogQL
//! reads as more than a value: `line_format` and `label_format` (Go templates, which Loki
//! executes), `regexp` and `pattern` (they decide which labels exist), `json`/`logfmt`
//! expressions and `label_replace`'s arguments.

use std::ops::Range;

mod grammar;

use super::promql::{Literal, QueryProblem, marker, misplaced, scan_literal, spot};
use crate::model::template::{Marked, Template};
pub(crate) use grammar::Reading;

/// A LogQL token's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string in double quotes, backticks or (never valid) single quotes: its quote.
    Str(char),
    Ident,
    /// A number, a duration (`5m`, `1h30m`) or a size (`10KB`).
    Number,
    Punct,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub range: Range<usize>,
}

/// Why text could not be read, at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Syntax {
    pub at: Option<usize>,
    pub message: String,
}

fn fail<T>(at: impl Into<Option<usize>>, message: impl Into<String>) -> Result<T, Syntax> {
    Err(Syntax {
        at: at.into(),
        message: message.into(),
    })
}

const PUNCT: [&str; 24] = [
    "|=", "|~", "|>", "!=", "!~", "!>", "=~", "==", ">=", "<=", "{", "}", "(", ")", "[", "]", ",", "|", "=",
    "<", ">", "+", "-", "*",
];
const MORE_PUNCT: [&str; 3] = ["/", "%", "^"];

/// Splits LogQL text into tokens, with each string's literal (quote, range, escapes).
pub(crate) fn tokenize(text: &str) -> Result<(Vec<Token>, Vec<Literal>), Syntax> {
    let bytes = text.as_bytes();
    let (mut tokens, mut literals) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let kind = if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if c == b'#' {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            continue;
        } else if matches!(c, b'"' | b'`' | b'\'') {
            let Ok(lit) = scan_literal(text, i) else {
                return fail(i, "LogQL has an unterminated string");
            };
            i = lit.range.end;
            literals.push(lit);
            Kind::Str(char::from(c))
        } else if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            Kind::Number
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Kind::Ident
        } else if let Some(p) = PUNCT
            .iter()
            .chain(MORE_PUNCT.iter())
            .find(|p| text[i..].starts_with(**p))
        {
            i += p.len();
            Kind::Punct
        } else {
            let ch = text[i..].chars().next().unwrap_or('?');
            return fail(i, format!("LogQL has an unexpected `{ch}`"));
        };
        tokens.push(Token {
            kind,
            range: start..i,
        });
    }
    Ok((tokens, literals))
}

/// The brackets pair up: the messages of the old shape check.
fn balanced(text: &str, tokens: &[Token]) -> Result<(), Syntax> {
    let mut open: Vec<(char, usize)> = Vec::new();
    for t in tokens.iter().filter(|t| t.kind == Kind::Punct) {
        let s = &text[t.range.clone()];
        match s {
            "(" | "{" | "[" => open.push((s.chars().next().unwrap_or('('), t.range.start)),
            ")" | "}" | "]" => {
                let want = match s {
                    ")" => '(',
                    "}" => '{',
                    _ => '[',
                };
                if open.pop().map(|o| o.0) != Some(want) {
                    return fail(t.range.start, format!("LogQL has an unbalanced `{s}`"));
                }
            }
            _ => {}
        }
    }
    match open.pop() {
        Some((c, at)) => fail(at, format!("LogQL has an unclosed `{c}`")),
        None => Ok(()),
    }
}

/// Recognises a whole LogQL query; `Ok` says which strings it reads as values.
pub(crate) fn recognise(text: &str) -> Result<Reading, Syntax> {
    let (tokens, _) = tokenize(text)?;
    if !tokens
        .iter()
        .any(|t| t.kind == Kind::Punct && &text[t.range.clone()] == "{")
    {
        return fail(
            None,
            "a LogQL query needs a stream selector, e.g. {service=\"x\"}",
        );
    }
    balanced(text, &tokens)?;
    grammar::parse(text, &tokens)
}

/// The shape of LogQL text: its tokens with every string's content left out.
#[cfg(test)]
pub(crate) fn shape(text: &str) -> Result<Vec<String>, Syntax> {
    let (tokens, _) = tokenize(text)?;
    Ok(tokens
        .iter()
        .map(|t| match t.kind {
            Kind::Str(q) => format!("{q}…{q}"),
            _ => text[t.range.clone()].to_string(),
        })
        .collect())
}

/// Checks a LogQL template: it is LogQL, and each placeholder sits inside a double-quoted string
/// read as a value.
pub(super) fn check_logql(template: &Template) -> Vec<QueryProblem> {
    let marked = template.render_marked(marker);
    let at = |m: &Marked, s: &Syntax| s.at.map(|offset| m.source_column(offset));
    let (tokens, literals) = match tokenize(&marked.text) {
        Ok(t) => t,
        Err(s) => {
            return vec![QueryProblem {
                column: at(&marked, &s),
                message: s.message,
            }];
        }
    };
    let misplaced: Vec<QueryProblem> = marked
        .placeholders
        .iter()
        .filter_map(|p| {
            misplaced(p, &spot(&literals, &p.rendered), "LogQL").map(|message| QueryProblem {
                column: Some(p.column),
                message,
            })
        })
        .collect();
    if !misplaced.is_empty() {
        return misplaced;
    }
    let reading = match recognise(&marked.text) {
        Ok(r) => r,
        Err(s) => {
            return vec![QueryProblem {
                column: at(&marked, &s),
                message: s.message,
            }];
        }
    };
    let mut problems = Vec::new();
    for p in &marked.placeholders {
        let inside = |i: &usize| {
            let r = &tokens[*i].range;
            r.start < p.rendered.start && p.rendered.end < r.end
        };
        if reading.values.iter().any(inside) {
            continue;
        }
        let what = reading
            .others
            .iter()
            .find(|(i, _)| inside(i))
            .map_or("a string LogQL does not read as a value", |(_, w)| *w);
        problems.push(QueryProblem {
            column: Some(p.column),
            message: format!(
                "placeholder `{{{{ {} }}}}` is in {what}, which LogQL reads as more than a value; \
                 an alert's label value there would change the query itself: use it only as \
                 the value of `=` or `!=` in a stream selector or a label filter, or of a `|=` or \
                 `!=` line filter",
                p.reference
            ),
        });
    }
    problems
}

#[cfg(test)]
mod tests;
