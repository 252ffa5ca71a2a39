//! [`AuditStore`] on Redis: the kill switch as one JSON string, the audit trail as a stream capped
//! at [`AUDIT_CAP`] entries (XADD MAXLEN ~).

use async_trait::async_trait;
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
