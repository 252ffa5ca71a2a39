//! `{{ $labels.name }}` and `{{ $params.name }}` templates; `{{ $labels.name | default "text" }}`
//! stands in `text` when the value is not set.
//!
//! Templates are the only way alert data reaches a query, a URL or an action parameter. They are
//! parsed once at load time; rendering takes an escape function chosen by the consumer (PromQL,
//! LogQL, URL, none), so a label value is always data and can never change the text around it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Which values a template may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variable {
    /// `$labels.<name>`: a label of the alert.
    Label,
    /// `$params.<name>`: a parameter of an action.
    Param,
}

impl Variable {
    pub fn prefix(self) -> &'static str {
        match self {
            Variable::Label => "$labels",
            Variable::Param => "$params",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// A reference, with the text that stands in when the value is not set, and where the
    /// placeholder (`{{`) starts in the source and how many characters it spans.
    Value(Variable, String, Option<String>, Place),
}

/// Where a placeholder was written in a template's source: 1-based character column and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    column: usize,
    chars: usize,
}

/// One placeholder of a [`Marked`] rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// The reference as written, e.g. `$labels.service`.
    pub reference: String,
    /// 1-based character column of its `{{` in the template's source.
    pub column: usize,
    /// Its length in the source, in characters (`{{` to `}}`).
    pub source_chars: usize,
    /// Byte range of its stand-in in [`Marked::text`].
    pub rendered: std::ops::Range<usize>,
}

/// A template rendered with a stand-in per placeholder, knowing where each one landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    pub text: String,
    pub placeholders: Vec<Placeholder>,
}

impl Marked {
    /// The 1-based character column in the template's source of byte `offset` of [`Self::text`]:
    /// inside a stand-in, its placeholder's column; elsewhere, the literal character's own.
    pub fn source_column(&self, offset: usize) -> usize {
        let mut column = 1;
        let mut at = 0;
        for p in &self.placeholders {
            if offset < p.rendered.start {
                break;
            }
            column += char_count(&self.text, at, p.rendered.start);
            if offset < p.rendered.end {
                return column;
            }
            column += p.source_chars;
            at = p.rendered.end;
        }
        column + char_count(&self.text, at, offset)
    }
}

fn char_count(text: &str, from: usize, to: usize) -> usize {
    let to = to.min(text.len());
    text.get(from.min(to)..to).map_or(0, |s| s.chars().count())
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

/// Why a template did not parse; `column` is the 1-based character offset inside the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub column: usize,
    pub message: String,
}

/// A rendering failed because the alert (or the action) lacks a value the template reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{template}` reads {variable}.{name}, which is not set")]
pub struct MissingValue {
    pub template: String,
    pub variable: &'static str,
    pub name: String,
}

