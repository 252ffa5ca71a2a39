//! The leader's sweep over open incidents, so incidents follow their alert without waiting for
//! Alertmanager's next repeat:
//!
//! - a `fixed` incident whose alert has not resolved within `autonomy.resolve_wait` did not hold:
//!   it reopens and its outcome becomes `recurred`;
//! - an open incident whose timeline says its verified fix recurred, but whose `recurred`
//!   outcome was never recorded (rootfix stopped between saving the incident and recording the
//!   outcome: the redelivered alert counts as applied), gets it recorded now;
//! - an incident whose alert was not seen for `limits.stale_after` closes as `stale`, unless
//!   Alertmanager (API v2, when `silences:` names one) still holds the alert active;
//! - fixes refused for now (kill switch, runner, rate limit, budget, concurrency) are decided again once
//!   the cause may have cleared, oldest first, targets never fixed before targets fixed within
//!   the rate window — so a storm under a concurrency cap reaches every target as slots free up.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::approvals::Approvals;
use super::context::{AutonomyError, Context, Decided};
use super::decide::Decider;
use super::gate::Gate;
use super::recurrence::{Recurrences, fix_verified};
use crate::incident::{Incident, IncidentFilter, IncidentState};
use crate::silence::SilenceClient;

/// How many incidents of one state one sweep reads.
const SWEEP_LIMIT: usize = 10_000;

/// What one sweep did (incident ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub stale: Vec<String>,
    pub recurred: Vec<String>,
    /// Open incidents whose lost `recurred` outcome this sweep recorded.
    pub recurrences_repaired: Vec<String>,
    pub redecided: Vec<String>,
}

/// Sweeps open incidents.
pub struct Sweep {
    ctx: Arc<Context>,
    decider: Arc<Decider>,
    approvals: Arc<Approvals>,
    recurrences: Arc<Recurrences>,
    alertmanager: Option<SilenceClient>,
}

impl Sweep {
    pub fn new(
        ctx: Arc<Context>,
        decider: Arc<Decider>,
        approvals: Arc<Approvals>,
        recurrences: Arc<Recurrences>,
        alertmanager: Option<SilenceClient>,
    ) -> Self {
        Self {
            ctx,
            decider,
            approvals,
            recurrences,
            alertmanager,
        }
    }

    async fn in_state(&self, state: IncidentState) -> Result<Vec<Incident>, AutonomyError> {
        let filter = IncidentFilter {
            state: Some(state),
            ..IncidentFilter::default()
        };
        Ok(self
            .ctx
            .state
            .list_incidents(&filter, 0, SWEEP_LIMIT)
            .await?
            .items)
    }

