//! `http` signals: probe a URL the way the seed's chapter 2 checks it by hand, every step visible
//! and timed: DNS lookup, TCP connect, TLS handshake (chain verified, issuer and expiry read from
//! the leaf), the HTTP/1.1 request until its first byte, and each redirect hop.
//!
//! The value:
//! ```json
//! {"status": 200, "ok": true,
//!  "redirects": [{"url": "https://a/x", "status": 302, "location": "https://b/x", "tls_verified": true}],
//!  "final_url": "https://b/x",
//!  "tls": {"verified": true, "error": null, "issuer": "C=US, O=Let's Encrypt, CN=R3",
//!          "subject": "CN=b", "not_after": "2026-01-01T00:00:00Z"},
//!  "timings_ms": {"dns": 1.2, "connect": 0.8, "tls": 9.5, "first_byte": 30.1, "total": 80.4},
//!  "json": null, "error": null}
//! ```
//! - Anything the network does is **evidence**, never an `Err`: refused, unresolvable, timed out,
//!   a bad chain. Then `status` is 0 (no final answer), `ok` is false and `error` says what
//!   failed, and where (`timed out after 5s during connect`). Only a URL that cannot be probed
//!   (does not parse, not http/https) is an error.
//! - `tls` describes the last connection (`null` for plain http). The certificate verifier
//!   records its verdict instead of aborting the handshake, so the issuer, subject and expiry of
//!   a chain that does not verify are still read; then, like `curl` and the `go` command, no
//!   request is sent over the unverified connection: `status: 0`, `error: "tls: ..."`.
//! - Redirects (301, 302, 303, 307, 308) are followed up to `max_redirects`, each hop recorded
//!   in order; past the limit the probe stops at the redirect (`status` is its 3xx) and, when
//!   `max_redirects` is above 0, says so in `error`. `timings_ms` are the last hop's phases
//!   (`null` for a phase not reached) and `total` the whole probe.
//! - `ok`: no error and a final 2xx.
//! - `json`: with `json_path`, the value it selects from a GET's body (at most 1 MiB read),
//!   `null` when the body is not JSON or the path is absent.
//! - Each probe builds its own TLS config, so no session is resumed from an earlier probe and the
//!   chain is verified on every probe. Proxy environment variables are ignored: the probe sees
//!   the network path itself.
//!
//! This module runs the probe (hop by hop: resolve, connect, handshake, request, redirects);
//! `state` is what one probe has seen so far and its JSON value; `tls` the verifier that records
//! the chain's verdict and the leaf certificate instead of aborting the handshake.

mod state;
mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{ACCEPT, CONNECTION, HOST, LOCATION, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::{Host, Position, Url};

use super::trust::Trust;
use crate::engine::evidence::EvidenceError;
use crate::model::jsonpath::JsonPath;
use crate::model::playbook::HttpMethod;
use state::{Phase, ProbeState};
use tls::TlsOutcome;

/// The most of a body that is read; `.info` and health answers are far smaller.
pub const MAX_BODY: usize = 1 << 20;

/// What to probe.
#[derive(Debug, Clone)]
pub struct ProbeRequest<'a> {
    pub url: &'a str,
    pub method: HttpMethod,
    pub max_redirects: u32,
    pub timeout: Duration,
    pub json_path: Option<&'a JsonPath>,
}

/// Probes URLs against one set of trust roots.
#[derive(Debug, Clone)]
pub struct HttpProber {
    trust: Trust,
}

impl HttpProber {
    pub fn new(trust: Trust) -> Self {
        Self { trust }
    }

    /// The probe's evidence; `Err` only when the URL cannot be probed at all.
    pub async fn probe(&self, request: &ProbeRequest<'_>) -> Result<Value, EvidenceError> {
        let url = probe_url(request.url)?;
        let started = Instant::now();
        let mut state = ProbeState::new(url);
        let finished = tokio::time::timeout(request.timeout, self.run(&mut state, request)).await;
        if finished.is_err() {
            state.error = Some(format!(
                "timed out after {} during {}",
                humantime::format_duration(request.timeout),
                state.phase.name()
            ));
            if state.phase != Phase::Body {
                state.status = 0;
            }
        }
        state.total = started.elapsed();
        tracing::debug!(
            status = state.status,
            error = state.error.as_deref(),
            "http probe done"
        );
        Ok(state.into_value())
    }

    async fn run(&self, state: &mut ProbeState, request: &ProbeRequest<'_>) {
        let method = match request.method {
            HttpMethod::Get => Method::GET,
            HttpMethod::Head => Method::HEAD,
        };
        loop {
            state.begin_hop();
            let mut exchange = match self.exchange(state, &method).await {
                Ok(exchange) => exchange,
                Err(error) => {
                    state.error = Some(error);
                    return;
                }
            };
            let status = exchange.response.status();
            state.status = status.as_u16();
            let location = exchange
                .response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if let (true, Some(location)) = (status.is_redirection() && status.as_u16() != 304, location) {
                let next = match state.url.join(&location) {
                    Ok(next) => next,
                    Err(e) => {
                        state.error = Some(format!("redirect to an unusable Location `{location}`: {e}"));
                        return;
                    }
                };
                if state.hops.len() as u32 >= request.max_redirects {
                    if request.max_redirects > 0 {
                        state.error = Some(format!(
                            "stopped after {} redirects; the next goes to {next}",
                            request.max_redirects
                        ));
                    }
                    return;
                }
                if !matches!(next.scheme(), "http" | "https") {
                    state.error = Some(format!("redirect to a URL that is not http(s): {next}"));
                    return;
                }
                tracing::debug!(from = %state.url, to = %next, status = status.as_u16(), "redirect");
                state.hops.push(json!({
                    "url": state.url.as_str(),
                    "status": status.as_u16(),
                    "location": next.as_str(),
                    "tls_verified": state.tls.as_ref().map(|t| t.verified),
                }));
                state.url = next;
                continue;
            }
            if method == Method::GET {
                state.phase = Phase::Body;
                match read_capped(exchange.response.body_mut()).await {
                    Ok(body) => {
                        if let Some(path) = request.json_path {
                            state.json = serde_json::from_slice::<Value>(&body)
                                .ok()
                                .and_then(|v| path.select(&v).cloned())
                                .unwrap_or(Value::Null);
                        }
                    }
                    Err(e) => state.error = Some(format!("reading the body: {e}")),
                }
            }
            state.phase = Phase::Done;
            return;
        }
    }

