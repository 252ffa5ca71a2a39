//! An SRE's verdict on a fix that ran: `correct`, or `misfix` with a severity. It feeds the
//! outcomes the promotion gate counts, closes an incident waiting for it, and a P0 misfix demotes
//! the fix type to manual at once.

use std::sync::Arc;

use super::context::{AutonomyError, Context};
use super::outcome::{OutcomeKind, Severity};
use super::stages::Stages;
use crate::incident::{Incident, IncidentState, Verdict};

/// Takes SREs' verdicts.
pub struct Confirmations {
    ctx: Arc<Context>,
    stages: Arc<Stages>,
}

impl Confirmations {
    pub fn new(stages: Arc<Stages>) -> Self {
        Self {
            ctx: stages.ctx.clone(),
            stages,
        }
    }

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
        let Some(incident) = self.ctx.state.incident(incident_id).await? else {
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
            Some(outcome) if !outcome.executed() => {
                return Err(AutonomyError::Conflict(format!(
                    "the fix of incident {incident_id} did not execute ({}): nothing changed, so there is nothing to confirm",
                    outcome.label()
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
        let now = self.ctx.clock.now();
        let verdict = Verdict {
            correct,
            severity: if correct { None } else { severity },
            by: by.to_string(),
            at: now,
            comment: comment.trim().to_string(),
        };
        let mut conflict = None;
        let saved = self
            .ctx
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
        self.ctx
            .record_fix_outcome(&fix, &scope, incident_id, kind, now)
            .await?;
        self.ctx
            .audit(
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
            self.stages
                .demote_to_manual(
                    &fix.action,
                    &scope,
                    &format!("P0 misfix on incident {incident_id} (by {by})"),
                )
                .await?;
        }
        Ok(saved)
    }
}
