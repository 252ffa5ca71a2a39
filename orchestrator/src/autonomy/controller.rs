//! [`Autonomy`], the one value the server, the event handler and the CLI's in-process commands
//! hold: it assembles the parts of autonomy around one shared [`Context`] and names what callers
//! do — decide an incident's fix, approve or reject, confirm, promote or demote, an operator's
//! fix, the alert resolved, recovery after a restart, the leader's job. It holds no logic of its
//! own; each part is a module of its own (see `autonomy/mod.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::approval::Approval;
use super::approvals::Approvals;
use super::clock::Clock;
use super::config::AutonomyConfig;
use super::confirm::Confirmations;
use super::context::Context;
use super::decide::Decider;
use super::leader::Leader;
use super::lifecycle::FixLifecycle;
use super::operator::OperatorFixes;
use super::outcome::Severity;
use super::recurrence::Recurrences;
use super::retention::Retention;
use super::stage::{Stage, StageState};
use super::stages::Stages;
use super::sweep::Sweep;
use crate::alert_rules::AlertRules;
use crate::engine::EvidenceProvider;
use crate::fix::executor::{Executor, FixReport, VerifyCheck};
use crate::incident::{Incident, IncidentState};
use crate::model::action::RunnerKind;
use crate::notify::Notifier;
use crate::reload::CatalogHandle;
use crate::runner::availability::{CannotRun, RunnerAvailability};
use crate::silence::SilenceClient;
use crate::state::StateStore;

pub use super::approvals::Approved;
pub use super::context::{AutonomyError, Decided, ROOTFIX};
pub use super::leader::TickReport;
pub use super::retention::RetentionReport;
pub use super::stages::StageReport;

