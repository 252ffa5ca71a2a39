//! A verified fix that did not hold: its alert fired again before Alertmanager's `resolved`, did
//! not resolve within `autonomy.resolve_wait`, or came back within `limits.flap_window`. The
//! fix's (action, scope) gets the outcome `recurred` — a failure for the promotion gate — and the
//! recurrence is audited and notified. The caller has already written it on the incident.

use std::sync::Arc;

use tracing::info;

use super::context::{AutonomyError, Context, ROOTFIX};
use super::outcome::OutcomeKind;
use crate::fix::journal::FixOutcome;
use crate::incident::Incident;
use crate::notify::NotificationKind;

/// Records recurrences.
pub struct Recurrences {
    ctx: Arc<Context>,
}

/// Whether the incident's fix ran and verified (what a recurrence can undo).
pub fn fix_verified(incident: &Incident) -> bool {
    incident.fix.as_ref().is_some_and(|f| {
        matches!(
            f.outcome,
            Some(FixOutcome::Succeeded | FixOutcome::AlreadyHealthy)
        )
    })
}

impl Recurrences {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }

    /// The verified fix of `incident` did not hold, for the reason `why`. A fix that no stage
    /// decided (an operator's) records no outcome; it is still audited and notified.
    pub async fn fix_recurred(&self, incident: &Incident, why: &str) -> Result<(), AutonomyError> {
        let Some(fix) = incident.fix.as_ref().filter(|_| fix_verified(incident)) else {
            return Ok(());
        };
        let scope = fix.scope.as_deref().unwrap_or("-");
        let now = self.ctx.clock.now();
        if fix.stage.is_some() {
            self.ctx
                .record_outcome(&fix.action, scope, &incident.id, OutcomeKind::Recurred, now)
                .await?;
        }
        self.ctx
            .audit(
                ROOTFIX,
                "fix.recurred",
                format!(
                    "incident {} action {} scope {scope}: {why}",
                    incident.id, fix.action
                ),
            )
            .await;
        if let Some(m) = &self.ctx.metrics {
            m.fix_finished("recurred");
        }
        self.ctx.notify(
            NotificationKind::FixFailed,
            format!(
                "Fix did not hold: {} on {} ({})",
                fix.action,
                incident.alertname,
                incident.service.as_deref().unwrap_or("-")
            ),
            format!(
                "incident {}, scope {scope}: the fix verified, but {why}; outcome recurred, and rootfix does not run it again on its own",
                incident.id
            ),
            fix,
            &incident.id,
        );
        info!(incident = %incident.id, action = %fix.action, %why, "fix recurred");
        Ok(())
    }
}
