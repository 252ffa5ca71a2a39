//! Where a PromQL query's placeholders may sit: only inside a double-quoted string literal that
//! the query reads as a value (an `=` or `!=` label matcher's value, a string argument) — not a
//! name (`{"name"}`, `__name__`, `by ("l")`) and not a regular expression (`=~`, `!~`).
//!
//! A label value is rendered through `escape_query_string`, which escapes for a double-quoted
//! string and nothing else: in single quotes, in a backtick string, right after a backslash, or
//! outside any string (a metric, label or function name, `by (...)`, a range, `offset`, a number)
//! the value would change the query itself. Each placeholder is rendered as a unique marker, the
//! text is scanned for its string literals (which quote, where each escape sequence is), and the
//! query is parsed with promql-parser to check that every marker ended up in a value.

use std::ops::Range;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::Expr;

use crate::model::matcher::first_line;
use crate::model::template::{Placeholder, Template};

/// A problem with a query: at a 1-based column of the template, or at the whole value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct QueryProblem {
    pub column: Option<usize>,
    pub message: String,
}

/// The stand-in of the `i`-th placeholder: letters, digits and `_` only, so it changes how no
/// text around it is read, and no stand-in is a prefix of another.
pub(super) fn marker(i: usize) -> String {
    format!("rootfixplaceholder_{i}_")
}

/// A string literal of the rendered text: its quote, its whole range (quotes included) and the
/// ranges of its escape sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Literal {
    pub quote: char,
    pub range: Range<usize>,
    pub escapes: Vec<Range<usize>>,
}

/// Where a placeholder landed relative to the string literals.
pub(super) enum Spot {
    /// Inside the content of a double-quoted literal, clear of its escape sequences.
    DoubleQuoted,
    /// Inside a literal with another quote.
    OtherQuote(char),
    /// Inside (or completing) an escape sequence of a literal.
    InEscape,
    /// Not inside one literal.
    Outside,
}

pub(super) fn spot(literals: &[Literal], at: &Range<usize>) -> Spot {
    let Some(lit) = literals
        .iter()
        .find(|l| l.range.start < at.start && at.end < l.range.end)
    else {
        return Spot::Outside;
    };
    if lit.escapes.iter().any(|e| e.start < at.end && at.start < e.end) {
        return Spot::InEscape;
    }
    if lit.quote == '"' {
        Spot::DoubleQuoted
    } else {
        Spot::OtherQuote(lit.quote)
    }
}

/// The message for a placeholder not inside a double-quoted string; `None` when it is.
pub(super) fn misplaced(p: &Placeholder, spot: &Spot, language: &str) -> Option<String> {
    let reference = &p.reference;
    let why = match spot {
        Spot::DoubleQuoted => return None,
        Spot::OtherQuote('`') => "is inside a backtick string, which has no escapes".to_string(),
        Spot::OtherQuote(q) => {
            format!("is inside a {q}-quoted string; values are escaped for double quotes only")
        }
        Spot::InEscape => "follows a backslash: its value would complete the escape sequence".to_string(),
        Spot::Outside => "is outside a string literal".to_string(),
    };
    Some(format!(
        "placeholder `{{{{ {reference} }}}}` {why}; an alert's label value there would change the {language} \
         query itself: place it only inside a double-quoted string, e.g. {{service=\"{{{{ {reference} }}}}\"}}"
    ))
}

/// How long the escape sequence starting at the backslash at `at` is, in bytes, by Go's rules
/// (which PromQL and LogQL follow): `\x` + 2, `\u` + 4, `\U` + 8, an octal digit + 2 more.
pub(super) fn escape_len(text: &str, at: usize) -> usize {
    let Some(next) = text[at + 1..].chars().next() else {
        return 1;
    };
    let digits = match next {
        'x' => 2,
        'u' => 4,
        'U' => 8,
        '0'..='7' => 2,
        _ => 0,
    };
    1 + next.len_utf8() + digits
}

/// Scans a string literal starting at `start` (its opening quote); `Err` when it does not end.
/// In a backtick string a backslash is an ordinary character.
pub(super) fn scan_literal(text: &str, start: usize) -> Result<Literal, usize> {
    let bytes = text.as_bytes();
    let quote = char::from(bytes[start]);
    let mut escapes = Vec::new();
    let mut i = start + 1;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && quote != '`' {
            let len = escape_len(text, i).min(bytes.len() - i);
            escapes.push(i..i + len);
            i += len;
        } else if char::from(b) == quote {
            return Ok(Literal {
                quote,
                range: start..i + 1,
                escapes,
            });
        } else {
            i += 1;
        }
    }
    Err(start)
}

