//! A leaf's remedy: one action with its params, `name` with `steps` (each checked like an
//! action; every step but the last can be rolled back), or an action in `waves` over an evidence
//! list; its confidence rule (weights in range, a reachable threshold) and its verify conditions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::positive;
use super::tree::TreeCheck;
use crate::catalog::spans::join_index;
use crate::document::playbook::WaveSizeSpec;
use crate::model::action::Purpose;
use crate::model::condition::Scope;
use crate::model::playbook::{
    ConfidenceRule, Remedy, RemedyStep, VerifyCondition, WaveSize, Waves, WeightedSignal,
};
use crate::model::template::Template;

const DEFAULT_VERIFY_RETRIES: u32 = 5;
const DEFAULT_VERIFY_INTERVAL: Duration = Duration::from_secs(10);
/// Tolerance when comparing sums of weights written as decimals.
const WEIGHT_EPSILON: f64 = 1e-9;

impl TreeCheck<'_, '_, '_> {
    pub(super) fn remedy(
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
