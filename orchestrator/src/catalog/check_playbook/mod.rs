//! Checks one `kind: Playbook` document against the actions it names and builds the run-time
//! [`Playbook`].
//!
//! This module checks the playbook's own fields (name, matchers, window, target, prune policy)
//! and holds the helpers both parts use; `signal` checks each `spec.evidence` signal (its query
//! through `promql` or `logql`: where placeholders may sit), `tree` the diagnosis tree
//! (conditions, diagnose and remedy actions and their params, confidence, verify).

mod logql;
mod promql;
#[cfg(test)]
mod query_props;
mod remedy;
mod signal;
mod tree;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::parse::ParsedFile;
use super::report::Reporter;
use super::spans::join_index;
use super::values::is_object_name;
use crate::document::playbook::PlaybookDocument;
use crate::model::action::Action;
use crate::model::content_hash;
use crate::model::matcher::Matcher;
use crate::model::playbook::{Playbook, PrunePolicy};
use crate::model::template::{Template, Variable};
use signal::check_signal;
use tree::TreeCheck;

const DEFAULT_WINDOW: Duration = Duration::from_secs(3);

pub fn check_playbook(
    file: &ParsedFile,
    doc: &PlaybookDocument,
    actions: &BTreeMap<String, Arc<Action>>,
    r: &mut Reporter<'_>,
) -> Option<Playbook> {
    let before = r.problems.len();
    let spec = &doc.spec;
    if !is_object_name(&doc.metadata.name) {
        r.at_value(
            "metadata.name",
            "must be lowercase letters, digits and `-` (at most 63)",
        );
    }

    if spec.matchers.is_empty() {
        r.at_key("spec.match", "needs at least one matcher, e.g. alertname=\"X\"");
    }
    let mut matchers = Vec::new();
    for (i, text) in spec.matchers.iter().enumerate() {
        let field = join_index("spec.match", i);
        match Matcher::parse(text) {
            Ok(m) => matchers.push(m),
            Err(e) => r.inside_value(&field, 1, e.column, e.message),
        }
    }

    let window = r.duration("spec.window", spec.window.as_deref(), DEFAULT_WINDOW);
    let target_service = match &spec.target {
        Some(t) => label_template(r, "spec.target.service", &t.service),
        None => Template::parse("{{ $labels.service }}", &[Variable::Label]).ok(),
    };

    let defaults = PrunePolicy::default();
    let prune_spec = spec.prune.clone().unwrap_or_default();
    let prune = PrunePolicy {
        after: positive(r, "spec.prune.after", prune_spec.after, defaults.after),
        reprobe_every: positive(
            r,
            "spec.prune.reprobe_every",
            prune_spec.reprobe_every,
            defaults.reprobe_every,
        ),
        ttl: r.duration("spec.prune.ttl", prune_spec.ttl.as_deref(), defaults.ttl),
    };

    let mut evidence = BTreeMap::new();
    for (name, signal) in &spec.evidence {
        if let Some(s) = check_signal(r, name, signal) {
            evidence.insert(name.clone(), s);
        }
    }

    let mut walk = TreeCheck {
        r,
        actions,
        declared: spec.evidence.keys().cloned().collect(),
        nodes: Vec::new(),
        ids: HashMap::new(),
    };
    walk.node(&spec.tree, "spec.tree", None, 0, &BTreeSet::new());
    let nodes = walk.nodes;

    if r.problems.len() > before {
        return None;
    }
    Some(Playbook {
        name: doc.metadata.name.clone(),
        description: doc.metadata.description.clone(),
        source: file.path.clone(),
        content_hash: content_hash(doc),
        matchers,
        window,
        target_service: target_service?,
        prune,
        evidence,
        nodes,
    })
}

fn positive(r: &mut Reporter<'_>, field: &str, value: Option<u32>, default: u32) -> u32 {
    match value {
        Some(0) => {
            r.at_value(field, "must be at least 1");
            default
        }
        Some(n) => n,
        None => default,
    }
}

fn label_template(r: &mut Reporter<'_>, field: &str, text: &str) -> Option<Template> {
    match Template::parse(text, &[Variable::Label]) {
        Ok(t) => Some(t),
        Err(e) => {
            r.inside_value(field, 1, e.column, e.message);
            None
        }
    }
}
