//! Every shipped playbook walked with the real walker over the evidence a live install reads on
//! ordinary days: a proxy whose name does not resolve, a refused connection, a chain that does not
//! verify, a healthy proxy, Prometheus without data, Prometheus with values. The probe values are
//! the exact shapes `evidence/http_probe.rs`, `dns.rs` and `tcp.rs` return, failures included.
//!
//! For every scenario: no node and no remedy signal is `error` (every signal has a value or
//! `null` here, so an error can only come from a condition that cannot read its data), and the
//! decision is the expected one. Every node of every shipped playbook must be evaluated by at
//! least one scenario, and every remedy scored by one, so a node added later is covered or the
//! test says which one lacks a scenario.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use rootfix::alert::{Alert, AlertStatus};
use rootfix::catalog::Catalog;
use rootfix::engine::fixture::FixtureEvidence;
use rootfix::engine::{Decision, Diagnosis, NodeOutcome, WalkOptions, Walker};
use rootfix::model::Playbook;
use rootfix::state::memory::MemoryStateStore;
use serde_json::{Value, json};
use support::shipped_paths;

// ── The probes' shapes ──────────────────────────────────────────────────────────────────────────

fn dns_resolved() -> Value {
    json!({"resolved": true, "addresses": ["203.0.113.10"], "elapsed_ms": 3.2, "error": null})
}

fn dns_failed() -> Value {
    json!({"resolved": false, "addresses": [], "elapsed_ms": 12.5,
           "error": "lookup of goproxy.example failed: failed to lookup address information: Name or service not known"})
}

fn timings(dns: Option<f64>, connect: Option<f64>, tls: Option<f64>, first_byte: Option<f64>) -> Value {
    json!({"dns": dns, "connect": connect, "tls": tls, "first_byte": first_byte, "total": 80.4})
}

fn tls_verified() -> Value {
    json!({"verified": true, "error": null, "issuer": "C=US, O=Let's Encrypt, CN=R11",
           "subject": "CN=goproxy.example", "not_after": "2027-02-01T00:00:00Z"})
}

/// An HTTP probe that got an answer (`tls` is null for plain http).
fn answered(url: &str, status: u16, tls: Value, json_value: Value) -> Value {
    let plain = tls.is_null();
    json!({"status": status, "ok": (200..300).contains(&status), "redirects": [], "final_url": url,
           "tls": tls,
           "timings_ms": timings(Some(1.2), Some(0.8), (!plain).then_some(9.5), Some(30.1)),
           "json": json_value, "error": null})
}

/// The probe when the name does not resolve: no connection, so no TLS.
fn http_dns_failed(url: &str) -> Value {
    json!({"status": 0, "ok": false, "redirects": [], "final_url": url, "tls": null,
           "timings_ms": timings(None, None, None, None), "json": null,
           "error": "dns lookup of goproxy.example failed: failed to lookup address information: Name or service not known"})
}

/// The probe when the connection is refused.
fn http_refused(url: &str) -> Value {
    json!({"status": 0, "ok": false, "redirects": [], "final_url": url, "tls": null,
           "timings_ms": timings(Some(1.1), None, None, None), "json": null,
           "error": "connect failed: 203.0.113.10:443: Connection refused (os error 111)"})
}

/// The probe when the chain does not verify: no request is sent over the connection.
fn http_tls_failed(url: &str) -> Value {
    json!({"status": 0, "ok": false, "redirects": [], "final_url": url,
           "tls": {"verified": false, "error": "invalid peer certificate: UnknownIssuer",
                   "issuer": "CN=Corp Inspection CA", "subject": "CN=goproxy.example",
                   "not_after": "2027-01-01T00:00:00Z"},
           "timings_ms": timings(Some(1.0), Some(0.7), Some(8.8), None), "json": null,
           "error": "tls: invalid peer certificate: UnknownIssuer"})
}

