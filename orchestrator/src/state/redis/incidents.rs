//! [`IncidentStore`] on Redis: each incident a hash (`version`, `state`, `record`), created and
//! saved by Lua scripts that keep the fingerprint's open slot, the time index, the state sets and
//! the listing indexes (by state, service and playbook, scored by creation: a filtered listing
//! reads the smallest instead of every incident) in step with it, and the closed index (by when each closed) that retention reads; a closed
//! incident removed by a script that takes its journal, approvals and index entries with it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};

use super::{RedisStateStore, unavailable};
use crate::record::incident::{Incident, IncidentFilter, IncidentState};
use crate::state::StateError;
use crate::state::incidents::{CreateOutcome, IncidentPage, IncidentPager, IncidentStore, SaveOutcome};

/// KEYS: incident, open slot, incidents zset, state set, closed zset, by-state, by-service and
/// by-playbook indexes. ARGV: id, record, created ms, open (1|0), state, closed ms, has service
/// (1|0), has playbook (1|0). Creates the incident and claims the fingerprint's open slot, or
/// says why not; an incident created closed goes into the closed index.
const CREATE_INCIDENT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {'id-exists'} end
if ARGV[4] == '1' then
  local current = redis.call('GET', KEYS[2])
  if current then return {'open-exists', current} end
  redis.call('SET', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1])
end
redis.call('HSET', KEYS[1], 'version', 1, 'record', ARGV[2], 'state', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[3], ARGV[1])
if ARGV[7] == '1' then redis.call('ZADD', KEYS[7], ARGV[3], ARGV[1]) end
if ARGV[8] == '1' then redis.call('ZADD', KEYS[8], ARGV[3], ARGV[1]) end
return {'created'}
"#;

/// KEYS: incident, open slot, last-closed slot, closed zset, by-service and by-playbook
/// indexes. ARGV: expected version, record, state, id, open (1|0), state-set key prefix, closed
/// ms, created ms, by-state key prefix, has service (1|0), has playbook (1|0). The by-state
/// index follows the state; the others are (re)added. A closed incident is (re)scored in the
/// closed index by when it closed; an open one leaves it. Saves only if the version is still the expected one; keeps the
/// state sets, the open slot and the fingerprint's last closed incident in step. Saving a closed
/// incident open again (a flap rejoining it) takes the open slot, or is a conflict when another
/// incident holds it.
const SAVE_INCIDENT: &str = r#"
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return {'missing'} end
if tonumber(version) ~= tonumber(ARGV[1]) then return {'conflict', version} end
if ARGV[5] == '1' then
  local current = redis.call('GET', KEYS[2])
  if current and current ~= ARGV[4] then return {'conflict', version} end
  if not current then redis.call('SET', KEYS[2], ARGV[4]) end
end
local previous = redis.call('HGET', KEYS[1], 'state')
redis.call('HSET', KEYS[1], 'version', tonumber(version) + 1, 'record', ARGV[2], 'state', ARGV[3])
if previous ~= ARGV[3] then
  if previous then
    redis.call('SREM', ARGV[6] .. previous, ARGV[4])
    redis.call('ZREM', ARGV[9] .. previous, ARGV[4])
  end
  redis.call('SADD', ARGV[6] .. ARGV[3], ARGV[4])
end
redis.call('ZADD', ARGV[9] .. ARGV[3], ARGV[8], ARGV[4])
if ARGV[10] == '1' then redis.call('ZADD', KEYS[5], ARGV[8], ARGV[4]) end
if ARGV[11] == '1' then redis.call('ZADD', KEYS[6], ARGV[8], ARGV[4]) end
if ARGV[5] == '0' then
  if redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
  redis.call('SET', KEYS[3], ARGV[4])
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[4])
else
  redis.call('ZREM', KEYS[4], ARGV[4])
end
return {'saved', tostring(tonumber(version) + 1)}
"#;

