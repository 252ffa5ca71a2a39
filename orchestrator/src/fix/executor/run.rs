//! One fix's run, phase by phase: precheck → execute → verify (retried; a container and/or the
//! verify condition) → rollback when execute or verify fails, or a dry run's single verify. Each
//! phase is journaled before it starts and when it ends, and audited; the run stops when the lock
//! is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use tracing::{error, info, warn};

use super::{Executor, FixError, FixPlan, FixReport, PhaseOverhead};
use crate::fix::journal::{FixOutcome, JournalEntry, JournalEvent};
use crate::model::action::PhaseName;
use crate::runner::{PhaseExit, PhaseOutcome, PhaseRequest, Runner, RunnerError};
use crate::state::StateError;

pub(super) struct Run<'a> {
    exec: &'a Executor,
    plan: &'a FixPlan,
    fix: String,
    runner: Arc<dyn Runner>,
    /// Whose decision the fix is (the identity of its phases in the audit trail).
    by: String,
    pub(super) lost_lock: Arc<AtomicBool>,
    /// A step of a remedy of steps: its 1-based number and the incident whose journal holds it
    /// (the plan's `incident` is then the step's own instance, `<incident>-step<k>`, which the
    /// runner names its containers, Jobs and state folder after).
    step: Option<(u32, String)>,
    pub(super) phases: Vec<(PhaseName, u32, PhaseExit)>,
    pub(super) overhead: Vec<PhaseOverhead>,
    /// What the last execute snapshotted (a step's rollback after later steps needs it).
    pub(super) snapshot: Option<serde_json::Value>,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        exec: &'a Executor,
        plan: &'a FixPlan,
        fix: String,
        runner: Arc<dyn Runner>,
        by: &str,
    ) -> Self {
        Self {
            exec,
            by: by.to_string(),
            plan,
            fix,
            runner,
            lost_lock: Arc::new(AtomicBool::new(false)),
            step: None,
            phases: Vec::new(),
            overhead: Vec::new(),
            snapshot: None,
        }
    }

    /// This run is step `number` of a remedy of steps journaled under `incident`, stopping
    /// when any of the remedy's locks is lost.
    pub(super) fn into_step(mut self, number: u32, incident: &str, lost_lock: Arc<AtomicBool>) -> Self {
        self.step = Some((number, incident.to_string()));
        self.lost_lock = lost_lock;
        self
    }

    pub(super) async fn journal(&self, event: JournalEvent) -> Result<(), StateError> {
        let (step, incident) = match &self.step {
            Some((number, incident)) => (Some(*number), incident.as_str()),
            None => (None, self.plan.incident.as_str()),
        };
        let entry = JournalEntry {
            fix: self.fix.clone(),
            at: Utc::now(),
            step,
            event,
        };
        self.exec.state.append_journal(incident, &entry).await
    }

    /// Ends the fix: stops renewing the lock, journals the outcome, releases the lock.
    pub(super) async fn close(
        mut self,
        outcome: Result<FixOutcome, FixError>,
        key: &str,
        token: u64,
        renewer: tokio::task::JoinHandle<()>,
    ) -> Result<FixReport, FixError> {
        renewer.abort();
        let outcome = self.finish(outcome?).await?;
        let _ = self
            .exec
            .state
            .release_lock(&self.plan.action.name, key, token)
            .await;
        Ok(FixReport {
            fix: self.fix,
            outcome,
            phases: self.phases,
            overhead: self.overhead,
        })
    }

    async fn finish(&mut self, outcome: FixOutcome) -> Result<FixOutcome, FixError> {
        self.journal(JournalEvent::FixFinished {
            outcome: outcome.clone(),
        })
        .await?;
        self.exec.state.set_fix_active(&self.fix, false).await?;
        if outcome.pages() {
            error!(fix = %self.fix, ?outcome, "fix needs a human now");
        } else {
            info!(fix = %self.fix, ?outcome, "fix finished");
        }
        Ok(outcome)
    }

    /// Runs one phase with journal entries before and after.
    async fn phase(
        &mut self,
        phase: PhaseName,
        attempt: u32,
        snapshot: Option<&serde_json::Value>,
    ) -> Result<PhaseOutcome, FixError> {
        let spec = self.plan.action.phases.get(phase);
        let decided = std::time::Instant::now();
        self.journal(JournalEvent::PhaseStarted { phase, attempt })
            .await?;
        let request = PhaseRequest {
            incident: &self.plan.incident,
            action: &self.plan.action,
            phase,
            params: &self.plan.params,
            attempt,
            timeout: spec.map_or(Duration::from_secs(120), |p| p.timeout),
            snapshot,
        };
        let outcome = match self.runner.run_phase(request).await {
            Ok(o) => o,
            // Could not run at all (missing image, engine down): a failed phase, with the reason.
            Err(e) => failed_outcome(&e),
        };
        self.journal(JournalEvent::PhaseFinished {
            phase,
            attempt,
            exit: outcome.exit.clone(),
            snapshot: outcome.snapshot.clone(),
            stdout: outcome.stdout.clone(),
            stderr: outcome.stderr.clone(),
        })
        .await?;
        // The audit trail keeps every phase's end too (the journal has the detail).
        let audit = crate::audit::AuditEvent {
            at: Utc::now(),
            identity: self.by.clone(),
            action: "fix.phase".into(),
            detail: format!(
                "{} {}{} attempt {attempt}: {}",
                self.fix,
                self.step.as_ref().map_or(String::new(), |(n, _)| format!(
                    "step {n} ({}) ",
                    self.plan.action.name
                )),
                phase.as_str(),
                describe(&outcome.exit)
            ),
        };
        if let Err(e) = self.exec.state.append_audit(&audit).await {
            warn!(error = %e, "could not write the phase to the audit trail");
        }
        if let Some(t) = outcome.timing {
            self.overhead.push(PhaseOverhead {
                decision_to_create: t.create_sent.saturating_duration_since(decided),
                create_to_start: t.started.saturating_duration_since(t.create_sent),
                exit_to_journal: t.exited.elapsed(),
            });
        }
        self.phases.push((phase, attempt, outcome.exit.clone()));
        Ok(outcome)
    }

    pub(super) fn lock_lost(&self) -> Option<FixOutcome> {
        self.lost_lock.load(Ordering::SeqCst).then(|| {
            FixOutcome::RollbackFailed(
                "the fix lost its lock on the target; stopped without further changes".into(),
            )
        })
    }

    pub(super) async fn run_from_precheck(&mut self) -> Result<FixOutcome, FixError> {
        if self.plan.action.phases.precheck.is_some() {
            let pre = self.phase(PhaseName::Precheck, 1, None).await?;
            match pre.exit {
                PhaseExit::Success => {}
                PhaseExit::AlreadyHealthy => return Ok(FixOutcome::AlreadyHealthy),
                other => return Ok(FixOutcome::Aborted(format!("precheck: {}", describe(&other)))),
            }
        }
        if let Some(lost) = self.lock_lost() {
            return Ok(lost);
        }
        // The kill switch stops a fix before it changes anything; once execute has started, the
        // fix finishes it and then verifies or rolls back, so nothing is left half done.
        if let Some(k) = self.exec.state.killswitch().await? {
            return Ok(FixOutcome::Aborted(format!(
                "the kill switch was turned on (by {}: {}); nothing was changed",
                k.by, k.reason
            )));
        }
        if self.plan.dry_run {
            return self.dry_run_verify().await;
        }
        let exec = self.phase(PhaseName::Execute, 1, None).await?;
        let snapshot = exec.snapshot.clone();
        self.snapshot = snapshot.clone();
        if exec.exit != PhaseExit::Success {
            return self
                .rollback(snapshot, format!("execute: {}", describe(&exec.exit)))
                .await;
        }
        self.run_from_verify(snapshot).await
    }

    pub(super) async fn run_from_verify(
        &mut self,
        snapshot: Option<serde_json::Value>,
    ) -> Result<FixOutcome, FixError> {
        self.snapshot = snapshot.clone();
        let container = self.plan.action.phases.verify.clone();
        let check = self.plan.verify.clone();
        let attempts = container
            .as_ref()
            .map_or(1, |p| p.retries)
            .max(check.as_ref().map_or(1, |c| c.retries()))
            .max(1);
        let interval = container
            .as_ref()
            .map(|p| p.interval)
            .or_else(|| check.as_ref().map(|c| c.interval()))
            .unwrap_or(Duration::from_secs(5));
        let mut last = String::from("verify did not pass");
        for attempt in 1..=attempts {
            if let Some(lost) = self.lock_lost() {
                return Ok(lost);
            }
            let mut passed = true;
            if container.is_some() {
                let out = self.phase(PhaseName::Verify, attempt, None).await?;
                if out.exit != PhaseExit::Success {
                    passed = false;
                    last = format!("verify: {}", describe(&out.exit));
                }
            }
            if passed && let Some(check) = &check {
                let (held, error) = match check.holds().await {
                    Ok(h) => (h, None),
                    Err(e) => (false, Some(e)),
                };
                self.journal(JournalEvent::VerifyCondition {
                    attempt,
                    held,
                    error: error.clone(),
                })
                .await?;
                if !held {
                    passed = false;
                    last = format!(
                        "verify condition: {}",
                        error.unwrap_or_else(|| "does not hold".into())
                    );
                }
            }
            if passed {
                return Ok(FixOutcome::Succeeded);
            }
            if attempt < attempts {
                tokio::time::sleep(interval).await;
            }
        }
        self.rollback(snapshot, format!("{last} after {attempts} attempts"))
            .await
    }

    /// A dry run's verify: one attempt of the container and the condition, for the report only.
    async fn dry_run_verify(&mut self) -> Result<FixOutcome, FixError> {
        let mut notes = vec!["precheck passed; execute skipped (dry run)".to_string()];
        if self.plan.action.phases.verify.is_some() {
            let out = self.phase(PhaseName::Verify, 1, None).await?;
            notes.push(format!("verify container: {}", describe(&out.exit)));
        }
        if let Some(check) = self.plan.verify.clone() {
            let (held, error) = match check.holds().await {
                Ok(h) => (h, None),
                Err(e) => (false, Some(e)),
            };
            self.journal(JournalEvent::VerifyCondition {
                attempt: 1,
                held,
                error: error.clone(),
            })
            .await?;
            notes.push(format!(
                "verify condition: {}",
                error.unwrap_or_else(|| if held {
                    "holds".into()
                } else {
                    "does not hold".into()
                })
            ));
        }
        Ok(FixOutcome::DryRun(notes.join("; ")))
    }

    pub(super) async fn rollback(
        &mut self,
        snapshot: Option<serde_json::Value>,
        reason: String,
    ) -> Result<FixOutcome, FixError> {
        if self.plan.action.phases.rollback.is_none() {
            return Ok(FixOutcome::RollbackFailed(format!(
                "{reason}; the action has no rollback"
            )));
        }
        let out = self.phase(PhaseName::Rollback, 1, snapshot.as_ref()).await?;
        Ok(match out.exit {
            PhaseExit::Success => FixOutcome::RolledBack(reason),
            other => FixOutcome::RollbackFailed(format!("{reason}; rollback: {}", describe(&other))),
        })
    }
}

pub(super) fn describe(exit: &PhaseExit) -> String {
    match exit {
        PhaseExit::Success => "succeeded".into(),
        PhaseExit::AlreadyHealthy => "already healthy".into(),
        PhaseExit::Failed { reason, .. } => reason.clone(),
        PhaseExit::TimedOut { after_ms } => format!("timed out after {after_ms} ms and was killed"),
    }
}

fn failed_outcome(e: &RunnerError) -> PhaseOutcome {
    let now = Utc::now();
    PhaseOutcome {
        exit: PhaseExit::Failed {
            code: None,
            reason: e.to_string(),
        },
        stdout: String::new(),
        stderr: e.to_string(),
        started_at: now,
        finished_at: now,
        snapshot: None,
        timing: None,
    }
}
