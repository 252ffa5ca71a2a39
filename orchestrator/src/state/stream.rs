//! The alert stream `rootfix:alerts` and its consumer group: append (all or none), read new
//! entries, a consumer's own pending ones, claim stale ones, acknowledge, the stream's stats, and
//! trimming what every consumer is done with.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StateError;
use crate::alert::Alert;

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

/// What storing a webhook's alerts did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// Entry ids of the alerts stored, in the payload's order.
    pub ids: Vec<String>,
    /// Alerts identical to one stored within the window (a retried webhook): not stored again.
    pub duplicates: usize,
}

/// The identity of an alert's content for [`AlertStream::append_new_alerts`]: hex SHA-256 of its
/// JSON (labels and annotations are ordered maps, so equal alerts encode equally).
pub fn alert_content_id(alert_json: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, alert_json.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
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

#[async_trait]
pub trait AlertStream: Send + Sync {
    /// Appends alerts to `rootfix:alerts`, all or none (one XADD each, in one atomic pipeline);
    /// returns their entry ids.
    async fn append_alerts(
        &self,
        alerts: &[Alert],
        received_at: DateTime<Utc>,
    ) -> Result<Vec<String>, StateError>;

    /// Appends the alerts whose identical content was not stored within `window` (a retry of a
    /// webhook whose answer was lost stores nothing twice), all in one atomic step; a zero window
    /// stores every alert.
    async fn append_new_alerts(
        &self,
        alerts: &[Alert],
        received_at: DateTime<Utc>,
        window: Duration,
    ) -> Result<Appended, StateError>;

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

    /// Removes the entries the consumer group is done with: every entry before the oldest one
    /// still pending on a consumer or, when none is pending, every entry up to the group's last
    /// delivered one (the entries after it are undelivered). Never a pending or undelivered entry;
    /// nothing when the group does not exist. Returns how many entries were removed. Batched by
    /// the caller (the leader's job), not run per acknowledgement.
    async fn trim_alerts(&self) -> Result<u64, StateError>;
}
