//! `rootfix backtest`: replays recorded incidents (a corpus file, or a server's export) under
//! candidate playbooks and prints what they would have decided differently. Exit 0 when no
//! decision changes (or `--allow-changes`), 1 when one does, 2 when it cannot run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::backtest::compare::Summary;
use crate::backtest::corpus::parse_corpus;
use crate::backtest::report::{render_json, render_text};
use crate::backtest::{PruneMode, ReplayOptions, Replayer, replay_all};
use crate::catalog::Catalog;
use crate::engine::evidence::EvidenceProvider;
use crate::evidence::LiveEvidence;
use crate::evidence::config::{BackendConfig, EvidenceBackends};

#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// The candidate playbooks: folders or files.
    #[arg(long, required = true, num_args = 1..)]
    pub playbooks: Vec<PathBuf>,
    /// The actions the playbooks are checked against.
    #[arg(long, default_value = "actions")]
    pub actions: PathBuf,
    /// The recorded incidents: JSON lines from `rootfix incidents export` (or retention's export
    /// file); `-` reads standard input.
    #[arg(long, conflicts_with = "server", required_unless_present = "server")]
    pub corpus: Option<PathBuf>,
    /// Read the recorded incidents from this rootfix (`GET /api/v1/incidents/export`, a viewer
    /// token in `--token` or `ROOTFIX_TOKEN`).
    #[arg(long)]
    pub server: Option<String>,
    #[arg(long, env = "ROOTFIX_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// With `--server`: only incidents created within this window (7d) or since an RFC 3339 time.
    #[arg(long, requires = "server")]
    pub since: Option<String>,
    /// Read signals the record lacks (new, or changed since) from Prometheus or Loki at the
    /// record's evidence time; the backends come from `--config` or `--prometheus`.
    #[arg(long)]
    pub fetch_missing: bool,
    /// A serve config whose `evidence:` section names the backends (for `--fetch-missing`).
    #[arg(long, conflicts_with = "prometheus")]
    pub config: Option<PathBuf>,
    /// A Prometheus base URL, as the `default` backend (for `--fetch-missing`).
    #[arg(long)]
    pub prometheus: Option<String>,
    /// Walk without the prune state the records saw (every node evaluated).
    #[arg(long)]
    pub ignore_prune: bool,
    /// Print every replayed incident and the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 even when a decision changes.
    #[arg(long)]
    pub allow_changes: bool,
}

/// What stops a backtest before it replays.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("{0}")]
    Playbooks(String),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Corpus(#[from] crate::backtest::corpus::CorpusError),
    #[error("{0}")]
    Server(String),
    #[error("--fetch-missing needs the backends: --config FILE or --prometheus URL")]
    NoBackends,
    #[error("{0}")]
    Evidence(String),
}

pub fn run(args: &BacktestArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rootfix backtest: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(backtest(args)) {
        Ok((text, summary)) => {
            print!("{}", super::api::terminal_safe(&text));
            if summary.decisions_changed > 0 && !args.allow_changes {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("rootfix backtest: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the backtest and returns what it prints, with the summary.
pub async fn backtest(args: &BacktestArgs) -> Result<(String, Summary), BacktestError> {
    let mut paths = args.playbooks.clone();
    paths.push(args.actions.clone());
    let catalog = Catalog::load(&paths)
        .map_err(|problems| BacktestError::Playbooks(crate::catalog::problem_lines(&problems)))?;
    let incidents = read_corpus(args).await?;
    let fetch_missing = if args.fetch_missing {
        Some(backends(args)?)
    } else {
        None
    };
    let replayer = Replayer::new(
        Arc::new(catalog),
        ReplayOptions {
            prune: if args.ignore_prune {
                PruneMode::Ignored
            } else {
                PruneMode::Recorded
            },
            fetch_missing,
            ..ReplayOptions::default()
        },
    );
    let replays = replay_all(&replayer, incidents).await;
    let summary = Summary::of(&replays);
    let text = if args.json {
        render_json(&replays, &summary)
    } else {
        render_text(&replays, &summary)
    };
    Ok((text, summary))
}

async fn read_corpus(args: &BacktestArgs) -> Result<Vec<crate::incident::Incident>, BacktestError> {
    if let Some(server) = &args.server {
        let api = super::api::ApiArgs {
            server: server.clone(),
            token: args.token.clone(),
        };
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(since) = &args.since {
            query.append_pair("since", since);
        }
        let path = format!("/api/v1/incidents/export?{}", query.finish());
        let text = super::api::get_text(&api, &path)
            .await
            .map_err(|e| BacktestError::Server(format!("{server}: {e}")))?;
        return Ok(parse_corpus(&format!("{server}{path}"), &text)?);
    }
    let path = args.corpus.clone().unwrap_or_else(|| PathBuf::from("-"));
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| {
            BacktestError::Read {
                path: path.clone(),
                source,
            }
        })?;
        text
    } else {
        std::fs::read_to_string(&path).map_err(|source| BacktestError::Read {
            path: path.clone(),
            source,
        })?
    };
    Ok(parse_corpus(&path.display().to_string(), &text)?)
}

fn backends(args: &BacktestArgs) -> Result<Arc<dyn EvidenceProvider>, BacktestError> {
    let backends = if let Some(path) = &args.config {
        crate::config::ServeConfig::load(path)
            .map_err(|e| BacktestError::Evidence(e.to_string()))?
            .evidence
    } else if let Some(url) = &args.prometheus {
        let backend: BackendConfig = serde_json::from_value(serde_json::json!({"url": url}))
            .map_err(|e| BacktestError::Evidence(format!("--prometheus: {e}")))?;
        EvidenceBackends {
            prometheus: [("default".to_string(), backend)].into(),
            ..EvidenceBackends::default()
        }
    } else {
        return Err(BacktestError::NoBackends);
    };
    let live = LiveEvidence::new(&backends).map_err(|e| BacktestError::Evidence(e.to_string()))?;
    Ok(Arc::new(live))
}
