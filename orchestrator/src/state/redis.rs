//! The production [`StateStore`] on Redis: a multiplexed `ConnectionManager` (reconnects by
//! itself), and a Lua script wherever a read-modify-write must be atomic across replicas.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{AsyncCommands, Script};

use super::keys::{Keys, PruneValue, prune_time};
use super::{
    CONSUMER_GROUP, CreateOutcome, IncidentPage, IncidentPager, NodeStats, PruneEntry, PruneGate,
    PruneUpdate, SaveOutcome, StateError, StateStore, StreamEntry, StreamStats, Verdict, prune_expiry_cutoff,
};
use crate::alert::Alert;
use crate::model::playbook::PrunePolicy;
use crate::record::approval::{Approval, DecideOutcome};
use crate::record::audit::{AUDIT_CAP, AuditEvent, KillSwitch};
use crate::record::incident::{Incident, IncidentFilter, IncidentState};
use crate::record::journal::JournalEntry;
use crate::record::outcome::Outcome;
use crate::record::stage::{Stage, StageChange, StageEntry, StageState};

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

/// KEYS: incident, open slot, incidents zset, state set. ARGV: id, record, created ms, open (1|0),
/// state. Creates the incident and claims the fingerprint's open slot, or says why not.
const CREATE_INCIDENT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {'id-exists'} end
if ARGV[4] == '1' then
  local current = redis.call('GET', KEYS[2])
  if current then return {'open-exists', current} end
  redis.call('SET', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[1], 'version', 1, 'record', ARGV[2], 'state', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return {'created'}
"#;

/// KEYS: incident, open slot. ARGV: expected version, record, state, id, open (1|0), state-set key
/// prefix. Saves only if the version is still the expected one; keeps the state sets and the open
/// slot in step.
const SAVE_INCIDENT: &str = r#"
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return {'missing'} end
if tonumber(version) ~= tonumber(ARGV[1]) then return {'conflict', version} end
local previous = redis.call('HGET', KEYS[1], 'state')
redis.call('HSET', KEYS[1], 'version', tonumber(version) + 1, 'record', ARGV[2], 'state', ARGV[3])
if previous ~= ARGV[3] then
  if previous then redis.call('SREM', ARGV[6] .. previous, ARGV[4]) end
  redis.call('SADD', ARGV[6] .. ARGV[3], ARGV[4])
end
if ARGV[5] == '0' and redis.call('GET', KEYS[2]) == ARGV[4] then
  redis.call('DEL', KEYS[2])
end
return {'saved', tostring(tonumber(version) + 1)}
"#;

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

/// KEYS: stage, history, index. ARGV: expected stage ('' = none), state JSON, change JSON ('' =
/// none), index member. Writes only while the stored stage is the expected one.
const CHANGE_STAGE: &str = r#"
local raw = redis.call('GET', KEYS[1])
local current = ''
if raw then current = cjson.decode(raw)['stage'] end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[3]) end
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

/// KEYS: leader. ARGV: holder, lease ms.
const TRY_LEAD: &str = r#"
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

static CHANGE_STAGE_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(CHANGE_STAGE));
static CREATE_APPROVAL_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(CREATE_APPROVAL));
static DECIDE_APPROVAL_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(DECIDE_APPROVAL));
static TAKE_RATE_SLOT_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(TAKE_RATE_SLOT));
static TAKE_RUN_SLOT_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(TAKE_RUN_SLOT));
static TRY_LEAD_SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(TRY_LEAD));

fn to_json<T: serde::Serialize>(key: &str, value: &T) -> Result<String, StateError> {
    serde_json::to_string(value).map_err(|e| StateError::Corrupt {
        key: key.to_string(),
        value: e.to_string(),
    })
}

