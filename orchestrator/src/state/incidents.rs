//! Incidents: created atomically with their fingerprint's open slot, saved with compare-and-set on
//! their version, listed newest first with filters and pages, counted by state; closed ones found
//! by age and removed with everything kept for them (retention).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StateError;
use crate::record::incident::{Incident, IncidentFilter, IncidentState};

/// What creating an incident did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// Another incident is open for the fingerprint (its id).
    OpenExists(String),
    /// An incident with this id exists already (the entry that creates it was redelivered).
    IdExists,
}

/// What saving an incident did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Saved; the incident's `version` was bumped.
    Saved,
    /// Someone saved a newer version first; reload and apply again.
    Conflict,
    Missing,
}

/// A page of incidents, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentPage {
    pub items: Vec<Incident>,
    /// Offset of the next page, if there may be one.
    pub next_offset: Option<usize>,
}

/// Builds an [`IncidentPage`] from incidents offered newest first: filters, skips `offset`
/// matches, and stops after `limit` (one more match means there is a next page).
pub(crate) struct IncidentPager<'a> {
    filter: &'a IncidentFilter,
    offset: usize,
    limit: usize,
    skipped: usize,
    items: Vec<Incident>,
}

impl<'a> IncidentPager<'a> {
    pub(crate) fn new(filter: &'a IncidentFilter, offset: usize, limit: usize) -> Self {
        Self {
            filter,
            offset,
            limit,
            skipped: 0,
            items: Vec::new(),
        }
    }

    /// Offers the next incident; returns the finished page once it is full.
    pub(crate) fn offer(&mut self, incident: Incident) -> Option<IncidentPage> {
        if !self.filter.accepts(&incident) {
            return None;
        }
        if self.skipped < self.offset {
            self.skipped += 1;
            return None;
        }
        if self.items.len() == self.limit {
            return Some(IncidentPage {
                items: std::mem::take(&mut self.items),
                next_offset: Some(self.offset + self.limit),
            });
        }
        self.items.push(incident);
        None
    }

    /// The page when the incidents ran out.
    pub(crate) fn finish(self) -> IncidentPage {
        IncidentPage {
            items: self.items,
            next_offset: None,
        }
    }
}

#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// The open incident of a fingerprint.
    async fn open_incident(&self, fingerprint: &str) -> Result<Option<Incident>, StateError>;

    async fn incident(&self, id: &str) -> Result<Option<Incident>, StateError>;

    /// The fingerprint's most recently closed incident (resolved or stale), if any: what a
    /// late or flapping alert is compared with.
    async fn last_closed_incident(&self, fingerprint: &str) -> Result<Option<Incident>, StateError>;

    /// Creates an incident, atomically with its fingerprint's open slot (when it is open).
    async fn create_incident(&self, incident: &Incident) -> Result<CreateOutcome, StateError>;

    /// Saves an incident if nobody saved since it was read (its `version`); bumps the version.
    async fn save_incident(&self, incident: &mut Incident) -> Result<SaveOutcome, StateError>;

    /// Incidents newest first, filtered, from `offset`.
    async fn list_incidents(
        &self,
        filter: &IncidentFilter,
        offset: usize,
        limit: usize,
    ) -> Result<IncidentPage, StateError>;

    async fn incident_counts(&self) -> Result<BTreeMap<IncidentState, u64>, StateError>;

    /// Closed incidents (resolved, stale) that closed ([`Incident::closed_at`]) before `before`,
    /// the longest closed first, at most `limit`: what retention removes.
    async fn closed_incidents_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Incident>, StateError>;

    /// Removes a closed incident with everything kept for it: its record, its journal, the
    /// approvals named in `approvals`, and every index entry naming it (the time index, its state
    /// set, the closed index, its fingerprint's last-closed slot while that names it) — so pages
    /// and counts never show it again. Only while it is still closed and at `incident.version`:
    /// a flap that reopened it, or any save since it was read, wins (false, nothing removed).
    async fn remove_incident(&self, incident: &Incident, approvals: &[String]) -> Result<bool, StateError>;
}
