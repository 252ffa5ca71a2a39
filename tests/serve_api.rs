//! The HTTP API in-process against real Redis: the webhook's refusals (401, 403, 400, 413) each
//! store nothing; every route's auth; the incidents API; and the event loop turning real
//! Alertmanager payloads into incidents (open, join, resolve, unhandled).

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use rootfix::catalog::Catalog;
use rootfix::engine::fixture::FixtureEvidence;
use rootfix::engine::{WalkOptions, Walker};
use rootfix::events::EventLoop;
use rootfix::events::handler::IncidentHandler;
use rootfix::metrics::Metrics;
use rootfix::reload::CatalogHandle;
use rootfix::server::{AppState, router};
use rootfix::state::StateStore;
use serde_json::{Value, json};
use support::*;

struct Server {
    url: String,
    state: Arc<dyn StateStore>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// The router on a free port with Redis state under a fresh prefix; with `events`, the event
/// loop runs too, walking over `evidence`.
async fn start(test: &str, events: Option<FixtureEvidence>, max_body_bytes: usize) -> Server {
    let state: Arc<dyn StateStore> = Arc::new(redis_store(test).await);
    let catalog = CatalogHandle::new(Catalog::load(&shipped_paths()).unwrap());
    let metrics = Arc::new(Metrics::new());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(evidence) = events {
        let handler = IncidentHandler {
            state: state.clone(),
            catalog: catalog.clone(),
            walker: Arc::new(Walker::new(state.clone(), WalkOptions::default())),
            evidence: Arc::new(evidence),
            metrics: metrics.clone(),
            autonomy: None,
            rules: Default::default(),
        };
        let event_loop = EventLoop {
            state: state.clone(),
            handler: Arc::new(handler),
            consumer: "test".into(),
            workers: 4,
            claim_idle: Duration::from_secs(30),
            probe: Default::default(),
        };
        tokio::spawn(event_loop.run(stop_rx));
    }
    let app = AppState {
        state: state.clone(),
        catalog,
        tokens: Arc::new(test_tokens()),
        metrics,
        // Its tests post the same payload again as Alertmanager's repeat (hours later in life):
        // outside any dedupe window, so the window is off here.
        http: rootfix::server::guard::HttpLimits {
            max_body_bytes,
            dedupe_window: Duration::ZERO,
            ..Default::default()
        },
        readiness: Default::default(),
        autonomy: None,
        chat: rootfix::server::chat::ChatState::disabled(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(app)).await });
    Server { url, state, stop }
}

fn payload(name: &str) -> String {
    std::fs::read_to_string(repo_path(&format!("tests/fixtures/alertmanager/{name}.json"))).unwrap()
}

async fn post(server: &Server, token: Option<&str>, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/v1/alerts/alertmanager", server.url))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn stored(server: &Server) -> u64 {
    server.state.stream_stats().await.unwrap().length
}

