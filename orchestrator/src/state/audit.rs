//! The kill switch (`rootfix:killswitch`), the capped audit stream (`rootfix:audit`), and the
//! one-time uses that refuse a replayed chat callback (`rootfix:once:*`).

use std::time::Duration;

use async_trait::async_trait;

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

    /// The newest `limit` audit events, newest first.
    async fn audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StateError>;

    /// Records the use of `what` (e.g. `slack:<signature>`) for `ttl`: true the first time,
    /// false while an earlier use is remembered — every replica sees the same answer.
    async fn use_once(&self, what: &str, ttl: Duration) -> Result<bool, StateError>;
}
