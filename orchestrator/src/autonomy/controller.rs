//! [`Autonomy`] decides what happens to a diagnosed incident's fix and carries it out: the gates
//! in order (the action's runner can run here, kill switch, scope, stage, rate limit,
//! concurrency, dry-run), the approval a `manual` fix waits for, the fix itself (through the
//! [`Executor`]), its outcome, the SRE's confirmation, automatic demotion, the leader's periodic
//! job (expire approvals, propose or apply promotions), and an operator's explicit fix
//! ([`Autonomy::operator_fix`]). Every decision is audited with its identity, and the incident's
//! timeline says it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tracing::{Instrument, error, info, info_span, warn};

use super::approval::{Approval, ApprovalState, DecideOutcome};
use super::clock::Clock;
use super::config::AutonomyConfig;
use super::gate::Gate;
use super::outcome::{Outcome, OutcomeKind, OutcomeSummary, Severity};
use super::promotion::GateStatus;
use super::scope::Scope;
use super::stage::{Proposal, Stage, StageChange, StageEntry, StageState};
use crate::audit::AuditEvent;
use crate::engine::{EvidenceProvider, NodeOutcome};
use crate::fix::executor::{Executor, FixPlan, FixReport, VerifyCheck};
use crate::fix::journal::{FixOutcome, fix_id};
use crate::fix::verify::ConditionVerify;
use crate::incident::{Incident, IncidentFix, IncidentState, Verdict};
use crate::model::action::RunnerKind;
use crate::notify::{Notification, NotificationKind, Notifier};
use crate::reload::CatalogHandle;
use crate::runner::availability::{CannotRun, RunnerAvailability, kind_name};
use crate::runner::validate_params;
use crate::silence::SilenceClient;
use crate::state::{SaveOutcome, StateError, StateStore};

/// The identity of rootfix's own decisions in the audit trail and the stage history.
pub const ROOTFIX: &str = "rootfix";

/// How many times an incident's compare-and-set is retried.
const MAX_CAS_ATTEMPTS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum AutonomyError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state (decided, expired, capped, gate not met).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("incident {0} kept changing; try again")]
    Contended(String),
}

/// What [`Autonomy::decide`] did with an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// No remedy reached its threshold, or the incident was decided before.
    Nothing,
    /// A gate refused (`gate`, reason).
    Refused { gate: Gate, reason: String },
    /// Waiting for approval `id`.
    AwaitingApproval(String),
    /// The fix started (it runs in the background).
    Started { dry_run: bool },
}

/// What approving did.
#[derive(Debug, Clone, PartialEq)]
pub struct Approved {
    pub approval: Approval,
    /// False when it had been approved before (approving twice is a no-op).
    pub newly: bool,
    pub decided: Option<Decided>,
}

/// One (action, scope) with its gate, as the API and the page show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StageReport {
    #[serde(flatten)]
    pub entry: StageEntry,
    /// The scope's cap (`manual` when the scope is no longer configured).
    pub cap: Stage,
    pub gate: GateStatus,
}

/// What one run of the leader's job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub expired: Vec<String>,
    /// `action/scope → stage` proposals made.
    pub proposed: Vec<String>,
    /// `action/scope → stage` promotions applied (policy `apply: auto`).
    pub promoted: Vec<String>,
}

pub struct Autonomy {
    pub state: Arc<dyn StateStore>,
    pub config: AutonomyConfig,
    pub clock: Arc<dyn Clock>,
    pub catalog: CatalogHandle,
    pub executor: Arc<Executor>,
    pub evidence: Arc<dyn EvidenceProvider>,
    pub notifier: Notifier,
    pub silences: Option<SilenceClient>,
    /// This replica's name in the leader election.
    pub replica: String,
    /// Gate refusals and fix outcomes are counted here when set.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Which runners can run on this install (the runner gate asks it).
    pub availability: Arc<RunnerAvailability>,
    running: Arc<(AtomicUsize, tokio::sync::Notify)>,
}

fn stage_key(action: &str, scope: &str) -> String {
    format!("{action}/{scope}")
}

