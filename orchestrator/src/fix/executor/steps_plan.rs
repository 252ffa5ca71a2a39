//! What a remedy of several steps (or in waves) is to run: each step's action, params and
//! verify condition ([`StepPlan`]), the remedy's plan ([`StepsPlan`], built from the step calls
//! the diagnosis decided or the journal kept), each step's wave, and the runner instance of a
//! step.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::VerifyCheck;
use crate::engine::diagnosis::StepCall;
use crate::model::action::Action;

/// One step of a remedy of steps: its action, params and optional verify condition.
pub struct StepPlan {
    pub action: Arc<Action>,
    pub params: BTreeMap<String, String>,
    pub verify: Option<Arc<dyn VerifyCheck>>,
}

/// A remedy of steps to run as one fix.
pub struct StepsPlan {
    pub incident: String,
    /// The remedy's name: the fix type, and the fix id's second half.
    pub name: String,
    pub steps: Vec<StepPlan>,
    /// The remedy's verify condition, after the last step.
    pub verify: Option<Arc<dyn VerifyCheck>>,
    /// Every step's precheck and one verify; no execute, no rollback.
    pub dry_run: bool,
    /// A remedy in waves (its steps are the action once per target): how many steps each wave
    /// runs. A failed step undoes only its own wave's completed steps; the waves before it
    /// stay. Empty: one wave of every step.
    pub waves: Vec<u32>,
}

impl StepsPlan {
    /// The plan of the remedy `name` whose steps are `calls` (as the diagnosis decided them, or as
    /// its `fix-started` journaled them): each step's action looked up in `actions`, each verify
    /// condition from `verify` (a step's number, or `None` for the remedy's own). `Err` names a
    /// step's action that is not loaded.
    pub fn of_calls(
        incident: &str,
        name: &str,
        calls: &[StepCall],
        waves: &[u32],
        actions: &BTreeMap<String, Arc<Action>>,
        verify: impl Fn(Option<u32>) -> Option<Arc<dyn VerifyCheck>>,
        dry_run: bool,
    ) -> Result<Self, String> {
        let mut steps = Vec::new();
        for (k, call) in calls.iter().enumerate() {
            steps.push(StepPlan {
                action: actions
                    .get(&call.action)
                    .cloned()
                    .ok_or_else(|| call.action.clone())?,
                params: call.params.clone(),
                verify: verify(Some(k as u32 + 1)),
            });
        }
        Ok(Self {
            incident: incident.to_string(),
            name: name.to_string(),
            steps,
            verify: verify(None),
            dry_run,
            waves: waves.to_vec(),
        })
    }
}

/// The wave (0-based) of each of `steps` steps, from the waves' sizes (one wave when empty).
pub fn wave_of_steps(waves: &[u32], steps: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(steps);
    for (w, size) in waves.iter().enumerate() {
        out.extend(std::iter::repeat_n(w, *size as usize));
    }
    let last = waves.len().saturating_sub(1);
    out.resize(steps, last);
    out.truncate(steps);
    out
}

/// The instance the runner knows step `number` (1-based) of an incident's remedy by: its
/// containers' `rootfix.incident` label, its state folder, its Jobs' names. Two steps of one
/// action (e.g. `mysql-replica-lag` on the replica, then on the primary) never share them.
pub fn step_instance(incident: &str, number: usize) -> String {
    format!("{incident}-step{number}")
}
