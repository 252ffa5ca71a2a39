//! A verified fix that did not hold: its alert fired again before Alertmanager's `resolved`, did
//! not resolve within `autonomy.resolve_wait`, came back within `limits.flap_window`, or the
//! same alert (fingerprint) or the same target (action and params) fired again within
//! `autonomy.recurrence_window` of the resolve. The fix's (action, scope) gets the outcome
//! `recurred` — a failure for the promotion gate — once per incident, audited and notified.
//!
//! The per-target breaker: after `autonomy.max_recurrences` recurrences of one (action, target)
//! within the window, rootfix stops fixing that target on its own; each attempt needs a
//! person's approval, and the breaker's opening is audited and notified (urgent).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::context::{AutonomyError, Context, ROOTFIX, fix_target};
use super::outcome::{Outcome, OutcomeKind};
use crate::fix::journal::FixOutcome;
use crate::incident::{Incident, IncidentFix};
use crate::notify::NotificationKind;

/// Records recurrences and keeps the per-target breaker.
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

/// The breaker of one (action, target): open when it recurred `recurrences` times (at least
/// `autonomy.max_recurrences`) within the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    pub target: String,
    pub recurrences: u32,
    pub max: u32,
}

impl Breaker {
    pub fn open(&self) -> bool {
        self.recurrences >= self.max
    }
}

