//! The diagnosis walk over fixture evidence with latencies: concurrency, memoized evidence,
//! pruning and its re-probe, evidence errors, confidence and the walk deadline.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use rootfix::engine::fixture::FixtureEvidence;
use rootfix::engine::{Decision, NodeOutcome, WalkOptions, Walker};
use rootfix::state::memory::MemoryStateStore;
use rootfix::state::{PruneStore, StateStore};
use serde_json::json;
use support::{fixture_alert, playbook};

fn walker(state: Arc<dyn StateStore>) -> Walker {
    Walker::new(state, WalkOptions::default())
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 16, 5, 0).unwrap()
}

fn siblings_playbook(n: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: rootfix/v1\nkind: Playbook\nmetadata: {name: siblings}\nspec:\n  match: ['alertname=\"OrderServiceTimeout\"']\n  evidence:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "    s{i}: {{prometheus: {{query: 'up{{job=\"s{i}\"}}'}}}}\n"
        ));
    }
    yaml.push_str("  tree:\n    id: root\n    children:\n");
    for i in 0..n {
        yaml.push_str(&format!("      - {{id: c{i}, when: 'evidence.s{i} > 0'}}\n"));
    }
    yaml
}

#[tokio::test]
async fn ten_siblings_of_200ms_each_walk_in_under_300ms() {
    let pb = playbook(&siblings_playbook(10));
    let mut fixture = FixtureEvidence::new();
    for i in 0..10 {
        fixture = fixture.with_signal(&format!("s{i}"), json!(1), Duration::from_millis(200));
    }
    let started = Instant::now();
    let d = walker(Arc::new(MemoryStateStore::new()))
        .walk(
            &pb,
            fixture_alert("order-service-timeout.firing"),
            Arc::new(fixture),
            now(),
        )
        .await;
    let elapsed = started.elapsed();
    assert_eq!(d.with_outcome(NodeOutcome::Hit).len(), 11);
    assert!(elapsed < Duration::from_millis(300), "walk took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(200),
        "walk took {elapsed:?}: latencies were not applied"
    );
}

const SHARED_SIGNAL: &str = r#"
apiVersion: rootfix/v1
kind: Playbook
metadata: {name: shared}
spec:
  match: ['alertname="OrderServiceTimeout"']
  evidence:
    heap: {prometheus: {query: 'max(jvm_heap)'}}
  tree:
    id: root
    when: evidence.heap > 0.5
    children:
      - {id: a, when: evidence.heap > 0.6}
      - {id: b, when: evidence.heap > 0.7}
      - id: c
        when: evidence.heap > 0.8
        children:
          - {id: d, when: evidence.heap > 0.9}
"#;

#[tokio::test]
async fn a_signal_read_by_five_nodes_is_fetched_once() {
    let pb = playbook(SHARED_SIGNAL);
    let fixture =
        Arc::new(FixtureEvidence::new().with_signal("heap", json!(0.97), Duration::from_millis(50)));
    let d = walker(Arc::new(MemoryStateStore::new()))
        .walk(
            &pb,
            fixture_alert("order-service-timeout.firing"),
            fixture.clone(),
            now(),
        )
        .await;
    assert_eq!(d.with_outcome(NodeOutcome::Hit), ["root", "a", "b", "c", "d"]);
    assert_eq!(fixture.fetch_counts().get("heap"), Some(&1));
    assert_eq!(d.node("d").unwrap().reads.get("heap"), Some(&json!(0.97)));
}

const PRUNABLE: &str = r#"
apiVersion: rootfix/v1
kind: Playbook
metadata: {name: prunable}
spec:
  match: ['alertname="OrderServiceTimeout"']
  prune: {after: 3, reprobe_every: 4, ttl: 1h}
  evidence:
    quiet: {prometheus: {query: 'sum(quiet)'}}
    loud: {prometheus: {query: 'sum(loud)'}}
  tree:
    id: root
    children:
      - {id: quiet_branch, when: evidence.quiet > 0}
      - {id: loud_branch, when: evidence.loud > 0}
"#;