/// The string literals of PromQL text (`"…"`, `'…'`, `` `…` ``), skipping `#` comments; stops at
/// an unterminated literal (the parser reports it).
fn promql_literals(text: &str) -> Vec<Literal> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => match scan_literal(text, i) {
                Ok(lit) => {
                    i = lit.range.end;
                    out.push(lit);
                }
                Err(_) => break,
            },
            b'#' => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            _ => i += 1,
        }
    }
    out
}

/// Checks a PromQL template: it parses, and each placeholder sits inside a double-quoted string
/// the query reads as a value.
pub(super) fn check_promql(template: &Template) -> Vec<QueryProblem> {
    let marked = template.render_marked(marker);
    let literals = promql_literals(&marked.text);
    let mut problems: Vec<QueryProblem> = marked
        .placeholders
        .iter()
        .filter_map(|p| {
            misplaced(p, &spot(&literals, &p.rendered), "PromQL").map(|message| QueryProblem {
                column: Some(p.column),
                message,
            })
        })
        .collect();
    if !problems.is_empty() {
        return problems;
    }
    let mut expr = match promql_parser::parser::parse(&marked.text) {
        Ok(expr) => expr,
        Err(e) => {
            return vec![QueryProblem {
                column: None,
                message: format!("PromQL does not parse: {}", first_line(&e)),
            }];
        }
    };
    let (mut values, mut regexes) = (Vec::new(), Vec::new());
    visit_strings(&mut expr, &mut |place| match place {
        // `{"name"}` and `{__name__="…"}` pick the metric: a name, not a value.
        StringPlace::Matcher(m) if m.name == "__name__" => {}
        // A regular expression reads the value as a pattern: `.*` would match every series.
        StringPlace::Matcher(m) if matches!(m.op, MatchOp::Re(_) | MatchOp::NotRe(_)) => {
            regexes.push(m.value.clone())
        }
        StringPlace::Matcher(m) => values.push(m.value.clone()),
        StringPlace::Literal(s) => values.push(s.clone()),
    });
    for (i, p) in marked.placeholders.iter().enumerate() {
        let message = if regexes.iter().any(|v| v.contains(&marker(i))) {
            "is in a regular expression (`=~`, `!~`), which reads the value as a pattern"
        } else if !values.iter().any(|v| v.contains(&marker(i))) {
            "is in a string PromQL reads as a name (a metric or label name), not as a value"
        } else {
            continue;
        };
        problems.push(QueryProblem {
            column: Some(p.column),
            message: format!(
                "placeholder `{{{{ {} }}}}` {message}; an alert's label value there would change \
                 what is queried: match it with `=` or `!=` in a label matcher",
                p.reference
            ),
        });
    }
    problems
}

/// A string-valued place of a PromQL syntax tree.
pub(crate) enum StringPlace<'a> {
    /// A label matcher (its value is the string).
    Matcher(&'a mut Matcher),
    /// A string literal's value.
    Literal(&'a mut String),
}

/// Calls `f` on every string-valued place of `expr`.
pub(crate) fn visit_strings(expr: &mut Expr, f: &mut dyn FnMut(StringPlace<'_>)) {
    match expr {
        Expr::Aggregate(a) => {
            visit_strings(&mut a.expr, f);
            if let Some(p) = a.param.as_mut() {
                visit_strings(p, f);
            }
        }
        Expr::Unary(u) => visit_strings(&mut u.expr, f),
        Expr::Binary(b) => {
            visit_strings(&mut b.lhs, f);
            visit_strings(&mut b.rhs, f);
        }
        Expr::Paren(p) => visit_strings(&mut p.expr, f),
        Expr::Subquery(s) => visit_strings(&mut s.expr, f),
        Expr::StringLiteral(s) => f(StringPlace::Literal(&mut s.val)),
        Expr::VectorSelector(vs) => matchers(vs, f),
        Expr::MatrixSelector(ms) => matchers(&mut ms.vs, f),
        Expr::Call(c) => {
            for arg in &mut c.args.args {
                visit_strings(arg, f);
            }
        }
        Expr::NumberLiteral(_) | Expr::Extension(_) => {}
    }
}

fn matchers(vs: &mut promql_parser::parser::VectorSelector, f: &mut dyn FnMut(StringPlace<'_>)) {
    let m = &mut vs.matchers;
    for matcher in m.matchers.iter_mut().chain(m.or_matchers.iter_mut().flatten()) {
        f(StringPlace::Matcher(matcher));
    }
}

#[cfg(test)]
mod tests;
