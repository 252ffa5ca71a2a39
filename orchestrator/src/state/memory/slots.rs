//! [`SlotStore`] in process: per scope, the fix starts of the rate window and the running slots
//! with their lease end, under one mutex.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStateStore, dur_ms, ms, poisoned};
use crate::state::StateError;
use crate::state::slots::SlotStore;

#[derive(Debug, Default)]
pub(super) struct Slots {
    /// scope → (fix, started ms).
    rate: HashMap<String, Vec<(String, i64)>>,
    /// scope → fix → slot expiry ms.
    running: HashMap<String, HashMap<String, i64>>,
}

#[async_trait]
impl SlotStore for MemoryStateStore {
    async fn take_rate_slot(
        &self,
        scope: &str,
        fix: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<bool, StateError> {
        let mut limits = self.slots.lock().map_err(|_| poisoned())?;
        let list = limits.rate.entry(scope.to_string()).or_default();
        let cutoff = ms(now).saturating_sub(dur_ms(window));
        list.retain(|(_, t)| *t > cutoff);
        if list.iter().any(|(f, _)| f == fix) {
            return Ok(true);
        }
        if list.len() >= limit as usize {
            return Ok(false);
        }
        list.push((fix.to_string(), ms(now)));
        Ok(true)
    }

    async fn release_rate_slot(&self, scope: &str, fix: &str) -> Result<(), StateError> {
        let mut limits = self.slots.lock().map_err(|_| poisoned())?;
        if let Some(list) = limits.rate.get_mut(scope) {
            list.retain(|(f, _)| f != fix);
        }
        Ok(())
    }

    async fn rate_count(&self, scope: &str, now: DateTime<Utc>, window: Duration) -> Result<u32, StateError> {
        let limits = self.slots.lock().map_err(|_| poisoned())?;
        let cutoff = ms(now).saturating_sub(dur_ms(window));
        let n = limits.rate.get(scope).map_or(0, |l| {
            l.iter().filter(|(_, t)| *t > cutoff && *t <= ms(now)).count()
        });
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn take_run_slot(
        &self,
        scope: &str,
        fix: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<bool, StateError> {
        let mut limits = self.slots.lock().map_err(|_| poisoned())?;
        let slots = limits.running.entry(scope.to_string()).or_default();
        slots.retain(|_, until| *until > ms(now));
        if !slots.contains_key(fix) && slots.len() >= limit as usize {
            return Ok(false);
        }
        slots.insert(fix.to_string(), ms(now).saturating_add(dur_ms(lease)));
        Ok(true)
    }

    async fn release_run_slot(&self, scope: &str, fix: &str) -> Result<(), StateError> {
        let mut limits = self.slots.lock().map_err(|_| poisoned())?;
        if let Some(slots) = limits.running.get_mut(scope) {
            slots.remove(fix);
        }
        Ok(())
    }

    async fn running_count(&self, scope: &str, now: DateTime<Utc>) -> Result<u32, StateError> {
        let limits = self.slots.lock().map_err(|_| poisoned())?;
        let n = limits
            .running
            .get(scope)
            .map_or(0, |s| s.values().filter(|until| **until > ms(now)).count());
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
