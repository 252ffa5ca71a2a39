//! Helpers for the evidence tests: signals and contexts built in code, local HTTP and HTTPS
//! servers on 127.0.0.1 that answer canned replies and record what they received, a server that
//! never answers, a closed port, and a test CA (rcgen) that signs server certificates.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rootfix::alert::{Alert, AlertStatus};
use rootfix::engine::EvidenceContext;
use rootfix::evidence::{EvidenceBackends, LiveEvidence};
use rootfix::model::jsonpath::JsonPath;
use rootfix::model::playbook::{HttpMethod, Signal, SignalKind};
use rootfix::model::template::{Template, Variable};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

// ---- signals and contexts -------------------------------------------------------------------

pub fn template(source: &str) -> Template {
    Template::parse(source, &[Variable::Label]).expect("template parses")
}

pub fn signal(kind: SignalKind) -> Signal {
    Signal {
        name: "under_test".into(),
        description: None,
        definition_hash: String::new(),
        kind,
    }
}

pub fn prometheus(query: &str, source: &str) -> Signal {
    signal(SignalKind::Prometheus {
        query: template(query),
        source: source.into(),
    })
}

pub fn loki(query: &str, source: &str) -> Signal {
    signal(SignalKind::Loki {
        query: template(query),
        source: source.into(),
    })
}

pub fn jsonhttp(url: &str, source: Option<&str>, path: &str, timeout: Duration) -> Signal {
    signal(SignalKind::JsonHttp {
        url: template(url),
        source: source.map(str::to_string),
        path: JsonPath::parse(path).expect("path parses"),
        timeout,
    })
}

pub fn http(
    url: &str,
    method: HttpMethod,
    max_redirects: u32,
    timeout: Duration,
    json_path: Option<&str>,
) -> Signal {
    signal(SignalKind::Http {
        url: template(url),
        method,
        max_redirects,
        timeout,
        json_path: json_path.map(|p| JsonPath::parse(p).expect("path parses")),
    })
}

pub fn alert(labels: &[(&str, &str)], starts_at: DateTime<Utc>) -> Arc<Alert> {
    Arc::new(Alert {
        status: AlertStatus::Firing,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: BTreeMap::new(),
        starts_at,
        ends_at: DateTime::<Utc>::MIN_UTC,
        generator_url: String::new(),
        fingerprint: "0123456789abcdef".into(),
    })
}

/// Evidence for an alert with `labels` that started at `at`, within ± `window`.
pub fn ctx_at(labels: &[(&str, &str)], at: DateTime<Utc>, window: Duration) -> EvidenceContext {
    EvidenceContext {
        alert: alert(labels, at),
        at,
        window,
        incident: Some("test-incident".into()),
    }
}

pub fn ctx(labels: &[(&str, &str)]) -> EvidenceContext {
    ctx_at(labels, Utc::now(), Duration::from_secs(3))
}

/// A provider from an `evidence:` config written in YAML.
pub fn live(yaml: &str) -> LiveEvidence {
    let config: EvidenceBackends = serde_yaml::from_str(yaml).expect("config parses");
    LiveEvidence::new(&config).unwrap_or_else(|e| panic!("config is valid: {e}"))
}

// ---- servers --------------------------------------------------------------------------------

/// A request as a test server received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a test server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    pub fn json(status: u16, body: &str) -> Self {
        Self {
            headers: vec![("content-type".into(), "application/json".into())],
            ..Self::text(status, body)
        }
    }

    pub fn redirect(status: u16, location: &str) -> Self {
        Self {
            headers: vec![("location".into(), location.into())],
            ..Self::text(status, "")
        }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A server on 127.0.0.1; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `https://localhost:<port><path>` (the certificates name `localhost`).
    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// Serves HTTP/1.1 with `handler`.
pub async fn serve(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
    serve_with(None, Arc::new(handler)).await
}

/// Serves HTTPS with `tls` and `handler`.
pub async fn serve_tls(
    tls: Arc<ServerConfig>,
    handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> Server {
    serve_with(Some(tls), Arc::new(handler)).await
}

async fn serve_with(tls: Option<Arc<ServerConfig>>, handler: Handler) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            let recorded = recorded.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(config) => {
                        // A client that rejects the chain closes the handshake: not an error here.
                        if let Ok(stream) = tokio_rustls::TlsAcceptor::from(config).accept(stream).await {
                            serve_connection(TokioIo::new(stream), handler, recorded).await;
                        }
                    }
                    None => serve_connection(TokioIo::new(stream), handler, recorded).await,
                }
            });
        }
    });
    Server { addr, seen, task }
}

async fn serve_connection<I>(io: I, handler: Handler, recorded: Arc<Mutex<Vec<Seen>>>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let handler = handler.clone();
        let recorded = recorded.clone();
        async move {
            let uri = request.uri();
            let seen = Seen {
                method: request.method().to_string(),
                path: uri.path().to_string(),
                query: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
                headers: request
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect(),
            };
            recorded.lock().expect("not poisoned").push(seen.clone());
            let reply = handler(&seen);
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            let mut response = hyper::Response::builder().status(reply.status);
            for (k, v) in &reply.headers {
                response = response.header(k, v);
            }
            Ok::<_, Infallible>(
                response
                    .body(Full::new(Bytes::from(reply.body)))
                    .expect("a valid response"),
            )
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

/// A server that accepts connections and never answers.
pub async fn silent() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    Server {
        addr,
        seen: Arc::new(Mutex::new(Vec::new())),
        task,
    }
}

/// A port on 127.0.0.1 with nothing listening.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.local_addr().expect("local addr").port()
}

// ---- certificates ---------------------------------------------------------------------------

/// A date as `(year, month, day)`.
pub type Ymd = (i32, u8, u8);

/// A test certificate authority.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(common_name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("key");
        Self {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the CA certificate as PEM into `dir` and returns its path.
    pub fn write_pem(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.pem()).expect("write CA");
        path
    }

    /// A server config presenting a leaf for `names` signed by this CA, valid from `not_before`
    /// to `not_after` (`YYYY, M, D`; default: from yesterday for a year).
    pub fn server(&self, names: &[&str], validity: Option<(Ymd, Ymd)>) -> Arc<ServerConfig> {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        let now = Utc::now();
        let ((y1, m1, d1), (y2, m2, d2)) = validity.unwrap_or_else(|| {
            (
                ymd(now - chrono::Duration::days(1)),
                ymd(now + chrono::Duration::days(365)),
            )
        });
        params.not_before = rcgen::date_time_ymd(y1, m1, d1);
        params.not_after = rcgen::date_time_ymd(y2, m2, d2);
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = params.signed_by(&key, &self.issuer).expect("leaf certificate");
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), self.issuer.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Arc::new(
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("server config"),
        )
    }
}

fn ymd(t: DateTime<Utc>) -> Ymd {
    use chrono::Datelike;
    (t.year(), t.month() as u8, t.day() as u8)
}
