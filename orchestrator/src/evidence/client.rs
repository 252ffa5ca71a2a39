//! The HTTP client of the query backends (Prometheus, Loki, JSON APIs): configured headers and
//! token, the timeout, a cap on the body, and error text that names the backend.
//!
//! Backends are reached directly: proxy environment variables are ignored, as by the probes.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use url::Url;

use super::config::{EvidenceConfigError, ValidBackend};
use super::trust::Trust;
use crate::engine::evidence::EvidenceError;

/// The most a backend's answer may weigh; evidence is a number or a few series, so more is a
/// query that selects far too much.
const MAX_BODY: usize = 8 << 20;

/// One backend (or, for `jsonhttp` without `source`, any URL) and its client.
#[derive(Debug, Clone)]
pub struct BackendClient {
    /// `prometheus `default`` or `jsonhttp`: how errors name it.
    describe: String,
    timeout: Duration,
    base: Option<ValidBackend>,
    client: reqwest::Client,
}

/// A backend's answer: the status and the (capped) body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    /// The body's start as text, for error messages.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(300) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_string(),
        }
    }
}

impl BackendClient {
    /// A client for a configured backend of `kind`.
    pub fn new(kind: &str, backend: &ValidBackend, trust: &Trust) -> Result<Self, EvidenceConfigError> {
        let field = format!("{kind}.{}", backend.name);
        let client = build(backend.headers.clone(), backend.timeout, trust, &field)?;
        Ok(Self {
            describe: format!("{kind} `{}`", backend.name),
            timeout: backend.timeout,
            base: Some(backend.clone()),
            client,
        })
    }

    /// A client for absolute URLs, without headers.
    pub fn direct(kind: &str, timeout: Duration, trust: &Trust) -> Result<Self, EvidenceConfigError> {
        Ok(Self {
            describe: kind.to_string(),
            timeout,
            base: None,
            client: build(HeaderMap::new(), timeout, trust, "http")?,
        })
    }

    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The backend's own timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `path_and_query` under the backend's base URL.
    pub fn url(&self, path_and_query: &str) -> Result<Url, EvidenceError> {
        let Some(base) = &self.base else {
            return Url::parse(path_and_query)
                .map_err(|e| EvidenceError::Request(format!("`{path_and_query}`: {e}")));
        };
        base.url(path_and_query)
            .map_err(|e| EvidenceError::Request(format!("`{path_and_query}` under {}: {e}", base.base)))
    }

    /// GETs `url`; the whole exchange, body included, must end within `timeout`.
    pub async fn get(&self, url: Url, timeout: Duration) -> Result<Reply, EvidenceError> {
        let exchange = async {
            let mut response = self
                .client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| self.failed(&url, e))?;
            let status = response.status();
            let mut body = BytesMut::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| self.failed(&url, e))? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(EvidenceError::Backend(format!(
                        "{}: the answer from {} is larger than {} MiB",
                        self.describe,
                        short(&url),
                        MAX_BODY >> 20
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Reply {
                status,
                body: body.freeze(),
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(EvidenceError::Timeout(timeout)),
        }
    }

    fn failed(&self, url: &Url, error: reqwest::Error) -> EvidenceError {
        if error.is_timeout() {
            return EvidenceError::Timeout(self.timeout);
        }
        EvidenceError::Backend(format!(
            "{} at {}: {}",
            self.describe,
            short(url),
            error_chain(&error.without_url())
        ))
    }
}

fn build(
    headers: HeaderMap,
    timeout: Duration,
    trust: &Trust,
    field: &str,
) -> Result<reqwest::Client, EvidenceConfigError> {
    let tls = trust.client_config().map_err(|e| EvidenceConfigError {
        field: field.to_string(),
        message: format!("TLS setup: {e}"),
    })?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .default_headers(headers)
        .connect_timeout(timeout)
        .timeout(timeout)
        .no_proxy()
        .user_agent(concat!("rootfix/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| EvidenceConfigError {
            field: field.to_string(),
            message: format!("cannot build an HTTP client: {}", error_chain(&e)),
        })
}

/// The URL without its query: errors name where, not the whole query.
fn short(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// An error and its sources, joined with `: `.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
