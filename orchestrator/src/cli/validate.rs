//! `rootfix validate [PATH...]`: the same checks as start-up and hot reload.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::catalog::Catalog;

/// Folders validated when no path is given.
pub const DEFAULT_PATHS: [&str; 2] = ["playbooks", "actions"];

pub fn run(paths: &[PathBuf]) -> ExitCode {
    let paths: Vec<PathBuf> = if paths.is_empty() {
        DEFAULT_PATHS.iter().map(PathBuf::from).collect()
    } else {
        paths.to_vec()
    };
    match Catalog::load(&paths) {
        Ok(catalog) => {
            println!("{}", catalog.summary());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            eprintln!(
                "{} problem{}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}
