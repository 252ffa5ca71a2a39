//! Outcomes that tell the truth (real Redis, the real Docker engine running the test action,
//! the event loop and the HTTP API): only executed fixes count and can be confirmed; a fix
//! whose alert or target comes back within `autonomy.recurrence_window` is `recurred`; the
//! per-target breaker and the remediation budget stop fixes; refusals for passing causes (the
//! kill switch, an unreachable Docker engine, the budget) are decided again by the leader.

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{ACTION, APPROVER_TOKEN, Harness, Options, Receiver, VIEWER_TOKEN, scope};
use rootfix::autonomy::clock::Clock as _;
use rootfix::autonomy::config::Budget;
use rootfix::autonomy::gate::Gate;
use rootfix::autonomy::outcome::{OutcomeKind, OutcomeSummary};
use rootfix::autonomy::promotion::PromotionPolicy;
use rootfix::autonomy::stage::Stage;
use rootfix::fix::journal::FixOutcome;
use rootfix::incident::IncidentState;
use serde_json::{Value, json};

fn minutes(m: i64) -> chrono::Duration {
    chrono::Duration::minutes(m)
}

async fn outcomes(h: &Harness) -> Vec<rootfix::autonomy::outcome::Outcome> {
    let mut all = h
        .state
        .outcomes(
            ACTION,
            "staging",
            harness::start_time() - chrono::Duration::days(365),
        )
        .await
        .unwrap();
    all.sort_by_key(|o| o.at);
    all
}

/// The kinds of an incident's outcomes, sorted (the manual clock gives many the same time).
async fn kinds_of(h: &Harness, incident: &str) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = outcomes(h)
        .await
        .iter()
        .filter(|o| o.incident == incident)
        .map(|o| o.kind.as_str())
        .collect();
    kinds.sort_unstable();
    kinds
}

async fn gate(h: &Harness) -> Value {
    let (status, body) = h
        .get(&format!("/api/v1/stages/{ACTION}/staging"), VIEWER_TOKEN)
        .await;
    assert_eq!(status, 200, "{body}");
    body["stage"]["gate"].clone()
}

