//! Fixes: the idempotency lock on a fix's target (with a fencing token and a lease), the
//! execution journal of each incident, and the set of fixes started and not finished.

use std::time::Duration;

use async_trait::async_trait;

use super::StateError;
use crate::record::journal::JournalEntry;

#[async_trait]
pub trait FixStore: Send + Sync {
    /// Takes `rootfix:lock:<action>:<key>` for `lease` if free; returns its fencing token (strictly
    /// increasing across all locks), or `None` when another fix holds it.
    async fn acquire_lock(&self, action: &str, key: &str, lease: Duration)
    -> Result<Option<u64>, StateError>;

    /// Extends the lease if `token` still holds the lock; false when it was lost.
    async fn renew_lock(
        &self,
        action: &str,
        key: &str,
        token: u64,
        lease: Duration,
    ) -> Result<bool, StateError>;

    /// Releases the lock if `token` still holds it.
    async fn release_lock(&self, action: &str, key: &str, token: u64) -> Result<bool, StateError>;

    /// Appends to `rootfix:journal:<incident>`.
    async fn append_journal(&self, incident: &str, entry: &JournalEntry) -> Result<(), StateError>;

    /// The journal of an incident, oldest first.
    async fn journal(&self, incident: &str) -> Result<Vec<JournalEntry>, StateError>;

    /// Marks a fix (`<incident>/<action>`) unfinished (`true`) or finished (`false`).
    async fn set_fix_active(&self, fix: &str, active: bool) -> Result<(), StateError>;

    /// Fixes that started and did not finish.
    async fn active_fixes(&self) -> Result<Vec<String>, StateError>;
}
