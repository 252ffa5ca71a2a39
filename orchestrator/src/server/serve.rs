//! `rootfix serve`: loads the catalog, opens the port (`/healthz` at once, `/readyz` with the
//! start-up phase), connects to Redis (waiting as long as it takes), installs the full API,
//! recovers the previous run's fixes, and runs the event loop and the catalog watcher until
//! SIGTERM or SIGINT; then stops taking requests, lets the event loop finish the entries in hand,
//! and exits 0 — in every phase. Playbooks' diagnostic actions run on the fixes'
//! runners ([`ActionDiagnostics`], plugged into the evidence provider).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::guard::HttpLimits;
use super::listen::{self, ConnectionLimits, Switch};
use super::readiness::{Phase, Readiness};
use super::{AppState, router};
use crate::autonomy::clock::SystemClock;
use crate::autonomy::controller::Autonomy;
use crate::catalog::Catalog;
use crate::config::ServeConfig;
use crate::engine::{EvidenceProvider, WalkOptions, Walker};
use crate::events::EventLoop;
use crate::events::handler::IncidentHandler;
use crate::events::probe::ReadProbe;
use crate::evidence::DiagnosticRunner;
use crate::metrics::Metrics;
use crate::reload::{CatalogHandle, Watcher};
use crate::runner::availability::RunnerAvailability;
use crate::runner::diagnostic::ActionDiagnostics;
use crate::state::StateStore;
use crate::state::redis::RedisStateStore;

/// How often the runners' availability (the Docker engine's ping) is checked again.
const RUNNER_RECHECK: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("playbooks or actions are invalid:\n{}", crate::catalog::problem_lines(.0))]
    Catalog(Vec<crate::catalog::Problem>),
    #[error("the evidence configuration is invalid: {0}")]
    Evidence(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("notifications cannot start: {0}")]
    Notifications(String),
    #[error("the silences section is unusable: {0}")]
    Silences(String),
    #[error("chat callbacks cannot start: {0}")]
    Chat(String),
    #[error("the server failed: {0}")]
    Server(std::io::Error),
}

/// Builds the evidence provider from the config's `evidence:` section, with the runner of the
/// playbooks' diagnostic actions (the same runners the fixes use).
pub type EvidenceFactory = dyn Fn(&ServeConfig, Arc<dyn DiagnosticRunner>) -> Result<Arc<dyn EvidenceProvider>, String>
    + Send
    + Sync;

pub async fn serve(config: ServeConfig, evidence: &EvidenceFactory) -> Result<(), ServeError> {
    let catalog =
        Catalog::load(&[config.playbooks.clone(), config.actions.clone()]).map_err(ServeError::Catalog)?;
    info!(summary = %catalog.summary(), "catalog loaded");
    warn_unconfigured_backends(&catalog, &config);
    let catalog = CatalogHandle::new(catalog);

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });

    // The port first: /healthz answers from now on, /readyz says what start-up waits for.
    let probe = Arc::new(ReadProbe::default());
    let readiness = Arc::new(Readiness::starting(&config.redis_url, probe.clone()));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    info!(listen = %config.listen, consumer = %config.consumer, "rootfix listening");
    let switch = Switch::new(readiness.clone());
    let http_limits = HttpLimits::from_config(&config.limits);
    let server = tokio::spawn(listen::run(
        listener,
        switch.clone(),
        ConnectionLimits {
            header_timeout: config.limits.header_timeout,
            max_connections: config.limits.max_connections,
        },
        stop_rx.clone(),
        http_limits.request_timeout,
    ));

    let Some(redis) = connect_redis(&config, &readiness, stop_rx.clone()).await else {
        return stopped_during_start_up(server).await;
    };
    let state: Arc<dyn StateStore> = Arc::new(redis);
    let started = start(
        config,
        catalog,
        state,
        evidence,
        readiness.clone(),
        probe,
        switch,
        http_limits,
        stop_rx.clone(),
    )
    .await?;
    let Some((event_loop, autonomy, walk_deadline)) = started else {
        return stopped_during_start_up(server).await;
    };

    let _ = server.await;
    readiness.set(Phase::ShuttingDown);
    // The walk deadline bounds the entry in hand; a little more for the final save.
    let grace = walk_deadline + Duration::from_secs(5);
    if tokio::time::timeout(grace, event_loop).await.is_err() {
        warn!(
            ?grace,
            "the event loop did not finish in time; its entries stay pending for the next start"
        );
    }
    // Fixes in flight finish their phases (they are journaled; a restart would resume them).
    if !autonomy.wait_idle(Duration::from_secs(30)).await {
        warn!("fixes are still running at shutdown; the next start resumes them from the journal");
    }
    info!("rootfix stopped");
    Ok(())
}

