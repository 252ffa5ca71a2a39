//! The catalog: every playbook and action, read from files, validated together, and turned into
//! the run-time model.
//!
//! Loading reports **every** problem of every file as `file:line:col: field.path: message`
//! ([`Problem`]); a catalog exists only when there are none. The hot reload builds a new catalog
//! and swaps it in only when it loaded, so a bad change never replaces a good set.

mod check_action;
mod check_playbook;
pub mod parse;
pub mod problem;
pub(crate) mod report;
pub mod spans;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use parse::Source;
pub use problem::{Position, Problem, problem_lines};

use crate::model::{Action, Playbook};
use parse::{Document, ParsedFile, parse_source};
use report::Reporter;

/// Playbooks (in file-name order, which is match order) and actions (by name).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub playbooks: Vec<Arc<Playbook>>,
    pub actions: BTreeMap<String, Arc<Action>>,
}

impl Catalog {
    /// Reads every `*.yaml`/`*.yml` below `paths` (files or folders) and validates them together.
    pub fn load(paths: &[PathBuf]) -> Result<Self, Vec<Problem>> {
        let sources = read_sources(paths)?;
        Self::from_sources(&sources)
    }

    /// Validates already-read files together.
    pub fn from_sources(sources: &[Source]) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let parsed: Vec<ParsedFile> = sources
            .iter()
            .filter_map(|s| parse_source(s, &mut problems))
            .collect();

        let mut actions: BTreeMap<String, Arc<Action>> = BTreeMap::new();
        let mut action_files: BTreeMap<String, PathBuf> = BTreeMap::new();
        for file in &parsed {
            if let Document::Action(doc) = &file.document {
                let mut r = Reporter {
                    file: &file.path,
                    spans: &file.spans,
                    problems: &mut problems,
                };
                if let Some(first) = action_files.get(&doc.metadata.name) {
                    r.at_value(
                        "metadata.name",
                        format!(
                            "another Action is named `{}` ({})",
                            doc.metadata.name,
                            first.display()
                        ),
                    );
                    continue;
                }
                action_files.insert(doc.metadata.name.clone(), file.path.clone());
                if let Some(action) = check_action::check_action(file, doc, &mut r) {
                    actions.insert(action.name.clone(), Arc::new(action));
                }
            }
        }
        let mut playbooks = Vec::new();
        let mut playbook_files: BTreeMap<String, PathBuf> = BTreeMap::new();
        // Prune state is keyed by service and node id (the seed's format), so ids are unique
        // across playbooks: node id → playbook.
        let mut node_owners: BTreeMap<String, String> = BTreeMap::new();
        for file in &parsed {
            if let Document::Playbook(doc) = &file.document {
                let mut r = Reporter {
                    file: &file.path,
                    spans: &file.spans,
                    problems: &mut problems,
                };
                if let Some(first) = playbook_files.get(&doc.metadata.name) {
                    r.at_value(
                        "metadata.name",
                        format!(
                            "another Playbook is named `{}` ({})",
                            doc.metadata.name,
                            first.display()
                        ),
                    );
                    continue;
                }
                playbook_files.insert(doc.metadata.name.clone(), file.path.clone());
                if let Some(playbook) = check_playbook::check_playbook(file, doc, &actions, &mut r) {
                    for node in &playbook.nodes {
                        if let Some(owner) = node_owners.get(&node.id) {
                            r.at_value(
                                "metadata.name",
                                format!(
                                    "node id `{}` is also used by playbook `{owner}`; node ids are unique across playbooks",
                                    node.id
                                ),
                            );
                        } else {
                            node_owners.insert(node.id.clone(), playbook.name.clone());
                        }
                    }
                    playbooks.push(Arc::new(playbook));
                }
            }
        }
        if problems.is_empty() {
            Ok(Self { playbooks, actions })
        } else {
            problem::sort_problems(&mut problems);
            Err(problems)
        }
    }

    /// The first playbook whose matchers fit `labels`.
    pub fn match_alert(&self, labels: &BTreeMap<String, String>) -> Option<&Arc<Playbook>> {
        self.playbooks.iter().find(|p| p.matches(labels))
    }

    pub fn playbook(&self, name: &str) -> Option<&Arc<Playbook>> {
        self.playbooks.iter().find(|p| p.name == name)
    }

    /// One line for logs and `rootfix validate`.
    pub fn summary(&self) -> String {
        let nodes: usize = self.playbooks.iter().map(|p| p.nodes.len()).sum();
        format!(
            "{} playbook{} ({} nodes), {} action{}: all valid",
            self.playbooks.len(),
            if self.playbooks.len() == 1 { "" } else { "s" },
            nodes,
            self.actions.len(),
            if self.actions.len() == 1 { "" } else { "s" },
        )
    }
}

/// Reads the YAML files below `paths`, sorted by path; unreadable paths are problems.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<Source>, Vec<Problem>> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        collect_yaml_files(path, &mut files, &mut problems);
    }
    files.sort();
    files.dedup();
    let mut sources = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(Source { path, text }),
            Err(e) => problems.push(Problem::new(
                &path,
                Position::new(1, 1),
                ".",
                format!("cannot read: {e}"),
            )),
        }
    }
    if problems.is_empty() {
        Ok(sources)
    } else {
        Err(problems)
    }
}

fn collect_yaml_files(path: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => match std::fs::read_dir(path) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let child = entry.path();
                    let is_yaml = child.extension().is_some_and(|e| e == "yaml" || e == "yml");
                    if child.is_dir() || is_yaml {
                        collect_yaml_files(&child, files, problems);
                    }
                }
            }
            Err(e) => problems.push(Problem::new(
                path,
                Position::new(1, 1),
                ".",
                format!("cannot read folder: {e}"),
            )),
        },
        Ok(_) => files.push(path.to_path_buf()),
        Err(e) => problems.push(Problem::new(
            path,
            Position::new(1, 1),
            ".",
            format!("cannot read: {e}"),
        )),
    }
}
