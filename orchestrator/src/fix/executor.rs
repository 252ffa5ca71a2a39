//! Runs a fix: takes the target's idempotency lock (fencing token, lease renewed while the fix
//! runs), then precheck → execute → verify (retried; a container and/or a condition over fresh
//! evidence) → rollback when execute or verify fails. Every phase transition is journaled before
//! the next step starts; [`Executor::recover`] finishes what a crashed rootfix left: it resumes
//! verify when execute completed and rolls back otherwise, so a completed execute never runs
//! twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tracing::{Instrument, error, info, info_span, warn};

use super::journal::{FixOutcome, JournalEntry, JournalEvent, ResumePoint, fix_id, resume_point};
use crate::model::action::{Action, PhaseName, RunnerKind};
use crate::model::template::no_escape;
use crate::runner::availability::{
    DockerEndpoint, KUBERNETES_DISABLED, ReconnectingDocker, RunnerAvailability,
};
use crate::runner::{PhaseExit, PhaseOutcome, PhaseRequest, Runner, RunnerError, validate_params};
use crate::state::{StateError, StateStore};

/// A verify condition over fresh evidence (the playbook's `remedy.verify`), evaluated by the caller.
#[async_trait]
pub trait VerifyCheck: Send + Sync {
    /// Whether the fix shows in fresh evidence; an error counts as not yet.
    async fn holds(&self) -> Result<bool, String>;
    fn retries(&self) -> u32;
    fn interval(&self) -> Duration;
}

/// Finds the verify condition of a fix (incident, action) when its playbook has one.
pub type VerifyLookup<'a> = dyn Fn(&str, &str) -> Option<Arc<dyn VerifyCheck>> + Sync + 'a;

/// What to run.
pub struct FixPlan {
    pub incident: String,
    pub action: Arc<Action>,
    pub params: BTreeMap<String, String>,
    pub verify: Option<Arc<dyn VerifyCheck>>,
    /// Run everything but execute and rollback: precheck, then verify once, and report.
    pub dry_run: bool,
}

/// What happened, phase by phase.
#[derive(Debug, Clone, PartialEq)]
pub struct FixReport {
    pub fix: String,
    pub outcome: FixOutcome,
    pub phases: Vec<(PhaseName, u32, PhaseExit)>,
    /// rootfix's own overhead around each container phase (for the benchmark).
    pub overhead: Vec<PhaseOverhead>,
}

/// rootfix's time around one phase, apart from the container's own run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseOverhead {
    /// From deciding to run the phase (before its journal entry) to the engine's create request.
    pub decision_to_create: Duration,
    /// The engine's create-and-start time.
    pub create_to_start: Duration,
    /// From the container's exit to the journal entry being written.
    pub exit_to_journal: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("no runner is configured for `{0}` actions")]
    NoRunner(&'static str),
}

/// When another fix holds the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockPolicy {
    /// Refuse at once.
    Refuse,
    /// Wait up to this long for the lock, then refuse.
    Wait(Duration),
}

pub struct Executor {
    pub state: Arc<dyn StateStore>,
    pub docker: Option<Arc<dyn Runner>>,
    pub kubernetes: Option<Arc<dyn Runner>>,
    pub kubernetes_job: Option<Arc<dyn Runner>>,
    pub lease: Duration,
    pub lock_policy: LockPolicy,
}

struct Run<'a> {
    exec: &'a Executor,
    plan: &'a FixPlan,
    fix: String,
    runner: Arc<dyn Runner>,
    /// Whose decision the fix is (the identity of its phases in the audit trail).
    by: String,
    lost_lock: Arc<AtomicBool>,
    phases: Vec<(PhaseName, u32, PhaseExit)>,
    overhead: Vec<PhaseOverhead>,
}

impl Executor {
    /// The executor `rootfix serve` and `rootfix fix` use: the runners this machine can reach.
    pub async fn from_config(config: &crate::config::ServeConfig, state: Arc<dyn StateStore>) -> Self {
        Self::from_config_checked(config, state).await.0
    }

