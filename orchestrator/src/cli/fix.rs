//! `rootfix fix run|journal|recover`.
//!
//! `run` and `journal` go through the server's API like the other API commands (`--server` /
//! `--token` or `ROOTFIX_URL` / `ROOTFIX_TOKEN`): `run` needs role admin and is an operator's
//! explicit decision — it does not consult autonomy stages, but the server still refuses it
//! while the kill switch is on or when the action's runner cannot run here, checks the params,
//! takes the target's lock, journals every phase, and audits it all under the token's name.
//! `journal` (role viewer) prints one row per phase attempt, or the raw events with `--json`.
//!
//! `recover` talks to Redis and the runners directly with the serve config (`--config`), so it
//! is for whoever administers rootfix's machine (`serve` does the same at start).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Value, json};

use super::api::{ApiArgs, call, pretty, segment};
use crate::catalog::Catalog;
use crate::config::ServeConfig;
use crate::fix::executor::{Executor, FixReport};
use crate::fix::journal::{FixOutcome, JournalEntry, JournalEvent};
use crate::runner::PhaseExit;
use crate::state::StateStore;
use crate::state::redis::RedisStateStore;

#[derive(Debug, clap::Args)]
pub struct FixArgs {
    /// The serve config (Redis, actions, fixes), for `recover`.
    #[arg(long, default_value = "rootfix.yaml", global = true)]
    pub config: PathBuf,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print the API's JSON instead of text (`run`, `journal`).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: FixCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum FixCommand {
    /// Run an action's phases now for an incident, through the server (role admin).
    Run {
        #[arg(long)]
        incident: String,
        #[arg(long)]
        action: String,
        /// A param as NAME=VALUE (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// Finish every fix a stopped rootfix left unfinished (resume verify, or roll back); reads
    /// the serve config and talks to Redis and the runners directly.
    Recover,
    /// Print an incident's fix journal, one row per phase attempt (role viewer).
    Journal {
        #[arg(long)]
        incident: String,
    },
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))
}

#[derive(Debug, thiserror::Error)]
pub enum FixCliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Catalog(String),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Fix(#[from] crate::fix::executor::FixError),
    /// The server refused or could not be reached.
    #[error("{0}")]
    Api(String),
    #[error("the server's answer is not what this rootfix expects: {0}")]
    Answer(String),
}