/// KEYS: incident, incidents zset, closed zset, journal, open slot, last-closed slot, approvals
/// zset, pending approvals zset, by-service and by-playbook indexes. ARGV: id, expected version,
/// state-set key prefix, approval key prefix, by-state key prefix, then the approval ids. Removes a closed incident at the expected version with its
/// journal, its approvals and every index entry naming it.
const REMOVE_INCIDENT: &str = r#"
local version = redis.call('HGET', KEYS[1], 'version')
if not version then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
if tonumber(version) ~= tonumber(ARGV[2]) then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'resolved' and state ~= 'stale' then return 0 end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', ARGV[3] .. state, ARGV[1])
redis.call('ZREM', ARGV[5] .. state, ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
redis.call('ZREM', KEYS[10], ARGV[1])
if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
if redis.call('GET', KEYS[6]) == ARGV[1] then redis.call('DEL', KEYS[6]) end
for i = 6, #ARGV do
  redis.call('DEL', ARGV[4] .. ARGV[i])
  redis.call('ZREM', KEYS[7], ARGV[i])
  redis.call('ZREM', KEYS[8], ARGV[i])
end
return 1
"#;

static REMOVE_INCIDENT_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(REMOVE_INCIDENT));
static CREATE_INCIDENT_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(CREATE_INCIDENT));
static SAVE_INCIDENT_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(SAVE_INCIDENT));

#[async_trait]
impl IncidentStore for RedisStateStore {
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
    async fn last_closed_incident(&self, fingerprint: &str) -> Result<Option<Incident>, StateError> {
        let mut conn = self.conn.clone();
        let id: Option<String> = conn
            .get(self.keys.incident_last(fingerprint))
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
        let reply: Vec<String> = CREATE_INCIDENT_SCRIPT
            .key(&key)
            .key(self.keys.incident_open(&incident.fingerprint))
            .key(self.keys.incidents())
            .key(self.keys.incidents_in_state(incident.state.as_str()))
            .key(self.keys.incidents_closed())
            .key(self.keys.incidents_by("state", incident.state.as_str()))
            .key(self.by_service(incident))
            .key(self.by_playbook(incident))
            .arg(&incident.id)
            .arg(record)
            .arg(incident.created_at.timestamp_millis())
            .arg(if incident.state.is_open() { "1" } else { "0" })
            .arg(incident.state.as_str())
            .arg(incident.closed_at().timestamp_millis())
            .arg(flag(incident.service.is_some()))
            .arg(flag(incident.playbook.is_some()))
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
        let reply: Vec<String> = SAVE_INCIDENT_SCRIPT
            .key(&key)
            .key(self.keys.incident_open(&incident.fingerprint))
            .key(self.keys.incident_last(&incident.fingerprint))
            .key(self.keys.incidents_closed())
            .key(self.by_service(incident))
            .key(self.by_playbook(incident))
            .arg(incident.version)
            .arg(record)
            .arg(incident.state.as_str())
            .arg(&incident.id)
            .arg(if incident.state.is_open() { "1" } else { "0" })
            .arg(self.keys.incidents_in_state(""))
            .arg(incident.closed_at().timestamp_millis())
            .arg(incident.created_at.timestamp_millis())
            .arg(self.keys.incidents_by("state", ""))
            .arg(flag(incident.service.is_some()))
            .arg(flag(incident.playbook.is_some()))
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
        let source = self
            .listing_index(filter)
            .await?
            .unwrap_or_else(|| self.keys.incidents());
        let mut conn = self.conn.clone();
        let mut pager = IncidentPager::new(filter, offset, limit);
        let mut start = 0isize;
        const CHUNK: isize = 256;
        loop {
            let ids: Vec<String> = conn
                .zrevrange(&source, start, start + CHUNK - 1)
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
    async fn closed_incidents_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Incident>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.incidents_closed())
            .arg("-inf")
            .arg(format!("({}", before.timestamp_millis()))
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.incident(&id).await? {
                Some(incident) => out.push(incident),
                // Gone already: drop the dangling index entry.
                None => {
                    let _: i64 = conn
                        .zrem(self.keys.incidents_closed(), &id)
                        .await
                        .map_err(unavailable)?;
                }
            }
        }
        Ok(out)
    }
    async fn remove_incident(&self, incident: &Incident, approvals: &[String]) -> Result<bool, StateError> {
        let mut conn = self.conn.clone();
        let mut invocation = REMOVE_INCIDENT_SCRIPT.prepare_invoke();
        invocation
            .key(self.keys.incident(&incident.id))
            .key(self.keys.incidents())
            .key(self.keys.incidents_closed())
            .key(self.keys.journal(&incident.id))
            .key(self.keys.incident_open(&incident.fingerprint))
            .key(self.keys.incident_last(&incident.fingerprint))
            .key(self.keys.approvals())
            .key(self.keys.approvals_pending())
            .key(self.by_service(incident))
            .key(self.by_playbook(incident))
            .arg(&incident.id)
            .arg(incident.version)
            .arg(self.keys.incidents_in_state(""))
            .arg(self.keys.approval(""))
            .arg(self.keys.incidents_by("state", ""));
        for id in approvals {
            invocation.arg(id);
        }
        let removed: i64 = invocation.invoke_async(&mut conn).await.map_err(unavailable)?;
        Ok(removed == 1)
    }
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

