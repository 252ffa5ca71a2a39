//! The audit trail and the kill switch: who decided what, when — every kill-switch change (and,
//! with the autonomy issue, every gate refusal, approval and stage change) — kept in the capped
//! Redis stream `rootfix:audit`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Entries the audit stream keeps (older ones are trimmed).
pub const AUDIT_CAP: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    /// The token name (API) or `cli:<user>` that made the decision.
    pub identity: String,
    /// What was decided, e.g. `killswitch.on`.
    pub action: String,
    pub detail: String,
}

/// The kill switch while it is on: no new fix starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KillSwitch {
    pub by: String,
    pub reason: String,
    pub since: DateTime<Utc>,
}