/// SIGTERM before start-up completed: close the port and exit 0 (nothing was taken on).
async fn stopped_during_start_up(server: tokio::task::JoinHandle<()>) -> Result<(), ServeError> {
    let _ = server.await;
    info!("rootfix stopped during start-up");
    Ok(())
}

/// Everything after Redis answers: the parts, the full router, recovery, the event loop. `None`
/// when a stop was asked for meanwhile.
#[allow(clippy::too_many_arguments)]
async fn start(
    config: ServeConfig,
    catalog: CatalogHandle,
    state: Arc<dyn StateStore>,
    evidence: &EvidenceFactory,
    readiness: Arc<Readiness>,
    probe: Arc<ReadProbe>,
    switch: Switch,
    http_limits: HttpLimits,
    mut stop_rx: watch::Receiver<bool>,
) -> Result<Option<(tokio::task::JoinHandle<()>, Arc<Autonomy>, Duration)>, ServeError> {
    let metrics = Arc::new(Metrics::new());
    let notifier = crate::notify::Notifier::start(config.notifications.clone(), Some(metrics.clone()))
        .map_err(|e| ServeError::Notifications(e.to_string()))?;
    let silences = config
        .silences
        .as_ref()
        .map(crate::silence::SilenceClient::from_config)
        .transpose()
        .map_err(|e| ServeError::Silences(e.to_string()))?;
    let (executor, availability) =
        crate::fix::executor::Executor::from_config_checked(&config, state.clone()).await;
    let availability = Arc::new(availability);
    warn_cannot_run(&availability, &catalog);
    // Diagnostic actions run on the fixes' runners, asked through the same availability.
    let diagnostics = executor.runners().into_iter().fold(
        ActionDiagnostics::new(catalog.clone(), availability.clone()),
        |d, (kind, runner)| d.with_runner(kind, runner),
    );
    let evidence = evidence(&config, Arc::new(diagnostics)).map_err(ServeError::Evidence)?;
    let executor = Arc::new(executor);
    let autonomy = Arc::new(
        Autonomy::new(
            state.clone(),
            config.autonomy.clone(),
            Arc::new(SystemClock),
            catalog.clone(),
            executor,
            evidence.clone(),
            notifier,
            silences,
            config.consumer.clone(),
        )
        .with_metrics(metrics.clone())
        .with_availability(availability.clone())
        .with_alert_rules(config.limits.alert_rules)
        .with_retention(config.retention.clone()),
    );
    if config.autonomy.scopes.0.is_empty() {
        warn!("autonomy.scopes is empty: no target is inside a scope, so rootfix runs no fix on its own");
    }
    // The full API from here: alerts are stored while the previous run's fixes are recovered,
    // and handled once the event loop reads (/readyz says which).
    switch.install(router(AppState {
        state: state.clone(),
        catalog: catalog.clone(),
        tokens: Arc::new(config.tokens.clone()),
        metrics: metrics.clone(),
        http: http_limits,
        readiness: readiness.clone(),
        autonomy: Some(autonomy.clone()),
        chat: Arc::new(super::chat::ChatState::new(config.chat.clone()).map_err(ServeError::Chat)?),
    }));

    // Finish fixes a stopped rootfix left: resume verify where execute completed, else roll back.
    let unfinished = state.active_fixes().await.map(|f| f.len()).unwrap_or(0);
    readiness.set(Phase::Recovering { fixes: unfinished });
    let recovered = tokio::select! {
        r = autonomy.recover() => Some(r),
        _ = stop_rx.wait_for(|s| *s) => None,
    };
    match recovered {
        None => {
            warn!("shutdown during recovery: the next start resumes the unfinished fixes from the journal");
            return Ok(None);
        }
        Some(Ok(reports)) => {
            for r in reports {
                if r.outcome.pages() {
                    error!(fix = %r.fix, outcome = ?r.outcome, "recovered fix needs a human now");
                } else {
                    info!(fix = %r.fix, outcome = ?r.outcome, "recovered an unfinished fix");
                }
            }
        }
        Some(Err(e)) => {
            error!(error = %e, "recovering unfinished fixes failed; `rootfix fix recover` retries")
        }
    }

    readiness.set(Phase::StartingEventLoop);
    let walker = Arc::new(Walker::new(
        state.clone(),
        WalkOptions {
            deadline: config.limits.walk_deadline,
            sequential: false,
        },
    ));
    let events = EventLoop {
        state: state.clone(),
        handler: Arc::new(IncidentHandler {
            state: state.clone(),
            catalog: catalog.clone(),
            walker,
            evidence,
            metrics: metrics.clone(),
            autonomy: Some(autonomy.clone()),
            rules: config.limits.alert_rules,
        }),
        consumer: config.consumer.clone(),
        workers: config.limits.workers,
        claim_idle: config.limits.claim_idle,
        probe,
    };
    let event_loop = tokio::spawn(events.run(stop_rx.clone()));
    tokio::spawn(autonomy.clone().run_leader(stop_rx.clone()));
    // A Docker engine that comes back (or goes away) is noticed within this interval.
    tokio::spawn(availability.run(RUNNER_RECHECK, stop_rx.clone()));
    let watcher = Watcher::new(
        catalog.clone(),
        vec![config.playbooks.clone(), config.actions.clone()],
        metrics,
    );
    tokio::spawn(watcher.run(config.limits.reload_interval, stop_rx.clone()));
    readiness.set(Phase::Serving);
    info!("rootfix serving");
    Ok(Some((event_loop, autonomy, config.limits.walk_deadline)))
}

