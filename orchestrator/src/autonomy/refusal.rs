//! A gate's refusal: audited, counted, written on the incident's timeline, and — for a fix that
//! cannot run on this install — notified once as "diagnosis only". Deciding, approving and
//! starting a fix all refuse through here.

use tracing::warn;

use super::context::{AutonomyError, Context, Decided, ROOTFIX, render_params};
use super::gate::Gate;
use super::outcome::OutcomeKind;
use crate::engine::NodeOutcome;
use crate::incident::{Incident, IncidentFix, IncidentState};
use crate::notify::NotificationKind;

/// Refuses `fix` for `incident` at `gate`: the incident stays open with the refusal noted.
pub(super) async fn refuse(
    ctx: &Context,
    incident: &Incident,
    mut fix: IncidentFix,
    gate: Gate,
    reason: String,
) -> Result<Decided, AutonomyError> {
    warn!(incident = %incident.id, action = %fix.action, %gate, %reason, "gate refused the fix");
    if let Some(m) = &ctx.metrics {
        m.gate_refused(gate.as_str());
    }
    ctx.audit(
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
    let now = ctx.clock.now();
    let note = format!("{} refused by the {gate} gate: {reason}", fix.action);
    // A refusal asked again at each firing is notified once, not at every firing.
    let said_before = incident
        .timeline
        .iter()
        .any(|t| t.kind == "gate" && t.message == note);
    let saved = ctx
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
    // The refusal is an outcome of the fix type in its scope (not a sample of the gate), once
    // per incident and reason, so the stages picture shows what was refused and why.
    let scope = fix.scope.clone().or_else(|| {
        ctx.config
            .scopes
            .scope_for(&incident.alert.labels)
            .map(|s| s.name.clone())
    });
    if !said_before && let Some(scope) = scope {
        ctx.record_fix_outcome(&fix, &scope, &incident.id, OutcomeKind::Refused { gate }, now)
            .await?;
    }
    if gate == Gate::Runner && !said_before {
        let path = saved
            .diagnosis
            .as_ref()
            .map(|d| d.with_outcome(NodeOutcome::Hit).join(" → "))
            .unwrap_or_default();
        ctx.notify(
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
            None,
        );
    }
    Ok(Decided::Refused { gate, reason })
}
