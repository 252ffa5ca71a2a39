//! Diagnostic actions in production: [`ActionDiagnostics`] is the [`DiagnosticRunner`] that
//! `serve` plugs into [`crate::evidence::LiveEvidence`], so a playbook node's `diagnose:` runs.
//!
//! For one node's `diagnose: {action, params, as}` it
//! 1. looks the action up in the catalog in force ([`CatalogHandle`]) and refuses anything but a
//!    `purpose: diagnostic` action (diagnostics are read-only: a fix never runs as evidence);
//! 2. renders the node's params over the alert's labels exactly as a remedy's params are rendered
//!    (no escape: the pattern is the guard) and validates them with [`validate_params`] (defaults
//!    from the action, anchored patterns) — before anything starts;
//! 3. asks [`RunnerAvailability`] whether the action's runner kind can run here (its reason is
//!    the error when not), then runs the `execute` phase on the runner of that kind (the same
//!    Docker runner the fixes use, the Kubernetes runner when enabled) with the phase's timeout;
//! 4. parses what the phase printed as one JSON value: the evidence under the `as` name.
//!
//! Every failure is an [`EvidenceError::Diagnostic`] naming the action; a non-zero exit or output
//! that is not JSON carries the exit code and the end of stderr and stdout. The walker turns it
//! into `error` for the nodes that read the output.
//!
//! The phase runs in a task of its own, so a walk that gives up (its deadline) does not abandon a
//! container mid-run: the runner still waits for it (or kills it at its timeout) and removes it.
//! Each run gets its own attempt number (a sequence of this process), so two diagnostics of one
//! incident running at once never share a container or Job name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;
use tracing::{Instrument, info, info_span, warn};

use super::availability::{RunnerAvailability, kind_name};
use super::{PhaseExit, PhaseOutcome, PhaseRequest, Runner, RunnerError, validate_params};
use crate::engine::evidence::{EvidenceContext, EvidenceError};
use crate::evidence::DiagnosticRunner;
use crate::model::action::{Action, PhaseName, Purpose, RunnerKind};
use crate::model::playbook::Diagnose;
use crate::model::template::no_escape;
use crate::reload::CatalogHandle;

/// How much of the end of stderr and stdout an error quotes.
const TAIL_CHARS: usize = 600;

/// A diagnostic ready to start: the action, its validated params, the runner of its kind.
struct Prepared {
    action: Arc<Action>,
    params: BTreeMap<String, String>,
    runner: Arc<dyn Runner>,
}

/// Runs `purpose: diagnostic` actions of the catalog in force on the runners of their kinds.
pub struct ActionDiagnostics {
    catalog: CatalogHandle,
    availability: Arc<RunnerAvailability>,
    /// By [`kind_name`].
    runners: BTreeMap<&'static str, Arc<dyn Runner>>,
    sequence: AtomicU32,
}

impl ActionDiagnostics {
    /// No runner yet: add one per kind with [`Self::with_runner`].
    pub fn new(catalog: CatalogHandle, availability: Arc<RunnerAvailability>) -> Self {
        Self {
            catalog,
            availability,
            runners: BTreeMap::new(),
            sequence: AtomicU32::new(0),
        }
    }

    /// Runs actions of `kind` on `runner`.
    pub fn with_runner(mut self, kind: RunnerKind, runner: Arc<dyn Runner>) -> Self {
        self.runners.insert(kind_name(kind), runner);
        self
    }

    /// The action and its validated params, or why the diagnostic cannot start.
    fn prepare(&self, diagnose: &Diagnose, ctx: &EvidenceContext) -> Result<Prepared, String> {
        let catalog = self.catalog.current();
        let action = catalog
            .actions
            .get(&diagnose.action)
            .cloned()
            .ok_or_else(|| "no such action in the catalog in force".to_string())?;
        if action.purpose != Purpose::Diagnostic {
            return Err(
                "it is a fix action (purpose: fix); only `purpose: diagnostic` actions run as diagnostics"
                    .into(),
            );
        }
        let params = render_params(&diagnose.params, &ctx.alert.labels)?;
        let params = validate_params(&action, &params).map_err(|e| e.to_string())?;
        if action.phases.get(PhaseName::Execute).is_none() {
            return Err(RunnerError::NoPhase(PhaseName::Execute.as_str()).to_string());
        }
        let kind = kind_name(action.runner);
        if let Some(why) = self.availability.unavailable(action.runner) {
            return Err(format!("runner `{kind}` cannot run here: {why}"));
        }
        let runner =
            self.runners.get(kind).cloned().ok_or_else(|| {
                format!("runner `{kind}` cannot run here: no `{kind}` runner is configured")
            })?;
        Ok(Prepared {
            action,
            params,
            runner,
        })
    }
}

