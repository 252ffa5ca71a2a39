//! Approvals: in the `manual` stage a fix waits for an SRE. An approval carries what the SRE needs
//! to decide (incident, action, params, diagnosis summary, confidence) and an expiry; it is decided
//! once (approved, rejected, expired, or cancelled when its alert resolves).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
    /// Nobody decided before `expires_at`: escalated.
    Expired,
    /// The alert resolved (or the incident closed) first.
    Cancelled,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
            ApprovalState::Expired => "expired",
            ApprovalState::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// `<incident>.<action>`: one per fix, so a redelivered alert never asks twice.
    pub id: String,
    pub incident: String,
    pub action: String,
    pub scope: String,
    pub params: BTreeMap<String, String>,
    /// A remedy of steps: what each step runs, in order (what the approver approves).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub steps: Vec<crate::engine::diagnosis::StepCall>,
    /// The tree path and the remedy, in a line.
    pub summary: String,
    pub confidence: f64,
    pub threshold: f64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub state: ApprovalState,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

impl Approval {
    pub fn id_for(incident: &str, action: &str) -> String {
        format!("{incident}.{action}")
    }

    /// The approval id for an incident that flapped `flaps` times: each rejoining of a flapping
    /// alert asks once more (the earlier approval was cancelled when the alert resolved).
    pub fn id_for_attempt(incident: &str, action: &str, flaps: u32) -> String {
        match flaps {
            0 => Self::id_for(incident, action),
            n => format!("{incident}.{action}.{n}"),
        }
    }

    /// Whether it is pending past its expiry.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.state == ApprovalState::Pending && now >= self.expires_at
    }

    /// This approval decided: `state` by `by` at `at`.
    pub fn decided(&self, state: ApprovalState, by: &str, at: DateTime<Utc>, reason: Option<String>) -> Self {
        Self {
            state,
            decided_by: Some(by.to_string()),
            decided_at: Some(at),
            reason,
            ..self.clone()
        }
    }
}

/// What deciding an approval did.
#[derive(Debug, Clone, PartialEq)]
pub enum DecideOutcome {
    /// It was pending and is now decided.
    Decided,
    /// It was decided before (the stored approval).
    AlreadyDecided(Box<Approval>),
    Missing,
}
