//! The in-process [`StateStore`]: the same data layout as Redis (hashes of strings), behind one
//! mutex, so its behaviour can be held to the same conformance suite.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::keys::{Keys, PruneValue, prune_time};
use super::{
    CreateOutcome, IncidentPage, IncidentPager, NodeStats, PruneEntry, PruneGate, PruneUpdate, SaveOutcome,
    StateError, StateStore, StreamEntry, StreamStats, Verdict, prune_expiry_cutoff,
};
use crate::alert::Alert;
use crate::model::playbook::PrunePolicy;
use crate::record::approval::{Approval, ApprovalState, DecideOutcome};
use crate::record::audit::{AUDIT_CAP, AuditEvent, KillSwitch};
use crate::record::incident::{Incident, IncidentFilter, IncidentState};
use crate::record::journal::JournalEntry;
use crate::record::outcome::Outcome;
use crate::record::stage::{Stage, StageChange, StageEntry, StageState};

type Hash = HashMap<String, String>;

/// Stream entry ids as Redis writes them: `<ms>-<seq>`, ordered.
type EntryId = (u64, u64);

#[derive(Debug, Default)]
struct Stream {
    entries: BTreeMap<EntryId, (String, String)>,
    last_id: EntryId,
    group_created: bool,
    last_delivered: EntryId,
    /// id → (consumer, delivered at).
    pending: BTreeMap<EntryId, (String, Instant)>,
}

#[derive(Debug, Default)]
struct Incidents {
    /// id → (version, record JSON).
    records: HashMap<String, (u64, String)>,
    open: HashMap<String, String>,
    /// (created ms, id), kept sorted.
    order: Vec<(i64, String)>,
}

#[derive(Debug, Default)]
struct Autonomy {
    /// (action, scope) → stage and its history.
    stages: BTreeMap<(String, String), (StageState, Vec<StageChange>)>,
    outcomes: HashMap<(String, String), Vec<Outcome>>,
    /// id → approval; `approval_order` keeps creation order.
    approvals: HashMap<String, Approval>,
    approval_order: Vec<String>,
    /// scope → (fix, started ms).
    rate: HashMap<String, Vec<(String, i64)>>,
    /// scope → fix → slot expiry ms.
    running: HashMap<String, HashMap<String, i64>>,
    /// (holder, lease end).
    leader: Option<(String, Instant)>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Debug, Default)]
struct Fixes {
    killswitch: Option<KillSwitch>,
    audit: std::collections::VecDeque<AuditEvent>,
    /// lock key → (token, expires at).
    locks: HashMap<String, (u64, Instant)>,
    fence: u64,
    journals: HashMap<String, Vec<String>>,
    active: std::collections::BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct MemoryStateStore {
    fixes: Mutex<Fixes>,
    autonomy: Mutex<Autonomy>,
    keys: Keys,
    hashes: Mutex<HashMap<String, Hash>>,
    stream: Mutex<Stream>,
    stream_changed: tokio::sync::Notify,
    incidents: Mutex<Incidents>,
}

fn poisoned() -> StateError {
    StateError::Unavailable("in-memory state poisoned by a panic".into())
}

fn format_id((ms, seq): EntryId) -> String {
    format!("{ms}-{seq}")
}

fn parse_id(id: &str) -> Option<EntryId> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn entry(id: EntryId, (alert, received): &(String, String)) -> StreamEntry {
    StreamEntry {
        id: format_id(id),
        alert: serde_json::from_str::<Alert>(alert).map_err(|e| format!("stored alert does not parse: {e}")),
        received_at: DateTime::parse_from_rfc3339(received)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    }
}

fn decode(id: &str, record: &str) -> Result<Incident, StateError> {
    serde_json::from_str(record).map_err(|e| StateError::Corrupt {
        key: format!("incident {id}"),
        value: e.to_string(),
    })
}

fn encode(incident: &Incident) -> Result<String, StateError> {
    serde_json::to_string(incident).map_err(|e| StateError::Corrupt {
        key: format!("incident {}", incident.id),
        value: e.to_string(),
    })
}

impl MemoryStateStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Plants a prune, as copied from another store (`rootfix simulate --state`).
    pub fn seed_prune(&self, service: &str, node: &str, value: &PruneValue) {
        let key = self.keys.prune(service);
        let _ = self.with(|h| {
            set(h, &key, node, value.render());
            Ok(())
        });
    }

