//! [`AlertStream`] on Redis: `rootfix:alerts` with XADD (in one atomic pipeline), XREADGROUP
//! (blocking reads on their own connection), XAUTOCLAIM, XACK and XINFO. A read that finds the
//! consumer group gone (NOGROUP: Redis came back without its data) creates it again and reads on.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use tracing::warn;

use super::{RedisStateStore, unavailable, write_outcome_unknown};
use crate::alert::Alert;
use crate::state::StateError;
use crate::state::stream::{
    AlertStream, Appended, CONSUMER_GROUP, StreamEntry, StreamStats, alert_content_id,
};

/// KEYS[1] the stream, KEYS[2..] each alert's `rootfix:seen:` key; ARGV[1] the window (ms, 0:
/// off), ARGV[2] the receive time, ARGV[3..] each alert's JSON. An alert whose seen key exists is
/// skipped (`''` in its place); the others are appended. One script: all or none.
const APPEND_NEW: &str = r"
local window = tonumber(ARGV[1])
local out = {}
for i = 2, #KEYS do
  local fresh = true
  if window > 0 then
    fresh = redis.call('SET', KEYS[i], '1', 'NX', 'PX', window)
  end
  if fresh then
    out[#out + 1] = redis.call('XADD', KEYS[1], '*', 'alert', ARGV[i + 1], 'received_at', ARGV[2])
  else
    out[#out + 1] = ''
  end
end
return out
";
static APPEND_NEW_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(APPEND_NEW));

impl RedisStateStore {
    /// XREADGROUP on the alert stream from `from` (`>` for new entries, an id for the consumer's
    /// own pending ones), blocking up to `block` when given.
    async fn read_group(
        &self,
        conn: &mut ConnectionManager,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
        from: &str,
    ) -> Result<Vec<StreamEntry>, StateError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(CONSUMER_GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(block) = block {
            cmd.arg("BLOCK")
                .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        cmd.arg("STREAMS").arg(self.keys.alerts_stream()).arg(from);
        let reply: Option<StreamReadReply> = match cmd.query_async(conn).await {
            Err(e) if e.code() == Some("NOGROUP") => {
                self.recreate_consumer_group(&e).await?;
                cmd.query_async(conn).await.map_err(unavailable)?
            }
            other => other.map_err(unavailable)?,
        };
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|id| stream_entry(&id))
            .collect())
    }
}

impl RedisStateStore {
    /// Redis answered NOGROUP: it lost the stream or its consumer group (a restart without
    /// persistence, a failover to an empty replica, a FLUSHALL). The group is created again, from
    /// the stream's start, so alerts stored since are read; entries acknowledged before are gone
    /// with the data and cannot be redelivered.
    async fn recreate_consumer_group(&self, e: &redis::RedisError) -> Result<(), StateError> {
        warn!(
            stream = %self.keys.alerts_stream(),
            error = %e,
            "the alert stream's consumer group is gone (Redis lost its data?): creating it again from the stream's start"
        );
        self.ensure_consumer_group().await
    }
}

