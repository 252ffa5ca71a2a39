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

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{ACCEPT, CONNECTION, HOST, LOCATION, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::{Host, Position, Url};

use super::millis;
use super::trust::Trust;
use crate::engine::evidence::EvidenceError;
use crate::model::jsonpath::JsonPath;
use crate::model::playbook::HttpMethod;

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

    /// A client config whose verifier records its verdict in the returned slot.
    fn recording_config(&self) -> Result<(ClientConfig, VerdictSlot), rustls::Error> {
        let seen = Arc::new(Mutex::new(None));
        let inner = WebPkiServerVerifier::builder_with_provider(
            self.trust.roots.clone(),
            self.trust.provider.clone(),
        )
        .build()
        .ok();
        let verifier = RecordingVerifier {
            inner,
            provider: self.trust.provider.clone(),
            seen: seen.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(self.trust.provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok((config, seen))
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

/// Where a probe is, for the message of a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Dns,
    Connect,
    Tls,
    FirstByte,
    Body,
    Done,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Dns => "dns lookup",
            Phase::Connect => "connect",
            Phase::Tls => "tls handshake",
            Phase::FirstByte => "waiting for the response",
            Phase::Body => "reading the body",
            Phase::Done => "done",
        }
    }
}

#[derive(Debug, Default)]
struct Timings {
    dns: Option<Duration>,
    connect: Option<Duration>,
    tls: Option<Duration>,
    first_byte: Option<Duration>,
}

struct ProbeState {
    url: Url,
    phase: Phase,
    status: u16,
    hops: Vec<Value>,
    timings: Timings,
    tls: Option<TlsOutcome>,
    json: Value,
    error: Option<String>,
    total: Duration,
}

impl ProbeState {
    fn new(url: Url) -> Self {
        Self {
            url,
            phase: Phase::Start,
            status: 0,
            hops: Vec::new(),
            timings: Timings::default(),
            tls: None,
            json: Value::Null,
            error: None,
            total: Duration::ZERO,
        }
    }

    /// A new hop: the previous hop's answer, TLS and timings no longer describe the probe.
    fn begin_hop(&mut self) {
        self.status = 0;
        self.timings = Timings::default();
        self.tls = None;
    }

    fn into_value(self) -> Value {
        let ok = self.error.is_none() && (200..300).contains(&self.status);
        let ms = |d: Option<Duration>| d.map(millis);
        json!({
            "status": self.status,
            "ok": ok,
            "redirects": self.hops,
            "final_url": self.url.as_str(),
            "tls": self.tls.map(TlsOutcome::into_value),
            "timings_ms": {
                "dns": ms(self.timings.dns),
                "connect": ms(self.timings.connect),
                "tls": ms(self.timings.tls),
                "first_byte": ms(self.timings.first_byte),
                "total": millis(self.total),
            },
            "json": self.json,
            "error": self.error,
        })
    }
}

/// Where a connection's verifier leaves what it saw.
type VerdictSlot = Arc<Mutex<Option<Recorded>>>;

/// What the verifier saw.
#[derive(Debug, Clone)]
struct Recorded {
    verdict: Result<(), String>,
    leaf: Leaf,
}

/// The leaf certificate's names and expiry.
#[derive(Debug, Clone, Default)]
struct Leaf {
    issuer: Option<String>,
    subject: Option<String>,
    not_after: Option<String>,
}

impl Leaf {
    fn parse(der: &CertificateDer<'_>) -> Self {
        match x509_parser::parse_x509_certificate(der.as_ref()) {
            Ok((_, cert)) => Self {
                issuer: Some(cert.issuer().to_string()),
                subject: Some(cert.subject().to_string()),
                not_after: chrono::DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            },
            Err(e) => {
                tracing::debug!(error = %e, "the leaf certificate does not parse");
                Self::default()
            }
        }
    }
}

#[derive(Debug, Clone)]
struct TlsOutcome {
    verified: bool,
    error: Option<String>,
    leaf: Leaf,
}

impl TlsOutcome {
    fn from_recorded(recorded: Option<Recorded>) -> Self {
        match recorded {
            Some(Recorded { verdict, leaf }) => Self {
                verified: verdict.is_ok(),
                error: verdict.err(),
                leaf,
            },
            // A finished handshake always passed through the verifier; be safe if not.
            None => Self {
                verified: false,
                error: Some("the server's certificate was not checked".into()),
                leaf: Leaf::default(),
            },
        }
    }

    /// A handshake that failed: the verifier's verdict if it ran first, else the failure.
    fn failed(recorded: Option<Recorded>, handshake_error: &str) -> Self {
        let leaf = recorded.as_ref().map(|r| r.leaf.clone()).unwrap_or_default();
        let error = match recorded.map(|r| r.verdict) {
            Some(Err(verdict)) => verdict,
            _ => handshake_error.to_string(),
        };
        Self {
            verified: false,
            error: Some(error),
            leaf,
        }
    }

    fn into_value(self) -> Value {
        json!({
            "verified": self.verified,
            "error": self.error,
            "issuer": self.leaf.issuer,
            "subject": self.leaf.subject,
            "not_after": self.leaf.not_after,
        })
    }
}

/// Verifies the chain like rustls would, but records the verdict and lets the handshake finish,
/// so a bad chain becomes evidence with its issuer. Handshake signatures are still checked: a
/// peer that cannot prove it holds the leaf's key fails the handshake.
#[derive(Debug)]
struct RecordingVerifier {
    /// `None` when there are no trust roots at all: nothing verifies.
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: VerdictSlot,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match &self.inner {
            Some(inner) => inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("no trust roots are configured".to_string()),
        };
        let recorded = Recorded {
            verdict,
            leaf: Leaf::parse(end_entity),
        };
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(recorded);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
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
