//! All of rootfix's state goes through [`StateStore`]. Nothing outside this module talks to Redis.
//!
//! [`redis::RedisStateStore`] is the production implementation; [`memory::MemoryStateStore`] is
//! the in-process one for unit tests and single-node trials. Both pass the same conformance suite
//! (`tests/state_conformance.rs`). The key schema is in [`keys`].

pub mod keys;
pub mod memory;
pub mod redis;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::alert::Alert;
use crate::model::playbook::PrunePolicy;
use crate::record::approval::{Approval, DecideOutcome};
use crate::record::audit::{AuditEvent, KillSwitch};
use crate::record::incident::{Incident, IncidentFilter, IncidentState};
use crate::record::journal::JournalEntry;
use crate::record::outcome::Outcome;
use crate::record::stage::{Stage, StageChange, StageEntry, StageState};

pub use keys::{Keys, PruneValue};

/// Why the state could not be read or written. Callers that would act fail closed on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    #[error("state key {key} holds an unexpected value `{value}`")]
    Corrupt { key: String, value: String },
}

/// Whether a node is evaluated in this walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneGate {
    /// Not pruned (or the prune expired): evaluate.
    Evaluate,
    /// Pruned, but this walk is the scheduled re-probe: evaluate.
    Reprobe,
    /// Pruned: skip. `skipped` counts walks skipped since the prune or the last re-probe.
    Skip { pruned_at: String, skipped: u32 },
}

/// A node's result as far as pruning is concerned; errors do not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Hit,
    Miss,
}

/// What recording a verdict changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneUpdate {
    /// A miss; `misses` consecutive so far.
    Streak { misses: u32 },
    /// This miss reached the limit: the node is pruned from now on.
    Pruned { misses: u32 },
    /// A hit: the streak is reset; `was_pruned` tells whether a prune was lifted.
    Cleared { was_pruned: bool },
}

/// Cumulative counts of one node, for exactness checks and the UI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    pub hits: u64,
    pub misses: u64,
    pub skips: u64,
    pub reprobes: u64,
}

/// One pruned node, as listed by `rootfix prune list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneEntry {
    pub node: String,
    pub value: PruneValue,
}

/// The consumer group that reads `rootfix:alerts`.
pub const CONSUMER_GROUP: &str = "rootfix";

/// One received alert as stored in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    pub id: String,
    /// The alert, or why the stored entry could not be read back (it is then acknowledged and
    /// dropped by the event loop, with an error log: it can never succeed).
    pub alert: Result<Alert, String>,
    pub received_at: Option<DateTime<Utc>>,
}

/// Length, pending entries and lag of the alert stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub length: u64,
    /// Delivered to a consumer, not yet acknowledged.
    pub pending: u64,
    /// Not yet delivered to any consumer of the group.
    pub lag: u64,
}

/// What creating an incident did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// Another incident is open for the fingerprint (its id).
    OpenExists(String),
    /// An incident with this id exists already (the entry that creates it was redelivered).
    IdExists,
}

/// What saving an incident did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Saved; the incident's `version` was bumped.
    Saved,
    /// Someone saved a newer version first; reload and apply again.
    Conflict,
    Missing,
}

/// A page of incidents, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentPage {
    pub items: Vec<Incident>,
    /// Offset of the next page, if there may be one.
    pub next_offset: Option<usize>,
}

/// Builds an [`IncidentPage`] from incidents offered newest first: filters, skips `offset`
/// matches, and stops after `limit` (one more match means there is a next page).
pub(crate) struct IncidentPager<'a> {
    filter: &'a IncidentFilter,
    offset: usize,
    limit: usize,
    skipped: usize,
    items: Vec<Incident>,
}

impl<'a> IncidentPager<'a> {
    pub(crate) fn new(filter: &'a IncidentFilter, offset: usize, limit: usize) -> Self {
        Self {
            filter,
            offset,
            limit,
            skipped: 0,
            items: Vec::new(),
        }
    }

