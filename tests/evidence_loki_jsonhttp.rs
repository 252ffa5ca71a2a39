//! `loki` and `jsonhttp` evidence against a local HTTP server on 127.0.0.1.
//!
//! Loki has no Debian package and no network reaches a real one, so these tests do **not** run
//! against Loki or a tracing backend: the server replays response bodies taken from the APIs'
//! documentation (Loki's HTTP API reference for `GET /loki/api/v1/query`, its `vector` and
//! `streams` examples; a Jaeger-query-style JSON with a `data` array), and the tests check what
//! the real server would have received: the path, the query text after escaping, `time` in
//! nanoseconds, `limit`, and the configured headers and token.

#[path = "support/evidence.rs"]
mod evidence;

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use evidence::{Reply, closed_port, ctx, ctx_at, jsonhttp, live, loki, serve, silent};
use rootfix::engine::{EvidenceError, EvidenceProvider};
use serde_json::{Value, json};

/// Loki docs, "Query logs at a single point in time", example response for a metric query.
const LOKI_VECTOR: &str = r#"{
  "status": "success",
  "data": {
    "resultType": "vector",
    "result": [
      {"metric": {}, "value": [1588889221, "1267.1266666666666"]},
      {"metric": {"level": "warn"}, "value": [1588889221, "37.77166666666667"]},
      {"metric": {"level": "info"}, "value": [1588889221, "37.69"]}
    ],
    "stats": {"summary": {"bytesProcessedPerSecond": 0, "linesProcessedPerSecond": 0, "totalBytesProcessed": 0, "totalLinesProcessed": 0, "execTime": 0.001}}
  }
}"#;

/// The same, with the single series a `sum(...)` answers.
const LOKI_VECTOR_ONE: &str = r#"{"status": "success", "data": {"resultType": "vector",
  "result": [{"metric": {}, "value": [1588889221, "7"]}], "stats": {}}}"#;

/// Loki docs, example response for a log query (`streams`).
const LOKI_STREAMS: &str = r#"{
  "status": "success",
  "data": {
    "resultType": "streams",
    "result": [
      {"stream": {"filename": "/var/log/myproject.log", "job": "varlogs", "level": "info"},
       "values": [["1568234281726420425", "foo"], ["1568234269716526880", "bar"]]},
      {"stream": {"filename": "/var/log/myproject.log", "job": "varlogs", "level": "error"},
       "values": [["1568234281726420426", "timeout calling payment"]]}
    ],
    "stats": {}
  }
}"#;

/// A Jaeger-query-style answer (`/api/...` returns `{"data": [...], "total", "errors"}`).
const TRACES: &str = r#"{"data": [{"service": "order", "operation": "checkout", "p99_ms": 6230.5}],
  "total": 1, "limit": 0, "offset": 0, "errors": null}"#;

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 16, 5, 0).unwrap() + chrono::Duration::milliseconds(345)
}