impl RedisStateStore {
    /// The incident's by-service index (a key no incident is in when it has no service).
    fn by_service(&self, incident: &Incident) -> String {
        self.keys
            .incidents_by("service", incident.service.as_deref().unwrap_or(""))
    }

    fn by_playbook(&self, incident: &Incident) -> String {
        self.keys
            .incidents_by("playbook", incident.playbook.as_deref().unwrap_or(""))
    }

    /// The smallest index that holds every incident `filter` can accept, once the indexes are
    /// complete; `None`: read every incident.
    async fn listing_index(&self, filter: &IncidentFilter) -> Result<Option<String>, StateError> {
        let mut candidates = Vec::new();
        if let Some(state) = filter.state {
            candidates.push(self.keys.incidents_by("state", state.as_str()));
        }
        if let Some(service) = &filter.service {
            candidates.push(self.keys.incidents_by("service", service));
        }
        if let Some(playbook) = &filter.playbook {
            candidates.push(self.keys.incidents_by("playbook", playbook));
        }
        if candidates.is_empty() {
            return Ok(None);
        }
        let mut pipe = redis::pipe();
        pipe.exists(self.keys.incidents_indexed())
            .zcard(self.keys.incidents());
        for key in &candidates {
            pipe.zcard(key);
        }
        let mut conn = self.conn.clone();
        let answers: Vec<u64> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        if answers.first() != Some(&1) {
            // Redis came back empty (or from an older copy) after rootfix started: an empty
            // store is complete at once, since every incident stored from now on is indexed.
            if answers.get(1) == Some(&0) {
                let () = conn
                    .set(self.keys.incidents_indexed(), 1)
                    .await
                    .map_err(unavailable)?;
            }
            return Ok(None);
        }
        Ok(candidates
            .into_iter()
            .zip(answers.into_iter().skip(2))
            .min_by_key(|(_, n)| *n)
            .map(|(key, _)| key))
    }

    /// Puts every stored incident into the `incidents_by` indexes, 1,000 at a time, then marks
    /// them complete. A no-op once marked (and at once on an empty store). Scripts index every
    /// incident they create or save, so only incidents stored by an older rootfix need it.
    pub(super) async fn index_incidents(&self) -> Result<u64, StateError> {
        let mut conn = self.conn.clone();
        let marked: bool = conn
            .exists(self.keys.incidents_indexed())
            .await
            .map_err(unavailable)?;
        if marked {
            return Ok(0);
        }
        const BATCH: isize = 1000;
        let mut start = 0isize;
        let mut indexed = 0u64;
        loop {
            let page: Vec<(String, f64)> = conn
                .zrange_withscores(self.keys.incidents(), start, start + BATCH - 1)
                .await
                .map_err(unavailable)?;
            if page.is_empty() {
                break;
            }
            let mut read = redis::pipe();
            for (id, _) in &page {
                read.hget(self.keys.incident(id), "record");
            }
            let records: Vec<Option<String>> = read.query_async(&mut conn).await.map_err(unavailable)?;
            let mut write = redis::pipe();
            for ((id, created), record) in page.iter().zip(records) {
                let Some(record) = record else { continue };
                let key = self.keys.incident(id);
                let incident = decode(&key, &record, 0)?;
                write
                    .zadd(
                        self.keys.incidents_by("state", incident.state.as_str()),
                        id,
                        *created,
                    )
                    .ignore();
                if incident.service.is_some() {
                    write.zadd(self.by_service(&incident), id, *created).ignore();
                }
                if incident.playbook.is_some() {
                    write.zadd(self.by_playbook(&incident), id, *created).ignore();
                }
                indexed += 1;
            }
            let () = write.query_async(&mut conn).await.map_err(unavailable)?;
            start += BATCH;
        }
        let () = conn
            .set(self.keys.incidents_indexed(), 1)
            .await
            .map_err(unavailable)?;
        Ok(indexed)
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
