//! [`PruneStore`] on Redis: the prune gate and the verdict are Lua scripts over the service's
//! three hashes (`diag:prune`, `diag:streak`, `diag:stats`), so concurrent walkers on any replica
//! neither lose nor double a count.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};

use super::{RedisStateStore, unavailable};
use crate::model::playbook::PrunePolicy;
use crate::state::StateError;
use crate::state::keys::{PruneValue, prune_time};
use crate::state::prune::{
    NodeStats, PruneEntry, PruneGate, PruneStore, PruneUpdate, Verdict, prune_expiry_cutoff,
};

/// KEYS: prune, streak, stats. ARGV: node, expiry cutoff, reprobe_every.
/// Returns {"evaluate"} | {"reprobe"} | {"skip", pruned_at, skipped} | {"corrupt", value}.
const PRUNE_GATE: &str = r#"
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {'evaluate'} end
local pruned_at, skipped = string.match(raw, '^(.*):skipped:(%d+)$')
if not pruned_at then return {'corrupt', raw} end
if pruned_at < ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return {'evaluate'}
end
skipped = tonumber(skipped) + 1
if skipped >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], pruned_at .. ':skipped:0')
  redis.call('HINCRBY', KEYS[3], ARGV[1] .. ':reprobe', 1)
  return {'reprobe'}
end
redis.call('HSET', KEYS[1], ARGV[1], pruned_at .. ':skipped:' .. skipped)
redis.call('HINCRBY', KEYS[3], ARGV[1] .. ':skip', 1)
return {'skip', pruned_at, tostring(skipped)}
"#;

/// KEYS: prune, streak, stats. ARGV: node, verdict (hit|miss), after, now.
/// Returns {"cleared", 0|1} | {"streak", n} | {"pruned", n}.
const RECORD_VERDICT: &str = r#"
if ARGV[2] == 'hit' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  local was = redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HINCRBY', KEYS[3], ARGV[1] .. ':hit', 1)
  return {'cleared', was}
end
local misses = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HINCRBY', KEYS[3], ARGV[1] .. ':miss', 1)
if misses >= tonumber(ARGV[3]) and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4] .. ':skipped:0')
  return {'pruned', misses}
end
return {'streak', misses}
"#;

static PRUNE_GATE_SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(PRUNE_GATE));
static RECORD_VERDICT_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(RECORD_VERDICT));

fn parse_u32(key: &str, s: &str) -> Result<u32, StateError> {
    s.parse().map_err(|_| StateError::Corrupt {
        key: key.to_string(),
        value: s.to_string(),
    })
}

#[async_trait]
impl PruneStore for RedisStateStore {
    async fn prune_gate(
        &self,
        service: &str,
        node: &str,
        policy: &PrunePolicy,
        now: DateTime<Utc>,
    ) -> Result<PruneGate, StateError> {
        let mut conn = self.conn.clone();
        let prune = self.keys.prune(service);
        let reply: Vec<String> = PRUNE_GATE_SCRIPT
            .key(&prune)
            .key(self.keys.streak(service))
            .key(self.keys.stats(service))
            .arg(node)
            .arg(prune_expiry_cutoff(policy, now))
            .arg(policy.reprobe_every)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match reply.as_slice() {
            [kind] if kind == "evaluate" => Ok(PruneGate::Evaluate),
            [kind] if kind == "reprobe" => Ok(PruneGate::Reprobe),
            [kind, pruned_at, skipped] if kind == "skip" => Ok(PruneGate::Skip {
                pruned_at: pruned_at.clone(),
                skipped: parse_u32(&prune, skipped)?,
            }),
            [_, value] => Err(StateError::Corrupt {
                key: prune,
                value: value.clone(),
            }),
            other => Err(StateError::Corrupt {
                key: prune,
                value: other.join(" "),
            }),
        }
    }
    async fn record_verdict(
        &self,
        service: &str,
        node: &str,
        verdict: Verdict,
        policy: &PrunePolicy,
        now: DateTime<Utc>,
    ) -> Result<PruneUpdate, StateError> {
        let mut conn = self.conn.clone();
        let streak = self.keys.streak(service);
        let reply: (String, i64) = RECORD_VERDICT_SCRIPT
            .key(self.keys.prune(service))
            .key(&streak)
            .key(self.keys.stats(service))
            .arg(node)
            .arg(match verdict {
                Verdict::Hit => "hit",
                Verdict::Miss => "miss",
            })
            .arg(policy.after)
            .arg(prune_time(now))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let n = u32::try_from(reply.1).unwrap_or(u32::MAX);
        match reply.0.as_str() {
            "cleared" => Ok(PruneUpdate::Cleared {
                was_pruned: reply.1 == 1,
            }),
            "pruned" => Ok(PruneUpdate::Pruned { misses: n }),
            "streak" => Ok(PruneUpdate::Streak { misses: n }),
            other => Err(StateError::Corrupt {
                key: streak,
                value: other.to_string(),
            }),
        }
    }
    async fn pruned_nodes(&self, service: &str) -> Result<Vec<PruneEntry>, StateError> {
        let mut conn = self.conn.clone();
        let prune = self.keys.prune(service);
        let all: Vec<(String, String)> = conn.hgetall(&prune).await.map_err(unavailable)?;
        let mut entries = Vec::with_capacity(all.len());
        for (node, raw) in all {
            let value = PruneValue::parse(&raw).ok_or_else(|| StateError::Corrupt {
                key: prune.clone(),
                value: raw.clone(),
            })?;
            entries.push(PruneEntry { node, value });
        }
        entries.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(entries)
    }
    async fn clear_prune(&self, service: &str, node: &str) -> Result<bool, StateError> {
        let mut conn = self.conn.clone();
        let (removed, _): (i64, i64) = redis::pipe()
            .atomic()
            .hdel(self.keys.prune(service), node)
            .hdel(self.keys.streak(service), node)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(removed == 1)
    }
    async fn miss_streak(&self, service: &str, node: &str) -> Result<u32, StateError> {
        let mut conn = self.conn.clone();
        let v: Option<u32> = conn
            .hget(self.keys.streak(service), node)
            .await
            .map_err(unavailable)?;
        Ok(v.unwrap_or(0))
    }
    async fn node_stats(&self, service: &str, node: &str) -> Result<NodeStats, StateError> {
        let mut conn = self.conn.clone();
        let fields = ["hit", "miss", "skip", "reprobe"].map(|k| format!("{node}:{k}"));
        let values: Vec<Option<u64>> = redis::cmd("HMGET")
            .arg(self.keys.stats(service))
            .arg(&fields)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let at = |i: usize| values.get(i).copied().flatten().unwrap_or(0);
        Ok(NodeStats {
            hits: at(0),
            misses: at(1),
            skips: at(2),
            reprobes: at(3),
        })
    }
}
