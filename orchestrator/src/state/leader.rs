//! The leader lease (`rootfix:leader`): one replica at a time runs the periodic jobs.

use std::time::Duration;

use async_trait::async_trait;

use super::StateError;

#[async_trait]
pub trait LeaderStore: Send + Sync {
    /// Becomes (or stays) the leader for `lease`; false when another holder leads.
    async fn try_lead(&self, holder: &str, lease: Duration) -> Result<bool, StateError>;
}
