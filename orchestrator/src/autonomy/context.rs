//! The context every part of autonomy shares: the state store, the configuration, the clock, the
//! catalog in force, the notifier, metrics and runner availability, with the few helpers every
//! part needs (audit, notify, record an outcome, change an incident by compare-and-set). Also the
//! vocabulary the parts hand each other: [`AutonomyError`], [`Decided`], [`ROOTFIX`].

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::error;

use super::clock::Clock;
use super::config::AutonomyConfig;
use super::gate::Gate;
use super::outcome::{Outcome, OutcomeKind};
use crate::alert_rules::AlertRules;
use crate::audit::AuditEvent;
use crate::incident::{Incident, IncidentFix};
use crate::notify::{Ask, Notification, NotificationKind, Notifier};
use crate::reload::CatalogHandle;
use crate::runner::availability::{RunnerAvailability, kind_name};
use crate::state::{SaveOutcome, StateError, StateStore};

/// The identity of rootfix's own decisions in the audit trail and the stage history.
pub const ROOTFIX: &str = "rootfix";

/// How many times a compare-and-set (an incident, a stage) is retried.
pub(super) const MAX_CAS_ATTEMPTS: usize = 16;

/// The rate-slot keys of the remediation budget (beside the scopes' own; a scope name cannot
/// start with `@`).
const BUDGET_ALL: &str = "@budget";
const BUDGET_NOTICE: &str = "@budget-notice";

fn budget_key_of_service(service: &str) -> String {
    format!("@budget:service:{service}")
}

/// What a fix acts on: its action and rendered params, `action:k=v,k=v` (params in name order).
/// A remedy of steps: `name:action(k=v,…);action(k=v,…)`, every step's target.
pub fn fix_target(fix: &IncidentFix) -> String {
    let joined = |params: &BTreeMap<String, String>| {
        params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    if fix.steps.is_empty() {
        return format!("{}:{}", fix.action, joined(&fix.params));
    }
    let steps: Vec<String> = fix
        .steps
        .iter()
        .map(|s| format!("{}({})", s.action, joined(&s.params)))
        .collect();
    format!("{}:{}", fix.action, steps.join(";"))
}

#[derive(Debug, thiserror::Error)]
pub enum AutonomyError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state (decided, expired, capped, gate not met).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("incident {0} kept changing; try again")]
    Contended(String),
}

/// What deciding an incident's fix did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// No remedy reached its threshold, or the incident was decided before.
    Nothing,
    /// A gate refused (`gate`, reason).
    Refused { gate: Gate, reason: String },
    /// Waiting for approval `id`.
    AwaitingApproval(String),
    /// The fix started (it runs in the background).
    Started { dry_run: bool },
}

/// What every part of autonomy reads and writes through.
#[derive(Clone)]
pub struct Context {
    pub state: Arc<dyn StateStore>,
    pub config: AutonomyConfig,
    pub clock: Arc<dyn Clock>,
    pub catalog: CatalogHandle,
    pub notifier: Notifier,
    /// This replica's name in the leader election.
    pub replica: String,
    /// Gate refusals and fix outcomes are counted here when set.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Which runners can run on this install (the runner gate asks it).
    pub availability: Arc<RunnerAvailability>,
    /// The alert lifecycle's rules: flapping caps the stage, staleness closes incidents.
    pub alert_rules: AlertRules,
    /// Woken when a fix frees its concurrency slot, so the leader starts a waiting one at once.
    pub slot_freed: Arc<tokio::sync::Notify>,
    /// What the leader's retention removes, and when (`retention:`).
    pub retention: crate::config::RetentionConfig,
}

impl Context {
    /// Why the fix's action cannot run on this install (the runner gate), when it cannot:
    /// `cannot act: <action> needs the <runner> runner, and <why>`.
    /// Why a fix cannot run on this install: the runner of its action, or of any of its steps.
    pub fn fix_runner_refusal(&self, fix: &IncidentFix) -> Option<String> {
        if fix.steps.is_empty() {
            return self.runner_refusal(&fix.action);
        }
        fix.steps.iter().enumerate().find_map(|(k, s)| {
            self.runner_refusal(&s.action)
                .map(|why| format!("step {}: {why}", k + 1))
        })
    }

