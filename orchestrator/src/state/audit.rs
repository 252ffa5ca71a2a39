//! The kill switch (`rootfix:killswitch`) and the capped audit stream (`rootfix:audit`).

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
}
