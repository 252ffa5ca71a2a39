//! The diagnosis walk: from the root, children concurrently, every child whose condition holds
//! descended; evidence through the per-walk [`EvidenceCache`]; pruning through the
//! [`PruneStore`]; a deadline for the whole walk.
//!
//! Invariant: the walker does no I/O of its own; evidence comes through [`EvidenceProvider`],
//! state through [`PruneStore`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use tracing::{Instrument, debug, info_span, warn};

use super::confidence;
use super::diagnosis::{
    Decision, Diagnosis, EvidenceReport, NodeOutcome, NodeReport, RemedyDecision, SignalScore, StepCall,
    too_large_to_record,
};
use super::evidence::{EvidenceCache, EvidenceContext, EvidenceError, EvidenceProvider, Fetched};
use crate::alert::Alert;
use crate::model::condition::{AlertValue, Condition, ConditionInputs};
use crate::model::playbook::{MAX_WAVE_TARGETS, NodeIndex, Playbook, Remedy, WeightedSignal};
use crate::model::template::no_escape;
use crate::state::{PruneGate, PruneStore, PruneUpdate, Verdict};

#[derive(Debug, Clone, Copy)]
pub struct WalkOptions {
    /// The walk gives up on evidence still outstanding after this long; nodes waiting on it are
    /// `error`.
    pub deadline: Duration,
    /// Evaluate one node and one signal at a time (for the benchmark's comparison only).
    pub sequential: bool,
}

impl Default for WalkOptions {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(60),
            sequential: false,
        }
    }
}

pub struct Walker {
    state: Arc<dyn PruneStore>,
    options: WalkOptions,
}

impl Walker {
    /// A walker over `state`'s prune gates (any `StateStore` is one; a backtest passes the
    /// prune state a record saw).
    pub fn new(state: Arc<dyn PruneStore>, options: WalkOptions) -> Self {
        Self { state, options }
    }

    /// Walks `playbook` for `alert` at `now` (the walk's wall-clock time, for prune times).
    pub async fn walk(
        &self,
        playbook: &Playbook,
        alert: Arc<Alert>,
        provider: Arc<dyn EvidenceProvider>,
        now: DateTime<Utc>,
    ) -> Diagnosis {
        let span = info_span!("walk", playbook = %playbook.name, fingerprint = %alert.fingerprint);
        self.walk_inner(playbook, alert, provider, now, None)
            .instrument(span)
            .await
    }

    /// As [`Walker::walk`], for an incident (its id goes to the evidence context and the span).
    pub async fn walk_incident(
        &self,
        playbook: &Playbook,
        alert: Arc<Alert>,
        provider: Arc<dyn EvidenceProvider>,
        now: DateTime<Utc>,
        incident: &str,
    ) -> Diagnosis {
        let span = info_span!("walk", incident = %incident, playbook = %playbook.name);
        self.walk_inner(playbook, alert, provider, now, Some(incident.to_string()))
            .instrument(span)
            .await
    }