    /// The action of a fix (or of one of its steps) that is not loaded.
    pub fn fix_action_missing(&self, fix: &IncidentFix) -> Option<String> {
        let catalog = self.catalog.current();
        if fix.steps.is_empty() {
            return (!catalog.actions.contains_key(&fix.action)).then(|| fix.action.clone());
        }
        fix.steps
            .iter()
            .find(|s| !catalog.actions.contains_key(&s.action))
            .map(|s| s.action.clone())
    }

    pub fn runner_refusal(&self, action: &str) -> Option<String> {
        let catalog = self.catalog.current();
        let runner = catalog.actions.get(action)?.runner;
        let why = self.availability.unavailable(runner)?;
        Some(format!(
            "cannot act: {action} needs the {} runner, and {why}",
            kind_name(runner)
        ))
    }

    /// The alert of `incident` resolved after its fix verified: records how long the alert
    /// fired, from its start to the resolve (`recovered`, the table's recovery time).
    pub(super) async fn record_recovery(&self, incident: &Incident) -> Result<(), StateError> {
        let Some(fix) = incident.fix.as_ref() else {
            return Ok(());
        };
        if fix.stage.is_none() || !matches!(fix.outcome, Some(crate::fix::journal::FixOutcome::Succeeded)) {
            return Ok(());
        }
        let resolved = incident.resolved_at.unwrap_or_else(|| self.clock.now());
        let ms = (resolved - incident.alert.starts_at).num_milliseconds().max(0);
        let scope = fix.scope.as_deref().unwrap_or("-");
        self.record_fix_outcome(
            fix,
            scope,
            &incident.id,
            OutcomeKind::Recovered {
                ms: u64::try_from(ms).unwrap_or(0),
            },
            self.clock.now(),
        )
        .await
    }

