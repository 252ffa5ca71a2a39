//! A remedy of several steps as one fix (a saga): every step is an action run through its own
//! phases (precheck → execute → verify, its own rollback when its execute or verify fails), in
//! order, under the locks of all the steps' targets (taken sorted, so two remedies never wait
//! for each other). When a step fails, the steps completed before it are rolled back, last
//! first; the remedy's own verify runs after the last step and rolls every step back when it
//! fails. Each step's phases are journaled with their step number (`step` on the entry), its end
//! as `step-finished`, the undoing as `rolling-back`: [`Executor::resume_steps`] reads them back
//! after a crash ([`steps_resume_point`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use tracing::{Instrument, error, info, info_span, warn};

use super::lock::{Held, Renewers};
use super::run::Run;
use super::steps_plan::{StepPlan, StepsPlan, step_instance, wave_of_steps};
use super::{Executor, FixError, FixPlan, FixReport, PhaseOverhead, VerifyCheck};
use crate::engine::diagnosis::StepCall;
use crate::fix::journal::{FixOutcome, JournalEntry, JournalEvent, StepUndo, StepsResumePoint, fix_id};
use crate::model::action::PhaseName;
use crate::runner::{PhaseExit, Runner, validate_params};

impl Executor {
    /// Runs a remedy of steps from its first step (rootfix's own decision).
    pub async fn run_steps(&self, plan: StepsPlan) -> Result<FixReport, FixError> {
        self.run_steps_as(plan, "rootfix").await
    }

    /// Runs a remedy of steps from its first step on `by`'s decision.
    pub async fn run_steps_as(&self, plan: StepsPlan, by: &str) -> Result<FixReport, FixError> {
        let fix = fix_id(&plan.incident, &plan.name);
        let span =
            info_span!("fix", incident = %plan.incident, action = %plan.name, steps = plan.steps.len());
        async {
            let refused =
                |reason: String| FixReport::without_phases(fix.clone(), FixOutcome::Refused(reason));
            if plan.steps.is_empty() {
                return Ok(refused("the remedy has no steps".into()));
            }
            let mut steps = Vec::new();
            for (k, step) in plan.steps.into_iter().enumerate() {
                match validate_params(&step.action, &step.params) {
                    Ok(params) => steps.push(StepPlan { params, ..step }),
                    Err(e) => return Ok(refused(format!("step {} ({}): {e}", k + 1, step.action.name))),
                }
            }
            let plan = StepsPlan { steps, ..plan };
            if let Some(k) = self.state.killswitch().await? {
                return Ok(refused(format!(
                    "the kill switch is on (by {}: {})",
                    k.by, k.reason
                )));
            }
            let saga = Saga::new(self, &plan, fix.clone(), by)?;
            let Some((held, renewers)) = self.acquire_all(&saga.targets(), None, &saga.lost_lock).await?
            else {
                return Ok(refused(format!(
                    "another fix holds one of the targets of `{}`",
                    plan.name
                )));
            };
            let started = match self.state.set_fix_active(&fix, true).await {
                Ok(()) => {
                    let event = JournalEvent::FixStarted {
                        params: BTreeMap::new(),
                        fencing_token: held.first().map_or(0, |h| h.2),
                        steps: saga.calls(),
                        waves: plan.waves.clone(),
                    };
                    saga.journal(None, event).await
                }
                Err(e) => Err(e.into()),
            };
            if let Err(e) = started {
                // Nothing ran: stop renewing, free the targets (a journal-less fix marked running
                // is cleared by recovery).
                for r in renewers {
                    r.abort();
                }
                for (action, key, token) in &held {
                    let _ = self.state.release_lock(action, key, *token).await;
                }
                return Err(e);
            }
            let mut saga = saga;
            let outcome = saga.forward(0, Vec::new()).await;
            saga.close(outcome, &held, renewers).await
        }
        .instrument(span)
        .await
    }

