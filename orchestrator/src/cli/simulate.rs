//! `rootfix simulate`: walks a playbook against an alert and fixture evidence, and prints the path
//! as a tree, the pruned and errored nodes, the scores and the decision.
//!
//! With `--state URL`, the prune state is read from that Redis (never written: the walk runs on an
//! in-process copy), so a simulation shows what a real walk would skip.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;

use crate::alert::{Alert, WebhookPayload};
use crate::catalog::Catalog;
use crate::engine::diagnosis::{Decision, Diagnosis, NodeOutcome, NodeReport, RemedyDecision};
use crate::engine::fixture::FixtureEvidence;
use crate::engine::{WalkOptions, Walker};
use crate::model::Playbook;
use crate::state::memory::MemoryStateStore;
use crate::state::redis::RedisStateStore;
use crate::state::{PruneStore, StateError};

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The playbook file.
    #[arg(long)]
    pub playbook: PathBuf,
    /// An Alertmanager webhook body (the first alert is used, see --alert-index) or one alert.
    #[arg(long)]
    pub alert: PathBuf,
    /// Evidence fixture: signal → value, error and latency.
    #[arg(long)]
    pub evidence: PathBuf,
    /// Read prune state from this Redis (read only).
    #[arg(long)]
    pub state: Option<String>,
    /// Key prefix of that Redis's rootfix keys (as `state.key_prefix` in the serve config).
    #[arg(long, default_value = "")]
    pub state_prefix: String,
    /// The actions folder the playbook is checked against.
    #[arg(long, default_value = "actions")]
    pub actions: PathBuf,
    /// Which alert of the webhook body.
    #[arg(long, default_value_t = 0)]
    pub alert_index: usize,
    /// Walk this many times on the same state (shows pruning set in).
    #[arg(long, default_value_t = 1)]
    pub walks: u32,
    /// The walks' clock (RFC 3339); default: the alert's startsAt, so output is reproducible.
    #[arg(long)]
    pub now: Option<chrono::DateTime<Utc>>,
    /// Print the diagnosis as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What can stop a simulation before it walks.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Alert { path: PathBuf, message: String },
    #[error("{0}")]
    Evidence(#[from] crate::engine::fixture::FixtureError),
    #[error("state: {0}")]
    State(#[from] StateError),
}

pub fn run(args: &SimulateArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rootfix simulate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(simulate(args)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rootfix simulate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the simulation and returns what it prints.
pub async fn simulate(args: &SimulateArgs) -> Result<String, SimulateError> {
    let catalog = Catalog::load(&[args.playbook.clone(), args.actions.clone()])
        .map_err(|problems| SimulateError::Invalid(crate::catalog::problem_lines(&problems)))?;
    let playbook =
        catalog.playbooks.first().cloned().ok_or_else(|| {
            SimulateError::Invalid(format!("{} holds no Playbook", args.playbook.display()))
        })?;
    let alert = Arc::new(read_alert(&args.alert, args.alert_index)?);
    let evidence_text = read(&args.evidence)?;
    let evidence = Arc::new(FixtureEvidence::from_yaml(&evidence_text)?);

    let state = Arc::new(MemoryStateStore::new());
    if let Some(url) = &args.state {
        copy_prune_state(url, &args.state_prefix, &playbook, &alert, &state).await?;
    }
    let walker = Walker::new(state, WalkOptions::default());
    let mut out = String::new();
    let mut diagnoses = Vec::new();
    if !playbook.matches(&alert.labels) {
        let _ = writeln!(
            out,
            "note: the playbook's matchers do not fit this alert; walking it anyway\n"
        );
    }
    for i in 0..args.walks.max(1) {
        let now = args.now.unwrap_or(alert.starts_at);
        let d = walker.walk(&playbook, alert.clone(), evidence.clone(), now).await;
        if !args.json {
            if args.walks > 1 {
                let _ = writeln!(out, "── walk {} of {} ──", i + 1, args.walks);
            }
            out.push_str(&render(&playbook, &d));
        }
        diagnoses.push(d);
    }
    if args.json {
        let text = if diagnoses.len() == 1 {
            serde_json::to_string_pretty(&diagnoses[0])
        } else {
            serde_json::to_string_pretty(&diagnoses)
        };
        out = text.map_err(|e| SimulateError::Invalid(e.to_string()))? + "\n";
    }
    Ok(out)
}

fn read(path: &Path) -> Result<String, SimulateError> {
    std::fs::read_to_string(path).map_err(|source| SimulateError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_alert(path: &Path, index: usize) -> Result<Alert, SimulateError> {
    let text = read(path)?;
    let fail = |message: String| SimulateError::Alert {
        path: path.to_path_buf(),
        message,
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    if value.get("alerts").is_some() {
        let payload = WebhookPayload::parse(text.as_bytes()).map_err(|e| fail(e.to_string()))?;
        let count = payload.alerts.len();
        payload.alerts.into_iter().nth(index).ok_or_else(|| {
            fail(format!(
                "has {count} alerts; --alert-index {index} is out of range"
            ))
        })
    } else {
        let alert: Alert = serde_json::from_value(value).map_err(|e| fail(e.to_string()))?;
        alert.check().map_err(fail)?;
        Ok(alert)
    }
}

/// Copies the prune state of the alert's service from Redis into the in-process store.
async fn copy_prune_state(
    url: &str,
    prefix: &str,
    playbook: &Playbook,
    alert: &Alert,
    into: &MemoryStateStore,
) -> Result<(), SimulateError> {
    let Ok(service) =
        playbook
            .target_service
            .render(&alert.labels, &BTreeMap::new(), crate::model::template::no_escape)
    else {
        return Ok(());
    };
    let redis = RedisStateStore::connect(url, prefix).await?;
    for entry in redis.pruned_nodes(&service).await? {
        into.seed_prune(&service, &entry.node, &entry.value);
    }
    for node in &playbook.nodes {
        let streak = redis.miss_streak(&service, &node.id).await?;
        into.seed_streak(&service, &node.id, streak);
    }
    Ok(())
}

/// The diagnosis as a tree, with the decisions below it.
pub fn render(playbook: &Playbook, d: &Diagnosis) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "playbook {} · alert {} ({}) · service {}",
        d.playbook,
        d.alertname,
        d.fingerprint,
        d.service.as_deref().unwrap_or("?")
    );
    let _ = writeln!(
        out,
        "evidence at {} ± {}\n",
        d.evidence_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        humantime::format_duration(playbook.window)
    );
    let reports: BTreeMap<&str, &NodeReport> = d.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let remedies: BTreeMap<&str, &RemedyDecision> = d.remedies.iter().map(|r| (r.node.as_str(), r)).collect();
    render_node(playbook, 0, &reports, &remedies, "", "", &mut out);

    let list = |outcome: NodeOutcome| {
        let ids = d.with_outcome(outcome);
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.join(", ")
        }
    };
    let _ = writeln!(out, "\npruned: {}", list(NodeOutcome::Pruned));
    let _ = writeln!(out, "errors: {}", list(NodeOutcome::Error));
    for e in &d.state_errors {
        let _ = writeln!(out, "state: {e}");
    }
    if d.deadline_exceeded {
        let _ = writeln!(
            out,
            "the walk's deadline passed; late evidence is reported as errors"
        );
    }
    if d.remedies.is_empty() {
        let _ = writeln!(
            out,
            "decision: no remedy reached (diagnosis recorded, nothing to fix)"
        );
    }
    for r in &d.remedies {
        let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let verdict = match &r.decision {
            Decision::Act => "act".to_string(),
            Decision::NotifyOnly => "notify only".to_string(),
            Decision::Invalid(reason) => format!("invalid ({reason})"),
        };
        let _ = writeln!(
            out,
            "decision: {verdict}: {}{} (score {:.3}, threshold {:.3}) at {}",
            r.action,
            params.iter().map(|p| format!(" {p}")).collect::<String>(),
            r.score,
            r.threshold,
            r.node
        );
        let wave_of = crate::fix::executor::wave_of_steps(&r.waves, r.steps.len());
        for (k, step) in r.steps.iter().enumerate() {
            let params: Vec<String> = step.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let wave = if r.waves.is_empty() {
                String::new()
            } else {
                format!("wave {} · ", wave_of[k] + 1)
            };
            let _ = writeln!(
                out,
                "  {wave}step {}: {} {}",
                k + 1,
                step.action,
                params.join(" ")
            );
        }
    }
    out
}

fn render_node(
    playbook: &Playbook,
    index: usize,
    reports: &BTreeMap<&str, &NodeReport>,
    remedies: &BTreeMap<&str, &RemedyDecision>,
    lead: &str,
    child_lead: &str,
    out: &mut String,
) {
    let node = &playbook.nodes[index];
    let Some(report) = reports.get(node.id.as_str()) else {
        return;
    };
    let mut line = format!("{lead}{}  {}", node.id, report.outcome.as_str().to_uppercase());
    if report.reprobe {
        line.push_str(" (re-probe)");
    }
    if report.pruned_now {
        line.push_str(" (now pruned)");
    }
    for (name, value) in &report.reads {
        let _ = write!(line, "  {name}={}", compact(value));
    }
    let _ = writeln!(out, "{line}");
    if let Some(detail) = &report.detail {
        let _ = writeln!(out, "{child_lead}   {detail}");
    }
    if let Some(r) = remedies.get(node.id.as_str()) {
        let arrow = match r.decision {
            Decision::Act => "act",
            Decision::NotifyOnly => "notify only",
            Decision::Invalid(_) => "invalid",
        };
        let _ = writeln!(
            out,
            "{child_lead}   remedy {}: score {:.3} / threshold {:.3} → {arrow}",
            r.action, r.score, r.threshold
        );
        for s in &r.signals {
            let mark = if s.held { "✓" } else { "✗" };
            let what = s.description.clone().unwrap_or_else(|| s.when.clone());
            let err = s
                .error
                .as_ref()
                .map(|e| format!(" (error: {e})"))
                .unwrap_or_default();
            let _ = writeln!(out, "{child_lead}     {mark} {:.3}  {what}{err}", s.weight);
        }
    }
    let visited: Vec<usize> = node
        .children
        .iter()
        .copied()
        .filter(|&c| reports.contains_key(playbook.nodes[c].id.as_str()))
        .collect();
    for (i, &child) in visited.iter().enumerate() {
        let last = i + 1 == visited.len();
        let (branch, cont) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        render_node(
            playbook,
            child,
            reports,
            remedies,
            &format!("{child_lead}{branch}"),
            &format!("{child_lead}{cont}"),
            out,
        );
    }
}

/// A value on one line, cut at 60 characters.
fn compact(value: &serde_json::Value) -> String {
    let text = if value.is_null() {
        "no-data".to_string()
    } else {
        value.to_string()
    };
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}
