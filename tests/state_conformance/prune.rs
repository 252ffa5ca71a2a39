//! The prune area ([`PruneStore`](rootfix::state::PruneStore)): gates, verdicts, streaks, expiry,
//! clearing, node counts, and two replicas (and two walkers) recording at once.

use rootfix::engine::fixture::FixtureEvidence;
use rootfix::engine::{WalkOptions, Walker};
use rootfix::state::{NodeStats, PruneGate, PruneUpdate, Verdict};
use serde_json::json;

use super::*;

async fn unknown_nodes_are_evaluated((s, _): Pair) {
    assert_eq!(
        s.prune_gate("svc", "n", &policy(), t0()).await.unwrap(),
        PruneGate::Evaluate
    );
    assert_eq!(s.miss_streak("svc", "n").await.unwrap(), 0);
    assert!(s.pruned_nodes("svc").await.unwrap().is_empty());
    s.ping().await.unwrap();
}

async fn misses_prune_at_the_limit_in_the_seed_format((s, _): Pair) {
    let p = policy();
    assert_eq!(
        s.record_verdict("svc", "n", Verdict::Miss, &p, t0())
            .await
            .unwrap(),
        PruneUpdate::Streak { misses: 1 }
    );
    assert_eq!(
        s.record_verdict("svc", "n", Verdict::Miss, &p, t0())
            .await
            .unwrap(),
        PruneUpdate::Streak { misses: 2 }
    );
    assert_eq!(
        s.record_verdict("svc", "n", Verdict::Miss, &p, t0())
            .await
            .unwrap(),
        PruneUpdate::Pruned { misses: 3 }
    );
    // Already pruned: a further miss (a re-probe's) keeps the prune and its time.
    let later = t0() + chrono::Duration::minutes(5);
    assert_eq!(
        s.record_verdict("svc", "n", Verdict::Miss, &p, later)
            .await
            .unwrap(),
        PruneUpdate::Streak { misses: 4 }
    );
    let entries = s.pruned_nodes("svc").await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].node.as_str(), entries[0].value.render()),
        ("n", "2026-11-25T10:00:00Z:skipped:0".to_string())
    );
    // Services are independent.
    assert!(s.pruned_nodes("other").await.unwrap().is_empty());
}

async fn pruned_nodes_are_skipped_and_reprobed_on_schedule((s, _): Pair) {
    let p = policy();
    for _ in 0..3 {
        s.record_verdict("svc", "n", Verdict::Miss, &p, t0())
            .await
            .unwrap();
    }
    let mut gates = Vec::new();
    for _ in 0..9 {
        gates.push(s.prune_gate("svc", "n", &p, t0()).await.unwrap());
    }
    let skip = |n| PruneGate::Skip {
        pruned_at: "2026-11-25T10:00:00Z".into(),
        skipped: n,
    };
    assert_eq!(
        gates,
        [
            skip(1),
            skip(2),
            skip(3),
            PruneGate::Reprobe,
            skip(1),
            skip(2),
            skip(3),
            PruneGate::Reprobe,
            skip(1)
        ]
    );
    assert_eq!(
        s.pruned_nodes("svc").await.unwrap()[0].value.render(),
        "2026-11-25T10:00:00Z:skipped:1"
    );
    let stats = s.node_stats("svc", "n").await.unwrap();
    assert_eq!(
        stats,
        NodeStats {
            hits: 0,
            misses: 3,
            skips: 7,
            reprobes: 2
        }
    );
}

async fn a_hit_clears_the_streak_and_the_prune((s, _): Pair) {
    let p = policy();
    s.record_verdict("svc", "n", Verdict::Miss, &p, t0())
        .await
        .unwrap();
    assert_eq!(
        s.record_verdict("svc", "n", Verdict::Hit, &p, t0())
            .await
            .unwrap(),
        PruneUpdate::Cleared { was_pruned: false }
    );
    assert_eq!(s.miss_streak("svc", "n").await.unwrap(), 0);
    for _ in 0..3 {
        s.record_verdict("svc", "n", Verdict::Miss, &p, t0())
            .await
            .unwrap();
    }
    assert_eq!(
        s.record_verdict("svc", "n", Verdict::Hit, &p, t0())
            .await
            .unwrap(),
        PruneUpdate::Cleared { was_pruned: true }
    );
    assert_eq!(
        s.prune_gate("svc", "n", &p, t0()).await.unwrap(),
        PruneGate::Evaluate
    );
    assert_eq!(s.node_stats("svc", "n").await.unwrap().hits, 2);
}

async fn prunes_expire_after_the_ttl((s, _): Pair) {
    let p = policy();
    for _ in 0..3 {
        s.record_verdict("svc", "n", Verdict::Miss, &p, t0())
            .await
            .unwrap();
    }
    let before = t0() + chrono::Duration::seconds(3599);
    assert!(matches!(
        s.prune_gate("svc", "n", &p, before).await.unwrap(),
        PruneGate::Skip { .. }
    ));
    let after = t0() + chrono::Duration::seconds(3601);
    assert_eq!(
        s.prune_gate("svc", "n", &p, after).await.unwrap(),
        PruneGate::Evaluate
    );
    assert!(s.pruned_nodes("svc").await.unwrap().is_empty());
    assert_eq!(s.miss_streak("svc", "n").await.unwrap(), 0);
}

