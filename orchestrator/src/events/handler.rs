//! Applies one stream entry to the incidents: a firing alert opens an incident (and walks its
//! playbook), joins the open one (walking again when the last walk reached no remedy: evidence
//! builds up while an alert fires), or rejoins the last one when the alert flapped; a resolved
//! alert closes it. The alert's own times order its notifications ([`AlertRules`]): a late
//! resolve or a late firing is recorded as ignored on the incident's timeline, never applied.
//!
//! Every step is idempotent, because an entry is delivered at least once: the incident created
//! by an entry has an id derived from the entry, every incident remembers the entries it applied,
//! an interrupted diagnosis (`diagnosing`) is walked again by the entry that created it, and saves
//! are compare-and-set on the incident's version (two replicas never lose an update).

use std::sync::Arc;

use chrono::Utc;
use tracing::{Instrument, info, info_span, warn};

use crate::alert::{Alert, AlertStatus};
use crate::alert_rules::{AlertRules, FiringVerdict};
use crate::autonomy::controller::{Autonomy, AutonomyError, Decided};
use crate::engine::{EvidenceProvider, NodeOutcome, Walker};
use crate::incident::{Incident, IncidentState};
use crate::metrics::Metrics;
use crate::model::template::no_escape;
use crate::reload::CatalogHandle;
use crate::state::{CreateOutcome, SaveOutcome, StateError, StateStore, StreamEntry};

mod rejoin;

/// How many times a compare-and-set is retried before the entry is left for redelivery.
const MAX_CAS_ATTEMPTS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("incident {0} kept changing under us; the entry will be redelivered")]
    Contended(String),
}

/// What handling an entry did (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Opened {
        incident: String,
        state: IncidentState,
    },
    Joined {
        incident: String,
    },
    Resolved {
        incident: String,
    },
    /// The alert flapped: it rejoined its last incident.
    Rejoined {
        incident: String,
    },
    /// Applied to no incident by the lifecycle rules (`reason` is a metric label); recorded on
    /// `incident`'s timeline when there is one.
    Ignored {
        incident: Option<String>,
        reason: &'static str,
    },
    AlreadyApplied {
        incident: String,
    },
    /// The stored entry could not be read; acknowledged so it does not block the stream.
    Dropped(String),
}

pub struct IncidentHandler {
    pub state: Arc<dyn StateStore>,
    pub catalog: CatalogHandle,
    pub walker: Arc<Walker>,
    pub evidence: Arc<dyn EvidenceProvider>,
    pub metrics: Arc<Metrics>,
    /// Takes diagnosed incidents through the gates to their fix; `None` only records diagnoses.
    pub autonomy: Option<Arc<Autonomy>>,
    /// How notifications are ordered into incidents (`limits.flap_window`, ...).
    pub rules: AlertRules,
}

impl IncidentHandler {
    pub async fn handle(&self, entry: StreamEntry) -> Result<Handled, HandleError> {
        let alert = match entry.alert {
            Ok(alert) => alert,
            Err(reason) => {
                warn!(entry = %entry.id, %reason, "dropping an unreadable stream entry");
                return Ok(Handled::Dropped(reason));
            }
        };
        let span = info_span!("alert", entry = %entry.id, fingerprint = %alert.fingerprint, alertname = %alert.name());
        async {
            match alert.status {
                AlertStatus::Firing => self.on_firing(&entry.id, alert).await,
                AlertStatus::Resolved => self.on_resolved(&entry.id, alert).await,
            }
        }
        .instrument(span)
        .await
    }