impl Autonomy {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        state: Arc<dyn StateStore>,
        config: AutonomyConfig,
        clock: Arc<dyn Clock>,
        catalog: CatalogHandle,
        executor: Arc<Executor>,
        evidence: Arc<dyn EvidenceProvider>,
        notifier: Notifier,
        silences: Option<SilenceClient>,
        replica: String,
    ) -> Self {
        // Until told better (`with_availability`), a kind can run when the executor has its runner.
        let availability = RunnerAvailability::all();
        for (_, kind) in RunnerKind::ALL {
            availability.set(kind, executor.missing_runner(kind));
        }
        Self {
            availability: Arc::new(availability),
            state,
            config,
            clock,
            catalog,
            executor,
            evidence,
            notifier,
            silences,
            replica,
            metrics: None,
            running: Arc::new((AtomicUsize::new(0), tokio::sync::Notify::new())),
        }
    }

    /// Counts gate refusals and fix outcomes in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Asks `availability` whether a runner can run (what `serve` found: engine pings, config).
    pub fn with_availability(mut self, availability: Arc<RunnerAvailability>) -> Self {
        self.availability = availability;
        self
    }

    /// The actions of the catalog in force that cannot run here, with why.
    pub fn cannot_run(&self) -> Vec<CannotRun> {
        self.availability.cannot_run(&self.catalog.current().actions)
    }

    /// Why the fix's action cannot run on this install (the runner gate), when it cannot:
    /// `cannot act: <action> needs the <runner> runner, and <why>`.
    pub fn runner_refusal(&self, action: &str) -> Option<String> {
        let catalog = self.catalog.current();
        let runner = catalog.actions.get(action)?.runner;
        let why = self.availability.unavailable(runner)?;
        Some(format!(
            "cannot act: {action} needs the {} runner, and {why}",
            kind_name(runner)
        ))
    }

    /// Fixes started by this process and not finished.
    pub fn running_fixes(&self) -> usize {
        self.running.0.load(Ordering::SeqCst)
    }

    /// Waits until no fix started by this process is running (tests, shutdown).
    pub async fn wait_idle(&self, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        while self.running_fixes() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), self.running.1.notified()).await;
        }
        true
    }

    async fn audit(&self, identity: &str, action: &str, detail: String) {
        let event = AuditEvent {
            at: self.clock.now(),
            identity: identity.to_string(),
            action: action.to_string(),
            detail,
        };
        if let Err(e) = self.state.append_audit(&event).await {
            error!(error = %e, action, "could not write the audit trail");
        }
    }

    fn notify(&self, kind: NotificationKind, title: String, text: String, fix: &IncidentFix, incident: &str) {
        let mut n = Notification::new(kind, title, text)
            .with_incident(incident)
            .with_action(fix.action.clone());
        if let Some(scope) = &fix.scope {
            n = n.with_scope(scope.clone());
        }
        n.at = self.clock.now();
        self.notifier.notify(n);
    }

    async fn record_outcome(
        &self,
        action: &str,
        scope: &str,
        incident: &str,
        kind: OutcomeKind,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StateError> {
        let outcome = Outcome {
            at,
            incident: incident.to_string(),
            kind,
        };
        self.state
            .record_outcome(action, scope, &outcome, self.config.outcome_retention)
            .await
    }

    /// Loads, changes and saves an incident (compare-and-set, retried). `change` returns false to
    /// leave it as it is.
    async fn update_incident(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Incident) -> bool,
    ) -> Result<Incident, AutonomyError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(mut incident) = self.state.incident(id).await? else {
                return Err(AutonomyError::NotFound(format!("incident {id}")));
            };
            if !change(&mut incident) {
                return Ok(incident);
            }
            match self.state.save_incident(&mut incident).await? {
                SaveOutcome::Saved => return Ok(incident),
                SaveOutcome::Conflict => continue,
                SaveOutcome::Missing => return Err(AutonomyError::NotFound(format!("incident {id}"))),
            }
        }
        Err(AutonomyError::Contended(id.to_string()))
    }

    // ── Deciding ──

    /// Takes a diagnosed incident through the gates: refuses, asks for approval, or starts its
    /// fix. Idempotent: an incident whose fix was decided is left alone.
    pub async fn decide(self: &Arc<Self>, incident_id: &str) -> Result<Decided, AutonomyError> {
        let Some(incident) = self.state.incident(incident_id).await? else {
            return Err(AutonomyError::NotFound(format!("incident {incident_id}")));
        };
        self.decide_incident(&incident).await
    }

    /// [`Self::decide`] for an incident the caller has just read or saved.
    pub async fn decide_incident(self: &Arc<Self>, incident: &Incident) -> Result<Decided, AutonomyError> {
        let span = info_span!("decide", incident = %incident.id);
        async {
            if incident.fix.is_some() || incident.state != IncidentState::Open {
                return Ok(Decided::Nothing);
            }
            let Some(diagnosis) = &incident.diagnosis else {
                return Ok(Decided::Nothing);
            };
            let Some(remedy) = diagnosis.actionable().next().cloned() else {
                return Ok(Decided::Nothing);
            };
            let mut fix = IncidentFix {
                action: remedy.action.clone(),
                node: remedy.node.clone(),
                params: remedy.params.clone(),
                confidence: remedy.score,
                scope: None,
                stage: None,
                approval: None,
                refused: None,
                gate: None,
                dry_run: false,
                outcome: None,
                verdict: None,
                silence: None,
            };
            if !self.catalog.current().actions.contains_key(&remedy.action) {
                let reason = format!("action `{}` is not loaded", remedy.action);
                return self.refuse(incident, fix, Gate::Action, reason).await;
            }
            // Never offer what cannot run: the action's runner must be usable on this install.
            if let Some(reason) = self.runner_refusal(&remedy.action) {
                return self.refuse(incident, fix, Gate::Runner, reason).await;
            }
            // Gate 1: the kill switch.
            if let Some(reason) = self.killswitch_on().await? {
                return self.refuse(incident, fix, Gate::Killswitch, reason).await;
            }
            // Gate 2: the target is inside a scope.
            let Some(scope) = self.config.scopes.scope_for(&incident.alert.labels).cloned() else {
                let reason = "the target is outside every scope".to_string();
                return self.refuse(incident, fix, Gate::Scope, reason).await;
            };
            fix.scope = Some(scope.name.clone());
            // Gate 3: the stage.
            let stage = self
                .stage_of(&fix.action, &scope.name)
                .await?
                .min(scope.max_stage);
            fix.stage = Some(stage);
            if stage == Stage::Manual {
                // Approved before and refused for now by a later gate (the runner, the kill
                // switch, ...): the approval stands for the stage gate; the others are asked now.
                let id = Approval::id_for(&incident.id, &fix.action);
                if let Some(approved) = self.state.approval(&id).await?
                    && approved.state == ApprovalState::Approved
                {
                    fix.approval = Some(id);
                    let by = approved.decided_by.unwrap_or_else(|| ROOTFIX.to_string());
                    return self.start_fix(incident, fix, &scope, &by).await;
                }
                return self
                    .request_approval(incident, fix, &remedy.threshold, &scope)
                    .await;
            }
            self.start_fix(incident, fix, &scope, ROOTFIX).await
        }
        .instrument(span)
        .await
    }

    /// Why the kill switch refuses, while it is on.
    async fn killswitch_on(&self) -> Result<Option<String>, AutonomyError> {
        Ok(self
            .state
            .killswitch()
            .await?
            .map(|k| format!("the kill switch is on (by {}: {})", k.by, k.reason)))
    }

    /// The stored stage of a pair; a pair seen for the first time starts `manual`.
    async fn stage_of(&self, action: &str, scope: &str) -> Result<Stage, AutonomyError> {
        if let Some(s) = self.state.stage(action, scope).await? {
            return Ok(s.stage);
        }
        let now = self.clock.now();
        let state = StageState {
            stage: Stage::Manual,
            since: now,
            proposal: None,
        };
        let change = StageChange {
            at: now,
            action: action.to_string(),
            scope: scope.to_string(),
            from: None,
            to: Stage::Manual,
            by: ROOTFIX.to_string(),
            reason: "first fix of this type in this scope: it starts manual".to_string(),
        };
        if self
            .state
            .change_stage(action, scope, None, &state, Some(&change))
            .await?
        {
            self.audit(ROOTFIX, "stage.created", format!("{action}/{scope}: manual"))
                .await;
            return Ok(Stage::Manual);
        }
        // Another replica created it meanwhile.
        Ok(self
            .state
            .stage(action, scope)
            .await?
            .map_or(Stage::Manual, |s| s.stage))
    }

    async fn refuse(
        &self,
        incident: &Incident,
        mut fix: IncidentFix,
        gate: Gate,
        reason: String,
    ) -> Result<Decided, AutonomyError> {
        warn!(incident = %incident.id, action = %fix.action, %gate, %reason, "gate refused the fix");
        if let Some(m) = &self.metrics {
            m.gate_refused(gate.as_str());
        }
        self.audit(
            ROOTFIX,
            "gate.refused",
            format!(
                "incident {} action {} scope {} gate {gate}: {reason}",
                incident.id,
                fix.action,
                fix.scope.as_deref().unwrap_or("-")
            ),
        )
        .await;
        fix.refused = Some(format!("{gate}: {reason}"));
        fix.gate = Some(gate);
        let now = self.clock.now();
        let note = format!("{} refused by the {gate} gate: {reason}", fix.action);
        // A refusal asked again at each firing is notified once, not at every firing.
        let said_before = incident
            .timeline
            .iter()
            .any(|t| t.kind == "gate" && t.message == note);
        let saved = self
            .update_incident(&incident.id, |i| {
                if !i.state.is_open() {
                    return false;
                }
                i.state = IncidentState::Open;
                i.fix = Some(fix.clone());
                i.note(now, "gate", note.clone());
                true
            })
            .await?;
        if gate == Gate::Runner && !said_before {
            let path = saved
                .diagnosis
                .as_ref()
                .map(|d| d.with_outcome(NodeOutcome::Hit).join(" → "))
                .unwrap_or_default();
            self.notify(
                NotificationKind::DiagnosisOnly,
                format!(
                    "Diagnosis only: {} on {} ({})",
                    fix.action,
                    saved.alertname,
                    saved.service.as_deref().unwrap_or("-")
                ),
                format!(
                    "{reason}; path {path}; remedy {} at {} (confidence {:.2}), params {}",
                    fix.action,
                    fix.node,
                    fix.confidence,
                    render_params(&fix.params)
                ),
                &fix,
                &incident.id,
            );
        }
        Ok(Decided::Refused { gate, reason })
    }

    async fn request_approval(
        &self,
        incident: &Incident,
        mut fix: IncidentFix,
        threshold: &f64,
        scope: &Scope,
    ) -> Result<Decided, AutonomyError> {
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(self.config.approval_ttl).unwrap_or(chrono::Duration::MAX);
        let path = incident
            .diagnosis
            .as_ref()
            .map(|d| d.with_outcome(NodeOutcome::Hit).join(" → "))
            .unwrap_or_default();
        let approval = Approval {
            id: Approval::id_for(&incident.id, &fix.action),
            incident: incident.id.clone(),
            action: fix.action.clone(),
            scope: scope.name.clone(),
            params: fix.params.clone(),
            summary: format!(
                "{} ({}): path {path}; remedy {} at {}",
                incident.alertname,
                incident.service.as_deref().unwrap_or("-"),
                fix.action,
                fix.node
            ),
            confidence: fix.confidence,
            threshold: *threshold,
            created_at: now,
            expires_at: now + ttl,
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at: None,
            reason: None,
        };
        let created = self.state.create_approval(&approval).await?;
        fix.approval = Some(approval.id.clone());
        self.update_incident(&incident.id, |i| {
            if i.state != IncidentState::Open || i.fix.is_some() {
                return false;
            }
            i.state = IncidentState::AwaitingApproval;
            i.fix = Some(fix.clone());
            i.note(
                now,
                "approval",
                format!(
                    "{} in scope {} is at stage manual: approval {} requested (expires {})",
                    fix.action,
                    scope.name,
                    approval.id,
                    approval.expires_at.to_rfc3339()
                ),
            );
            true
        })
        .await?;
        if created {
            self.audit(
                ROOTFIX,
                "approval.requested",
                format!(
                    "{} for incident {} ({} in {})",
                    approval.id, incident.id, fix.action, scope.name
                ),
            )
            .await;
            self.notify(
                NotificationKind::ApprovalRequested,
                format!("Approval requested: {} on {}", fix.action, incident.alertname),
                format!(
                    "{} (confidence {:.2}); params {}; expires {}",
                    approval.summary,
                    approval.confidence,
                    render_params(&approval.params),
                    approval.expires_at.to_rfc3339()
                ),
                &fix,
                &incident.id,
            );
        }
        Ok(Decided::AwaitingApproval(approval.id))
    }

    /// Gates 1 and 4-6 (kill switch, rate limit, concurrency, dry-run), then the fix, in the
    /// background.
    async fn start_fix(
        self: &Arc<Self>,
        incident: &Incident,
        mut fix: IncidentFix,
        scope: &Scope,
        by: &str,
    ) -> Result<Decided, AutonomyError> {
        let incident_id = incident.id.as_str();
        let now = self.clock.now();
        let id = fix_id(incident_id, &fix.action);
        if !self
            .state
            .take_rate_slot(
                &scope.name,
                &id,
                now,
                self.config.rate_window,
                scope.fixes_per_hour,
            )
            .await?
        {
            let reason = format!(
                "{} fixes started in scope {} within the last {}; the limit is {}",
                self.state
                    .rate_count(&scope.name, now, self.config.rate_window)
                    .await?,
                scope.name,
                super::promotion::span(self.config.rate_window),
                scope.fixes_per_hour
            );
            return self.refuse(incident, fix, Gate::RateLimit, reason).await;
        }
        if !self
            .state
            .take_run_slot(
                &scope.name,
                &id,
                now,
                self.config.run_slot_lease,
                scope.max_concurrent,
            )
            .await?
        {
            self.state.release_rate_slot(&scope.name, &id).await?;
            let reason = format!(
                "{} fixes are running in scope {}; the limit is {}",
                self.state.running_count(&scope.name, now).await?,
                scope.name,
                scope.max_concurrent
            );
            return self.refuse(incident, fix, Gate::Concurrency, reason).await;
        }
        fix.dry_run = self.config.dry_run || scope.dry_run;
        if fix.dry_run {
            self.audit(
                ROOTFIX,
                "gate.dry-run",
                format!(
                    "incident {incident_id} action {} scope {}: dry run, execute and rollback will not run",
                    fix.action, scope.name
                ),
            )
            .await;
        }
        let started = self
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
            self.state.release_run_slot(&scope.name, &id).await?;
            self.state.release_rate_slot(&scope.name, &id).await?;
            return Ok(Decided::Nothing);
        }
        self.audit(
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
        self.running.0.fetch_add(1, Ordering::SeqCst);
        let span = info_span!("fix", incident = %incident_id, action = %fix.action);
        tokio::spawn(
            async move {
                if let Err(e) = this.run_fix(&started, fix, &scope).await {
                    error!(error = %e, "the fix could not be run to its end");
                }
                if let Err(e) = this.state.release_run_slot(&scope.name, &id).await {
                    warn!(error = %e, "could not release the running slot; it frees itself after its lease");
                }
                this.running.0.fetch_sub(1, Ordering::SeqCst);
                this.running.1.notify_waiters();
            }
            .instrument(span),
        );
        Ok(Decided::Started { dry_run })
    }

    /// The playbook's verify condition for a fix, when it has one.
    pub fn verify_for(&self, incident: &Incident, node: &str) -> Option<Arc<dyn VerifyCheck>> {
        let catalog = self.catalog.current();
        let playbook = catalog.playbook(incident.playbook.as_deref()?)?.clone();
        let condition = playbook.node(node)?.remedy.as_ref()?.verify.clone()?;
        let baseline: BTreeMap<String, serde_json::Value> = incident
            .diagnosis
            .as_ref()
            .map(|d| {
                d.evidence
                    .iter()
                    .filter_map(|(k, r)| r.value.clone().map(|v| (k.clone(), v)))
                    .collect()
            })
            .unwrap_or_default();
        Some(Arc::new(ConditionVerify {
            playbook,
            condition,
            alert: Arc::new(incident.alert.clone()),
            baseline,
            evidence: self.evidence.clone(),
        }))
    }

    async fn run_fix(
        &self,
        incident: &Incident,
        fix: IncidentFix,
        scope: &Scope,
    ) -> Result<(), AutonomyError> {
        let Some(action) = self.catalog.current().actions.get(&fix.action).cloned() else {
            return Err(AutonomyError::NotFound(format!("action {}", fix.action)));
        };
        let plan = FixPlan {
            incident: incident.id.clone(),
            action,
            params: fix.params.clone(),
            verify: self.verify_for(incident, &fix.node),
            dry_run: fix.dry_run,
        };
        let outcome = match self.executor.run(plan).await {
            Ok(report) => report.outcome,
            Err(e) => FixOutcome::Refused(format!("the fix could not start: {e}")),
        };
        self.finish_fix(&incident.id, fix, scope, outcome).await
    }

    /// Records the outcome, demotes after a failed rollback, closes or keeps the incident open by
    /// stage, and notifies.
    async fn finish_fix(
        &self,
        incident_id: &str,
        mut fix: IncidentFix,
        scope: &Scope,
        outcome: FixOutcome,
    ) -> Result<(), AutonomyError> {
        let now = self.clock.now();
        let kind = match &outcome {
            FixOutcome::Succeeded | FixOutcome::AlreadyHealthy => Some(OutcomeKind::Succeeded),
            FixOutcome::Aborted(_) => Some(OutcomeKind::Failed),
            FixOutcome::RolledBack(_) => Some(OutcomeKind::RolledBack),
            FixOutcome::RollbackFailed(_) => Some(OutcomeKind::RollbackFailed),
            FixOutcome::Refused(_) | FixOutcome::DryRun(_) => None,
        };
        if let Some(kind) = kind {
            self.record_outcome(&fix.action, &scope.name, incident_id, kind, now)
                .await?;
        }
        self.audit(
            ROOTFIX,
            "fix.finished",
            format!(
                "incident {incident_id} action {} scope {}: {}",
                fix.action, scope.name, outcome
            ),
        )
        .await;
        if let Some(m) = &self.metrics {
            m.fix_finished(outcome.label());
        }
        let succeeded = matches!(outcome, FixOutcome::Succeeded | FixOutcome::AlreadyHealthy);
        let stage = fix.stage.unwrap_or(Stage::Manual);
        fix.outcome = Some(outcome.clone());
        let mut silence_labels = None;
        let incident = self
            .update_incident(incident_id, |i| {
                i.fix = Some(fix.clone());
                i.note(now, "fix", format!("{}: {}", fix.action, outcome));
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
            self.notify(
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
            );
        }
        if matches!(outcome, FixOutcome::RollbackFailed(_)) {
            self.demote_to_manual(
                &fix.action,
                &scope.name,
                &format!("rollback failed on incident {incident_id}"),
            )
            .await?;
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
        for fix in self.state.active_fixes().await? {
            if let Some((incident, _)) = fix.split_once('/')
                && let Some(i) = self.state.incident(incident).await?
            {
                incidents.insert(i.id.clone(), i);
            }
        }
        let actions = self.catalog.current().actions.clone();
        let verify = |incident: &str, _action: &str| {
            let i = incidents.get(incident)?;
            self.verify_for(i, &i.fix.as_ref()?.node)
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
            let Some(scope) = fix
                .scope
                .as_deref()
                .and_then(|s| self.config.scopes.get(s))
                .cloned()
            else {
                continue;
            };
            let id = fix_id(incident, &fix.action);
            self.finish_fix(incident, fix, &scope, report.outcome.clone())
                .await?;
            self.state.release_run_slot(&scope.name, &id).await?;
        }
        Ok(reports)
    }

    // ── An operator's fix ──

    /// Runs `action` now for an incident on an operator's explicit decision (`POST
    /// /api/v1/incidents/{id}/fix`, `rootfix fix run`): no stage, scope, rate or concurrency gate
    /// is consulted, but the kill switch, the action's runner, the params and the target's lock
    /// are. The fix is on the incident's timeline and in the audit trail under `by` (its start,
    /// every phase, its end); its outcome does not count for promotion (no stage decided it).
    /// Waits for the fix to end; a dropped caller does not stop it.
    pub async fn operator_fix(
        self: &Arc<Self>,
        incident_id: &str,
        action_name: &str,
        params: BTreeMap<String, String>,
        by: &str,
    ) -> Result<FixReport, AutonomyError> {
        let span = info_span!("operator_fix", incident = %incident_id, action = %action_name, %by);
        async {
            let Some(incident) = self.state.incident(incident_id).await? else {
                return Err(AutonomyError::NotFound(format!("incident {incident_id}")));
            };
            let Some(action) = self.catalog.current().actions.get(action_name).cloned() else {
                return Err(AutonomyError::NotFound(format!("action {action_name}")));
            };
            if let Some(reason) = self.killswitch_on().await? {
                return Err(AutonomyError::Conflict(reason));
            }
            if let Some(reason) = self.runner_refusal(action_name) {
                return Err(AutonomyError::Conflict(reason));
            }
            let params = validate_params(&action, &params).map_err(|e| AutonomyError::Invalid(e.to_string()))?;
            // The diagnosis's remedy of this action, when there is one: its node (and so the
            // playbook's verify condition) and its confidence.
            let remedy = incident
                .diagnosis
                .as_ref()
                .and_then(|d| d.actionable().find(|r| r.action == action_name).cloned());
            let fix = IncidentFix {
                action: action_name.to_string(),
                node: remedy.as_ref().map(|r| r.node.clone()).unwrap_or_default(),
                params: params.clone(),
                confidence: remedy.as_ref().map_or(0.0, |r| r.score),
                scope: self
                    .config
                    .scopes
                    .scope_for(&incident.alert.labels)
                    .map(|s| s.name.clone()),
                stage: None,
                approval: None,
                refused: None,
                gate: None,
                dry_run: false,
                outcome: None,
                verdict: None,
                silence: None,
            };
            let now = self.clock.now();
            let mut busy = None;
            let started = self
                .update_incident(incident_id, |i| {
                    match i.state {
                        IncidentState::Fixing => {
                            busy = Some(format!("a fix is running for incident {incident_id}"));
                            return false;
                        }
                        IncidentState::AwaitingApproval => {
                            busy = Some(format!(
                                "incident {incident_id} waits for approval {}: approve or reject it first",
                                i.fix.as_ref().and_then(|f| f.approval.as_deref()).unwrap_or("-")
                            ));
                            return false;
                        }
                        IncidentState::Resolved => {}
                        _ => i.state = IncidentState::Fixing,
                    }
                    i.fix = Some(fix.clone());
                    i.note(
                        now,
                        "fix",
                        format!(
                            "{action_name} started by {by} (an operator's decision: stages not consulted), params {}",
                            render_params(&params)
                        ),
                    );
                    true
                })
                .await?;
            if let Some(why) = busy {
                return Err(AutonomyError::Conflict(why));
            }
            self.audit(
                by,
                "fix.started",
                format!(
                    "incident {incident_id} action {action_name} by operator {by} (stages not consulted), params {}",
                    render_params(&params)
                ),
            )
            .await;
            let plan = FixPlan {
                incident: incident_id.to_string(),
                action,
                params,
                verify: self.verify_for(&started, &fix.node),
                dry_run: false,
            };
            self.running.0.fetch_add(1, Ordering::SeqCst);
            let this = self.clone();
            let (id, by_owned) = (incident_id.to_string(), by.to_string());
            // In its own task: a caller that goes away does not cut a fix in the middle.
            let task = tokio::spawn(
                async move {
                    let report = match this.executor.run_as(plan, &by_owned).await {
                        Ok(report) => report,
                        Err(e) => FixReport {
                            fix: fix_id(&id, &fix.action),
                            outcome: FixOutcome::Refused(format!("the fix could not start: {e}")),
                            phases: Vec::new(),
                            overhead: Vec::new(),
                        },
                    };
                    let closed = this
                        .finish_operator_fix(&id, fix, &by_owned, report.outcome.clone())
                        .await;
                    this.running.0.fetch_sub(1, Ordering::SeqCst);
                    this.running.1.notify_waiters();
                    closed.map(|()| report)
                }
                .in_current_span(),
            );
            task.await.map_err(|e| {
                AutonomyError::Conflict(format!(
                    "the fix stopped abnormally ({e}); its journal says where"
                ))
            })?
        }
        .instrument(span)
        .await
    }

    /// Closes an operator's fix: audit under `by`, the incident (`fixed` when verified, open
    /// otherwise), notifications. No outcome is recorded for promotion.
    async fn finish_operator_fix(
        &self,
        incident_id: &str,
        mut fix: IncidentFix,
        by: &str,
        outcome: FixOutcome,
    ) -> Result<(), AutonomyError> {
        let now = self.clock.now();
        self.audit(
            by,
            "fix.finished",
            format!(
                "incident {incident_id} action {} by operator {by}: {outcome}",
                fix.action
            ),
        )
        .await;
        if let Some(m) = &self.metrics {
            m.fix_finished(outcome.label());
        }
        let succeeded = matches!(outcome, FixOutcome::Succeeded | FixOutcome::AlreadyHealthy);
        fix.outcome = Some(outcome.clone());
        let incident = self
            .update_incident(incident_id, |i| {
                i.fix = Some(fix.clone());
                i.note(now, "fix", format!("{} (by {by}): {outcome}", fix.action));
                if i.state == IncidentState::Fixing {
                    if i.resolved_at.is_some() {
                        let how = if succeeded { "verified" } else { "did not verify" };
                        i.state = IncidentState::Resolved;
                        i.note(
                            now,
                            "resolved",
                            format!("the alert had resolved and the fix {how}: incident closed"),
                        );
                    } else if succeeded {
                        i.state = IncidentState::Fixed;
                        i.note(
                            now,
                            "fixed",
                            "the fix was verified; the incident closes when Alertmanager reports the alert resolved",
                        );
                    } else {
                        i.state = IncidentState::Open;
                    }
                }
                true
            })
            .await?;
        let (kind, urgent) = match &outcome {
            FixOutcome::Succeeded | FixOutcome::AlreadyHealthy => (Some(NotificationKind::FixSucceeded), ""),
            FixOutcome::Aborted(_) => (Some(NotificationKind::FixFailed), ""),
            FixOutcome::RolledBack(_) => (Some(NotificationKind::FixRolledBack), ""),
            FixOutcome::RollbackFailed(_) => (
                Some(NotificationKind::RollbackFailed),
                "ROLLBACK FAILED: a human must look now: ",
            ),
            FixOutcome::Refused(_) | FixOutcome::DryRun(_) => (None, ""),
        };
        if let Some(kind) = kind {
            self.notify(
                kind,
                format!(
                    "{urgent}{} on {} ({}), run by {by}",
                    fix.action,
                    incident.alertname,
                    incident.service.as_deref().unwrap_or("-")
                ),
                format!("incident {incident_id}, an operator's fix: {outcome}"),
                &fix,
                incident_id,
            );
        }
        info!(incident = %incident_id, %outcome, %by, "operator's fix closed");
        Ok(())
    }

    // ── Approvals ──

    /// Approves a pending approval and starts its fix through the remaining gates. Approving an
    /// approved one again is a no-op; an expired, rejected or cancelled one is a conflict.
    pub async fn approve(self: &Arc<Self>, id: &str, by: &str) -> Result<Approved, AutonomyError> {
        let approval = self.pending_approval(id).await?;
        let approval = match approval {
            Err(already) => {
                return Ok(Approved {
                    approval: already,
                    newly: false,
                    decided: None,
                });
            }
            Ok(a) => a,
        };
        let now = self.clock.now();
        let decided = approval.decided(ApprovalState::Approved, by, now, None);
        match self.state.decide_approval(&decided).await? {
            DecideOutcome::Decided => {}
            DecideOutcome::Missing => return Err(AutonomyError::NotFound(format!("approval {id}"))),
            DecideOutcome::AlreadyDecided(stored) if stored.state == ApprovalState::Approved => {
                return Ok(Approved {
                    approval: *stored,
                    newly: false,
                    decided: None,
                });
            }
            DecideOutcome::AlreadyDecided(stored) => {
                return Err(decided_already(id, stored.state));
            }
        }
        self.audit(
            by,
            "approval.approved",
            format!("{id} (incident {})", approval.incident),
        )
        .await;
        let incident = self
            .update_incident(&approval.incident, |i| {
                i.note(now, "approval", format!("approved by {by}"));
                true
            })
            .await?;
        // The approval stands for the stage gate; the others are asked now, from the first.
        let decided_next = match (incident.state, incident.fix.clone()) {
            (IncidentState::AwaitingApproval, Some(fix)) => Some(
                match (
                    self.killswitch_on().await?,
                    self.config.scopes.get(&approval.scope),
                ) {
                    (Some(reason), _) => self.refuse(&incident, fix, Gate::Killswitch, reason).await?,
                    (None, None) => {
                        let reason = format!("scope {} is no longer configured", approval.scope);
                        self.refuse(&incident, fix, Gate::Scope, reason).await?
                    }
                    (None, Some(scope)) => match self.runner_refusal(&fix.action) {
                        // Approved before its runner went away (or by an older run): say so.
                        Some(reason) => self.refuse(&incident, fix, Gate::Runner, reason).await?,
                        None => {
                            let scope = scope.clone();
                            self.start_fix(&incident, fix, &scope, by).await?
                        }
                    },
                },
            ),
            _ => None,
        };
        Ok(Approved {
            approval: decided,
            newly: true,
            decided: decided_next,
        })
    }

    /// Rejects a pending approval; a reason is required.
    pub async fn reject(&self, id: &str, by: &str, reason: &str) -> Result<Approval, AutonomyError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(AutonomyError::Invalid("a reason is required to reject".into()));
        }
        let approval = match self.pending_approval(id).await? {
            Ok(a) => a,
            Err(already) => {
                return Err(decided_already(id, already.state));
            }
        };
        let now = self.clock.now();
        let decided = approval.decided(ApprovalState::Rejected, by, now, Some(reason.to_string()));
        match self.state.decide_approval(&decided).await? {
            DecideOutcome::Decided => {}
            DecideOutcome::Missing => return Err(AutonomyError::NotFound(format!("approval {id}"))),
            DecideOutcome::AlreadyDecided(stored) => {
                return Err(decided_already(id, stored.state));
            }
        }
        self.audit(
            by,
            "approval.rejected",
            format!("{id} (incident {}): {reason}", approval.incident),
        )
        .await;
        self.update_incident(&approval.incident, |i| {
            if i.state == IncidentState::AwaitingApproval {
                i.state = IncidentState::Open;
            }
            if let Some(f) = i.fix.as_mut() {
                f.refused = Some(format!("rejected by {by}: {reason}"));
            }
            i.note(now, "approval", format!("rejected by {by}: {reason}"));
            true
        })
        .await?;
        Ok(decided)
    }

    /// The approval if it is pending (`Ok`), the approved one (`Err`), or a conflict/not found.
    /// An overdue pending approval is expired here (and escalated), which is a conflict.
    async fn pending_approval(&self, id: &str) -> Result<Result<Approval, Approval>, AutonomyError> {
        let Some(approval) = self.state.approval(id).await? else {
            return Err(AutonomyError::NotFound(format!("approval {id}")));
        };
        match approval.state {
            ApprovalState::Pending if approval.is_overdue(self.clock.now()) => {
                self.expire(&approval).await?;
                Err(AutonomyError::Conflict(format!("approval {id} has expired")))
            }
            ApprovalState::Pending => Ok(Ok(approval)),
            ApprovalState::Approved => Ok(Err(approval)),
            other => Err(decided_already(id, other)),
        }
    }

    /// Expires an overdue approval and escalates (urgent notification).
    async fn expire(&self, approval: &Approval) -> Result<bool, AutonomyError> {
        let now = self.clock.now();
        let decided = approval.decided(
            ApprovalState::Expired,
            ROOTFIX,
            now,
            Some("nobody decided before it expired".into()),
        );
        if self.state.decide_approval(&decided).await? != DecideOutcome::Decided {
            return Ok(false);
        }
        self.audit(
            ROOTFIX,
            "approval.expired",
            format!("{} (incident {}): escalated", approval.id, approval.incident),
        )
        .await;
        let incident = self
            .update_incident(&approval.incident, |i| {
                if i.state == IncidentState::AwaitingApproval {
                    i.state = IncidentState::Open;
                }
                if let Some(f) = i.fix.as_mut() {
                    f.refused = Some("the approval expired".into());
                }
                i.note(
                    now,
                    "approval",
                    format!("approval {} expired: escalated", approval.id),
                );
                true
            })
            .await?;
        let fix = incident.fix.clone().unwrap_or(IncidentFix {
            action: approval.action.clone(),
            node: String::new(),
            params: approval.params.clone(),
            confidence: approval.confidence,
            scope: Some(approval.scope.clone()),
            stage: Some(Stage::Manual),
            approval: Some(approval.id.clone()),
            refused: None,
            gate: None,
            dry_run: false,
            outcome: None,
            verdict: None,
            silence: None,
        });
        self.notify(
            NotificationKind::ApprovalExpired,
            format!(
                "ESCALATION: approval for {} on {} expired",
                approval.action, incident.alertname
            ),
            format!(
                "nobody approved or rejected {} before {}; the incident stays open: {}",
                approval.id,
                approval.expires_at.to_rfc3339(),
                approval.summary
            ),
            &fix,
            &approval.incident,
        );
        Ok(true)
    }

    /// The alert of `incident` resolved (it was `was` before): an `auto` fix that had verified
    /// gets its cooldown silence, and a pending approval is cancelled.
    pub async fn alert_resolved(&self, incident: &Incident, was: IncidentState) -> Result<(), AutonomyError> {
        if was == IncidentState::Fixed
            && let Some(fix) = &incident.fix
            && fix.stage == Some(Stage::Auto)
            && fix.silence.is_none()
        {
            let scope = fix.scope.as_deref().unwrap_or("-");
            self.create_cooldown_silence(&incident.id, &fix.action, scope, &incident.alert.labels)
                .await?;
        }
        self.cancel_for_incident(incident).await
    }

    /// Creates the Alertmanager silence of an `auto` fix's cooldown (when `silences:` is
    /// configured) and notes it on the incident; a failure is noted, not raised.
    async fn create_cooldown_silence(
        &self,
        incident_id: &str,
        action: &str,
        scope: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), AutonomyError> {
        let Some(client) = &self.silences else {
            return Ok(());
        };
        let now = self.clock.now();
        let comment = format!("rootfix fixed incident {incident_id} with {action} (scope {scope}); cooldown");
        match client.create(labels, ROOTFIX, &comment, now).await {
            Ok(id) => {
                self.audit(
                    ROOTFIX,
                    "silence.created",
                    format!("incident {incident_id}: silence {id}"),
                )
                .await;
                self.update_incident(incident_id, |i| {
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
                self.update_incident(incident_id, |i| {
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

    /// A pending approval of the incident is cancelled (its alert resolved).
    async fn cancel_for_incident(&self, incident: &Incident) -> Result<(), AutonomyError> {
        let Some(id) = incident.fix.as_ref().and_then(|f| f.approval.clone()) else {
            return Ok(());
        };
        let Some(approval) = self.state.approval(&id).await? else {
            return Ok(());
        };
        if approval.state != ApprovalState::Pending {
            return Ok(());
        }
        let decided = approval.decided(
            ApprovalState::Cancelled,
            ROOTFIX,
            self.clock.now(),
            Some("the alert resolved".into()),
        );
        if self.state.decide_approval(&decided).await? == DecideOutcome::Decided {
            self.audit(
                ROOTFIX,
                "approval.cancelled",
                format!("{id} (incident {}): the alert resolved", incident.id),
            )
            .await;
        }
        Ok(())
    }

    // ── Confirmation ──

    /// An SRE's verdict on a fix that ran: `correct`, or `misfix` with a severity. Feeds the
    /// outcomes; closes an incident waiting for it; a P0 misfix demotes the fix type to manual.
    pub async fn confirm(
        &self,
        incident_id: &str,
        by: &str,
        correct: bool,
        severity: Option<Severity>,
        comment: &str,
    ) -> Result<Incident, AutonomyError> {
        if !correct && severity.is_none() {
            return Err(AutonomyError::Invalid("a misfix needs a severity (P0-P3)".into()));
        }
        let Some(incident) = self.state.incident(incident_id).await? else {
            return Err(AutonomyError::NotFound(format!("incident {incident_id}")));
        };
        let Some(fix) = incident.fix.clone() else {
            return Err(AutonomyError::Conflict(format!(
                "incident {incident_id} has no fix to confirm"
            )));
        };
        match &fix.outcome {
            None => {
                return Err(AutonomyError::Conflict(format!(
                    "the fix of incident {incident_id} has not run"
                )));
            }
            Some(FixOutcome::Refused(_) | FixOutcome::DryRun(_)) => {
                return Err(AutonomyError::Conflict(format!(
                    "the fix of incident {incident_id} changed nothing (refused or dry run)"
                )));
            }
            Some(_) => {}
        }
        if let Some(v) = &fix.verdict {
            return Err(AutonomyError::Conflict(format!(
                "incident {incident_id} was confirmed by {} already",
                v.by
            )));
        }
        let scope = fix.scope.clone().unwrap_or_default();
        let now = self.clock.now();
        let verdict = Verdict {
            correct,
            severity: if correct { None } else { severity },
            by: by.to_string(),
            at: now,
            comment: comment.trim().to_string(),
        };
        let mut conflict = None;
        let saved = self
            .update_incident(incident_id, |i| {
                let Some(f) = i.fix.as_mut() else {
                    return false;
                };
                if let Some(v) = &f.verdict {
                    conflict = Some(v.by.clone());
                    return false;
                }
                f.verdict = Some(verdict.clone());
                let text = match verdict.severity {
                    None => format!("confirmed correct by {by}"),
                    Some(s) => format!("reported a {} misfix by {by}", s.as_str()),
                };
                i.note(now, "confirm", text);
                if i.state == IncidentState::AwaitingConfirmation {
                    i.state = IncidentState::Resolved;
                    i.resolved_at = Some(now);
                    i.note(now, "resolved", "closed by the confirmation");
                }
                true
            })
            .await?;
        if let Some(other) = conflict {
            return Err(AutonomyError::Conflict(format!(
                "incident {incident_id} was confirmed by {other} already"
            )));
        }
        let kind = match verdict.severity {
            None => OutcomeKind::Correct,
            Some(severity) => OutcomeKind::Misfix { severity },
        };
        self.record_outcome(&fix.action, &scope, incident_id, kind, now)
            .await?;
        self.audit(
            by,
            "fix.confirmed",
            format!(
                "incident {incident_id} action {} scope {scope}: {}{}",
                fix.action,
                kind.as_str(),
                verdict
                    .severity
                    .map(|s| format!(" {}", s.as_str()))
                    .unwrap_or_default()
            ),
        )
        .await;
        if verdict.severity == Some(Severity::P0) {
            self.demote_to_manual(
                &fix.action,
                &scope,
                &format!("P0 misfix on incident {incident_id} (by {by})"),
            )
            .await?;
        }
        Ok(saved)
    }

    // ── Stages ──

    /// Every pair with its stage and its gate now.
    pub async fn stage_reports(&self) -> Result<Vec<StageReport>, AutonomyError> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for entry in self.state.stages().await? {
            let cap = self
                .config
                .scopes
                .get(&entry.scope)
                .map_or(Stage::Manual, |s| s.max_stage);
            let gate = self.gate(&entry, cap, now).await?;
            out.push(StageReport { entry, cap, gate });
        }
        Ok(out)
    }

    async fn gate(
        &self,
        entry: &StageEntry,
        cap: Stage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<GateStatus, AutonomyError> {
        let policy = &self.config.promotion;
        let outcomes = self
            .state
            .outcomes(&entry.action, &entry.scope, policy.window_start(now))
            .await?;
        Ok(policy.evaluate(&entry.state, &OutcomeSummary::of(&outcomes), cap, now))
    }

    /// Promotes a pair one stage. Without `force` the gate must be met; the scope's cap always
    /// holds.
    pub async fn promote(
        &self,
        action: &str,
        scope: &str,
        by: &str,
        reason: &str,
        force: bool,
    ) -> Result<StageState, AutonomyError> {
        let Some(state) = self.state.stage(action, scope).await? else {
            return Err(AutonomyError::NotFound(format!(
                "stage of {action} in scope {scope}"
            )));
        };
        let cap = self
            .config
            .scopes
            .get(scope)
            .map_or(Stage::Manual, |s| s.max_stage);
        let Some(next) = state.stage.next() else {
            return Err(AutonomyError::Conflict(format!(
                "{action} in {scope} is at auto already"
            )));
        };
        if next > cap {
            return Err(AutonomyError::Conflict(format!(
                "scope {scope} caps the stage at {cap}; {action} cannot be promoted to {next}"
            )));
        }
        let entry = StageEntry {
            action: action.to_string(),
            scope: scope.to_string(),
            state: state.clone(),
        };
        let now = self.clock.now();
        let gate = self.gate(&entry, cap, now).await?;
        if !gate.met && !force {
            return Err(AutonomyError::Conflict(format!(
                "the promotion gate is not met: {}",
                gate.unmet.join("; ")
            )));
        }
        let reason = if reason.trim().is_empty() {
            format!(
                "gate {}: {} outcomes, success rate {}",
                if gate.met { "met" } else { "forced" },
                gate.samples,
                gate.rate_text()
            )
        } else {
            reason.trim().to_string()
        };
        self.change(action, scope, state.stage, next, by, &reason).await
    }

    /// Demotes a pair to `to` (default: one stage down... or manual when `to` is given so).
    pub async fn demote(
        &self,
        action: &str,
        scope: &str,
        by: &str,
        reason: &str,
        to: Option<Stage>,
    ) -> Result<StageState, AutonomyError> {
        if reason.trim().is_empty() {
            return Err(AutonomyError::Invalid("a reason is required to demote".into()));
        }
        let Some(state) = self.state.stage(action, scope).await? else {
            return Err(AutonomyError::NotFound(format!(
                "stage of {action} in scope {scope}"
            )));
        };
        let to = to.unwrap_or(Stage::Manual);
        if to >= state.stage {
            return Err(AutonomyError::Conflict(format!(
                "{action} in {scope} is at {}; cannot demote to {to}",
                state.stage
            )));
        }
        self.change(action, scope, state.stage, to, by, reason.trim())
            .await
    }

    async fn change(
        &self,
        action: &str,
        scope: &str,
        from: Stage,
        to: Stage,
        by: &str,
        reason: &str,
    ) -> Result<StageState, AutonomyError> {
        let now = self.clock.now();
        let state = StageState {
            stage: to,
            since: now,
            proposal: None,
        };
        let change = StageChange {
            at: now,
            action: action.to_string(),
            scope: scope.to_string(),
            from: Some(from),
            to,
            by: by.to_string(),
            reason: reason.to_string(),
        };
        if !self
            .state
            .change_stage(action, scope, Some(from), &state, Some(&change))
            .await?
        {
            return Err(AutonomyError::Conflict(format!(
                "the stage of {action} in {scope} changed meanwhile; look again"
            )));
        }
        let verb = if to > from { "promoted" } else { "demoted" };
        self.audit(
            by,
            &format!("stage.{verb}"),
            format!("{action}/{scope}: {from} → {to}: {reason}"),
        )
        .await;
        let mut n = Notification::new(
            NotificationKind::StageChanged,
            format!("{action} in {scope}: {from} → {to}"),
            format!("{verb} by {by}: {reason}"),
        )
        .with_action(action)
        .with_scope(scope);
        n.at = now;
        self.notifier.notify(n);
        info!(%action, %scope, %from, %to, %by, "stage changed");
        Ok(state)
    }

    /// A P0 misfix or a failed rollback: back to manual at once.
    async fn demote_to_manual(&self, action: &str, scope: &str, reason: &str) -> Result<(), AutonomyError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(state) = self.state.stage(action, scope).await? else {
                return Ok(());
            };
            if state.stage == Stage::Manual {
                return Ok(());
            }
            match self
                .change(action, scope, state.stage, Stage::Manual, ROOTFIX, reason)
                .await
            {
                Ok(_) => return Ok(()),
                Err(AutonomyError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(AutonomyError::Contended(stage_key(action, scope)))
    }

    // ── The leader's job ──

    /// Expires overdue approvals, then proposes (or, by policy, applies) the promotions the gate
    /// allows.
    pub async fn tick(&self) -> Result<TickReport, AutonomyError> {
        let mut report = TickReport::default();
        let now = self.clock.now();
        for approval in self.state.list_approvals(true, 10_000).await? {
            if approval.is_overdue(now) && self.expire(&approval).await? {
                report.expired.push(approval.id.clone());
            }
        }
        for entry in self.state.stages().await? {
            let cap = self
                .config
                .scopes
                .get(&entry.scope)
                .map_or(Stage::Manual, |s| s.max_stage);
            let gate = self.gate(&entry, cap, now).await?;
            let (true, Some(next)) = (gate.met, gate.next) else {
                continue;
            };
            let key = format!("{} → {next}", stage_key(&entry.action, &entry.scope));
            if self.config.promotion.auto_apply {
                let reason = format!(
                    "the gate is met ({} outcomes, success rate {}); policy applies it",
                    gate.samples,
                    gate.rate_text()
                );
                match self
                    .change(
                        &entry.action,
                        &entry.scope,
                        entry.state.stage,
                        next,
                        ROOTFIX,
                        &reason,
                    )
                    .await
                {
                    Ok(_) => report.promoted.push(key),
                    Err(AutonomyError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            if entry.state.proposal.as_ref().map(|p| p.to) == Some(next) {
                continue;
            }
            let proposed = StageState {
                proposal: Some(Proposal { to: next, at: now }),
                ..entry.state.clone()
            };
            if self
                .state
                .change_stage(
                    &entry.action,
                    &entry.scope,
                    Some(entry.state.stage),
                    &proposed,
                    None,
                )
                .await?
            {
                self.audit(
                    ROOTFIX,
                    "stage.proposed",
                    format!(
                        "{}/{}: {} → {next}: the gate is met ({} outcomes, success rate {})",
                        entry.action,
                        entry.scope,
                        entry.state.stage,
                        gate.samples,
                        gate.rate_text()
                    ),
                )
                .await;
                let mut n = Notification::new(
                    NotificationKind::StageChanged,
                    format!("Promotion proposed: {} in {} → {next}", entry.action, entry.scope),
                    format!(
                        "the gate is met; apply with `rootfix stages promote {} {}`",
                        entry.action, entry.scope
                    ),
                )
                .with_action(entry.action.clone())
                .with_scope(entry.scope.clone());
                n.at = now;
                self.notifier.notify(n);
                report.proposed.push(key);
            }
        }
        Ok(report)
    }

    /// Runs [`Self::tick`] every `leader_interval` while this replica holds the leader lease.
    pub async fn run_leader(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let interval = self.config.leader_interval;
        loop {
            match self.state.try_lead(&self.replica, interval * 3).await {
                Ok(true) => {
                    if let Err(e) = self.tick().await {
                        warn!(error = %e, "the leader's job failed; retrying next interval");
                    }
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "cannot reach the state store for the leader election"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// The conflict of deciding an approval that was decided before.
fn decided_already(id: &str, state: ApprovalState) -> AutonomyError {
    AutonomyError::Conflict(format!("approval {id} is {}", state.as_str()))
}

fn render_params(params: &BTreeMap<String, String>) -> String {
    if params.is_empty() {
        return "none".into();
    }
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
