//! A helper that turns a field path and a message into a positioned [`Problem`] for one file.

use std::path::Path;
use std::time::Duration;

use super::problem::Problem;
use super::spans::SpanIndex;
use super::values::parse_duration;

pub struct Reporter<'a> {
    pub file: &'a Path,
    pub spans: &'a SpanIndex,
    pub problems: &'a mut Vec<Problem>,
}

impl Reporter<'_> {
    /// A problem with the field itself (unknown, misplaced, duplicate): points at its key.
    pub fn at_key(&mut self, field: &str, message: impl Into<String>) {
        let position = self.spans.key_position(field);
        self.problems
            .push(Problem::new(self.file, position, field, message));
    }

    /// A problem with the field's value: points at the value.
    pub fn at_value(&mut self, field: &str, message: impl Into<String>) {
        let position = self.spans.value_position(field);
        self.problems
            .push(Problem::new(self.file, position, field, message));
    }

    /// A problem at a 1-based line and column inside the field's text (a condition, a template).
    pub fn inside_value(&mut self, field: &str, line: usize, column: usize, message: impl Into<String>) {
        let position = self.spans.position_in_value(field, line, column);
        self.problems
            .push(Problem::new(self.file, position, field, message));
    }

    /// The value of environment variable `var`, named by `field` (a `*_env` key); when it is not
    /// set, that is reported at the field and the answer is `None`.
    pub fn env_var(
        &mut self,
        field: &str,
        var: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<String> {
        let value = env(var);
        if value.is_none() {
            self.at_value(field, format!("environment variable {var} is not set"));
        }
        value
    }

    /// Parses an optional duration field; a missing one is `default`, a bad one is reported.
    pub fn duration(&mut self, field: &str, text: Option<&str>, default: Duration) -> Duration {
        match text.map(parse_duration) {
            None => default,
            Some(Ok(d)) if d.is_zero() => {
                self.at_value(field, "must be longer than zero");
                default
            }
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.at_value(field, e);
                default
            }
        }
    }
}
