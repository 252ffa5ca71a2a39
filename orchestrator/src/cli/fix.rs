//! `rootfix fix run|recover|journal`: an operator runs a fix now, finishes fixes a crashed rootfix
//! left, or reads a fix's journal. These talk to Redis and the runners directly with the serve
//! config, so they are for whoever administers rootfix's machine.
//!
//! `run` is an operator's explicit decision: it does not consult autonomy stages (no automatic
//! path does without them), but it takes the target's lock, refuses params outside their
//! patterns, and journals every phase like any fix.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::config::ServeConfig;
use crate::fix::executor::{Executor, FixPlan, FixReport};
use crate::fix::journal::FixOutcome;
use crate::state::StateStore;
use crate::state::redis::RedisStateStore;

#[derive(Debug, clap::Args)]
pub struct FixArgs {
    /// The serve config (Redis, actions, fixes).
    #[arg(long, default_value = "rootfix.yaml", global = true)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: FixCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum FixCommand {
    /// Run an action's phases now for an incident.
    Run {
        #[arg(long)]
        incident: String,
        #[arg(long)]
        action: String,
        /// A param as NAME=VALUE (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// Finish every fix a stopped rootfix left unfinished (resume verify, or roll back).
    Recover,
    /// Print an incident's fix journal.
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
    #[error("no Action named `{0}`")]
    NoAction(String),
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
    let config = ServeConfig::load(&args.config)?;
    let state: Arc<dyn StateStore> =
        Arc::new(RedisStateStore::connect(&config.redis_url, &config.key_prefix).await?);
    match &args.command {
        FixCommand::Journal { incident } => {
            let mut out = String::new();
            for e in state.journal(incident).await? {
                let _ = writeln!(out, "{}", serde_json::to_string(&e).unwrap_or_default());
            }
            Ok((out, true))
        }
        FixCommand::Run {
            incident,
            action,
            params,
        } => {
            let catalog = load_actions(&config)?;
            let action = catalog
                .actions
                .get(action)
                .cloned()
                .ok_or_else(|| FixCliError::NoAction(action.clone()))?;
            let executor = Executor::from_config(&config, state).await;
            let report = executor
                .run(FixPlan {
                    incident: incident.clone(),
                    action,
                    params: params.iter().cloned().collect::<BTreeMap<_, _>>(),
                    verify: None,
                    dry_run: false,
                })
                .await?;
            let ok = matches!(report.outcome, FixOutcome::Succeeded | FixOutcome::AlreadyHealthy);
            Ok((render(&report), ok))
        }
        FixCommand::Recover => {
            let catalog = load_actions(&config)?;
            let executor = Executor::from_config(&config, state).await;
            let reports = executor.recover(&catalog.actions, &|_, _| None).await?;
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
        .map_err(|p| FixCliError::Catalog(p.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))
}

fn render(report: &FixReport) -> String {
    let mut out = format!("fix {}: {}\n", report.fix, report.outcome);
    for (phase, attempt, exit) in &report.phases {
        let _ = writeln!(
            out,
            "  {} (attempt {attempt}): {}",
            phase.as_str(),
            serde_json::to_string(exit).unwrap_or_default()
        );
    }
    out
}
