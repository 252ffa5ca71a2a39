//! One conformance suite for every `StateStore`: each case runs against the in-process store and
//! against a real redis-server on 127.0.0.1 (scripts/test-all.sh starts it). The Redis cases fail,
//! never skip, when Redis is not there.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rootfix::engine::fixture::FixtureEvidence;
use rootfix::engine::{WalkOptions, Walker};
use rootfix::incident::{Incident, IncidentFilter, IncidentState};
use rootfix::model::playbook::PrunePolicy;
use rootfix::state::{
    CreateOutcome, NodeStats, PruneGate, PruneStore, PruneUpdate, SaveOutcome, StateError, StateStore,
    StreamStats, Verdict,
};
use serde_json::json;

/// Two handles on one store, as two rootfix replicas would have.
type Pair = (Arc<dyn StateStore>, Arc<dyn StateStore>);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn policy() -> PrunePolicy {
    PrunePolicy {
        after: 3,
        reprobe_every: 4,
        ttl: Duration::from_secs(3600),
    }
}

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

fn alert(fingerprint: &str, name: &str) -> rootfix::alert::Alert {
    let mut a = (*support::fixture_alert("order-service-timeout.firing")).clone();
    a.fingerprint = fingerprint.to_string();
    a.labels.insert("alertname".into(), name.into());
    a
}

fn incident(id: &str, fingerprint: &str, state: IncidentState, minute: u32) -> Incident {
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 10, minute, 0).unwrap();
    Incident {
        id: id.to_string(),
        fingerprint: fingerprint.to_string(),
        state,
        alertname: "OrderServiceTimeout".into(),
        service: Some(if minute.is_multiple_of(2) {
            "order".into()
        } else {
            "payment".into()
        }),
        playbook: Some("order-service-timeout".into()),
        alert: alert(fingerprint, "OrderServiceTimeout"),
        created_at: at,
        updated_at: at,
        resolved_at: None,
        firings: 1,
        created_by_entry: format!("{minute}-0"),
        applied_entries: vec![format!("{minute}-0")],
        diagnosis: None,
        timeline: Vec::new(),
        fix: None,
        version: 0,
    }
}

