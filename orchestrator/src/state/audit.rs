//! The kill switch (`rootfix:killswitch`), the capped audit stream (`rootfix:audit`), and the
//! trimmed by age, and the one-time uses that refuse a replayed chat callback (`rootfix:once:*`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StateError;
use crate::record::audit::{AuditEvent, KillSwitch};

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// The kill switch, when it is on.
    async fn killswitch(&self) -> Result<Option<KillSwitch>, StateError>;

    /// Turns the kill switch on (`Some`) or off (`None`).
    async fn set_killswitch(&self, state: Option<&KillSwitch>) -> Result<(), StateError>;

    /// Appends to the capped audit stream.
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StateError>;

    /// Removes the oldest audit events while their time is before `before` (at most `limit` per
    /// call); returns how many were removed.
    async fn trim_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<u64, StateError>;

    /// The newest `limit` audit events, newest first.
    async fn audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StateError>;

    /// Records the use of `what` (e.g. `slack:<signature>`) for `ttl`: true the first time,
    /// false while an earlier use is remembered — every replica sees the same answer.
    async fn use_once(&self, what: &str, ttl: Duration) -> Result<bool, StateError>;
}