    /// One request: resolve, connect, handshake, send, wait for the answer's head.
    async fn exchange(&self, state: &mut ProbeState, method: &Method) -> Result<Exchange, String> {
        let url = state.url.clone();
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        state.phase = Phase::Dns;
        let started = Instant::now();
        let addrs: Vec<std::net::SocketAddr> = match url.host() {
            Some(Host::Domain(domain)) => tokio::net::lookup_host((domain, port))
                .await
                .map_err(|e| format!("dns lookup of {domain} failed: {e}"))?
                .collect(),
            Some(Host::Ipv4(ip)) => vec![(ip, port).into()],
            Some(Host::Ipv6(ip)) => vec![(ip, port).into()],
            None => return Err("the URL has no host".into()),
        };
        state.timings.dns = Some(started.elapsed());

        state.phase = Phase::Connect;
        let started = Instant::now();
        let mut errors = Vec::new();
        let mut stream = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => errors.push(format!("{addr}: {e}")),
            }
        }
        let Some(tcp) = stream else {
            return Err(format!("connect failed: {}", errors.join("; ")));
        };
        state.timings.connect = Some(started.elapsed());

        if url.scheme() == "https" {
            state.phase = Phase::Tls;
            let started = Instant::now();
            let (config, seen) = self.recording_config().map_err(|e| format!("tls setup: {e}"))?;
            let server_name = match url.host() {
                Some(Host::Domain(d)) => {
                    ServerName::try_from(d.to_string()).map_err(|e| format!("tls: {e}"))?
                }
                Some(Host::Ipv4(ip)) => ServerName::IpAddress(std::net::IpAddr::V4(ip).into()),
                Some(Host::Ipv6(ip)) => ServerName::IpAddress(std::net::IpAddr::V6(ip).into()),
                None => return Err("the URL has no host".into()),
            };
            let handshake = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(server_name, tcp)
                .await;
            state.timings.tls = Some(started.elapsed());
            let recorded = seen.lock().ok().and_then(|mut s| s.take());
            match handshake {
                Err(e) => {
                    let error = format!("tls handshake: {e}");
                    state.tls = Some(TlsOutcome::failed(recorded, &error));
                    Err(error)
                }
                Ok(tls) => {
                    let outcome = TlsOutcome::from_recorded(recorded);
                    let refused = outcome.error.clone();
                    state.tls = Some(outcome);
                    if let Some(error) = refused {
                        return Err(format!("tls: {error}"));
                    }
                    send(state, tls, method, &url).await
                }
            }
        } else {
            send(state, tcp, method, &url).await
        }
    }
}

/// Sends the request over `io` and waits for the response's head.
async fn send<S>(state: &mut ProbeState, io: S, method: &Method, url: &Url) -> Result<Exchange, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    state.phase = Phase::FirstByte;
    let started = Instant::now();
    let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| format!("http: {}", super::client::error_chain(&e)))?;
    let connection = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "probe connection ended");
        }
    }));
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    };
    let request = Request::builder()
        .method(method.clone())
        .uri(&url[Position::BeforePath..Position::AfterQuery])
        .header(HOST, host)
        .header(USER_AGENT, concat!("rootfix-probe/", env!("CARGO_PKG_VERSION")))
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("http: {}", super::client::error_chain(&e)))?;
    state.timings.first_byte = Some(started.elapsed());
    Ok(Exchange {
        response,
        _connection: connection,
    })
}

/// Reads at most [`MAX_BODY`] bytes; the rest is left unread.
async fn read_capped(body: &mut hyper::body::Incoming) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| super::client::error_chain(&e))?;
        if let Ok(data) = frame.into_data() {
            let room = MAX_BODY - out.len();
            out.extend_from_slice(&data[..data.len().min(room)]);
            if out.len() >= MAX_BODY {
                break;
            }
        }
    }
    Ok(out)
}

/// Parses the rendered URL: the only way a probe fails as an error rather than as evidence.
fn probe_url(text: &str) -> Result<Url, EvidenceError> {
    let url =
        Url::parse(text.trim()).map_err(|e| EvidenceError::Request(format!("`{text}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EvidenceError::Request(format!(
            "`{text}`: only http and https URLs can be probed"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(EvidenceError::Request(format!("`{text}` has no host")));
    }
    Ok(url)
}

struct Exchange {
    response: hyper::Response<hyper::body::Incoming>,
    _connection: AbortOnDrop,
}

/// Stops the connection's task when the probe is done with it (or is cancelled by its timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_can_be_probed() {
        assert!(matches!(probe_url("ftp://x/"), Err(EvidenceError::Request(_))));
        assert!(matches!(probe_url("not a url"), Err(EvidenceError::Request(_))));
        assert!(matches!(probe_url("https://"), Err(EvidenceError::Request(_))));
        assert!(probe_url("https://proxy.golang.org/").is_ok());
    }
}
