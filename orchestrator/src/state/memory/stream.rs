//! [`AlertStream`] in process: the entries, the group's last delivered id and its pending entries
//! as Redis keeps them (trimmed behind the oldest pending entry as the Redis script does), and a `Notify` that wakes a blocked read when alerts are appended.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStateStore, poisoned};
use crate::alert::Alert;
use crate::state::StateError;
use crate::state::stream::{AlertStream, Appended, StreamEntry, StreamStats, alert_content_id};

/// Stream entry ids as Redis writes them: `<ms>-<seq>`, ordered.
type EntryId = (u64, u64);

#[derive(Debug, Default)]
pub(super) struct Stream {
    entries: BTreeMap<EntryId, (String, String)>,
    last_id: EntryId,
    group_created: bool,
    last_delivered: EntryId,
    /// id → (consumer, delivered at).
    pending: BTreeMap<EntryId, (String, Instant)>,
    /// Alert content id → until when a copy of it is a duplicate.
    seen: std::collections::HashMap<String, Instant>,
}

impl Stream {
    /// Appends one encoded alert with the next id, as XADD `*` would.
    fn push(&mut self, alert: String, received: &str) -> String {
        let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        let id = if now_ms > self.last_id.0 {
            (now_ms, 0)
        } else {
            (self.last_id.0, self.last_id.1 + 1)
        };
        self.last_id = id;
        self.entries.insert(id, (alert, received.to_string()));
        format_id(id)
    }
}

fn format_id((ms, seq): EntryId) -> String {
    format!("{ms}-{seq}")
}

fn parse_id(id: &str) -> Option<EntryId> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn entry(id: EntryId, (alert, received): &(String, String)) -> StreamEntry {
    StreamEntry {
        id: format_id(id),
        alert: serde_json::from_str::<Alert>(alert).map_err(|e| format!("stored alert does not parse: {e}")),
        received_at: DateTime::parse_from_rfc3339(received)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// Each alert as the JSON the stream keeps (what the Redis store's XADD writes).
fn encode_alerts(alerts: &[Alert]) -> Result<Vec<String>, StateError> {
    alerts
        .iter()
        .map(|a| {
            serde_json::to_string(a).map_err(|e| StateError::Corrupt {
                key: "alert".into(),
                value: e.to_string(),
            })
        })
        .collect()
}

#[async_trait]
impl AlertStream for MemoryStateStore {
    async fn append_alerts(
        &self,
        alerts: &[Alert],
        received_at: DateTime<Utc>,
    ) -> Result<Vec<String>, StateError> {
        let encoded = encode_alerts(alerts)?;
        let received = received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let ids = {
            let mut stream = self.stream.lock().map_err(|_| poisoned())?;
            encoded
                .into_iter()
                .map(|alert| stream.push(alert, &received))
                .collect()
        };
        self.stream_changed.notify_waiters();
        Ok(ids)
    }

    async fn append_new_alerts(
        &self,
        alerts: &[Alert],
        received_at: DateTime<Utc>,
        window: Duration,
    ) -> Result<Appended, StateError> {
        let received = received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let encoded = encode_alerts(alerts)?;
        let mut appended = Appended::default();
        {
            let mut stream = self.stream.lock().map_err(|_| poisoned())?;
            let now = Instant::now();
            stream.seen.retain(|_, until| *until > now);
            for json in encoded {
                if !window.is_zero() {
                    let content = alert_content_id(&json);
                    if stream.seen.contains_key(&content) {
                        appended.duplicates += 1;
                        continue;
                    }
                    stream.seen.insert(content, now + window);
                }
                let id = stream.push(json, &received);
                appended.ids.push(id);
            }
        }
        self.stream_changed.notify_waiters();
        Ok(appended)
    }

    async fn ensure_consumer_group(&self) -> Result<(), StateError> {
        let mut stream = self.stream.lock().map_err(|_| poisoned())?;
        stream.group_created = true;
        Ok(())
    }

    async fn read_alerts(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<StreamEntry>, StateError> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let notified = self.stream_changed.notified();
            {
                let mut stream = self.stream.lock().map_err(|_| poisoned())?;
                if !stream.group_created {
                    return Err(StateError::Unavailable(
                        "NOGROUP: the consumer group does not exist".into(),
                    ));
                }
                let after = stream.last_delivered;
                let fresh: Vec<(EntryId, (String, String))> = stream
                    .entries
                    .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                    .take(count)
                    .map(|(id, v)| (*id, v.clone()))
                    .collect();
                if let Some((last, _)) = fresh.last() {
                    stream.last_delivered = *last;
                    let now = Instant::now();
                    for (id, _) in &fresh {
                        stream.pending.insert(*id, (consumer.to_string(), now));
                    }
                    return Ok(fresh.iter().map(|(id, v)| entry(*id, v)).collect());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn own_pending_alerts(
        &self,
        consumer: &str,
        after: &str,
        count: usize,
    ) -> Result<Vec<StreamEntry>, StateError> {
        let after = if after == "0" {
            (0, 0)
        } else {
            parse_id(after).unwrap_or((0, 0))
        };
        let stream = self.stream.lock().map_err(|_| poisoned())?;
        Ok(stream
            .pending
            .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .filter(|(_, (owner, _))| owner == consumer)
            .filter_map(|(id, _)| stream.entries.get(id).map(|v| entry(*id, v)))
            .take(count)
            .collect())
    }

    async fn claim_stale_alerts(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<StreamEntry>, StateError> {
        let mut stream = self.stream.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        let stale: Vec<EntryId> = stream
            .pending
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= min_idle)
            .map(|(id, _)| *id)
            .take(count)
            .collect();
        let mut out = Vec::new();
        for id in stale {
            match stream.entries.get(&id).cloned() {
                Some(value) => {
                    stream.pending.insert(id, (consumer.to_string(), now));
                    out.push(entry(id, &value));
                }
                None => {
                    stream.pending.remove(&id);
                }
            }
        }
        Ok(out)
    }

    async fn ack_alert(&self, entry_id: &str) -> Result<(), StateError> {
        let id = parse_id(entry_id).ok_or_else(|| StateError::Corrupt {
            key: "rootfix:alerts".into(),
            value: entry_id.to_string(),
        })?;
        let mut stream = self.stream.lock().map_err(|_| poisoned())?;
        stream.pending.remove(&id);
        Ok(())
    }

    async fn stream_stats(&self) -> Result<StreamStats, StateError> {
        let stream = self.stream.lock().map_err(|_| poisoned())?;
        let after = stream.last_delivered;
        Ok(StreamStats {
            length: stream.entries.len() as u64,
            pending: stream.pending.len() as u64,
            lag: stream
                .entries
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .count() as u64,
        })
    }

    async fn trim_alerts(&self) -> Result<u64, StateError> {
        let mut stream = self.stream.lock().map_err(|_| poisoned())?;
        if !stream.group_created || stream.last_delivered == (0, 0) {
            return Ok(0);
        }
        // The first entry to keep: the oldest pending one, else the one after the last delivered.
        let keep_from = match stream.pending.keys().next() {
            Some(oldest) => *oldest,
            None => (stream.last_delivered.0, stream.last_delivered.1 + 1),
        };
        let kept = stream.entries.split_off(&keep_from);
        let removed = stream.entries.len() as u64;
        stream.entries = kept;
        Ok(removed)
    }
}
