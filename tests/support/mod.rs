//! Helpers shared by the integration tests: where the repository is, and the real components the
//! tests talk to.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root (the integration tests are compiled as part of `orchestrator/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn repo_path(relative: &str) -> PathBuf {
    repo_root().join(relative)
}

/// The shipped playbooks and actions folders.
pub fn shipped_paths() -> Vec<PathBuf> {
    vec![repo_path("playbooks"), repo_path("actions")]
}
