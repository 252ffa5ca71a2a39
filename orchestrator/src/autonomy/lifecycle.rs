//! A fix's life once a decision lets it run: the last gates (rate limit, concurrency, dry run),
//! the fix itself in the background (through the [`Executor`], with the playbook's verify
//! condition), and its end — the outcome for promotion, the incident's new state, a demotion
//! after a failed rollback, notifications, and the cooldown silence of an `auto` fix. Also the
//! recovery of the fixes a stopped rootfix left.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tracing::{Instrument, error, info, info_span, warn};

use super::context::{AutonomyError, Context, Decided, ROOTFIX};
use super::gate::Gate;
use super::outcome::OutcomeKind;
use super::refusal::refuse;
use super::scope::Scope;
use super::stage::Stage;
use super::stages::Stages;
use crate::engine::EvidenceProvider;
use crate::fix::executor::{Executor, FixPlan, StepsPlan, VerifyCheck};
use crate::fix::journal::{FixOutcome, fix_id};
use crate::fix::verify::ConditionVerify;
use crate::incident::{Incident, IncidentFix, IncidentState};
use crate::notify::{Ask, NotificationKind};
use crate::silence::SilenceClient;

/// Counts the fixes this process runs, so shutdown and tests can wait for them.
#[derive(Default)]
struct Running {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One running fix, counted until dropped.
pub(super) struct RunningFix(Arc<Running>);

impl Drop for RunningFix {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
        self.0.idle.notify_waiters();
    }
}

/// Runs fixes to their end.
pub struct FixLifecycle {
    pub(super) ctx: Arc<Context>,
    pub(super) stages: Arc<Stages>,
    pub(super) executor: Arc<Executor>,
    pub(super) evidence: Arc<dyn EvidenceProvider>,
    pub(super) silences: Option<SilenceClient>,
    running: Arc<Running>,
}

impl FixLifecycle {
    pub fn new(
        ctx: Arc<Context>,
        stages: Arc<Stages>,
        executor: Arc<Executor>,
        evidence: Arc<dyn EvidenceProvider>,
        silences: Option<SilenceClient>,
    ) -> Self {
        Self {
            ctx,
            stages,
            executor,
            evidence,
            silences,
            running: Arc::new(Running::default()),
        }
    }

    /// Counts a fix as running until the returned value is dropped.
    pub(super) fn track(&self) -> RunningFix {
        self.running.count.fetch_add(1, Ordering::SeqCst);
        RunningFix(self.running.clone())
    }

    /// Fixes started by this process and not finished.
    pub fn running_fixes(&self) -> usize {
        self.running.count.load(Ordering::SeqCst)
    }