    /// Offers the next incident; returns the finished page once it is full.
    pub(crate) fn offer(&mut self, incident: Incident) -> Option<IncidentPage> {
        if !self.filter.accepts(&incident) {
            return None;
        }
        if self.skipped < self.offset {
            self.skipped += 1;
            return None;
        }
        if self.items.len() == self.limit {
            return Some(IncidentPage {
                items: std::mem::take(&mut self.items),
                next_offset: Some(self.offset + self.limit),
            });
        }
        self.items.push(incident);
        None
    }

    /// The page when the incidents ran out.
    pub(crate) fn finish(self) -> IncidentPage {
        IncidentPage {
            items: self.items,
            next_offset: None,
        }
    }
}

#[async_trait]
pub trait StateStore: Send + Sync {
    /// Round trip to the store; the readiness probe uses it.
    async fn ping(&self) -> Result<(), StateError>;

    /// Decides, atomically, whether `node` is evaluated in this walk, and counts the skip or
    /// re-probe.
    async fn prune_gate(
        &self,
        service: &str,
        node: &str,
        policy: &PrunePolicy,
        now: DateTime<Utc>,
    ) -> Result<PruneGate, StateError>;

    /// Records a hit or a miss, atomically: a miss extends the streak and prunes at the limit; a
    /// hit clears the streak and any prune.
    async fn record_verdict(
        &self,
        service: &str,
        node: &str,
        verdict: Verdict,
        policy: &PrunePolicy,
        now: DateTime<Utc>,
    ) -> Result<PruneUpdate, StateError>;

    /// Pruned nodes of a service.
    async fn pruned_nodes(&self, service: &str) -> Result<Vec<PruneEntry>, StateError>;

    /// Lifts a prune and resets the streak; returns whether the node was pruned.
    async fn clear_prune(&self, service: &str, node: &str) -> Result<bool, StateError>;

    /// Consecutive misses of a node.
    async fn miss_streak(&self, service: &str, node: &str) -> Result<u32, StateError>;

    /// Cumulative counts of a node.
    async fn node_stats(&self, service: &str, node: &str) -> Result<NodeStats, StateError>;

    // ── The alert stream ──

    /// Appends alerts to `rootfix:alerts`, all or none (one XADD each, in one atomic pipeline);
    /// returns their entry ids.
    async fn append_alerts(
        &self,
        alerts: &[Alert],
        received_at: DateTime<Utc>,
    ) -> Result<Vec<String>, StateError>;

    /// Creates the consumer group (and the stream) if missing.
    async fn ensure_consumer_group(&self) -> Result<(), StateError>;

