//! Staged autonomy end to end, in one process: real Redis, the real Docker engine running the
//! test action, the event loop and the HTTP API; a manual clock moves across hours and weeks.

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

use std::time::Duration;

use harness::{ACTION, ADMIN_TOKEN, APPROVER_TOKEN, Harness, Options, Receiver, VIEWER_TOKEN, scope};
use rootfix::autonomy::clock::Clock;
use rootfix::autonomy::stage::Stage;
use rootfix::incident::IncidentState;
use serde_json::{Value, json};

fn hours(h: i64) -> chrono::Duration {
    chrono::Duration::hours(h)
}

async fn approve(h: &Harness, approval: &str) -> Value {
    let (status, body) = h.approve(approval, APPROVER_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn stage_of(h: &Harness) -> Value {
    let (status, body) = h
        .get(&format!("/api/v1/stages/{ACTION}/staging"), VIEWER_TOKEN)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manual_fix_waits_for_approval_and_runs_once_approved() {
    let h = Harness::start("approve_smoke", Options::default()).await;
    let incident = h.fire("smoke", "staging", "api-0").await;
    assert_eq!(
        incident.state,
        IncidentState::AwaitingApproval,
        "{:#?}",
        incident.timeline
    );
    let approval = incident
        .fix
        .as_ref()
        .and_then(|f| f.approval.clone())
        .expect("approval id");
    assert_eq!(h.runs("execute"), 0, "nothing runs before the approval");
    let (status, shown) = h
        .get(&format!("/api/v1/approvals/{approval}"), VIEWER_TOKEN)
        .await;
    assert_eq!(status, 200);
    assert_eq!(shown["state"], "pending");
    assert_eq!(shown["params"]["target"], "api-0");
    assert!(
        shown["summary"].as_str().unwrap().contains("autonomy_needs_fix"),
        "{shown}"
    );
    assert!(shown["confidence"].as_f64().unwrap() >= 0.5);
    let body = approve(&h, &approval).await;
    assert_eq!(body["fix"]["kind"], "started", "{body}");
    assert_eq!(body["approval"]["decided_by"], "approver");
    h.settle().await;
    let done = h.resolve_after_fix("smoke", "staging", "api-0").await;
    assert_eq!(h.runs("execute"), 1);
    assert_eq!(h.target(), "healthy");
    assert!(matches!(
        done.fix.unwrap().outcome,
        Some(rootfix::fix::journal::FixOutcome::Succeeded)
    ));
    // Approving twice is a no-op: nothing runs again.
    let again = approve(&h, &approval).await;
    assert_eq!(again["already_approved"], true);
    assert!(again["fix"].is_null());
    h.settle().await;
    assert_eq!(h.runs("execute"), 1);
}

/// The acceptance test: one fix type through four simulated weeks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_fix_type_earns_auto_over_four_weeks_and_a_p0_misfix_demotes_it() {
    let receiver = Receiver::start().await;
    let h = Harness::start(
        "four_weeks",
        Options {
            notifications: receiver.config(),
            ..Options::default()
        },
    )
    .await;
    let start = h.clock.now();
    let mut n = 0;

    // Week 1, manual: every fix is approved through the API; one every 12 hours.
    for _ in 0..14 {
        n += 1;
        h.break_target();
        let i = h.fire(&format!("w1-{n}"), "staging", "api-0").await;
        assert_eq!(i.state, IncidentState::AwaitingApproval, "{:#?}", i.timeline);
        approve(&h, i.fix.as_ref().unwrap().approval.as_ref().unwrap()).await;
        h.settle().await;
        h.resolve_after_fix(&format!("w1-{n}"), "staging", "api-0").await;
        h.clock.advance(hours(12));
    }
    // 6 days and 12 hours in: the gate wants 7 days.
    h.clock.set(start + hours(6 * 24 + 12));
    let tick = h.autonomy.tick().await.unwrap();
    assert!(tick.proposed.is_empty(), "{tick:?}");
    let gate = &stage_of(&h).await["stage"]["gate"];
    assert_eq!(gate["met"], false);
    assert!(gate["unmet"][0].as_str().unwrap().contains("in stage"), "{gate}");
    // An admin cannot promote while the gate is not met.
    let (status, body) = h.promote("staging", ADMIN_TOKEN, json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("gate is not met"),
        "{body}"
    );

    h.clock.set(start + hours(7 * 24 + 1));
    let tick = h.autonomy.tick().await.unwrap();
    assert_eq!(tick.proposed, [format!("{ACTION}/staging → silent")]);
    let shown = stage_of(&h).await;
    assert_eq!(shown["stage"]["gate"]["met"], true, "{shown}");
    assert_eq!(shown["stage"]["proposal"]["to"], "silent");
    assert_eq!(shown["stage"]["gate"]["samples"], 5, "fixes of the trailing 72 h");
    // The leader proposes once, not every tick.
    assert!(h.autonomy.tick().await.unwrap().proposed.is_empty());
    let (status, body) = h
        .promote(
            "staging",
            ADMIN_TOKEN,
            json!({"reason": "week 1: every approved fix verified"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stage"]["stage"], "silent");

    // Week 2, silent: fixes run at once; each incident waits for a confirmation.
    let week2 = h.clock.now();
    for k in 0..14 {
        n += 1;
        h.break_target();
        let name = format!("w2-{n}");
        let i = h.fire(&name, "staging", "api-0").await;
        assert!(
            i.fix.as_ref().unwrap().approval.is_none(),
            "silent needs no approval"
        );
        h.settle().await;
        let i = h
            .wait_incident(&name, |i| i.state == IncidentState::AwaitingConfirmation)
            .await;
        // One P2 misfix early in the week: it counts against the rate but does not demote, and it
        // leaves the 72 h window before the gate is checked.
        let verdict = if k == 1 {
            json!({"verdict": "misfix", "severity": "P2", "comment": "restarted the wrong pod"})
        } else {
            json!({"verdict": "correct"})
        };
        let (status, body) = h.confirm(&i.id, verdict).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "resolved");
        h.clock.advance(hours(12));
    }
    assert_eq!(
        stage_of(&h).await["stage"]["stage"],
        "silent",
        "a P2 misfix does not demote"
    );
    h.clock.set(week2 + hours(7 * 24 + 1));
    let tick = h.autonomy.tick().await.unwrap();
    assert_eq!(tick.proposed, [format!("{ACTION}/staging → auto")]);
    let (status, body) = h.promote("staging", ADMIN_TOKEN, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stage"]["stage"], "auto");

    // Weeks 3 and 4, auto: the loop closes by itself.
    let mut last = String::new();
    for _ in 0..14 {
        n += 1;
        h.break_target();
        last = format!("w34-{n}");
        h.fire(&last, "staging", "api-0").await;
        h.settle().await;
        let i = h.resolve_after_fix(&last, "staging", "api-0").await;
        assert!(
            i.timeline.iter().any(|t| t.message.contains("incident closed")),
            "{:#?}",
            i.timeline
        );
        h.clock.advance(hours(24));
    }
    assert_eq!(h.target(), "healthy");

    // A P0 misfix reported on the last auto fix: back to manual at once.
    let last_incident = h.wait_incident(&last, |_| true).await;
    let (status, body) = h
        .confirm(
            &last_incident.id,
            json!({"verdict": "misfix", "severity": "P0", "comment": "took the checkout down"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let shown = stage_of(&h).await;
    assert_eq!(shown["stage"]["stage"], "manual");
    // And the next alert waits for an approval again.
    h.break_target();
    let i = h.fire("after-p0", "staging", "api-0").await;
    assert_eq!(i.state, IncidentState::AwaitingApproval);

    // The stage history shows every step, with who and why.
    let history: Vec<(Value, Value, Value)> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["from"].clone(), c["to"].clone(), c["by"].clone()))
        .collect();
    assert_eq!(
        history,
        [
            (Value::Null, json!("manual"), json!("rootfix")),
            (json!("manual"), json!("silent"), json!("admin")),
            (json!("silent"), json!("auto"), json!("admin")),
            (json!("auto"), json!("manual"), json!("rootfix")),
        ]
    );
    assert!(
        shown["history"][3]["reason"]
            .as_str()
            .unwrap()
            .contains("P0 misfix")
    );

    // The audit shows every step too.
    let audit = h.audit_actions().await;
    let count = |a: &str| audit.iter().filter(|x| *x == a).count();
    assert_eq!(count("stage.created"), 1);
    assert_eq!(count("approval.requested"), 15);
    assert_eq!(count("approval.approved"), 14);
    assert_eq!(count("fix.started"), 42);
    assert_eq!(count("fix.finished"), 42);
    assert_eq!(
        count("fix.phase"),
        42 * 3,
        "precheck, execute and verify of every fix"
    );
    assert_eq!(count("stage.proposed"), 2);
    assert_eq!(count("stage.promoted"), 2);
    assert_eq!(count("fix.confirmed"), 15);
    assert_eq!(count("stage.demoted"), 1);
    let (status, api_audit) = h.get("/api/v1/audit?limit=5", VIEWER_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(api_audit["items"][0]["action"], "approval.requested");
    assert_eq!(api_audit["items"][1]["action"], "stage.demoted");
    assert_eq!(api_audit["items"][1]["identity"], "rootfix");

    // Notifications went out for each kind of step.
    receiver.wait_for("stage_changed").await;
    let kinds = receiver.kinds();
    for kind in ["approval_requested", "fix_succeeded", "stage_changed"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    let demotion = receiver.bodies().into_iter().find(|b| {
        b["kind"] == "stage_changed" && b["title"].as_str().unwrap_or_default().contains("auto → manual")
    });
    assert!(demotion.is_some(), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_policy_can_apply_promotions_itself() {
    let mut options = Options::default();
    options.promotion.auto_apply = true;
    options.promotion.min_samples = 2;
    options.promotion.min_in_stage = Duration::from_secs(24 * 3600);
    let h = Harness::start("auto_apply", options).await;
    for n in 0..3 {
        h.break_target();
        let i = h.fire(&format!("aa-{n}"), "staging", "api-0").await;
        approve(&h, i.fix.as_ref().unwrap().approval.as_ref().unwrap()).await;
        h.settle().await;
        h.clock.advance(hours(12));
    }
    let tick = h.autonomy.tick().await.unwrap();
    assert_eq!(tick.promoted, [format!("{ACTION}/staging → silent")]);
    assert!(tick.proposed.is_empty());
    let history = &stage_of(&h).await["history"];
    assert_eq!(history[1]["by"], "rootfix");
    assert!(
        history[1]["reason"]
            .as_str()
            .unwrap()
            .contains("policy applies it")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scope_caps_the_highest_stage() {
    let mut options = Options {
        scopes: vec![scope("prod-core", "prod", Stage::Silent, 100, 2)],
        ..Options::default()
    };
    options.promotion.min_samples = 1;
    options.promotion.min_in_stage = Duration::from_secs(3600);
    let h = Harness::start("scope_cap", options).await;
    let i = h.fire("cap-1", "prod", "api-0").await;
    approve(&h, i.fix.as_ref().unwrap().approval.as_ref().unwrap()).await;
    h.settle().await;
    h.clock.advance(hours(2));
    let (status, body) = h.promote("prod-core", ADMIN_TOKEN, json!({})).await;
    assert_eq!(status, 200, "{body}");
    h.clock.advance(hours(2));
    h.break_target();
    let i = h.fire("cap-2", "prod", "api-0").await;
    assert!(i.fix.as_ref().unwrap().approval.is_none());
    h.settle().await;
    let i = h
        .wait_incident("cap-2", |i| i.state == IncidentState::AwaitingConfirmation)
        .await;
    h.confirm(&i.id, json!({"verdict": "correct"})).await;
    h.clock.advance(hours(2));
    // The gate is otherwise met, but the scope stops at silent: no proposal, and no promotion even
    // when forced.
    let tick = h.autonomy.tick().await.unwrap();
    assert!(tick.proposed.is_empty(), "{tick:?}");
    let (status, body) = h.promote("prod-core", ADMIN_TOKEN, json!({"force": true})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("caps the stage at silent"),
        "{body}"
    );
}
