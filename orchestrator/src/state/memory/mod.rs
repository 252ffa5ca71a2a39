//! The in-process store: the same data layout as Redis (hashes of strings, JSON records), each
//! area behind a mutex of its own, so its behaviour can be held to the same conformance suite.
//!
//! This file holds [`MemoryStateStore`] and the helpers the areas share; each area's trait is
//! implemented, with its data, in a file of its own beside it: `prune`, `stream`, `incidents`,
//! `fixes`, `audit`, `autonomy`, `slots`, `leader`.

mod audit;
mod autonomy;
mod fixes;
mod incidents;
mod leader;
mod prune;
mod slots;
mod stream;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StateError;
use super::health::HealthStore;
use super::keys::Keys;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Debug, Default)]
pub struct MemoryStateStore {
    keys: Keys,
    /// The prune hashes, by key.
    hashes: Mutex<HashMap<String, prune::Hash>>,
    stream: Mutex<stream::Stream>,
    stream_changed: tokio::sync::Notify,
    incidents: Mutex<incidents::Incidents>,
    fixes: Mutex<fixes::Fixes>,
    audit: Mutex<audit::Audit>,
    autonomy: Mutex<autonomy::Autonomy>,
    slots: Mutex<slots::Slots>,
    /// (holder, lease end).
    leader: Mutex<Option<(String, Instant)>>,
}

fn poisoned() -> StateError {
    StateError::Unavailable("in-memory state poisoned by a panic".into())
}

impl MemoryStateStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, prune::Hash>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut guard = self
            .hashes
            .lock()
            .map_err(|_| StateError::Unavailable("in-memory state poisoned by a panic".into()))?;
        f(&mut guard)
    }
}

#[async_trait]
impl HealthStore for MemoryStateStore {
    async fn ping(&self) -> Result<(), StateError> {
        self.with(|_| Ok(()))
    }
}
