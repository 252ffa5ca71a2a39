//! [`SlotStore`] on Redis: a sorted set per scope for each limit, the rate window as a
//! sliding-window log of start times, the running slots by lease expiry; both taken by Lua scripts.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};

use super::{RedisStateStore, millis, span_ms, unavailable};
use crate::state::StateError;
use crate::state::slots::SlotStore;

/// KEYS: rate. ARGV: fix, now ms, cutoff ms, limit, ttl ms. A sliding-window log.
const TAKE_RATE_SLOT: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"#;

/// KEYS: running. ARGV: fix, now ms, until ms, limit.
const TAKE_RUN_SLOT: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"#;

static TAKE_RATE_SLOT_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(TAKE_RATE_SLOT));
static TAKE_RUN_SLOT_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(TAKE_RUN_SLOT));

#[async_trait]
impl SlotStore for RedisStateStore {
    async fn take_rate_slot(
        &self,
        scope: &str,
        fix: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<bool, StateError> {
        let mut conn = self.conn.clone();
        let taken: i64 = TAKE_RATE_SLOT_SCRIPT
            .key(self.keys.rate(scope))
            .arg(fix)
            .arg(millis(now))
            .arg(millis(now).saturating_sub(span_ms(window)))
            .arg(limit)
            .arg(span_ms(window).max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(taken == 1)
    }
    async fn release_rate_slot(&self, scope: &str, fix: &str) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.zrem(self.keys.rate(scope), fix).await.map_err(unavailable)?;
        Ok(())
    }
    async fn rate_count(&self, scope: &str, now: DateTime<Utc>, window: Duration) -> Result<u32, StateError> {
        let mut conn = self.conn.clone();
        let cutoff = millis(now).saturating_sub(span_ms(window));
        let n: u64 = conn
            .zcount(self.keys.rate(scope), format!("({cutoff}"), millis(now))
            .await
            .map_err(unavailable)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
    async fn take_run_slot(
        &self,
        scope: &str,
        fix: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<bool, StateError> {
        let mut conn = self.conn.clone();
        let taken: i64 = TAKE_RUN_SLOT_SCRIPT
            .key(self.keys.running(scope))
            .arg(fix)
            .arg(millis(now))
            .arg(millis(now).saturating_add(span_ms(lease)))
            .arg(limit)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(taken == 1)
    }
    async fn release_run_slot(&self, scope: &str, fix: &str) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn
            .zrem(self.keys.running(scope), fix)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
    async fn running_count(&self, scope: &str, now: DateTime<Utc>) -> Result<u32, StateError> {
        let mut conn = self.conn.clone();
        let n: u64 = conn
            .zcount(self.keys.running(scope), format!("({}", millis(now)), "+inf")
            .await
            .map_err(unavailable)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