#[tokio::test]
async fn loki_metric_and_log_queries() {
    let server = serve(|seen| {
        let query = seen.param("query").unwrap_or("");
        if query.starts_with("{") {
            Reply::json(200, LOKI_STREAMS)
        } else if query.starts_with("sum by") {
            Reply::json(200, LOKI_VECTOR)
        } else if query.contains("empty") {
            Reply::json(
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            )
        } else {
            Reply::json(200, LOKI_VECTOR_ONE)
        }
    })
    .await;
    let p = live(&format!(
        "loki:\n  default: {{url: '{}', headers: {{X-Scope-OrgID: shop}}, bearer_token: s3cret}}\n",
        server.url("")
    ));
    let labels = [("service", "order\"} |= \"x")];
    let c = ctx_at(&labels, at(), Duration::from_secs(3));

    let q = "sum(count_over_time({service=\"{{ $labels.service }}\"} |~ \"timeout.*payment\" [5m]))";
    assert_eq!(p.fetch(&loki(q, "default"), &c).await.unwrap(), json!(7.0));
    let seen = &server.requests()[0];
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/loki/api/v1/query");
    assert_eq!(
        seen.param("query"),
        Some(r#"sum(count_over_time({service="order\"} |= \"x"} |~ "timeout.*payment" [5m]))"#)
    );
    assert_eq!(seen.param("time"), Some("1795536300345000000"));
    assert_eq!(seen.param("limit"), Some("5000"));
    assert_eq!(seen.header("x-scope-orgid"), Some("shop"));
    assert_eq!(seen.header("authorization"), Some("Bearer s3cret"));

    // Several series: the array, as for Prometheus.
    let v = p
        .fetch(
            &loki("sum by (level) (rate({job=\"varlogs\"}[5m]))", "default"),
            &c,
        )
        .await
        .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(
        v[1],
        json!({"metric": {"level": "warn"}, "value": 37.77166666666667})
    );
    // Streams: the number of lines returned.
    let v = p
        .fetch(&loki("{job=\"varlogs\"} |= \"timeout\"", "default"), &c)
        .await
        .unwrap();
    assert_eq!(v, json!(3));
    // No series: no data.
    let v = p
        .fetch(&loki("sum(rate({job=\"empty\"}[1m]))", "default"), &c)
        .await
        .unwrap();
    assert_eq!(v, Value::Null);
}

#[tokio::test]
async fn loki_errors_and_missing_backends() {
    // Loki answers a bad query with 400 and a plain-text message.
    let server = serve(|_| {
        Reply::text(
            400,
            "parse error at line 1, col 5: syntax error: unexpected IDENTIFIER",
        )
    })
    .await;
    let p = live(&format!("loki:\n  logs: {{url: '{}'}}\n", server.url("/loki-gw")));
    let err = p
        .fetch(&loki("{a=\"b\"} |= x", "logs"), &ctx(&[]))
        .await
        .unwrap_err();
    let EvidenceError::Backend(message) = &err else {
        panic!("not a backend error: {err:?}")
    };
    assert!(
        message.contains("loki `logs`") && message.contains("HTTP 400"),
        "{message}"
    );
    assert!(message.contains("parse error at line 1"), "{message}");
    assert_eq!(
        server.requests()[0].path,
        "/loki-gw/loki/api/v1/query",
        "the base path is kept"
    );
    // A JSON error envelope.
    let server = serve(|_| {
        Reply::json(
            422,
            r#"{"status":"error","errorType":"bad_data","error":"max entries limit per query exceeded"}"#,
        )
    })
    .await;
    let p = live(&format!("loki:\n  default: {{url: '{}'}}\n", server.url("")));
    let err = p
        .fetch(&loki("{a=\"b\"}", "default"), &ctx(&[]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        EvidenceError::Backend(
            "loki `default`: HTTP 422: bad_data: max entries limit per query exceeded".into()
        )
    );
    let err = p.fetch(&loki("{a=\"b\"}", "other"), &ctx(&[])).await.unwrap_err();
    assert_eq!(
        err,
        EvidenceError::NoBackend {
            kind: "loki",
            backend: "other".into()
        }
    );
}

#[tokio::test]
async fn jsonhttp_through_a_source_with_escaped_labels() {
    let server = serve(|seen| match seen.path.as_str() {
        "/jaeger/api/metrics/p99" => Reply::json(200, TRACES),
        "/jaeger/api/broken" => Reply::text(200, "<html>gateway</html>"),
        _ => Reply::text(404, "page not found"),
    })
    .await;
    let p = live(&format!(
        "jsonhttp:\n  tracing: {{url: '{}', bearer_token: tok}}\n",
        server.url("/jaeger/")
    ));
    let hostile = "order&operation=refund#x";
    let signal = jsonhttp(
        "/api/metrics/p99?service={{ $labels.service }}&operation=checkout",
        Some("tracing"),
        "$.data[0].p99_ms",
        Duration::from_secs(5),
    );
    let v = p.fetch(&signal, &ctx(&[("service", hostile)])).await.unwrap();
    assert_eq!(v, json!(6230.5));
    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/jaeger/api/metrics/p99");
    assert_eq!(
        seen.query,
        vec![
            ("service".to_string(), hostile.to_string()),
            ("operation".to_string(), "checkout".to_string())
        ]
    );
    assert_eq!(seen.header("authorization"), Some("Bearer tok"));

    // A path that selects nothing: no data.
    let absent = jsonhttp(
        "/api/metrics/p99",
        Some("tracing"),
        "$.data[3].p99_ms",
        Duration::from_secs(5),
    );
    assert_eq!(p.fetch(&absent, &ctx(&[])).await.unwrap(), Value::Null);
    // Not JSON, or an error status: backend errors.
    let broken = jsonhttp("/api/broken", Some("tracing"), "$.x", Duration::from_secs(5));
    let err = p.fetch(&broken, &ctx(&[])).await.unwrap_err();
    assert!(
        matches!(&err, EvidenceError::Backend(m) if m.contains("jsonhttp `tracing`") && m.contains("not JSON")),
        "{err:?}"
    );
    let missing = jsonhttp("/api/nope", Some("tracing"), "$.x", Duration::from_secs(5));
    let err = p.fetch(&missing, &ctx(&[])).await.unwrap_err();
    assert!(
        matches!(&err, EvidenceError::Backend(m) if m.contains("HTTP 404")),
        "{err:?}"
    );
    let err = p
        .fetch(
            &jsonhttp("/x", Some("apm"), "$", Duration::from_secs(5)),
            &ctx(&[]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        EvidenceError::NoBackend {
            kind: "jsonhttp",
            backend: "apm".into()
        }
    );
}

#[tokio::test]
async fn jsonhttp_with_an_absolute_url_and_timeouts() {
    let server = serve(|_| Reply::json(200, r#"{"status": {"indicator": "major"}}"#)).await;
    let p = live("{}");
    let signal = jsonhttp(
        "{{ $labels.status_page }}/api/v2/status.json",
        None,
        "$.status.indicator",
        Duration::from_secs(5),
    );
    let v = p
        .fetch(&signal, &ctx(&[("status_page", &server.url("/sp"))]))
        .await
        .unwrap();
    assert_eq!(v, json!("major"));
    assert_eq!(server.requests()[0].path, "/sp/api/v2/status.json");

    // The signal's timeout applies; so does the backend's, whichever is shorter.
    let quiet = silent().await;
    let started = Instant::now();
    let slow = jsonhttp(&quiet.url("/x"), None, "$", Duration::from_millis(200));
    assert_eq!(
        p.fetch(&slow, &ctx(&[])).await.unwrap_err(),
        EvidenceError::Timeout(Duration::from_millis(200))
    );
    let p = live(&format!(
        "jsonhttp:\n  slow: {{url: '{}', timeout: 250ms}}\n",
        quiet.url("")
    ));
    let slow = jsonhttp("/x", Some("slow"), "$", Duration::from_secs(5));
    assert_eq!(
        p.fetch(&slow, &ctx(&[])).await.unwrap_err(),
        EvidenceError::Timeout(Duration::from_millis(250))
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing listening: a backend error.
    let down = jsonhttp(
        &format!("http://127.0.0.1:{}/x", closed_port()),
        None,
        "$",
        Duration::from_secs(2),
    );
    assert!(matches!(
        p.fetch(&down, &ctx(&[])).await.unwrap_err(),
        EvidenceError::Backend(_)
    ));
}