/// A download stopped after `max_redirects` (10) hops that go round in circles.
fn http_redirect_loop(url: &str) -> Value {
    let hops: Vec<Value> = (0..10)
        .map(|i| {
            let from = if i % 2 == 0 { url.to_string() } else { format!("{url}?r={i}") };
            json!({"url": from, "status": 302, "location": format!("{url}?r={}", i + 1), "tls_verified": true})
        })
        .collect();
    json!({"status": 302, "ok": false, "redirects": hops, "final_url": format!("{url}?r=10"),
           "tls": tls_verified(), "timings_ms": timings(Some(0.4), Some(0.6), Some(7.0), Some(20.0)),
           "json": null, "error": format!("stopped after 10 redirects; the next goes to {url}?r=11")})
}

// ── The go-module-proxy scenarios ───────────────────────────────────────────────────────────────

const BASE: &str = "https://goproxy.example";
const SUMDB: &str = "https://sum.golang.org/lookup/github.com/stretchr/testify@v1.9.0";

fn urls(base: &str) -> [(&'static str, String); 5] {
    [
        ("proxy_root", format!("{base}/")),
        (
            "proxy_info",
            format!("{base}/github.com/stretchr/testify/@v/v1.9.0.info"),
        ),
        (
            "proxy_list",
            format!("{base}/github.com/stretchr/testify/@v/list"),
        ),
        (
            "proxy_latest",
            format!("{base}/github.com/stretchr/testify/@latest"),
        ),
        (
            "proxy_redirects",
            format!("{base}/github.com/stretchr/testify/@v/v1.9.0.zip"),
        ),
    ]
}

fn sumdb_ok() -> Value {
    answered(SUMDB, 200, tls_verified(), Value::Null)
}

/// Every proxy probe failing the same way; the checksum database answers.
fn proxy_down(dns: Value, probe: fn(&str) -> Value) -> BTreeMap<String, Value> {
    let mut signals: BTreeMap<String, Value> = urls(BASE)
        .into_iter()
        .map(|(name, url)| (name.to_string(), probe(&url)))
        .collect();
    signals.insert("proxy_dns".into(), dns);
    signals.insert("sumdb_lookup".into(), sumdb_ok());
    signals
}

/// A proxy that answers: `statuses` for root, info, list, latest; `info_json` is what `.info`'s
/// `$.Version` selects.
fn proxy_answering(base: &str, statuses: [u16; 4], info_json: Value) -> BTreeMap<String, Value> {
    let tls = if base.starts_with("https") {
        tls_verified()
    } else {
        Value::Null
    };
    let [root, info, list, latest] = statuses;
    let [
        (_, root_url),
        (_, info_url),
        (_, list_url),
        (_, latest_url),
        (_, zip_url),
    ] = urls(base);
    let mut zip = answered(
        "https://cdn.goproxy.example/testify/v1.9.0.zip",
        200,
        tls_verified(),
        Value::Null,
    );
    zip["redirects"] = json!([{"url": zip_url, "status": 302, "location": "https://cdn.goproxy.example/testify/v1.9.0.zip",
                "tls_verified": tls.get("verified").cloned().unwrap_or(Value::Null)}]);
    let latest_json = if latest == 200 {
        json!("v1.11.1")
    } else {
        Value::Null
    };
    BTreeMap::from([
        ("proxy_dns".to_string(), dns_resolved()),
        (
            "proxy_root".to_string(),
            answered(&root_url, root, tls.clone(), Value::Null),
        ),
        (
            "proxy_info".to_string(),
            answered(&info_url, info, tls.clone(), info_json),
        ),
        (
            "proxy_list".to_string(),
            answered(&list_url, list, tls.clone(), Value::Null),
        ),
        (
            "proxy_latest".to_string(),
            answered(&latest_url, latest, tls, latest_json),
        ),
        ("proxy_redirects".to_string(), zip),
        ("sumdb_lookup".to_string(), sumdb_ok()),
    ])
}

fn go_alert(goproxy: &str) -> Arc<Alert> {
    alert(&[
        ("alertname", "GoModuleProxyFailing"),
        ("env", "staging"),
        ("goproxy", goproxy),
        (
            "goproxy_fallback",
            "https://goproxy.cn,https://proxy.golang.org,direct",
        ),
        ("service", "ci-runner"),
        ("severity", "warning"),
    ])
}

// ── The order-service-timeout scenarios ─────────────────────────────────────────────────────────

/// Every signal of the order tree; `null` for the ones not given (Prometheus "no series").
fn order_signals(playbook: &Playbook, given: &[(&str, Value)]) -> BTreeMap<String, Value> {
    let mut signals: BTreeMap<String, Value> = playbook
        .evidence
        .keys()
        .map(|k| (k.clone(), Value::Null))
        .collect();
    for (name, value) in given {
        assert!(
            signals.contains_key(*name),
            "the order tree reads no signal `{name}`"
        );
        signals.insert((*name).to_string(), value.clone());
    }
    signals
}

/// Below every threshold of the order tree (Prometheus answers numbers as doubles; Loki's
/// metric queries too).
fn order_healthy() -> Vec<(&'static str, Value)> {
    vec![
        ("tcp_retransmit_ratio", json!(0.0004)),
        ("tls_handshake_p99_seconds", json!(0.09)),
        ("payment_upstream_failures", json!(0.0)),
        ("payment_upstream_failures_recent", json!(0.0)),
        ("payment_front_p99_seconds", json!(0.12)),
        ("payment_timeout_log_lines", json!(0.0)),
        ("threadpool_queue", json!(12.0)),
        ("http_5xx_ratio", json!(0.001)),
        ("jvm_heap_used_ratio", json!(0.48)),
        ("gc_pause_ratio", json!(0.01)),
        ("container_memory_ratio", json!(0.41)),
        ("container_memory_growth", json!(-1024.0)),
        ("db_pool_wait_p99_seconds", json!(0.02)),
        ("db_active_connection_ratio", json!(0.3)),
        ("slow_queries_per_second", json!(0.05)),
        ("replica_lag_seconds", json!(0.4)),
        ("kafka_under_replicated_partitions", json!(0.0)),
        ("payment_timeout_logs", json!(0.0)),
        ("connection_leak_logs", json!(0.0)),
        ("trace_p99_ms", json!(840)),
    ]
}

/// Above every threshold.
fn order_failing() -> Vec<(&'static str, Value)> {
    vec![
        ("tcp_retransmit_ratio", json!(0.011)),
        ("tls_handshake_p99_seconds", json!(0.8)),
        ("payment_upstream_failures", json!(14.0)),
        ("payment_upstream_failures_recent", json!(9.0)),
        ("payment_front_p99_seconds", json!(3.1)),
        ("payment_timeout_log_lines", json!(9.0)),
        ("threadpool_queue", json!(412.0)),
        ("http_5xx_ratio", json!(0.04)),
        ("jvm_heap_used_ratio", json!(0.97)),
        ("gc_pause_ratio", json!(0.31)),
        ("container_memory_ratio", json!(0.95)),
        ("container_memory_growth", json!(524288.0)),
        ("db_pool_wait_p99_seconds", json!(2.4)),
        ("db_active_connection_ratio", json!(0.98)),
        ("slow_queries_per_second", json!(3.5)),
        ("replica_lag_seconds", json!(45.0)),
        ("kafka_under_replicated_partitions", json!(8.0)),
        ("payment_timeout_logs", json!(7)),
        ("connection_leak_logs", json!(3)),
        ("trace_p99_ms", json!(6230)),
    ]
}

/// What `dump-thread-stack` prints (jq's counts are JSON integers).
fn thread_dump() -> Value {
    json!({"url": "http://order-api.shop.svc:8081/actuator/threaddump", "total": 200,
           "by_state": {"RUNNABLE": 30, "BLOCKED": 40, "WAITING": 110, "TIMED_WAITING": 20},
           "blocked": 170, "focus": "payment", "blocked_on_focus": 150, "blocked_on_payment": 150,
           "top_frames": [{"frame": "com.shop.payment.PaymentClient.charge", "threads": 150}],
           "blocked_threads": [], "deadlocked": []})
}

fn order_alert() -> Arc<Alert> {
    alert(&[
        ("alertname", "OrderServiceTimeout"),
        ("container", "order-api"),
        ("deployment", "order-api"),
        ("env", "staging"),
        ("namespace", "shop"),
        ("service", "order"),
        ("severity", "critical"),
    ])
}

// ── The harness ─────────────────────────────────────────────────────────────────────────────────

fn alert(labels: &[(&str, &str)]) -> Arc<Alert> {
    Arc::new(Alert {
        status: AlertStatus::Firing,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: BTreeMap::new(),
        starts_at: Utc.with_ymd_and_hms(2026, 11, 24, 16, 5, 0).unwrap(),
        ends_at: chrono::DateTime::<Utc>::MIN_UTC,
        generator_url: String::new(),
        fingerprint: "0123456789abcdef".into(),
    })
}

struct Scenario {
    name: &'static str,
    playbook: &'static str,
    alert: Arc<Alert>,
    signals: BTreeMap<String, Value>,
    diagnostics: BTreeMap<String, Value>,
    /// Every node that hits, in tree order.
    hits: &'static [&'static str],
    /// Every scored remedy: its node, whether it acts, its score.
    remedies: &'static [(&'static str, bool, f64)],
}

