//! Deciding a diagnosed incident's fix: the first gates in order (the action is loaded, its
//! runner can run here, the kill switch, the scope, the stage), then an approval request for a
//! `manual` fix or the fix lifecycle for the rest. Idempotent: an incident decided before is left
//! alone.

use std::sync::Arc;

use tracing::{Instrument, info_span};

use super::approvals::Approvals;
use super::context::{AutonomyError, Context, Decided, ROOTFIX};
use super::gate::Gate;
use super::lifecycle::FixLifecycle;
use super::recurrence::Recurrences;
use super::refusal::refuse;
use super::stage::Stage;
use super::stages::Stages;
use crate::incident::{Incident, IncidentFix, IncidentState};

/// Decides incidents' fixes.
pub struct Decider {
    ctx: Arc<Context>,
    stages: Arc<Stages>,
    approvals: Arc<Approvals>,
    lifecycle: Arc<FixLifecycle>,
    recurrences: Arc<Recurrences>,
}

impl Decider {
    pub fn new(
        stages: Arc<Stages>,
        approvals: Arc<Approvals>,
        lifecycle: Arc<FixLifecycle>,
        recurrences: Arc<Recurrences>,
    ) -> Self {
        Self {
            ctx: lifecycle.ctx.clone(),
            stages,
            approvals,
            lifecycle,
            recurrences,
        }
    }

    /// Takes a diagnosed incident through the gates: refuses, asks for approval, or starts its
    /// fix. Idempotent: an incident whose fix was decided is left alone.
    pub async fn decide_incident(&self, incident: &Incident) -> Result<Decided, AutonomyError> {
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
                steps: remedy.steps.clone(),
                waves: remedy.waves.clone(),
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
            if let Some(missing) = self.ctx.fix_action_missing(&fix) {
                let reason = format!("action `{missing}` is not loaded");
                return refuse(&self.ctx, incident, fix, Gate::Action, reason).await;
            }
            // Never offer what cannot run: the action's runner (every step's) must be usable.
            if let Some(reason) = self.ctx.fix_runner_refusal(&fix) {
                return refuse(&self.ctx, incident, fix, Gate::Runner, reason).await;
            }
            // Gate 1: the kill switch.
            if let Some(reason) = self.ctx.killswitch_on().await? {
                return refuse(&self.ctx, incident, fix, Gate::Killswitch, reason).await;
            }
            // Gate 2: the target is inside a scope.
            let Some(scope) = self.ctx.config.scopes.scope_for(&incident.alert.labels).cloned() else {
                let reason = "the target is outside every scope".to_string();
                return refuse(&self.ctx, incident, fix, Gate::Scope, reason).await;
            };
            fix.scope = Some(scope.name.clone());
            // Gate 3: the stage.
            let stage = self
                .stages
                .stage_of(&fix.action, &scope.name)
                .await?
                .min(scope.max_stage);
            // A flapping alert is not fixed automatically: a human approves each attempt.
            let stage = if stage > Stage::Manual && self.ctx.alert_rules.is_flapping(incident) {
                let now = self.ctx.clock.now();
                let note = format!(
                    "the alert is flapping ({} flaps, more than limits.max_flaps {}): {} needs a human's approval instead of stage {stage}",
                    incident.flaps, self.ctx.alert_rules.max_flaps, fix.action
                );
                self.ctx
                    .update_incident(&incident.id, |i| {
                        i.note(now, "flapping", note.clone());
                        true
                    })
                    .await?;
                Stage::Manual
            } else {
                stage
            };
            // The per-target breaker: a fix that kept recurring on this target is not run on
            // rootfix's own any more; a person decides each attempt.
            let breaker = self.recurrences.check_target(incident, &fix, &scope.name).await?;
            let stage = if breaker.open() {
                self.breaker_open(incident, &fix, &breaker, stage).await?;
                Stage::Manual
            } else {
                stage
            };
            fix.stage = Some(stage);
            if stage == Stage::Manual {
                // Approved before and refused for now by a later gate (the runner, the kill
                // switch, ...): the approval stands for the stage gate; the others are asked now.
                if let Some((id, by)) = self.approvals.approved_by(incident, &fix.action).await? {
                    fix.approval = Some(id);
                    return self.lifecycle.start(incident, fix, &scope, &by).await;
                }
                return self
                    .approvals
                    .request(incident, fix, &remedy.threshold, &scope)
                    .await;
            }
            self.lifecycle.start(incident, fix, &scope, ROOTFIX).await
        }
        .instrument(span)
        .await
    }

    /// Notes, audits and notifies (urgent) that the breaker of the fix's target is open, once
    /// per incident.
    async fn breaker_open(
        &self,
        incident: &Incident,
        fix: &IncidentFix,
        breaker: &super::recurrence::Breaker,
        stage: Stage,
    ) -> Result<(), AutonomyError> {
        let now = self.ctx.clock.now();
        let note = format!(
            "breaker open: {} recurred {} times on {} within autonomy.recurrence_window (autonomy.max_recurrences {}); rootfix stops fixing this target on its own and a person approves each attempt (stage {stage} held at manual)",
            fix.action, breaker.recurrences, breaker.target, breaker.max
        );
        let mut first = false;
        self.ctx
            .update_incident(&incident.id, |i| {
                if i.timeline.iter().any(|t| t.kind == "breaker") {
                    return false;
                }
                i.note(now, "breaker", note.clone());
                first = true;
                true
            })
            .await?;
        if !first {
            return Ok(());
        }
        self.ctx
            .audit(
                ROOTFIX,
                "breaker.open",
                format!("incident {}: {note}", incident.id),
            )
            .await;
        self.ctx.notify(
            crate::notify::NotificationKind::BreakerOpen,
            format!(
                "Breaker open, escalated: {} keeps recurring on {} ({})",
                fix.action,
                incident.alertname,
                incident.service.as_deref().unwrap_or("-")
            ),
            format!("incident {}: {note}", incident.id),
            fix,
            &incident.id,
            None,
        );
        Ok(())
    }
}
