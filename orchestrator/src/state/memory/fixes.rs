//! [`FixStore`] in process: locks with their fencing token and lease end, the journals as JSON
//! lines, the active fixes.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryStateStore, poisoned};
use crate::record::journal::JournalEntry;
use crate::state::StateError;
use crate::state::fixes::FixStore;

#[derive(Debug, Default)]
pub(super) struct Fixes {
    /// lock key → (token, expires at).
    locks: HashMap<String, (u64, Instant)>,
    fence: u64,
    journals: HashMap<String, Vec<String>>,
    active: BTreeSet<String>,
}

impl Fixes {
    /// Forgets an incident's journal (the incident is removed).
    pub(super) fn remove_journal(&mut self, incident: &str) {
        self.journals.remove(incident);
    }
}

#[async_trait]
impl FixStore for MemoryStateStore {
    async fn acquire_lock(
        &self,
        action: &str,
        key: &str,
        lease: Duration,
    ) -> Result<Option<u64>, StateError> {
        let lock = self.keys.lock(action, key);
        let mut fixes = self.fixes.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        if fixes.locks.get(&lock).is_some_and(|(_, until)| *until > now) {
            return Ok(None);
        }
        fixes.fence += 1;
        let token = fixes.fence;
        fixes.locks.insert(lock, (token, now + lease));
        Ok(Some(token))
    }

    async fn renew_lock(
        &self,
        action: &str,
        key: &str,
        token: u64,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let lock = self.keys.lock(action, key);
        let mut fixes = self.fixes.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        match fixes.locks.get_mut(&lock) {
            Some((held, until)) if *held == token && *until > now => {
                *until = now + lease;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_lock(&self, action: &str, key: &str, token: u64) -> Result<bool, StateError> {
        let lock = self.keys.lock(action, key);
        let mut fixes = self.fixes.lock().map_err(|_| poisoned())?;
        if fixes.locks.get(&lock).is_some_and(|(held, _)| *held == token) {
            fixes.locks.remove(&lock);
            return Ok(true);
        }
        Ok(false)
    }

    async fn append_journal(&self, incident: &str, entry: &JournalEntry) -> Result<(), StateError> {
        let line = serde_json::to_string(entry).map_err(|e| StateError::Corrupt {
            key: self.keys.journal(incident),
            value: e.to_string(),
        })?;
        let mut fixes = self.fixes.lock().map_err(|_| poisoned())?;
        fixes.journals.entry(incident.to_string()).or_default().push(line);
        Ok(())
    }

    async fn journal(&self, incident: &str) -> Result<Vec<JournalEntry>, StateError> {
        let fixes = self.fixes.lock().map_err(|_| poisoned())?;
        fixes
            .journals
            .get(incident)
            .into_iter()
            .flatten()
            .map(|line| {
                serde_json::from_str(line).map_err(|e| StateError::Corrupt {
                    key: self.keys.journal(incident),
                    value: e.to_string(),
                })
            })
            .collect()
    }

    async fn set_fix_active(&self, fix: &str, active: bool) -> Result<(), StateError> {
        let mut fixes = self.fixes.lock().map_err(|_| poisoned())?;
        if active {
            fixes.active.insert(fix.to_string());
        } else {
            fixes.active.remove(fix);
        }
        Ok(())
    }

    async fn active_fixes(&self) -> Result<Vec<String>, StateError> {
        let fixes = self.fixes.lock().map_err(|_| poisoned())?;
        Ok(fixes.active.iter().cloned().collect())
    }
}
