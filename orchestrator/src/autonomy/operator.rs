//! An operator's explicit fix (`POST /api/v1/incidents/{id}/fix`, `rootfix fix run`): no stage,
//! scope, rate or concurrency gate is consulted, but the kill switch, the action's runner, the
//! params and the target's lock are. Its outcome does not count for promotion.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::{Instrument, info, info_span};

use super::context::{AutonomyError, Context, render_params};
use super::lifecycle::FixLifecycle;
use crate::fix::executor::{FixPlan, FixReport};
use crate::fix::journal::{FixOutcome, fix_id};
use crate::incident::{IncidentFix, IncidentState};
use crate::notify::NotificationKind;
use crate::runner::validate_params;

/// Runs operators' fixes through the fix lifecycle's executor and running count.
pub struct OperatorFixes {
    ctx: Arc<Context>,
    lifecycle: Arc<FixLifecycle>,
}

impl OperatorFixes {
    pub fn new(lifecycle: Arc<FixLifecycle>) -> Self {
        Self {
            ctx: lifecycle.ctx.clone(),
            lifecycle,
        }
    }

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
            let Some(incident) = self.ctx.state.incident(incident_id).await? else {
                return Err(AutonomyError::NotFound(format!("incident {incident_id}")));
            };
            let Some(action) = self.ctx.catalog.current().actions.get(action_name).cloned() else {
                let of_steps = incident
                    .diagnosis
                    .as_ref()
                    .is_some_and(|d| d.remedies.iter().any(|r| r.action == action_name && !r.steps.is_empty()));
                if of_steps {
                    return Err(AutonomyError::Invalid(format!(
                        "`{action_name}` is a remedy of several steps; an operator's fix runs one action (one of its steps), or approve the remedy"
                    )));
                }
                return Err(AutonomyError::NotFound(format!("action {action_name}")));
            };
            if let Some(reason) = self.ctx.killswitch_on().await? {
                return Err(AutonomyError::Conflict(reason));
            }
            if let Some(reason) = self.ctx.runner_refusal(action_name) {
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
                steps: Vec::new(),
                waves: Vec::new(),
                confidence: remedy.as_ref().map_or(0.0, |r| r.score),
                scope: self
                    .ctx.config
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
            let now = self.ctx.clock.now();
            let mut busy = None;
            // Counted as running before the incident says `fixing` (see `Lifecycle::start`).
            let running = self.lifecycle.track();
            let started = self
                .ctx.update_incident(incident_id, |i| {
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
            self.ctx.audit(
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
                verify: self.lifecycle.verify_for(&started, &fix.node, None),
                dry_run: false,
            };
            let this = self.clone();
            let (id, by_owned) = (incident_id.to_string(), by.to_string());
            // In its own task: a caller that goes away does not cut a fix in the middle.
            let task = tokio::spawn(
                async move {
                    let report = match this.lifecycle.executor.run_as(plan, &by_owned).await {
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
                    drop(running);
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
        let now = self.ctx.clock.now();
        self.ctx
            .audit(
                by,
                "fix.finished",
                format!(
                    "incident {incident_id} action {} by operator {by}: {outcome}",
                    fix.action
                ),
            )
            .await;
        if let Some(m) = &self.ctx.metrics {
            m.fix_finished(outcome.label());
        }
        let succeeded = matches!(outcome, FixOutcome::Succeeded | FixOutcome::AlreadyHealthy);
        fix.outcome = Some(outcome.clone());
        let incident = self
            .ctx.update_incident(incident_id, |i| {
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
            self.ctx.notify(
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
                None,
            );
        }
        info!(incident = %incident_id, %outcome, %by, "operator's fix closed");
        Ok(())
    }
}
