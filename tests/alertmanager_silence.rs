//! `rootfix::silence` against the real Alertmanager (Debian's `prometheus-alertmanager`): a
//! silence created for an alert's labels is listed active with exactly the expected matchers,
//! author, comment and end; Alertmanager then reports that alert suppressed by it, and neither an
//! alert with another value nor one a regex `a.*` would match; expiring it expires it and the alert
//! is active again. A closed port is a quick `Unreachable`.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rootfix::silence::{SilenceClient, SilenceConfig, SilenceError, SilenceState, parse_base_url};
use serde_json::{Value, json};
use support::alertmanager::Alertmanager;
use support::{eventually, free_port};

const COOLDOWN: Duration = Duration::from_secs(30 * 60);

fn client(url: &str, match_labels: &[&str]) -> SilenceClient {
    SilenceClient::from_config(&SilenceConfig {
        alertmanager_url: parse_base_url(url).expect("a good URL"),
        cooldown: COOLDOWN,
        matchers_from: match_labels.iter().map(|s| s.to_string()).collect(),
        timeout: Duration::from_secs(5),
    })
    .expect("client builds")
}

fn labels(service: &str) -> BTreeMap<String, String> {
    [
        ("alertname", "RootfixSilenceTest"),
        ("service", service),
        ("instance", "host-1:9100"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
}

fn close(a: DateTime<Utc>, b: DateTime<Utc>, what: &str) {
    let off = (a - b).num_milliseconds().abs();
    assert!(off <= 2000, "{what}: {a} is {off} ms from {b}");
}

/// The silence with `id` in Alertmanager's own list (`GET /api/v2/silences`).
async fn listed(am: &Alertmanager, id: &str) -> Value {
    let all: Value = reqwest::get(am.api("silences"))
        .await
        .expect("list silences")
        .json()
        .await
        .expect("JSON");
    all.as_array()
        .expect("an array")
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("silence {id} is not listed: {all}"))
}

/// The alerts Alertmanager holds, by their `service` label.
async fn alerts_by_service(am: &Alertmanager) -> BTreeMap<String, Value> {
    let all: Value = reqwest::get(am.api("alerts"))
        .await
        .expect("list alerts")
        .json()
        .await
        .expect("JSON");
    all.as_array()
        .expect("an array")
        .iter()
        .filter(|a| a["labels"]["alertname"] == "RootfixSilenceTest")
        .map(|a| {
            (
                a["labels"]["service"].as_str().unwrap_or("").to_string(),
                a.clone(),
            )
        })
        .collect()
}

fn silenced_by(alert: &Value) -> Vec<String> {
    alert["status"]["silencedBy"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|i| i.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_suppresses_exactly_the_alert_it_was_made_for() {
    let am = Alertmanager::start().await;
    let silences = client(&am.url, &[]);
    let now = Utc::now();

    // A value with regex metacharacters: the silence must match it only literally.
    let id = silences
        .create(
            &labels("a.*"),
            "rootfix",
            "rootfix fixed incident inc-1; cooldown",
            now,
        )
        .await
        .unwrap_or_else(|e| panic!("create: {e}\n{}", am.log()));
    assert!(!id.is_empty());

    let s = listed(&am, &id).await;
    assert_eq!(s["status"]["state"], "active", "{s}");
    let mut matchers = s["matchers"].as_array().expect("matchers").clone();
    matchers.sort_by_key(|m| m["name"].as_str().unwrap_or("").to_string());
    assert_eq!(
        Value::Array(matchers),
        json!([
            {"name": "alertname", "value": "RootfixSilenceTest", "isRegex": false, "isEqual": true},
            {"name": "instance", "value": "host-1:9100", "isRegex": false, "isEqual": true},
            {"name": "service", "value": "a.*", "isRegex": false, "isEqual": true},
        ])
    );
    assert_eq!(s["createdBy"], "rootfix");
    assert_eq!(s["comment"], "rootfix fixed incident inc-1; cooldown");
    close(time(&s["startsAt"]), now, "startsAt");
    close(
        time(&s["endsAt"]),
        now + chrono::Duration::from_std(COOLDOWN).expect("small"),
        "endsAt",
    );

    // The client's own reading agrees.
    let got = silences.get(&id).await.expect("get");
    assert_eq!(got.id, id);
    assert_eq!(got.state, SilenceState::Active);
    assert_eq!(got.matchers.len(), 3);
    assert!(got.matchers.iter().all(|m| !m.is_regex && m.is_equal));
    assert_eq!(got.created_by, "rootfix");
    assert_eq!(time(&s["endsAt"]), got.ends_at);

    // The silenced alert, one with another value, and one a regex `a.*` would match.
    let posted: Vec<Value> = ["a.*", "b", "aaa"]
        .iter()
        .map(|service| json!({"labels": labels(service), "annotations": {"summary": "test"}}))
        .collect();
    let response = reqwest::Client::new()
        .post(am.api("alerts"))
        .json(&posted)
        .send()
        .await
        .expect("post alerts");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    let alerts = eventually(Duration::from_secs(15), "the alerts to be processed", || async {
        let alerts = alerts_by_service(&am).await;
        (alerts.len() == 3 && alerts.values().all(|a| a["status"]["state"] != "unprocessed"))
            .then_some(alerts)
    })
    .await;
    let silenced = &alerts["a.*"];
    assert_eq!(silenced["status"]["state"], "suppressed", "{silenced}");
    assert_eq!(silenced_by(silenced), std::slice::from_ref(&id));
    for other in ["b", "aaa"] {
        let alert = &alerts[other];
        assert_eq!(alert["status"]["state"], "active", "service={other}: {alert}");
        assert!(silenced_by(alert).is_empty(), "service={other}: {alert}");
    }

    // Expired: listed as such, and the alert is active again.
    silences.expire(&id).await.expect("expire");
    assert_eq!(listed(&am, &id).await["status"]["state"], "expired");
    assert_eq!(silences.get(&id).await.expect("get").state, SilenceState::Expired);
    eventually(
        Duration::from_secs(15),
        "the alert to be active again",
        || async {
            let alert = alerts_by_service(&am).await.remove("a.*")?;
            (alert["status"]["state"] == "active" && silenced_by(&alert).is_empty()).then_some(())
        },
    )
    .await;

    // Expiring again is fine; an unknown id is not found, and cannot be expired.
    silences.expire(&id).await.expect("expire again");
    assert_eq!(silences.get(&id).await.expect("get").state, SilenceState::Expired);
    let unknown_id = "00000000-0000-4000-8000-000000000000";
    let unknown = silences.get(unknown_id).await.expect_err("no such silence");
    assert!(unknown.is_not_found(), "{unknown}");
    let unknown = silences.expire(unknown_id).await.expect_err("no such silence");
    assert!(matches!(unknown, SilenceError::Rejected { .. }), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_labels_only_and_a_missing_one_matches_its_absence() {
    let am = Alertmanager::start().await;
    let silences = client(&am.url, &["alertname", "service", "pod"]);
    let now = Utc::now();
    let id = silences
        .create(&labels("checkout"), "rootfix", "cooldown", now)
        .await
        .unwrap_or_else(|e| panic!("create: {e}\n{}", am.log()));
    let got = silences.get(&id).await.expect("get");
    assert_eq!(got.state, SilenceState::Active);
    let mut matchers: Vec<(String, String)> = got
        .matchers
        .iter()
        .map(|m| {
            assert!(!m.is_regex && m.is_equal, "{m:?}");
            (m.name.clone(), m.value.clone())
        })
        .collect();
    matchers.sort();
    assert_eq!(
        matchers,
        [
            ("alertname".to_string(), "RootfixSilenceTest".to_string()),
            ("pod".to_string(), String::new()),
            ("service".to_string(), "checkout".to_string()),
        ]
    );

    // With a pod label the alert is not the one silenced; without, it is (instance is ignored).
    let mut with_pod = labels("checkout");
    with_pod.insert("pod".into(), "p-1".into());
    let mut other_instance = labels("checkout");
    other_instance.insert("instance".into(), "host-2:9100".into());
    let posted = json!([{"labels": with_pod}, {"labels": other_instance}]);
    reqwest::Client::new()
        .post(am.api("alerts"))
        .json(&posted)
        .send()
        .await
        .expect("post alerts")
        .error_for_status()
        .expect("200");
    let alerts = eventually(Duration::from_secs(15), "the alerts to be processed", || async {
        let all: Value = reqwest::get(am.api("alerts")).await.ok()?.json().await.ok()?;
        let all = all.as_array()?.clone();
        (all.len() == 2 && all.iter().all(|a| a["status"]["state"] != "unprocessed")).then_some(all)
    })
    .await;
    for alert in alerts {
        let expected = if alert["labels"]["pod"].is_null() {
            "suppressed"
        } else {
            "active"
        };
        assert_eq!(alert["status"]["state"], expected, "{alert}");
    }
}

#[tokio::test]
async fn an_unreachable_alertmanager_is_an_error_at_once() {
    let closed = free_port();
    let silences = client(&format!("http://127.0.0.1:{closed}"), &[]);
    let started = Instant::now();
    let result = silences
        .create(&labels("x"), "rootfix", "cooldown", Utc::now())
        .await;
    assert!(
        matches!(result, Err(SilenceError::Unreachable { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}
