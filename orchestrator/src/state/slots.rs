//! The scopes' limits: the sliding window of fix starts (rate) and the running-fix slots with a
//! lease (concurrency).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StateError;

#[async_trait]
pub trait SlotStore: Send + Sync {
    /// Counts a fix start against the scope's sliding window (`window` ending at `now`) if fewer
    /// than `limit` started in it; false when the limit is reached.
    async fn take_rate_slot(
        &self,
        scope: &str,
        fix: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<bool, StateError>;

    /// Gives back a slot taken for a fix that did not start after all.
    async fn release_rate_slot(&self, scope: &str, fix: &str) -> Result<(), StateError>;

    /// Fix starts in the window ending at `now`.
    async fn rate_count(&self, scope: &str, now: DateTime<Utc>, window: Duration) -> Result<u32, StateError>;

    /// Takes one of the scope's `limit` running-fix slots until `now + lease` (a crashed holder's
    /// slot frees itself then); false when all are taken.
    async fn take_run_slot(
        &self,
        scope: &str,
        fix: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<bool, StateError>;

    async fn release_run_slot(&self, scope: &str, fix: &str) -> Result<(), StateError>;

    /// Fixes holding a running slot at `now`.
    async fn running_count(&self, scope: &str, now: DateTime<Utc>) -> Result<u32, StateError>;
}
