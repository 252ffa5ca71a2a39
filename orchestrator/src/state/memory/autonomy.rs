//! [`AutonomyStore`] in process: stages with their history, outcomes per (action, scope), and
//! approvals with their creation order, under one mutex.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStateStore, dur_ms, ms, poisoned};
use crate::record::approval::{Approval, ApprovalState, DecideOutcome};
use crate::record::outcome::Outcome;
use crate::record::stage::{Stage, StageChange, StageEntry, StageState};
use crate::state::StateError;
use crate::state::autonomy::{AutonomyStore, OUTCOMES_KEPT, STAGE_HISTORY_KEPT};

#[derive(Debug, Default)]
pub(super) struct Autonomy {
    /// (action, scope) → stage and its history.
    stages: BTreeMap<(String, String), (StageState, Vec<StageChange>)>,
    outcomes: HashMap<(String, String), Vec<Outcome>>,
    /// id → approval; `approval_order` keeps creation order.
    approvals: HashMap<String, Approval>,
    approval_order: Vec<String>,
}

impl Autonomy {
    /// Forgets the approvals `ids` (their incident is removed).
    pub(super) fn remove_approvals(&mut self, ids: &[String]) {
        for id in ids {
            self.approvals.remove(id);
        }
        self.approval_order.retain(|id| !ids.contains(id));
    }
}

#[async_trait]
impl AutonomyStore for MemoryStateStore {
    async fn stage(&self, action: &str, scope: &str) -> Result<Option<StageState>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        Ok(a.stages
            .get(&(action.to_string(), scope.to_string()))
            .map(|(s, _)| s.clone()))
    }

    async fn change_stage(
        &self,
        action: &str,
        scope: &str,
        expected: Option<Stage>,
        state: &StageState,
        change: Option<&StageChange>,
    ) -> Result<bool, StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        let key = (action.to_string(), scope.to_string());
        let current = a.stages.get(&key).map(|(s, _)| s.stage);
        if current != expected {
            return Ok(false);
        }
        let entry = a.stages.entry(key).or_insert_with(|| (state.clone(), Vec::new()));
        entry.0 = state.clone();
        if let Some(c) = change {
            entry.1.push(c.clone());
            let excess = entry.1.len().saturating_sub(STAGE_HISTORY_KEPT);
            entry.1.drain(..excess);
        }
        Ok(true)
    }

    async fn stage_history(&self, action: &str, scope: &str) -> Result<Vec<StageChange>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        Ok(a.stages
            .get(&(action.to_string(), scope.to_string()))
            .map(|(_, h)| h.clone())
            .unwrap_or_default())
    }

    async fn stages(&self) -> Result<Vec<StageEntry>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        Ok(a.stages
            .iter()
            .map(|((action, scope), (state, _))| StageEntry {
                action: action.clone(),
                scope: scope.clone(),
                state: state.clone(),
            })
            .collect())
    }

    async fn record_outcome(
        &self,
        action: &str,
        scope: &str,
        outcome: &Outcome,
        retain: Duration,
    ) -> Result<(), StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        let list = a
            .outcomes
            .entry((action.to_string(), scope.to_string()))
            .or_default();
        if !list.contains(outcome) {
            list.push(outcome.clone());
        }
        let cutoff = ms(outcome.at).saturating_sub(dur_ms(retain));
        list.retain(|o| ms(o.at) >= cutoff);
        list.sort_by_key(|o| o.at);
        let excess = list.len().saturating_sub(OUTCOMES_KEPT);
        list.drain(..excess);
        Ok(())
    }

    async fn outcomes(
        &self,
        action: &str,
        scope: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        Ok(a.outcomes
            .get(&(action.to_string(), scope.to_string()))
            .map(|l| l.iter().filter(|o| o.at >= since).cloned().collect())
            .unwrap_or_default())
    }

    async fn create_approval(&self, approval: &Approval) -> Result<bool, StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        if a.approvals.contains_key(&approval.id) {
            return Ok(false);
        }
        a.approvals.insert(approval.id.clone(), approval.clone());
        a.approval_order.push(approval.id.clone());
        Ok(true)
    }

    async fn approval(&self, id: &str) -> Result<Option<Approval>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        Ok(a.approvals.get(id).cloned())
    }

    async fn decide_approval(&self, decided: &Approval) -> Result<DecideOutcome, StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        let Some(stored) = a.approvals.get_mut(&decided.id) else {
            return Ok(DecideOutcome::Missing);
        };
        if stored.state != ApprovalState::Pending {
            return Ok(DecideOutcome::AlreadyDecided(Box::new(stored.clone())));
        }
        *stored = decided.clone();
        Ok(DecideOutcome::Decided)
    }

    async fn list_approvals(&self, pending_only: bool, limit: usize) -> Result<Vec<Approval>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        let mut all: Vec<&Approval> = a
            .approval_order
            .iter()
            .filter_map(|id| a.approvals.get(id))
            .filter(|ap| !pending_only || ap.state == ApprovalState::Pending)
            .collect();
        all.sort_by(|x, y| y.created_at.cmp(&x.created_at).then_with(|| y.id.cmp(&x.id)));
        Ok(all.into_iter().take(limit).cloned().collect())
    }
}
