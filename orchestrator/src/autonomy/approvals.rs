//! The approval workflow of a `manual` fix: requesting it (notified), approving (the fix then
//! goes through the remaining gates to the lifecycle), rejecting with a reason, expiring an
//! overdue one with an escalation, and cancelling one whose alert resolved. The approval record
//! itself is [`super::approval::Approval`].

use std::sync::Arc;

use super::approval::{Approval, ApprovalState, DecideOutcome};
use super::context::{AutonomyError, Context, Decided, ROOTFIX, render_params};
use super::gate::Gate;
use super::lifecycle::FixLifecycle;
use super::refusal::refuse;
use super::scope::Scope;
use super::stage::Stage;
use crate::engine::NodeOutcome;
use crate::incident::{Incident, IncidentFix, IncidentState};
use crate::notify::{Ask, NotificationKind};

/// What approving did.
#[derive(Debug, Clone, PartialEq)]
pub struct Approved {
    pub approval: Approval,
    /// False when it had been approved before (approving twice is a no-op).
    pub newly: bool,
    pub decided: Option<Decided>,
}

/// Requests, decides and expires approvals.
pub struct Approvals {
    ctx: Arc<Context>,
    lifecycle: Arc<FixLifecycle>,
}

impl Approvals {
    pub fn new(lifecycle: Arc<FixLifecycle>) -> Self {
        Self {
            ctx: lifecycle.ctx.clone(),
            lifecycle,
        }
    }