fn scenarios(catalog: &Catalog) -> Vec<Scenario> {
    let order = catalog.playbook("order-service-timeout").unwrap();
    fn go(
        name: &'static str,
        alert: Arc<Alert>,
        signals: BTreeMap<String, Value>,
        hits: &'static [&'static str],
        remedies: &'static [(&'static str, bool, f64)],
    ) -> Scenario {
        Scenario {
            name,
            playbook: "go-module-proxy",
            alert,
            signals,
            diagnostics: BTreeMap::new(),
            hits,
            remedies,
        }
    }
    let mut sumdb_down = proxy_answering(BASE, [200, 200, 200, 200], json!("v1.9.0"));
    sumdb_down.insert("sumdb_lookup".into(), http_refused(SUMDB));
    let mut redirect_loop = proxy_answering(BASE, [200, 200, 200, 200], json!("v1.9.0"));
    redirect_loop.insert("proxy_redirects".into(), http_redirect_loop(&urls(BASE)[4].1));
    let all_null = |p: &Playbook| -> BTreeMap<String, Value> {
        p.evidence.keys().map(|k| (k.clone(), Value::Null)).collect()
    };
    let go_playbook = catalog.playbook("go-module-proxy").unwrap();
    vec![
        go(
            "go: the proxy's name does not resolve",
            go_alert(BASE),
            proxy_down(dns_failed(), http_dns_failed),
            &[
                "go_module_proxy_failing",
                "dns_unresolvable",
                "no_direct_fallback",
            ],
            &[("dns_unresolvable", true, 1.0)],
        ),
        go(
            "go: the chain does not verify",
            go_alert(BASE),
            proxy_down(dns_resolved(), http_tls_failed),
            &[
                "go_module_proxy_failing",
                "tls_chain_broken",
                "no_direct_fallback",
            ],
            &[("tls_chain_broken", true, 1.0)],
        ),
        go(
            "go: the proxy refuses connections",
            go_alert(BASE),
            proxy_down(dns_resolved(), http_refused),
            &["go_module_proxy_failing", "no_direct_fallback"],
            &[],
        ),
        go(
            "go: healthy, with a ,direct fallback",
            go_alert("https://goproxy.example,direct"),
            proxy_answering(BASE, [200, 200, 200, 200], json!("v1.9.0")),
            &["go_module_proxy_failing"],
            &[],
        ),
        go(
            "go: the module endpoints answer errors",
            go_alert(BASE),
            proxy_answering(BASE, [200, 404, 500, 502], Value::Null),
            &[
                "go_module_proxy_failing",
                "module_protocol_broken",
                "module_endpoints_failing",
                "no_direct_fallback",
            ],
            &[("module_endpoints_failing", true, 0.6)],
        ),
        go(
            "go: `.info` answers a page that is not JSON",
            go_alert("https://goproxy.example,direct"),
            proxy_answering(BASE, [200, 200, 200, 503], Value::Null),
            &[
                "go_module_proxy_failing",
                "module_protocol_broken",
                "info_not_json",
                "module_endpoints_failing",
            ],
            &[("module_endpoints_failing", false, 0.2)],
        ),
        go(
            "go: a plain-http proxy whose module endpoints fail",
            go_alert("http://athens.ci.svc:3000"),
            proxy_answering("http://athens.ci.svc:3000", [200, 500, 500, 500], Value::Null),
            &[
                "go_module_proxy_failing",
                "module_protocol_broken",
                "module_endpoints_failing",
                "no_direct_fallback",
            ],
            &[("module_endpoints_failing", true, 0.6)],
        ),
        go(
            "go: a healthy plain-http proxy",
            go_alert("http://athens.ci.svc:3000"),
            proxy_answering("http://athens.ci.svc:3000", [200, 200, 200, 200], json!("v1.9.0")),
            &["go_module_proxy_failing", "no_direct_fallback"],
            &[],
        ),
        go(
            "go: downloads redirect in circles",
            go_alert(BASE),
            redirect_loop,
            &["go_module_proxy_failing", "redirect_loop", "no_direct_fallback"],
            &[],
        ),
        go(
            "go: the checksum database is unreachable",
            go_alert("https://goproxy.example,direct"),
            sumdb_down,
            &["go_module_proxy_failing", "sumdb_unreachable"],
            &[],
        ),
        go(
            "go: no data at all",
            go_alert("https://goproxy.example,direct"),
            all_null(go_playbook),
            &["go_module_proxy_failing"],
            &[],
        ),
        Scenario {
            name: "order: Prometheus, Loki and tracing have no data",
            playbook: "order-service-timeout",
            alert: order_alert(),
            signals: all_null(order),
            diagnostics: BTreeMap::new(),
            hits: &["order_service_timeout"],
            remedies: &[],
        },
        Scenario {
            name: "order: every value below its threshold",
            playbook: "order-service-timeout",
            alert: order_alert(),
            signals: order_signals(order, &order_healthy()),
            diagnostics: BTreeMap::new(),
            hits: &["order_service_timeout"],
            remedies: &[],
        },
        Scenario {
            name: "order: every layer failing",
            playbook: "order-service-timeout",
            alert: order_alert(),
            signals: order_signals(order, &order_failing()),
            diagnostics: BTreeMap::from([
                ("thread_dump".to_string(), thread_dump()),
                (
                    "netdiag".to_string(),
                    json!({"dns_ms": 2.1, "connect_ms": 310.5, "retransmits": 412,
                           "target": "payment.shop.svc:443"}),
                ),
            ]),
            hits: &[
                "order_service_timeout",
                "network_layer",
                "tcp_retransmits",
                "tls_handshake_slow",
                "payment_upstream_failing",
                "application_layer",
                "jvm_heap_exhausted",
                "container_memory_exhausted",
                "threadpool_saturated",
                "threads_blocked_on_payment",
                "http_errors",
                "data_layer",
                "db_connection_leak",
                "slow_queries",
                "replica_lag",
                "kafka_under_replicated",
            ],
            remedies: &[
                ("payment_upstream_failing", true, 0.924),
                ("jvm_heap_exhausted", true, 1.0),
                ("container_memory_exhausted", true, 1.0),
                ("db_connection_leak", true, 1.0),
                ("replica_lag", true, 1.0),
                ("kafka_under_replicated", true, 1.0),
            ],
        },
        Scenario {
            name: "order: the heap is full, nothing else has data",
            playbook: "order-service-timeout",
            alert: order_alert(),
            signals: order_signals(order, &[("jvm_heap_used_ratio", json!(0.97))]),
            diagnostics: BTreeMap::new(),
            hits: &["order_service_timeout", "application_layer", "jvm_heap_exhausted"],
            remedies: &[("jvm_heap_exhausted", false, 0.5)],
        },
    ]
}

