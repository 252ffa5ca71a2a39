//! [`LeaderStore`] on Redis: `rootfix:leader` set with a lease by a script that only the current
//! holder (or anyone, once it lapsed) gets through.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{RedisStateStore, span_ms, unavailable};
use crate::state::StateError;
use crate::state::leader::LeaderStore;

/// KEYS: leader. ARGV: holder, lease ms.
const TRY_LEAD: &str = r#"
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

static TRY_LEAD_SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(TRY_LEAD));

#[async_trait]
impl LeaderStore for RedisStateStore {
    async fn try_lead(&self, holder: &str, lease: Duration) -> Result<bool, StateError> {
        let mut conn = self.conn.clone();
        let led: i64 = TRY_LEAD_SCRIPT
            .key(self.keys.leader())
            .arg(holder)
            .arg(span_ms(lease).max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(led == 1)
    }
}