    /// Finishes a remedy of steps a stopped rootfix left: stops what its phases left running,
    /// takes its locks back, and resumes or rolls back from `point`.
    pub(super) async fn resume_steps(
        &self,
        plan: StepsPlan,
        point: StepsResumePoint,
    ) -> Result<FixReport, FixError> {
        let fix = fix_id(&plan.incident, &plan.name);
        let saga = Saga::new(self, &plan, fix.clone(), "rootfix")?;
        for (k, (runner, step)) in saga.runners.iter().zip(&plan.steps).enumerate() {
            if let Err(e) = runner
                .abandon(&step_instance(&plan.incident, k + 1), &step.action.name)
                .await
            {
                warn!(error = %e, "could not clean up what the stopped rootfix left running");
            }
        }
        let wait = self.lease + Duration::from_secs(2);
        let Some((held, renewers)) = self
            .acquire_all(&saga.targets(), Some(wait), &saga.lost_lock)
            .await?
        else {
            return Ok(FixReport::without_phases(
                fix,
                FixOutcome::RollbackFailed(format!(
                    "cannot take back the locks of `{}`; a human must finish this fix",
                    plan.name
                )),
            ));
        };
        let mut saga = saga;
        let outcome = match point {
            StepsResumePoint::Finished(outcome) => Ok(outcome),
            StepsResumePoint::VerifyStep {
                step,
                snapshot,
                completed,
            } => {
                saga.recovered(format!("step {}'s execute had completed; verifying it", step + 1))
                    .await;
                saga.resume_step_verify(step, snapshot, completed).await
            }
            StepsResumePoint::VerifyRemedy { completed } => {
                saga.recovered("every step had ended; verifying the remedy".into())
                    .await;
                saga.verify_remedy(completed).await
            }
            StepsResumePoint::RollBack {
                undo,
                reason,
                changed,
                broken,
            } => {
                saga.recovered(format!("rolling back: {reason}")).await;
                match (saga.undo(undo, reason.clone(), changed).await, broken) {
                    (Ok(FixOutcome::RollbackFailed(more)), _) => Ok(FixOutcome::RollbackFailed(more)),
                    (Ok(_), Some(broken)) => Ok(FixOutcome::RollbackFailed(format!(
                        "{reason}; {broken}; the other steps were rolled back"
                    ))),
                    (other, _) => other,
                }
            }
        };
        saga.close(outcome, &held, renewers).await
    }
}

/// One remedy of steps while it runs.
struct Saga<'a> {
    exec: &'a Executor,
    incident: String,
    name: String,
    fix: String,
    by: String,
    /// Each step as the plan of a fix of its own, under its step instance.
    plans: Arc<Vec<FixPlan>>,
    runners: Vec<Arc<dyn Runner>>,
    verify: Option<Arc<dyn VerifyCheck>>,
    dry_run: bool,
    /// Each step's wave (all 0 without waves) and how many waves there are.
    wave_of: Vec<usize>,
    waves: usize,
    lost_lock: Arc<AtomicBool>,
    phases: Vec<(PhaseName, u32, PhaseExit)>,
    overhead: Vec<PhaseOverhead>,
}

impl<'a> Saga<'a> {
    fn new(exec: &'a Executor, plan: &StepsPlan, fix: String, by: &str) -> Result<Self, FixError> {
        let mut runners = Vec::new();
        let mut plans = Vec::new();
        for (k, step) in plan.steps.iter().enumerate() {
            runners.push(exec.runner_for(step.action.runner)?);
            plans.push(FixPlan {
                incident: step_instance(&plan.incident, k + 1),
                action: step.action.clone(),
                params: step.params.clone(),
                verify: step.verify.clone(),
                dry_run: plan.dry_run,
            });
        }
        Ok(Self {
            exec,
            incident: plan.incident.clone(),
            name: plan.name.clone(),
            fix,
            by: by.to_string(),
            plans: Arc::new(plans),
            runners,
            verify: plan.verify.clone(),
            dry_run: plan.dry_run,
            wave_of: wave_of_steps(&plan.waves, plan.steps.len()),
            waves: plan.waves.len(),
            lost_lock: Arc::new(AtomicBool::new(false)),
            phases: Vec::new(),
            overhead: Vec::new(),
        })
    }

    /// Every step's (action, target key), sorted and once each: the order locks are taken in.
    fn targets(&self) -> Vec<(String, String)> {
        let mut targets: Vec<(String, String)> = self
            .plans
            .iter()
            .map(|p| (p.action.name.clone(), Executor::target_key(&p.action, &p.params)))
            .collect();
        targets.sort();
        targets.dedup();
        targets
    }

    fn calls(&self) -> Vec<StepCall> {
        self.plans
            .iter()
            .map(|p| StepCall {
                action: p.action.name.clone(),
                params: p.params.clone(),
            })
            .collect()
    }

    async fn journal(&self, step: Option<usize>, event: JournalEvent) -> Result<(), FixError> {
        let entry = JournalEntry {
            fix: self.fix.clone(),
            at: Utc::now(),
            step: step.map(|k| k as u32 + 1),
            event,
        };
        Ok(self.exec.state.append_journal(&self.incident, &entry).await?)
    }

    async fn recovered(&self, note: String) {
        if let Err(e) = self.journal(None, JournalEvent::Recovered { note }).await {
            warn!(error = %e, "could not journal the recovery");
        }
    }

