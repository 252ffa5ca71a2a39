//! [`FixStore`] on Redis: locks taken, renewed and released by Lua scripts that act only for the
//! holder's fencing token, the journal as a list of JSON lines, active fixes as a set.

use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisStateStore, unavailable};
use crate::record::journal::JournalEntry;
use crate::state::StateError;
use crate::state::fixes::FixStore;

/// KEYS: lock, fence. ARGV: lease ms. Takes the lock with a new fencing token if it is free.
const ACQUIRE_LOCK: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
"#;

/// KEYS: lock. ARGV: token, lease ms (0 = release). Acts only while `token` holds the lock.
const RENEW_OR_RELEASE_LOCK: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) == 0 then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"#;

static ACQUIRE_LOCK_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(ACQUIRE_LOCK));
static RENEW_OR_RELEASE_LOCK_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(RENEW_OR_RELEASE_LOCK));

#[async_trait]
impl FixStore for RedisStateStore {
    async fn acquire_lock(
        &self,
        action: &str,
        key: &str,
        lease: Duration,
    ) -> Result<Option<u64>, StateError> {
        let mut conn = self.conn.clone();
        let token: i64 = ACQUIRE_LOCK_SCRIPT
            .key(self.keys.lock(action, key))
            .key(self.keys.lock_fence())
            .arg(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(token).ok())
    }
    async fn renew_lock(
        &self,
        action: &str,
        key: &str,
        token: u64,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let mut conn = self.conn.clone();
        let held: i64 = RENEW_OR_RELEASE_LOCK_SCRIPT
            .key(self.keys.lock(action, key))
            .arg(token)
            .arg(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(held == 1)
    }
    async fn release_lock(&self, action: &str, key: &str, token: u64) -> Result<bool, StateError> {
        let mut conn = self.conn.clone();
        let held: i64 = RENEW_OR_RELEASE_LOCK_SCRIPT
            .key(self.keys.lock(action, key))
            .arg(token)
            .arg(0)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(held == 1)
    }
    async fn append_journal(&self, incident: &str, entry: &JournalEntry) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.journal(incident);
        let line = serde_json::to_string(entry).map_err(|e| StateError::Corrupt {
            key: key.clone(),
            value: e.to_string(),
        })?;
        let _: i64 = conn.rpush(&key, line).await.map_err(unavailable)?;
        Ok(())
    }
    async fn journal(&self, incident: &str) -> Result<Vec<JournalEntry>, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.journal(incident);
        let lines: Vec<String> = conn.lrange(&key, 0, -1).await.map_err(unavailable)?;
        lines
            .iter()
            .map(|line| {
                serde_json::from_str(line).map_err(|e| StateError::Corrupt {
                    key: key.clone(),
                    value: e.to_string(),
                })
            })
            .collect()
    }
    async fn set_fix_active(&self, fix: &str, active: bool) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.active_fixes();
        let _: i64 = if active {
            conn.sadd(&key, fix).await
        } else {
            conn.srem(&key, fix).await
        }
        .map_err(unavailable)?;
        Ok(())
    }
    async fn active_fixes(&self) -> Result<Vec<String>, StateError> {
        let mut conn = self.conn.clone();
        let mut fixes: Vec<String> = conn
            .smembers(self.keys.active_fixes())
            .await
            .map_err(unavailable)?;
        fixes.sort();
        Ok(fixes)
    }
}