    /// New entries for `consumer`, waiting up to `block` for some.
    async fn read_alerts(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<StreamEntry>, StateError>;

    /// This consumer's own pending entries (read before a crash, never acknowledged) with ids
    /// after `after` (`0` for the first page).
    async fn own_pending_alerts(
        &self,
        consumer: &str,
        after: &str,
        count: usize,
    ) -> Result<Vec<StreamEntry>, StateError>;

    /// Takes over entries another consumer left pending for at least `min_idle`.
    async fn claim_stale_alerts(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<StreamEntry>, StateError>;

    /// Acknowledges an entry whose handling reached a durable state.
    async fn ack_alert(&self, entry_id: &str) -> Result<(), StateError>;

    async fn stream_stats(&self) -> Result<StreamStats, StateError>;

    // ── Incidents ──

    /// The open incident of a fingerprint.
    async fn open_incident(&self, fingerprint: &str) -> Result<Option<Incident>, StateError>;

    async fn incident(&self, id: &str) -> Result<Option<Incident>, StateError>;

    /// Creates an incident, atomically with its fingerprint's open slot (when it is open).
    async fn create_incident(&self, incident: &Incident) -> Result<CreateOutcome, StateError>;

    /// Saves an incident if nobody saved since it was read (its `version`); bumps the version.
    async fn save_incident(&self, incident: &mut Incident) -> Result<SaveOutcome, StateError>;

    /// Incidents newest first, filtered, from `offset`.
    async fn list_incidents(
        &self,
        filter: &IncidentFilter,
        offset: usize,
        limit: usize,
    ) -> Result<IncidentPage, StateError>;

    async fn incident_counts(&self) -> Result<BTreeMap<IncidentState, u64>, StateError>;

    // ── Fixes: idempotency locks and the execution journal ──

    /// Takes `rootfix:lock:<action>:<key>` for `lease` if free; returns its fencing token (strictly
    /// increasing across all locks), or `None` when another fix holds it.
    async fn acquire_lock(&self, action: &str, key: &str, lease: Duration)
    -> Result<Option<u64>, StateError>;

    /// Extends the lease if `token` still holds the lock; false when it was lost.
    async fn renew_lock(
        &self,
        action: &str,
        key: &str,
        token: u64,
        lease: Duration,
    ) -> Result<bool, StateError>;

    /// Releases the lock if `token` still holds it.
    async fn release_lock(&self, action: &str, key: &str, token: u64) -> Result<bool, StateError>;

    /// Appends to `rootfix:journal:<incident>`.
    async fn append_journal(&self, incident: &str, entry: &JournalEntry) -> Result<(), StateError>;

    /// The journal of an incident, oldest first.
    async fn journal(&self, incident: &str) -> Result<Vec<JournalEntry>, StateError>;

    /// Marks a fix (`<incident>/<action>`) unfinished (`true`) or finished (`false`).
    async fn set_fix_active(&self, fix: &str, active: bool) -> Result<(), StateError>;

    /// Fixes that started and did not finish.
    async fn active_fixes(&self) -> Result<Vec<String>, StateError>;

    // ── Kill switch and audit ──

    /// The kill switch, when it is on.
    async fn killswitch(&self) -> Result<Option<KillSwitch>, StateError>;

    /// Turns the kill switch on (`Some`) or off (`None`).
    async fn set_killswitch(&self, state: Option<&KillSwitch>) -> Result<(), StateError>;

    /// Appends to the capped audit stream.
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StateError>;

    /// The newest `limit` audit events, newest first.
    async fn audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StateError>;

    // ── Autonomy: stages, outcomes, approvals, rate and concurrency limits, the leader ──

    async fn stage(&self, action: &str, scope: &str) -> Result<Option<StageState>, StateError>;

    /// Writes the pair's stage if its stored stage is still `expected` (`None`: never set), and
    /// appends `change` (when given) to its history, atomically. False when the stage changed
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

    /// Records an outcome; outcomes older than `retain` before it are dropped.
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

    /// Counts a fix start against the scope's sliding window (`window` ending at `now`) if fewer
    /// than `limit` started in it; false when the limit is reached.
    async fn take_rate_slot(
        &self,
        scope: &str,
        fix: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<bool, StateError>;

    /// Gives back a slot taken for a fix that did not start after all.
    async fn release_rate_slot(&self, scope: &str, fix: &str) -> Result<(), StateError>;

    /// Fix starts in the window ending at `now`.
    async fn rate_count(&self, scope: &str, now: DateTime<Utc>, window: Duration) -> Result<u32, StateError>;

    /// Takes one of the scope's `limit` running-fix slots until `now + lease` (a crashed holder's
    /// slot frees itself then); false when all are taken.
    async fn take_run_slot(
        &self,
        scope: &str,
        fix: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<bool, StateError>;

    async fn release_run_slot(&self, scope: &str, fix: &str) -> Result<(), StateError>;

    /// Fixes holding a running slot at `now`.
    async fn running_count(&self, scope: &str, now: DateTime<Utc>) -> Result<u32, StateError>;

    /// Becomes (or stays) the leader for `lease`; false when another holder leads.
    async fn try_lead(&self, holder: &str, lease: Duration) -> Result<bool, StateError>;
}

/// `now - ttl` in the prune time format: prunes older than this have expired.
pub(crate) fn prune_expiry_cutoff(policy: &PrunePolicy, now: DateTime<Utc>) -> String {
    let ttl = chrono::Duration::from_std(policy.ttl).unwrap_or(chrono::Duration::MAX);
    // Clamped to 1970 so the fixed-width string order stays the time order.
    let cutoff = now
        .checked_sub_signed(ttl)
        .unwrap_or(DateTime::UNIX_EPOCH)
        .max(DateTime::UNIX_EPOCH);
    keys::prune_time(cutoff)
}