#[tokio::test]
async fn refused_webhooks_store_nothing_and_say_why() {
    let server = start("refusals", None, 4096).await;
    let firing = payload("order-service-timeout.firing");
    let cases: Vec<(&str, Option<&str>, String, StatusCode, &str)> = vec![
        (
            "no token",
            None,
            firing.clone(),
            StatusCode::UNAUTHORIZED,
            "missing or unknown bearer token",
        ),
        (
            "unknown token",
            Some("not-a-real-token-at-all"),
            firing.clone(),
            StatusCode::UNAUTHORIZED,
            "missing or unknown bearer token",
        ),
        (
            "viewer token",
            Some(VIEWER_TOKEN),
            firing.clone(),
            StatusCode::FORBIDDEN,
            "a token with role viewer cannot do this; it needs role ingest",
        ),
        (
            "broken JSON",
            Some(INGEST_TOKEN),
            firing[..firing.len() / 2].to_string(),
            StatusCode::BAD_REQUEST,
            "body is not a valid Alertmanager webhook: EOF while parsing",
        ),
        (
            "version 3",
            Some(INGEST_TOKEN),
            firing.replace("\"version\":\"4\"", "\"version\":\"3\""),
            StatusCode::BAD_REQUEST,
            "unsupported payload version `3`; rootfix reads version 4",
        ),
        (
            "no fingerprint",
            Some(INGEST_TOKEN),
            firing.replace("\"fingerprint\":\"cf12c1db58df9346\"", "\"fingerprint\":\"\""),
            StatusCode::BAD_REQUEST,
            "alerts[0]: fingerprint `` is not a hex string",
        ),
        (
            "no alerts",
            Some(INGEST_TOKEN),
            r#"{"version":"4","status":"firing","receiver":"rootfix","alerts":[]}"#.to_string(),
            StatusCode::BAD_REQUEST,
            "the payload holds no alerts",
        ),
        (
            "missing startsAt",
            Some(INGEST_TOKEN),
            firing.replace("\"startsAt\":\"2026-11-24T16:05:00.345Z\",", ""),
            StatusCode::BAD_REQUEST,
            "missing field `startsAt`",
        ),
        (
            "too large",
            Some(INGEST_TOKEN),
            firing.replace("checkout calls to payment time out", &"x".repeat(8192)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than 4096 bytes",
        ),
    ];
    for (what, token, body, status, reason) in cases {
        let (got, json) = post(&server, token, body).await;
        assert_eq!(got, status, "{what}: {json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(reason) || error.contains(reason),
            "{what}: {error}"
        );
        assert_eq!(stored(&server).await, 0, "{what}: something was stored");
    }
    let (got, json) = post(&server, Some(INGEST_TOKEN), firing).await;
    assert_eq!(got, StatusCode::OK, "{json}");
    assert_eq!(json["accepted"], 1);
    assert_eq!(stored(&server).await, 1);
    // An admin token may ingest too.
    let (got, _) = post(&server, Some(ADMIN_TOKEN), payload("go-module-proxy.firing")).await;
    assert_eq!(got, StatusCode::OK);
    assert_eq!(stored(&server).await, 2);
}

#[tokio::test]
async fn every_route_checks_its_token_and_role() {
    let server = start("auth", None, 1 << 20).await;
    let client = reqwest::Client::new();
    // (method, path, a token whose role is too weak)
    let routes: [(&str, &str, &str); 6] = [
        ("POST", "/api/v1/alerts/alertmanager", VIEWER_TOKEN),
        ("GET", "/api/v1/incidents", INGEST_TOKEN),
        ("GET", "/api/v1/incidents/inc-1-0", INGEST_TOKEN),
        ("GET", "/api/v1/killswitch", INGEST_TOKEN),
        ("PUT", "/api/v1/killswitch", APPROVER_TOKEN),
        ("GET", "/api/v1/audit", INGEST_TOKEN),
    ];
    for (method, path, weak) in routes {
        for (label, token, expected) in [
            ("no token", None, StatusCode::UNAUTHORIZED),
            (
                "wrong token",
                Some("wrong-token-wrong-token"),
                StatusCode::UNAUTHORIZED,
            ),
            ("too weak a role", Some(weak), StatusCode::FORBIDDEN),
        ] {
            let mut req = client
                .request(method.parse().unwrap(), format!("{}{path}", server.url))
                .body(payload("order-service-timeout.firing"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), expected, "{method} {path} with {label}");
            if expected == StatusCode::UNAUTHORIZED {
                assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"rootfix\"");
            }
        }
    }
    // Probes and the scrape need no token.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let resp = client.get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    assert_eq!(stored(&server).await, 0);
}

