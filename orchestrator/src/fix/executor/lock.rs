//! The target's idempotency lock: taken at once or after waiting ([`LockPolicy`]), and its lease
//! renewed in the background while the fix runs; a fix that loses it is flagged and stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{error, warn};

use super::{Executor, FixError, LockPolicy};

impl Executor {
    pub(super) async fn acquire(&self, action: &str, key: &str) -> Result<Option<u64>, FixError> {
        match self.lock_policy {
            LockPolicy::Refuse => Ok(self.state.acquire_lock(action, key, self.lease).await?),
            LockPolicy::Wait(max) => self.acquire_waiting(action, key, max).await,
        }
    }

    pub(super) async fn acquire_waiting(
        &self,
        action: &str,
        key: &str,
        max: Duration,
    ) -> Result<Option<u64>, FixError> {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            if let Some(token) = self.state.acquire_lock(action, key, self.lease).await? {
                return Ok(Some(token));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Renews the lease every third of it; flags `lost` when the lock is gone.
    pub(super) fn keep_lock(
        &self,
        action: &str,
        key: &str,
        token: u64,
        lost: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        let (state, action, key, lease) = (
            self.state.clone(),
            action.to_string(),
            key.to_string(),
            self.lease,
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match state.renew_lock(&action, &key, token, lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        error!(%action, %key, token, "the fix lost its lock");
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => warn!(error = %e, "renewing the fix's lock failed; retrying"),
                }
            }
        })
    }
}
