//! The target's idempotency lock: taken at once or after waiting ([`LockPolicy`]), and its lease
//! renewed in the background while the fix runs; a fix that loses it is flagged and stops. A
//! remedy of several targets takes all of them, in order ([`Executor::acquire_all`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{error, warn};

use super::{Executor, FixError, LockPolicy};

/// Locks taken for one fix of several targets: (action, target key, fencing token).
pub(super) type Held = Vec<(String, String, u64)>;
/// The tasks renewing those locks.
pub(super) type Renewers = Vec<tokio::task::JoinHandle<()>>;

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

    /// Takes every lock in order, renewing each from the moment it is taken (waiting for the
    /// next one must not let an earlier one expire; a lock lost meanwhile flags `lost`); on a
    /// refusal, stops renewing and releases those taken, and answers `None`.
    pub(super) async fn acquire_all(
        &self,
        targets: &[(String, String)],
        wait: Option<Duration>,
        lost: &Arc<AtomicBool>,
    ) -> Result<Option<(Held, Renewers)>, FixError> {
        let mut held: Held = Vec::new();
        let mut renewers: Renewers = Vec::new();
        for (action, key) in targets {
            let token = match wait {
                Some(max) => self.acquire_waiting(action, key, max).await,
                None => self.acquire(action, key).await,
            };
            match token {
                Ok(Some(token)) => {
                    renewers.push(self.keep_lock(action, key, token, lost.clone()));
                    held.push((action.clone(), key.clone(), token));
                }
                Ok(None) | Err(_) => {
                    for r in renewers {
                        r.abort();
                    }
                    for (a, k, t) in &held {
                        let _ = self.state.release_lock(a, k, *t).await;
                    }
                    return token.map(|_| None);
                }
            }
        }
        Ok(Some((held, renewers)))
    }
}