    /// One sweep at `now`.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<SweepReport, AutonomyError> {
        let mut report = SweepReport::default();
        for incident in self.in_state(IncidentState::Fixed).await? {
            if self.resolve_overdue(&incident, now).await? {
                report.recurred.push(incident.id.clone());
            }
        }
        for state in [
            IncidentState::Open,
            IncidentState::AwaitingApproval,
            IncidentState::AwaitingConfirmation,
            IncidentState::Fixed,
            IncidentState::Unhandled,
        ] {
            for incident in self.in_state(state).await? {
                if state == IncidentState::Open && self.recurrences.repair_lost_outcome(&incident).await? {
                    report.recurrences_repaired.push(incident.id.clone());
                }
                if self.ctx.alert_rules.is_stale(&incident, now) && self.close_stale(&incident, now).await? {
                    report.stale.push(incident.id.clone());
                }
            }
        }
        report.redecided = self.redecide_refused(now).await?;
        Ok(report)
    }

    /// A `fixed` incident past `resolve_wait` reopens with its outcome `recurred`.
    async fn resolve_overdue(&self, incident: &Incident, now: DateTime<Utc>) -> Result<bool, AutonomyError> {
        let wait = chrono::Duration::from_std(self.ctx.config.resolve_wait).unwrap_or(chrono::Duration::MAX);
        let fixed_at = incident
            .timeline
            .iter()
            .rev()
            .find(|t| t.kind == "fixed")
            .map_or(incident.updated_at, |t| t.at);
        if now - fixed_at < wait || !fix_verified(incident) {
            return Ok(false);
        }
        let why = format!(
            "the alert did not resolve within autonomy.resolve_wait ({}) after the verified fix",
            super::promotion::span(self.ctx.config.resolve_wait)
        );
        let mut changed = false;
        let saved = self
            .ctx
            .update_incident(&incident.id, |i| {
                if i.state != IncidentState::Fixed {
                    return false;
                }
                i.state = IncidentState::Open;
                i.note(
                    now,
                    "recurred",
                    format!("{why}: the fix did not hold (outcome recurred)"),
                );
                changed = true;
                true
            })
            .await?;
        if changed {
            self.recurrences.fix_recurred(&saved, &why).await?;
        }
        Ok(changed)
    }

    /// Closes an incident as `stale`, unless Alertmanager still holds its alert active (then its
    /// last sighting is now). A failing Alertmanager keeps the incident open: closing is the
    /// step that loses something.
    async fn close_stale(&self, incident: &Incident, now: DateTime<Utc>) -> Result<bool, AutonomyError> {
        if let Some(am) = &self.alertmanager {
            match am
                .alert_active(&incident.alert.labels, &incident.fingerprint)
                .await
            {
                Ok(true) => {
                    self.ctx
                        .update_incident(&incident.id, |i| {
                            i.last_seen = Some(now);
                            i.note(
                                now,
                                "seen",
                                "not notified for limits.stale_after, but Alertmanager still holds the alert active: kept open",
                            );
                            true
                        })
                        .await?;
                    return Ok(false);
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(incident = %incident.id, error = %e, "cannot ask Alertmanager whether a stale alert is active; keeping the incident open");
                    return Ok(false);
                }
            }
        }
        let unseen = super::promotion::span((now - incident.last_seen()).to_std().unwrap_or_default());
        let mut closed = false;
        let saved = self
            .ctx
            .update_incident(&incident.id, |i| {
                if !i.state.is_open() || i.state == IncidentState::Fixing {
                    return false;
                }
                i.state = IncidentState::Stale;
                i.resolved_at = Some(now);
                i.note(
                    now,
                    "stale",
                    format!(
                        "the alert was not seen for {unseen} (limits.stale_after {}): closed as stale",
                        super::promotion::span(self.ctx.alert_rules.stale_after)
                    ),
                );
                closed = true;
                true
            })
            .await?;
        if closed {
            self.approvals.cancel_for_incident(&saved).await?;
            self.ctx
                .audit(
                    super::context::ROOTFIX,
                    "incident.stale",
                    format!("incident {}: closed as stale after {unseen} unseen", saved.id),
                )
                .await;
            info!(incident = %saved.id, "incident closed as stale");
        }
        Ok(closed)
    }

    /// Whether the cause of a refusal for now may have cleared.
    async fn may_pass(&self, incident: &Incident, now: DateTime<Utc>) -> Result<bool, AutonomyError> {
        let Some(fix) = &incident.fix else {
            return Ok(false);
        };
        let scope = fix.scope.as_deref().and_then(|s| self.ctx.config.scopes.get(s));
        Ok(match fix.gate {
            Some(Gate::Killswitch) => self.ctx.state.killswitch().await?.is_none(),
            Some(Gate::Runner) => self.ctx.fix_runner_refusal(fix).is_none(),
            Some(Gate::Concurrency) => match scope {
                Some(s) => self.ctx.state.running_count(&s.name, now).await? < s.max_concurrent,
                None => true,
            },
            Some(Gate::Budget) => self.ctx.budget_has_room(incident.service.as_deref(), now).await?,
            Some(Gate::RateLimit) => match scope {
                Some(s) => {
                    self.ctx
                        .state
                        .rate_count(&s.name, now, self.ctx.config.rate_window)
                        .await?
                        < s.fixes_per_hour
                }
                None => true,
            },
            _ => false,
        })
    }

    /// Whether the incident's target had a fix within the rate window (it waits behind targets
    /// never fixed).
    async fn fixed_recently(&self, incident: &Incident, now: DateTime<Utc>) -> Result<bool, AutonomyError> {
        let window = chrono::Duration::from_std(self.ctx.config.rate_window).unwrap_or(chrono::Duration::MAX);
        Ok(self
            .ctx
            .state
            .last_closed_incident(&incident.fingerprint)
            .await?
            .is_some_and(|last| {
                last.fix.as_ref().is_some_and(|f| f.outcome.is_some())
                    && last.resolved_at.is_some_and(|at| now - at < window)
            }))
    }

    /// Decides again, oldest first, the open incidents whose fix was refused for now and whose
    /// cause may have cleared; stops asking a scope once it refuses again.
    async fn redecide_refused(&self, now: DateTime<Utc>) -> Result<Vec<String>, AutonomyError> {
        let mut waiting = Vec::new();
        for incident in self.in_state(IncidentState::Open).await? {
            if incident.fix.as_ref().is_some_and(|f| f.refused_for_now()) {
                let recent = self.fixed_recently(&incident, now).await?;
                waiting.push((recent, incident.created_at, incident));
            }
        }
        waiting.sort_by(|a, b| (a.0, a.1, &a.2.id).cmp(&(b.0, b.1, &b.2.id)));
        let mut full_scopes = std::collections::BTreeSet::new();
        let mut redecided = Vec::new();
        for (_, _, incident) in waiting {
            let scope = incident.fix.as_ref().and_then(|f| f.scope.clone());
            if scope.as_ref().is_some_and(|s| full_scopes.contains(s)) {
                continue;
            }
            if !self.may_pass(&incident, now).await? {
                // A full scope stays full for the rest of this sweep: a slot that frees meanwhile
                // goes to the oldest waiting incident at the next wake-up, not to a younger one
                // this sweep happens to be looking at.
                let scope_limited = incident
                    .fix
                    .as_ref()
                    .and_then(|f| f.gate)
                    .is_some_and(|g| matches!(g, Gate::Concurrency | Gate::RateLimit));
                if scope_limited && let Some(s) = scope {
                    full_scopes.insert(s);
                }
                continue;
            }
            let mut cleared = false;
            let reset = self
                .ctx
                .update_incident(&incident.id, |i| {
                    if i.state != IncidentState::Open || !i.fix.as_ref().is_some_and(|f| f.refused_for_now())
                    {
                        return false;
                    }
                    let gate = i.fix.take().and_then(|f| f.gate).map_or("?", |g| g.as_str());
                    i.note(
                        now,
                        "gate",
                        format!(
                            "the cause may have cleared: asking the gates again (refused by {gate} before)"
                        ),
                    );
                    cleared = true;
                    true
                })
                .await?;
            if !cleared {
                continue;
            }
            let decided = self.decider.decide_incident(&reset).await?;
            if let Decided::Refused { gate, .. } = &decided
                && matches!(gate, Gate::Concurrency | Gate::RateLimit)
                && let Some(s) = scope
            {
                full_scopes.insert(s);
            }
            info!(incident = %reset.id, ?decided, "decided again by the leader");
            redecided.push(reset.id.clone());
        }
        Ok(redecided)
    }
}
