//! End to end with the real parts: a real Prometheus evaluates a rule that fires; the real
//! Alertmanager sends the webhook with a bearer token to a real `rootfix serve`; rootfix opens an
//! incident and walks a playbook whose conditions query that same Prometheus; the diagnosis shows
//! the expected path with the real values. Then the rule stops firing, Alertmanager sends
//! `resolved`, and the incident closes.

#[path = "support/process.rs"]
mod process;
#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use process::{Serve, write_config};
use serde_json::{Value, json};
use support::*;

fn rules(firing: bool) -> String {
    let threshold = if firing { "0.9" } else { "2" };
    format!(
        r#"groups:
  - name: checkout
    interval: 1s
    rules:
      - record: e2e_heap_used_ratio
        expr: label_replace(vector(0.97), "service", "checkout", "", "")
      - record: e2e_gc_pause_ratio
        expr: label_replace(vector(0.31), "service", "checkout", "", "")
      - record: e2e_queue_depth
        expr: label_replace(vector(12), "service", "checkout", "", "")
      - alert: CheckoutHeapPressure
        expr: e2e_heap_used_ratio > {threshold}
        for: 0s
        labels: {{severity: critical, env: staging, namespace: shop, deployment: checkout-api}}
        annotations: {{summary: "checkout heap above 90 %"}}
"#
    )
}

async fn incident(rootfix: &str) -> Option<Value> {
    let client = reqwest::Client::new();
    let list: Value = client
        .get(format!("{rootfix}/api/v1/incidents?playbook=checkout-heap"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let id = list["items"][0]["id"].as_str()?.to_string();
    client
        .get(format!("{rootfix}/api/v1/incidents/{id}"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alert_becomes_a_diagnosed_incident_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let (rootfix_port, prom_port) = (free_port(), free_port());
    let prom_url = format!("http://127.0.0.1:{prom_port}");

    let config = write_config(
        dir.path(),
        rootfix_port,
        &redis_url(),
        &unique_prefix("e2e"),
        &repo_path("tests/fixtures/e2e/playbooks"),
        &repo_path("actions"),
        &format!("evidence:\n  prometheus:\n    default: {{url: '{prom_url}'}}\n"),
    );
    let serve = {
        let (config, log) = (config.clone(), dir.path().join("rootfix.log"));
        tokio::task::spawn_blocking(move || Serve::start(&config, rootfix_port, &log))
            .await
            .unwrap()
    };

    let alerting = AlertingPipeline::start(dir.path(), &serve.url, &rules(true), prom_port).await;

    // The alert fires, Alertmanager posts it, rootfix walks the playbook against Prometheus.
    let rootfix = serve.url.clone();
    let inc = eventually(Duration::from_secs(90), "the diagnosed incident", || async {
        incident(&rootfix).await.filter(|i| i["state"] == "open")
    })
    .await;
    assert_eq!(inc["alertname"], "CheckoutHeapPressure");
    assert_eq!(inc["service"], "checkout");
    assert_eq!(inc["alert"]["labels"]["deployment"], "checkout-api");
    let d = &inc["diagnosis"];
    let outcomes: Vec<(String, String)> = d["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_string(),
                n["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("checkout_heap_pressure".to_string(), "hit".to_string()),
            ("heap_exhausted".to_string(), "hit".to_string()),
            ("queue_backlog".to_string(), "miss".to_string()),
        ],
        "{d:#}"
    );
    // The real values Prometheus answered, at the alert's startsAt.
    let value = |name: &str| d["evidence"][name]["value"].as_f64();
    assert_eq!(value("heap_used_ratio"), Some(0.97));
    assert_eq!(value("queue_depth"), Some(12.0));
    assert_eq!(value("gc_pause_ratio"), Some(0.31));
    assert_eq!(d["nodes"][1]["reads"]["heap_used_ratio"].as_f64(), Some(0.97));
    let remedy = &d["remedies"][0];
    assert_eq!(remedy["action"], "restart-jvm-pod");
    assert_eq!(
        remedy["params"],
        json!({"namespace": "shop", "deployment": "checkout-api"})
    );
    assert_eq!(remedy["decision"]["kind"], "act");
    assert!((remedy["score"].as_f64().unwrap() - 0.9).abs() < 1e-9);

    // The rule stops firing; Alertmanager sends `resolved`; the incident closes.
    alerting.set_rules(&rules(false)).await;
    let closed = eventually(Duration::from_secs(90), "the resolution", || async {
        incident(&rootfix).await.filter(|i| i["state"] == "resolved")
    })
    .await;
    assert_eq!(closed["id"], inc["id"]);
    assert!(closed["resolved_at"].is_string());
    let kinds: Vec<&str> = closed["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"opened"));
    assert_eq!(kinds.last(), Some(&"resolved"));
}
