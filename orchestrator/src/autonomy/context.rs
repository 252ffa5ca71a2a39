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
use crate::notify::{Notification, NotificationKind, Notifier};
use crate::reload::CatalogHandle;
use crate::runner::availability::{RunnerAvailability, kind_name};
use crate::state::{SaveOutcome, StateError, StateStore};

/// The identity of rootfix's own decisions in the audit trail and the stage history.
pub const ROOTFIX: &str = "rootfix";

/// How many times a compare-and-set (an incident, a stage) is retried.
pub(super) const MAX_CAS_ATTEMPTS: usize = 16;

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
}

impl Context {
    /// Why the fix's action cannot run on this install (the runner gate), when it cannot:
    /// `cannot act: <action> needs the <runner> runner, and <why>`.
    pub fn runner_refusal(&self, action: &str) -> Option<String> {
        let catalog = self.catalog.current();
        let runner = catalog.actions.get(action)?.runner;
        let why = self.availability.unavailable(runner)?;
        Some(format!(
            "cannot act: {action} needs the {} runner, and {why}",
            kind_name(runner)
        ))
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

    pub(super) fn notify(
        &self,
        kind: NotificationKind,
        title: String,
        text: String,
        fix: &IncidentFix,
        incident: &str,
    ) {
        let mut n = Notification::new(kind, title, text)
            .with_incident(incident)
            .with_action(fix.action.clone());
        if let Some(scope) = &fix.scope {
            n = n.with_scope(scope.clone());
        }
        n.at = self.clock.now();
        self.notifier.notify(n);
    }

    pub(super) async fn record_outcome(
        &self,
        action: &str,
        scope: &str,
        incident: &str,
        kind: OutcomeKind,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StateError> {
        let outcome = Outcome {
            at,
            incident: incident.to_string(),
            kind,
        };
        self.state
            .record_outcome(action, scope, &outcome, self.config.outcome_retention)
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