#[tokio::test]
async fn three_misses_prune_the_reprobe_comes_on_schedule_and_a_hit_clears() {
    let pb = playbook(PRUNABLE);
    let state = Arc::new(MemoryStateStore::new());
    let w = walker(state.clone());
    let alert = fixture_alert("order-service-timeout.firing");
    let quiet = || {
        Arc::new(
            FixtureEvidence::new()
                .with_signal("quiet", json!(0), Duration::ZERO)
                .with_signal("loud", json!(1), Duration::ZERO),
        )
    };
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        let d = w.walk(&pb, alert.clone(), quiet(), now()).await;
        let n = d.node("quiet_branch").unwrap();
        outcomes.push((n.outcome, n.reprobe, n.pruned_now));
        assert_eq!(d.node("loud_branch").unwrap().outcome, NodeOutcome::Hit);
    }
    use NodeOutcome::*;
    assert_eq!(
        outcomes,
        [
            (Miss, false, false),
            (Miss, false, false),
            (Miss, false, true), // the third miss prunes
            (Pruned, false, false),
            (Pruned, false, false),
            (Pruned, false, false),
            (Miss, true, false), // the 4th walk after the prune re-probes
            (Pruned, false, false),
        ]
    );
    let entries = state.pruned_nodes("order").await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].node, "quiet_branch");
    assert_eq!(entries[0].value.render(), "2026-11-24T16:05:00Z:skipped:1");

    // Walk until the next re-probe, which now finds something: the prune and the streak clear.
    let loud_now = Arc::new(
        FixtureEvidence::new()
            .with_signal("quiet", json!(5), Duration::ZERO)
            .with_signal("loud", json!(1), Duration::ZERO),
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        let d = w.walk(&pb, alert.clone(), loud_now.clone(), now()).await;
        let n = d.node("quiet_branch").unwrap();
        seen.push((n.outcome, n.reprobe));
    }
    assert_eq!(seen, [(Pruned, false), (Pruned, false), (Hit, true)]);
    assert!(state.pruned_nodes("order").await.unwrap().is_empty());
    assert_eq!(state.miss_streak("order", "quiet_branch").await.unwrap(), 0);
    let d = w.walk(&pb, alert, loud_now, now()).await;
    assert_eq!(d.node("quiet_branch").unwrap().outcome, Hit);
}

#[tokio::test]
async fn a_prune_expires_after_its_ttl() {
    let pb = playbook(PRUNABLE);
    let state = Arc::new(MemoryStateStore::new());
    let w = walker(state.clone());
    let alert = fixture_alert("order-service-timeout.firing");
    let quiet = Arc::new(FixtureEvidence::new().with_signal("quiet", json!(0), Duration::ZERO));
    for _ in 0..3 {
        w.walk(&pb, alert.clone(), quiet.clone(), now()).await;
    }
    let d = w
        .walk(
            &pb,
            alert.clone(),
            quiet.clone(),
            now() + chrono::Duration::minutes(59),
        )
        .await;
    assert_eq!(d.node("quiet_branch").unwrap().outcome, NodeOutcome::Pruned);
    let d = w
        .walk(&pb, alert, quiet, now() + chrono::Duration::minutes(61))
        .await;
    let n = d.node("quiet_branch").unwrap();
    assert_eq!((n.outcome, n.reprobe), (NodeOutcome::Miss, false));
    // Evaluated after expiry with a fresh streak: one miss, not pruned again yet.
    assert_eq!(state.miss_streak("order", "quiet_branch").await.unwrap(), 1);
}

#[tokio::test]
async fn an_evidence_error_neither_prunes_nor_aborts_the_walk() {
    let pb = playbook(PRUNABLE);
    let state = Arc::new(MemoryStateStore::new());
    let w = walker(state.clone());
    let alert = fixture_alert("order-service-timeout.firing");
    let broken = Arc::new(
        FixtureEvidence::new()
            .with_signal_error("quiet", "prometheus: connection refused", Duration::ZERO)
            .with_signal("loud", json!(1), Duration::ZERO),
    );
    for _ in 0..5 {
        let d = w.walk(&pb, alert.clone(), broken.clone(), now()).await;
        let n = d.node("quiet_branch").unwrap();
        assert_eq!(n.outcome, NodeOutcome::Error);
        assert_eq!(n.detail.as_deref(), Some("quiet: prometheus: connection refused"));
        // The sibling is still walked.
        assert_eq!(d.node("loud_branch").unwrap().outcome, NodeOutcome::Hit);
        assert_eq!(
            d.evidence["quiet"].error.as_deref(),
            Some("prometheus: connection refused")
        );
    }
    assert_eq!(state.miss_streak("order", "quiet_branch").await.unwrap(), 0);
    assert!(state.pruned_nodes("order").await.unwrap().is_empty());
}

