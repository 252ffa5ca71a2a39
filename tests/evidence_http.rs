//! The `http`, `dns` and `tcp` probes against local servers on 127.0.0.1: redirect chains, status
//! codes, JSON paths, refused and slow servers as evidence, TLS chains (a test CA made with rcgen:
//! untrusted, trusted through `extra_ca_files`, expired, wrong name), label escaping in URLs, and a
//! walk of a small playbook over live evidence.

#[path = "support/evidence.rs"]
mod evidence;
#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use evidence::{Reply, TestCa, closed_port, ctx, http, live, serve, serve_tls, signal, template};
use rootfix::engine::{EvidenceContext, EvidenceError, EvidenceProvider, NodeOutcome, WalkOptions, Walker};
use rootfix::evidence::DiagnosticRunner;
use rootfix::model::playbook::{Diagnose, HttpMethod, SignalKind};
use rootfix::state::memory::MemoryStateStore;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(5);

fn no_backends() -> rootfix::evidence::LiveEvidence {
    live("{}")
}

async fn probe(
    p: &rootfix::evidence::LiveEvidence,
    url: &str,
    method: HttpMethod,
    max_redirects: u32,
) -> Value {
    p.fetch(&http(url, method, max_redirects, T, None), &ctx(&[]))
        .await
        .unwrap_or_else(|e| panic!("probe of {url} failed: {e}"))
}

#[tokio::test]
async fn a_redirect_chain_is_recorded_hop_by_hop() {
    let server = serve(|seen| match seen.path.as_str() {
        "/a" => Reply::redirect(302, "/b"),
        "/b" => Reply::redirect(301, "/c?x=1"),
        "/c" => Reply::redirect(307, "/d"),
        "/d" => Reply::json(200, r#"{"Version": "v1.9.0", "Time": "2024-03-01T00:00:00Z"}"#),
        _ => Reply::text(404, "no"),
    })
    .await;
    let p = no_backends();
    let signal = http(&server.url("/a"), HttpMethod::Get, 10, T, Some("$.Version"));
    let v = p.fetch(&signal, &ctx(&[])).await.unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["ok"], true);
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["json"], "v1.9.0");
    assert_eq!(v["final_url"], server.url("/d"));
    assert_eq!(v["tls"], Value::Null);
    let hops: Vec<(u64, String)> = v["redirects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["status"].as_u64().unwrap(),
                h["location"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        hops,
        vec![
            (302, server.url("/b")),
            (301, server.url("/c?x=1")),
            (307, server.url("/d")),
        ]
    );
    assert_eq!(v["redirects"][0]["url"], server.url("/a"));
    for phase in ["dns", "connect", "first_byte", "total"] {
        assert!(v["timings_ms"][phase].is_number(), "{phase}: {v}");
    }
    assert_eq!(v["timings_ms"]["tls"], Value::Null);
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/a", "/b", "/c", "/d"]);

    // At the limit the probe stops at the redirect and says so.
    let v = probe(&p, &server.url("/a"), HttpMethod::Get, 1).await;
    assert_eq!(v["status"], 301);
    assert_eq!(v["ok"], false);
    assert_eq!(v["redirects"].as_array().unwrap().len(), 1);
    assert!(
        v["error"].as_str().unwrap().contains("stopped after 1 redirects"),
        "{v}"
    );
    // `max_redirects: 0` means "do not follow": the 302 is the answer, not an error.
    let v = probe(&p, &server.url("/a"), HttpMethod::Get, 0).await;
    assert_eq!(v["status"], 302);
    assert_eq!(v["redirects"], json!([]));
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["ok"], false);
}

