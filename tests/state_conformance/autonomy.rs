//! Autonomy's records ([`AutonomyStore`](rootfix::state::AutonomyStore)): stages changed only
//! from the expected stage, with history; outcomes in time order for the window; approvals decided
//! exactly once.

use super::*;

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
                target: Some(format!("restart:pod={incident}")),
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
        .map(|o| {
            assert_eq!(
                o.target,
                Some(format!("restart:pod={}", o.incident)),
                "the target is kept"
            );
            (o.incident, o.kind)
        })
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
            target: None,
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
        steps: Vec::new(),
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

/// Outcomes per pair are capped at the newest `OUTCOMES_KEPT`, stage history at the newest
/// `STAGE_HISTORY_KEPT`: neither grows per alert without bound.
async fn outcomes_and_stage_history_are_capped((a, b): Pair) {
    use rootfix::autonomy::outcome::{Outcome, OutcomeKind};
    use rootfix::autonomy::stage::{Stage, StageChange, StageState};
    use rootfix::state::autonomy::{OUTCOMES_KEPT, STAGE_HISTORY_KEPT};
    let retain = Duration::from_secs(365 * 24 * 3600);
    for n in 0..(OUTCOMES_KEPT + 5) {
        a.record_outcome(
            "restart",
            "cap",
            &Outcome {
                at: t0() + chrono::Duration::seconds(n as i64),
                incident: format!("i{n}"),
                kind: OutcomeKind::Succeeded,
                target: None,
            },
            retain,
        )
        .await
        .unwrap();
    }
    let kept = b
        .outcomes("restart", "cap", DateTime::<Utc>::MIN_UTC)
        .await
        .unwrap();
    assert_eq!(kept.len(), OUTCOMES_KEPT);
    assert_eq!(kept[0].incident, "i5", "the oldest went");
    assert_eq!(
        kept[OUTCOMES_KEPT - 1].incident,
        format!("i{}", OUTCOMES_KEPT + 4)
    );
    let mut stage = None;
    for n in 0..(STAGE_HISTORY_KEPT + 3) {
        let to = if n % 2 == 0 { Stage::Manual } else { Stage::Silent };
        let state = StageState {
            stage: to,
            since: t0() + chrono::Duration::minutes(n as i64),
            proposal: None,
        };
        let change = StageChange {
            at: state.since,
            action: "restart".into(),
            scope: "cap".into(),
            from: stage,
            to,
            by: "admin".into(),
            reason: format!("change {n}"),
        };
        assert!(
            a.change_stage("restart", "cap", stage, &state, Some(&change))
                .await
                .unwrap()
        );
        stage = Some(to);
    }
    let history = b.stage_history("restart", "cap").await.unwrap();
    assert_eq!(history.len(), STAGE_HISTORY_KEPT);
    assert_eq!(history[0].reason, "change 3");
    assert_eq!(
        history[STAGE_HISTORY_KEPT - 1].reason,
        format!("change {}", STAGE_HISTORY_KEPT + 2)
    );
}

conformance!(
    stages_change_only_from_the_expected_stage_and_keep_history,
    outcomes_and_stage_history_are_capped,
    outcomes_are_kept_in_time_order_for_the_window,
    approvals_are_decided_exactly_once,
);