    /// Step `k`'s run (over `plans`, the saga's own, held apart so the run does not borrow it).
    fn step_run<'p>(&self, plans: &'p [FixPlan], k: usize) -> Run<'p>
    where
        'a: 'p,
    {
        Run::new(
            self.exec,
            &plans[k],
            self.fix.clone(),
            self.runners[k].clone(),
            &self.by,
        )
        .into_step(k as u32 + 1, &self.incident, self.lost_lock.clone())
    }

    fn keep(&mut self, run: Run<'_>) -> Option<serde_json::Value> {
        self.phases.extend(run.phases);
        self.overhead.extend(run.overhead);
        run.snapshot
    }

    fn lost(&self) -> Option<FixOutcome> {
        self.lost_lock.load(Ordering::SeqCst).then(|| {
            FixOutcome::RollbackFailed(
                "the remedy lost a lock on one of its targets; stopped without further changes".into(),
            )
        })
    }

    /// Runs the steps from `start` on, then the remedy's verify.
    async fn forward(&mut self, start: usize, mut completed: Vec<StepUndo>) -> Result<FixOutcome, FixError> {
        let mut notes = Vec::new();
        for k in start..self.plans.len() {
            if let Some(lost) = self.lost() {
                return Ok(lost);
            }
            if self.waves > 0 && (k == 0 || self.wave_of[k] != self.wave_of[k - 1]) {
                let wave = self.wave_of[k];
                let last = self.wave_of.iter().rposition(|w| *w == wave).unwrap_or(k);
                info!(wave = wave + 1, first = k + 1, last = last + 1, "wave started");
                self.journal(
                    None,
                    JournalEvent::WaveStarted {
                        wave: wave as u32 + 1,
                        first: k as u32 + 1,
                        last: last as u32 + 1,
                    },
                )
                .await?;
            }
            let plans = self.plans.clone();
            let mut run = self.step_run(&plans, k);
            let outcome = run.run_from_precheck().await?;
            let snapshot = self.keep(run);
            if let FixOutcome::DryRun(note) = &outcome {
                notes.push(format!("step {}: {note}", k + 1));
            }
            if let Some(end) = self.after_step(k, outcome, snapshot, &mut completed).await? {
                return Ok(end);
            }
        }
        if self.dry_run {
            return Ok(FixOutcome::DryRun(notes.join("; ")));
        }
        self.verify_remedy(completed).await
    }

    /// Resumes step `k`'s verify after a restart, then the steps after it.
    async fn resume_step_verify(
        &mut self,
        k: usize,
        snapshot: Option<serde_json::Value>,
        mut completed: Vec<StepUndo>,
    ) -> Result<FixOutcome, FixError> {
        let plans = self.plans.clone();
        let mut run = self.step_run(&plans, k);
        let outcome = run.run_from_verify(snapshot).await?;
        let snapshot = self.keep(run);
        if let Some(end) = self.after_step(k, outcome, snapshot, &mut completed).await? {
            return Ok(end);
        }
        self.forward(k + 1, completed).await
    }

    /// Journals step `k`'s end; `Some` when the remedy ends with it (after undoing what the
    /// steps before it did).
    async fn after_step(
        &mut self,
        k: usize,
        outcome: FixOutcome,
        snapshot: Option<serde_json::Value>,
        completed: &mut Vec<StepUndo>,
    ) -> Result<Option<FixOutcome>, FixError> {
        self.journal(
            Some(k),
            JournalEvent::StepFinished {
                outcome: outcome.clone(),
            },
        )
        .await?;
        let action = self.plans[k].action.name.clone();
        info!(step = k + 1, %action, %outcome, "step ended");
        // In waves, a failure undoes its own wave; the waves before it were verified and stay.
        let wave = self.wave_of[k];
        let kept = completed.iter().filter(|(j, _)| self.wave_of[*j] < wave).count();
        let what = |r: &str| {
            if self.waves == 0 {
                format!("step {} ({action}): {r}", k + 1)
            } else {
                format!(
                    "wave {} of {}, target {} ({action}): {r}; the waves before it stay applied ({kept} target(s))",
                    wave + 1,
                    self.waves,
                    k + 1
                )
            }
        };
        let mut undo: Vec<StepUndo> = completed
            .iter()
            .filter(|(j, _)| self.wave_of[*j] == wave)
            .cloned()
            .collect();
        undo.reverse();
        Ok(match outcome {
            FixOutcome::Succeeded => {
                completed.push((k, snapshot));
                None
            }
            FixOutcome::AlreadyHealthy | FixOutcome::DryRun(_) => None,
            FixOutcome::Aborted(r) | FixOutcome::Refused(r) => Some(self.undo(undo, what(&r), false).await?),
            FixOutcome::RolledBack(r) => {
                Some(self.undo(undo, what(&format!("rolled back: {r}")), true).await?)
            }
            FixOutcome::RollbackFailed(r) => {
                if let Some(lost) = self.lost() {
                    return Ok(Some(lost));
                }
                let reason = what(&format!("its rollback failed: {r}"));
                let after = self.undo(undo, reason.clone(), true).await?;
                Some(match after {
                    FixOutcome::RollbackFailed(more) => FixOutcome::RollbackFailed(more),
                    _ => {
                        FixOutcome::RollbackFailed(format!("{reason}; the steps before it were rolled back"))
                    }
                })
            }
        })
    }

    /// The remedy's verify condition after the last step; when it does not hold, every
    /// completed step is rolled back.
    async fn verify_remedy(&mut self, completed: Vec<StepUndo>) -> Result<FixOutcome, FixError> {
        if completed.is_empty() {
            return Ok(FixOutcome::AlreadyHealthy);
        }
        let Some(check) = self.verify.clone() else {
            return Ok(FixOutcome::Succeeded);
        };
        let attempts = check.retries().max(1);
        let mut last = String::from("does not hold");
        for attempt in 1..=attempts {
            if let Some(lost) = self.lost() {
                return Ok(lost);
            }
            let (held, error) = match check.holds().await {
                Ok(h) => (h, None),
                Err(e) => (false, Some(e)),
            };
            self.journal(
                None,
                JournalEvent::VerifyCondition {
                    attempt,
                    held,
                    error: error.clone(),
                },
            )
            .await?;
            if held {
                return Ok(FixOutcome::Succeeded);
            }
            last = error.unwrap_or_else(|| "does not hold".into());
            if attempt < attempts {
                tokio::time::sleep(check.interval()).await;
            }
        }
        let mut undo = completed;
        undo.reverse();
        self.undo(
            undo,
            format!("the remedy's verify condition: {last} after {attempts} attempts"),
            true,
        )
        .await
    }

    /// Rolls `undo` back in its order (every one, even after one fails). `changed`: something
    /// was changed even when `undo` is empty (a step that rolled itself back).
    async fn undo(
        &mut self,
        undo: Vec<StepUndo>,
        reason: String,
        changed: bool,
    ) -> Result<FixOutcome, FixError> {
        if undo.is_empty() {
            return Ok(if changed {
                FixOutcome::RolledBack(reason)
            } else {
                FixOutcome::Aborted(reason)
            });
        }
        self.journal(
            None,
            JournalEvent::RollingBack {
                reason: reason.clone(),
            },
        )
        .await?;
        let mut failed = Vec::new();
        for (k, snapshot) in undo {
            if let Some(lost) = self.lost() {
                return Ok(lost);
            }
            let plans = self.plans.clone();
            let mut run = self.step_run(&plans, k);
            let out = run.rollback(snapshot, reason.clone()).await?;
            self.keep(run);
            if let FixOutcome::RollbackFailed(r) = out {
                error!(step = k + 1, reason = %r, "a step's rollback failed");
                failed.push(format!("step {} ({}): {r}", k + 1, self.plans[k].action.name));
            }
        }
        Ok(if failed.is_empty() {
            FixOutcome::RolledBack(reason)
        } else {
            FixOutcome::RollbackFailed(format!("{reason}; rollback failed for {}", failed.join("; ")))
        })
    }

    /// Ends the remedy: stops renewing the locks, journals the outcome, releases the locks.
    async fn close(
        self,
        outcome: Result<FixOutcome, FixError>,
        held: &Held,
        renewers: Renewers,
    ) -> Result<FixReport, FixError> {
        for r in renewers {
            r.abort();
        }
        let outcome = outcome?;
        self.journal(
            None,
            JournalEvent::FixFinished {
                outcome: outcome.clone(),
            },
        )
        .await?;
        self.exec.state.set_fix_active(&self.fix, false).await?;
        if outcome.pages() {
            error!(fix = %self.fix, %outcome, "remedy needs a human now");
        } else {
            info!(fix = %self.fix, %outcome, remedy = %self.name, "remedy finished");
        }
        for (action, key, token) in held {
            let _ = self.exec.state.release_lock(action, key, *token).await;
        }
        Ok(FixReport {
            fix: self.fix,
            outcome,
            phases: self.phases,
            overhead: self.overhead,
        })
    }
}
