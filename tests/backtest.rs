//! Backtesting against the real parts. A real Prometheus evaluates five services' metrics and
//! fires one alert per service; the real Alertmanager posts them to a real `rootfix serve`,
//! which walks `tests/fixtures/backtest/recorded.yaml` against that Prometheus; an admin
//! approves three fixes, which run on the real Docker engine, and confirms one correct and one
//! a misfix; the alerts resolve. The corpus is exported with `rootfix incidents export`, then
//! the real `rootfix backtest` replays it under changed playbooks:
//! - `candidate.yaml` (threshold raised, a signal re-weighted, a new branch): the exact diff,
//!   with one misfix avoided and one correct fix lost; the same through `--server`;
//! - the recorded playbook itself: nothing changes, and its hash is the record's;
//! - `new-signal.yaml`, which reads `cpu`, a signal no record holds: missing without
//!   `--fetch-missing`; with it, Prometheus answers at each record's evidence time — service d's
//!   cpu was 0.9 then and is 0.1 now, so only a query at the past instant starts its fix;
//! - the incident page, once serve has reloaded the candidate, shows the replay under it.

#[path = "support/docker.rs"]
mod docker;
#[path = "support/process.rs"]
mod process;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use process::{Serve, write_config};
use serde_json::{Value, json};
use support::*;

/// Per service: heap, gc, errors, cpu (at recording time).
const SERVICES: [(&str, [f64; 4]); 5] = [
    ("a", [0.97, 0.31, 0.01, 0.2]),
    ("b", [0.95, 0.05, 0.01, 0.2]),
    ("c", [0.93, 0.05, 0.06, 0.2]),
    ("d", [0.50, 0.05, 0.20, 0.9]),
    ("e", [0.50, 0.05, 0.01, 0.2]),
];

/// The recording rules (d's cpu as given) and, while `firing`, one alert per service.
fn rules(firing: bool, cpu_of_d: f64) -> String {
    let mut out = String::from("groups:\n  - name: backtest\n    interval: 1s\n    rules:\n");
    for (i, metric) in ["bt_heap", "bt_gc", "bt_errors", "bt_cpu"].iter().enumerate() {
        let series: Vec<String> = SERVICES
            .iter()
            .map(|(service, values)| {
                let value = if *metric == "bt_cpu" && *service == "d" {
                    cpu_of_d
                } else {
                    values[i]
                };
                format!("label_replace(vector({value}), \"service\", \"{service}\", \"\", \"\")")
            })
            .collect();
        out.push_str(&format!(
            "      - record: {metric}\n        expr: '{}'\n",
            series.join(" or ")
        ));
    }
    if firing {
        out.push_str(
            "      - alert: BacktestLatency\n        expr: bt_heap > 0\n        for: 0s\n        labels: {env: staging, severity: warning}\n",
        );
    }
    out
}