/// A node's params over the alert's labels, as the walker renders a remedy's params: no escape,
/// the action's anchored patterns are the guard ([`validate_params`] comes next).
pub fn render_params(
    templates: &BTreeMap<String, crate::model::template::Template>,
    labels: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    templates
        .iter()
        .map(|(name, template)| {
            template
                .render(labels, &BTreeMap::new(), no_escape)
                .map(|v| (name.clone(), v))
                .map_err(|e| format!("param `{name}`: {e}"))
        })
        .collect()
}

#[async_trait]
impl DiagnosticRunner for ActionDiagnostics {
    async fn run(&self, diagnose: &Diagnose, ctx: &EvidenceContext) -> Result<Value, EvidenceError> {
        let incident = ctx
            .incident
            .clone()
            .unwrap_or_else(|| format!("alert-{}", ctx.alert.fingerprint));
        let span = info_span!(
            "diagnostic",
            incident = %incident,
            action = %diagnose.action,
            output = %diagnose.output,
        );
        let failed = |message: String| EvidenceError::Diagnostic {
            action: diagnose.action.clone(),
            message,
        };
        let Prepared {
            action,
            params,
            runner,
        } = match self.prepare(diagnose, ctx) {
            Ok(ready) => ready,
            Err(message) => {
                span.in_scope(|| warn!(%message, "diagnostic refused"));
                return Err(failed(message));
            }
        };
        let attempt = self
            .sequence
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1)
            .max(1);
        let kind = action.runner;
        let task = {
            let action = action.clone();
            async move {
                let timeout = action
                    .phases
                    .get(PhaseName::Execute)
                    .map_or(action.timeout, |p| p.timeout);
                let started = Instant::now();
                let outcome = runner
                    .run_phase(PhaseRequest {
                        incident: &incident,
                        action: &action,
                        phase: PhaseName::Execute,
                        params: &params,
                        attempt,
                        timeout,
                        snapshot: None,
                    })
                    .await;
                let elapsed_ms = crate::evidence::millis(started.elapsed());
                match &outcome {
                    Ok(o) => info!(elapsed_ms, exit = ?o.exit, "diagnostic ran"),
                    Err(e) => warn!(elapsed_ms, error = %e, "diagnostic could not run"),
                }
                outcome
            }
            .instrument(span)
        };
        // Its own task: a walk that stops waiting does not leave the container behind.
        let outcome = tokio::spawn(task)
            .await
            .map_err(|e| failed(format!("the diagnostic's task ended abnormally: {e}")))?
            .map_err(|e| failed(e.to_string()))?;
        parse_outcome(&outcome, kind).map_err(failed)
    }
}

/// The evidence in a finished phase: its stdout as one JSON value, when it exited 0.
pub fn parse_outcome(outcome: &PhaseOutcome, kind: RunnerKind) -> Result<Value, String> {
    match &outcome.exit {
        PhaseExit::Success | PhaseExit::AlreadyHealthy => {}
        PhaseExit::Failed { code, reason } => {
            let head = match code {
                Some(code) => format!("execute exited with code {code}"),
                None => format!("execute failed: {reason}"),
            };
            return Err(with_output(head, outcome));
        }
        PhaseExit::TimedOut { after_ms } => {
            return Err(with_output(
                format!("execute ran over its timeout and was killed after {after_ms} ms"),
                outcome,
            ));
        }
    }
    let parsed = match kind {
        // Kubernetes keeps one log for stdout and stderr: the value is the one JSON document
        // starting at the beginning of a line among the log's text lines.
        RunnerKind::KubernetesJob | RunnerKind::Kubernetes => json_in_log(&outcome.stdout),
        RunnerKind::Docker => serde_json::from_str::<Value>(outcome.stdout.trim()).map_err(|e| e.to_string()),
    };
    parsed.map_err(|e| with_output(format!("its output is not one JSON value ({e})"), outcome))
}