    async fn walk_inner(
        &self,
        playbook: &Playbook,
        alert: Arc<Alert>,
        provider: Arc<dyn EvidenceProvider>,
        now: DateTime<Utc>,
        incident: Option<String>,
    ) -> Diagnosis {
        let started = Instant::now();
        let mut state_errors = Vec::new();
        let service = match playbook
            .target_service
            .render(&alert.labels, &BTreeMap::new(), no_escape)
        {
            Ok(s) if !s.is_empty() => Some(s),
            Ok(_) => {
                state_errors.push("target service is empty; pruning is off for this walk".to_string());
                None
            }
            Err(e) => {
                state_errors.push(format!("{e}; pruning is off for this walk"));
                None
            }
        };
        let ctx = EvidenceContext {
            alert: alert.clone(),
            at: alert.starts_at,
            window: playbook.window,
            incident,
        };
        let run = WalkRun {
            playbook,
            cache: EvidenceCache::new(provider, ctx),
            state: self.state.as_ref(),
            service: service.clone(),
            now,
            deadline: tokio::time::Instant::now() + self.options.deadline,
            sequential: self.options.sequential,
            alert_view: AlertValue::from_json(&alert.condition_view()),
            reports: Mutex::new(vec![None; playbook.nodes.len()]),
            remedies: Mutex::new(Vec::new()),
            state_errors: Mutex::new(state_errors),
            deadline_exceeded: std::sync::atomic::AtomicBool::new(false),
        };
        run.visit(0).await;

        let evidence = run
            .cache
            .snapshot()
            .into_iter()
            .map(|(name, f)| {
                let definition = playbook.evidence.get(&name).map(|s| s.definition_hash.clone());
                (name, evidence_report(&f, definition))
            })
            .collect();
        let nodes = take(run.reports).into_iter().flatten().collect();
        let mut remedies = take(run.remedies);
        remedies.sort_by_key(|(index, _)| *index);
        Diagnosis {
            playbook: playbook.name.clone(),
            playbook_hash: Some(playbook.content_hash.clone()),
            service,
            alertname: alert.name().to_string(),
            fingerprint: alert.fingerprint.clone(),
            evidence_at: alert.starts_at,
            annotations: alert.annotations.clone(),
            walked_at: now,
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
            nodes,
            evidence,
            remedies: remedies.into_iter().map(|(_, r)| r).collect(),
            state_errors: take(run.state_errors),
            deadline_exceeded: run.deadline_exceeded.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

fn take<T: Default>(m: Mutex<T>) -> T {
    m.into_inner().unwrap_or_default()
}

fn evidence_report(f: &Fetched, definition: Option<String>) -> EvidenceReport {
    let omitted_bytes = f.result.as_ref().ok().and_then(too_large_to_record);
    EvidenceReport {
        definition,
        omitted_bytes,
        value: f
            .result
            .as_ref()
            .ok()
            .filter(|_| omitted_bytes.is_none())
            .cloned(),
        error: f.result.as_ref().err().map(ToString::to_string),
        elapsed_ms: f.elapsed.as_secs_f64() * 1e3,
    }
}

struct WalkRun<'a> {
    playbook: &'a Playbook,
    cache: EvidenceCache,
    state: &'a dyn PruneStore,
    service: Option<String>,
    now: DateTime<Utc>,
    deadline: tokio::time::Instant,
    sequential: bool,
    alert_view: AlertValue,
    reports: Mutex<Vec<Option<NodeReport>>>,
    remedies: Mutex<Vec<(NodeIndex, RemedyDecision)>>,
    state_errors: Mutex<Vec<String>>,
    deadline_exceeded: std::sync::atomic::AtomicBool,
}

/// The evidence a condition read, each a value or the error that kept it away.
type Reads = BTreeMap<String, Result<serde_json::Value, EvidenceError>>;

impl<'a> WalkRun<'a> {
    fn visit(&'a self, index: NodeIndex) -> BoxFuture<'a, ()> {
        async move {
            let node = &self.playbook.nodes[index];
            let mut report = NodeReport {
                id: node.id.clone(),
                parent: node.parent.map(|p| self.playbook.nodes[p].id.clone()),
                depth: node.depth,
                outcome: NodeOutcome::Miss,
                detail: None,
                reprobe: false,
                pruned_now: false,
                reads: BTreeMap::new(),
            };

            // The root is the alert itself and is never pruned.
            if index != 0
                && let Some(service) = &self.service
            {
                match self.with_deadline_state(self.state.prune_gate(service, &node.id, &self.playbook.prune, self.now)).await {
                    Ok(PruneGate::Evaluate) => {}
                    Ok(PruneGate::Reprobe) => report.reprobe = true,
                    Ok(PruneGate::Skip { pruned_at, skipped }) => {
                        report.outcome = NodeOutcome::Pruned;
                        report.detail = Some(format!(
                            "pruned since {pruned_at}; skipped {skipped} of {} walks before the next re-probe",
                            self.playbook.prune.reprobe_every
                        ));
                        debug!(node = %node.id, "skipped: pruned");
                        self.store(index, report);
                        return;
                    }
                    Err(message) => self.state_error(format!("prune gate for {}: {message}", node.id)),
                }
            }

            let reads = self.read(&node.when).await;
            // Values only: a signal that failed is explained in the detail.
            report.reads = reads
                .iter()
                .filter_map(|(k, v)| v.as_ref().ok().map(|v| (k.clone(), v.clone())))
                .filter(|(_, v)| too_large_to_record(v).is_none())
                .collect();
            let (outcome, detail) = self.evaluate(&node.when, &reads);
            report.outcome = outcome;
            report.detail = detail;

            let verdict = match outcome {
                NodeOutcome::Hit => Some(Verdict::Hit),
                NodeOutcome::Miss => Some(Verdict::Miss),
                _ => None,
            };
            if index != 0
                && let (Some(verdict), Some(service)) = (verdict, &self.service)
            {
                let update = self.state.record_verdict(service, &node.id, verdict, &self.playbook.prune, self.now);
                match self.with_deadline_state(update).await {
                    Ok(PruneUpdate::Pruned { misses }) => {
                        report.pruned_now = true;
                        debug!(node = %node.id, misses, "pruned");
                    }
                    Ok(_) => {}
                    Err(message) => self.state_error(format!("recording {} for {}: {message}", outcome.as_str(), node.id)),
                }
            }

            if outcome != NodeOutcome::Hit {
                self.store(index, report);
                return;
            }
            if let Some(diagnose) = &node.diagnose {
                let fetched = self.with_deadline(self.cache.diagnostic(diagnose)).await;
                if let Err(e) = fetched {
                    report.detail = Some(format!("diagnose `{}` failed: {e}", diagnose.action));
                }
            }
            self.store(index, report);

            if let Some(remedy) = &node.remedy {
                let decision = self.score(&node.id, remedy).await;
                if let Ok(mut remedies) = self.remedies.lock() {
                    remedies.push((index, decision));
                }
            }
            if self.sequential {
                for &child in &node.children {
                    self.visit(child).await;
                }
            } else {
                join_all(node.children.iter().map(|&child| self.visit(child))).await;
            }
        }
        .boxed()
    }

    fn store(&self, index: NodeIndex, report: NodeReport) {
        if let Ok(mut reports) = self.reports.lock() {
            reports[index] = Some(report);
        }
    }

    fn state_error(&self, message: String) {
        warn!(%message, "state store error during walk");
        if let Ok(mut errors) = self.state_errors.lock() {
            errors.push(message);
        }
    }

    /// Fetches the signals `condition` reads: concurrently, through the shared cache.
    async fn read(&self, condition: &Condition) -> Reads {
        let names: BTreeSet<&str> = condition.signal_names();
        let pairs: Vec<(String, Result<serde_json::Value, EvidenceError>)> = if self.sequential {
            let mut out = Vec::new();
            for name in names {
                out.push(fetch_owned(self, name).await);
            }
            out
        } else {
            join_all(names.into_iter().map(|n| fetch_owned(self, n))).await
        };
        pairs.into_iter().collect()
    }

    async fn fetch_named(&self, name: &str) -> Result<serde_json::Value, EvidenceError> {
        match self.playbook.evidence.get(name) {
            Some(signal) => self.with_deadline(self.cache.signal(signal)).await,
            // Not a declared signal: the output of an ancestor's diagnose (the catalog checked it).
            None => match self.cache.snapshot().remove(name) {
                Some(f) => f.result,
                None => Err(EvidenceError::Diagnostic {
                    action: name.to_string(),
                    message: "its output is not available".into(),
                }),
            },
        }
    }

    async fn with_deadline(
        &self,
        fetch: impl std::future::Future<Output = Fetched>,
    ) -> Result<serde_json::Value, EvidenceError> {
        match tokio::time::timeout_at(self.deadline, fetch).await {
            Ok(f) => f.result,
            Err(_) => {
                self.deadline_exceeded
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Err(EvidenceError::Deadline)
            }
        }
    }

    async fn with_deadline_state<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, crate::state::StateError>>,
    ) -> Result<T, String> {
        match tokio::time::timeout_at(self.deadline, call).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => {
                self.deadline_exceeded
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Err("the walk's deadline passed".into())
            }
        }
    }

    /// Decides a condition over what was read. Signals that failed are left out: CEL's logical
    /// operators absorb errors, so `a || b` with `a` true is decided whatever happened to `b`;
    /// when the failed signals matter, the node is `error`. A failed evaluation over a signal with
    /// no data is a `miss`.
    fn evaluate(&self, condition: &Condition, reads: &Reads) -> (NodeOutcome, Option<String>) {
        let errors: Vec<String> = reads
            .iter()
            .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}")))
            .collect();
        let evidence: BTreeMap<String, serde_json::Value> = reads
            .iter()
            .filter_map(|(k, v)| v.as_ref().ok().map(|v| (k.clone(), v.clone())))
            .collect();
        let inputs = ConditionInputs {
            alert: &self.alert_view,
            evidence: &evidence,
            baseline: None,
        };
        let decided_without =
            || (!errors.is_empty()).then(|| format!("decided without {}", errors.join("; ")));
        match condition.evaluate(&inputs) {
            Ok(true) => (NodeOutcome::Hit, decided_without()),
            Ok(false) => (NodeOutcome::Miss, decided_without()),
            Err(_) if !errors.is_empty() => (NodeOutcome::Error, Some(errors.join("; "))),
            Err(e) => {
                let no_data: Vec<&str> = evidence
                    .iter()
                    .filter(|(_, v)| v.is_null())
                    .map(|(k, _)| k.as_str())
                    .collect();
                if no_data.is_empty() {
                    (NodeOutcome::Error, Some(e.to_string()))
                } else {
                    (
                        NodeOutcome::Miss,
                        Some(format!("no data: {}", no_data.join(", "))),
                    )
                }
            }
        }
    }