    /// [`Self::from_config`] and what it found: which runners can run here, and why not. Docker
    /// phases connect to the engine when they run ([`ReconnectingDocker`]), so an engine that
    /// comes back after start is used; the availability says whether it answers now.
    pub async fn from_config_checked(
        config: &crate::config::ServeConfig,
        state: Arc<dyn StateStore>,
    ) -> (Self, RunnerAvailability) {
        let docker: Arc<dyn Runner> = Arc::new(
            ReconnectingDocker::new(config.fixes.state_dir.clone(), &config.key_prefix).with_host_paths(
                crate::runner::docker::HostPaths::new(config.fixes.host_paths.clone()),
            ),
        );
        let (kube, kube_why): (Option<Arc<dyn Runner>>, Option<String>) = if config.kubernetes.enabled {
            match kube::Client::try_default().await {
                Ok(client) => (
                    Some(Arc::new(crate::runner::kubernetes::KubeRunner::new(
                        client,
                        config.kubernetes.default_namespace.clone(),
                    ))),
                    None,
                ),
                Err(e) => {
                    warn!(error = %e, "no Kubernetes API: actions with runner `kubernetes`/`kubernetes-job` cannot run");
                    (
                        None,
                        Some(format!("no Kubernetes API client could be built: {e}")),
                    )
                }
            }
        } else {
            (None, Some(KUBERNETES_DISABLED.to_string()))
        };
        let availability = RunnerAvailability::checked(DockerEndpoint::local(), kube_why).await;
        let executor = Self {
            state,
            docker: Some(docker),
            kubernetes: kube.clone(),
            kubernetes_job: kube,
            lease: config.fixes.lease,
            lock_policy: if config.fixes.lock_wait.is_zero() {
                LockPolicy::Refuse
            } else {
                LockPolicy::Wait(config.fixes.lock_wait)
            },
        };
        (executor, availability)
    }

    /// The runner of each kind this executor has (for the diagnostic actions, which run on the
    /// same runners as the fixes).
    pub fn runners(&self) -> Vec<(RunnerKind, Arc<dyn Runner>)> {
        [
            (RunnerKind::Docker, &self.docker),
            (RunnerKind::Kubernetes, &self.kubernetes),
            (RunnerKind::KubernetesJob, &self.kubernetes_job),
        ]
        .into_iter()
        .filter_map(|(kind, runner)| runner.clone().map(|r| (kind, r)))
        .collect()
    }

    /// Why actions of `kind` cannot run with this executor: it has no runner for them.
    pub fn missing_runner(&self, kind: RunnerKind) -> Option<String> {
        self.runner_for(kind).err().map(|e| e.to_string())
    }

    fn runner_for(&self, kind: RunnerKind) -> Result<Arc<dyn Runner>, FixError> {
        let (runner, name) = match kind {
            RunnerKind::Docker => (&self.docker, "docker"),
            RunnerKind::Kubernetes => (&self.kubernetes, "kubernetes"),
            RunnerKind::KubernetesJob => (&self.kubernetes_job, "kubernetes-job"),
        };
        runner.clone().ok_or(FixError::NoRunner(name))
    }

    /// The target's key: the action's idempotency template over the params.
    pub fn target_key(action: &Action, params: &BTreeMap<String, String>) -> String {
        action
            .idempotency_key
            .as_ref()
            .and_then(|t| t.render(&BTreeMap::new(), params, no_escape).ok())
            .unwrap_or_else(|| action.name.clone())
    }

    /// Runs a fix from the start (rootfix's own decision: its phases are audited as `rootfix`).
    pub async fn run(&self, plan: FixPlan) -> Result<FixReport, FixError> {
        self.run_as(plan, "rootfix").await
    }