    async fn on_firing(&self, entry: &str, alert: Alert) -> Result<Handled, HandleError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let now = Utc::now();
            if let Some(mut incident) = self.state.open_incident(&alert.fingerprint).await? {
                if incident.has_applied(entry) {
                    if incident.state == IncidentState::Diagnosing && incident.created_by_entry == entry {
                        // Interrupted while walking: walk again.
                        return self.diagnose(incident).await;
                    }
                    if incident.state == IncidentState::Open
                        && incident.created_by_entry == entry
                        && incident.fix.is_none()
                    {
                        // Interrupted between the diagnosis and the decision: decide now.
                        self.decide(&incident).await?;
                    }
                    return Ok(Handled::AlreadyApplied {
                        incident: incident.id,
                    });
                }
                if let Some(why) = self.rules.firing_is_over(&alert, now) {
                    return self.ignore(incident, entry, why, "firing-over").await;
                }
                incident.firings += 1;
                incident.alert = alert.clone();
                incident.last_seen = Some(now);
                incident.mark_applied(entry);
                // Firing again before a running fix finished: the resolve it had seen is void.
                incident.resolved_at = None;
                let n = incident.firings;
                incident.note(now, "firing", format!("repeated firing #{n} joined the incident"));
                // Still firing after a verified fix, before Alertmanager said resolved: the fix
                // did not hold. The incident reopens; nothing runs again on its own.
                let recurred = incident.state == IncidentState::Fixed;
                if recurred {
                    incident.state = IncidentState::Open;
                    incident.note(
                        now,
                        "recurred",
                        format!("{RECURRED_WHILE_FIXED}: the fix did not hold (outcome recurred)"),
                    );
                }
                // The last walk reached no remedy (evidence still building up, a backend that
                // did not answer): the repeat walks the tree again with the evidence of now.
                let rewalk = incident.state == IncidentState::Open
                    && incident.fix.is_none()
                    && incident
                        .diagnosis
                        .as_ref()
                        .is_some_and(|d| d.actionable().next().is_none());
                if rewalk {
                    incident.note(
                        now,
                        "diagnosing",
                        "the last diagnosis reached no remedy: walking the tree again",
                    );
                }
                // A fix refused for now (kill switch, rate limit, concurrency) is decided again.
                let retry = incident.state == IncidentState::Open
                    && incident.fix.as_ref().is_some_and(|f| f.refused_for_now());
                if retry {
                    let gate = incident
                        .fix
                        .take()
                        .and_then(|f| f.gate)
                        .map_or("?", |g| g.as_str());
                    incident.note(
                        now,
                        "gate",
                        format!("asking the gates again (refused by {gate} before)"),
                    );
                }
                match self.state.save_incident(&mut incident).await? {
                    SaveOutcome::Saved => {
                        if rewalk {
                            let id = incident.id.clone();
                            self.diagnose(incident).await?;
                            return Ok(Handled::Joined { incident: id });
                        }
                        if retry {
                            self.decide(&incident).await?;
                        }
                        if recurred {
                            self.recurred(&incident, RECURRED_WHILE_FIXED).await?;
                        }
                        return Ok(Handled::Joined {
                            incident: incident.id,
                        });
                    }
                    SaveOutcome::Conflict | SaveOutcome::Missing => continue,
                }
            }
            let id = Incident::id_for_entry(entry);
            if let Some(existing) = self.state.incident(&id).await? {
                // This entry created an incident that has been closed since: nothing to do.
                return Ok(Handled::AlreadyApplied {
                    incident: existing.id,
                });
            }
            let last = self.state.last_closed_incident(&alert.fingerprint).await?;
            if let Some(last) = &last
                && last.has_applied(entry)
            {
                return Ok(Handled::AlreadyApplied {
                    incident: last.id.clone(),
                });
            }
            if let Some(why) = self.rules.firing_is_over(&alert, now) {
                return match last {
                    Some(last) => self.ignore(last, entry, why, "firing-over").await,
                    None => Ok(self.ignored(None, "firing-over")),
                };
            }
            let came_back_from = last.clone();
            match (self.rules.firing_after(&alert, last.as_ref()), last) {
                (FiringVerdict::Ignore(why), Some(last)) => {
                    return self.ignore(last, entry, why, "stale-firing").await;
                }
                (FiringVerdict::Rejoin, Some(last)) => match self.rejoin(last, entry, &alert).await? {
                    Some(handled) => return Ok(handled),
                    // Someone opened or changed it meanwhile: go round again.
                    None => continue,
                },
                _ => {}
            }
            let catalog = self.catalog.current();
            let playbook = catalog.match_alert(&alert.labels).cloned();
            let service = playbook
                .as_ref()
                .and_then(|p| {
                    p.target_service
                        .render(&alert.labels, &Default::default(), no_escape)
                        .ok()
                })
                .or_else(|| alert.labels.get("service").cloned());
            let state = if playbook.is_some() {
                IncidentState::Diagnosing
            } else {
                IncidentState::Unhandled
            };
            let mut incident = Incident {
                id,
                fingerprint: alert.fingerprint.clone(),
                state,
                alertname: alert.name().to_string(),
                service,
                playbook: playbook.as_ref().map(|p| p.name.clone()),
                alert: alert.clone(),
                created_at: now,
                updated_at: now,
                resolved_at: None,
                firings: 1,
                created_by_entry: entry.to_string(),
                applied_entries: vec![entry.to_string()],
                diagnosis: None,
                timeline: Vec::new(),
                fix: None,
                last_seen: Some(now),
                flaps: 0,
                version: 0,
            };
            match &playbook {
                Some(p) => incident.note(now, "opened", format!("matched playbook {}", p.name)),
                None => incident.note(now, "unhandled", "no playbook matches this alert"),
            }
            match self.state.create_incident(&incident).await? {
                CreateOutcome::Created => {
                    incident.version = 1;
                    info!(incident = %incident.id, state = incident.state.as_str(), "incident opened");
                    // The alert came back after a verified fix: within the recurrence window
                    // that fix did not hold. This firing is diagnosed afresh either way.
                    if let (Some(last), Some(autonomy)) = (&came_back_from, &self.autonomy) {
                        match autonomy.alert_came_back(last, &incident.id).await {
                            Ok(()) => {}
                            Err(AutonomyError::State(e)) => return Err(HandleError::State(e)),
                            Err(e) => {
                                warn!(incident = %incident.id, error = %e, "could not record the recurrence")
                            }
                        }
                        if let Some(fresh) = self.state.incident(&incident.id).await? {
                            incident = fresh;
                        }
                    }
                    if playbook.is_some() {
                        return self.diagnose(incident).await;
                    }
                    return Ok(Handled::Opened {
                        incident: incident.id,
                        state: IncidentState::Unhandled,
                    });
                }
                // Someone opened one for this fingerprint meanwhile, or this entry's incident
                // exists: go round again and join or recognise it.
                CreateOutcome::OpenExists(_) | CreateOutcome::IdExists => continue,
            }
        }
        Err(HandleError::Contended(alert.fingerprint))
    }

    /// Walks the incident's playbook and stores the diagnosis.
    async fn diagnose(&self, mut incident: Incident) -> Result<Handled, HandleError> {
        let catalog = self.catalog.current();
        let playbook = incident
            .playbook
            .as_deref()
            .and_then(|name| catalog.playbook(name))
            .cloned();
        let diagnosis = match &playbook {
            Some(p) => {
                let d = self
                    .walker
                    .walk_incident(
                        p,
                        Arc::new(incident.alert.clone()),
                        self.evidence.clone(),
                        Utc::now(),
                        &incident.id,
                    )
                    .await;
                self.metrics.walk_finished(d.duration_ms / 1e3);
                for (name, report) in &d.evidence {
                    if report.error.is_some() {
                        let kind = p.evidence.get(name).map_or("diagnostic", |s| s.kind.label());
                        self.metrics.evidence_error(kind);
                    }
                }
                Some(d)
            }
            None => None,
        };
        for _ in 0..MAX_CAS_ATTEMPTS {
            let now = Utc::now();
            if incident.state == IncidentState::Diagnosing {
                incident.state = IncidentState::Open;
            }
            match &diagnosis {
                Some(d) => {
                    let hits: Vec<&str> = d.with_outcome(NodeOutcome::Hit);
                    let acting: Vec<String> = d
                        .actionable()
                        .map(|r| format!("{} at {}", r.action, r.node))
                        .collect();
                    incident.note(
                        now,
                        "diagnosed",
                        format!(
                            "path {}; {}",
                            hits.join(" → "),
                            if acting.is_empty() {
                                "no remedy reached its threshold".to_string()
                            } else {
                                format!("remedy: {}", acting.join(", "))
                            }
                        ),
                    );
                    incident.diagnosis = Some(d.clone());
                }
                None => incident.note(
                    now,
                    "diagnosed",
                    "the playbook is no longer loaded; nothing was walked",
                ),
            }
            match self.state.save_incident(&mut incident).await? {
                SaveOutcome::Saved => {
                    let state = match self.decide(&incident).await? {
                        Some(Decided::AwaitingApproval(_)) => IncidentState::AwaitingApproval,
                        Some(Decided::Started { .. }) => IncidentState::Fixing,
                        _ => incident.state,
                    };
                    return Ok(Handled::Opened {
                        incident: incident.id,
                        state,
                    });
                }
                SaveOutcome::Conflict => {
                    let Some(fresh) = self.state.incident(&incident.id).await? else {
                        return Err(HandleError::Contended(incident.id));
                    };
                    incident = fresh;
                }
                SaveOutcome::Missing => return Err(HandleError::Contended(incident.id)),
            }
        }
        Err(HandleError::Contended(incident.id))
    }

    /// Hands a diagnosed incident to autonomy. Only a state-store failure is an error (the entry
    /// is redelivered and the decision made again); anything else is logged.
    async fn decide(&self, incident: &Incident) -> Result<Option<Decided>, HandleError> {
        let Some(autonomy) = &self.autonomy else {
            return Ok(None);
        };
        match autonomy.decide_incident(incident).await {
            Ok(decided) => {
                info!(incident = %incident.id, ?decided, "fix decided");
                Ok(Some(decided))
            }
            Err(AutonomyError::State(e)) => Err(HandleError::State(e)),
            Err(e) => {
                warn!(incident = %incident.id, error = %e, "no fix decision");
                Ok(None)
            }
        }
    }

    async fn on_resolved(&self, entry: &str, alert: Alert) -> Result<Handled, HandleError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let now = Utc::now();
            if let Some(mut incident) = self.state.open_incident(&alert.fingerprint).await? {
                if incident.has_applied(entry) {
                    return Ok(Handled::AlreadyApplied {
                        incident: incident.id,
                    });
                }
                if let Some(why) = self.rules.resolved_is_older(&alert, &incident) {
                    return self.ignore(incident, entry, why, "stale-resolved").await;
                }
                incident.resolved_at = Some(alert.ended_at().unwrap_or(now));
                incident.alert = alert.clone();
                incident.mark_applied(entry);
                let was = incident.state;
                if was == IncidentState::Fixing {
                    // The fix closes the incident when it ends (outcome first, then closed).
                    incident.note(
                        now,
                        "resolved",
                        "the alert resolved; the running fix finishes and verifies, then the incident closes",
                    );
                } else {
                    let note = match was {
                        IncidentState::Fixed => "the alert resolved after the verified fix: incident closed",
                        IncidentState::AwaitingApproval => {
                            "the alert resolved; the pending approval is cancelled"
                        }
                        _ => "the alert resolved",
                    };
                    incident.state = IncidentState::Resolved;
                    incident.note(now, "resolved", note);
                }
                match self.state.save_incident(&mut incident).await? {
                    SaveOutcome::Saved => {
                        if let Some(autonomy) = &self.autonomy
                            && let Err(e) = autonomy.alert_resolved(&incident, was).await
                        {
                            warn!(incident = %incident.id, error = %e, "could not finish the resolved incident's fix (approval, silence)");
                        }
                        info!(incident = %incident.id, "incident resolved");
                        return Ok(Handled::Resolved {
                            incident: incident.id,
                        });
                    }
                    SaveOutcome::Conflict | SaveOutcome::Missing => continue,
                }
            }
            // No open incident: the firing was never seen (rootfix was not the receiver then), it
            // was closed already (a second Alertmanager's copy), or it went stale. Nothing opens.
            return Ok(self.ignored(None, "resolved-without-incident"));
        }
        Err(HandleError::Contended(alert.fingerprint))
    }

    /// Counts an alert applied to no incident.
    fn ignored(&self, incident: Option<String>, reason: &'static str) -> Handled {
        self.metrics.alert_ignored(reason);
        info!(?incident, reason, "alert ignored by the lifecycle rules");
        Handled::Ignored { incident, reason }
    }

    /// Records on `incident`'s timeline that `entry` was ignored (`why`), once per entry.
    async fn ignore(
        &self,
        mut incident: Incident,
        entry: &str,
        why: String,
        reason: &'static str,
    ) -> Result<Handled, HandleError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            if incident.has_applied(entry) {
                return Ok(Handled::AlreadyApplied {
                    incident: incident.id,
                });
            }
            incident.mark_applied(entry);
            incident.note(Utc::now(), "ignored", why.clone());
            match self.state.save_incident(&mut incident).await? {
                SaveOutcome::Saved => return Ok(self.ignored(Some(incident.id), reason)),
                SaveOutcome::Conflict => match self.state.incident(&incident.id).await? {
                    Some(fresh) => incident = fresh,
                    None => return Err(HandleError::Contended(incident.id)),
                },
                SaveOutcome::Missing => return Err(HandleError::Contended(incident.id)),
            }
        }
        Err(HandleError::Contended(incident.id))
    }

    /// Hands a fix that did not hold to autonomy (outcome `recurred`).
    async fn recurred(&self, incident: &Incident, why: &str) -> Result<(), HandleError> {
        let Some(autonomy) = &self.autonomy else {
            return Ok(());
        };
        match autonomy.fix_recurred(incident, why).await {
            Ok(()) => Ok(()),
            Err(AutonomyError::State(e)) => Err(HandleError::State(e)),
            Err(e) => {
                warn!(incident = %incident.id, error = %e, "could not record the recurrence");
                Ok(())
            }
        }
    }
}

/// Why a fix did not hold, as the timeline, the audit and the notification say it.
const RECURRED_WHILE_FIXED: &str =
    "the alert fired again after the verified fix, before Alertmanager reported it resolved";
const RECURRED_AFTER_RESOLVE: &str =
    "the alert came back within limits.flap_window after the verified fix had resolved it";
