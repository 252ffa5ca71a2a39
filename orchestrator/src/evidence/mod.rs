//! Live evidence: [`LiveEvidence`] reads each playbook signal from the real world, one module per
//! signal kind, behind the walker's [`EvidenceProvider`] seam.
//!
//! # Layout
//! - [`config`]: the `evidence:` section of the serve config (backends by kind and `source`
//!   name, probe trust roots) and its validation.
//! - [`render`]: how label values enter queries, URLs and addresses (escaping per place).
//! - [`prometheus`], [`loki`], [`jsonhttp`]: the query backends, through [`client`].
//! - [`http_probe`], [`dns`], [`tcp`]: the probes; network failures are evidence, not errors.
//! - [`trust`]: trust roots (system store + extra CAs) and the ring crypto provider.
//!
//! Errors: only what stops a signal from being read at all is an [`EvidenceError`]: an unknown
//! `source` (`NoBackend`), a request that cannot be formed (`Request`), a backend that fails or
//! refuses the query (`Backend`), a backend that does not answer in time (`Timeout`). A probe that
//! finds the network broken returns that finding as its value.
//!
//! # Dependencies
//! - `reqwest` (rustls, no default features) for the backends: pooled connections, headers and
//!   timeouts, nothing to hand-write; given our own rustls config so it trusts what probes trust.
//! - `hyper` (client conn, HTTP/1.1) + `tokio-rustls` for the probe: each step (DNS, connect,
//!   handshake, first byte) is done and timed by hand, which a pooled client hides.
//! - `rustls` with *ring*: no OpenSSL, no aws-lc C build; the verifier can be wrapped to record.
//! - `rustls-native-certs`: the machine's own trust store (see [`trust`]).
//! - `x509-parser`: issuer, subject and expiry of the leaf, also for chains that do not verify.

pub mod client;
pub mod config;
pub mod dns;
pub mod http_probe;
pub mod jsonhttp;
pub mod loki;
pub mod prometheus;
pub mod render;
pub mod tcp;
pub mod trust;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use tracing::Instrument;

use self::client::BackendClient;
pub use self::config::{BackendConfig, EvidenceBackends, EvidenceConfigError, ProbeConfig};
use self::http_probe::{HttpProber, ProbeRequest};
use self::trust::Trust;
use crate::engine::evidence::{EvidenceContext, EvidenceError, EvidenceProvider};
use crate::model::playbook::{Diagnose, Signal, SignalKind};

/// Runs a node's read-only diagnostic action (a container) and returns its JSON output. The
/// runners implement this ([`crate::runner::diagnostic::ActionDiagnostics`], which `serve` plugs
/// in); [`LiveEvidence`] only forwards to it.
#[async_trait]
pub trait DiagnosticRunner: Send + Sync {
    async fn run(&self, diagnose: &Diagnose, ctx: &EvidenceContext) -> Result<Value, EvidenceError>;
}

/// The production [`EvidenceProvider`]: configured backends, the probes and, once plugged in, a
/// diagnostic runner.
pub struct LiveEvidence {
    prometheus: BTreeMap<String, BackendClient>,
    loki: BTreeMap<String, BackendClient>,
    jsonhttp: BTreeMap<String, BackendClient>,
    /// For `jsonhttp` signals with an absolute URL.
    direct: BackendClient,
    prober: HttpProber,
    probe_ceiling: Duration,
    diagnostics: Option<Arc<dyn DiagnosticRunner>>,
}

impl LiveEvidence {
    /// Validates `config`, loads the system trust store and the extra CAs, and builds a client per
    /// backend. Fails on the first bad field, named as `evidence.<path>`.
    pub fn new(config: &EvidenceBackends) -> Result<Self, EvidenceConfigError> {
        let valid = config.validate()?;
        let trust = Trust::load(&valid.extra_cas)?;
        Self::build(valid, trust)
    }

    fn build(valid: config::ValidBackends, trust: Trust) -> Result<Self, EvidenceConfigError> {
        let clients = |kind: &str, backends: &BTreeMap<String, config::ValidBackend>| {
            backends
                .iter()
                .map(|(name, b)| Ok((name.clone(), BackendClient::new(kind, b, &trust)?)))
                .collect::<Result<BTreeMap<_, _>, EvidenceConfigError>>()
        };
        Ok(Self {
            prometheus: clients("prometheus", &valid.prometheus)?,
            loki: clients("loki", &valid.loki)?,
            jsonhttp: clients("jsonhttp", &valid.jsonhttp)?,
            direct: BackendClient::direct("jsonhttp", valid.probe_timeout, &trust)?,
            prober: HttpProber::new(trust),
            probe_ceiling: valid.probe_timeout,
            diagnostics: None,
        })
    }

