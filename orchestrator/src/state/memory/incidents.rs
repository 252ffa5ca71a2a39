//! [`IncidentStore`] in process: records as JSON with their version, the fingerprints' open slots
//! and the creation order, under one mutex.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStateStore, poisoned};
use crate::record::incident::{Incident, IncidentFilter, IncidentState};
use crate::state::StateError;
use crate::state::incidents::{CreateOutcome, IncidentPage, IncidentPager, IncidentStore, SaveOutcome};

#[derive(Debug, Default)]
pub(super) struct Incidents {
    /// id → (version, record JSON).
    records: HashMap<String, (u64, String)>,
    open: HashMap<String, String>,
    /// fingerprint → id of its last closed incident.
    last_closed: HashMap<String, String>,
    /// (created ms, id), kept sorted.
    order: Vec<(i64, String)>,
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

#[async_trait]
impl IncidentStore for MemoryStateStore {
    async fn open_incident(&self, fingerprint: &str) -> Result<Option<Incident>, StateError> {
        let incidents = self.incidents.lock().map_err(|_| poisoned())?;
        match incidents.open.get(fingerprint) {
            None => Ok(None),
            Some(id) => incidents.records.get(id).map(|(_, r)| decode(id, r)).transpose(),
        }
    }

    async fn last_closed_incident(&self, fingerprint: &str) -> Result<Option<Incident>, StateError> {
        let incidents = self.incidents.lock().map_err(|_| poisoned())?;
        match incidents.last_closed.get(fingerprint) {
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
        if incident.state.is_open() {
            match incidents.open.get(&incident.fingerprint) {
                Some(holder) if *holder != incident.id => return Ok(SaveOutcome::Conflict),
                Some(_) => {}
                None => {
                    incidents
                        .open
                        .insert(incident.fingerprint.clone(), incident.id.clone());
                }
            }
        }
        incidents
            .records
            .insert(incident.id.clone(), (stored.version, record));
        if !incident.state.is_open() {
            if incidents.open.get(&incident.fingerprint) == Some(&incident.id) {
                incidents.open.remove(&incident.fingerprint);
            }
            incidents
                .last_closed
                .insert(incident.fingerprint.clone(), incident.id.clone());
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

    async fn closed_incidents_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Incident>, StateError> {
        let incidents = self.incidents.lock().map_err(|_| poisoned())?;
        let mut closed = Vec::new();
        for (id, (version, record)) in &incidents.records {
            let mut incident = decode(id, record)?;
            incident.version = *version;
            if !incident.state.is_open() && incident.closed_at() < before {
                closed.push(incident);
            }
        }
        closed.sort_by(|a, b| a.closed_at().cmp(&b.closed_at()).then_with(|| a.id.cmp(&b.id)));
        closed.truncate(limit);
        Ok(closed)
    }

    async fn remove_incident(&self, incident: &Incident, approvals: &[String]) -> Result<bool, StateError> {
        {
            let mut guard = self.incidents.lock().map_err(|_| poisoned())?;
            let incidents = &mut *guard;
            let Some((version, record)) = incidents.records.get(&incident.id) else {
                return Ok(false);
            };
            if *version != incident.version || decode(&incident.id, record)?.state.is_open() {
                return Ok(false);
            }
            incidents.records.remove(&incident.id);
            incidents.order.retain(|(_, id)| *id != incident.id);
            for slots in [&mut incidents.open, &mut incidents.last_closed] {
                if slots.get(&incident.fingerprint) == Some(&incident.id) {
                    slots.remove(&incident.fingerprint);
                }
            }
        }
        self.fixes
            .lock()
            .map_err(|_| poisoned())?
            .remove_journal(&incident.id);
        self.autonomy
            .lock()
            .map_err(|_| poisoned())?
            .remove_approvals(approvals);
        Ok(true)
    }
}
