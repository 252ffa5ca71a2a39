//! A flap: the alert fired again within `limits.flap_window` of its last resolve, so the last
//! incident reopens ([`IncidentHandler::rejoin`]) instead of a new one opening.

use chrono::Utc;
use tracing::info;

use super::{HandleError, Handled, IncidentHandler, RECURRED_AFTER_RESOLVE};
use crate::alert::Alert;
use crate::autonomy::recurrence::fix_verified;
use crate::incident::{Incident, IncidentState};
use crate::state::SaveOutcome;

impl IncidentHandler {
    /// The alert fired again within `limits.flap_window` of its last resolve: the last incident
    /// reopens with the flap counted. A fix that verified did not hold (`recurred`, not run
    /// again on its own); a fix that never ran (its approval was cancelled by the resolve) is
    /// decided again. `None` when the incident changed meanwhile (the caller goes round again).
    pub(super) async fn rejoin(
        &self,
        mut incident: Incident,
        entry: &str,
        alert: &Alert,
    ) -> Result<Option<Handled>, HandleError> {
        let now = Utc::now();
        let gap = alert
            .starts_at
            .signed_duration_since(incident.alert.ended_at().or(incident.resolved_at).unwrap_or(now));
        incident.flaps += 1;
        incident.firings += 1;
        incident.alert = alert.clone();
        incident.last_seen = Some(now);
        incident.resolved_at = None;
        incident.mark_applied(entry);
        incident.state = if incident.playbook.is_some() {
            IncidentState::Open
        } else {
            IncidentState::Unhandled
        };
        let flaps = incident.flaps;
        incident.note(
            now,
            "flap",
            format!(
                "the alert fired again {}s after it resolved (within limits.flap_window): rejoined, flap #{flaps}",
                gap.num_seconds().max(0)
            ),
        );
        let recurred = fix_verified(&incident);
        let redecide = incident.fix.as_ref().is_some_and(|f| f.outcome.is_none())
            && !incident
                .fix
                .as_ref()
                .and_then(|f| f.refused.as_deref())
                .is_some_and(|r| r.starts_with("rejected by"));
        if recurred {
            incident.note(
                now,
                "recurred",
                format!("{RECURRED_AFTER_RESOLVE}: the fix did not hold (outcome recurred)"),
            );
        } else if redecide {
            incident.fix = None;
        }
        if self.rules.is_flapping(&incident) {
            incident.note(
                now,
                "flapping",
                format!(
                    "flapping: {flaps} flaps, more than limits.max_flaps {}; fixes need a human's approval",
                    self.rules.max_flaps
                ),
            );
        }
        match self.state.save_incident(&mut incident).await? {
            SaveOutcome::Saved => {}
            SaveOutcome::Conflict | SaveOutcome::Missing => return Ok(None),
        }
        info!(incident = %incident.id, flaps, "flapping alert rejoined its incident");
        let reached_no_remedy = incident
            .diagnosis
            .as_ref()
            .is_some_and(|d| d.actionable().next().is_none());
        if recurred {
            self.recurred(&incident, RECURRED_AFTER_RESOLVE).await?;
        } else if incident.fix.is_none() && reached_no_remedy && incident.state == IncidentState::Open {
            // The last walk reached no remedy: walk again with the evidence of now.
            let id = incident.id.clone();
            self.diagnose(incident).await?;
            return Ok(Some(Handled::Rejoined { incident: id }));
        } else if incident.fix.is_none() && incident.diagnosis.is_some() {
            self.decide(&incident).await?;
        }
        Ok(Some(Handled::Rejoined {
            incident: incident.id,
        }))
    }
}