pub fn run(args: &FixArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rootfix fix: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(args)) {
        Ok((text, ok)) => {
            print!("{text}");
            if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("rootfix fix: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(args: &FixArgs) -> Result<(String, bool), FixCliError> {
    match &args.command {
        FixCommand::Journal { incident } => {
            let path = format!("/api/v1/incidents/{}/journal", segment(incident));
            let body = call(&args.api, reqwest::Method::GET, &path, None)
                .await
                .map_err(FixCliError::Api)?;
            if args.json {
                return Ok((pretty(&body["items"]), true));
            }
            let entries: Vec<JournalEntry> = serde_json::from_value(body["items"].clone())
                .map_err(|e| FixCliError::Answer(e.to_string()))?;
            Ok((render_journal(incident, &entries), true))
        }
        FixCommand::Run {
            incident,
            action,
            params,
        } => {
            let path = format!("/api/v1/incidents/{}/fix", segment(incident));
            let params: BTreeMap<&str, &str> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let body = call(
                &args.api,
                reqwest::Method::POST,
                &path,
                Some(json!({"action": action, "params": params})),
            )
            .await
            .map_err(FixCliError::Api)?;
            let outcome: FixOutcome = serde_json::from_value(body["outcome"].clone())
                .map_err(|e| FixCliError::Answer(e.to_string()))?;
            let ok = matches!(outcome, FixOutcome::Succeeded | FixOutcome::AlreadyHealthy);
            if args.json {
                return Ok((pretty(&body), ok));
            }
            Ok((render_run(&body, &outcome), ok))
        }
        FixCommand::Recover => {
            let config = ServeConfig::load(&args.config)?;
            let state: Arc<dyn StateStore> =
                Arc::new(RedisStateStore::connect(&config.redis_url, &config.key_prefix).await?);
            let catalog = load_actions(&config)?;
            let executor = Executor::from_config(&config, state).await;
            let reports = executor.recover(&catalog.actions, &|_, _, _| None).await?;
            let mut out = String::new();
            if reports.is_empty() {
                out.push_str("no unfinished fixes\n");
            }
            let mut ok = true;
            for r in &reports {
                ok &= !r.outcome.pages();
                out.push_str(&render(r));
            }
            Ok((out, ok))
        }
    }
}

fn load_actions(config: &ServeConfig) -> Result<Catalog, FixCliError> {
    Catalog::load(std::slice::from_ref(&config.actions))
        .map_err(|p| FixCliError::Catalog(crate::catalog::problem_lines(&p)))
}

fn render(report: &FixReport) -> String {
    let mut out = format!("fix {}: {}\n", report.fix, report.outcome);
    for (phase, attempt, exit) in &report.phases {
        let _ = writeln!(
            out,
            "  {} (attempt {attempt}): {}",
            phase.as_str(),
            exit_text(exit)
        );
    }
    out
}

/// `fix <id> by <who>: <outcome>` and one line per phase attempt.
fn render_run(body: &Value, outcome: &FixOutcome) -> String {
    let mut out = format!(
        "fix {} by {}: {outcome}\n",
        body["fix"].as_str().unwrap_or("-"),
        body["by"].as_str().unwrap_or("-")
    );
    for p in body["phases"].as_array().into_iter().flatten() {
        let exit = serde_json::from_value::<PhaseExit>(p["exit"].clone())
            .map(|e| exit_text(&e))
            .unwrap_or_else(|_| p["exit"].to_string());
        let _ = writeln!(
            out,
            "  {} (attempt {}): {exit}",
            p["phase"].as_str().unwrap_or("-"),
            p["attempt"]
        );
    }
    out
}

fn exit_text(exit: &PhaseExit) -> String {
    match exit {
        PhaseExit::Success => "0".into(),
        PhaseExit::AlreadyHealthy => "3 (already healthy)".into(),
        PhaseExit::Failed { code: Some(c), .. } => c.to_string(),
        PhaseExit::Failed { code: None, reason } => format!("failed: {reason}"),
        PhaseExit::TimedOut { after_ms } => format!("timed out after {after_ms} ms"),
    }
}

/// A duration as `850ms` or `12.3s`.
fn duration_text(d: chrono::TimeDelta) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// The first non-empty line of the output (stdout, else stderr), at most 60 characters.
fn first_line(stdout: &str, stderr: &str) -> String {
    let line = stdout
        .lines()
        .chain(stderr.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() > 60 {
        format!("{}…", line.chars().take(59).collect::<String>())
    } else {
        line.to_string()
    }
}

/// One block per fix (its header, then a row per phase attempt).
pub fn render_journal(incident: &str, entries: &[JournalEntry]) -> String {
    if entries.is_empty() {
        return format!("no journal for incident {incident}\n");
    }
    let mut fixes: Vec<&str> = Vec::new();
    for e in entries {
        if !fixes.contains(&e.fix.as_str()) {
            fixes.push(&e.fix);
        }
    }
    let mut out = String::new();
    for fix in fixes {
        let of_fix: Vec<&JournalEntry> = entries.iter().filter(|e| e.fix == fix).collect();
        let outcome = of_fix.iter().rev().find_map(|e| match &e.event {
            JournalEvent::FixFinished { outcome } => Some(outcome.to_string()),
            _ => None,
        });
        let _ = writeln!(
            out,
            "fix {fix}: {}",
            outcome.unwrap_or_else(|| "not finished".into())
        );
        let mut rows: Vec<[String; 6]> = Vec::new();
        let mut open: BTreeMap<(String, u32), chrono::DateTime<chrono::Utc>> = BTreeMap::new();
        if let Some(steps) = of_fix.iter().find_map(|e| match &e.event {
            JournalEvent::FixStarted { steps, .. } if !steps.is_empty() => Some(steps),
            _ => None,
        }) {
            for (k, s) in steps.iter().enumerate() {
                let params: Vec<String> = s.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(out, "  step {}: {} {}", k + 1, s.action, params.join(" "));
            }
        }
        for e in &of_fix {
            // A step's phase: `2:execute`.
            let label = |phase: &str| match e.step {
                Some(n) => format!("{n}:{phase}"),
                None => phase.to_string(),
            };
            match &e.event {
                JournalEvent::PhaseStarted { phase, attempt } => {
                    open.insert((label(phase.as_str()), *attempt), e.at);
                }
                JournalEvent::StepFinished { outcome } => rows.push([
                    label("step"),
                    "-".into(),
                    e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "-".into(),
                    outcome.label().into(),
                    outcome.to_string(),
                ]),
                JournalEvent::WaveStarted { wave, first, last } => rows.push([
                    format!("wave-{wave}"),
                    "-".into(),
                    e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "-".into(),
                    "-".into(),
                    format!("steps {first} to {last}"),
                ]),
                JournalEvent::RollingBack { reason } => rows.push([
                    "rolling-back".into(),
                    "-".into(),
                    e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "-".into(),
                    "-".into(),
                    reason.clone(),
                ]),
                JournalEvent::PhaseFinished {
                    phase,
                    attempt,
                    exit,
                    stdout,
                    stderr,
                    ..
                } => {
                    let started = open.remove(&(label(phase.as_str()), *attempt));
                    rows.push([
                        label(phase.as_str()),
                        attempt.to_string(),
                        started.map_or("-".into(), |s| {
                            s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        }),
                        started.map_or("-".into(), |s| duration_text(e.at - s)),
                        exit_text(exit),
                        first_line(stdout, stderr),
                    ]);
                }
                JournalEvent::VerifyCondition { attempt, held, error } => rows.push([
                    "verify-condition".into(),
                    attempt.to_string(),
                    e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "-".into(),
                    if *held { "held".into() } else { "not held".into() },
                    error.clone().unwrap_or_default(),
                ]),
                _ => {}
            }
        }
        // A phase that started and has no end yet (running, or rootfix stopped in it).
        for ((phase, attempt), started) in open {
            rows.push([
                phase,
                attempt.to_string(),
                started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "-".into(),
                "running".into(),
                String::new(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}

fn table(rows: &[[String; 6]]) -> String {
    let header = ["PHASE", "ATTEMPT", "STARTED", "DURATION", "EXIT", "OUTPUT"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from("  ");
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::action::PhaseName;

    #[test]
    fn the_journal_is_one_row_per_phase_attempt() {
        let at = |s: i64| chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default();
        let e = |s: i64, event: JournalEvent| JournalEntry {
            step: None,
            fix: "inc-1/a".into(),
            at: at(s),
            event,
        };
        let entries = [
            e(
                0,
                JournalEvent::FixStarted {
                    params: BTreeMap::new(),
                    fencing_token: 1,
                    steps: Vec::new(),
                    waves: Vec::new(),
                },
            ),
            e(
                0,
                JournalEvent::PhaseStarted {
                    phase: PhaseName::Precheck,
                    attempt: 1,
                },
            ),
            e(
                2,
                JournalEvent::PhaseFinished {
                    phase: PhaseName::Precheck,
                    attempt: 1,
                    exit: PhaseExit::Success,
                    snapshot: None,
                    stdout: "\nbroken: fixing\nmore".into(),
                    stderr: String::new(),
                },
            ),
            e(
                3,
                JournalEvent::FixFinished {
                    outcome: FixOutcome::Succeeded,
                },
            ),
        ];
        let text = render_journal("inc-1", &entries);
        assert_eq!(
            text,
            "fix inc-1/a: succeeded\n  PHASE     ATTEMPT  STARTED               DURATION  EXIT  OUTPUT\n  precheck  1        2027-01-15T08:00:00Z  2.0s      0     broken: fixing\n"
        );
    }
}
