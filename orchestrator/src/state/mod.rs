//! All of rootfix's state goes through [`StateStore`]. Nothing outside this module talks to Redis.
//!
//! The store is one trait per area, each in its own file, and [`StateStore`] is all of them:
//!
//! | trait | file | area |
//! |---|---|---|
//! | [`HealthStore`] | `health.rs` | the readiness round trip |
//! | [`PruneStore`] | `prune.rs` | prune gates, verdicts, streaks, node counts |
//! | [`AlertStream`] | `stream.rs` | the alert stream and its consumer group |
//! | [`IncidentStore`] | `incidents.rs` | incidents: create, compare-and-set save, list, counts |
//! | [`FixStore`] | `fixes.rs` | fix locks, the journal, active fixes |
//! | [`AuditStore`] | `audit.rs` | the kill switch and the audit stream |
//! | [`AutonomyStore`] | `autonomy.rs` | stages and their history, outcomes, approvals |
//! | [`SlotStore`] | `slots.rs` | the rate window and the running-fix slots |
//! | [`LeaderStore`] | `leader.rs` | the leader lease |
//!
//! `Arc<dyn StateStore>` is the one value passed around; to call a method, have its area's trait
//! in scope (`use crate::state::prelude::*;` brings them all).
//!
//! [`redis::RedisStateStore`] is the production implementation; [`memory::MemoryStateStore`] is
//! the in-process one for unit tests and single-node trials. Each implements every area in a file
//! of its own (`redis/<area>.rs`, `memory/<area>.rs`). Both pass the same conformance suite
//! (`tests/state_conformance/`, one part per area). The key schema is in [`keys`].
//!
//! The records stored here come from [`crate::record`]; this module imports nothing from the logic
//! above it (`autonomy`, `fix`, `events`, `server`).

pub mod audit;
pub mod autonomy;
pub mod fixes;
pub mod health;
pub mod incidents;
pub mod keys;
pub mod leader;
pub mod memory;
pub mod prune;
pub mod redis;
pub mod slots;
pub mod stream;

pub use audit::AuditStore;
pub use autonomy::AutonomyStore;
pub use fixes::FixStore;
pub use health::HealthStore;
pub use incidents::{CreateOutcome, IncidentPage, IncidentStore, SaveOutcome};
pub use keys::{Keys, PruneValue};
pub use leader::LeaderStore;
pub use prune::{NodeStats, PruneEntry, PruneGate, PruneStore, PruneUpdate, Verdict};
pub use slots::SlotStore;
pub use stream::{AlertStream, Appended, CONSUMER_GROUP, StreamEntry, StreamStats, alert_content_id};

/// Every area's trait, for callers of a [`StateStore`]: `use crate::state::prelude::*;`.
pub mod prelude {
    pub use super::{
        AlertStream, AuditStore, AutonomyStore, FixStore, HealthStore, IncidentStore, LeaderStore,
        PruneStore, SlotStore, StateStore,
    };
}

/// Why the state could not be read or written. Callers that would act fail closed on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// A write was sent but its answer never came (a timeout, a dropped connection): it may have
    /// been applied. Callers that report to a client say so; a retry must be safe.
    #[error("state store did not answer: {0}")]
    OutcomeUnknown(String),
    #[error("state key {key} holds an unexpected value `{value}`")]
    Corrupt { key: String, value: String },
}

/// All of rootfix's state: a store that implements every area. Implemented for every such store,
/// so an implementation only implements the areas.
pub trait StateStore:
    HealthStore
    + PruneStore
    + AlertStream
    + IncidentStore
    + FixStore
    + AuditStore
    + AutonomyStore
    + SlotStore
    + LeaderStore
{
}

impl<T> StateStore for T where
    T: HealthStore
        + PruneStore
        + AlertStream
        + IncidentStore
        + FixStore
        + AuditStore
        + AutonomyStore
        + SlotStore
        + LeaderStore
{
}
