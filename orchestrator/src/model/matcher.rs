//! Alertmanager label matchers (`name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`).
//!
//! Same semantics as Alertmanager: regexes are fully anchored, and a label that is absent matches
//! as the empty string.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    fn symbol(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

/// Why a matcher did not parse; `column` is the 1-based character offset inside the matcher text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MatcherError {
    pub column: usize,
    pub message: String,
}

impl Matcher {
    /// Parses one matcher in Alertmanager's syntax; the value may be double-quoted or bare.
    pub fn parse(text: &str) -> Result<Self, MatcherError> {
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let name = &text[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(MatcherError {
                column: 1,
                message: "a matcher starts with a label name, e.g. alertname=\"X\"".into(),
            });
        }
        let rest = text[name_end..].trim_start();
        let op_column = text.len() - rest.len() + 1;
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchOp::Regex, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchOp::Equal, r)
        } else {
            return Err(MatcherError {
                column: op_column,
                message: "expected one of =, !=, =~, !~ after the label name".into(),
            });
        };
        let raw = rest.trim();
        let value_column = text.len() - rest.trim_start().len() + 1;
        let value = if let Some(inner) = raw.strip_prefix('"') {
            let inner = inner.strip_suffix('"').ok_or_else(|| MatcherError {
                column: value_column,
                message: "the quoted value is not closed".into(),
            })?;
            unescape(inner)
        } else {
            raw.to_string()
        };
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| MatcherError {
                    column: value_column,
                    message: format!("invalid regex: {}", first_line(&e.to_string())),
                })?)
            }
            _ => None,
        };
        Ok(Self {
            name: name.to_string(),
            op,
            value,
            regex,
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let actual = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => actual == self.value,
            (MatchOp::NotEqual, _) => actual != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(actual),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(actual),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

/// In the syntax [`Matcher::parse`] reads, so a printed matcher parses back to itself: only `\\`,
/// `"` and a newline are escaped (Rust's `{:?}` wrote `\0` and `\u{e}`, which read back as other
/// characters: found by the `matcher` fuzz target).
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.symbol())?;
        for c in self.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

fn unescape(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The meaningful line of a multi-line library message: the regex crate's `error: ...` line if
/// there is one, else the first non-empty line.
pub(crate) fn first_line(message: &str) -> String {
    let lines = || message.lines().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .find_map(|l| l.strip_prefix("error: "))
        .or_else(|| lines().next())
        .unwrap_or(message)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_four_operators_match_like_alertmanager() {
        let l = labels(&[("alertname", "OrderServiceTimeout"), ("env", "staging")]);
        assert!(
            Matcher::parse("alertname=\"OrderServiceTimeout\"")
                .unwrap()
                .matches(&l)
        );
        assert!(Matcher::parse("env!=prod").unwrap().matches(&l));
        assert!(Matcher::parse("env=~\"stag.*\"").unwrap().matches(&l));
        // Anchored: a partial match is not a match.
        assert!(!Matcher::parse("env=~\"stag\"").unwrap().matches(&l));
        assert!(Matcher::parse("env!~\"prod|dr\"").unwrap().matches(&l));
        // Absent labels are the empty string.
        assert!(Matcher::parse("team=\"\"").unwrap().matches(&l));
    }

    #[test]
    fn errors_point_at_the_offending_part() {
        let err = Matcher::parse("env~staging").unwrap_err();
        assert_eq!(err.column, 4);
        let err = Matcher::parse("env=~\"(unclosed\"").unwrap_err();
        assert_eq!(err.column, 6);
        assert_eq!(err.message, "invalid regex: unclosed group");
    }

    #[test]
    fn a_printed_matcher_parses_back_to_itself() {
        // The `matcher` fuzz target's crash: NUL and a control character inside a regex.
        let text = "team !~ \"a\\\"b\\\\\0\0\u{e}c\\n\"";
        let matcher = Matcher::parse(text).unwrap();
        assert_eq!(matcher.value, "a\"b\\\0\0\u{e}c\n");
        let printed = matcher.to_string();
        assert_eq!(printed, "team!~\"a\\\"b\\\\\0\0\u{e}c\\n\"");
        let again = Matcher::parse(&printed).unwrap();
        assert_eq!(again.value, matcher.value);
        assert_eq!(again.op, matcher.op);
    }
}