/// A policy whose gate only the outcomes decide (no time in stage, one sample).
fn outcomes_only() -> PromotionPolicy {
    PromotionPolicy {
        min_in_stage: Duration::ZERO,
        window: Duration::from_secs(72 * 3600),
        min_success_rate: 0.991,
        min_samples: 1,
        auto_apply: false,
        require_lower_bound: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_precheck_aborted_fix_cannot_be_confirmed_does_not_count_and_gives_its_rate_slot_back() {
    let h = Harness::start(
        "outcome_aborted",
        Options {
            // One fix an hour: the aborted one must not use it up.
            scopes: vec![scope("staging", "staging", Stage::Auto, 1, 4)],
            ..Options::default()
        },
    )
    .await;
    h.force_stage("staging", Stage::Silent).await;
    h.break_target();
    std::fs::write(h.control().join("precheck.exit"), "1").unwrap();
    h.fire("ab-1", "staging", "api-0").await;
    h.settle().await;
    let aborted = h
        .wait_incident("ab-1", |i| {
            matches!(
                i.fix.as_ref().and_then(|f| f.outcome.as_ref()),
                Some(FixOutcome::Aborted(_))
            )
        })
        .await;
    assert_eq!(h.runs("execute"), 0);
    let (status, body) = h.confirm(&aborted.id, json!({"verdict": "correct"})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("did not execute (aborted)"),
        "{body}"
    );
    assert_eq!(kinds_of(&h, &aborted.id).await, ["aborted"]);
    assert_eq!(
        OutcomeSummary::of(&outcomes(&h).await).samples,
        0,
        "an abort is not a sample"
    );
    let g = gate(&h).await;
    assert_eq!(g["samples"], 0, "{g}");
    assert_eq!(
        h.state
            .rate_count("staging", h.clock.now(), Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "the aborted fix gave its rate slot back"
    );

    // The next fix in the same hour runs (the limit is one), executes, and can be confirmed.
    std::fs::remove_file(h.control().join("precheck.exit")).unwrap();
    h.resolve("ab-1", "staging", "api-0").await;
    h.fire("ab-2", "staging", "api-1").await;
    h.settle().await;
    let ran = h
        .wait_incident("ab-2", |i| i.state == IncidentState::AwaitingConfirmation)
        .await;
    assert_eq!(h.runs("execute"), 1);
    let (status, body) = h.confirm(&ran.id, json!({"verdict": "correct"})).await;
    assert_eq!(status, 200, "{body}");
    let g = gate(&h).await;
    assert_eq!(
        (g["samples"].as_u64(), g["successes"].as_u64()),
        (Some(1), Some(1)),
        "{g}"
    );

    // Already healthy (precheck exit 3) changes nothing either: not confirmable, not counted.
    h.clock.advance(chrono::Duration::hours(2));
    h.fire("ab-3", "staging", "api-2").await;
    h.settle().await;
    let healthy = h
        .wait_incident("ab-3", |i| {
            matches!(
                i.fix.as_ref().and_then(|f| f.outcome.as_ref()),
                Some(FixOutcome::AlreadyHealthy)
            )
        })
        .await;
    let (status, body) = h.confirm(&healthy.id, json!({"verdict": "correct"})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(kinds_of(&h, &healthy.id).await, ["already-healthy"]);
    assert_eq!(gate(&h).await["samples"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_alert_within_the_recurrence_window_turns_the_success_into_recurred_and_blocks_promotion() {
    let receiver = Receiver::start().await;
    let h = Harness::start(
        "outcome_recurrence",
        Options {
            promotion: outcomes_only(),
            notifications: receiver.config(),
            ..Options::default()
        },
    )
    .await;
    h.force_stage("staging", Stage::Silent).await;
    h.break_target();
    let first = h.fire("rc-1", "staging", "api-0").await;
    h.settle().await;
    h.wait_incident("rc-1", |i| i.state == IncidentState::AwaitingConfirmation)
        .await;
    h.resolve("rc-1", "staging", "api-0").await;
    h.wait_incident("rc-1", |i| i.state == IncidentState::Resolved)
        .await;
    let before = gate(&h).await;
    assert_eq!(before["met"], true, "one verified fix meets this gate: {before}");

    // 40 minutes later (past limits.flap_window, inside the hour) the same alert fires again.
    h.clock.advance(minutes(40));
    h.break_target();
    h.fire("rc-1", "staging", "api-0").await;
    let again = h
        .wait_incident("rc-1", |i| {
            i.timeline.iter().any(|t| t.kind == "recurrence") && i.fix.is_some()
        })
        .await;
    assert_ne!(again.id, first.id, "a new incident, diagnosed afresh");
    assert!(again.diagnosis.is_some());
    assert_eq!(
        kinds_of(&h, &first.id).await,
        ["recovered", "recurred", "succeeded"]
    );
    let old = h.state.incident(&first.id).await.unwrap().unwrap();
    let note = old.timeline.iter().find(|t| t.kind == "recurred").unwrap();
    assert!(
        note.message
            .starts_with("the same alert fired again 40m after the fix's incident resolved"),
        "{}",
        note.message
    );
    let n = receiver.wait_for("fix_recurred").await;
    assert!(n.to_string().contains(&first.id), "{n}");
    let after = gate(&h).await;
    assert_eq!(after["met"], false, "{after}");
    assert_eq!(
        (after["samples"].as_u64(), after["successes"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(
        after["unmet"][0]
            .as_str()
            .unwrap()
            .contains("success rate 0.00 %"),
        "{after}"
    );
    let (status, body) = h.promote("staging", harness::ADMIN_TOKEN, json!({})).await;
    assert_eq!(status, 409, "the recurrence blocks promotion: {body}");

    // Outside the window a new firing is a new problem: the second fix stays a success.
    h.settle().await;
    let second = h
        .wait_incident("rc-1", |i| i.state == IncidentState::AwaitingConfirmation)
        .await;
    h.resolve("rc-1", "staging", "api-0").await;
    h.wait_incident("rc-1", |i| i.state == IncidentState::Resolved)
        .await;
    h.clock.advance(chrono::Duration::hours(2));
    h.break_target();
    h.fire("rc-1", "staging", "api-0").await;
    h.settle().await;
    h.wait_incident("rc-1", |i| i.id != second.id && i.fix.is_some())
        .await;
    h.settle().await;
    assert_eq!(kinds_of(&h, &second.id).await, ["recovered", "succeeded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_per_target_breaker_stops_the_third_attempt_and_escalates() {
    let receiver = Receiver::start().await;
    let h = Harness::start(
        "outcome_breaker",
        Options {
            notifications: receiver.config(),
            ..Options::default()
        },
    )
    .await;
    h.force_stage("staging", Stage::Auto).await;
    // Three different alerts, one target (the remedy's params: target=api-7), 20 minutes apart.
    for n in 1..=2 {
        h.break_target();
        let name = format!("br-{n}");
        h.fire(&name, "staging", "api-7").await;
        h.settle().await;
        h.resolve_after_fix(&name, "staging", "api-7").await;
        h.clock.advance(minutes(20));
    }
    assert_eq!(h.runs("execute"), 2);
    h.break_target();
    let third = h.fire("br-3", "staging", "api-7").await;
    h.settle().await;
    assert_eq!(
        third.state,
        IncidentState::AwaitingApproval,
        "{:#?}",
        third.timeline
    );
    assert_eq!(third.fix.as_ref().unwrap().stage, Some(Stage::Manual));
    assert_eq!(h.runs("execute"), 2, "the third attempt does not run on its own");
    let note = third.timeline.iter().find(|t| t.kind == "breaker").unwrap();
    assert!(
        note.message.starts_with(&format!(
            "breaker open: {ACTION} recurred 2 times on {ACTION}:target=api-7 within autonomy.recurrence_window (autonomy.max_recurrences 2)"
        )),
        "{}",
        note.message
    );
    assert!(h.audit_actions().await.iter().any(|a| a == "breaker.open"));
    let n = receiver.wait_for("breaker_open").await;
    assert!(n.to_string().contains(&third.id), "{n}");
    // The two earlier fixes are recurrences, each once.
    let all = outcomes(&h).await;
    let recurred: Vec<&str> = all
        .iter()
        .filter(|o| o.kind == OutcomeKind::Recurred)
        .map(|o| o.incident.as_str())
        .collect();
    assert_eq!(recurred.len(), 2, "{all:?}");
    // A person can still approve it.
    let (status, body) = h
        .approve(
            third.fix.as_ref().unwrap().approval.as_ref().unwrap(),
            APPROVER_TOKEN,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    h.settle().await;
    assert_eq!(h.runs("execute"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_budget_refuses_past_its_cap_notifies_once_and_the_leader_starts_the_fix_when_it_frees() {
    let receiver = Receiver::start().await;
    let h = Harness::start(
        "outcome_budget",
        Options {
            notifications: receiver.config(),
            budget: Budget {
                fixes_per_hour: Some(2),
                per_service: None,
            },
            ..Options::default()
        },
    )
    .await;
    h.force_stage("staging", Stage::Auto).await;
    for n in 1..=2 {
        h.break_target();
        h.fire(&format!("bu-{n}"), "staging", &format!("api-{n}")).await;
        h.settle().await;
    }
    assert_eq!(h.runs("execute"), 2);
    h.break_target();
    let third = h.fire("bu-3", "staging", "api-3").await;
    assert_eq!(third.state, IncidentState::Open);
    let fix = third.fix.clone().unwrap();
    assert_eq!(fix.gate, Some(Gate::Budget));
    assert_eq!(
        fix.refused.as_deref(),
        Some(
            "budget: 2 fixes started across every action within the last 1h; autonomy.budget.fixes_per_hour is 2"
        )
    );
    let fourth = h.fire("bu-4", "staging", "api-4").await;
    assert_eq!(fourth.fix.unwrap().gate, Some(Gate::Budget));
    receiver.wait_for("budget_spent").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.kinds().iter().filter(|k| *k == "budget_spent").count(),
        1,
        "said once per window"
    );
    assert!(kinds_of(&h, &third.id).await.contains(&"refused"));
    assert_eq!(h.runs("execute"), 2);
    // An hour on, the leader decides both again, oldest first.
    h.clock.advance(minutes(61));
    let tick = h.autonomy.tick().await.unwrap();
    assert_eq!(tick.redecided, [third.id.clone(), fourth.id.clone()], "{tick:?}");
    h.settle().await;
    let started = h.wait_incident("bu-3", |i| i.state == IncidentState::Fixed).await;
    assert_eq!(started.id, third.id);
    h.settle().await;
    assert_eq!(h.runs("precheck"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fix_refused_by_the_kill_switch_starts_within_one_leader_interval_after_it_goes_off() {
    let interval = Duration::from_secs(2);
    let h = Harness::start(
        "outcome_killswitch",
        Options {
            run_leader: true,
            leader_interval: interval,
            ..Options::default()
        },
    )
    .await;
    h.force_stage("staging", Stage::Auto).await;
    assert_eq!(h.client_put_killswitch(true).await.0, 200);
    h.break_target();
    let refused = h.fire("kl-1", "staging", "api-0").await;
    assert_eq!(refused.fix.as_ref().unwrap().gate, Some(Gate::Killswitch));
    assert_eq!(kinds_of(&h, &refused.id).await, ["refused"]);
    tokio::time::sleep(interval * 2).await;
    assert_eq!(h.runs("precheck"), 0, "nothing starts while the switch is on");
    let off = Instant::now();
    assert_eq!(h.client_put_killswitch(false).await.0, 200);
    let fixed = h.wait_incident("kl-1", |i| i.state == IncidentState::Fixed).await;
    let took = off.elapsed();
    println!("started and verified {took:?} after the kill switch went off (leader interval {interval:?})");
    assert_eq!(fixed.id, refused.id);
    // One interval for the leader to wake, plus the fix's own run (four containers).
    assert!(took < interval + Duration::from_secs(15), "{took:?}");
    assert!(
        fixed.timeline.iter().any(|t| t.message
            == "the cause may have cleared: asking the gates again (refused by killswitch before)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fix_refused_because_the_docker_engine_did_not_answer_starts_once_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let h = Harness::start(
        "outcome_runner_back",
        Options {
            docker_socket: Some(socket.clone()),
            availability_recheck: Some(Duration::from_millis(500)),
            run_leader: true,
            leader_interval: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    h.force_stage("staging", Stage::Auto).await;
    h.break_target();
    let refused = h.fire("rb-1", "staging", "api-0").await;
    assert_eq!(refused.fix.as_ref().unwrap().gate, Some(Gate::Runner));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.runs("precheck"), 0);
    // The engine's socket appears (here: a link to the local engine's).
    std::os::unix::fs::symlink("/var/run/docker.sock", &socket).unwrap();
    let fixed = h.wait_incident("rb-1", |i| i.state == IncidentState::Fixed).await;
    assert_eq!(fixed.id, refused.id);
    assert_eq!(h.runs("execute"), 1);
    assert!(fixed.timeline.iter().any(
        |t| t.message == "the cause may have cleared: asking the gates again (refused by runner before)"
    ));
}

/// Four simulated weeks of a fix type whose alerts always come back half an hour after the fix:
/// every fix is `recurred`, and with promotions applied by policy it never leaves `manual`
/// (`tests/autonomy.rs` runs the healthy fix type to `auto` over the same four weeks).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fix_type_whose_alerts_recur_never_reaches_auto_over_four_weeks() {
    let h = Harness::start(
        "outcome_recurring_weeks",
        Options {
            promotion: PromotionPolicy {
                min_in_stage: Duration::from_secs(7 * 24 * 3600),
                window: Duration::from_secs(72 * 3600),
                min_success_rate: 0.991,
                min_samples: 3,
                auto_apply: true,
                require_lower_bound: false,
            },
            ..Options::default()
        },
    )
    .await;
    let start = h.clock.now();
    for day in 0..28 {
        h.clock.set(start + chrono::Duration::days(day));
        let name = format!("rw-{day}");
        h.break_target();
        let i = h.fire(&name, "staging", "api-0").await;
        assert_eq!(
            i.state,
            IncidentState::AwaitingApproval,
            "day {day}: {:#?}",
            i.timeline
        );
        let (status, body) = h
            .approve(i.fix.as_ref().unwrap().approval.as_ref().unwrap(), APPROVER_TOKEN)
            .await;
        assert_eq!(status, 200, "{body}");
        h.settle().await;
        h.resolve_after_fix(&name, "staging", "api-0").await;
        // Half an hour later it is back: the fix did not hold.
        h.clock.advance(minutes(30));
        h.break_target();
        h.fire(&name, "staging", "api-0").await;
        h.wait_incident(&name, |i| i.timeline.iter().any(|t| t.kind == "recurrence"))
            .await;
        h.resolve(&name, "staging", "api-0").await;
        let tick = h.autonomy.tick().await.unwrap();
        assert!(
            tick.proposed.is_empty() && tick.promoted.is_empty(),
            "day {day}: {tick:?}"
        );
    }
    let g = gate(&h).await;
    assert_eq!(g["successes"], 0, "{g}");
    assert!(g["samples"].as_u64().unwrap() >= 3, "{g}");
    assert_eq!(
        h.state.stage(ACTION, "staging").await.unwrap().unwrap().stage,
        Stage::Manual
    );
}

/// rootfix stopped after saving a `fixed` incident reopened by a repeat firing (the timeline
/// says `recurred`) and before recording the outcome: the redelivered alert counts as applied,
/// so nothing records it then. The leader's next sweep does, once, with its notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recurred_outcome_lost_to_a_stop_after_the_save_is_recorded_by_the_next_sweep() {
    let receiver = Receiver::start().await;
    let h = Harness::start(
        "outcome_lost_recurrence",
        Options {
            notifications: receiver.config(),
            ..Options::default()
        },
    )
    .await;
    h.force_stage("staging", Stage::Auto).await;
    h.break_target();
    h.fire("lost-1", "staging", "api-3").await;
    h.settle().await;
    let fixed = h
        .wait_incident("lost-1", |i| i.state == IncidentState::Fixed)
        .await;
    // What the handler saves for a repeat firing of a fixed incident, without what follows it.
    let mut saved = fixed.clone();
    saved.state = IncidentState::Open;
    saved.note(
        h.clock.now(),
        "recurred",
        "the alert fired again before it resolved: the fix did not hold (outcome recurred)",
    );
    assert_eq!(
        h.state.save_incident(&mut saved).await.unwrap(),
        rootfix::state::SaveOutcome::Saved
    );
    assert_eq!(kinds_of(&h, &fixed.id).await, ["succeeded"]);

    let tick = h.autonomy.tick().await.unwrap();
    assert_eq!(
        tick.recurrences_repaired,
        std::slice::from_ref(&fixed.id),
        "{tick:?}"
    );
    assert_eq!(kinds_of(&h, &fixed.id).await, ["recurred", "succeeded"]);
    let n = receiver.wait_for("fix_recurred").await;
    assert!(n.to_string().contains(&fixed.id), "{n}");
    let again = h.autonomy.tick().await.unwrap();
    assert!(again.recurrences_repaired.is_empty(), "{again:?}");
    assert_eq!(kinds_of(&h, &fixed.id).await, ["recurred", "succeeded"]);
}