async fn clear_prune_lifts_it((s, _): Pair) {
    let p = policy();
    for _ in 0..3 {
        s.record_verdict("svc", "n", Verdict::Miss, &p, t0())
            .await
            .unwrap();
    }
    assert!(s.clear_prune("svc", "n").await.unwrap());
    assert!(!s.clear_prune("svc", "n").await.unwrap());
    assert_eq!(
        s.prune_gate("svc", "n", &p, t0()).await.unwrap(),
        PruneGate::Evaluate
    );
    assert_eq!(s.miss_streak("svc", "n").await.unwrap(), 0);
}

async fn two_replicas_recording_at_once_lose_and_double_nothing((a, b): Pair) {
    let p = policy();
    let run = |s: Arc<dyn StateStore>| {
        tokio::spawn(async move {
            for _ in 0..500 {
                s.record_verdict("svc", "n", Verdict::Miss, &p, t0())
                    .await
                    .unwrap();
            }
        })
    };
    let (x, y) = (run(a.clone()), run(b.clone()));
    x.await.unwrap();
    y.await.unwrap();
    assert_eq!(a.miss_streak("svc", "n").await.unwrap(), 1000);
    assert_eq!(b.node_stats("svc", "n").await.unwrap().misses, 1000);
    assert_eq!(a.pruned_nodes("svc").await.unwrap().len(), 1);
}

const TWO_BRANCHES: &str = r#"
apiVersion: rootfix/v1
kind: Playbook
metadata: {name: two-branches}
spec:
  match: ['alertname="OrderServiceTimeout"']
  prune: {after: 3, reprobe_every: 4, ttl: 24h}
  evidence:
    quiet: {prometheus: {query: 'sum(quiet)'}}
    loud: {prometheus: {query: 'sum(loud)'}}
  tree:
    id: root
    children:
      - {id: quiet_branch, when: evidence.quiet > 0}
      - {id: loud_branch, when: evidence.loud > 0}
"#;

async fn two_concurrent_walkers_keep_exact_counts_over_1000_walks((a, b): Pair) {
    let pb = Arc::new(support::playbook(TWO_BRANCHES));
    let alert = support::fixture_alert("order-service-timeout.firing");
    let evidence = Arc::new(
        FixtureEvidence::new()
            .with_signal("quiet", json!(0), Duration::ZERO)
            .with_signal("loud", json!(1), Duration::ZERO),
    );
    let run = |state: Arc<dyn StateStore>| {
        let (pb, alert, evidence) = (pb.clone(), alert.clone(), evidence.clone());
        tokio::spawn(async move {
            let walker = Walker::new(state, WalkOptions::default());
            for _ in 0..500 {
                walker.walk(&pb, alert.clone(), evidence.clone(), t0()).await;
            }
        })
    };
    let (x, y) = (run(a.clone()), run(b.clone()));
    x.await.unwrap();
    y.await.unwrap();
    // Every walk passed each gate exactly once: evaluated (a miss) or skipped.
    let quiet = a.node_stats("order", "quiet_branch").await.unwrap();
    assert_eq!(quiet.misses + quiet.skips, 1000, "{quiet:?}");
    assert!(quiet.reprobes <= quiet.misses && quiet.misses >= 3, "{quiet:?}");
    // The streak was never cleared, so it equals the misses exactly.
    assert_eq!(
        u64::from(b.miss_streak("order", "quiet_branch").await.unwrap()),
        quiet.misses
    );
    // Skips and re-probes alternate 3:1 after the prune, so the counts are tied.
    assert!(quiet.skips.abs_diff(3 * quiet.reprobes) <= 3, "{quiet:?}");
    let loud = b.node_stats("order", "loud_branch").await.unwrap();
    assert_eq!(
        loud,
        NodeStats {
            hits: 1000,
            misses: 0,
            skips: 0,
            reprobes: 0
        }
    );
}

conformance!(
    unknown_nodes_are_evaluated,
    misses_prune_at_the_limit_in_the_seed_format,
    pruned_nodes_are_skipped_and_reprobed_on_schedule,
    a_hit_clears_the_streak_and_the_prune,
    prunes_expire_after_the_ttl,
    clear_prune_lifts_it,
    two_replicas_recording_at_once_lose_and_double_nothing,
    two_concurrent_walkers_keep_exact_counts_over_1000_walks,
);

#[tokio::test]
async fn redis_reports_a_corrupt_prune_value_instead_of_guessing() {
    let store = support::redis_store("corrupt").await;
    let mut conn = store.connection();
    let key = store.keys().prune("svc");
    let _: () = ::redis::AsyncCommands::hset(&mut conn, &key, "n", "not-a-prune-value")
        .await
        .unwrap();
    let err = store.prune_gate("svc", "n", &policy(), t0()).await.unwrap_err();
    assert_eq!(
        err,
        StateError::Corrupt {
            key,
            value: "not-a-prune-value".into()
        }
    );
}
