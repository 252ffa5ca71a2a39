//! Incidents: one open incident per alert fingerprint; a repeated firing joins it, a `resolved`
//! alert closes it (a verified fix leaves it `fixed` until then). The record holds the alert, the playbook that owns it and its diagnosis, and a
//! timeline of what happened.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::engine::Diagnosis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentState {
    /// Matched a playbook; the diagnosis is running (or was interrupted and will be resumed).
    Diagnosing,
    /// Diagnosed; nothing more will happen on its own (no remedy, a gate refused, a fix failed).
    Open,
    /// A fix waits for an SRE's approval (`manual` stage).
    AwaitingApproval,
    /// A fix is running.
    Fixing,
    /// A fix ran in the `silent` stage; an SRE confirms `correct` or `misfix`.
    AwaitingConfirmation,
    /// A fix ran and verified (`manual` or `auto` stage); the incident closes when Alertmanager
    /// reports the alert resolved. A repeated firing meanwhile joins it and starts nothing.
    Fixed,
    /// No playbook matched the alert.
    Unhandled,
    /// The alert resolved.
    Resolved,
}

impl IncidentState {
    pub const ALL: [IncidentState; 8] = [
        IncidentState::Diagnosing,
        IncidentState::Open,
        IncidentState::AwaitingApproval,
        IncidentState::Fixing,
        IncidentState::AwaitingConfirmation,
        IncidentState::Fixed,
        IncidentState::Unhandled,
        IncidentState::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Diagnosing => "diagnosing",
            IncidentState::Open => "open",
            IncidentState::AwaitingApproval => "awaiting-approval",
            IncidentState::Fixing => "fixing",
            IncidentState::AwaitingConfirmation => "awaiting-confirmation",
            IncidentState::Fixed => "fixed",
            IncidentState::Unhandled => "unhandled",
            IncidentState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Open in the sense of "one per fingerprint": anything but resolved.
    pub fn is_open(self) -> bool {
        self != IncidentState::Resolved
    }
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub fingerprint: String,
    pub state: IncidentState,
    pub alertname: String,
    pub service: Option<String>,
    pub playbook: Option<String>,
    /// The latest alert received for this incident.
    pub alert: Alert,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Firing notifications received (the first included).
    pub firings: u32,
    /// The stream entry that created the incident.
    pub created_by_entry: String,
    /// Stream entries already applied, so a redelivered entry is not applied twice.
    pub applied_entries: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub diagnosis: Option<Diagnosis>,
    pub timeline: Vec<TimelineEvent>,
    /// The fix rootfix decided on, once it decided (gates, stage, approval, outcome, verdict).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fix: Option<IncidentFix>,
    /// Optimistic-concurrency version, bumped by every save.
    #[serde(default)]
    pub version: u64,
}

impl Incident {
    /// The id of the incident created by a stream entry: deterministic, so a redelivered entry
    /// recreates the same incident instead of a second one.
    pub fn id_for_entry(entry_id: &str) -> String {
        format!("inc-{entry_id}")
    }

    pub fn note(&mut self, at: DateTime<Utc>, kind: &str, message: impl Into<String>) {
        self.timeline.push(TimelineEvent {
            at,
            kind: kind.to_string(),
            message: message.into(),
        });
        self.updated_at = at;
    }

    pub fn has_applied(&self, entry_id: &str) -> bool {
        self.applied_entries.iter().any(|e| e == entry_id)
    }

    /// Remembers an applied entry; only the latest few are kept (entries of one fingerprint are
    /// handled in order, so older ones cannot come back once newer ones were acked).
    pub fn mark_applied(&mut self, entry_id: &str) {
        self.applied_entries.push(entry_id.to_string());
        let excess = self.applied_entries.len().saturating_sub(32);
        self.applied_entries.drain(..excess);
    }
}

/// The fix of an incident, as decided and as it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFix {
    pub action: String,
    /// The remedy's node in the tree.
    pub node: String,
    pub params: std::collections::BTreeMap<String, String>,
    pub confidence: f64,
    /// The scope that owns the target; `None` when the target is outside every scope.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stage: Option<crate::autonomy::stage::Stage>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approval: Option<String>,
    /// Why a gate refused the fix, when one did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refused: Option<String>,
    /// The gate that refused it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gate: Option<crate::autonomy::gate::Gate>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub outcome: Option<crate::fix::journal::FixOutcome>,
    /// The SRE's verdict on the fix (`silent` stage, or a misfix reported later).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verdict: Option<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub silence: Option<String>,
}

impl IncidentFix {
    /// Refused by a gate whose answer changes with time (the kill switch, the rate window, the
    /// running fixes): the next firing of the alert asks the gates again.
    pub fn refused_for_now(&self) -> bool {
        self.outcome.is_none() && self.gate.is_some_and(crate::autonomy::gate::Gate::for_now)
    }
}

/// An SRE's verdict on a fix that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub correct: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub severity: Option<crate::autonomy::outcome::Severity>,
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub comment: String,
}

/// Filters of `GET /api/v1/incidents`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentFilter {
    pub state: Option<IncidentState>,
    pub service: Option<String>,
    pub playbook: Option<String>,
}

impl IncidentFilter {
    pub fn accepts(&self, incident: &Incident) -> bool {
        self.state.is_none_or(|s| s == incident.state)
            && self
                .service
                .as_ref()
                .is_none_or(|s| incident.service.as_ref() == Some(s))
            && self
                .playbook
                .as_ref()
                .is_none_or(|p| incident.playbook.as_ref() == Some(p))
    }
}