    /// Takes a slot of the remediation budget (global, then the service's) for fix `id`, or
    /// says why the budget is spent. A slot taken before a refusal is given back.
    pub(super) async fn take_budget(
        &self,
        service: Option<&str>,
        id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<String>, StateError> {
        let window = self.config.rate_window;
        let span = super::promotion::span(window);
        if let Some(cap) = self.config.budget.fixes_per_hour
            && !self
                .state
                .take_rate_slot(BUDGET_ALL, id, now, window, cap)
                .await?
        {
            return Ok(Some(format!(
                "{} fixes started across every action within the last {span}; autonomy.budget.fixes_per_hour is {cap}",
                self.state.rate_count(BUDGET_ALL, now, window).await?
            )));
        }
        if let (Some(cap), Some(service)) = (self.config.budget.per_service, service) {
            let key = budget_key_of_service(service);
            if !self.state.take_rate_slot(&key, id, now, window, cap).await? {
                self.state.release_rate_slot(BUDGET_ALL, id).await?;
                return Ok(Some(format!(
                    "{} fixes started on service {service} within the last {span}; autonomy.budget.per_service is {cap}",
                    self.state.rate_count(&key, now, window).await?
                )));
            }
        }
        Ok(None)
    }

    /// Whether the budget has room now (what the sweep asks before deciding a refusal again).
    pub(super) async fn budget_has_room(
        &self,
        service: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StateError> {
        let window = self.config.rate_window;
        if let Some(cap) = self.config.budget.fixes_per_hour
            && self.state.rate_count(BUDGET_ALL, now, window).await? >= cap
        {
            return Ok(false);
        }
        if let (Some(cap), Some(service)) = (self.config.budget.per_service, service)
            && self
                .state
                .rate_count(&budget_key_of_service(service), now, window)
                .await?
                >= cap
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// Gives back the rate and budget slots of fix `id` (it did not execute).
    pub(super) async fn release_slots(
        &self,
        scope: &str,
        service: Option<&str>,
        id: &str,
    ) -> Result<(), StateError> {
        self.state.release_rate_slot(scope, id).await?;
        self.state.release_rate_slot(BUDGET_ALL, id).await?;
        if let Some(service) = service {
            self.state
                .release_rate_slot(&budget_key_of_service(service), id)
                .await?;
        }
        Ok(())
    }

    /// True once per rate window: whether to notify that the budget is spent.
    pub(super) async fn first_budget_notice(
        &self,
        incident: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StateError> {
        let window = self.config.rate_window;
        if self.state.rate_count(BUDGET_NOTICE, now, window).await? > 0 {
            return Ok(false);
        }
        let id = format!("notice-{incident}-{}", now.timestamp_millis());
        self.state
            .take_rate_slot(BUDGET_NOTICE, &id, now, window, 1)
            .await
    }

    pub(super) async fn audit(&self, identity: &str, action: &str, detail: String) {
        let event = AuditEvent {
            at: self.clock.now(),
            identity: identity.to_string(),
            action: action.to_string(),
            detail,
        };
        if let Err(e) = self.state.append_audit(&event).await {
            error!(error = %e, action, "could not write the audit trail");
        }
    }

    /// Notifies `kind` about `incident`'s fix; `ask` is the decision the message asks for (chat
    /// buttons), if any.
    pub(super) fn notify(
        &self,
        kind: NotificationKind,
        title: String,
        text: String,
        fix: &IncidentFix,
        incident: &str,
        ask: Option<Ask>,
    ) {
        let mut n = Notification::new(kind, title, text)
            .with_incident(incident)
            .with_action(fix.action.clone());
        n.ask = ask;
        if let Some(scope) = &fix.scope {
            n = n.with_scope(scope.clone());
        }
        n.at = self.clock.now();
        self.notifier.notify(n);
    }

    /// An incident rootfix acted on (it has a fix) closed: paging sinks resolve their alert.
    pub(super) fn notify_resolved(&self, incident: &Incident) {
        if let Some(fix) = &incident.fix {
            self.notify(
                NotificationKind::IncidentResolved,
                format!(
                    "Resolved: {} ({})",
                    incident.alertname,
                    incident.service.as_deref().unwrap_or("-")
                ),
                format!("incident {} closed: the alert resolved", incident.id),
                fix,
                &incident.id,
                None,
            );
        }
    }

    /// Records an outcome of `fix` (its action and target) in `scope`.
    pub(super) async fn record_fix_outcome(
        &self,
        fix: &IncidentFix,
        scope: &str,
        incident: &str,
        kind: OutcomeKind,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StateError> {
        let outcome = Outcome {
            at,
            incident: incident.to_string(),
            kind,
            target: Some(fix_target(fix)),
        };
        self.state
            .record_outcome(&fix.action, scope, &outcome, self.config.outcome_retention)
            .await
    }

    /// Loads, changes and saves an incident (compare-and-set, retried). `change` returns false to
    /// leave it as it is.
    pub(super) async fn update_incident(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Incident) -> bool,
    ) -> Result<Incident, AutonomyError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(mut incident) = self.state.incident(id).await? else {
                return Err(AutonomyError::NotFound(format!("incident {id}")));
            };
            if !change(&mut incident) {
                return Ok(incident);
            }
            match self.state.save_incident(&mut incident).await? {
                SaveOutcome::Saved => return Ok(incident),
                SaveOutcome::Conflict => continue,
                SaveOutcome::Missing => return Err(AutonomyError::NotFound(format!("incident {id}"))),
            }
        }
        Err(AutonomyError::Contended(id.to_string()))
    }

    /// Why the kill switch refuses, while it is on.
    pub(super) async fn killswitch_on(&self) -> Result<Option<String>, AutonomyError> {
        Ok(self
            .state
            .killswitch()
            .await?
            .map(|k| format!("the kill switch is on (by {}: {})", k.by, k.reason)))
    }
}

/// `k=v, k=v`, or `none`.
pub(super) fn render_params(params: &BTreeMap<String, String>) -> String {
    if params.is_empty() {
        return "none".into();
    }
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `action/scope`, as keys and messages name a pair.
pub(super) fn stage_key(action: &str, scope: &str) -> String {
    format!("{action}/{scope}")
}