#[tokio::test]
async fn status_codes_methods_and_bodies() {
    let server = serve(|seen| match seen.path.as_str() {
        "/missing" => Reply::text(404, "not found"),
        "/down" => Reply::text(503, "unavailable"),
        "/html" => Reply::text(200, "<html>not json</html>"),
        _ => Reply::json(200, r#"{"data": {"items": [{"p99": 6230}]}}"#),
    })
    .await;
    let p = no_backends();
    let v = probe(&p, &server.url("/missing"), HttpMethod::Get, 10).await;
    assert_eq!(
        (v["status"].as_u64(), v["ok"].as_bool()),
        (Some(404), Some(false))
    );
    assert_eq!(
        v["error"],
        Value::Null,
        "an HTTP status is an answer, not an error"
    );
    let v = probe(&p, &server.url("/down"), HttpMethod::Get, 10).await;
    assert_eq!(v["status"], 503);

    let nested = http(
        &server.url("/json"),
        HttpMethod::Get,
        10,
        T,
        Some("$.data.items[0].p99"),
    );
    assert_eq!(p.fetch(&nested, &ctx(&[])).await.unwrap()["json"], 6230);
    let absent = http(&server.url("/json"), HttpMethod::Get, 10, T, Some("$.nope"));
    assert_eq!(p.fetch(&absent, &ctx(&[])).await.unwrap()["json"], Value::Null);
    let not_json = http(&server.url("/html"), HttpMethod::Get, 10, T, Some("$.Version"));
    let v = p.fetch(&not_json, &ctx(&[])).await.unwrap();
    assert_eq!(
        (v["status"].as_u64(), v["json"].clone()),
        (Some(200), Value::Null)
    );

    let head = http(&server.url("/json"), HttpMethod::Head, 10, T, Some("$.data"));
    let v = p.fetch(&head, &ctx(&[])).await.unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["json"], Value::Null, "a HEAD has no body to read");
    let methods: Vec<String> = server.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods.last().map(String::as_str), Some("HEAD"));
    assert!(
        server.requests()[0]
            .header("user-agent")
            .unwrap()
            .starts_with("rootfix-probe/")
    );
}

#[tokio::test]
async fn refused_and_slow_servers_are_evidence_not_errors() {
    let p = no_backends();
    let port = closed_port();
    let v = probe(&p, &format!("http://127.0.0.1:{port}/"), HttpMethod::Get, 10).await;
    assert_eq!(v["status"], 0);
    assert_eq!(v["ok"], false);
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("connect failed") && error.to_lowercase().contains("refused"),
        "{error}"
    );
    assert!(v["timings_ms"]["dns"].is_number());
    assert_eq!(v["timings_ms"]["connect"], Value::Null);

    let slow = serve(|_| Reply::text(200, "late").after(Duration::from_secs(10))).await;
    let started = Instant::now();
    let signal = http(
        &slow.url("/"),
        HttpMethod::Get,
        10,
        Duration::from_millis(300),
        None,
    );
    let v = p.fetch(&signal, &ctx(&[])).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(v["status"], 0);
    assert_eq!(v["ok"], false);
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("timed out after 300ms during waiting for the response"),
        "{error}"
    );
    assert!(v["timings_ms"]["connect"].is_number());

    // A server that takes the connection but never answers the TLS handshake.
    let mute = evidence::silent().await;
    let signal = http(
        &format!("https://127.0.0.1:{}/", mute.port()),
        HttpMethod::Head,
        0,
        Duration::from_millis(300),
        None,
    );
    let v = p.fetch(&signal, &ctx(&[])).await.unwrap();
    assert_eq!((v["status"].as_u64(), v["ok"].as_bool()), (Some(0), Some(false)));
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("timed out after 300ms during tls handshake"),
        "{error}"
    );
}

#[tokio::test]
async fn an_untrusted_chain_is_evidence_with_its_issuer_and_no_request_is_sent() {
    let ca = TestCa::new("rootfix test CA");
    let server = serve_tls(ca.server(&["localhost", "127.0.0.1"], None), |_| {
        Reply::json(200, "{}")
    })
    .await;
    // The system store (Debian's ca-certificates) does not hold the test CA.
    let p = no_backends();
    let v = probe(&p, &server.https_url("/"), HttpMethod::Head, 0).await;
    assert_eq!(v["tls"]["verified"], false, "{v}");
    let tls_error = v["tls"]["error"].as_str().unwrap();
    assert!(tls_error.contains("UnknownIssuer"), "{tls_error}");
    assert_eq!(v["tls"]["issuer"], "CN=rootfix test CA");
    assert_eq!(v["tls"]["subject"], "CN=localhost");
    assert!(v["tls"]["not_after"].is_string());
    assert_eq!(v["status"], 0);
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().starts_with("tls: "), "{v}");
    assert!(v["timings_ms"]["tls"].is_number());
    assert!(
        server.requests().is_empty(),
        "a request went over an unverified connection"
    );
}