/// Connects to Redis, retrying with backoff for as long as it takes (`/readyz` says why it
/// waits); `None` if a stop is asked for first.
async fn connect_redis(
    config: &ServeConfig,
    readiness: &Readiness,
    mut stop: watch::Receiver<bool>,
) -> Option<RedisStateStore> {
    let mut backoff = Duration::from_millis(200);
    loop {
        let attempt = tokio::select! {
            a = RedisStateStore::connect(&config.redis_url, &config.key_prefix) => a,
            _ = stop.wait_for(|s| *s) => return None,
        };
        match attempt {
            Ok(store) => return Some(store),
            Err(e) => {
                warn!(error = %e, "Redis not reachable; rootfix takes no action without its state and retries");
                readiness.redis_error(e.to_string());
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return None,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM"),
                    _ = int.recv() => info!("SIGINT"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// One warning per action whose runner cannot run on this install, with why: its remedies will be
/// diagnosed and notified, never offered.
fn warn_cannot_run(availability: &RunnerAvailability, catalog: &CatalogHandle) {
    for c in availability.cannot_run(&catalog.current().actions) {
        warn!(
            action = %c.action,
            runner = c.runner,
            why = %c.why,
            "action {} cannot run here: {}; its remedies are diagnosed, not offered",
            c.action,
            c.why
        );
    }
}

/// Signals that name a backend the config does not have fail at every walk; say so at start.
fn warn_unconfigured_backends(catalog: &Catalog, config: &ServeConfig) {
    use crate::model::playbook::SignalKind;
    for playbook in &catalog.playbooks {
        for signal in playbook.evidence.values() {
            let (kind, source, configured) = match &signal.kind {
                SignalKind::Prometheus { source, .. } => (
                    "prometheus",
                    source.as_str(),
                    config.evidence.prometheus.contains_key(source),
                ),
                SignalKind::Loki { source, .. } => {
                    ("loki", source.as_str(), config.evidence.loki.contains_key(source))
                }
                SignalKind::JsonHttp {
                    source: Some(source), ..
                } => (
                    "jsonhttp",
                    source.as_str(),
                    config.evidence.jsonhttp.contains_key(source),
                ),
                _ => continue,
            };
            if !configured {
                warn!(
                    playbook = %playbook.name,
                    signal = %signal.name,
                    "the signal reads {kind} backend `{source}`, which evidence.{kind} does not configure; nodes reading it will be `error`"
                );
            }
        }
    }
}
