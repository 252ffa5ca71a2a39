//! A small JSON path (`$.data.result[0].value`, `$['key with space']`) for reading one value out
//! of an HTTP response body.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    source: String,
    steps: Vec<Step>,
}

/// Why a path did not parse; `column` is 1-based inside the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JsonPathError {
    pub column: usize,
    pub message: String,
}

impl JsonPath {
    pub fn parse(source: &str) -> Result<Self, JsonPathError> {
        let chars: Vec<char> = source.chars().collect();
        let err = |i: usize, m: &str| JsonPathError {
            column: i + 1,
            message: m.to_string(),
        };
        if chars.first() != Some(&'$') {
            return Err(err(0, "a JSON path starts with `$`"));
        }
        let mut steps = Vec::new();
        let mut i = 1;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len()
                        && (chars[end].is_alphanumeric() || chars[end] == '_' || chars[end] == '-')
                    {
                        end += 1;
                    }
                    if end == start {
                        return Err(err(i, "expected a key after `.`"));
                    }
                    steps.push(Step::Key(chars[start..end].iter().collect()));
                    i = end;
                }
                '[' => {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ']')
                        .map(|p| p + i)
                        .ok_or_else(|| err(i, "`[` is not closed"))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    let inner = inner.trim();
                    if let Some(key) = inner
                        .strip_prefix('\'')
                        .and_then(|s| s.strip_suffix('\''))
                        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                    {
                        steps.push(Step::Key(key.to_string()));
                    } else {
                        let index = inner
                            .parse::<usize>()
                            .map_err(|_| err(i + 1, "expected an index or a quoted key inside `[]`"))?;
                        steps.push(Step::Index(index));
                    }
                    i = close + 1;
                }
                _ => return Err(err(i, "expected `.` or `[`")),
            }
        }
        Ok(Self {
            source: source.to_string(),
            steps,
        })
    }

    /// The value at this path, if every step exists.
    pub fn select<'a>(&self, value: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.steps.iter().try_fold(value, |current, step| match step {
            Step::Key(k) => current.get(k),
            Step::Index(i) => current.get(*i),
        })
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_keys_and_indexes() {
        let body = json!({"data": {"result": [{"value": [1, "0.5"]}], "a b": 3}});
        let p = JsonPath::parse("$.data.result[0].value[1]").unwrap();
        assert_eq!(p.select(&body), Some(&json!("0.5")));
        assert_eq!(
            JsonPath::parse("$.data['a b']").unwrap().select(&body),
            Some(&json!(3))
        );
        assert_eq!(JsonPath::parse("$.nope").unwrap().select(&body), None);
        assert_eq!(JsonPath::parse("$").unwrap().select(&body), Some(&body));
    }

    #[test]
    fn errors_have_columns() {
        assert_eq!(JsonPath::parse("data").unwrap_err().column, 1);
        assert_eq!(JsonPath::parse("$.a[x]").unwrap_err().column, 5);
        assert_eq!(JsonPath::parse("$.a..b").unwrap_err().column, 4);
    }
}