#[tokio::test]
async fn extra_ca_files_make_the_chain_verify() {
    let ca = TestCa::new("rootfix test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let server = serve_tls(ca.server(&["localhost", "127.0.0.1"], None), |_| {
        Reply::json(200, r#"{"Version": "v1.9.0"}"#)
    })
    .await;
    let p = live(&format!("http: {{extra_ca_files: ['{}']}}\n", ca_file.display()));
    let signal = http(
        &server.https_url("/@latest"),
        HttpMethod::Get,
        10,
        T,
        Some("$.Version"),
    );
    let v = p.fetch(&signal, &ctx(&[])).await.unwrap();
    assert_eq!(v["tls"]["verified"], true, "{v}");
    assert_eq!(v["tls"]["error"], Value::Null);
    assert_eq!(v["tls"]["issuer"], "CN=rootfix test CA");
    let not_after = v["tls"]["not_after"].as_str().unwrap();
    let not_after = chrono::DateTime::parse_from_rfc3339(not_after).unwrap();
    assert!(not_after > chrono::Utc::now());
    assert_eq!((v["status"].as_u64(), v["ok"].as_bool()), (Some(200), Some(true)));
    assert_eq!(v["json"], "v1.9.0");
    assert!(v["timings_ms"]["tls"].is_number());
    assert_eq!(
        server.requests()[0].header("host"),
        Some(&*format!("localhost:{}", server.port()))
    );

    // The same CA, an IP address in the URL: the leaf names 127.0.0.1 too.
    let v = probe(
        &p,
        &format!("https://127.0.0.1:{}/", server.port()),
        HttpMethod::Head,
        0,
    )
    .await;
    assert_eq!(v["tls"]["verified"], true, "{v}");
}