    /// Plants a miss streak, as copied from another store.
    pub fn seed_streak(&self, service: &str, node: &str, misses: u32) {
        if misses == 0 {
            return;
        }
        let key = self.keys.streak(service);
        let _ = self.with(|h| {
            set(h, &key, node, misses.to_string());
            Ok(())
        });
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, Hash>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut guard = self
            .hashes
            .lock()
            .map_err(|_| StateError::Unavailable("in-memory state poisoned by a panic".into()))?;
        f(&mut guard)
    }
}

fn incr(hashes: &mut HashMap<String, Hash>, key: &str, field: &str) -> u64 {
    let hash = hashes.entry(key.to_string()).or_default();
    let next = hash.get(field).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1;
    hash.insert(field.to_string(), next.to_string());
    next
}

fn get(hashes: &HashMap<String, Hash>, key: &str, field: &str) -> Option<String> {
    hashes.get(key).and_then(|h| h.get(field)).cloned()
}

fn del(hashes: &mut HashMap<String, Hash>, key: &str, field: &str) -> bool {
    hashes.get_mut(key).is_some_and(|h| h.remove(field).is_some())
}

fn set(hashes: &mut HashMap<String, Hash>, key: &str, field: &str, value: String) {
    hashes
        .entry(key.to_string())
        .or_default()
        .insert(field.to_string(), value);
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn ping(&self) -> Result<(), StateError> {
        self.with(|_| Ok(()))
    }

    async fn prune_gate(
        &self,
        service: &str,
        node: &str,
        policy: &PrunePolicy,
        now: DateTime<Utc>,
    ) -> Result<PruneGate, StateError> {
        let (prune, streak, stats) = (
            self.keys.prune(service),
            self.keys.streak(service),
            self.keys.stats(service),
        );
        let cutoff = prune_expiry_cutoff(policy, now);
        self.with(|h| {
            let Some(raw) = get(h, &prune, node) else {
                return Ok(PruneGate::Evaluate);
            };
            let value = PruneValue::parse(&raw).ok_or_else(|| StateError::Corrupt {
                key: prune.clone(),
                value: raw.clone(),
            })?;
            if value.pruned_at < cutoff {
                del(h, &prune, node);
                del(h, &streak, node);
                return Ok(PruneGate::Evaluate);
            }
            let skipped = value.skipped + 1;
            if skipped >= policy.reprobe_every {
                set(h, &prune, node, PruneValue { skipped: 0, ..value }.render());
                incr(h, &stats, &format!("{node}:reprobe"));
                Ok(PruneGate::Reprobe)
            } else {
                set(
                    h,
                    &prune,
                    node,
                    PruneValue {
                        skipped,
                        ..value.clone()
                    }
                    .render(),
                );
                incr(h, &stats, &format!("{node}:skip"));
                Ok(PruneGate::Skip {
                    pruned_at: value.pruned_at,
                    skipped,
                })
            }
        })
    }

    async fn record_verdict(
        &self,
        service: &str,
        node: &str,
        verdict: Verdict,
        policy: &PrunePolicy,
        now: DateTime<Utc>,
    ) -> Result<PruneUpdate, StateError> {
        let (prune, streak, stats) = (
            self.keys.prune(service),
            self.keys.streak(service),
            self.keys.stats(service),
        );
        self.with(|h| match verdict {
            Verdict::Hit => {
                del(h, &streak, node);
                let was_pruned = del(h, &prune, node);
                incr(h, &stats, &format!("{node}:hit"));
                Ok(PruneUpdate::Cleared { was_pruned })
            }
            Verdict::Miss => {
                let misses = u32::try_from(incr(h, &streak, node)).unwrap_or(u32::MAX);
                incr(h, &stats, &format!("{node}:miss"));
                if misses >= policy.after && get(h, &prune, node).is_none() {
                    let value = PruneValue {
                        pruned_at: prune_time(now),
                        skipped: 0,
                    };
                    set(h, &prune, node, value.render());
                    Ok(PruneUpdate::Pruned { misses })
                } else {
                    Ok(PruneUpdate::Streak { misses })
                }
            }
        })
    }

    async fn pruned_nodes(&self, service: &str) -> Result<Vec<PruneEntry>, StateError> {
        let prune = self.keys.prune(service);
        self.with(|h| {
            let mut entries = Vec::new();
            for (node, raw) in h.get(&prune).into_iter().flatten() {
                let value = PruneValue::parse(raw).ok_or_else(|| StateError::Corrupt {
                    key: prune.clone(),
                    value: raw.clone(),
                })?;
                entries.push(PruneEntry {
                    node: node.clone(),
                    value,
                });
            }
            entries.sort_by(|a, b| a.node.cmp(&b.node));
            Ok(entries)
        })
    }

    async fn clear_prune(&self, service: &str, node: &str) -> Result<bool, StateError> {
        let (prune, streak) = (self.keys.prune(service), self.keys.streak(service));
        self.with(|h| {
            del(h, &streak, node);
            Ok(del(h, &prune, node))
        })
    }

    async fn miss_streak(&self, service: &str, node: &str) -> Result<u32, StateError> {
        let streak = self.keys.streak(service);
        self.with(|h| Ok(get(h, &streak, node).and_then(|v| v.parse().ok()).unwrap_or(0)))
    }

    async fn node_stats(&self, service: &str, node: &str) -> Result<NodeStats, StateError> {
        let stats = self.keys.stats(service);
        self.with(|h| {
            let count = |kind: &str| {
                get(h, &stats, &format!("{node}:{kind}"))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            Ok(NodeStats {
                hits: count("hit"),
                misses: count("miss"),
                skips: count("skip"),
                reprobes: count("reprobe"),
            })
        })
    }

    async fn append_alerts(
        &self,
        alerts: &[Alert],
        received_at: DateTime<Utc>,
    ) -> Result<Vec<String>, StateError> {
        let encoded: Vec<String> = alerts
            .iter()
            .map(|a| {
                serde_json::to_string(a).map_err(|e| StateError::Corrupt {
                    key: "alert".into(),
                    value: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        let received = received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let ids = {
            let mut stream = self.stream.lock().map_err(|_| poisoned())?;
            let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
            let mut ids = Vec::with_capacity(encoded.len());
            for alert in encoded {
                let id = if now_ms > stream.last_id.0 {
                    (now_ms, 0)
                } else {
                    (stream.last_id.0, stream.last_id.1 + 1)
                };
                stream.last_id = id;
                stream.entries.insert(id, (alert, received.clone()));
                ids.push(format_id(id));
            }
            ids
        };
        self.stream_changed.notify_waiters();
        Ok(ids)
    }

    async fn ensure_consumer_group(&self) -> Result<(), StateError> {
        let mut stream = self.stream.lock().map_err(|_| poisoned())?;
        stream.group_created = true;
        Ok(())
    }

    async fn read_alerts(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<StreamEntry>, StateError> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let notified = self.stream_changed.notified();
            {
                let mut stream = self.stream.lock().map_err(|_| poisoned())?;
                if !stream.group_created {
                    return Err(StateError::Unavailable(
                        "NOGROUP: the consumer group does not exist".into(),
                    ));
                }
                let after = stream.last_delivered;
                let fresh: Vec<(EntryId, (String, String))> = stream
                    .entries
                    .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                    .take(count)
                    .map(|(id, v)| (*id, v.clone()))
                    .collect();
                if let Some((last, _)) = fresh.last() {
                    stream.last_delivered = *last;
                    let now = Instant::now();
                    for (id, _) in &fresh {
                        stream.pending.insert(*id, (consumer.to_string(), now));
                    }
                    return Ok(fresh.iter().map(|(id, v)| entry(*id, v)).collect());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn own_pending_alerts(
        &self,
        consumer: &str,
        after: &str,
        count: usize,
    ) -> Result<Vec<StreamEntry>, StateError> {
        let after = if after == "0" {
            (0, 0)
        } else {
            parse_id(after).unwrap_or((0, 0))
        };
        let stream = self.stream.lock().map_err(|_| poisoned())?;
        Ok(stream
            .pending
            .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .filter(|(_, (owner, _))| owner == consumer)
            .filter_map(|(id, _)| stream.entries.get(id).map(|v| entry(*id, v)))
            .take(count)
            .collect())
    }

    async fn claim_stale_alerts(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<StreamEntry>, StateError> {
        let mut stream = self.stream.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        let stale: Vec<EntryId> = stream
            .pending
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= min_idle)
            .map(|(id, _)| *id)
            .take(count)
            .collect();
        let mut out = Vec::new();
        for id in stale {
            match stream.entries.get(&id).cloned() {
                Some(value) => {
                    stream.pending.insert(id, (consumer.to_string(), now));
                    out.push(entry(id, &value));
                }
                None => {
                    stream.pending.remove(&id);
                }
            }
        }
        Ok(out)
    }

    async fn ack_alert(&self, entry_id: &str) -> Result<(), StateError> {
        let id = parse_id(entry_id).ok_or_else(|| StateError::Corrupt {
            key: "rootfix:alerts".into(),
            value: entry_id.to_string(),
        })?;
        let mut stream = self.stream.lock().map_err(|_| poisoned())?;
        stream.pending.remove(&id);
        Ok(())
    }

    async fn stream_stats(&self) -> Result<StreamStats, StateError> {
        let stream = self.stream.lock().map_err(|_| poisoned())?;
        let after = stream.last_delivered;
        Ok(StreamStats {
            length: stream.entries.len() as u64,
            pending: stream.pending.len() as u64,
            lag: stream
                .entries
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .count() as u64,
        })
    }

    async fn open_incident(&self, fingerprint: &str) -> Result<Option<Incident>, StateError> {
        let incidents = self.incidents.lock().map_err(|_| poisoned())?;
        match incidents.open.get(fingerprint) {
            None => Ok(None),
            Some(id) => incidents.records.get(id).map(|(_, r)| decode(id, r)).transpose(),
        }
    }

    async fn incident(&self, id: &str) -> Result<Option<Incident>, StateError> {
        let incidents = self.incidents.lock().map_err(|_| poisoned())?;
        incidents.records.get(id).map(|(_, r)| decode(id, r)).transpose()
    }

    async fn create_incident(&self, incident: &Incident) -> Result<CreateOutcome, StateError> {
        let mut stored = incident.clone();
        stored.version = 1;
        let record = encode(&stored)?;
        let mut incidents = self.incidents.lock().map_err(|_| poisoned())?;
        if incidents.records.contains_key(&incident.id) {
            return Ok(CreateOutcome::IdExists);
        }
        if incident.state.is_open() {
            if let Some(existing) = incidents.open.get(&incident.fingerprint) {
                return Ok(CreateOutcome::OpenExists(existing.clone()));
            }
            incidents
                .open
                .insert(incident.fingerprint.clone(), incident.id.clone());
        }
        incidents.records.insert(incident.id.clone(), (1, record));
        let key = (incident.created_at.timestamp_millis(), incident.id.clone());
        let at = incidents.order.partition_point(|k| *k < key);
        incidents.order.insert(at, key);
        Ok(CreateOutcome::Created)
    }

    async fn save_incident(&self, incident: &mut Incident) -> Result<SaveOutcome, StateError> {
        let mut incidents = self.incidents.lock().map_err(|_| poisoned())?;
        let Some((version, _)) = incidents.records.get(&incident.id) else {
            return Ok(SaveOutcome::Missing);
        };
        if *version != incident.version {
            return Ok(SaveOutcome::Conflict);
        }
        let mut stored = incident.clone();
        stored.version += 1;
        let record = encode(&stored)?;
        incidents
            .records
            .insert(incident.id.clone(), (stored.version, record));
        if !incident.state.is_open() && incidents.open.get(&incident.fingerprint) == Some(&incident.id) {
            incidents.open.remove(&incident.fingerprint);
        }
        incident.version = stored.version;
        Ok(SaveOutcome::Saved)
    }

    async fn list_incidents(
        &self,
        filter: &IncidentFilter,
        offset: usize,
        limit: usize,
    ) -> Result<IncidentPage, StateError> {
        let incidents = self.incidents.lock().map_err(|_| poisoned())?;
        let mut pager = IncidentPager::new(filter, offset, limit);
        for (_, id) in incidents.order.iter().rev() {
            let Some((_, record)) = incidents.records.get(id) else {
                continue;
            };
            if let Some(page) = pager.offer(decode(id, record)?) {
                return Ok(page);
            }
        }
        Ok(pager.finish())
    }

    async fn incident_counts(&self) -> Result<BTreeMap<IncidentState, u64>, StateError> {
        let incidents = self.incidents.lock().map_err(|_| poisoned())?;
        let mut counts: BTreeMap<IncidentState, u64> = IncidentState::ALL.iter().map(|s| (*s, 0)).collect();
        for (id, (_, record)) in &incidents.records {
            *counts.entry(decode(id, record)?.state).or_default() += 1;
        }
        Ok(counts)
    }

    async fn acquire_lock(
        &self,
        action: &str,
        key: &str,
        lease: Duration,
    ) -> Result<Option<u64>, StateError> {
        let lock = self.keys.lock(action, key);
        let mut fixes = self.fixes.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        if fixes.locks.get(&lock).is_some_and(|(_, until)| *until > now) {
            return Ok(None);
        }
        fixes.fence += 1;
        let token = fixes.fence;
        fixes.locks.insert(lock, (token, now + lease));
        Ok(Some(token))
    }

    async fn renew_lock(
        &self,
        action: &str,
        key: &str,
        token: u64,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let lock = self.keys.lock(action, key);
        let mut fixes = self.fixes.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        match fixes.locks.get_mut(&lock) {
            Some((held, until)) if *held == token && *until > now => {
                *until = now + lease;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_lock(&self, action: &str, key: &str, token: u64) -> Result<bool, StateError> {
        let lock = self.keys.lock(action, key);
        let mut fixes = self.fixes.lock().map_err(|_| poisoned())?;
        if fixes.locks.get(&lock).is_some_and(|(held, _)| *held == token) {
            fixes.locks.remove(&lock);
            return Ok(true);
        }
        Ok(false)
    }

    async fn append_journal(&self, incident: &str, entry: &JournalEntry) -> Result<(), StateError> {
        let line = serde_json::to_string(entry).map_err(|e| StateError::Corrupt {
            key: self.keys.journal(incident),
            value: e.to_string(),
        })?;
        let mut fixes = self.fixes.lock().map_err(|_| poisoned())?;
        fixes.journals.entry(incident.to_string()).or_default().push(line);
        Ok(())
    }

    async fn journal(&self, incident: &str) -> Result<Vec<JournalEntry>, StateError> {
        let fixes = self.fixes.lock().map_err(|_| poisoned())?;
        fixes
            .journals
            .get(incident)
            .into_iter()
            .flatten()
            .map(|line| {
                serde_json::from_str(line).map_err(|e| StateError::Corrupt {
                    key: self.keys.journal(incident),
                    value: e.to_string(),
                })
            })
            .collect()
    }

    async fn set_fix_active(&self, fix: &str, active: bool) -> Result<(), StateError> {
        let mut fixes = self.fixes.lock().map_err(|_| poisoned())?;
        if active {
            fixes.active.insert(fix.to_string());
        } else {
            fixes.active.remove(fix);
        }
        Ok(())
    }

    async fn active_fixes(&self) -> Result<Vec<String>, StateError> {
        let fixes = self.fixes.lock().map_err(|_| poisoned())?;
        Ok(fixes.active.iter().cloned().collect())
    }

    async fn killswitch(&self) -> Result<Option<KillSwitch>, StateError> {
        Ok(self.fixes.lock().map_err(|_| poisoned())?.killswitch.clone())
    }

    async fn set_killswitch(&self, state: Option<&KillSwitch>) -> Result<(), StateError> {
        self.fixes.lock().map_err(|_| poisoned())?.killswitch = state.cloned();
        Ok(())
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StateError> {
        let mut fixes = self.fixes.lock().map_err(|_| poisoned())?;
        fixes.audit.push_back(event.clone());
        while fixes.audit.len() > AUDIT_CAP {
            fixes.audit.pop_front();
        }
        Ok(())
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StateError> {
        let fixes = self.fixes.lock().map_err(|_| poisoned())?;
        Ok(fixes.audit.iter().rev().take(limit).cloned().collect())
    }

    async fn stage(&self, action: &str, scope: &str) -> Result<Option<StageState>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        Ok(a.stages
            .get(&(action.to_string(), scope.to_string()))
            .map(|(s, _)| s.clone()))
    }

    async fn change_stage(
        &self,
        action: &str,
        scope: &str,
        expected: Option<Stage>,
        state: &StageState,
        change: Option<&StageChange>,
    ) -> Result<bool, StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        let key = (action.to_string(), scope.to_string());
        let current = a.stages.get(&key).map(|(s, _)| s.stage);
        if current != expected {
            return Ok(false);
        }
        let entry = a.stages.entry(key).or_insert_with(|| (state.clone(), Vec::new()));
        entry.0 = state.clone();
        if let Some(c) = change {
            entry.1.push(c.clone());
        }
        Ok(true)
    }

    async fn stage_history(&self, action: &str, scope: &str) -> Result<Vec<StageChange>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        Ok(a.stages
            .get(&(action.to_string(), scope.to_string()))
            .map(|(_, h)| h.clone())
            .unwrap_or_default())
    }

    async fn stages(&self) -> Result<Vec<StageEntry>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        Ok(a.stages
            .iter()
            .map(|((action, scope), (state, _))| StageEntry {
                action: action.clone(),
                scope: scope.clone(),
                state: state.clone(),
            })
            .collect())
    }

    async fn record_outcome(
        &self,
        action: &str,
        scope: &str,
        outcome: &Outcome,
        retain: Duration,
    ) -> Result<(), StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        let list = a
            .outcomes
            .entry((action.to_string(), scope.to_string()))
            .or_default();
        if !list.contains(outcome) {
            list.push(outcome.clone());
        }
        let cutoff = ms(outcome.at).saturating_sub(dur_ms(retain));
        list.retain(|o| ms(o.at) >= cutoff);
        list.sort_by_key(|o| o.at);
        Ok(())
    }

    async fn outcomes(
        &self,
        action: &str,
        scope: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        Ok(a.outcomes
            .get(&(action.to_string(), scope.to_string()))
            .map(|l| l.iter().filter(|o| o.at >= since).cloned().collect())
            .unwrap_or_default())
    }

    async fn create_approval(&self, approval: &Approval) -> Result<bool, StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        if a.approvals.contains_key(&approval.id) {
            return Ok(false);
        }
        a.approvals.insert(approval.id.clone(), approval.clone());
        a.approval_order.push(approval.id.clone());
        Ok(true)
    }

    async fn approval(&self, id: &str) -> Result<Option<Approval>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        Ok(a.approvals.get(id).cloned())
    }

    async fn decide_approval(&self, decided: &Approval) -> Result<DecideOutcome, StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        let Some(stored) = a.approvals.get_mut(&decided.id) else {
            return Ok(DecideOutcome::Missing);
        };
        if stored.state != ApprovalState::Pending {
            return Ok(DecideOutcome::AlreadyDecided(Box::new(stored.clone())));
        }
        *stored = decided.clone();
        Ok(DecideOutcome::Decided)
    }

    async fn list_approvals(&self, pending_only: bool, limit: usize) -> Result<Vec<Approval>, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        let mut all: Vec<&Approval> = a
            .approval_order
            .iter()
            .filter_map(|id| a.approvals.get(id))
            .filter(|ap| !pending_only || ap.state == ApprovalState::Pending)
            .collect();
        all.sort_by(|x, y| y.created_at.cmp(&x.created_at).then_with(|| y.id.cmp(&x.id)));
        Ok(all.into_iter().take(limit).cloned().collect())
    }

    async fn take_rate_slot(
        &self,
        scope: &str,
        fix: &str,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<bool, StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        let list = a.rate.entry(scope.to_string()).or_default();
        let cutoff = ms(now).saturating_sub(dur_ms(window));
        list.retain(|(_, t)| *t > cutoff);
        if list.iter().any(|(f, _)| f == fix) {
            return Ok(true);
        }
        if list.len() >= limit as usize {
            return Ok(false);
        }
        list.push((fix.to_string(), ms(now)));
        Ok(true)
    }

    async fn release_rate_slot(&self, scope: &str, fix: &str) -> Result<(), StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        if let Some(list) = a.rate.get_mut(scope) {
            list.retain(|(f, _)| f != fix);
        }
        Ok(())
    }

    async fn rate_count(&self, scope: &str, now: DateTime<Utc>, window: Duration) -> Result<u32, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        let cutoff = ms(now).saturating_sub(dur_ms(window));
        let n = a.rate.get(scope).map_or(0, |l| {
            l.iter().filter(|(_, t)| *t > cutoff && *t <= ms(now)).count()
        });
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
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        let slots = a.running.entry(scope.to_string()).or_default();
        slots.retain(|_, until| *until > ms(now));
        if !slots.contains_key(fix) && slots.len() >= limit as usize {
            return Ok(false);
        }
        slots.insert(fix.to_string(), ms(now).saturating_add(dur_ms(lease)));
        Ok(true)
    }

    async fn release_run_slot(&self, scope: &str, fix: &str) -> Result<(), StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        if let Some(slots) = a.running.get_mut(scope) {
            slots.remove(fix);
        }
        Ok(())
    }

    async fn running_count(&self, scope: &str, now: DateTime<Utc>) -> Result<u32, StateError> {
        let a = self.autonomy.lock().map_err(|_| poisoned())?;
        let n = a
            .running
            .get(scope)
            .map_or(0, |s| s.values().filter(|until| **until > ms(now)).count());
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn try_lead(&self, holder: &str, lease: Duration) -> Result<bool, StateError> {
        let mut a = self.autonomy.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        match &a.leader {
            Some((h, until)) if h != holder && *until > now => Ok(false),
            _ => {
                a.leader = Some((holder.to_string(), now + lease));
                Ok(true)
            }
        }
    }
}