async fn walk(playbook: &Playbook, scenario: &Scenario) -> Diagnosis {
    let mut fixture = FixtureEvidence::new();
    for (name, value) in &scenario.signals {
        fixture = fixture.with_signal(name, value.clone(), Duration::ZERO);
    }
    for (name, value) in &scenario.diagnostics {
        fixture = fixture.with_diagnostic(name, value.clone(), Duration::ZERO);
    }
    Walker::new(Arc::new(MemoryStateStore::new()), WalkOptions::default())
        .walk(
            playbook,
            scenario.alert.clone(),
            Arc::new(fixture),
            Utc.with_ymd_and_hms(2026, 11, 24, 16, 5, 1).unwrap(),
        )
        .await
}

/// What is wrong with one walk: errors, and a decision other than the expected one.
fn problems(scenario: &Scenario, playbook: &Playbook, d: &Diagnosis) -> Vec<String> {
    let mut out = Vec::new();
    let given: BTreeSet<&String> = scenario.signals.keys().collect();
    let declared: BTreeSet<&String> = playbook.evidence.keys().collect();
    if given != declared {
        out.push(format!(
            "the scenario gives {given:?}, the playbook declares {declared:?}"
        ));
    }
    for node in &d.nodes {
        if node.outcome == NodeOutcome::Error {
            out.push(format!(
                "node {} is error: {}",
                node.id,
                node.detail.as_deref().unwrap_or("")
            ));
        }
    }
    for remedy in &d.remedies {
        for signal in &remedy.signals {
            if let Some(error) = &signal.error {
                out.push(format!(
                    "remedy of {}: signal `{}` is error: {error}",
                    remedy.node, signal.when
                ));
            }
        }
    }
    for (name, evidence) in &d.evidence {
        if let Some(error) = &evidence.error {
            out.push(format!("evidence {name} failed: {error}"));
        }
    }
    let hits = d.with_outcome(NodeOutcome::Hit);
    if hits != scenario.hits {
        out.push(format!("hits {hits:?}, expected {:?}", scenario.hits));
    }
    let remedies: Vec<(&str, bool, f64)> = d
        .remedies
        .iter()
        .map(|r| (r.node.as_str(), r.decision == Decision::Act, r.score))
        .collect();
    let same = remedies.len() == scenario.remedies.len()
        && remedies
            .iter()
            .zip(scenario.remedies)
            .all(|(a, b)| a.0 == b.0 && a.1 == b.1 && (a.2 - b.2).abs() < 1e-9);
    if !same {
        out.push(format!(
            "remedies (node, acts, score) {remedies:?}, expected {:?}",
            scenario.remedies
        ));
    }
    if let Some(r) = d
        .remedies
        .iter()
        .find(|r| matches!(r.decision, Decision::Invalid(_)))
    {
        out.push(format!("remedy of {} is invalid: {:?}", r.node, r.decision));
    }
    out
}