#[tokio::test]
async fn no_data_is_a_miss_not_an_error() {
    let pb = playbook(PRUNABLE);
    let d = walker(Arc::new(MemoryStateStore::new()))
        .walk(
            &pb,
            fixture_alert("order-service-timeout.firing"),
            Arc::new(FixtureEvidence::new()),
            now(),
        )
        .await;
    let n = d.node("quiet_branch").unwrap();
    assert_eq!(n.outcome, NodeOutcome::Miss);
    assert_eq!(n.detail.as_deref(), Some("no data: quiet"));
}

#[tokio::test]
async fn the_deadline_turns_late_evidence_into_errors_and_keeps_the_rest() {
    let pb = playbook(PRUNABLE);
    let fixture = FixtureEvidence::new()
        .with_signal("quiet", json!(1), Duration::from_secs(30))
        .with_signal("loud", json!(1), Duration::ZERO);
    let w = Walker::new(
        Arc::new(MemoryStateStore::new()),
        WalkOptions {
            deadline: Duration::from_millis(200),
            sequential: false,
        },
    );
    let started = Instant::now();
    let d = w
        .walk(
            &pb,
            fixture_alert("order-service-timeout.firing"),
            Arc::new(fixture),
            now(),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(d.deadline_exceeded);
    assert_eq!(d.node("quiet_branch").unwrap().outcome, NodeOutcome::Error);
    assert_eq!(d.node("loud_branch").unwrap().outcome, NodeOutcome::Hit);
}

#[tokio::test]
async fn the_seeds_fusion_on_the_shipped_tree_acts_at_92_4_percent() {
    let catalog = rootfix::catalog::Catalog::load(&support::shipped_paths()).unwrap();
    let pb = catalog.playbook("order-service-timeout").unwrap();
    let alert = fixture_alert("order-service-timeout.firing");
    let evidence = || {
        FixtureEvidence::new()
            .with_signal("payment_upstream_failures", json!(14), Duration::ZERO)
            .with_signal("trace_p99_ms", json!(6200), Duration::ZERO)
            .with_diagnostic("netdiag", json!({"ok": true}), Duration::ZERO)
    };
    let w = walker(Arc::new(MemoryStateStore::new()));
    let d = w
        .walk(
            pb,
            alert.clone(),
            Arc::new(evidence().with_signal("payment_timeout_logs", json!(7), Duration::ZERO)),
            now(),
        )
        .await;
    let remedy = d
        .remedies
        .iter()
        .find(|r| r.node == "payment_upstream_failing")
        .unwrap();
    assert!((remedy.score - 0.924).abs() < 1e-9, "{}", remedy.score);
    assert_eq!(remedy.decision, Decision::Act);
    assert_eq!(remedy.params["upstream"], "payment");
    // Without the logs the score is 0.712: recorded and notified, not acted on.
    let d = w
        .walk(
            pb,
            alert,
            Arc::new(evidence().with_signal("payment_timeout_logs", json!(2), Duration::ZERO)),
            now(),
        )
        .await;
    let remedy = d
        .remedies
        .iter()
        .find(|r| r.node == "payment_upstream_failing")
        .unwrap();
    assert!((remedy.score - 0.712).abs() < 1e-9, "{}", remedy.score);
    assert_eq!(remedy.decision, Decision::NotifyOnly);
    let held: Vec<bool> = remedy.signals.iter().map(|s| s.held).collect();
    assert_eq!(held, [true, true, false]);
}

#[tokio::test]
async fn a_remedy_param_whose_label_is_missing_is_invalid_not_acted_on() {
    let catalog = rootfix::catalog::Catalog::load(&support::shipped_paths()).unwrap();
    let pb = catalog.playbook("order-service-timeout").unwrap();
    let mut alert = (*fixture_alert("order-service-timeout.firing")).clone();
    alert.labels.remove("deployment");
    let fixture = FixtureEvidence::new()
        .with_signal("jvm_heap_used_ratio", json!(0.99), Duration::ZERO)
        .with_signal("gc_pause_ratio", json!(0.4), Duration::ZERO);
    let d = walker(Arc::new(MemoryStateStore::new()))
        .walk(pb, Arc::new(alert), Arc::new(fixture), now())
        .await;
    let remedy = d
        .remedies
        .iter()
        .find(|r| r.node == "jvm_heap_exhausted")
        .unwrap();
    assert!(
        matches!(&remedy.decision, Decision::Invalid(reason) if reason.contains("deployment")),
        "{:?}",
        remedy.decision
    );
}

const EITHER: &str = r#"
apiVersion: rootfix/v1
kind: Playbook
metadata: {name: either}
spec:
  match: ['alertname="OrderServiceTimeout"']
  evidence:
    a: {prometheus: {query: 'sum(a)'}}
    b: {prometheus: {query: 'sum(b)'}}
  tree:
    id: root
    children:
      - {id: a_or_b, when: evidence.a > 1 || evidence.b > 1}
      - {id: a_and_b, when: evidence.a > 1 && evidence.b > 1}
"#;

#[tokio::test]
async fn a_failed_signal_that_cannot_change_the_answer_does_not_blind_the_node() {
    let pb = playbook(EITHER);
    let fixture = FixtureEvidence::new()
        .with_signal("a", json!(5), Duration::ZERO)
        .with_signal_error("b", "loki: 502", Duration::ZERO);
    let d = walker(Arc::new(MemoryStateStore::new()))
        .walk(
            &pb,
            fixture_alert("order-service-timeout.firing"),
            Arc::new(fixture),
            now(),
        )
        .await;
    let either = d.node("a_or_b").unwrap();
    assert_eq!(either.outcome, NodeOutcome::Hit);
    assert_eq!(either.detail.as_deref(), Some("decided without b: loki: 502"));
    // Here b decides, and it failed.
    let both = d.node("a_and_b").unwrap();
    assert_eq!(
        (both.outcome, both.detail.as_deref()),
        (NodeOutcome::Error, Some("b: loki: 502"))
    );
}

#[tokio::test]
async fn a_remedy_in_waves_runs_its_action_once_per_target_of_the_evidence_in_widening_waves() {
    let pb = playbook(
        r#"apiVersion: rootfix/v1
kind: Playbook
metadata: {name: waves}
spec:
  match: ['alertname="OrderServiceTimeout"']
  evidence:
    lag: {prometheus: {query: 'max(mysql_slave_status_seconds_behind_master)'}}
    replicas:
      jsonhttp: {url: 'http://inventory.shop.svc/replicas?service={{ $labels.service }}', path: '$.replicas'}
  tree:
    id: root
    children:
      - id: lagging_replicas
        when: evidence.lag > 30
        remedy:
          action: mysql-replica-lag
          params: {mode: read-only}
          waves: {targets: replicas, param: replica_address, sizes: [1, '50%', '100%']}
          confidence: {threshold: 0.5, signals: [{when: 'evidence.lag > 30', weight: 1.0}]}
"#,
    );
    let walk = |targets: serde_json::Value| {
        let pb = pb.clone();
        async move {
            let fixture = FixtureEvidence::new()
                .with_signal("lag", json!(47), Duration::ZERO)
                .with_signal("replicas", targets, Duration::ZERO);
            walker(Arc::new(MemoryStateStore::new()))
                .walk(
                    &pb,
                    fixture_alert("order-service-timeout.firing"),
                    Arc::new(fixture),
                    now(),
                )
                .await
        }
    };
    let d = walk(json!([
        "db-1:3306",
        "db-2:3306",
        "db-1:3306",
        "db-3:3306",
        "db-4:3306",
        "db-5:3306"
    ]))
    .await;
    let r = &d.remedies[0];
    assert_eq!(r.decision, Decision::Act);
    assert_eq!(r.action, "mysql-replica-lag", "the fix type is the action");
    let targets: Vec<&str> = r
        .steps
        .iter()
        .map(|s| s.params["replica_address"].as_str())
        .collect();
    assert_eq!(
        targets,
        ["db-1:3306", "db-2:3306", "db-3:3306", "db-4:3306", "db-5:3306"],
        "distinct, in order"
    );
    assert!(
        r.steps
            .iter()
            .all(|s| s.params["mode"] == "read-only" && s.action == "mysql-replica-lag")
    );
    assert_eq!(r.waves, [1, 2, 2], "1, then up to 50 % (3 of 5), then all");
    for (bad, why) in [
        (json!([]), "an empty list"),
        (json!("db-1:3306"), "not a list"),
        (json!([{"host": "db-1"}]), "not a string"),
    ] {
        let d = walk(bad).await;
        match &d.remedies[0].decision {
            Decision::Invalid(reason) => assert!(reason.contains(why), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
