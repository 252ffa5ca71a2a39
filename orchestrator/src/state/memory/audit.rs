//! [`AuditStore`] in process: the kill switch and the audit events, capped at [`AUDIT_CAP`] as the
//! Redis stream is.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStateStore, poisoned};
use crate::record::audit::{AUDIT_CAP, AuditEvent, KillSwitch};
use crate::state::StateError;
use crate::state::audit::AuditStore;

#[derive(Debug, Default)]
pub(super) struct Audit {
    killswitch: Option<KillSwitch>,
    /// Oldest first.
    events: VecDeque<AuditEvent>,
    /// One-time uses and when each is forgotten.
    once: HashMap<String, Instant>,
}

#[async_trait]
impl AuditStore for MemoryStateStore {
    async fn killswitch(&self) -> Result<Option<KillSwitch>, StateError> {
        Ok(self.audit.lock().map_err(|_| poisoned())?.killswitch.clone())
    }

    async fn set_killswitch(&self, state: Option<&KillSwitch>) -> Result<(), StateError> {
        self.audit.lock().map_err(|_| poisoned())?.killswitch = state.cloned();
        Ok(())
    }

    async fn use_once(&self, what: &str, ttl: Duration) -> Result<bool, StateError> {
        let mut audit = self.audit.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        audit.once.retain(|_, until| *until > now);
        if audit.once.contains_key(what) {
            return Ok(false);
        }
        audit.once.insert(what.to_string(), now + ttl);
        Ok(true)
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StateError> {
        let mut audit = self.audit.lock().map_err(|_| poisoned())?;
        audit.events.push_back(event.clone());
        while audit.events.len() > AUDIT_CAP {
            audit.events.pop_front();
        }
        Ok(())
    }

    async fn trim_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<u64, StateError> {
        let mut audit = self.audit.lock().map_err(|_| poisoned())?;
        let mut removed = 0;
        while (removed as usize) < limit && audit.events.front().is_some_and(|e| e.at < before) {
            audit.events.pop_front();
            removed += 1;
        }
        Ok(removed)
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StateError> {
        let audit = self.audit.lock().map_err(|_| poisoned())?;
        Ok(audit.events.iter().rev().take(limit).cloned().collect())
    }
}