#[tokio::test]
async fn every_shipped_node_decides_ordinary_evidence() {
    let catalog = Catalog::load(&shipped_paths()).unwrap_or_else(|problems| {
        panic!(
            "{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let scenarios = scenarios(&catalog);
    let mut failures = Vec::new();
    // Per playbook: the nodes some scenario evaluated (hit or miss), and the remedies scored.
    let mut evaluated: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut scored: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for scenario in &scenarios {
        let playbook = catalog
            .playbook(scenario.playbook)
            .unwrap_or_else(|| panic!("{}: no playbook {}", scenario.name, scenario.playbook));
        let d = walk(playbook, scenario).await;
        for problem in problems(scenario, playbook, &d) {
            failures.push(format!("{}: {problem}", scenario.name));
        }
        evaluated.entry(scenario.playbook).or_default().extend(
            d.nodes
                .iter()
                .filter(|n| matches!(n.outcome, NodeOutcome::Hit | NodeOutcome::Miss))
                .map(|n| n.id.clone()),
        );
        scored
            .entry(scenario.playbook)
            .or_default()
            .extend(d.remedies.iter().map(|r| r.node.clone()));
    }
    for playbook in &catalog.playbooks {
        let name = playbook.name.as_str();
        for node in &playbook.nodes {
            if !evaluated.get(name).is_some_and(|s| s.contains(&node.id)) {
                failures.push(format!(
                    "{name}: node {} is evaluated by no scenario; add one that reaches it",
                    node.id
                ));
            }
            if node.remedy.is_some() && !scored.get(name).is_some_and(|s| s.contains(&node.id)) {
                failures.push(format!(
                    "{name}: the remedy of {} is scored by no scenario; add one where it hits",
                    node.id
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