async fn get(server: &Server, path: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", server.url))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn real_payloads_open_join_and_resolve_incidents() {
    let evidence = FixtureEvidence::new()
        .with_signal("jvm_heap_used_ratio", json!(0.97), Duration::ZERO)
        .with_signal("gc_pause_ratio", json!(0.3), Duration::ZERO)
        .with_signal("trace_p99_ms", json!(6000), Duration::ZERO);
    let server = start("incidents", Some(evidence), 1 << 20).await;
    assert_eq!(
        post(
            &server,
            Some(INGEST_TOKEN),
            payload("order-service-timeout.firing")
        )
        .await
        .0,
        StatusCode::OK
    );
    let list = eventually(Duration::from_secs(10), "the incident", || async {
        let (_, list) = get(&server, "/api/v1/incidents?state=open").await;
        (list["items"].as_array().map_or(0, Vec::len) == 1).then_some(list)
    })
    .await;
    let item = &list["items"][0];
    assert_eq!(item["playbook"], "order-service-timeout");
    assert_eq!(item["service"], "order");
    assert_eq!(
        item["path"],
        json!(["order_service_timeout", "application_layer", "jvm_heap_exhausted"])
    );
    assert_eq!(item["remedies"], json!(["restart-jvm-pod"]));
    let id = item["id"].as_str().unwrap().to_string();

    // The whole record: diagnosis with evidence values, and the timeline.
    let (status, incident) = get(&server, &format!("/api/v1/incidents/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        incident["diagnosis"]["evidence"]["jvm_heap_used_ratio"]["value"],
        json!(0.97)
    );
    assert_eq!(incident["timeline"][0]["kind"], "opened");
    assert_eq!(incident["timeline"][1]["kind"], "diagnosed");

    // A repeated firing joins; it does not open a second incident.
    post(
        &server,
        Some(INGEST_TOKEN),
        payload("order-service-timeout.firing"),
    )
    .await;
    eventually(Duration::from_secs(10), "the join", || async {
        let (_, i) = get(&server, &format!("/api/v1/incidents/{id}")).await;
        (i["firings"] == 2).then_some(())
    })
    .await;
    // Resolved closes it.
    post(
        &server,
        Some(INGEST_TOKEN),
        payload("order-service-timeout.resolved"),
    )
    .await;
    eventually(Duration::from_secs(10), "the resolution", || async {
        let (_, i) = get(&server, &format!("/api/v1/incidents/{id}")).await;
        (i["state"] == "resolved").then_some(())
    })
    .await;
    let (_, i) = get(&server, &format!("/api/v1/incidents/{id}")).await;
    assert_eq!(i["resolved_at"], "2026-11-24T16:05:09.345Z");

    // An alert no playbook matches is recorded as unhandled.
    let unknown = payload("order-service-timeout.firing")
        .replace("OrderServiceTimeout", "DiskFull")
        .replace("cf12c1db58df9346", "aaaa000011112222");
    post(&server, Some(INGEST_TOKEN), unknown).await;
    let list = eventually(Duration::from_secs(10), "the unhandled incident", || async {
        let (_, list) = get(&server, "/api/v1/incidents?state=unhandled").await;
        (list["items"].as_array().map_or(0, Vec::len) == 1).then_some(list)
    })
    .await;
    assert_eq!(list["items"][0]["alertname"], "DiskFull");
    assert_eq!(list["items"][0]["playbook"], Value::Null);

    // Filters and errors of the list API.
    let (_, by_playbook) = get(&server, "/api/v1/incidents?playbook=order-service-timeout").await;
    assert_eq!(by_playbook["items"].as_array().unwrap().len(), 1);
    let (_, page) = get(&server, "/api/v1/incidents?limit=1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_offset"], 1);
    assert_eq!(
        get(&server, "/api/v1/incidents?state=sleeping").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&server, "/api/v1/incidents?limit=0").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&server, "/api/v1/incidents/inc-0-0").await.0,
        StatusCode::NOT_FOUND
    );

    let stats = server.state.stream_stats().await.unwrap();
    assert_eq!((stats.length, stats.pending, stats.lag), (4, 0, 0));
    let _ = server.stop.send(true);
}

#[tokio::test]
async fn the_kill_switch_needs_an_admin_and_a_reason_and_is_audited() {
    let server = start("killswitch", None, 1 << 20).await;
    let client = reqwest::Client::new();
    let put = |token: &'static str, body: Value| {
        client
            .put(format!("{}/api/v1/killswitch", server.url))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let resp = put(ADMIN_TOKEN, json!({"on": true})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "a reason is required to turn the kill switch on"
    );
    assert_eq!(
        put(APPROVER_TOKEN, json!({"on": true, "reason": "x"}))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let resp = put(
        ADMIN_TOKEN,
        json!({"on": true, "reason": "bad deploy in progress"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, state) = get(&server, "/api/v1/killswitch").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (state["on"].clone(), state["state"]["by"].clone()),
        (json!(true), json!("admin"))
    );
    assert!(server.state.killswitch().await.unwrap().is_some());
    put(ADMIN_TOKEN, json!({"on": false})).await.unwrap();
    assert!(server.state.killswitch().await.unwrap().is_none());
    let (_, audit) = get(&server, "/api/v1/audit").await;
    let actions: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["identity"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("killswitch.off", "admin"), ("killswitch.on", "admin")]);
}