    async fn score_signal(&self, ws: &WeightedSignal) -> SignalScore {
        let reads = self.read(&ws.when).await;
        let (outcome, detail) = self.evaluate(&ws.when, &reads);
        SignalScore {
            when: ws.when.source().trim().to_string(),
            description: ws.description.clone(),
            weight: ws.weight,
            held: outcome == NodeOutcome::Hit,
            error: if outcome == NodeOutcome::Error {
                detail
            } else {
                None
            },
        }
    }

    async fn score(&self, node: &str, remedy: &Remedy) -> RemedyDecision {
        let signals: Vec<SignalScore> = if self.sequential {
            let mut out = Vec::new();
            for ws in &remedy.confidence.signals {
                out.push(self.score_signal(ws).await);
            }
            out
        } else {
            join_all(remedy.confidence.signals.iter().map(|ws| self.score_signal(ws))).await
        };
        let score = confidence::score(&signals);
        let labels = &self.cache.context().alert.labels;
        let mut invalid = None;
        let params = render_params(&remedy.params, labels, "", &mut invalid);
        let mut steps: Vec<StepCall> = remedy
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| StepCall {
                action: step.action.clone(),
                params: render_params(&step.params, labels, &format!("step {} ", i + 1), &mut invalid),
            })
            .collect();
        let mut waves = Vec::new();
        if let Some(w) = &remedy.waves {
            match wave_targets(w, self.fetch_named(&w.targets).await) {
                Ok(targets) => {
                    waves = w.split(targets.len());
                    steps = targets
                        .into_iter()
                        .map(|target| {
                            let mut params = params.clone();
                            params.insert(w.param.clone(), target);
                            StepCall {
                                action: remedy.action.clone(),
                                params,
                            }
                        })
                        .collect();
                }
                Err(reason) => invalid = Some(reason),
            }
        }
        let decision = match invalid {
            Some(reason) => Decision::Invalid(reason),
            None => confidence::decide(score, remedy.confidence.threshold),
        };
        RemedyDecision {
            node: node.to_string(),
            action: remedy.action.clone(),
            params,
            steps,
            waves,
            score,
            threshold: remedy.confidence.threshold,
            signals,
            decision,
        }
    }
}

