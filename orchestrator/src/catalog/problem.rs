//! A validation problem: where it is (file, line, column), which field, and what is wrong.
//!
//! Every check in the catalog reports through [`Problem`], so `rootfix validate`, the hot reload
//! and the tests all print the same `file:line:col: field.path: message` line.

use std::fmt;
use std::path::{Path, PathBuf};

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    pub const fn new(line: usize, column: usize) -> Self {
        Self { line, column }
    }
}

/// Where a file's text ends, so that no position is reported past it. The YAML parsers mark the
/// end of a file without a final line break, and an empty root, on the line after the last
/// (found by the `catalog` and `config` fuzz targets). Lines are YAML's: LF, CRLF and a lone CR
/// each end one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextEnd {
    /// The last line's number.
    lines: usize,
    /// The characters on the last line.
    last_line_chars: usize,
}

impl TextEnd {
    pub fn of(text: &str) -> Self {
        let mut lines = 1;
        let mut last_line_start = 0;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let end = match c {
                '\n' => i + 1,
                '\r' if chars.peek().is_some_and(|(_, next)| *next == '\n') => {
                    chars.next();
                    i + 2
                }
                '\r' => i + 1,
                _ => continue,
            };
            lines += 1;
            last_line_start = end;
        }
        Self {
            lines,
            last_line_chars: text[last_line_start..].chars().count(),
        }
    }

    /// `position`, or the end of the last line when it lies past it.
    pub fn clamp(self, position: Position) -> Position {
        if position.line <= self.lines {
            position
        } else {
            Position::new(self.lines, self.last_line_chars + 1)
        }
    }
}

/// One thing wrong with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub position: Position,
    /// Dotted path of the offending field, e.g. `spec.tree.children[1].when`; `.` for the document.
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(
        file: &Path,
        position: Position,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            position,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.position.line,
            self.position.column,
            self.field,
            self.message
        )
    }
}

/// Sorts problems by file, then position, then field, so output is stable.
pub fn sort_problems(problems: &mut [Problem]) {
    problems.sort_by(|a, b| {
        (&a.file, a.position, &a.field, &a.message).cmp(&(&b.file, b.position, &b.field, &b.message))
    });
}

/// Every problem, one `file:line:col: field: message` per line (what `validate` prints).
pub fn problem_lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::{Position, TextEnd};

    fn clamp(text: &str, position: Position) -> Position {
        TextEnd::of(text).clamp(position)
    }

    #[test]
    fn a_position_past_the_end_moves_to_the_end_of_the_last_line() {
        assert_eq!(clamp("a: 1\nb", Position::new(3, 1)), Position::new(2, 2));
        assert_eq!(clamp("a\r\nb\rc", Position::new(9, 1)), Position::new(3, 2));
        assert_eq!(clamp("a\nb\n", Position::new(3, 1)), Position::new(3, 1));
        assert_eq!(clamp("a\nbc", Position::new(2, 2)), Position::new(2, 2));
    }
}