fn from_json<T: serde::de::DeserializeOwned>(key: &str, raw: &str) -> Result<T, StateError> {
    serde_json::from_str(raw).map_err(|e| StateError::Corrupt {
        key: key.to_string(),
        value: format!("{e}: {raw}"),
    })
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn span_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub struct RedisStateStore {
    acquire_script: Script,
    renew_script: Script,
    conn: ConnectionManager,
    /// A second connection for blocking reads (XREADGROUP BLOCK), which would hold up every other
    /// command on a shared multiplexed connection.
    blocking: ConnectionManager,
    create_script: Script,
    save_script: Script,
    keys: Keys,
    gate_script: Script,
    verdict_script: Script,
}

fn unavailable(e: redis::RedisError) -> StateError {
    StateError::Unavailable(e.to_string())
}

impl RedisStateStore {
    /// Connects to `url` (`redis://host:port/db`); keys get `prefix` (empty in production).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StateError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(unavailable)?;
        let blocking = ConnectionManager::new_with_config(
            client,
            config.set_response_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(unavailable)?;
        Ok(Self {
            acquire_script: Script::new(ACQUIRE_LOCK),
            renew_script: Script::new(RENEW_OR_RELEASE_LOCK),
            conn,
            blocking,
            create_script: Script::new(CREATE_INCIDENT),
            save_script: Script::new(SAVE_INCIDENT),
            keys: Keys::new(prefix),
            gate_script: Script::new(PRUNE_GATE),
            verdict_script: Script::new(RECORD_VERDICT),
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

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
        let reply: Option<StreamReadReply> = cmd.query_async(conn).await.map_err(unavailable)?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|id| stream_entry(&id))
            .collect())
    }

    /// A clone of the multiplexed connection, for modules that own other parts of the schema.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

fn parse_u32(key: &str, s: &str) -> Result<u32, StateError> {
    s.parse().map_err(|_| StateError::Corrupt {
        key: key.to_string(),
        value: s.to_string(),
    })
}

#[async_trait]
impl StateStore for RedisStateStore {
    async fn ping(&self) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn prune_gate(
        &self,
        service: &str,
        node: &str,
        policy: &PrunePolicy,
        now: DateTime<Utc>,
    ) -> Result<PruneGate, StateError> {
        let mut conn = self.conn.clone();
        let prune = self.keys.prune(service);
        let reply: Vec<String> = self
            .gate_script
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
        let reply: (String, i64) = self
            .verdict_script
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
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(self.keys.alerts_stream())
                .arg(CONSUMER_GROUP)
                .arg(consumer)
                .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
                .arg(&cursor)
                .arg("COUNT")
                .arg(count.saturating_sub(out.len()).max(1))
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
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

    async fn open_incident(&self, fingerprint: &str) -> Result<Option<Incident>, StateError> {
        let mut conn = self.conn.clone();
        let id: Option<String> = conn
            .get(self.keys.incident_open(fingerprint))
            .await
            .map_err(unavailable)?;
        match id {
            None => Ok(None),
            Some(id) => self.incident(&id).await,
        }
    }

    async fn incident(&self, id: &str) -> Result<Option<Incident>, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.incident(id);
        let (version, record): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(&key)
            .arg("version")
            .arg("record")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match (version, record) {
            (Some(version), Some(record)) => decode(&key, &record, version).map(Some),
            _ => Ok(None),
        }
    }

    async fn create_incident(&self, incident: &Incident) -> Result<CreateOutcome, StateError> {
        let mut conn = self.conn.clone();
        let mut stored = incident.clone();
        stored.version = 1;
        let key = self.keys.incident(&incident.id);
        let record = encode(&key, &stored)?;
        let reply: Vec<String> = self
            .create_script
            .key(&key)
            .key(self.keys.incident_open(&incident.fingerprint))
            .key(self.keys.incidents())
            .key(self.keys.incidents_in_state(incident.state.as_str()))
            .arg(&incident.id)
            .arg(record)
            .arg(incident.created_at.timestamp_millis())
            .arg(if incident.state.is_open() { "1" } else { "0" })
            .arg(incident.state.as_str())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match reply.as_slice() {
            [k] if k == "created" => Ok(CreateOutcome::Created),
            [k] if k == "id-exists" => Ok(CreateOutcome::IdExists),
            [k, id] if k == "open-exists" => Ok(CreateOutcome::OpenExists(id.clone())),
            other => Err(StateError::Corrupt {
                key,
                value: other.join(" "),
            }),
        }
    }

    async fn save_incident(&self, incident: &mut Incident) -> Result<SaveOutcome, StateError> {
        let mut conn = self.conn.clone();
        let key = self.keys.incident(&incident.id);
        let mut stored = incident.clone();
        stored.version += 1;
        let record = encode(&key, &stored)?;
        let reply: Vec<String> = self
            .save_script
            .key(&key)
            .key(self.keys.incident_open(&incident.fingerprint))
            .arg(incident.version)
            .arg(record)
            .arg(incident.state.as_str())
            .arg(&incident.id)
            .arg(if incident.state.is_open() { "1" } else { "0" })
            .arg(self.keys.incidents_in_state(""))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match reply.first().map(String::as_str) {
            Some("saved") => {
                incident.version = stored.version;
                Ok(SaveOutcome::Saved)
            }
            Some("conflict") => Ok(SaveOutcome::Conflict),
            Some("missing") => Ok(SaveOutcome::Missing),
            _ => Err(StateError::Corrupt {
                key,
                value: reply.join(" "),
            }),
        }
    }

    async fn list_incidents(
        &self,
        filter: &IncidentFilter,
        offset: usize,
        limit: usize,
    ) -> Result<IncidentPage, StateError> {
        let mut conn = self.conn.clone();
        let mut pager = IncidentPager::new(filter, offset, limit);
        let mut start = 0isize;
        const CHUNK: isize = 256;
        loop {
            let ids: Vec<String> = conn
                .zrevrange(self.keys.incidents(), start, start + CHUNK - 1)
                .await
                .map_err(unavailable)?;
            if ids.is_empty() {
                return Ok(pager.finish());
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HMGET")
                    .arg(self.keys.incident(id))
                    .arg("version")
                    .arg("record");
            }
            let rows: Vec<(Option<u64>, Option<String>)> =
                pipe.query_async(&mut conn).await.map_err(unavailable)?;
            for (id, row) in ids.iter().zip(rows) {
                let (Some(version), Some(record)) = row else {
                    continue;
                };
                if let Some(page) = pager.offer(decode(&self.keys.incident(id), &record, version)?) {
                    return Ok(page);
                }
            }
            start += CHUNK;
        }
    }

    async fn incident_counts(&self) -> Result<BTreeMap<IncidentState, u64>, StateError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for state in IncidentState::ALL {
            pipe.scard(self.keys.incidents_in_state(state.as_str()));
        }
        let counts: Vec<u64> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(IncidentState::ALL.into_iter().zip(counts).collect())
    }

    async fn acquire_lock(
        &self,
        action: &str,
        key: &str,
        lease: Duration,
    ) -> Result<Option<u64>, StateError> {
        let mut conn = self.conn.clone();
        let token: i64 = self
            .acquire_script
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
        let held: i64 = self
            .renew_script
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
        let held: i64 = self
            .renew_script
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

fn decode(key: &str, record: &str, version: u64) -> Result<Incident, StateError> {
    let mut incident: Incident = serde_json::from_str(record).map_err(|e| StateError::Corrupt {
        key: key.to_string(),
        value: e.to_string(),
    })?;
    incident.version = version;
    Ok(incident)
}

fn encode(key: &str, incident: &Incident) -> Result<String, StateError> {
    serde_json::to_string(incident).map_err(|e| StateError::Corrupt {
        key: key.to_string(),
        value: e.to_string(),
    })
}