/// The one JSON object or array of a log that mixes it with text lines: it starts at the
/// beginning of a line with `{` or `[` and ends at the end of a line.
pub fn json_in_log(log: &str) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_str::<Value>(log.trim()) {
        return Ok(v);
    }
    let mut found = Vec::new();
    let mut offset = 0;
    while offset < log.len() {
        let rest = &log[offset..];
        if rest.starts_with(['{', '[']) {
            let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
            if let Some(Ok(value)) = stream.next() {
                let end = offset + stream.byte_offset();
                if log[end..].starts_with(['\n', '\r']) || log[end..].is_empty() {
                    found.push(value);
                    offset = end;
                    continue;
                }
            }
        }
        match rest.find('\n') {
            Some(i) => offset += i + 1,
            None => break,
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err("no JSON object or array at the start of a line".into()),
        n => Err(format!("{n} JSON values, expected one")),
    }
}

/// `head`, then the end of stderr and of stdout when they are not empty.
fn with_output(head: String, outcome: &PhaseOutcome) -> String {
    let mut out = head;
    for (name, text) in [("stderr", &outcome.stderr), ("stdout", &outcome.stdout)] {
        let text = text.trim();
        if !text.is_empty() {
            out.push_str(&format!("; {name}: {}", tail(text, TAIL_CHARS)));
        }
    }
    out
}

/// The last `max` characters of `text`, marked when cut.
fn tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let kept: String = text.chars().skip(count - max).collect();
    format!("…{kept}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    fn outcome(exit: PhaseExit, stdout: &str, stderr: &str) -> PhaseOutcome {
        PhaseOutcome {
            exit,
            stdout: stdout.into(),
            stderr: stderr.into(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            snapshot: None,
            timing: None,
        }
    }

    #[test]
    fn stdout_is_one_json_value_and_failures_quote_the_output() {
        let ok = outcome(
            PhaseExit::Success,
            "{\"tcp\": {\"connected\": true}}\n",
            "progress",
        );
        assert_eq!(
            parse_outcome(&ok, RunnerKind::Docker).unwrap(),
            json!({"tcp": {"connected": true}})
        );
        let two = outcome(PhaseExit::Success, "{} {}", "");
        let err = parse_outcome(&two, RunnerKind::Docker).unwrap_err();
        assert!(err.starts_with("its output is not one JSON value ("), "{err}");
        assert!(err.ends_with("; stdout: {} {}"), "{err}");
        let exit = outcome(
            PhaseExit::Failed {
                code: Some(2),
                reason: "exit code 2".into(),
            },
            "",
            "network-troubleshoot execute: param target is invalid",
        );
        assert_eq!(
            parse_outcome(&exit, RunnerKind::Docker).unwrap_err(),
            "execute exited with code 2; stderr: network-troubleshoot execute: param target is invalid"
        );
        let long = "x".repeat(2000) + "END";
        let cut = parse_outcome(&outcome(PhaseExit::Success, &long, ""), RunnerKind::Docker).unwrap_err();
        assert!(cut.ends_with("END") && cut.contains("; stdout: …x"), "{cut}");
        assert!(cut.chars().count() < 800, "{cut}");
    }

    #[test]
    fn a_kubernetes_log_holds_the_json_among_text_lines() {
        let log = "dump-thread-stack execute: reading\n{\n  \"total\": 12,\n  \"nested\": {\n    \"a\": [1]\n  }\n}\ndump-thread-stack execute: 12 threads\n";
        assert_eq!(
            json_in_log(log).unwrap(),
            json!({"total": 12, "nested": {"a": [1]}})
        );
        assert_eq!(json_in_log("[1, 2]").unwrap(), json!([1, 2]));
        assert!(json_in_log("only text\n").is_err());
        assert!(json_in_log("{}\n{}\n").unwrap_err().contains("2 JSON values"));
    }

    #[test]
    fn params_render_without_escaping_and_name_a_missing_label() {
        use crate::model::template::{Template, Variable};
        let templates = BTreeMap::from([(
            "target".to_string(),
            Template::parse("payment.{{ $labels.namespace }}.svc:443", &[Variable::Label]).unwrap(),
        )]);
        let labels = BTreeMap::from([("namespace".to_string(), "shop\"; x".to_string())]);
        assert_eq!(
            render_params(&templates, &labels).unwrap()["target"],
            "payment.shop\"; x.svc:443"
        );
        let err = render_params(&templates, &BTreeMap::new()).unwrap_err();
        assert!(err.starts_with("param `target`: "), "{err}");
    }
}
