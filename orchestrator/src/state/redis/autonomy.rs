//! [`AutonomyStore`] on Redis: stages changed by a compare-and-set script that appends the history
//! in the same step (the newest [`STAGE_HISTORY_KEPT`] kept), outcomes in a sorted set by time (the
//! newest [`OUTCOMES_KEPT`] kept), approvals created and decided by scripts
//! (decided only while pending).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};

use super::{RedisStateStore, from_json, millis, span_ms, to_json, unavailable};
use crate::record::approval::{Approval, DecideOutcome};
use crate::record::outcome::Outcome;
use crate::record::stage::{Stage, StageChange, StageEntry, StageState};
use crate::state::StateError;
use crate::state::autonomy::{AutonomyStore, OUTCOMES_KEPT, STAGE_HISTORY_KEPT};

/// KEYS: stage, history, index. ARGV: expected stage ('' = none), state JSON, change JSON ('' =
/// none), index member, history kept. Writes only while the stored stage is the expected one.
const CHANGE_STAGE: &str = r#"
local raw = redis.call('GET', KEYS[1])
local current = ''
if raw then current = cjson.decode(raw)['stage'] end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
end
redis.call('SADD', KEYS[3], ARGV[4])
return 1
"#;

/// KEYS: approval, index, pending. ARGV: JSON, created ms, id.
const CREATE_APPROVAL: &str = r#"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return 1
"#;

/// KEYS: approval, pending. ARGV: decided JSON, id. Decides only a pending approval.
const DECIDE_APPROVAL: &str = r#"
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing'} end
if cjson.decode(raw)['state'] ~= 'pending' then return {'decided', raw} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return {'ok'}
"#;

static CHANGE_STAGE_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(CHANGE_STAGE));
static CREATE_APPROVAL_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(CREATE_APPROVAL));
static DECIDE_APPROVAL_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(DECIDE_APPROVAL));

#[async_trait]
impl AutonomyStore for RedisStateStore {
    async fn stage(&self, action: &str, scope: &str) -> Result<Option<StageState>, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.stage(action, scope);
        let raw: Option<String> = conn.get(&key).await.map_err(unavailable)?;
        raw.map(|r| from_json(&key, &r)).transpose()
    }
    async fn change_stage(
        &self,
        action: &str,
        scope: &str,
        expected: Option<Stage>,
        state: &StageState,
        change: Option<&StageChange>,
    ) -> Result<bool, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.stage(action, scope);
        let change = change.map(|c| to_json(&key, c)).transpose()?.unwrap_or_default();
        let done: i64 = CHANGE_STAGE_SCRIPT
            .key(&key)
            .key(self.keys.stage_history(action, scope))
            .key(self.keys.stages())
            .arg(expected.map_or("", Stage::as_str))
            .arg(to_json(&key, state)?)
            .arg(change)
            .arg(format!("{action}/{scope}"))
            .arg(STAGE_HISTORY_KEPT)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(done == 1)
    }
    async fn stage_history(&self, action: &str, scope: &str) -> Result<Vec<StageChange>, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.stage_history(action, scope);
        let raw: Vec<String> = conn.lrange(&key, 0, -1).await.map_err(unavailable)?;
        raw.iter().map(|r| from_json(&key, r)).collect()
    }
    async fn stages(&self) -> Result<Vec<StageEntry>, StateError> {
        let mut conn = self.conn.clone();
        let mut members: Vec<String> = conn.smembers(self.keys.stages()).await.map_err(unavailable)?;
        members.sort();
        let mut out = Vec::new();
        for member in members {
            let Some((action, scope)) = member.split_once('/') else {
                continue;
            };
            if let Some(state) = self.stage(action, scope).await? {
                out.push(StageEntry {
                    action: action.to_string(),
                    scope: scope.to_string(),
                    state,
                });
            }
        }
        Ok(out)
    }
    async fn record_outcome(
        &self,
        action: &str,
        scope: &str,
        outcome: &Outcome,
        retain: Duration,
    ) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.outcomes(action, scope);
        let json = to_json(&key, outcome)?;
        let cutoff = millis(outcome.at).saturating_sub(span_ms(retain));
        let _: () = redis::pipe()
            .atomic()
            .zadd(&key, json, millis(outcome.at))
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(format!("({cutoff}"))
            .ignore()
            .cmd("ZREMRANGEBYRANK")
            .arg(&key)
            .arg(0)
            .arg(-(OUTCOMES_KEPT as i64) - 1)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
    async fn outcomes(
        &self,
        action: &str,
        scope: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.outcomes(action, scope);
        let raw: Vec<String> = conn
            .zrangebyscore(&key, millis(since), "+inf")
            .await
            .map_err(unavailable)?;
        raw.iter().map(|r| from_json(&key, r)).collect()
    }
    async fn create_approval(&self, approval: &Approval) -> Result<bool, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.approval(&approval.id);
        let created: i64 = CREATE_APPROVAL_SCRIPT
            .key(&key)
            .key(self.keys.approvals())
            .key(self.keys.approvals_pending())
            .arg(to_json(&key, approval)?)
            .arg(millis(approval.created_at))
            .arg(&approval.id)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(created == 1)
    }
    async fn approval(&self, id: &str) -> Result<Option<Approval>, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.approval(id);
        let raw: Option<String> = conn.get(&key).await.map_err(unavailable)?;
        raw.map(|r| from_json(&key, &r)).transpose()
    }
    async fn decide_approval(&self, decided: &Approval) -> Result<DecideOutcome, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.approval(&decided.id);
        let reply: Vec<String> = DECIDE_APPROVAL_SCRIPT
            .key(&key)
            .key(self.keys.approvals_pending())
            .arg(to_json(&key, decided)?)
            .arg(&decided.id)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match reply.first().map(String::as_str) {
            Some("ok") => Ok(DecideOutcome::Decided),
            Some("missing") => Ok(DecideOutcome::Missing),
            Some("decided") => {
                let raw = reply.get(1).cloned().unwrap_or_default();
                Ok(DecideOutcome::AlreadyDecided(Box::new(from_json(&key, &raw)?)))
            }
            _ => Err(StateError::Corrupt {
                key,
                value: format!("unexpected script reply {reply:?}"),
            }),
        }
    }
    async fn list_approvals(&self, pending_only: bool, limit: usize) -> Result<Vec<Approval>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let index = if pending_only {
            self.keys.approvals_pending()
        } else {
            self.keys.approvals()
        };
        let stop = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
        let ids: Vec<String> = conn.zrevrange(&index, 0, stop).await.map_err(unavailable)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(a) = self.approval(&id).await? {
                out.push(a);
            }
        }
        Ok(out)
    }
}
