//! Trimming `rootfix:alerts` behind its consumer group (for [`AlertStream::trim_alerts`]): one Lua
//! script reads the group's oldest pending entry (XPENDING) and last delivered id (XINFO GROUPS)
//! and trims with an exact `XTRIM MINID` in the same step, so no entry can be delivered or
//! acknowledged between the read and the trim.
//!
//! [`AlertStream::trim_alerts`]: crate::state::AlertStream::trim_alerts

use redis::Script;

use super::{RedisStateStore, unavailable};
use crate::state::StateError;
use crate::state::stream::CONSUMER_GROUP;

/// KEYS: stream. ARGV: group. Trims every entry before the oldest pending one; with nothing
/// pending, every entry up to the last delivered one (its id's sequence plus one as MINID).
/// Nothing without the group (its last delivered id is unknown: every entry may be undelivered).
const TRIM_ALERTS: &str = r#"
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if type(groups) ~= 'table' or groups.err then return 0 end
local last = nil
for _, g in ipairs(groups) do
  local name, delivered = nil, nil
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
  end
  if name == ARGV[1] then last = delivered end
end
if not last or last == '0-0' then return 0 end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local minid
if tonumber(pending[1]) > 0 then
  minid = pending[2]
else
  local ms, seq = string.match(last, '^(%d+)-(%d+)$')
  if not ms then return 0 end
  if #seq > 12 then
    minid = last
  else
    minid = ms .. '-' .. string.format('%d', tonumber(seq) + 1)
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', '=', minid)
"#;

static TRIM_ALERTS_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(TRIM_ALERTS));

impl RedisStateStore {
    pub(super) async fn trim_alert_stream(&self) -> Result<u64, StateError> {
        let mut conn = self.conn.clone();
        let removed: u64 = TRIM_ALERTS_SCRIPT
            .key(self.keys.alerts_stream())
            .arg(CONSUMER_GROUP)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(removed)
    }
}