/// Staged autonomy applied to incidents.
pub struct Autonomy {
    /// Which runners can run on this install (the runner gate asks it).
    pub availability: Arc<RunnerAvailability>,
    /// The state store every decision reads and writes.
    pub state: Arc<dyn StateStore>,
    ctx: Arc<Context>,
    stages: Arc<Stages>,
    lifecycle: Arc<FixLifecycle>,
    approvals: Arc<Approvals>,
    decider: Arc<Decider>,
    recurrences: Arc<Recurrences>,
    confirmations: Confirmations,
    operator: Arc<OperatorFixes>,
    leader: Leader,
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
        let ctx = Context {
            state,
            config,
            clock,
            catalog,
            notifier,
            replica,
            metrics: None,
            availability: Arc::new(availability),
            alert_rules: AlertRules::default(),
            slot_freed: Arc::new(tokio::sync::Notify::new()),
            retention: crate::config::RetentionConfig::default(),
        };
        Self::assemble(ctx, executor, evidence, silences)
    }

    fn assemble(
        ctx: Context,
        executor: Arc<Executor>,
        evidence: Arc<dyn EvidenceProvider>,
        silences: Option<SilenceClient>,
    ) -> Self {
        let ctx = Arc::new(ctx);
        let stages = Arc::new(Stages::new(ctx.clone()));
        let lifecycle = Arc::new(FixLifecycle::new(
            ctx.clone(),
            stages.clone(),
            executor,
            evidence,
            silences,
        ));
        let approvals = Arc::new(Approvals::new(lifecycle.clone()));
        let recurrences = Arc::new(Recurrences::new(ctx.clone()));
        let decider = Arc::new(Decider::new(
            stages.clone(),
            approvals.clone(),
            lifecycle.clone(),
            recurrences.clone(),
        ));
        let sweep = Sweep::new(
            ctx.clone(),
            decider.clone(),
            approvals.clone(),
            recurrences.clone(),
            lifecycle.silences.clone(),
        );
        Self {
            recurrences,
            availability: ctx.availability.clone(),
            state: ctx.state.clone(),
            decider,
            confirmations: Confirmations::new(stages.clone()),
            operator: Arc::new(OperatorFixes::new(lifecycle.clone())),
            leader: Leader::new(
                ctx.clone(),
                approvals.clone(),
                stages.clone(),
                sweep,
                Retention::new(ctx.clone()),
            ),
            ctx,
            stages,
            lifecycle,
            approvals,
        }
    }

    /// Rebuilds the parts around a changed context (the builder methods below).
    fn with_context(self, change: impl FnOnce(&mut Context)) -> Self {
        let mut ctx = (*self.ctx).clone();
        change(&mut ctx);
        let lifecycle = &self.lifecycle;
        Self::assemble(
            ctx,
            lifecycle.executor.clone(),
            lifecycle.evidence.clone(),
            lifecycle.silences.clone(),
        )
    }

    /// Counts gate refusals and fix outcomes in `metrics`.
    pub fn with_metrics(self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.with_context(|ctx| ctx.metrics = Some(metrics))
    }

    /// Asks `availability` whether a runner can run (what `serve` found: engine pings, config).
    pub fn with_availability(self, availability: Arc<RunnerAvailability>) -> Self {
        self.with_context(|ctx| ctx.availability = availability)
    }

    /// Applies the alert lifecycle's rules (`limits.flap_window`, `max_flaps`, `stale_after`).
    pub fn with_alert_rules(self, rules: AlertRules) -> Self {
        self.with_context(|ctx| ctx.alert_rules = rules)
    }

    /// Keeps closed incidents and audit events as long as `retention` says (the leader's job).
    pub fn with_retention(self, retention: crate::config::RetentionConfig) -> Self {
        self.with_context(|ctx| ctx.retention = retention)
    }

    /// The shared context: the state store, configuration and clock this autonomy decides with.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The actions of the catalog in force that cannot run here, with why.
    pub fn cannot_run(&self) -> Vec<CannotRun> {
        self.ctx
            .availability
            .cannot_run(&self.ctx.catalog.current().actions)
    }

    /// Why the fix's action cannot run on this install (the runner gate), when it cannot.
    pub fn runner_refusal(&self, action: &str) -> Option<String> {
        self.ctx.runner_refusal(action)
    }

    /// Fixes started by this process and not finished.
    pub fn running_fixes(&self) -> usize {
        self.lifecycle.running_fixes()
    }

    /// Waits until no fix started by this process is running (tests, shutdown).
    pub async fn wait_idle(&self, max: Duration) -> bool {
        self.lifecycle.wait_idle(max).await
    }

    /// Takes a diagnosed incident through the gates: refuses, asks for approval, or starts its
    /// fix. Idempotent: an incident whose fix was decided is left alone.
    pub async fn decide(&self, incident_id: &str) -> Result<Decided, AutonomyError> {
        let Some(incident) = self.ctx.state.incident(incident_id).await? else {
            return Err(AutonomyError::NotFound(format!("incident {incident_id}")));
        };
        self.decider.decide_incident(&incident).await
    }

    /// [`Self::decide`] for an incident the caller has just read or saved.
    pub async fn decide_incident(&self, incident: &Incident) -> Result<Decided, AutonomyError> {
        self.decider.decide_incident(incident).await
    }

    /// The playbook's verify condition for a fix, when it has one.
    pub fn verify_for(&self, incident: &Incident, node: &str) -> Option<Arc<dyn VerifyCheck>> {
        self.lifecycle.verify_for(incident, node, None)
    }

    /// Finishes the fixes a stopped rootfix left, then closes their incidents like any fix.
    pub async fn recover(&self) -> Result<Vec<FixReport>, AutonomyError> {
        self.lifecycle.recover().await
    }

    /// Runs `action` now for an incident on an operator's explicit decision; waits for its end.
    pub async fn operator_fix(
        &self,
        incident_id: &str,
        action: &str,
        params: BTreeMap<String, String>,
        by: &str,
    ) -> Result<FixReport, AutonomyError> {
        self.operator.operator_fix(incident_id, action, params, by).await
    }

    /// Approves a pending approval and starts its fix through the remaining gates.
    pub async fn approve(&self, id: &str, by: &str) -> Result<Approved, AutonomyError> {
        self.approvals.approve(id, by).await
    }

    /// Rejects a pending approval; a reason is required.
    pub async fn reject(&self, id: &str, by: &str, reason: &str) -> Result<Approval, AutonomyError> {
        self.approvals.reject(id, by, reason).await
    }

    /// The alert of `incident` resolved (it was `was` before): an `auto` fix that had verified
    /// gets its cooldown silence, the recovery time is measured, and a pending approval is
    /// cancelled.
    pub async fn alert_resolved(&self, incident: &Incident, was: IncidentState) -> Result<(), AutonomyError> {
        if was == IncidentState::Fixed
            && let Some(fix) = &incident.fix
            && fix.stage == Some(Stage::Auto)
            && fix.silence.is_none()
        {
            let scope = fix.scope.as_deref().unwrap_or("-");
            self.lifecycle
                .create_cooldown_silence(&incident.id, &fix.action, scope, &incident.alert.labels)
                .await?;
        }
        if matches!(was, IncidentState::Fixed | IncidentState::AwaitingConfirmation) {
            self.ctx.record_recovery(incident).await?;
        }
        if incident.state == IncidentState::Resolved {
            self.ctx.notify_resolved(incident);
        }
        self.approvals.cancel_for_incident(incident).await
    }

    /// The verified fix of `incident` did not hold (`why`): its outcome becomes `recurred`,
    /// audited and notified. The caller has written it on the incident.
    pub async fn fix_recurred(&self, incident: &Incident, why: &str) -> Result<(), AutonomyError> {
        self.recurrences.fix_recurred(incident, why).await
    }

    /// The alert of `last` (closed) fires again as incident `new`: within
    /// `autonomy.recurrence_window` of a verified fix, that fix recurred.
    pub async fn alert_came_back(&self, last: &Incident, new: &str) -> Result<(), AutonomyError> {
        self.recurrences.alert_came_back(last, new).await
    }

    /// An SRE's verdict on a fix that ran.
    pub async fn confirm(
        &self,
        incident_id: &str,
        by: &str,
        correct: bool,
        severity: Option<Severity>,
        comment: &str,
    ) -> Result<Incident, AutonomyError> {
        self.confirmations
            .confirm(incident_id, by, correct, severity, comment)
            .await
    }

    /// Every pair with its stage and its gate now.
    pub async fn stage_reports(&self) -> Result<Vec<StageReport>, AutonomyError> {
        self.stages.stage_reports().await
    }

    /// Promotes a pair one stage (the gate must be met unless `force`; the scope's cap holds).
    pub async fn promote(
        &self,
        action: &str,
        scope: &str,
        by: &str,
        reason: &str,
        force: bool,
    ) -> Result<StageState, AutonomyError> {
        self.stages.promote(action, scope, by, reason, force).await
    }

    /// Demotes a pair (to `to`, default manual); a reason is required.
    pub async fn demote(
        &self,
        action: &str,
        scope: &str,
        by: &str,
        reason: &str,
        to: Option<Stage>,
    ) -> Result<StageState, AutonomyError> {
        self.stages.demote(action, scope, by, reason, to).await
    }

    /// One run of the leader's job (expire approvals, proposals and promotions).
    pub async fn tick(&self) -> Result<TickReport, AutonomyError> {
        self.leader.tick().await
    }

    /// Runs the leader's job every `leader_interval` while this replica holds the lease.
    pub async fn run_leader(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        self.leader.run(stop).await
    }
}
