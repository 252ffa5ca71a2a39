//! Recovery: the fixes a crashed rootfix left unfinished, each resumed from its journal — verify
//! when execute's success is journaled, a rollback otherwise — so a completed execute never runs
//! twice. A remedy of steps (its `fix-started` lists them) resumes through
//! [`Executor::resume_steps`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, error, info_span, warn};

use super::run::Run;
use super::{Executor, FixError, FixPlan, FixReport, StepsPlan, VerifyLookup};
use crate::fix::journal::{
    FixOutcome, JournalEntry, JournalEvent, ResumePoint, fix_id, resume_point, steps_resume_point,
};
use crate::model::action::Action;

impl Executor {
    /// Finishes every fix a crashed rootfix left unfinished. `actions` looks actions up by name;
    /// `verify` gives the verify condition of a fix, when its playbook has one.
    pub async fn recover(
        &self,
        actions: &BTreeMap<String, Arc<Action>>,
        verify: &VerifyLookup<'_>,
    ) -> Result<Vec<FixReport>, FixError> {
        let mut reports = Vec::new();
        for fix in self.state.active_fixes().await? {
            let Some((incident, action_name)) = fix.split_once('/') else {
                continue;
            };
            let mut entries: Vec<JournalEntry> = self
                .state
                .journal(incident)
                .await?
                .into_iter()
                .filter(|e| e.fix == fix)
                .collect();
            // Only the last run of this fix: an earlier run of it on the same incident (an
            // operator's second run) ended, and its end says nothing about this one.
            if let Some(last) = entries
                .iter()
                .rposition(|e| matches!(e.event, JournalEvent::FixStarted { .. }))
            {
                entries.drain(..last);
            }
            if entries.is_empty() && !actions.contains_key(action_name) {
                // Marked running, but its start never reached the journal (rootfix stopped, or
                // Redis failed, in between): nothing ran, so nothing is owed. A fix of a loaded
                // action resumes below and ends the same way.
                warn!(%fix, "an unfinished fix has no journal; nothing was changed");
                self.state.set_fix_active(&fix, false).await?;
                reports.push(FixReport::without_phases(
                    fix.clone(),
                    FixOutcome::Aborted("rootfix stopped before the fix started; nothing was changed".into()),
                ));
                continue;
            }
            let params = entries
                .iter()
                .find_map(|e| match &e.event {
                    JournalEvent::FixStarted { params, .. } => Some(params.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let (steps, waves) = entries
                .iter()
                .find_map(|e| match &e.event {
                    JournalEvent::FixStarted { steps, waves, .. } if !steps.is_empty() => {
                        Some((steps.clone(), waves.clone()))
                    }
                    _ => None,
                })
                .unwrap_or_default();
            if !steps.is_empty() {
                let span = info_span!("recover", incident = %incident, action = %action_name);
                let lookup = |step: Option<u32>| verify(incident, action_name, step);
                let Ok(plan) =
                    StepsPlan::of_calls(incident, action_name, &steps, &waves, actions, lookup, false)
                else {
                    error!(%fix, "an unfinished remedy of steps names an action that is no longer loaded; leaving it for a human");
                    continue;
                };
                let point = steps_resume_point(&entries, steps.len(), &waves);
                match self.resume_steps(plan, point).instrument(span).await {
                    Ok(report) => reports.push(report),
                    // This install cannot run one of its steps now: the others are still
                    // recovered; this one waits for a start that can (or `fix recover`).
                    Err(FixError::NoRunner(kind)) => {
                        error!(%fix, runner = kind, "an unfinished remedy needs a runner this install does not have; leaving it");
                    }
                    Err(e) => return Err(e),
                }
                continue;
            }
            let Some(action) = actions.get(action_name).cloned() else {
                error!(%fix, "an unfinished fix names an action that is no longer loaded; leaving it for a human");
                continue;
            };
            let plan = FixPlan {
                incident: incident.to_string(),
                action: action.clone(),
                params,
                verify: verify(incident, action_name, None),
                dry_run: false,
            };
            let span = info_span!("recover", incident = %incident, action = %action_name);
            let report = self.resume(plan, resume_point(&entries)).instrument(span).await?;
            reports.push(report);
        }
        Ok(reports)
    }

    async fn resume(&self, plan: FixPlan, point: ResumePoint) -> Result<FixReport, FixError> {
        let fix = fix_id(&plan.incident, &plan.action.name);
        let runner = self.runner_for(plan.action.runner)?;
        // A phase the dead process started may still be running: stop it before anything else.
        if let Err(e) = runner.abandon(&plan.incident, &plan.action.name).await {
            warn!(error = %e, "could not clean up what the stopped rootfix left running");
        }
        let key = Self::target_key(&plan.action, &plan.params);
        // The dead process's lease runs out on its own; wait for it.
        let token = match self
            .acquire_waiting(&plan.action.name, &key, self.lease + Duration::from_secs(2))
            .await?
        {
            Some(t) => t,
            None => {
                return Ok(FixReport::without_phases(
                    fix,
                    FixOutcome::RollbackFailed(format!(
                        "cannot take back the lock on `{key}`; a human must finish this fix"
                    )),
                ));
            }
        };
        let mut run = Run::new(self, &plan, fix.clone(), runner, "rootfix");
        let renewer = self.keep_lock(&plan.action.name, &key, token, run.lost_lock.clone());
        let outcome = match point {
            ResumePoint::Finished(outcome) => Ok(outcome),
            ResumePoint::BeforeExecute => {
                run.journal(JournalEvent::Recovered {
                    note: "rootfix stopped before execute; nothing was changed".into(),
                })
                .await?;
                Ok(FixOutcome::Aborted(
                    "interrupted before execute; nothing was changed".into(),
                ))
            }
            ResumePoint::Verify { snapshot } => {
                run.journal(JournalEvent::Recovered {
                    note: "execute had completed; verifying".into(),
                })
                .await?;
                run.run_from_verify(snapshot).await
            }
            ResumePoint::RollBack { snapshot, reason } => {
                run.journal(JournalEvent::Recovered { note: reason.clone() })
                    .await?;
                run.rollback(snapshot, reason).await
            }
        };
        run.close(outcome, &key, token, renewer).await
    }
}
