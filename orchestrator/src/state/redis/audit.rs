//! [`AuditStore`] on Redis: the kill switch as one JSON string, the audit trail as a stream capped
//! at [`AUDIT_CAP`] entries (XADD MAXLEN ~) and trimmed by its events' age (XTRIM MINID).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;

use super::{RedisStateStore, unavailable};
use crate::record::audit::{AUDIT_CAP, AuditEvent, KillSwitch};
use crate::state::StateError;
use crate::state::audit::AuditStore;

#[async_trait]
impl AuditStore for RedisStateStore {
    async fn killswitch(&self) -> Result<Option<KillSwitch>, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.killswitch();
        let raw: Option<String> = conn.get(&key).await.map_err(unavailable)?;
        raw.map(|r| {
            serde_json::from_str(&r).map_err(|e| StateError::Corrupt {
                key: key.clone(),
                value: e.to_string(),
            })
        })
        .transpose()
    }
    async fn set_killswitch(&self, state: Option<&KillSwitch>) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.killswitch();
        match state {
            Some(k) => {
                let json = serde_json::to_string(k).map_err(|e| StateError::Corrupt {
                    key: key.clone(),
                    value: e.to_string(),
                })?;
                let _: () = conn.set(&key, json).await.map_err(unavailable)?;
            }
            None => {
                let _: i64 = conn.del(&key).await.map_err(unavailable)?;
            }
        }
        Ok(())
    }
    async fn use_once(&self, what: &str, ttl: std::time::Duration) -> Result<bool, StateError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keys.once(what))
            .arg("1")
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.audit();
        let json = serde_json::to_string(event).map_err(|e| StateError::Corrupt {
            key: key.clone(),
            value: e.to_string(),
        })?;
        let _: String = redis::cmd("XADD")
            .arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(AUDIT_CAP)
            .arg("*")
            .arg("event")
            .arg(json)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
    async fn trim_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<u64, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.audit();
        // The oldest entries, in pages, up to the first whose event is not older than `before`
        // (or `limit` of them); those are trimmed with one exact XTRIM MINID past the last of
        // them. Appends go to the other end, so nothing newer can be taken.
        let mut last_old: Option<String> = None;
        let mut scanned = 0usize;
        let mut start = "-".to_string();
        'pages: while scanned < limit {
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(&key)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg((limit - scanned).min(500))
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let Some(last) = reply.ids.last() else {
                break;
            };
            start = format!("({}", last.id);
            for id in &reply.ids {
                let json: String = id.get("event").unwrap_or_default();
                if serde_json::from_str::<AuditEvent>(&json).is_ok_and(|e| e.at >= before) {
                    break 'pages;
                }
                last_old = Some(id.id.clone());
                scanned += 1;
            }
        }
        let Some(last_old) = last_old else {
            return Ok(0);
        };
        let removed: u64 = redis::cmd("XTRIM")
            .arg(&key)
            .arg("MINID")
            .arg("=")
            .arg(next_id(&last_old))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(removed)
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.audit();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        reply
            .ids
            .iter()
            .map(|id| {
                let json: String = id.get("event").unwrap_or_default();
                serde_json::from_str(&json).map_err(|e| StateError::Corrupt {
                    key: key.clone(),
                    value: e.to_string(),
                })
            })
            .collect()
    }
}

/// The stream id after `id` (`<ms>-<seq + 1>`).
fn next_id(id: &str) -> String {
    match id
        .split_once('-')
        .and_then(|(ms, seq)| Some((ms, seq.parse::<u64>().ok()?)))
    {
        Some((ms, seq)) => format!("{ms}-{}", seq.saturating_add(1)),
        None => id.to_string(),
    }
}
