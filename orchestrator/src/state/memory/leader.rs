//! [`LeaderStore`] in process: the holder and the end of its lease.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryStateStore, poisoned};
use crate::state::StateError;
use crate::state::leader::LeaderStore;

#[async_trait]
impl LeaderStore for MemoryStateStore {
    async fn try_lead(&self, holder: &str, lease: Duration) -> Result<bool, StateError> {
        let mut leader = self.leader.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        match &*leader {
            Some((h, until)) if h != holder && *until > now => Ok(false),
            _ => {
                *leader = Some((holder.to_string(), now + lease));
                Ok(true)
            }
        }
    }
}