async fn api(method: reqwest::Method, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("rootfix answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The incidents of the test's playbook, by service.
async fn incidents(rootfix: &str) -> BTreeMap<String, Value> {
    let (status, list) = api(
        reqwest::Method::GET,
        &format!("{rootfix}/api/v1/incidents?playbook=bt-latency&limit=50"),
        VIEWER_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let mut out = BTreeMap::new();
    for item in list["items"].as_array().into_iter().flatten() {
        let id = item["id"].as_str().expect("id");
        let (_, incident) = api(
            reqwest::Method::GET,
            &format!("{rootfix}/api/v1/incidents/{id}"),
            VIEWER_TOKEN,
            None,
        )
        .await;
        out.insert(item["service"].as_str().unwrap_or("-").to_string(), incident);
    }
    out
}

async fn wait_states(rootfix: &str, what: &str, want: &[(&str, &str)]) -> BTreeMap<String, Value> {
    eventually(Duration::from_secs(120), what, || async {
        let all = incidents(rootfix).await;
        want.iter()
            .all(|(service, state)| all.get(*service).is_some_and(|i| i["state"] == *state))
            .then_some(all)
    })
    .await
}

fn field<'a>(v: &'a Value, service: &str) -> &'a Value {
    v["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .find(|i| i["service"] == service)
        .unwrap_or_else(|| panic!("no replay of service {service} in {v:#}"))
}

/// `rootfix backtest --playbooks PLAYBOOK --actions ACTIONS ARGS...`.
async fn backtest(actions: &str, playbook: &str, args: &[&str], env: &[(&str, &str)]) -> CliRun {
    let mut all = vec!["backtest", "--playbooks", playbook, "--actions", actions];
    all.extend_from_slice(args);
    run_rootfix(&all, env).await
}

fn fixture(name: &str) -> String {
    repo_path(&format!("tests/fixtures/backtest/{name}"))
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_corpus_backtests_a_playbook_change_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    for d in ["control", "playbooks", "actions/bt-fix", "fixes"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    std::fs::write(control.join("target"), "broken\n").unwrap();
    std::fs::copy(
        fixture("recorded.yaml"),
        dir.path().join("playbooks/bt-latency.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("actions/bt-fix/action.yaml"),
        docker::test_action_yaml("bt-fix", docker::test_image(), &control, ""),
    )
    .unwrap();

    let (rootfix_port, prom_port) = (free_port(), free_port());
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    let config = write_config(
        dir.path(),
        rootfix_port,
        &redis_url(),
        &unique_prefix("backtest"),
        &dir.path().join("playbooks"),
        &dir.path().join("actions"),
        &format!(
            "evidence:\n  prometheus:\n    default: {{url: '{prom_url}'}}\nfixes: {{state_dir: '{}'}}\nautonomy:\n  scopes:\n    - {{name: staging, match: ['env=\"staging\"'], max_stage: auto, fixes_per_hour: 100, concurrency: 1}}\n",
            dir.path().join("fixes").display()
        ),
    );
    let serve = {
        let (config, log) = (config.clone(), dir.path().join("rootfix.log"));
        tokio::task::spawn_blocking(move || Serve::start(&config, rootfix_port, &log))
            .await
            .unwrap()
    };
    let url = serve.url.clone();

    let alerting = AlertingPipeline::start(dir.path(), &url, &rules(true, 0.9), prom_port).await;

    // ── Recording: five diagnoses; a, b and c reach the heap remedy and wait for approval ──
    let all = wait_states(
        &url,
        "five diagnosed incidents",
        &[
            ("a", "awaiting-approval"),
            ("b", "awaiting-approval"),
            ("c", "awaiting-approval"),
            ("d", "open"),
            ("e", "open"),
        ],
    )
    .await;
    let scores: BTreeMap<&str, f64> = ["a", "b", "c"]
        .iter()
        .map(|s| (*s, all[*s]["diagnosis"]["remedies"][0]["score"].as_f64().unwrap()))
        .collect();
    assert_eq!(scores["a"], 1.0, "{:#}", all["a"]["diagnosis"]);
    assert!((scores["b"] - 0.6).abs() < 1e-9, "{:#}", all["b"]["diagnosis"]);
    assert!((scores["c"] - 0.8).abs() < 1e-9, "{:#}", all["c"]["diagnosis"]);
    let hash = all["a"]["diagnosis"]["playbook_hash"]
        .as_str()
        .expect("the record keeps the hash")
        .to_string();
    assert!(hash.starts_with("sha256:") && hash.len() == 23, "{hash}");
    assert_eq!(all["d"]["diagnosis"]["evidence"]["errors"]["value"], 0.2);

    for service in ["a", "b", "c"] {
        std::fs::write(control.join("target"), "broken\n").unwrap();
        let approval = all[service]["fix"]["approval"]
            .as_str()
            .expect("an approval")
            .to_string();
        let (status, body) = api(
            reqwest::Method::POST,
            &format!("{url}/api/v1/approvals/{approval}/approve"),
            ADMIN_TOKEN,
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        wait_states(&url, &format!("{service}'s fix verified"), &[(service, "fixed")]).await;
    }
    for (service, verdict) in [
        (
            "a",
            json!({"verdict": "correct", "comment": "heap leak, restart helped"}),
        ),
        (
            "b",
            json!({"verdict": "misfix", "severity": "P2", "comment": "it was a noisy neighbour"}),
        ),
    ] {
        let id = all[service]["id"].as_str().unwrap();
        let (status, body) = api(
            reqwest::Method::POST,
            &format!("{url}/api/v1/incidents/{id}/confirm"),
            ADMIN_TOKEN,
            Some(verdict),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    // The alerts stop firing, and d's cpu drops: what Prometheus answers now is not what it
    // answered when the incidents were diagnosed.
    alerting.set_rules(&rules(false, 0.1)).await;
    wait_states(
        &url,
        "every incident resolved",
        &[
            ("a", "resolved"),
            ("b", "resolved"),
            ("c", "resolved"),
            ("d", "resolved"),
            ("e", "resolved"),
        ],
    )
    .await;
    eventually(Duration::from_secs(30), "d's cpu at 0.1 now", || async {
        let body: Value = reqwest::get(format!("{prom_url}/api/v1/query?query=bt_cpu{{service=\"d\"}}"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (body["data"]["result"][0]["value"][1] == "0.1").then_some(())
    })
    .await;

    // ── The corpus, through the documented command ──
    let viewer = [("ROOTFIX_URL", url.as_str()), ("ROOTFIX_TOKEN", VIEWER_TOKEN)];
    let export = run_rootfix(&["incidents", "export", "--since", "1h"], &viewer).await;
    assert_eq!(export.code, 0, "{export}");
    assert_eq!(export.out.lines().count(), 5, "{export}");
    let corpus = dir.path().join("corpus.jsonl");
    std::fs::write(&corpus, &export.out).unwrap();
    let corpus = corpus.display().to_string();
    let actions = dir.path().join("actions").display().to_string();

    // ── The change: threshold raised, a signal re-weighted, a new branch ──
    let candidate = fixture("candidate.yaml");
    let run = backtest(&actions, &candidate, &["--corpus", &corpus, "--json"], &[]).await;
    assert_eq!(run.code, 1, "decisions changed: exit 1\n{run}");
    let report: Value = serde_json::from_str(&run.out).expect("--json prints JSON");
    assert_eq!(
        report["summary"],
        json!({
            "replayed": 5, "unchanged": 2, "paths_changed": 0, "decisions_changed": 3,
            "new_fixes": 1, "fixes_lost": 2, "other_fixes": 0,
            "misfixes_avoided": 1, "misfixes_repeated": 0, "correct_fixes_lost": 1,
            "recurrences_repeated": 0, "missing_signals": {}, "fetched": 0, "playbook_changed": 5,
        }),
        "{run}"
    );
    let expect = [
        ("a", "unchanged", Some("correct"), Value::Null),
        ("b", "fix-lost", Some("misfix"), json!("misfix-avoided")),
        ("c", "fix-lost", Some("held"), json!("correct-fix-lost")),
        ("d", "new-fix", None, Value::Null),
        ("e", "unchanged", None, Value::Null),
    ];
    for (service, change, known, effect) in expect {
        let r = field(&report, service);
        assert_eq!(r["change"], change, "{service}: {r:#}");
        assert_eq!(r["known"].as_str(), known, "{service}: {r:#}");
        assert_eq!(r["effect"], effect, "{service}: {r:#}");
        assert_eq!(r["recorded_hash"], hash.as_str(), "{service}");
        assert_ne!(r["candidate_hash"], hash.as_str(), "{service}");
    }
    let b = field(&report, "b");
    assert_eq!(b["old"]["path"], json!(["bt_root", "bt_heap"]));
    assert_eq!(b["new"]["path"], json!(["bt_root", "bt_heap"]));
    assert_eq!(b["old"]["fix"]["params"], json!({"target": "b"}));
    assert_eq!(b["new"]["fix"], Value::Null);
    assert_eq!(
        b["crossed"],
        json!([{"node": "bt_heap", "action": "bt-fix",
                "old": {"score": 0.6, "threshold": 0.6, "decision": "act"},
                "new": {"score": 0.6, "threshold": 0.75, "decision": "notify-only"}}])
    );
    let c = field(&report, "c");
    assert!(
        (c["crossed"][0]["old"]["score"].as_f64().unwrap() - 0.8).abs() < 1e-9,
        "{c:#}"
    );
    assert!(
        (c["crossed"][0]["new"]["score"].as_f64().unwrap() - 0.7).abs() < 1e-9,
        "{c:#}"
    );
    let d = field(&report, "d");
    assert_eq!(d["old"]["path"], json!(["bt_root", "bt_errors"]));
    assert_eq!(
        d["new"]["path"],
        json!(["bt_root", "bt_errors", "bt_error_burst"])
    );
    assert_eq!(d["new"]["fix"]["node"], "bt_error_burst");
    assert_eq!(d["crossed"][0]["old"], Value::Null);
    assert_eq!(d["crossed"][0]["new"]["decision"], "act");

    // The text report names the same, and --allow-changes exits 0.
    let text = backtest(
        &actions,
        &candidate,
        &["--corpus", &corpus, "--allow-changes"],
        &[],
    )
    .await;
    assert_eq!(text.code, 0, "{text}");
    for line in [
        "(the fix would no longer start)",
        "(a new fix would start)",
        "  crossed   bt_heap (bt-fix): 0.60/0.60 act → 0.60/0.75 notify-only",
        "  known     the fix that ran: confirmed misfix: misfix avoided",
        "  known     the fix that ran: verified and resolved: correct fix lost",
        "    misfixes avoided                     1\n",
        "    correct fixes lost                   1\n",
        "    new fixes that would have started    1\n",
    ] {
        assert!(text.out.contains(line), "{line:?} missing:\n{}", text.out);
    }
    assert_eq!(
        text.out.matches("evidence at").count(),
        3,
        "only the changed incidents:\n{}",
        text.out
    );

    // The same corpus straight from the server.
    let run = backtest(
        &actions,
        &candidate,
        &["--server", &url, "--since", "1h", "--json"],
        &[("ROOTFIX_TOKEN", VIEWER_TOKEN)],
    )
    .await;
    assert_eq!(run.code, 1, "{run}");
    let from_server: Value = serde_json::from_str(&run.out).expect("JSON");
    assert_eq!(from_server["summary"], report["summary"]);

    // The recorded playbook itself: nothing changes, and it is the version the records name.
    let same = backtest(
        &actions,
        &fixture("recorded.yaml"),
        &["--corpus", &corpus, "--json"],
        &[],
    )
    .await;
    assert_eq!(same.code, 0, "{same}");
    let same: Value = serde_json::from_str(&same.out).unwrap();
    assert_eq!(same["summary"]["unchanged"], 5, "{same:#}");
    assert_eq!(same["summary"]["playbook_changed"], 0, "{same:#}");

    // ── A new signal: missing from every record; fetched from Prometheus at the past instant ──
    let new_signal = fixture("new-signal.yaml");
    let run = backtest(&actions, &new_signal, &["--corpus", &corpus, "--json"], &[]).await;
    assert_eq!(run.code, 0, "nothing can change without the signal\n{run}");
    let missing: Value = serde_json::from_str(&run.out).unwrap();
    assert_eq!(
        missing["summary"]["missing_signals"],
        json!({"cpu": 5}),
        "{missing:#}"
    );
    assert_eq!(missing["summary"]["decisions_changed"], 0);
    assert_eq!(
        field(&missing, "d")["missing"],
        json!({"cpu": "not in the record"})
    );
    let run = backtest(
        &actions,
        &new_signal,
        &[
            "--corpus",
            &corpus,
            "--fetch-missing",
            "--prometheus",
            &prom_url,
            "--json",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, 1, "{run}");
    let fetched: Value = serde_json::from_str(&run.out).unwrap();
    let s = &fetched["summary"];
    assert_eq!(
        (
            s["fetched"].as_u64(),
            s["new_fixes"].as_u64(),
            s["decisions_changed"].as_u64()
        ),
        (Some(5), Some(1), Some(1)),
        "{fetched:#}"
    );
    assert_eq!(s["missing_signals"], json!({}));
    let d = field(&fetched, "d");
    assert_eq!(d["change"], "new-fix", "{d:#}");
    assert_eq!(d["new"]["fix"]["node"], "bt_cpu_hot");
    assert_eq!(d["fetched"], json!(["cpu"]));
    for service in ["a", "b", "c", "e"] {
        assert_eq!(field(&fetched, service)["change"], "unchanged", "{service}");
    }

    // ── The page: serve reloads the candidate; b's page shows the replay under it ──
    std::fs::copy(&candidate, dir.path().join("playbooks/bt-latency.yaml")).unwrap();
    let b_id = all["b"]["id"].as_str().unwrap().to_string();
    let page = eventually(Duration::from_secs(30), "b's page with the replay", || async {
        let text = ui_page(&url, &b_id).await;
        text.contains("Replayed under the playbooks in force now")
            .then_some(text)
    })
    .await;
    for needle in [
        "the fix would no longer start",
        "bt_heap (bt-fix): 0.60/0.60 act → 0.60/0.75 notify-only",
    ] {
        assert!(page.contains(needle), "{needle:?} missing from the page:\n{page}");
    }
    drop(serve);
    assert_no_leftovers(dir.path());
}

fn assert_no_leftovers(dir: &Path) {
    let left = std::fs::read_to_string(dir.join("control/execute.runs")).unwrap_or_default();
    assert_eq!(left.lines().count(), 3, "three fixes executed, once each");
}
