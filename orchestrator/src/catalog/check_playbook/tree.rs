//! The diagnosis tree: node ids (well formed, never written twice), `when` conditions that read
//! only declared evidence or a diagnose output above them, `diagnose:` and `remedy:` actions of the
//! right purpose with their params (a remedy's own checks are in `remedy`); the nodes flattened,
//! parents before children.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::label_template;
use crate::catalog::report::Reporter;
use crate::catalog::spans::join_index;
use crate::catalog::values::is_identifier;
use crate::document::playbook::NodeSpec;
use crate::model::action::{Action, Purpose};
use crate::model::condition::{Condition, Scope};
use crate::model::playbook::{Diagnose, Node, NodeIndex};
use crate::model::template::{Template, Variable};

pub(super) struct TreeCheck<'r, 'p, 'a> {
    pub(super) r: &'r mut Reporter<'p>,
    pub(super) actions: &'a BTreeMap<String, Arc<Action>>,
    pub(super) declared: BTreeSet<String>,
    pub(super) nodes: Vec<Node>,
    /// id → line where it was first written.
    pub(super) ids: HashMap<String, usize>,
}

impl TreeCheck<'_, '_, '_> {
    /// Checks `spec` and its subtree; `outputs` are the diagnose outputs of its ancestors.
    pub(super) fn node(
        &mut self,
        spec: &NodeSpec,
        field: &str,
        parent: Option<NodeIndex>,
        depth: usize,
        outputs: &BTreeSet<String>,
    ) {
        let id_field = format!("{field}.id");
        if !is_identifier(&spec.id) {
            self.r
                .at_value(&id_field, "node ids are lowercase letters, digits and `_`");
        }
        let line = self.r.spans.value_position(&id_field).line;
        if let Some(first) = self.ids.get(&spec.id) {
            self.r.at_value(
                &id_field,
                format!("duplicate node id `{}` (first at line {first})", spec.id),
            );
        } else {
            self.ids.insert(spec.id.clone(), line);
        }

        let when = match &spec.when {
            Some(text) => self.condition(&format!("{field}.when"), text, Scope::Diagnosis, outputs),
            None => Some(Condition::always()),
        };

        // What this node's own remedy and children may read: the ancestors' outputs and its own.
        let mut below = outputs.clone();
        let diagnose = spec.diagnose.as_ref().and_then(|d| {
            let dfield = format!("{field}.diagnose");
            let action_ok = self.action_ref(&format!("{dfield}.action"), &d.action, Purpose::Diagnostic);
            let params = self.params(&dfield, &d.action, &d.params, action_ok);
            let out_field = format!("{dfield}.as");
            if !is_identifier(&d.output) {
                self.r.at_value(
                    &out_field,
                    "lowercase letters, digits and `_` (read as evidence.<name>)",
                );
            } else if self.declared.contains(&d.output) || outputs.contains(&d.output) {
                self.r.at_value(
                    &out_field,
                    format!("`{}` is already an evidence name here", d.output),
                );
            }
            below.insert(d.output.clone());
            Some(Diagnose {
                action: d.action.clone(),
                params: params?,
                output: d.output.clone(),
            })
        });

        let remedy = match &spec.remedy {
            Some(_) if !spec.children.is_empty() => {
                self.r.at_key(
                    &format!("{field}.remedy"),
                    "a node with children cannot have a remedy; put it on a leaf",
                );
                None
            }
            Some(remedy) => self.remedy(&format!("{field}.remedy"), remedy, &below),
            None => None,
        };

        let index = self.nodes.len();
        if let Some(when) = when {
            self.nodes.push(Node {
                id: spec.id.clone(),
                description: spec.description.clone(),
                when,
                diagnose,
                children: Vec::new(),
                remedy,
                parent,
                depth,
            });
        }
        for (i, child) in spec.children.iter().enumerate() {
            let child_index = self.nodes.len();
            self.node(
                child,
                &join_index(&format!("{field}.children"), i),
                Some(index),
                depth + 1,
                &below,
            );
            if self.nodes.len() > child_index
                && let Some(node) = self.nodes.get_mut(index)
            {
                node.children.push(child_index);
            }
        }
    }

    pub(super) fn condition(
        &mut self,
        field: &str,
        text: &str,
        scope: Scope,
        outputs: &BTreeSet<String>,
    ) -> Option<Condition> {
        match Condition::compile(text, scope) {
            Ok(c) => {
                for signal in c.signals() {
                    let known = self.declared.contains(&signal.name)
                        || (scope == Scope::Diagnosis && outputs.contains(&signal.name));
                    if !known {
                        let message = if scope == Scope::Verify && outputs.contains(&signal.name) {
                            format!(
                                "`{}` is a diagnose output; verify reads fresh values of spec.evidence signals only",
                                signal.name
                            )
                        } else {
                            format!(
                                "evidence `{}` is not defined in spec.evidence or by a diagnose above this node",
                                signal.name
                            )
                        };
                        self.r.inside_value(field, signal.line, signal.column, message);
                    }
                }
                Some(c)
            }
            Err(e) => {
                self.r
                    .inside_value(field, e.line, e.column, format!("CEL: {}", e.message));
                None
            }
        }
    }

    /// Checks that `name` is an action of `purpose`; returns whether it is.
    pub(super) fn action_ref(&mut self, field: &str, name: &str, purpose: Purpose) -> bool {
        match self.actions.get(name) {
            None => {
                self.r.at_value(field, format!("no Action named `{name}`"));
                false
            }
            Some(action) if action.purpose != purpose => {
                let wanted = if purpose == Purpose::Fix {
                    "fix"
                } else {
                    "diagnostic"
                };
                self.r
                    .at_value(field, format!("action `{name}` is not a {wanted} action"));
                false
            }
            Some(_) => true,
        }
    }

    pub(super) fn params(
        &mut self,
        field: &str,
        action_name: &str,
        given: &BTreeMap<String, String>,
        action_ok: bool,
    ) -> Option<BTreeMap<String, Template>> {
        self.params_with(field, action_name, given, action_ok, None)
    }

    /// [`Self::params`], with `per_target` a param the remedy's waves give each target.
    pub(super) fn params_with(
        &mut self,
        field: &str,
        action_name: &str,
        given: &BTreeMap<String, String>,
        action_ok: bool,
        per_target: Option<&str>,
    ) -> Option<BTreeMap<String, Template>> {
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (name, text) in given {
            let pfield = format!("{field}.params.{name}");
            let Some(template) = label_template(self.r, &pfield, text) else {
                ok = false;
                continue;
            };
            if action_ok && let Some(action) = self.actions.get(action_name) {
                match action.params.get(name) {
                    None => {
                        self.r
                            .at_key(&pfield, format!("action `{action_name}` has no param `{name}`"));
                        ok = false;
                    }
                    Some(spec) if template.references(Variable::Label).is_empty() && !spec.accepts(text) => {
                        self.r.at_value(
                            &pfield,
                            format!(
                                "`{text}` does not match the param's pattern `{}`",
                                spec.pattern_source
                            ),
                        );
                        ok = false;
                    }
                    Some(_) => {}
                }
            }
            out.insert(name.clone(), template);
        }
        if action_ok && let Some(action) = self.actions.get(action_name) {
            for (name, spec) in &action.params {
                if spec.required
                    && spec.default.is_none()
                    && !given.contains_key(name)
                    && per_target != Some(name.as_str())
                {
                    self.r
                        .at_key(field, format!("action `{action_name}` needs param `{name}`"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}
