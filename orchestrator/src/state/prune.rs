//! Pruning state of the diagnosis tree's nodes: the gate asked before a node is evaluated, the
//! verdict recorded after, the prunes listed and cleared, and each node's counts. Keys
//! `diag:prune:<service>`, `diag:streak:<service>`, `diag:stats:<service>`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StateError;
use super::keys::{self, PruneValue};
use crate::model::playbook::PrunePolicy;

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

#[async_trait]
pub trait PruneStore: Send + Sync {
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
