//! `prometheus` evidence against a real Prometheus (Debian's package, started per test on a free
//! 127.0.0.1 port, scraping itself every second, with recording rules): result shapes, time
//! alignment to the alert, errors, and label escaping that a hostile value cannot break.

#[path = "support/evidence.rs"]
mod evidence;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use chrono::Utc;
use evidence::{closed_port, ctx, ctx_at, live, prometheus as signal, silent};
use rootfix::engine::{EvidenceError, EvidenceProvider};
use rootfix::evidence::LiveEvidence;
use rootfix::model::playbook::{Signal, SignalKind};
use rootfix::model::template::Template;
use serde_json::{Value, json};
use support::prometheus::{HOSTILE, Prometheus};

fn provider(prom: &Prometheus) -> LiveEvidence {
    live(&format!(
        "prometheus:\n  default: {{url: '{}', timeout: 5s}}\n",
        prom.url
    ))
}

async fn value(p: &LiveEvidence, query: &str) -> Value {
    p.fetch(&signal(query, "default"), &ctx(&[]))
        .await
        .unwrap_or_else(|e| panic!("`{query}` failed: {e}"))
}

#[tokio::test]
async fn result_shapes_number_array_and_null() {
    let prom = Prometheus::start().await;
    let p = provider(&prom);

    // One series → its number.
    assert_eq!(value(&p, "up{job=\"prometheus\"}").await, json!(1.0));
    assert_eq!(value(&p, "rootfix_test_answer").await, json!(42.0));
    // A scalar expression → a number.
    assert_eq!(value(&p, "scalar(rootfix_test_answer) / 4").await, json!(10.5));
    // Several series → an array with labels and values.
    let shards = value(&p, "rootfix_test_shard").await;
    let shards = shards.as_array().expect("an array");
    assert_eq!(shards.len(), 2, "{shards:?}");
    let by_shard: Vec<(String, f64)> = shards
        .iter()
        .map(|s| {
            (
                s["metric"]["shard"].as_str().unwrap().to_string(),
                s["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_shard, vec![("a".to_string(), 1.0), ("b".to_string(), 2.0)]);
    assert_eq!(shards[0]["metric"]["__name__"], "rootfix_test_shard");
    // No series → null, not zero.
    assert_eq!(value(&p, "up{job=\"no-such-job\"}").await, Value::Null);
    // NaN → null.
    assert_eq!(value(&p, "rootfix_test_answer * (0/0)").await, Value::Null);
}

#[tokio::test]
async fn queries_are_evaluated_at_the_alert_start() {
    let prom = Prometheus::start().await;
    let p = provider(&prom);
    // `time()` is the evaluation time: the sample nearest the alert is evaluated at the alert.
    let at = Utc::now() - chrono::Duration::milliseconds(7_250);
    for window in [Duration::from_secs(3), Duration::ZERO, Duration::from_millis(500)] {
        let got = p
            .fetch(&signal("time()", "default"), &ctx_at(&[], at, window))
            .await
            .unwrap();
        let expected = at.timestamp_millis() as f64 / 1000.0;
        assert!(
            (got.as_f64().unwrap() - expected).abs() < 1e-6,
            "window {window:?}: evaluated at {got}, alert at {expected}"
        );
    }
    // Before Prometheus had any data (an hour ago, beyond the 5 min lookback): no data.
    let before = Utc::now() - chrono::Duration::hours(1);
    let got = p
        .fetch(
            &signal("up{job=\"prometheus\"}", "default"),
            &ctx_at(&[], before, Duration::from_secs(3)),
        )
        .await
        .unwrap();
    assert_eq!(got, Value::Null);
    // Now: the series is there.
    let got = p
        .fetch(&signal("up{job=\"prometheus\"}", "default"), &ctx(&[]))
        .await
        .unwrap();
    assert_eq!(got, json!(1.0));
}

#[tokio::test]
async fn prometheus_errors_are_backend_errors_with_its_message() {
    let prom = Prometheus::start().await;
    let p = provider(&prom);
    // A parse error (bad_data).
    let err = p
        .fetch(&signal("sum(rate(up[5m])", "default"), &ctx(&[]))
        .await
        .unwrap_err();
    let EvidenceError::Backend(message) = &err else {
        panic!("not a backend error: {err:?}")
    };
    assert!(message.contains("prometheus `default`"), "{message}");
    assert!(message.contains("bad_data"), "{message}");
    assert!(message.contains("parse error"), "{message}");
    // An execution error from a query that parses: many-to-many matching.
    let err = p
        .fetch(
            &signal("rootfix_test_shard + on() rootfix_test_shard", "default"),
            &ctx(&[]),
        )
        .await
        .unwrap_err();
    let EvidenceError::Backend(message) = &err else {
        panic!("not a backend error: {err:?}")
    };
    assert!(message.contains("execution"), "{message}");
    assert!(message.contains("many-to-many"), "{message}");
}

#[tokio::test]
async fn unknown_unreachable_and_slow_backends() {
    let quiet = silent().await;
    let p = live(&format!(
        "prometheus:\n  down: {{url: 'http://127.0.0.1:{}'}}\n  slow: {{url: '{}', timeout: 300ms}}\n",
        closed_port(),
        quiet.url("")
    ));
    // A source nobody configured.
    let err = p.fetch(&signal("up", "default"), &ctx(&[])).await.unwrap_err();
    assert_eq!(
        err,
        EvidenceError::NoBackend {
            kind: "prometheus",
            backend: "default".into()
        }
    );
    // Nothing listens: a backend error naming the backend, at once.
    let started = Instant::now();
    let err = p.fetch(&signal("up", "down"), &ctx(&[])).await.unwrap_err();
    let EvidenceError::Backend(message) = &err else {
        panic!("not a backend error: {err:?}")
    };
    assert!(message.contains("prometheus `down`"), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Accepts but never answers: the backend's timeout.
    let started = Instant::now();
    let err = p.fetch(&signal("up", "slow"), &ctx(&[])).await.unwrap_err();
    assert_eq!(err, EvidenceError::Timeout(Duration::from_millis(300)));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_hostile_label_value_cannot_change_the_query() {
    let prom = Prometheus::start().await;
    let p = provider(&prom);
    let injection = "x\"} or vector(1) #";

    // Unescaped, the value would close the selector and add `or vector(1)`: the answer is 1.
    let naive = Template::parse(
        "up{job=\"{{ $labels.job }}\"}",
        &[rootfix::model::template::Variable::Label],
    )
    .unwrap()
    .render(
        &[("job".to_string(), injection.to_string())].into(),
        &Default::default(),
        rootfix::model::template::no_escape,
    )
    .unwrap();
    let naive_signal = Signal {
        name: "naive".into(),
        description: None,
        definition_hash: String::new(),
        kind: SignalKind::Prometheus {
            query: Template::literal(&naive),
            source: "default".into(),
        },
    };
    assert_eq!(p.fetch(&naive_signal, &ctx(&[])).await.unwrap(), json!(1.0));

    // Through the provider, the value stays inside its string: no job has that name.
    let got = p
        .fetch(
            &signal("up{job=\"{{ $labels.job }}\"}", "default"),
            &ctx(&[("job", injection)]),
        )
        .await
        .unwrap();
    assert_eq!(got, Value::Null);

    // And it is matched as data, byte for byte: the series labelled with the hostile value
    // (backslash, quote, brace, comment) is found.
    let got = p
        .fetch(
            &signal(
                "rootfix_test_hostile{service=\"{{ $labels.service }}\"}",
                "default",
            ),
            &ctx(&[("service", HOSTILE)]),
        )
        .await
        .unwrap();
    assert_eq!(got, json!(7.0));
}