impl Recurrences {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }

    fn window_start(&self, scope: &str, now: DateTime<Utc>) -> DateTime<Utc> {
        let window = self.ctx.config.recurrence_window_of(scope);
        now - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX)
    }

    async fn outcomes_in_window(
        &self,
        action: &str,
        scope: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, AutonomyError> {
        Ok(self
            .ctx
            .state
            .outcomes(action, scope, self.window_start(scope, now))
            .await?)
    }

    /// An open incident whose timeline notes its verified fix `recurred` but whose outcome was
    /// never recorded (a stop between the incident's save and the outcome's record) gets the
    /// outcome now, with the audit and the notification. True when it was missing.
    pub async fn repair_lost_outcome(&self, incident: &Incident) -> Result<bool, AutonomyError> {
        let Some(note) = incident.timeline.iter().rev().find(|t| t.kind == "recurred") else {
            return Ok(false);
        };
        let Some(fix) = incident.fix.as_ref().filter(|_| fix_verified(incident)) else {
            return Ok(false);
        };
        if fix.stage.is_none() {
            return Ok(false);
        }
        if self.recurred_recorded(fix, &incident.id).await? {
            return Ok(false);
        }
        warn!(incident = %incident.id, action = %fix.action, "the fix's recurred outcome was lost (rootfix stopped after saving the incident); recording it now");
        self.fix_recurred(incident, &note.message).await?;
        Ok(true)
    }

    async fn recurred_recorded(&self, fix: &IncidentFix, incident: &str) -> Result<bool, AutonomyError> {
        let scope = fix.scope.as_deref().unwrap_or("-");
        Ok(self
            .ctx
            .state
            .outcomes(&fix.action, scope, DateTime::<Utc>::MIN_UTC)
            .await?
            .iter()
            .any(|o| o.incident == incident && o.kind == OutcomeKind::Recurred))
    }

    /// The verified fix of `incident` did not hold, for the reason `why`. Only a fix that
    /// executed, and that a stage decided, records the outcome (once per incident); every
    /// recurrence is audited and notified.
    pub async fn fix_recurred(&self, incident: &Incident, why: &str) -> Result<(), AutonomyError> {
        let Some(fix) = incident.fix.as_ref().filter(|_| fix_verified(incident)) else {
            return Ok(());
        };
        let scope = fix.scope.as_deref().unwrap_or("-");
        let now = self.ctx.clock.now();
        let executed = matches!(fix.outcome, Some(FixOutcome::Succeeded));
        if fix.stage.is_some() && executed {
            if self.recurred_recorded(fix, &incident.id).await? {
                return Ok(());
            }
            self.ctx
                .record_fix_outcome(fix, scope, &incident.id, OutcomeKind::Recurred, now)
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
            NotificationKind::FixRecurred,
            format!(
                "Fix did not hold: {} on {} ({})",
                fix.action,
                incident.alertname,
                incident.service.as_deref().unwrap_or("-")
            ),
            format!(
                "incident {}, scope {scope}: the fix verified, but {why}; outcome recurred",
                incident.id
            ),
            fix,
            &incident.id,
            None,
        );
        info!(incident = %incident.id, action = %fix.action, %why, "fix recurred");
        Ok(())
    }

    /// A closed incident's verified fix did not hold: `why` happened in incident `by`. Notes it
    /// on both timelines, then [`Self::fix_recurred`].
    async fn came_back(&self, old: &Incident, by: &str, why: &str) -> Result<(), AutonomyError> {
        let now = self.ctx.clock.now();
        let old = self
            .ctx
            .update_incident(&old.id, |i| {
                if i.timeline.iter().any(|t| t.kind == "recurred") {
                    return false;
                }
                i.note(
                    now,
                    "recurred",
                    format!("{why} (incident {by}): the fix did not hold (outcome recurred)"),
                );
                true
            })
            .await?;
        self.ctx
            .update_incident(by, |i| {
                i.note(
                    now,
                    "recurrence",
                    format!(
                        "{why}: the fix of incident {} did not hold; this firing is diagnosed afresh",
                        old.id
                    ),
                );
                true
            })
            .await?;
        self.fix_recurred(&old, why).await
    }

    /// The alert of `last` (closed) fires again as incident `new`: within the recurrence window
    /// after a verified fix, that fix recurred.
    pub async fn alert_came_back(&self, last: &Incident, new: &str) -> Result<(), AutonomyError> {
        let (Some(fix), Some(resolved)) = (last.fix.as_ref(), last.resolved_at) else {
            return Ok(());
        };
        if !matches!(fix.outcome, Some(FixOutcome::Succeeded)) {
            return Ok(());
        }
        let scope = fix.scope.as_deref().unwrap_or("-");
        let window = self.ctx.config.recurrence_window_of(scope);
        let now = self.ctx.clock.now();
        let since = (now - resolved).to_std().unwrap_or_default();
        if since > window {
            return Ok(());
        }
        let why = format!(
            "the same alert fired again {} after the fix's incident resolved (within autonomy.recurrence_window {})",
            super::promotion::span(since),
            super::promotion::span(window)
        );
        self.came_back(last, new, &why).await
    }

    /// Before `fix` is decided for `incident` in `scope`: a verified fix of the same target in
    /// the window did not hold (it recurs under this alert), and the target's breaker.
    pub async fn check_target(
        &self,
        incident: &Incident,
        fix: &IncidentFix,
        scope: &str,
    ) -> Result<Breaker, AutonomyError> {
        let now = self.ctx.clock.now();
        let target = fix_target(fix);
        let outcomes = self.outcomes_in_window(&fix.action, scope, now).await?;
        // The latest counted outcome per incident of this target.
        let mut latest: BTreeMap<&str, &Outcome> = BTreeMap::new();
        for o in outcomes
            .iter()
            .filter(|o| o.kind.counts() && o.target.as_deref() == Some(target.as_str()))
        {
            if latest.get(o.incident.as_str()).is_none_or(|seen| seen.at <= o.at) {
                latest.insert(&o.incident, o);
            }
        }
        let held: Vec<String> = latest
            .values()
            .filter(|o| o.incident != incident.id && o.kind.is_success())
            .map(|o| o.incident.clone())
            .collect();
        // Recurrences of this target in the window: those recorded, and those found now.
        let mut recurred: std::collections::BTreeSet<String> = outcomes
            .iter()
            .filter(|o| o.kind == OutcomeKind::Recurred && o.target.as_deref() == Some(target.as_str()))
            .map(|o| o.incident.clone())
            .collect();
        for id in held {
            let Some(old) = self.ctx.state.incident(&id).await? else {
                continue;
            };
            if old.state.is_open() {
                // Still open (fixed, waiting for its resolve): the handler's rules decide.
                continue;
            }
            let why = format!(
                "the same target ({target}) needed the fix again within autonomy.recurrence_window {}",
                super::promotion::span(self.ctx.config.recurrence_window_of(scope))
            );
            let records = old
                .fix
                .as_ref()
                .is_some_and(|f| f.stage.is_some() && matches!(f.outcome, Some(FixOutcome::Succeeded)));
            match self.came_back(&old, &incident.id, &why).await {
                Ok(()) if records => {
                    recurred.insert(id);
                }
                Ok(()) => {}
                Err(e) => {
                    warn!(incident = %incident.id, error = %e, "could not record the recurrence of the target's last fix");
                }
            }
        }
        Ok(Breaker {
            target,
            recurrences: u32::try_from(recurred.len()).unwrap_or(u32::MAX),
            max: self.ctx.config.max_recurrences,
        })
    }
}