impl Template {
    /// Parses `source`; `allowed` lists the variables this place may read.
    pub fn parse(source: &str, allowed: &[Variable]) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = source;
        let mut consumed_chars = 0usize;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_string()));
            }
            let open_column = consumed_chars + rest[..open].chars().count() + 1;
            let after_open = &rest[open + 2..];
            let Some(close) = after_open.find("}}") else {
                return Err(TemplateError {
                    column: open_column,
                    message: "`{{` is not closed by `}}`".into(),
                });
            };
            let inner = after_open[..close].trim();
            let (reference, default) = split_default(inner).map_err(|message| TemplateError {
                column: open_column,
                message,
            })?;
            let (variable, name) = parse_reference(reference, allowed).map_err(|message| TemplateError {
                column: open_column,
                message,
            })?;
            let used = open + 2 + close + 2;
            let place = Place {
                column: open_column,
                chars: rest[open..used].chars().count(),
            };
            segments.push(Segment::Value(variable, name, default, place));
            consumed_chars += rest[..used].chars().count();
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_string()));
        }
        Ok(Self {
            source: source.to_string(),
            segments,
        })
    }

    /// A template with no placeholders.
    pub fn literal(text: &str) -> Self {
        Self {
            source: text.to_string(),
            segments: vec![Segment::Literal(text.to_string())],
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The names of `variable` this template reads.
    pub fn references(&self, variable: Variable) -> BTreeSet<&str> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Value(v, name, _, _) if *v == variable => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Renders with values passed through `escape`; literal text is kept as written.
    pub fn render(
        &self,
        labels: &BTreeMap<String, String>,
        params: &BTreeMap<String, String>,
        escape: impl Fn(&str) -> String,
    ) -> Result<String, MissingValue> {
        let mut out = String::with_capacity(self.source.len());
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Value(variable, name, default, _) => {
                    let source = match variable {
                        Variable::Label => labels,
                        Variable::Param => params,
                    };
                    let value = source
                        .get(name)
                        .or(default.as_ref())
                        .ok_or_else(|| MissingValue {
                            template: self.source.clone(),
                            variable: variable.prefix(),
                            name: name.clone(),
                        })?;
                    out.push_str(&escape(value));
                }
            }
        }
        Ok(out)
    }

    /// Renders with every placeholder replaced by `stand_in`: used to syntax-check a query.
    pub fn render_with_stand_in(&self, stand_in: &str) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(text) => text.as_str(),
                Segment::Value(..) => stand_in,
            })
            .collect()
    }

    /// Renders with `stand_in(i)` for the `i`-th placeholder and records where each landed: used
    /// to check where a query's placeholders sit.
    pub fn render_marked(&self, stand_in: impl Fn(usize) -> String) -> Marked {
        let mut text = String::with_capacity(self.source.len());
        let mut placeholders = Vec::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => text.push_str(literal),
                Segment::Value(variable, name, _, place) => {
                    let start = text.len();
                    text.push_str(&stand_in(placeholders.len()));
                    placeholders.push(Placeholder {
                        reference: format!("{}.{name}", variable.prefix()),
                        column: place.column,
                        source_chars: place.chars,
                        rendered: start..text.len(),
                    });
                }
            }
        }
        Marked { text, placeholders }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// `$labels.x | default "text"` → (`$labels.x`, Some("text")); no pipe → (inner, None).
fn split_default(inner: &str) -> Result<(&str, Option<String>), String> {
    let Some((reference, filter)) = inner.split_once('|') else {
        return Ok((inner, None));
    };
    let text = filter
        .trim()
        .strip_prefix("default")
        .map(str::trim)
        .and_then(|t| t.strip_prefix('"'))
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.contains('"') && !t.contains('\\'))
        .ok_or_else(|| {
            format!(
                "`| {}` is not a default; write `| default \"text\"` (no quotes or backslashes inside)",
                filter.trim()
            )
        })?;
    Ok((reference.trim(), Some(text.to_string())))
}