    /// Waits until no fix started by this process is running (tests, shutdown).
    pub async fn wait_idle(&self, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        while self.running_fixes() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), self.running.idle.notified()).await;
        }
        true
    }

    /// Gates 1 and 4-6 (kill switch, rate limit, concurrency, dry-run), then the fix, in the
    /// background.
    pub(super) async fn start(
        self: &Arc<Self>,
        incident: &Incident,
        mut fix: IncidentFix,
        scope: &Scope,
        by: &str,
    ) -> Result<Decided, AutonomyError> {
        let incident_id = incident.id.as_str();
        let now = self.ctx.clock.now();
        let id = fix_id(incident_id, &fix.action);
        if !self
            .ctx
            .state
            .take_rate_slot(
                &scope.name,
                &id,
                now,
                self.ctx.config.rate_window,
                scope.fixes_per_hour,
            )
            .await?
        {
            let reason = format!(
                "{} fixes started in scope {} within the last {}; the limit is {}",
                self.ctx
                    .state
                    .rate_count(&scope.name, now, self.ctx.config.rate_window)
                    .await?,
                scope.name,
                super::promotion::span(self.ctx.config.rate_window),
                scope.fixes_per_hour
            );
            return refuse(&self.ctx, incident, fix, Gate::RateLimit, reason).await;
        }
        // The remediation budget, across every action and scope (and per service).
        if let Some(reason) = self
            .ctx
            .take_budget(incident.service.as_deref(), &id, now)
            .await?
        {
            self.ctx.state.release_rate_slot(&scope.name, &id).await?;
            if self.ctx.first_budget_notice(incident_id, now).await? {
                self.ctx.notify(
                    NotificationKind::BudgetSpent,
                    format!(
                        "Remediation budget spent: {} on {} ({}) not started",
                        fix.action,
                        incident.alertname,
                        incident.service.as_deref().unwrap_or("-")
                    ),
                    format!(
                        "incident {incident_id}, scope {}: {reason}; fixes wait until the window frees (said once per {})",
                        scope.name,
                        super::promotion::span(self.ctx.config.rate_window)
                    ),
                    &fix,
                    incident_id,
                    None,
                );
            }
            return refuse(&self.ctx, incident, fix, Gate::Budget, reason).await;
        }
        if !self
            .ctx
            .state
            .take_run_slot(
                &scope.name,
                &id,
                now,
                self.ctx.config.run_slot_lease,
                scope.max_concurrent,
            )
            .await?
        {
            self.ctx
                .release_slots(&scope.name, incident.service.as_deref(), &id)
                .await?;
            let reason = format!(
                "{} fixes are running in scope {}; the limit is {}",
                self.ctx.state.running_count(&scope.name, now).await?,
                scope.name,
                scope.max_concurrent
            );
            return refuse(&self.ctx, incident, fix, Gate::Concurrency, reason).await;
        }
        fix.dry_run = self.ctx.config.dry_run || scope.dry_run;
        if fix.dry_run {
            self.ctx.audit(
                ROOTFIX,
                "gate.dry-run",
                format!(
                    "incident {incident_id} action {} scope {}: dry run, execute and rollback will not run",
                    fix.action, scope.name
                ),
            )
            .await;
        }
        // Counted as running before the incident says `fixing`, so that whoever sees `fixing` and
        // waits for idle (shutdown, tests) waits for this fix too.
        let running = self.track();
        let started = self
            .ctx
            .update_incident(incident_id, |i| {
                if !i.state.is_open() {
                    return false;
                }
                i.state = IncidentState::Fixing;
                i.fix = Some(fix.clone());
                i.note(
                    now,
                    "fix",
                    format!(
                        "{}{} started in scope {} at stage {}",
                        fix.action,
                        if fix.dry_run { " (dry run)" } else { "" },
                        scope.name,
                        fix.stage.map_or("-", Stage::as_str)
                    ),
                );
                true
            })
            .await?;
        if started.state != IncidentState::Fixing {
            // The alert resolved meanwhile: nothing to fix.
            self.ctx.state.release_run_slot(&scope.name, &id).await?;
            self.ctx
                .release_slots(&scope.name, incident.service.as_deref(), &id)
                .await?;
            return Ok(Decided::Nothing);
        }
        self.ctx
            .audit(
                by,
                "fix.started",
                format!(
                    "incident {incident_id} action {} scope {} stage {}{}",
                    fix.action,
                    scope.name,
                    fix.stage.map_or("-", Stage::as_str),
                    if fix.dry_run { " (dry run)" } else { "" }
                ),
            )
            .await;
        let dry_run = fix.dry_run;
        let this = self.clone();
        let incident_id = incident_id.to_string();
        let scope = scope.clone();
        let span = info_span!("fix", incident = %incident_id, action = %fix.action);
        tokio::spawn(
            async move {
                if let Err(e) = this.run_fix(&started, fix, &scope).await {
                    error!(error = %e, "the fix could not be run to its end");
                }
                if let Err(e) = this.ctx.state.release_run_slot(&scope.name, &id).await {
                    warn!(error = %e, "could not release the running slot; it frees itself after its lease");
                }
                this.ctx.slot_freed.notify_one();
                drop(running);
            }
            .instrument(span),
        );
        Ok(Decided::Started { dry_run })
    }

    /// The playbook's verify condition for a fix, when it has one; with a step number, that
    /// step's of a remedy of steps.
    pub fn verify_for(
        &self,
        incident: &Incident,
        node: &str,
        step: Option<u32>,
    ) -> Option<Arc<dyn VerifyCheck>> {
        let catalog = self.ctx.catalog.current();
        let playbook = catalog.playbook(incident.playbook.as_deref()?)?.clone();
        ConditionVerify::of_remedy(playbook, incident, node, step, self.evidence.clone())
    }

    async fn run_fix(
        &self,
        incident: &Incident,
        fix: IncidentFix,
        scope: &Scope,
    ) -> Result<(), AutonomyError> {
        let catalog = self.ctx.catalog.current();
        let action_of = |name: &str| {
            catalog
                .actions
                .get(name)
                .cloned()
                .ok_or_else(|| AutonomyError::NotFound(format!("action {name}")))
        };
        let run = if fix.steps.is_empty() {
            let plan = FixPlan {
                incident: incident.id.clone(),
                action: action_of(&fix.action)?,
                params: fix.params.clone(),
                verify: self.verify_for(incident, &fix.node, None),
                dry_run: fix.dry_run,
            };
            self.executor.run(plan).await
        } else {
            let plan = StepsPlan::of_calls(
                &incident.id,
                &fix.action,
                &fix.steps,
                &fix.waves,
                &catalog.actions,
                |step| self.verify_for(incident, &fix.node, step),
                fix.dry_run,
            )
            .map_err(|name| AutonomyError::NotFound(format!("action {name}")))?;
            self.executor.run_steps(plan).await
        };
        let outcome = match run {
            Ok(report) => report.outcome,
            Err(e) => FixOutcome::Refused(format!("the fix could not start: {e}")),
        };
        self.finish_fix(&incident.id, fix, scope, outcome).await
    }

    /// Records the outcome, demotes after a failed rollback, closes or keeps the incident open by
    /// stage, and notifies.
    pub(super) async fn finish_fix(
        &self,
        incident_id: &str,
        mut fix: IncidentFix,
        scope: &Scope,
        outcome: FixOutcome,
    ) -> Result<(), AutonomyError> {
        let now = self.ctx.clock.now();
        let interrupted = outcome.interrupted_by_restart();
        let kind = match &outcome {
            _ if interrupted => OutcomeKind::Interrupted,
            FixOutcome::Succeeded => OutcomeKind::Succeeded,
            FixOutcome::AlreadyHealthy => OutcomeKind::AlreadyHealthy,
            FixOutcome::Aborted(_) => OutcomeKind::Aborted,
            FixOutcome::RolledBack(_) => OutcomeKind::RolledBack,
            FixOutcome::RollbackFailed(_) => OutcomeKind::RollbackFailed,
            FixOutcome::DryRun(_) => OutcomeKind::DryRun,
            FixOutcome::Refused(_) => OutcomeKind::Refused { gate: Gate::Target },
        };
        // Only a fix a stage decided is an outcome of its (action, scope): an operator's fix has
        // no stage. Only one that executed is a sample of the gate (`OutcomeKind::counts`).
        if fix.stage.is_some() {
            self.ctx
                .record_fix_outcome(&fix, &scope.name, incident_id, kind, now)
                .await?;
        }
        // A fix that changed nothing gives its rate and budget slots back.
        if !outcome.executed() && !interrupted {
            let service = self
                .ctx
                .state
                .incident(incident_id)
                .await?
                .and_then(|i| i.service);
            self.ctx
                .release_slots(&scope.name, service.as_deref(), &fix_id(incident_id, &fix.action))
                .await?;
        }
        self.ctx
            .audit(
                ROOTFIX,
                "fix.finished",
                format!(
                    "incident {incident_id} action {} scope {}: {}",
                    fix.action, scope.name, outcome
                ),
            )
            .await;
        if let Some(m) = &self.ctx.metrics {
            m.fix_finished(outcome.label());
        }
        let succeeded = matches!(outcome, FixOutcome::Succeeded | FixOutcome::AlreadyHealthy);
        let stage = fix.stage.unwrap_or(Stage::Manual);
        fix.outcome = Some(outcome.clone());
        let mut silence_labels = None;
        let mut resolved = false;
        let incident = self
            .ctx.update_incident(incident_id, |i| {
                i.fix = Some(fix.clone());
                i.note(now, "fix", format!("{}: {}", fix.action, outcome));
                if interrupted {
                    i.note(
                        now,
                        "interrupted",
                        "rootfix itself stopped during execute and rolled the fix back when it restarted: the fix was interrupted, which does not count against the action",
                    );
                }
                if i.state != IncidentState::Fixing {
                    return true;
                }
                if i.resolved_at.is_some() {
                    // The alert resolved while the fix ran: the fix's end closes the incident,
                    // and an `auto` fix that verified gets its cooldown silence.
                    if succeeded && stage == Stage::Auto {
                        silence_labels = Some(i.alert.labels.clone());
                    }
                    i.state = IncidentState::Resolved;
                    resolved = true;
                    let how = if succeeded { "verified" } else { "did not verify" };
                    i.note(
                        now,
                        "resolved",
                        format!("the alert had resolved and the fix {how}: incident closed"),
                    );
                    return true;
                }
                i.state = match (succeeded, stage) {
                    (true, Stage::Silent) => IncidentState::AwaitingConfirmation,
                    (true, Stage::Auto | Stage::Manual) => IncidentState::Fixed,
                    (false, _) => IncidentState::Open,
                };
                match i.state {
                    IncidentState::Fixed => i.note(
                        now,
                        "fixed",
                        "the fix was verified; the incident closes when Alertmanager reports the alert resolved",
                    ),
                    IncidentState::AwaitingConfirmation => i.note(
                        now,
                        "confirm",
                        "stage silent: waiting for an SRE to confirm `correct` or `misfix`",
                    ),
                    _ => {}
                }
                true
            })
            .await?;
        let (kind, urgent_title) = match &outcome {
            FixOutcome::Succeeded | FixOutcome::AlreadyHealthy => {
                (Some(NotificationKind::FixSucceeded), None)
            }
            FixOutcome::Aborted(_) => (Some(NotificationKind::FixFailed), None),
            FixOutcome::RolledBack(_) => (Some(NotificationKind::FixRolledBack), None),
            FixOutcome::RollbackFailed(_) => (
                Some(NotificationKind::RollbackFailed),
                Some("ROLLBACK FAILED: a human must look now"),
            ),
            FixOutcome::Refused(_) | FixOutcome::DryRun(_) => (None, None),
        };
        if let Some(kind) = kind {
            // A verified fix at stage silent waits for an SRE's verdict: the message asks it.
            let ask =
                (kind == NotificationKind::FixSucceeded && stage == Stage::Silent && outcome.executed())
                    .then(|| Ask::Confirmation(incident_id.to_string()));
            self.ctx.notify(
                kind,
                format!(
                    "{}{} on {} ({})",
                    urgent_title.map(|t| format!("{t}: ")).unwrap_or_default(),
                    fix.action,
                    incident.alertname,
                    incident.service.as_deref().unwrap_or("-")
                ),
                format!("incident {incident_id}, scope {}: {}", scope.name, outcome),
                &fix,
                incident_id,
                ask,
            );
        }
        if matches!(outcome, FixOutcome::RollbackFailed(_)) {
            self.stages
                .demote_to_manual(
                    &fix.action,
                    &scope.name,
                    &format!("rollback failed on incident {incident_id}"),
                )
                .await?;
        }
        if resolved {
            self.ctx.record_recovery(&incident).await?;
            self.ctx.notify_resolved(&incident);
        }
        if let Some(labels) = silence_labels {
            self.create_cooldown_silence(incident_id, &fix.action, &scope.name, &labels)
                .await?;
        }
        info!(incident = %incident_id, %outcome, "fix closed");
        Ok(())
    }

    /// Finishes the fixes a stopped rootfix left (the executor resumes verify or rolls back),
    /// then closes their incidents like any fix: outcome, stage, notifications.
    pub async fn recover(&self) -> Result<Vec<crate::fix::executor::FixReport>, AutonomyError> {
        let mut incidents = BTreeMap::new();
        for fix in self.ctx.state.active_fixes().await? {
            if let Some((incident, _)) = fix.split_once('/')
                && let Some(i) = self.ctx.state.incident(incident).await?
            {
                incidents.insert(i.id.clone(), i);
            }
        }
        let actions = self.ctx.catalog.current().actions.clone();
        let verify = |incident: &str, _action: &str, step: Option<u32>| {
            let i = incidents.get(incident)?;
            self.verify_for(i, &i.fix.as_ref()?.node, step)
        };
        let reports = self
            .executor
            .recover(&actions, &verify)
            .await
            .map_err(|e| AutonomyError::Invalid(format!("recovering fixes failed: {e}")))?;
        for report in &reports {
            let Some((incident, _)) = report.fix.split_once('/') else {
                continue;
            };
            let Some(fix) = incidents.get(incident).and_then(|i| i.fix.clone()) else {
                continue;
            };
            // An operator's fix, or one whose scope is no longer configured, still closes: its
            // incident and timeline say what the recovery did (no outcome without a stage).
            let scope = fix
                .scope
                .as_deref()
                .and_then(|s| self.ctx.config.scopes.get(s))
                .cloned()
                .unwrap_or_else(|| Scope {
                    name: fix.scope.clone().unwrap_or_else(|| "-".into()),
                    selector: Vec::new(),
                    max_stage: Stage::Manual,
                    fixes_per_hour: 0,
                    max_concurrent: 0,
                    dry_run: false,
                    recurrence_window: None,
                });
            let id = fix_id(incident, &fix.action);
            self.finish_fix(incident, fix, &scope, report.outcome.clone())
                .await?;
            self.ctx.state.release_run_slot(&scope.name, &id).await?;
        }
        Ok(reports)
    }

    /// Creates the Alertmanager silence of an `auto` fix's cooldown (when `silences:` is
    /// configured) and notes it on the incident; a failure is noted, not raised.
    pub(super) async fn create_cooldown_silence(
        &self,
        incident_id: &str,
        action: &str,
        scope: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), AutonomyError> {
        let Some(client) = &self.silences else {
            return Ok(());
        };
        let now = self.ctx.clock.now();
        let comment = format!("rootfix fixed incident {incident_id} with {action} (scope {scope}); cooldown");
        match client.create(labels, ROOTFIX, &comment, now).await {
            Ok(id) => {
                self.ctx
                    .audit(
                        ROOTFIX,
                        "silence.created",
                        format!("incident {incident_id}: silence {id}"),
                    )
                    .await;
                self.ctx
                    .update_incident(incident_id, |i| {
                        if let Some(f) = i.fix.as_mut() {
                            f.silence = Some(id.clone());
                        }
                        i.note(
                            now,
                            "silence",
                            format!("Alertmanager silence {id} created for the cooldown"),
                        );
                        true
                    })
                    .await?;
            }
            Err(e) => {
                warn!(error = %e, "could not create the cooldown silence");
                self.ctx
                    .update_incident(incident_id, |i| {
                        i.note(
                            now,
                            "silence",
                            format!("the cooldown silence could not be created: {e}"),
                        );
                        true
                    })
                    .await?;
            }
        }
        Ok(())
    }
}