async fn the_alert_stream_delivers_claims_and_acks((a, b): Pair) {
    a.ensure_consumer_group().await.unwrap();
    b.ensure_consumer_group().await.unwrap();
    let alerts = [alert("a1", "A"), alert("a2", "B"), alert("a3", "C")];
    let ids = a.append_alerts(&alerts, t0()).await.unwrap();
    assert_eq!(ids.len(), 3);
    let got = a
        .read_alerts("consumer-1", 10, Duration::from_millis(50))
        .await
        .unwrap();
    let names: Vec<String> = got
        .iter()
        .map(|e| e.alert.as_ref().unwrap().name().to_string())
        .collect();
    assert_eq!(names, ["A", "B", "C"]);
    assert_eq!(got.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(got[0].received_at, Some(t0()));
    // Delivered once: the group has nothing new for anyone.
    assert!(
        b.read_alerts("consumer-2", 10, Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        a.stream_stats().await.unwrap(),
        StreamStats {
            length: 3,
            pending: 3,
            lag: 0
        }
    );
    a.ack_alert(&ids[0]).await.unwrap();
    a.ack_alert(&ids[1]).await.unwrap();
    // Not idle long enough: nothing to claim.
    assert!(
        b.claim_stale_alerts("consumer-2", Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    let claimed = b
        .claim_stale_alerts("consumer-2", Duration::from_millis(20), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        [ids[2].clone()]
    );
    b.ack_alert(&ids[2]).await.unwrap();
    assert_eq!(
        a.stream_stats().await.unwrap(),
        StreamStats {
            length: 3,
            pending: 0,
            lag: 0
        }
    );
}

async fn a_blocked_read_wakes_up_for_a_new_alert((a, b): Pair) {
    a.ensure_consumer_group().await.unwrap();
    let reader = tokio::spawn({
        let a = a.clone();
        async move { a.read_alerts("c", 10, Duration::from_secs(5)).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.append_alerts(&[alert("f1", "Late")], t0()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(3), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
}

async fn one_open_incident_per_fingerprint((a, b): Pair) {
    let first = incident("inc-1", "fp1", IncidentState::Open, 0);
    assert_eq!(a.create_incident(&first).await.unwrap(), CreateOutcome::Created);
    assert_eq!(b.create_incident(&first).await.unwrap(), CreateOutcome::IdExists);
    let second = incident("inc-2", "fp1", IncidentState::Open, 1);
    assert_eq!(
        b.create_incident(&second).await.unwrap(),
        CreateOutcome::OpenExists("inc-1".into())
    );
    let mut loaded = b.open_incident("fp1").await.unwrap().unwrap();
    assert_eq!((loaded.id.as_str(), loaded.version), ("inc-1", 1));
    assert_eq!(loaded.alert, first.alert);
    // Resolving frees the fingerprint for a new incident.
    loaded.state = IncidentState::Resolved;
    assert_eq!(b.save_incident(&mut loaded).await.unwrap(), SaveOutcome::Saved);
    assert_eq!(loaded.version, 2);
    assert!(a.open_incident("fp1").await.unwrap().is_none());
    assert_eq!(a.create_incident(&second).await.unwrap(), CreateOutcome::Created);
    assert_eq!(
        a.incident("inc-1").await.unwrap().unwrap().state,
        IncidentState::Resolved
    );
    let counts = a.incident_counts().await.unwrap();
    assert_eq!(
        (counts[&IncidentState::Open], counts[&IncidentState::Resolved]),
        (1, 1)
    );
}

async fn concurrent_saves_of_one_version_let_exactly_one_win((a, b): Pair) {
    a.create_incident(&incident("inc-1", "fp1", IncidentState::Diagnosing, 0))
        .await
        .unwrap();
    let mut x = a.incident("inc-1").await.unwrap().unwrap();
    let mut y = b.incident("inc-1").await.unwrap().unwrap();
    x.firings = 2;
    y.firings = 3;
    let (rx, ry) = tokio::join!(a.save_incident(&mut x), b.save_incident(&mut y));
    let mut outcomes = [rx.unwrap(), ry.unwrap()];
    outcomes.sort_by_key(|o| *o == SaveOutcome::Saved);
    assert_eq!(outcomes, [SaveOutcome::Conflict, SaveOutcome::Saved]);
    let stored = a.incident("inc-1").await.unwrap().unwrap();
    assert!(stored.firings == 2 || stored.firings == 3);
    assert_eq!(stored.version, 2);
    let mut ghost = incident("inc-404", "fp9", IncidentState::Open, 0);
    assert_eq!(a.save_incident(&mut ghost).await.unwrap(), SaveOutcome::Missing);
}

async fn incidents_list_newest_first_with_filters_and_pages((a, _): Pair) {
    for minute in 0..10 {
        let state = if minute < 6 {
            IncidentState::Open
        } else {
            IncidentState::Unhandled
        };
        a.create_incident(&incident(
            &format!("inc-{minute}"),
            &format!("fp{minute}"),
            state,
            minute,
        ))
        .await
        .unwrap();
    }
    let all = a.list_incidents(&IncidentFilter::default(), 0, 4).await.unwrap();
    assert_eq!(
        all.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["inc-9", "inc-8", "inc-7", "inc-6"]
    );
    assert_eq!(all.next_offset, Some(4));
    let open = IncidentFilter {
        state: Some(IncidentState::Open),
        ..Default::default()
    };
    let page = a.list_incidents(&open, 2, 10).await.unwrap();
    assert_eq!(
        page.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["inc-3", "inc-2", "inc-1", "inc-0"]
    );
    assert_eq!(page.next_offset, None);
    let payment = IncidentFilter {
        service: Some("payment".into()),
        state: Some(IncidentState::Unhandled),
        ..Default::default()
    };
    let page = a.list_incidents(&payment, 0, 10).await.unwrap();
    assert_eq!(
        page.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["inc-9", "inc-7"]
    );
    let none = IncidentFilter {
        playbook: Some("nope".into()),
        ..Default::default()
    };
    assert!(a.list_incidents(&none, 0, 10).await.unwrap().items.is_empty());
}

async fn the_kill_switch_and_the_audit_trail((a, b): Pair) {
    use rootfix::audit::{AuditEvent, KillSwitch};
    assert_eq!(a.killswitch().await.unwrap(), None);
    let on = KillSwitch {
        by: "admin".into(),
        reason: "bad deploy".into(),
        since: t0(),
    };
    a.set_killswitch(Some(&on)).await.unwrap();
    assert_eq!(b.killswitch().await.unwrap(), Some(on));
    b.set_killswitch(None).await.unwrap();
    assert_eq!(a.killswitch().await.unwrap(), None);
    for i in 0..5 {
        let event = AuditEvent {
            at: t0(),
            identity: "admin".into(),
            action: format!("test.{i}"),
            detail: String::new(),
        };
        a.append_audit(&event).await.unwrap();
    }
    let newest: Vec<String> = b.audit(3).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(newest, ["test.4", "test.3", "test.2"]);
}

async fn stages_change_only_from_the_expected_stage_and_keep_history((a, b): Pair) {
    use rootfix::autonomy::stage::{Stage, StageChange, StageState};
    assert_eq!(a.stage("restart", "staging").await.unwrap(), None);
    let change = |from: Option<Stage>, to: Stage, h: i64| StageChange {
        at: t0() + chrono::Duration::hours(h),
        action: "restart".into(),
        scope: "staging".into(),
        from,
        to,
        by: "admin".into(),
        reason: format!("to {to}"),
    };
    let manual = StageState {
        stage: Stage::Manual,
        since: t0(),
        proposal: None,
    };
    assert!(
        a.change_stage(
            "restart",
            "staging",
            None,
            &manual,
            Some(&change(None, Stage::Manual, 0))
        )
        .await
        .unwrap()
    );
    // A second "first sight" loses: the pair exists now.
    assert!(
        !b.change_stage(
            "restart",
            "staging",
            None,
            &manual,
            Some(&change(None, Stage::Manual, 0))
        )
        .await
        .unwrap()
    );
    let silent = StageState {
        stage: Stage::Silent,
        since: t0() + chrono::Duration::hours(1),
        proposal: None,
    };
    // Two admins promote at once from manual: exactly one wins.
    let promote = change(Some(Stage::Manual), Stage::Silent, 1);
    let (x, y) = tokio::join!(
        a.change_stage("restart", "staging", Some(Stage::Manual), &silent, Some(&promote)),
        b.change_stage("restart", "staging", Some(Stage::Manual), &silent, Some(&promote)),
    );
    assert!(x.unwrap() ^ y.unwrap(), "exactly one promotion applies");
    assert_eq!(b.stage("restart", "staging").await.unwrap(), Some(silent.clone()));
    // A proposal is written without a history line.
    let proposed = StageState {
        proposal: Some(rootfix::autonomy::stage::Proposal {
            to: Stage::Auto,
            at: t0(),
        }),
        ..silent
    };
    assert!(
        a.change_stage("restart", "staging", Some(Stage::Silent), &proposed, None)
            .await
            .unwrap()
    );
    let history = b.stage_history("restart", "staging").await.unwrap();
    assert_eq!(
        history.iter().map(|c| (c.from, c.to)).collect::<Vec<_>>(),
        [(None, Stage::Manual), (Some(Stage::Manual), Stage::Silent)]
    );
    let other = StageState {
        stage: Stage::Manual,
        since: t0(),
        proposal: None,
    };
    assert!(a.change_stage("flush", "prod", None, &other, None).await.unwrap());
    let listed: Vec<(String, String, Stage)> = b
        .stages()
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.scope, e.state.stage))
        .collect();
    assert_eq!(
        listed,
        [
            ("flush".to_string(), "prod".to_string(), Stage::Manual),
            ("restart".to_string(), "staging".to_string(), Stage::Silent)
        ]
    );
}

async fn outcomes_are_kept_in_time_order_for_the_window((a, b): Pair) {
    use rootfix::autonomy::outcome::{Outcome, OutcomeKind, Severity};
    let retain = Duration::from_secs(30 * 24 * 3600);
    let at = |h: i64| t0() + chrono::Duration::hours(h);
    for (h, incident, kind) in [
        (5, "i5", OutcomeKind::Succeeded),
        (1, "i1", OutcomeKind::RolledBack),
        (3, "i3", OutcomeKind::Succeeded),
        (
            4,
            "i3",
            OutcomeKind::Misfix {
                severity: Severity::P0,
            },
        ),
    ] {
        a.record_outcome(
            "restart",
            "staging",
            &Outcome {
                at: at(h),
                incident: incident.into(),
                kind,
            },
            retain,
        )
        .await
        .unwrap();
    }
    let since_2h: Vec<(String, OutcomeKind)> = b
        .outcomes("restart", "staging", at(2))
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.incident, o.kind))
        .collect();
    assert_eq!(
        since_2h,
        [
            ("i3".to_string(), OutcomeKind::Succeeded),
            (
                "i3".to_string(),
                OutcomeKind::Misfix {
                    severity: Severity::P0
                }
            ),
            ("i5".to_string(), OutcomeKind::Succeeded)
        ]
    );
    assert!(b.outcomes("restart", "prod", at(0)).await.unwrap().is_empty());
    // Outcomes older than the retention before a new one are dropped.
    a.record_outcome(
        "restart",
        "staging",
        &Outcome {
            at: at(24 * 30 + 2),
            incident: "late".into(),
            kind: OutcomeKind::Succeeded,
        },
        retain,
    )
    .await
    .unwrap();
    let all: Vec<String> = b
        .outcomes("restart", "staging", at(-100))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.incident)
        .collect();
    assert_eq!(all, ["i3", "i3", "i5", "late"]);
}

async fn approvals_are_decided_exactly_once((a, b): Pair) {
    use rootfix::autonomy::approval::{Approval, ApprovalState, DecideOutcome};
    let approval = |id: &str, minute: i64| Approval {
        id: id.into(),
        incident: format!("inc-{id}"),
        action: "restart".into(),
        scope: "staging".into(),
        params: [("pod".to_string(), "api-0".to_string())].into(),
        summary: "root → jvm → restart".into(),
        confidence: 0.9,
        threshold: 0.7,
        created_at: t0() + chrono::Duration::minutes(minute),
        expires_at: t0() + chrono::Duration::minutes(minute + 30),
        state: ApprovalState::Pending,
        decided_by: None,
        decided_at: None,
        reason: None,
    };
    assert!(a.create_approval(&approval("one", 0)).await.unwrap());
    assert!(
        !b.create_approval(&approval("one", 0)).await.unwrap(),
        "an id is created once"
    );
    assert!(a.create_approval(&approval("two", 1)).await.unwrap());
    assert!(a.create_approval(&approval("three", 2)).await.unwrap());
    let pending: Vec<String> = b
        .list_approvals(true, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(pending, ["three", "two", "one"]);
    let base = b.approval("two").await.unwrap().unwrap();
    let approved = base.decided(ApprovalState::Approved, "alice", t0(), None);
    let rejected = base.decided(ApprovalState::Rejected, "bob", t0(), Some("wrong pod".into()));
    let (x, y) = tokio::join!(a.decide_approval(&approved), b.decide_approval(&rejected));
    let (x, y) = (x.unwrap(), y.unwrap());
    let winners = [&x, &y].iter().filter(|o| ***o == DecideOutcome::Decided).count();
    assert_eq!(winners, 1, "{x:?} {y:?}");
    let stored = a.approval("two").await.unwrap().unwrap();
    match (&x, &y) {
        (DecideOutcome::Decided, DecideOutcome::AlreadyDecided(s)) => {
            assert_eq!(stored, approved);
            assert_eq!(**s, approved);
        }
        (DecideOutcome::AlreadyDecided(s), DecideOutcome::Decided) => {
            assert_eq!(stored, rejected);
            assert_eq!(**s, rejected);
        }
        other => panic!("{other:?}"),
    }
    let pending: Vec<String> = b
        .list_approvals(true, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(pending, ["three", "one"]);
    let all: Vec<String> = b
        .list_approvals(false, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(all, ["three", "two"]);
    let ghost = approval("ghost", 0).decided(ApprovalState::Approved, "alice", t0(), None);
    assert_eq!(a.decide_approval(&ghost).await.unwrap(), DecideOutcome::Missing);
    assert_eq!(a.approval("ghost").await.unwrap(), None);
}

async fn the_rate_window_slides_and_run_slots_cap_concurrency((a, b): Pair) {
    let hour = Duration::from_secs(3600);
    let at = |m: i64| t0() + chrono::Duration::minutes(m);
    assert!(a.take_rate_slot("staging", "f1", at(0), hour, 2).await.unwrap());
    assert!(b.take_rate_slot("staging", "f2", at(10), hour, 2).await.unwrap());
    assert!(
        !a.take_rate_slot("staging", "f3", at(20), hour, 2).await.unwrap(),
        "two per hour"
    );
    assert!(
        a.take_rate_slot("staging", "f2", at(20), hour, 2).await.unwrap(),
        "a fix counts once"
    );
    assert!(
        a.take_rate_slot("prod", "f3", at(20), hour, 2).await.unwrap(),
        "scopes count apart"
    );
    assert_eq!(b.rate_count("staging", at(20), hour).await.unwrap(), 2);
    // f1 leaves the window at 60 minutes.
    assert!(a.take_rate_slot("staging", "f3", at(61), hour, 2).await.unwrap());
    assert_eq!(b.rate_count("staging", at(61), hour).await.unwrap(), 2);
    b.release_rate_slot("staging", "f3").await.unwrap();
    assert_eq!(b.rate_count("staging", at(61), hour).await.unwrap(), 1);

    let lease = Duration::from_secs(600);
    assert!(a.take_run_slot("staging", "f1", at(0), lease, 1).await.unwrap());
    assert!(
        !b.take_run_slot("staging", "f2", at(1), lease, 1).await.unwrap(),
        "one at a time"
    );
    assert_eq!(a.running_count("staging", at(1)).await.unwrap(), 1);
    a.release_run_slot("staging", "f1").await.unwrap();
    assert!(b.take_run_slot("staging", "f2", at(2), lease, 1).await.unwrap());
    // A holder that died frees its slot when the lease runs out.
    assert!(!a.take_run_slot("staging", "f3", at(11), lease, 1).await.unwrap());
    assert!(a.take_run_slot("staging", "f3", at(13), lease, 1).await.unwrap());
    assert_eq!(b.running_count("staging", at(13)).await.unwrap(), 1);
}

async fn one_leader_at_a_time((a, b): Pair) {
    let lease = Duration::from_millis(400);
    assert!(a.try_lead("replica-a", lease).await.unwrap());
    assert!(!b.try_lead("replica-b", lease).await.unwrap());
    assert!(a.try_lead("replica-a", lease).await.unwrap(), "the leader renews");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        b.try_lead("replica-b", lease).await.unwrap(),
        "a lapsed lease passes on"
    );
    assert!(!a.try_lead("replica-a", lease).await.unwrap());
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store: Arc<dyn StateStore> = Arc::new(rootfix::state::memory::MemoryStateStore::new());
                    super::$case((store.clone(), store)).await;
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let prefix = support::unique_prefix(stringify!($case));
                    let url = support::redis_url();
                    let connect = || async {
                        rootfix::state::redis::RedisStateStore::connect(&url, &prefix)
                            .await
                            .unwrap_or_else(|e| panic!("Redis at {url} is required (scripts/test-all.sh starts it): {e}"))
                    };
                    // Two connections with one prefix: two replicas on one Redis.
                    let a: Arc<dyn StateStore> = Arc::new(connect().await);
                    let b: Arc<dyn StateStore> = Arc::new(connect().await);
                    super::$case((a, b)).await;
                }
            )*
        }
    };
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
    the_alert_stream_delivers_claims_and_acks,
    a_blocked_read_wakes_up_for_a_new_alert,
    one_open_incident_per_fingerprint,
    concurrent_saves_of_one_version_let_exactly_one_win,
    incidents_list_newest_first_with_filters_and_pages,
    the_kill_switch_and_the_audit_trail,
    stages_change_only_from_the_expected_stage_and_keep_history,
    outcomes_are_kept_in_time_order_for_the_window,
    approvals_are_decided_exactly_once,
    the_rate_window_slides_and_run_slots_cap_concurrency,
    one_leader_at_a_time,
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

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let result = rootfix::state::redis::RedisStateStore::connect("redis://127.0.0.1:1/", "x:").await;
    assert!(matches!(result, Err(StateError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(10));
}