    pub(super) async fn request(
        &self,
        incident: &Incident,
        mut fix: IncidentFix,
        threshold: &f64,
        scope: &Scope,
    ) -> Result<Decided, AutonomyError> {
        let now = self.ctx.clock.now();
        let ttl = chrono::Duration::from_std(self.ctx.config.approval_ttl).unwrap_or(chrono::Duration::MAX);
        let path = incident
            .diagnosis
            .as_ref()
            .map(|d| d.with_outcome(NodeOutcome::Hit).join(" → "))
            .unwrap_or_default();
        let approval = Approval {
            id: Approval::id_for_attempt(&incident.id, &fix.action, incident.flaps),
            incident: incident.id.clone(),
            action: fix.action.clone(),
            scope: scope.name.clone(),
            params: fix.params.clone(),
            steps: fix.steps.clone(),
            summary: format!(
                "{} ({}): path {path}; remedy {}{} at {}",
                incident.alertname,
                incident.service.as_deref().unwrap_or("-"),
                fix.action,
                if fix.steps.is_empty() {
                    String::new()
                } else {
                    let actions: Vec<&str> = fix.steps.iter().map(|s| s.action.as_str()).collect();
                    format!(" ({} steps: {})", fix.steps.len(), actions.join(" → "))
                },
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
        let created = self.ctx.state.create_approval(&approval).await?;
        fix.approval = Some(approval.id.clone());
        self.ctx
            .update_incident(&incident.id, |i| {
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
            self.ctx
                .audit(
                    ROOTFIX,
                    "approval.requested",
                    format!(
                        "{} for incident {} ({} in {})",
                        approval.id, incident.id, fix.action, scope.name
                    ),
                )
                .await;
            self.ctx.notify(
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
                Some(Ask::Approval(approval.id.clone())),
            );
        }
        Ok(Decided::AwaitingApproval(approval.id))
    }
    /// Approves a pending approval and starts its fix through the remaining gates. Approving an
    /// approved one again is a no-op; an expired, rejected or cancelled one is a conflict.
    pub async fn approve(&self, id: &str, by: &str) -> Result<Approved, AutonomyError> {
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
        let now = self.ctx.clock.now();
        let decided = approval.decided(ApprovalState::Approved, by, now, None);
        match self.ctx.state.decide_approval(&decided).await? {
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
        self.ctx
            .audit(
                by,
                "approval.approved",
                format!("{id} (incident {})", approval.incident),
            )
            .await;
        let incident = self
            .ctx
            .update_incident(&approval.incident, |i| {
                i.note(now, "approval", format!("approved by {by}"));
                true
            })
            .await?;
        // The approval stands for the stage gate; the others are asked now, from the first.
        let decided_next = match (incident.state, incident.fix.clone()) {
            (IncidentState::AwaitingApproval, Some(fix)) => Some(
                match (
                    self.ctx.killswitch_on().await?,
                    self.ctx.config.scopes.get(&approval.scope),
                ) {
                    (Some(reason), _) => refuse(&self.ctx, &incident, fix, Gate::Killswitch, reason).await?,
                    (None, None) => {
                        let reason = format!("scope {} is no longer configured", approval.scope);
                        refuse(&self.ctx, &incident, fix, Gate::Scope, reason).await?
                    }
                    (None, Some(scope)) => match self.ctx.fix_runner_refusal(&fix) {
                        // Approved before its runner went away (or by an older run): say so.
                        Some(reason) => refuse(&self.ctx, &incident, fix, Gate::Runner, reason).await?,
                        None => {
                            let scope = scope.clone();
                            self.lifecycle.start(&incident, fix, &scope, by).await?
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
        let now = self.ctx.clock.now();
        let decided = approval.decided(ApprovalState::Rejected, by, now, Some(reason.to_string()));
        match self.ctx.state.decide_approval(&decided).await? {
            DecideOutcome::Decided => {}
            DecideOutcome::Missing => return Err(AutonomyError::NotFound(format!("approval {id}"))),
            DecideOutcome::AlreadyDecided(stored) => {
                return Err(decided_already(id, stored.state));
            }
        }
        self.ctx
            .audit(
                by,
                "approval.rejected",
                format!("{id} (incident {}): {reason}", approval.incident),
            )
            .await;
        self.ctx
            .update_incident(&approval.incident, |i| {
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
        let Some(approval) = self.ctx.state.approval(id).await? else {
            return Err(AutonomyError::NotFound(format!("approval {id}")));
        };
        match approval.state {
            ApprovalState::Pending if approval.is_overdue(self.ctx.clock.now()) => {
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
        let now = self.ctx.clock.now();
        let decided = approval.decided(
            ApprovalState::Expired,
            ROOTFIX,
            now,
            Some("nobody decided before it expired".into()),
        );
        if self.ctx.state.decide_approval(&decided).await? != DecideOutcome::Decided {
            return Ok(false);
        }
        self.ctx
            .audit(
                ROOTFIX,
                "approval.expired",
                format!("{} (incident {}): escalated", approval.id, approval.incident),
            )
            .await;
        let incident = self
            .ctx
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
            steps: approval.steps.clone(),
            waves: Vec::new(),
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
        self.ctx.notify(
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
            None,
        );
        Ok(true)
    }

    /// A pending approval of the incident is cancelled (its alert resolved).
    pub(super) async fn cancel_for_incident(&self, incident: &Incident) -> Result<(), AutonomyError> {
        let Some(id) = incident.fix.as_ref().and_then(|f| f.approval.clone()) else {
            return Ok(());
        };
        let Some(approval) = self.ctx.state.approval(&id).await? else {
            return Ok(());
        };
        if approval.state != ApprovalState::Pending {
            return Ok(());
        }
        let decided = approval.decided(
            ApprovalState::Cancelled,
            ROOTFIX,
            self.ctx.clock.now(),
            Some("the alert resolved".into()),
        );
        if self.ctx.state.decide_approval(&decided).await? == DecideOutcome::Decided {
            self.ctx
                .audit(
                    ROOTFIX,
                    "approval.cancelled",
                    format!("{id} (incident {}): the alert resolved", incident.id),
                )
                .await;
        }
        Ok(())
    }

    /// The leader's part for approvals: expires (and escalates) every overdue pending approval;
    /// returns their ids.
    pub(super) async fn expire_overdue(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>, AutonomyError> {
        let mut expired = Vec::new();
        for approval in self.ctx.state.list_approvals(true, 10_000).await? {
            if approval.is_overdue(now) && self.expire(&approval).await? {
                expired.push(approval.id.clone());
            }
        }
        Ok(expired)
    }

    /// Who approved `action` for `incident`, when an approval for it stands.
    pub(super) async fn approved_by(
        &self,
        incident: &Incident,
        action: &str,
    ) -> Result<Option<(String, String)>, AutonomyError> {
        let id = Approval::id_for_attempt(&incident.id, action, incident.flaps);
        Ok(match self.ctx.state.approval(&id).await? {
            Some(approved) if approved.state == ApprovalState::Approved => {
                let by = approved.decided_by.unwrap_or_else(|| ROOTFIX.to_string());
                Some((id, by))
            }
            _ => None,
        })
    }
}

/// The conflict of deciding an approval that was decided before.
fn decided_already(id: &str, state: ApprovalState) -> AutonomyError {
    AutonomyError::Conflict(format!("approval {id} is {}", state.as_str()))
}
