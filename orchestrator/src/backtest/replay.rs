//! One recorded incident walked again under a candidate catalog: [`RecordedEvidence`] answers
//! each signal with what the record holds (never a probe, never a diagnostic action), and
//! [`RecordedPrune`] gives the walk the prune state the record saw (or none).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::alert::{Alert, AlertStatus};
use crate::catalog::Catalog;
use crate::engine::diagnosis::{Diagnosis, EvidenceReport, NodeOutcome};
use crate::engine::evidence::{EvidenceContext, EvidenceError, EvidenceProvider};
use crate::engine::{WalkOptions, Walker};
use crate::incident::Incident;
use crate::model::playbook::{Diagnose, PrunePolicy, Signal};
use crate::state::{NodeStats, PruneEntry, PruneGate, PruneStore, PruneUpdate, StateError, Verdict};

/// Which prune state a replay walks with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PruneMode {
    /// The nodes the recorded walk found pruned are skipped again; every other node is evaluated.
    #[default]
    Recorded,
    /// Nothing is pruned: every node is evaluated.
    Ignored,
}

pub struct ReplayOptions {
    pub prune: PruneMode,
    /// Reads what the record lacks (a new signal, a changed query) from the live backends at the
    /// record's evidence time; Prometheus and Loki signals only.
    pub fetch_missing: Option<Arc<dyn EvidenceProvider>>,
    /// One replayed walk's deadline (only `--fetch-missing` can wait on anything).
    pub deadline: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            prune: PruneMode::Recorded,
            fetch_missing: None,
            deadline: Duration::from_secs(30),
        }
    }
}

/// A replay's new diagnosis and what its evidence came from.
#[derive(Debug, Clone)]
pub struct Rewalk {
    /// `None`: no candidate playbook matches the alert.
    pub diagnosis: Option<Diagnosis>,
    /// Signals (and diagnostic outputs) the candidate read that the record lacks, each with why
    /// (`not in the record`, `changed since the record`, ...); not fetched.
    pub missing: BTreeMap<String, String>,
    /// Signals read from the live backends at the record's time (`--fetch-missing`).
    pub fetched: BTreeSet<String>,
}

/// Replays records under one candidate catalog.
pub struct Replayer {
    catalog: Arc<Catalog>,
    options: ReplayOptions,
}

impl Replayer {
    pub fn new(catalog: Arc<Catalog>, options: ReplayOptions) -> Self {
        Self { catalog, options }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The alert as the recorded walk saw it: the incident's alert (its labels are fixed by the
    /// fingerprint) at the diagnosis's evidence time, firing, with the annotations walked.
    pub fn recorded_alert(incident: &Incident) -> Alert {
        let mut alert = incident.alert.clone();
        alert.status = AlertStatus::Firing;
        if let Some(d) = &incident.diagnosis {
            alert.starts_at = d.evidence_at;
            if !d.annotations.is_empty() {
                alert.annotations = d.annotations.clone();
            }
        }
        alert
    }

    /// Walks `incident` again under the candidate catalog.
    pub async fn rewalk(&self, incident: &Incident) -> Rewalk {
        let alert = Self::recorded_alert(incident);
        let Some(playbook) = self.catalog.match_alert(&alert.labels).cloned() else {
            return Rewalk {
                diagnosis: None,
                missing: BTreeMap::new(),
                fetched: BTreeSet::new(),
            };
        };
        let recorded = incident.diagnosis.as_ref();
        let evidence = Arc::new(RecordedEvidence {
            recorded: recorded.map(|d| d.evidence.clone()).unwrap_or_default(),
            live: self.options.fetch_missing.clone(),
            missing: Mutex::new(BTreeMap::new()),
            fetched: Mutex::new(BTreeSet::new()),
        });
        let prune = Arc::new(match (self.options.prune, recorded) {
            (PruneMode::Recorded, Some(d)) => RecordedPrune::from_diagnosis(d),
            _ => RecordedPrune::default(),
        });
        let walker = Walker::new(
            prune,
            WalkOptions {
                deadline: self.options.deadline,
                sequential: false,
            },
        );
        let now = recorded.map_or(alert.starts_at, |d| d.walked_at);
        let diagnosis = walker
            .walk_incident(&playbook, Arc::new(alert), evidence.clone(), now, &incident.id)
            .await;
        Rewalk {
            diagnosis: Some(diagnosis),
            missing: take(&evidence.missing),
            fetched: take(&evidence.fetched),
        }
    }
}

fn take<T: Default>(m: &Mutex<T>) -> T {
    m.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
}

/// Evidence from a record: the value (or error) recorded under the signal's name and the same
/// definition; anything else is missing, or read live at the record's time when allowed.
pub struct RecordedEvidence {
    recorded: BTreeMap<String, EvidenceReport>,
    live: Option<Arc<dyn EvidenceProvider>>,
    missing: Mutex<BTreeMap<String, String>>,
    fetched: Mutex<BTreeSet<String>>,
}

impl RecordedEvidence {
    fn note_missing(&self, name: &str, why: &str) {
        if let Ok(mut m) = self.missing.lock() {
            m.insert(name.to_string(), why.to_string());
        }
    }
}

/// A recorded answer as the provider gave it: an error stays an error, no data stays `null`.
fn recorded_result(report: &EvidenceReport) -> Result<Value, EvidenceError> {
    match (&report.value, &report.error) {
        (_, Some(error)) => Err(EvidenceError::Backend(format!("as recorded: {error}"))),
        (Some(value), None) => Ok(value.clone()),
        (None, None) => Ok(Value::Null),
    }
}

#[async_trait]
impl EvidenceProvider for RecordedEvidence {
    async fn fetch(&self, signal: &Signal, ctx: &EvidenceContext) -> Result<Value, EvidenceError> {
        let found = self.recorded.get(&signal.name);
        let why = match found {
            Some(r) if r.omitted_bytes.is_some() => "too large to record",
            Some(r)
                if r.definition
                    .as_deref()
                    .is_none_or(|d| d == signal.definition_hash) =>
            {
                return recorded_result(r);
            }
            Some(_) => "changed since the record",
            None => "not in the record",
        };
        match &self.live {
            Some(live) if signal.kind.reads_the_past() => {
                if let Ok(mut f) = self.fetched.lock() {
                    f.insert(signal.name.clone());
                }
                live.fetch(signal, ctx).await
            }
            Some(_) => {
                let why = format!(
                    "{why}; a {} signal cannot be read for a past instant",
                    signal.kind.label()
                );
                self.note_missing(&signal.name, &why);
                Err(EvidenceError::Backend(why))
            }
            None => {
                self.note_missing(&signal.name, why);
                Err(EvidenceError::Backend(format!(
                    "{why} (--fetch-missing reads it)"
                )))
            }
        }
    }

