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