/// The targets of a remedy in waves: the evidence's value, a JSON array of strings (numbers are
/// taken as their text), distinct, at most [`MAX_WAVE_TARGETS`].
fn wave_targets(
    waves: &crate::model::playbook::Waves,
    value: Result<serde_json::Value, EvidenceError>,
) -> Result<Vec<String>, String> {
    let name = &waves.targets;
    let value = value.map_err(|e| format!("the targets (`{name}`): {e}"))?;
    let Some(items) = value.as_array() else {
        return Err(format!("the targets (`{name}`) are not a list: {value}"));
    };
    let mut targets: Vec<String> = Vec::new();
    for item in items {
        let target = match item {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => return Err(format!("the targets (`{name}`) hold {other}, not a string")),
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    if targets.is_empty() {
        return Err(format!("the targets (`{name}`) are an empty list"));
    }
    if targets.len() > MAX_WAVE_TARGETS {
        return Err(format!(
            "the targets (`{name}`) are {} (at most {MAX_WAVE_TARGETS})",
            targets.len()
        ));
    }
    Ok(targets)
}

/// Renders a remedy's (or a step's) params over the alert's labels; a missing label is noted in
/// `invalid` (the remedy cannot be formed).
fn render_params(
    templates: &BTreeMap<String, crate::model::template::Template>,
    labels: &BTreeMap<String, String>,
    step: &str,
    invalid: &mut Option<String>,
) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    for (name, template) in templates {
        match template.render(labels, &BTreeMap::new(), no_escape) {
            Ok(v) => {
                params.insert(name.clone(), v);
            }
            Err(e) => *invalid = Some(format!("{step}param `{name}`: {e}")),
        }
    }
    params
}

async fn fetch_owned(run: &WalkRun<'_>, name: &str) -> (String, Result<serde_json::Value, EvidenceError>) {
    (name.to_string(), run.fetch_named(name).await)
}
