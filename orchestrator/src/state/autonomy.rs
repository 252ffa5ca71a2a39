//! Autonomy's records: each (action, scope)'s stage (compare-and-set, with its history), the
//! outcomes by time for the promotion window, and approvals (decided exactly once).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StateError;
use crate::record::approval::{Approval, DecideOutcome};
use crate::record::outcome::Outcome;
use crate::record::stage::{Stage, StageChange, StageEntry, StageState};

/// Outcomes kept per (action, scope) at most, besides `retain`: far more than the promotion
/// window holds at any configured rate (`autonomy/promotion.rs` reads the window's outcomes, and
/// recurrence the incident's own, which is among the latest).
pub const OUTCOMES_KEPT: usize = 10_000;

/// Stage changes kept per (action, scope): the newest, for the stages page's picture and history.
pub const STAGE_HISTORY_KEPT: usize = 1_000;

#[async_trait]
pub trait AutonomyStore: Send + Sync {
    async fn stage(&self, action: &str, scope: &str) -> Result<Option<StageState>, StateError>;

    /// Writes the pair's stage if its stored stage is still `expected` (`None`: never set), and
    /// appends `change` (when given) to its history (the newest [`STAGE_HISTORY_KEPT`] kept),
    /// atomically. False when the stage changed
    /// meanwhile (nothing written).
    async fn change_stage(
        &self,
        action: &str,
        scope: &str,
        expected: Option<Stage>,
        state: &StageState,
        change: Option<&StageChange>,
    ) -> Result<bool, StateError>;

    /// Every stage change of the pair, oldest first.
    async fn stage_history(&self, action: &str, scope: &str) -> Result<Vec<StageChange>, StateError>;

    /// Every (action, scope) with a stage, ordered by action then scope.
    async fn stages(&self) -> Result<Vec<StageEntry>, StateError>;

    /// Records an outcome; outcomes older than `retain` before it are dropped, and all but the
    /// newest [`OUTCOMES_KEPT`].
    async fn record_outcome(
        &self,
        action: &str,
        scope: &str,
        outcome: &Outcome,
        retain: Duration,
    ) -> Result<(), StateError>;

    /// Outcomes at or after `since`, oldest first.
    async fn outcomes(
        &self,
        action: &str,
        scope: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StateError>;

    /// Stores a new approval; false (nothing written) when one with its id exists.
    async fn create_approval(&self, approval: &Approval) -> Result<bool, StateError>;

    async fn approval(&self, id: &str) -> Result<Option<Approval>, StateError>;

    /// Replaces the approval with `decided` only while the stored one is still pending.
    async fn decide_approval(&self, decided: &Approval) -> Result<DecideOutcome, StateError>;

    /// Approvals newest first; only pending ones when `pending_only`.
    async fn list_approvals(&self, pending_only: bool, limit: usize) -> Result<Vec<Approval>, StateError>;
}