#[async_trait]
impl AlertStream for RedisStateStore {
    async fn append_alerts(
        &self,
        alerts: &[Alert],
        received_at: DateTime<Utc>,
    ) -> Result<Vec<String>, StateError> {
        let mut conn = self.conn.clone();
        let received = received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let stream = self.keys.alerts_stream();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for alert in alerts {
            let json = serde_json::to_string(alert).map_err(|e| StateError::Corrupt {
                key: stream.clone(),
                value: e.to_string(),
            })?;
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("alert")
                .arg(json)
                .arg("received_at")
                .arg(&received);
        }
        pipe.query_async(&mut conn).await.map_err(unavailable)
    }
    async fn append_new_alerts(
        &self,
        alerts: &[Alert],
        received_at: DateTime<Utc>,
        window: Duration,
    ) -> Result<Appended, StateError> {
        if alerts.is_empty() {
            return Ok(Appended::default());
        }
        let mut conn = self.conn.clone();
        let stream = self.keys.alerts_stream();
        let mut invocation = APPEND_NEW_SCRIPT.prepare_invoke();
        invocation
            .key(&stream)
            .arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX))
            .arg(received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        for alert in alerts {
            let json = serde_json::to_string(alert).map_err(|e| StateError::Corrupt {
                key: stream.clone(),
                value: e.to_string(),
            })?;
            invocation
                .key(self.keys.seen_alert(&alert_content_id(&json)))
                .arg(json);
        }
        let ids: Vec<String> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(write_outcome_unknown)?;
        let duplicates = ids.iter().filter(|id| id.is_empty()).count();
        Ok(Appended {
            ids: ids.into_iter().filter(|id| !id.is_empty()).collect(),
            duplicates,
        })
    }
    async fn ensure_consumer_group(&self) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        let result: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.keys.alerts_stream())
            .arg(CONSUMER_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
    async fn read_alerts(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<StreamEntry>, StateError> {
        let mut conn = self.blocking.clone();
        self.read_group(&mut conn, consumer, count, Some(block), ">")
            .await
    }
    async fn own_pending_alerts(
        &self,
        consumer: &str,
        after: &str,
        count: usize,
    ) -> Result<Vec<StreamEntry>, StateError> {
        let mut conn = self.conn.clone();
        self.read_group(&mut conn, consumer, count, None, after).await
    }
    async fn claim_stale_alerts(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<StreamEntry>, StateError> {
        let mut conn = self.conn.clone();
        let mut cursor = "0-0".to_string();
        let mut out = Vec::new();
        // XAUTOCLAIM scans a bounded number of pending entries per call; follow the cursor.
        for _ in 0..64 {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(self.keys.alerts_stream())
                .arg(CONSUMER_GROUP)
                .arg(consumer)
                .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
                .arg(&cursor)
                .arg("COUNT")
                .arg(count.saturating_sub(out.len()).max(1));
            let reply: StreamAutoClaimReply = match cmd.query_async(&mut conn).await {
                Err(e) if e.code() == Some("NOGROUP") => {
                    self.recreate_consumer_group(&e).await?;
                    cmd.query_async(&mut conn).await.map_err(unavailable)?
                }
                other => other.map_err(unavailable)?,
            };
            out.extend(reply.claimed.iter().map(stream_entry));
            cursor = reply.next_stream_id;
            if cursor == "0-0" || out.len() >= count {
                break;
            }
        }
        Ok(out)
    }
    async fn ack_alert(&self, entry_id: &str) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn
            .xack(self.keys.alerts_stream(), CONSUMER_GROUP, &[entry_id])
            .await
            .map_err(unavailable)?;
        Ok(())
    }
    async fn stream_stats(&self) -> Result<StreamStats, StateError> {
        let mut conn = self.conn.clone();
        let stream = self.keys.alerts_stream();
        let length: u64 = conn.xlen(&stream).await.map_err(unavailable)?;
        let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(&mut conn)
            .await
            .or_else(|e| {
                if e.code() == Some("ERR") {
                    Ok(Vec::new())
                } else {
                    Err(e)
                }
            })
            .map_err(unavailable)?;
        let group = groups.iter().find(|g| {
            g.get("name")
                .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
                .as_deref()
                == Some(CONSUMER_GROUP)
        });
        let field = |name: &str| {
            group
                .and_then(|g| g.get(name))
                .and_then(|v| redis::from_redis_value::<u64>(v.clone()).ok())
                .unwrap_or(0)
        };
        Ok(StreamStats {
            length,
            pending: field("pending"),
            lag: if group.is_some() { field("lag") } else { length },
        })
    }
    async fn trim_alerts(&self) -> Result<u64, StateError> {
        self.trim_alert_stream().await
    }
}

fn stream_entry(id: &StreamId) -> StreamEntry {
    let alert = match id.get::<String>("alert") {
        Some(json) => {
            serde_json::from_str::<Alert>(&json).map_err(|e| format!("stored alert does not parse: {e}"))
        }
        None => Err("entry has no `alert` field".to_string()),
    };
    StreamEntry {
        id: id.id.clone(),
        alert,
        received_at: id
            .get::<String>("received_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
    }
}