    /// Plugs in the runner of diagnostic actions; until then `diagnose` fails.
    pub fn with_diagnostic_runner(mut self, runner: Arc<dyn DiagnosticRunner>) -> Self {
        self.diagnostics = Some(runner);
        self
    }

    fn backend<'a>(
        map: &'a BTreeMap<String, BackendClient>,
        kind: &'static str,
        source: &str,
    ) -> Result<&'a BackendClient, EvidenceError> {
        map.get(source).ok_or_else(|| EvidenceError::NoBackend {
            kind,
            backend: source.to_string(),
        })
    }

    async fn read(&self, signal: &Signal, ctx: &EvidenceContext) -> Result<Value, EvidenceError> {
        match &signal.kind {
            SignalKind::Prometheus { query, source } => {
                let backend = Self::backend(&self.prometheus, "prometheus", source)?;
                prometheus::fetch(backend, &render::query(query, ctx)?, ctx).await
            }
            SignalKind::Loki { query, source } => {
                let backend = Self::backend(&self.loki, "loki", source)?;
                loki::fetch(backend, &render::query(query, ctx)?, ctx).await
            }
            SignalKind::JsonHttp {
                url,
                source,
                path,
                timeout,
            } => match source {
                Some(source) => {
                    let backend = Self::backend(&self.jsonhttp, "jsonhttp", source)?;
                    let url = backend.url(&render::url_path(url, ctx)?)?;
                    jsonhttp::fetch(backend, url, path, (*timeout).min(backend.timeout())).await
                }
                None => {
                    let url = self.direct.url(&render::url(url, ctx)?)?;
                    if !matches!(url.scheme(), "http" | "https") {
                        return Err(EvidenceError::Request(format!("`{url}` is not an http(s) URL")));
                    }
                    jsonhttp::fetch(&self.direct, url, path, *timeout).await
                }
            },
            SignalKind::Http {
                url,
                method,
                max_redirects,
                timeout,
                json_path,
            } => {
                let url = render::url(url, ctx)?;
                self.prober
                    .probe(&ProbeRequest {
                        url: &url,
                        method: *method,
                        max_redirects: *max_redirects,
                        timeout: (*timeout).min(self.probe_ceiling),
                        json_path: json_path.as_ref(),
                    })
                    .await
            }
            SignalKind::Dns { name, timeout } => {
                dns::lookup(&render::verbatim(name, ctx)?, (*timeout).min(self.probe_ceiling)).await
            }
            SignalKind::Tcp { address, timeout } => {
                tcp::connect(
                    &render::verbatim(address, ctx)?,
                    (*timeout).min(self.probe_ceiling),
                )
                .await
            }
        }
    }
}

#[async_trait]
impl EvidenceProvider for LiveEvidence {
    async fn fetch(&self, signal: &Signal, ctx: &EvidenceContext) -> Result<Value, EvidenceError> {
        let span = tracing::debug_span!(
            "evidence",
            signal = %signal.name,
            kind = signal.kind.label(),
            incident = ctx.incident.as_deref().unwrap_or(""),
        );
        async {
            let started = Instant::now();
            let result = self.read(signal, ctx).await;
            let elapsed_ms = millis(started.elapsed());
            match &result {
                Ok(value) => tracing::debug!(elapsed_ms, %value, "evidence read"),
                Err(error) => tracing::debug!(elapsed_ms, %error, "evidence failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn diagnose(&self, diagnose: &Diagnose, ctx: &EvidenceContext) -> Result<Value, EvidenceError> {
        match &self.diagnostics {
            Some(runner) => {
                let span = tracing::debug_span!(
                    "diagnose",
                    action = %diagnose.action,
                    output = %diagnose.output,
                    incident = ctx.incident.as_deref().unwrap_or(""),
                );
                runner.run(diagnose, ctx).instrument(span).await
            }
            None => Err(EvidenceError::Diagnostic {
                action: diagnose.action.clone(),
                message: "no runner is configured".into(),
            }),
        }
    }
}

/// Milliseconds with microsecond precision, as evidence reports durations.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}