fn parse_reference(inner: &str, allowed: &[Variable]) -> Result<(Variable, String), String> {
    let allowed_list = || {
        allowed
            .iter()
            .map(|v| format!("{}.<name>", v.prefix()))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let (prefix, name) = inner
        .split_once('.')
        .ok_or_else(|| format!("`{{{{ {inner} }}}}` is not a reference; write {}", allowed_list()))?;
    let variable = match prefix {
        "$labels" => Variable::Label,
        "$params" => Variable::Param,
        _ => return Err(format!("unknown variable `{prefix}`; write {}", allowed_list())),
    };
    if !allowed.contains(&variable) {
        return Err(format!(
            "`{prefix}` cannot be used here; write {}",
            allowed_list()
        ));
    }
    let valid_name = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid_name {
        return Err(format!("`{name}` is not a valid label or parameter name"));
    }
    Ok((variable, name.to_string()))
}

/// Escapes a value for the inside of a double-quoted PromQL or LogQL string literal.
///
/// Both languages use Go's string-literal rules: a backslash, a double quote and control
/// characters must be escaped. Braces need no escaping inside a string, which is where templates
/// are placed, so `"}` in a value stays inside the literal.
pub fn escape_query_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// No escaping: for action parameters, which are checked against their pattern instead.
pub fn no_escape(value: &str) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([("service".to_string(), "order".to_string())])
    }

    #[test]
    fn a_default_stands_in_only_for_a_missing_value() {
        let t = Template::parse(
            r#"{{ $labels.chain | default "https://a.example,direct" }}"#,
            &[Variable::Label],
        )
        .unwrap();
        let none = BTreeMap::new();
        assert_eq!(
            t.render(&none, &none, str::to_string).unwrap(),
            "https://a.example,direct"
        );
        let set = BTreeMap::from([("chain".to_string(), "https://b.example,direct".to_string())]);
        assert_eq!(
            t.render(&set, &none, str::to_string).unwrap(),
            "https://b.example,direct"
        );
        assert_eq!(t.references(Variable::Label), BTreeSet::from(["chain"]));
        for bad in [
            r#"{{ $labels.x | dflt "a" }}"#,
            r#"{{ $labels.x | default a }}"#,
            r#"{{ $labels.x | default "a"b" }}"#,
        ] {
            let e = Template::parse(bad, &[Variable::Label]).unwrap_err();
            assert!(e.message.contains("is not a default"), "{bad}: {}", e.message);
            assert_eq!(e.column, 1);
        }
    }

    #[test]
    fn renders_labels_between_literals() {
        let t = Template::parse(
            "rate(x{service=\"{{ $labels.service }}\"}[5m])",
            &[Variable::Label],
        )
        .unwrap();
        assert_eq!(
            t.render(&labels(), &BTreeMap::new(), escape_query_string)
                .unwrap(),
            "rate(x{service=\"order\"}[5m])"
        );
        assert_eq!(
            t.references(Variable::Label).into_iter().collect::<Vec<_>>(),
            vec!["service"]
        );
    }

    #[test]
    fn hostile_values_stay_inside_the_string_literal() {
        let t = Template::parse("up{service=\"{{ $labels.service }}\"}", &[Variable::Label]).unwrap();
        let hostile = BTreeMap::from([("service".to_string(), "x\"} or vector(1) #\\".to_string())]);
        let query = t.render(&hostile, &BTreeMap::new(), escape_query_string).unwrap();
        assert_eq!(query, "up{service=\"x\\\"} or vector(1) #\\\\\"}");
        // The rendered query is one selector with one matcher whose value is the raw label value.
        let parsed = promql_parser::parser::parse(&query).unwrap();
        let promql_parser::parser::Expr::VectorSelector(selector) = parsed else {
            panic!("not a selector: {parsed:?}");
        };
        let service = selector
            .matchers
            .matchers
            .iter()
            .find(|m| m.name == "service")
            .unwrap();
        assert_eq!(service.value, "x\"} or vector(1) #\\");
    }

    #[test]
    fn rejects_unknown_or_forbidden_variables_with_a_column() {
        let err = Template::parse("a {{ $params.x }}", &[Variable::Label]).unwrap_err();
        assert_eq!(err.column, 3);
        assert_eq!(err.message, "`$params` cannot be used here; write $labels.<name>");
        let err = Template::parse("{{ labels.x }}", &[Variable::Label]).unwrap_err();
        assert_eq!(err.message, "unknown variable `labels`; write $labels.<name>");
        let err = Template::parse("x {{ $labels.a", &[Variable::Label]).unwrap_err();
        assert_eq!(err.column, 3);
    }

    #[test]
    fn a_marked_rendering_knows_each_placeholder_and_maps_columns_back() {
        let t = Template::parse(
            "a{x=\"{{ $labels.service }}\"} b {{$labels.é}}",
            &[Variable::Label],
        );
        assert!(t.is_err(), "é is not a label name");
        let t = Template::parse(
            "é{x=\"{{ $labels.service }}\"} b {{$labels.y}}!",
            &[Variable::Label],
        )
        .unwrap();
        let m = t.render_marked(|i| format!("<{i}>"));
        assert_eq!(m.text, "é{x=\"<0>\"} b <1>!");
        assert_eq!(m.placeholders[0].reference, "$labels.service");
        assert_eq!(
            (m.placeholders[0].column, m.placeholders[0].source_chars),
            (6, 21)
        );
        assert_eq!(
            (m.placeholders[1].column, m.placeholders[1].source_chars),
            (32, 13)
        );
        let at = |needle: &str| m.text.find(needle).unwrap();
        assert_eq!(m.source_column(0), 1);
        assert_eq!(m.source_column(at("<0>") + 1), 6);
        assert_eq!(m.source_column(at("\"}")), 27);
        assert_eq!(m.source_column(at("<1>")), 32);
        assert_eq!(m.source_column(at("!")), 45);
    }

    #[test]
    fn a_missing_label_is_an_error_not_an_empty_string() {
        let t = Template::parse("{{ $labels.pod }}", &[Variable::Label]).unwrap();
        let err = t.render(&labels(), &BTreeMap::new(), no_escape).unwrap_err();
        assert_eq!(err.name, "pod");
    }
}