    /// Runs a fix from the start on `by`'s decision: its phases are audited under that identity.
    pub async fn run_as(&self, plan: FixPlan, by: &str) -> Result<FixReport, FixError> {
        let fix = fix_id(&plan.incident, &plan.action.name);
        let span = info_span!("fix", incident = %plan.incident, action = %plan.action.name);
        async {
            let refused = |reason: String| FixReport {
                fix: fix.clone(),
                outcome: FixOutcome::Refused(reason),
                phases: Vec::new(),
                overhead: Vec::new(),
            };
            let params = match validate_params(&plan.action, &plan.params) {
                Ok(p) => p,
                Err(e) => return Ok(refused(e.to_string())),
            };
            // Fail closed: an unreachable state store is an error here, and no fix starts.
            if let Some(k) = self.state.killswitch().await? {
                return Ok(refused(format!(
                    "the kill switch is on (by {}: {})",
                    k.by, k.reason
                )));
            }
            let runner = self.runner_for(plan.action.runner)?;
            let key = Self::target_key(&plan.action, &params);
            let Some(token) = self.acquire(&plan.action.name, &key).await? else {
                return Ok(refused(format!(
                    "another fix holds `{}` on `{key}`",
                    plan.action.name
                )));
            };
            let plan = FixPlan { params, ..plan };
            self.state.set_fix_active(&fix, true).await?;
            let mut run = Run::new(self, &plan, fix.clone(), runner, by);
            run.journal(JournalEvent::FixStarted {
                params: plan.params.clone(),
                fencing_token: token,
            })
            .await?;
            let renewer = self.keep_lock(&plan.action.name, &key, token, run.lost_lock.clone());
            let outcome = run.run_from_precheck().await;
            run.close(outcome, &key, token, renewer).await
        }
        .instrument(span)
        .await
    }

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
            let entries: Vec<JournalEntry> = self
                .state
                .journal(incident)
                .await?
                .into_iter()
                .filter(|e| e.fix == fix)
                .collect();
            let params = entries
                .iter()
                .find_map(|e| match &e.event {
                    JournalEvent::FixStarted { params, .. } => Some(params.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let Some(action) = actions.get(action_name).cloned() else {
                error!(%fix, "an unfinished fix names an action that is no longer loaded; leaving it for a human");
                continue;
            };
            let plan = FixPlan {
                incident: incident.to_string(),
                action: action.clone(),
                params,
                verify: verify(incident, action_name),
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
                return Ok(FixReport {
                    fix,
                    outcome: FixOutcome::RollbackFailed(format!(
                        "cannot take back the lock on `{key}`; a human must finish this fix"
                    )),
                    phases: Vec::new(),
                    overhead: Vec::new(),
                });
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

    async fn acquire(&self, action: &str, key: &str) -> Result<Option<u64>, FixError> {
        match self.lock_policy {
            LockPolicy::Refuse => Ok(self.state.acquire_lock(action, key, self.lease).await?),
            LockPolicy::Wait(max) => self.acquire_waiting(action, key, max).await,
        }
    }

    async fn acquire_waiting(&self, action: &str, key: &str, max: Duration) -> Result<Option<u64>, FixError> {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            if let Some(token) = self.state.acquire_lock(action, key, self.lease).await? {
                return Ok(Some(token));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Renews the lease every third of it; flags `lost` when the lock is gone.
    fn keep_lock(
        &self,
        action: &str,
        key: &str,
        token: u64,
        lost: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        let (state, action, key, lease) = (
            self.state.clone(),
            action.to_string(),
            key.to_string(),
            self.lease,
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match state.renew_lock(&action, &key, token, lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        error!(%action, %key, token, "the fix lost its lock");
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => warn!(error = %e, "renewing the fix's lock failed; retrying"),
                }
            }
        })
    }
}

impl<'a> Run<'a> {
    fn new(exec: &'a Executor, plan: &'a FixPlan, fix: String, runner: Arc<dyn Runner>, by: &str) -> Self {
        Self {
            exec,
            by: by.to_string(),
            plan,
            fix,
            runner,
            lost_lock: Arc::new(AtomicBool::new(false)),
            phases: Vec::new(),
            overhead: Vec::new(),
        }
    }

    async fn journal(&self, event: JournalEvent) -> Result<(), StateError> {
        let entry = JournalEntry {
            fix: self.fix.clone(),
            at: Utc::now(),
            event,
        };
        self.exec.state.append_journal(&self.plan.incident, &entry).await
    }

    /// Ends the fix: stops renewing the lock, journals the outcome, releases the lock.
    async fn close(
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
                "{} {} attempt {attempt}: {}",
                self.fix,
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

    fn lock_lost(&self) -> Option<FixOutcome> {
        self.lost_lock.load(Ordering::SeqCst).then(|| {
            FixOutcome::RollbackFailed(
                "the fix lost its lock on the target; stopped without further changes".into(),
            )
        })
    }

    async fn run_from_precheck(&mut self) -> Result<FixOutcome, FixError> {
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
        if exec.exit != PhaseExit::Success {
            return self
                .rollback(snapshot, format!("execute: {}", describe(&exec.exit)))
                .await;
        }
        self.run_from_verify(snapshot).await
    }

    async fn run_from_verify(&mut self, snapshot: Option<serde_json::Value>) -> Result<FixOutcome, FixError> {
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

    async fn rollback(
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

fn describe(exit: &PhaseExit) -> String {
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
