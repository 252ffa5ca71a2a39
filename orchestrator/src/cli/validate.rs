//! `rootfix validate [--config F] [PATH...]`: the same checks as start-up and hot reload. With
//! `--config`, the config file is checked too, and every action whose runner cannot run with it
//! (Kubernetes disabled or unreachable, the Docker engine not answering a ping) is reported as a
//! warning, as `serve` would log it; warnings do not change the exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::catalog::Catalog;
use crate::config::ServeConfig;
use crate::runner::availability::RunnerAvailability;

/// Folders validated when no path is given.
pub const DEFAULT_PATHS: [&str; 2] = ["playbooks", "actions"];

pub fn run(paths: &[PathBuf], config: Option<&Path>) -> ExitCode {
    let config = match config.map(ServeConfig::load).transpose() {
        Ok(c) => c,
        Err(e) => {
            println!("{e}");
            eprintln!("the config is invalid");
            return ExitCode::FAILURE;
        }
    };
    let paths: Vec<PathBuf> = match (&config, paths.is_empty()) {
        (_, false) => paths.to_vec(),
        (Some(c), true) => vec![c.playbooks.clone(), c.actions.clone()],
        (None, true) => DEFAULT_PATHS.iter().map(PathBuf::from).collect(),
    };
    match Catalog::load(&paths) {
        Ok(catalog) => {
            println!("{}", catalog.summary());
            if let Some(config) = &config {
                warn_cannot_run(config, &catalog);
            }
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

/// `warning: action A (runner R) cannot run with this config: why`, one line per action.
fn warn_cannot_run(config: &ServeConfig, catalog: &Catalog) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            println!("warning: cannot check the runners: {e}");
            return;
        }
    };
    let availability = runtime.block_on(RunnerAvailability::for_config(config));
    for c in availability.cannot_run(&catalog.actions) {
        println!(
            "warning: action {} (runner {}) cannot run with this config: {}",
            c.action, c.runner, c.why
        );
    }
}