#[tokio::test]
async fn an_expired_or_misnamed_leaf_does_not_verify_and_says_why() {
    let ca = TestCa::new("rootfix test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let p = live(&format!("http: {{extra_ca_files: ['{}']}}\n", ca_file.display()));

    let expired = serve_tls(
        ca.server(&["localhost"], Some(((2020, 1, 1), (2021, 1, 1)))),
        |_| Reply::json(200, "{}"),
    )
    .await;
    let v = probe(&p, &expired.https_url("/"), HttpMethod::Get, 0).await;
    assert_eq!(v["tls"]["verified"], false, "{v}");
    assert!(v["tls"]["error"].as_str().unwrap().contains("expired"), "{v}");
    assert_eq!(v["tls"]["not_after"], "2021-01-01T00:00:00Z");
    assert_eq!(v["tls"]["issuer"], "CN=rootfix test CA");
    assert_eq!(v["status"], 0);

    let misnamed = serve_tls(ca.server(&["other.example"], None), |_| Reply::json(200, "{}")).await;
    let v = probe(&p, &misnamed.https_url("/"), HttpMethod::Get, 0).await;
    assert_eq!(v["tls"]["verified"], false, "{v}");
    assert!(
        v["tls"]["error"]
            .as_str()
            .unwrap()
            .contains("not valid for name \"localhost\""),
        "{v}"
    );
}

#[tokio::test]
async fn label_values_in_urls_are_one_component() {
    let server = serve(|_| Reply::json(200, r#"{"ok": true}"#)).await;
    let p = no_backends();
    // A leading placeholder is the base URL; later ones cannot add parameters or change the path.
    let signal = http(
        "{{ $labels.base }}/check/{{ $labels.name }}?q={{ $labels.name }}",
        HttpMethod::Get,
        0,
        T,
        None,
    );
    let hostile = "a/../b?admin=1&x=#y z";
    let v = p
        .fetch(&signal, &ctx(&[("base", &server.url("")), ("name", hostile)]))
        .await
        .unwrap();
    assert_eq!(v["status"], 200, "{v}");
    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/check/a%2F..%2Fb%3Fadmin%3D1%26x%3D%23y%20z");
    assert_eq!(seen.query, vec![("q".to_string(), hostile.to_string())]);
}

#[tokio::test]
async fn urls_that_cannot_be_probed_are_request_errors() {
    let p = no_backends();
    let err = p
        .fetch(
            &http("{{ $labels.u }}/x", HttpMethod::Get, 0, T, None),
            &ctx(&[("u", "ftp://h")]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EvidenceError::Request(_)), "{err:?}");
    let err = p
        .fetch(&http("{{ $labels.u }}/x", HttpMethod::Get, 0, T, None), &ctx(&[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EvidenceError::Request(m) if m.contains("$labels.u")),
        "{err:?}"
    );
}

#[tokio::test]
async fn dns_lookups() {
    let p = no_backends();
    let dns = |name: &str| {
        signal(SignalKind::Dns {
            name: template(name),
            timeout: Duration::from_secs(3),
        })
    };
    let v = p.fetch(&dns("localhost"), &ctx(&[])).await.unwrap();
    assert_eq!(v["resolved"], true, "{v}");
    assert!(
        v["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "127.0.0.1" || a == "::1"),
        "{v}"
    );
    assert!(v["elapsed_ms"].is_number());
    assert_eq!(v["error"], Value::Null);
    // A URL: its host is looked up.
    let v = p
        .fetch(
            &dns("{{ $labels.goproxy }}"),
            &ctx(&[("goproxy", "http://localhost:3000/x")]),
        )
        .await
        .unwrap();
    assert_eq!(v["resolved"], true, "{v}");
    // `.invalid` never resolves (RFC 2606).
    let v = p.fetch(&dns("no-such-host.invalid"), &ctx(&[])).await.unwrap();
    assert_eq!(v["resolved"], false, "{v}");
    assert_eq!(v["addresses"], json!([]));
    assert!(
        v["error"].as_str().unwrap().contains("no-such-host.invalid"),
        "{v}"
    );
}

#[tokio::test]
async fn tcp_connects() {
    let p = no_backends();
    let server = serve(|_| Reply::text(200, "")).await;
    let tcp = |address: &str| {
        signal(SignalKind::Tcp {
            address: template(address),
            timeout: Duration::from_secs(3),
        })
    };
    let v = p
        .fetch(&tcp(&format!("127.0.0.1:{}", server.port())), &ctx(&[]))
        .await
        .unwrap();
    assert_eq!(v["connected"], true, "{v}");
    assert!(v["connect_ms"].is_number());
    assert_eq!(v["error"], Value::Null);
    let v = p
        .fetch(&tcp(&format!("localhost:{}", closed_port())), &ctx(&[]))
        .await
        .unwrap();
    assert_eq!(v["connected"], false, "{v}");
    assert_eq!(v["connect_ms"], Value::Null);
    assert!(
        v["error"].as_str().unwrap().to_lowercase().contains("refused"),
        "{v}"
    );
    let err = p.fetch(&tcp("no-port"), &ctx(&[])).await.unwrap_err();
    assert!(matches!(err, EvidenceError::Request(_)));
}

struct FixedRunner;

#[async_trait]
impl DiagnosticRunner for FixedRunner {
    async fn run(&self, diagnose: &Diagnose, _ctx: &EvidenceContext) -> Result<Value, EvidenceError> {
        Ok(json!({"action": diagnose.action}))
    }
}

#[tokio::test]
async fn diagnostics_need_a_runner() {
    let diagnose = Diagnose {
        action: "network-troubleshoot".into(),
        params: Default::default(),
        output: "netdiag".into(),
    };
    let err = no_backends().diagnose(&diagnose, &ctx(&[])).await.unwrap_err();
    assert_eq!(
        err,
        EvidenceError::Diagnostic {
            action: "network-troubleshoot".into(),
            message: "no runner is configured".into()
        }
    );
    let p = no_backends().with_diagnostic_runner(Arc::new(FixedRunner));
    assert_eq!(
        p.diagnose(&diagnose, &ctx(&[])).await.unwrap(),
        json!({"action": "network-troubleshoot"})
    );
}

/// A proxy behind a certificate nobody trusts: the walk over live evidence reaches the TLS leaf.
#[tokio::test]
async fn a_walk_over_live_evidence_finds_the_broken_chain() {
    let ca = TestCa::new("Corp Inspection CA");
    let proxy = serve_tls(ca.server(&["localhost"], None), |_| {
        Reply::json(200, r#"{"Version": "v1.9.0"}"#)
    })
    .await;
    let playbook = support::playbook(
        r#"
apiVersion: rootfix/v1
kind: Playbook
metadata: {name: proxy-tls}
spec:
  match: ['alertname="GoModuleProxyFailing"']
  evidence:
    proxy_dns: {dns: {name: '{{ $labels.goproxy }}', timeout: 3s}}
    proxy_root: {http: {url: '{{ $labels.goproxy }}/', method: HEAD, max_redirects: 0, timeout: 5s}}
  tree:
    id: root
    children:
      - {id: dns_unresolvable, when: '!evidence.proxy_dns.resolved'}
      - id: tls_chain_broken
        when: evidence.proxy_dns.resolved && !evidence.proxy_root.tls.verified
      - {id: reachable, when: evidence.proxy_root.ok}
"#,
    );
    let alert = evidence::alert(
        &[
            ("alertname", "GoModuleProxyFailing"),
            ("goproxy", &proxy.https_url("")),
            ("service", "ci-runner"),
        ],
        chrono::Utc::now(),
    );
    let diagnosis = Walker::new(Arc::new(MemoryStateStore::new()), WalkOptions::default())
        .walk(&playbook, alert, Arc::new(no_backends()), chrono::Utc::now())
        .await;
    assert_eq!(
        diagnosis.with_outcome(NodeOutcome::Hit),
        vec!["root", "tls_chain_broken"]
    );
    assert_eq!(
        diagnosis.with_outcome(NodeOutcome::Miss),
        vec!["dns_unresolvable", "reachable"]
    );
}