    async fn diagnose(&self, diagnose: &Diagnose, _ctx: &EvidenceContext) -> Result<Value, EvidenceError> {
        match self.recorded.get(&diagnose.output) {
            Some(r) if r.omitted_bytes.is_none() => recorded_result(r),
            _ => {
                let why = "not in the record; a backtest never runs a diagnostic action";
                self.note_missing(&diagnose.output, why);
                Err(EvidenceError::Diagnostic {
                    action: diagnose.action.clone(),
                    message: why.into(),
                })
            }
        }
    }
}

/// The prune state a recorded walk saw: its pruned nodes are skipped, its re-probes re-probed,
/// the rest evaluated; verdicts are not kept (a replay never prunes anything itself).
#[derive(Debug, Default)]
pub struct RecordedPrune {
    pruned: BTreeSet<String>,
    reprobed: BTreeSet<String>,
}

impl RecordedPrune {
    pub fn from_diagnosis(d: &Diagnosis) -> Self {
        Self {
            pruned: d
                .nodes
                .iter()
                .filter(|n| n.outcome == NodeOutcome::Pruned)
                .map(|n| n.id.clone())
                .collect(),
            reprobed: d
                .nodes
                .iter()
                .filter(|n| n.reprobe)
                .map(|n| n.id.clone())
                .collect(),
        }
    }
}

#[async_trait]
impl PruneStore for RecordedPrune {
    async fn prune_gate(
        &self,
        _service: &str,
        node: &str,
        _policy: &PrunePolicy,
        _now: DateTime<Utc>,
    ) -> Result<PruneGate, StateError> {
        Ok(if self.pruned.contains(node) {
            PruneGate::Skip {
                pruned_at: "the recorded walk".into(),
                skipped: 0,
            }
        } else if self.reprobed.contains(node) {
            PruneGate::Reprobe
        } else {
            PruneGate::Evaluate
        })
    }

    async fn record_verdict(
        &self,
        _service: &str,
        _node: &str,
        _verdict: Verdict,
        _policy: &PrunePolicy,
        _now: DateTime<Utc>,
    ) -> Result<PruneUpdate, StateError> {
        Ok(PruneUpdate::Streak { misses: 0 })
    }

    async fn pruned_nodes(&self, _service: &str) -> Result<Vec<PruneEntry>, StateError> {
        Ok(Vec::new())
    }

    async fn clear_prune(&self, _service: &str, _node: &str) -> Result<bool, StateError> {
        Ok(false)
    }

    async fn miss_streak(&self, _service: &str, _node: &str) -> Result<u32, StateError> {
        Ok(0)
    }

    async fn node_stats(&self, _service: &str, _node: &str) -> Result<NodeStats, StateError> {
        Ok(NodeStats::default())
    }
}
