//! Evidence: the [`EvidenceProvider`] seam between the walker and the world, and the per-walk
//! [`EvidenceCache`] that fetches each signal at most once, however many nodes read it and however
//! concurrently they ask.
//!
//! A value of JSON `null` means "no data" (an empty Prometheus result, say): it is not zero and
//! not an error.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::alert::Alert;
use crate::model::playbook::{Diagnose, Signal};

/// Why a signal could not be read. Cloned to every node that shares the fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("{kind} backend `{backend}` is not configured")]
    NoBackend { kind: &'static str, backend: String },
    #[error("cannot build the request: {0}")]
    Request(String),
    #[error("{0}")]
    Backend(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("the walk's deadline passed before the evidence arrived")]
    Deadline,
    #[error("diagnostic action `{action}` failed: {message}")]
    Diagnostic { action: String, message: String },
}

/// Where and when evidence is read: the alert, aligned to its start.
#[derive(Debug, Clone)]
pub struct EvidenceContext {
    pub alert: Arc<Alert>,
    /// Queries are evaluated at this instant (the alert's `startsAt`)...
    pub at: DateTime<Utc>,
    /// ...within ± this window.
    pub window: Duration,
    pub incident: Option<String>,
}

/// Reads evidence. Implementations do the I/O; the walker does none of its own.
#[async_trait]
pub trait EvidenceProvider: Send + Sync {
    /// The value of `signal` for `ctx`.
    async fn fetch(&self, signal: &Signal, ctx: &EvidenceContext)
    -> Result<serde_json::Value, EvidenceError>;

    /// Runs a read-only diagnostic action and returns its JSON output.
    async fn diagnose(
        &self,
        diagnose: &Diagnose,
        ctx: &EvidenceContext,
    ) -> Result<serde_json::Value, EvidenceError>;
}

/// What one fetch gave, with its time.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub result: Result<serde_json::Value, EvidenceError>,
    pub elapsed: Duration,
}

type SharedFetch = Shared<BoxFuture<'static, Fetched>>;

/// Memoizes fetches for one walk. Concurrent requests for one name share a single fetch.
pub struct EvidenceCache {
    provider: Arc<dyn EvidenceProvider>,
    ctx: Arc<EvidenceContext>,
    inflight: Mutex<HashMap<String, SharedFetch>>,
    fetches: std::sync::atomic::AtomicUsize,
}

impl EvidenceCache {
    pub fn new(provider: Arc<dyn EvidenceProvider>, ctx: EvidenceContext) -> Self {
        Self {
            provider,
            ctx: Arc::new(ctx),
            inflight: Mutex::new(HashMap::new()),
            fetches: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn context(&self) -> &EvidenceContext {
        &self.ctx
    }

    /// How many fetches were started (each name at most once).
    pub fn fetch_count(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The value of a declared signal.
    pub async fn signal(&self, signal: &Signal) -> Fetched {
        let provider = self.provider.clone();
        let ctx = self.ctx.clone();
        let signal = signal.clone();
        self.shared(&signal.name.clone(), move || {
            async move { provider.fetch(&signal, &ctx).await }.boxed()
        })
        .await
    }

    /// The output of a node's diagnostic action, under its `as` name.
    pub async fn diagnostic(&self, diagnose: &Diagnose) -> Fetched {
        let provider = self.provider.clone();
        let ctx = self.ctx.clone();
        let diagnose = diagnose.clone();
        self.shared(&diagnose.output.clone(), move || {
            async move { provider.diagnose(&diagnose, &ctx).await }.boxed()
        })
        .await
    }

    /// What was fetched so far, by name (finished fetches only).
    pub fn snapshot(&self) -> BTreeMap<String, Fetched> {
        let Ok(map) = self.inflight.lock() else {
            return BTreeMap::new();
        };
        map.iter()
            .filter_map(|(name, fut)| fut.peek().map(|f| (name.clone(), f.clone())))
            .collect()
    }

    async fn shared(
        &self,
        name: &str,
        start: impl FnOnce() -> BoxFuture<'static, Result<serde_json::Value, EvidenceError>>,
    ) -> Fetched {
        let fut = {
            let Ok(mut map) = self.inflight.lock() else {
                return Fetched {
                    result: Err(EvidenceError::Backend(
                        "evidence cache poisoned by a panic".into(),
                    )),
                    elapsed: Duration::ZERO,
                };
            };
            map.entry(name.to_string())
                .or_insert_with(|| {
                    self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let inner = start();
                    async move {
                        let started = Instant::now();
                        let result = inner.await;
                        Fetched {
                            result,
                            elapsed: started.elapsed(),
                        }
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        fut.await
    }
}
