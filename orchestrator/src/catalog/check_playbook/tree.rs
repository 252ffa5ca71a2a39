//! The diagnosis tree: node ids (well formed, never written twice), `when` conditions that read
//! only declared evidence or a diagnose output above them, `diagnose:` and `remedy:` actions of the
//! right purpose with their params, a remedy's confidence rule and its verify condition; the
//! nodes flattened, parents before children.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::{label_template, positive};
use crate::catalog::report::Reporter;
use crate::catalog::spans::join_index;
use crate::catalog::values::is_identifier;
use crate::document::playbook::{NodeSpec, WaveSizeSpec};
use crate::model::action::{Action, Purpose};
use crate::model::condition::{Condition, Scope};
use crate::model::playbook::{
    ConfidenceRule, Diagnose, Node, NodeIndex, Remedy, RemedyStep, VerifyCondition, WaveSize, Waves,
    WeightedSignal,
};
use crate::model::template::{Template, Variable};

const DEFAULT_VERIFY_RETRIES: u32 = 5;
const DEFAULT_VERIFY_INTERVAL: Duration = Duration::from_secs(10);
/// Tolerance when comparing sums of weights written as decimals.
const WEIGHT_EPSILON: f64 = 1e-9;

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

    fn condition(
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
    fn action_ref(&mut self, field: &str, name: &str, purpose: Purpose) -> bool {
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

    fn params(
        &mut self,
        field: &str,
        action_name: &str,
        given: &BTreeMap<String, String>,
        action_ok: bool,
    ) -> Option<BTreeMap<String, Template>> {
        self.params_with(field, action_name, given, action_ok, None)
    }

    /// [`Self::params`], with `per_target` a param the remedy's waves give each target.
    fn params_with(
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

    fn remedy(
        &mut self,
        field: &str,
        spec: &crate::document::playbook::RemedySpec,
        outputs: &BTreeSet<String>,
    ) -> Option<Remedy> {
        let actions = self.remedy_actions(field, spec, outputs);

        let cfield = format!("{field}.confidence");
        let threshold = spec.confidence.threshold;
        let mut ok = true;
        if !(threshold > 0.0 && threshold <= 1.0) {
            self.r.at_value(
                &format!("{cfield}.threshold"),
                format!("{threshold} is outside (0, 1]"),
            );
            ok = false;
        }
        if spec.confidence.signals.is_empty() {
            self.r
                .at_key(&format!("{cfield}.signals"), "needs at least one weighted signal");
            ok = false;
        }
        let mut signals = Vec::new();
        let mut total = 0.0;
        for (i, s) in spec.confidence.signals.iter().enumerate() {
            let sfield = join_index(&format!("{cfield}.signals"), i);
            if !(0.0..=1.0).contains(&s.weight) {
                self.r.at_value(
                    &format!("{sfield}.weight"),
                    format!("{} is outside [0, 1]", s.weight),
                );
                ok = false;
            } else {
                total += s.weight;
            }
            match self.condition(&format!("{sfield}.when"), &s.when, Scope::Diagnosis, outputs) {
                Some(when) => signals.push(WeightedSignal {
                    when,
                    weight: s.weight,
                    description: s.description.clone(),
                }),
                None => ok = false,
            }
        }
        if ok && total + WEIGHT_EPSILON < threshold {
            self.r.at_value(
                &format!("{cfield}.threshold"),
                format!(
                    "{threshold} cannot be reached: the weights sum to {}",
                    round(total)
                ),
            );
            ok = false;
        }

        let verify = match &spec.verify {
            None => None,
            Some(_) if spec.waves.is_some() => {
                self.r.at_key(
                    &format!("{field}.verify"),
                    "a remedy in waves verifies each target with its action's verify phase; a verify over the whole is not supported",
                );
                ok = false;
                None
            }
            Some(v) => {
                let checked = self.verify(&format!("{field}.verify"), v, outputs);
                ok &= checked.is_some();
                checked
            }
        };
        if !ok {
            return None;
        }
        let (action, params, steps, waves) = actions?;
        Some(Remedy {
            action,
            params,
            steps,
            waves,
            confidence: ConfidenceRule { threshold, signals },
            verify,
        })
    }

    /// A remedy's `waves`: evidence available at the leaf, a param of the action, an action that
    /// can be rolled back (a failed wave is undone), sizes that widen.
    fn waves(
        &mut self,
        field: &str,
        spec: &crate::document::playbook::RemedySpec,
        w: &crate::document::playbook::WavesSpec,
        action: &str,
        action_ok: bool,
        outputs: &BTreeSet<String>,
    ) -> Option<Waves> {
        let wfield = format!("{field}.waves");
        let mut ok = true;
        if !self.declared.contains(&w.targets) && !outputs.contains(&w.targets) {
            self.r.at_value(
                &format!("{wfield}.targets"),
                format!(
                    "evidence `{}` is not defined in spec.evidence or by a diagnose above this node",
                    w.targets
                ),
            );
            ok = false;
        }
        if let (true, Some(a)) = (action_ok, self.actions.get(action)) {
            if !a.params.contains_key(&w.param) {
                self.r.at_value(
                    &format!("{wfield}.param"),
                    format!("action `{action}` has no param `{}`", w.param),
                );
                ok = false;
            }
            if a.phases.rollback.is_none() {
                self.r.at_value(
                    &format!("{field}.action"),
                    format!("action `{action}` has no rollback phase: a failed wave could not be undone"),
                );
                ok = false;
            }
        }
        if spec.params.contains_key(&w.param) {
            self.r.at_key(
                &format!("{field}.params.{}", w.param),
                "the waves give this param to each target; leave it out here",
            );
            ok = false;
        }
        let mut sizes = Vec::new();
        let mut last = 0.0f64;
        let written = if w.sizes.is_empty() {
            vec![
                WaveSizeSpec::Count(1),
                WaveSizeSpec::Share("10%".into()),
                WaveSizeSpec::Share("50%".into()),
                WaveSizeSpec::Share("100%".into()),
            ]
        } else {
            w.sizes.clone()
        };
        for (i, size) in written.iter().enumerate() {
            let sfield = join_index(&format!("{wfield}.sizes"), i);
            let parsed = match size {
                WaveSizeSpec::Count(0) => None,
                WaveSizeSpec::Count(n) => Some(WaveSize::Count(*n)),
                WaveSizeSpec::Share(text) => text
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .filter(|p| *p > 0.0 && *p <= 100.0)
                    .map(|p| WaveSize::Share(p / 100.0)),
            };
            let Some(parsed) = parsed else {
                self.r.at_value(
                    &sfield,
                    "a number of targets (at least 1) or a share like `10%` (up to 100%)",
                );
                ok = false;
                continue;
            };
            // Counts and shares cannot be compared before the targets are known; a share after a
            // share (or a count after a count) must not shrink.
            let key = match parsed {
                WaveSize::Count(n) => n as f64 + 1000.0,
                WaveSize::Share(f) => f,
            };
            if (key >= 1000.0) == (last >= 1000.0) && key < last {
                self.r.at_value(
                    &sfield,
                    "waves widen: each reaches at least as far as the one before",
                );
                ok = false;
            }
            last = key;
            sizes.push(parsed);
        }
        ok.then(|| Waves {
            targets: w.targets.clone(),
            param: w.param.clone(),
            sizes,
        })
    }

    fn verify(
        &mut self,
        vfield: &str,
        v: &crate::document::playbook::VerifyConditionSpec,
        outputs: &BTreeSet<String>,
    ) -> Option<VerifyCondition> {
        let when = self.condition(&format!("{vfield}.when"), &v.when, Scope::Verify, outputs);
        let retries = positive(
            self.r,
            &format!("{vfield}.retries"),
            v.retries,
            DEFAULT_VERIFY_RETRIES,
        );
        let interval = self.r.duration(
            &format!("{vfield}.interval"),
            v.interval.as_deref(),
            DEFAULT_VERIFY_INTERVAL,
        );
        Some(VerifyCondition {
            when: when?,
            retries,
            interval,
        })
    }

    /// The remedy's fix type, its action's params, and its steps: either `action` (with
    /// `params`), or `name` with `steps`, each step an action of `purpose: fix` with its params
    /// checked like a single action's; every step but the last can be rolled back (a failed
    /// later step must be able to undo it).
    fn remedy_actions(
        &mut self,
        field: &str,
        spec: &crate::document::playbook::RemedySpec,
        outputs: &BTreeSet<String>,
    ) -> Option<RemedyActions> {
        match (&spec.action, &spec.name, spec.steps.is_empty()) {
            (Some(action), None, true) => {
                let action_ok = self.action_ref(&format!("{field}.action"), action, Purpose::Fix);
                let waves = match &spec.waves {
                    None => Some(None),
                    Some(w) => self.waves(field, spec, w, action, action_ok, outputs).map(Some),
                };
                let mut given = spec.params.clone();
                if let Some(w) = &spec.waves {
                    // The waves give this param per target; checked as a template there.
                    given.remove(&w.param);
                }
                let params = self.params_with(
                    field,
                    action,
                    &given,
                    action_ok,
                    spec.waves.as_ref().map(|w| w.param.as_str()),
                );
                Some((action.clone(), params?, Vec::new(), waves?))
            }
            (None, Some(name), false) => {
                let mut ok = true;
                if !is_fix_type_name(name) {
                    self.r.at_value(
                        &format!("{field}.name"),
                        "lowercase letters, digits and `-`, starting with a letter (the fix type)",
                    );
                    ok = false;
                } else if self.actions.contains_key(name) {
                    self.r.at_value(
                        &format!("{field}.name"),
                        format!(
                            "`{name}` is the name of an action; a remedy of steps needs a name of its own"
                        ),
                    );
                    ok = false;
                }
                if !spec.params.is_empty() {
                    self.r.at_key(
                        &format!("{field}.params"),
                        "a remedy of steps gives params to each step (steps[].params)",
                    );
                    ok = false;
                }
                let last = spec.steps.len() - 1;
                let mut steps = Vec::new();
                for (i, step) in spec.steps.iter().enumerate() {
                    let sfield = join_index(&format!("{field}.steps"), i);
                    let afield = format!("{sfield}.action");
                    let action_ok = self.action_ref(&afield, &step.action, Purpose::Fix);
                    if action_ok
                        && i < last
                        && self
                            .actions
                            .get(&step.action)
                            .is_some_and(|a| a.phases.rollback.is_none())
                    {
                        self.r.at_value(
                            &afield,
                            format!(
                                "action `{}` has no rollback phase: only the last step may be one that cannot be undone",
                                step.action
                            ),
                        );
                        ok = false;
                    }
                    let params = self.params(&sfield, &step.action, &step.params, action_ok);
                    let verify = match &step.verify {
                        None => Some(None),
                        Some(v) => self.verify(&format!("{sfield}.verify"), v, outputs).map(Some),
                    };
                    match (params, verify) {
                        (Some(params), Some(verify)) => steps.push(RemedyStep {
                            action: step.action.clone(),
                            params,
                            verify,
                        }),
                        _ => ok = false,
                    }
                }
                if spec.waves.is_some() {
                    self.r.at_key(
                        &format!("{field}.waves"),
                        "waves run one action per target; a remedy of steps cannot run in waves",
                    );
                    ok = false;
                }
                ok.then(|| (name.clone(), BTreeMap::new(), steps, None))
            }
            (Some(_), _, _) => {
                self.r.at_key(
                    field,
                    "a remedy is either `action` (with `params`) or `name` with `steps`, not both",
                );
                None
            }
            (None, None, false) => {
                self.r.at_key(
                    &format!("{field}.steps"),
                    "a remedy of steps needs a `name`: the fix type stages and outcomes are kept for",
                );
                None
            }
            (None, _, true) => {
                self.r
                    .at_key(field, "a remedy needs an `action`, or a `name` and `steps`");
                None
            }
        }
    }
}

/// A remedy's fix type, its action's params, its steps and its waves.
type RemedyActions = (String, BTreeMap<String, Template>, Vec<RemedyStep>, Option<Waves>);

/// A fix type's name: what a remedy of steps is known by (like an action's name).
fn is_fix_type_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Rounds to 6 decimals for messages, so 0.1 + 0.2 reads as 0.3.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
