//! Each gate before a fix refuses with its reason, in order (kill switch, scope, stage, rate
//! limit, concurrency, dry-run); approvals expire, are cancelled and rejected; a failed rollback
//! demotes; `auto` closes the loop with an Alertmanager silence (the real Alertmanager).

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

use std::time::Duration;

use harness::{ACTION, APPROVER_TOKEN, Harness, Options, Receiver, VIEWER_TOKEN, scope};
use rootfix::autonomy::gate::Gate;
use rootfix::autonomy::stage::Stage;
use rootfix::fix::journal::FixOutcome;
use rootfix::incident::{Incident, IncidentState};
use serde_json::json;

/// Promotes the test action in `scope` to `stage` (forced: the gate is not the point here).
async fn force_stage(h: &Harness, scope: &str, stage: Stage) {
    h.force_stage(scope, stage).await;
}

fn refused(i: &Incident) -> String {
    i.fix.as_ref().and_then(|f| f.refused.clone()).unwrap_or_default()
}

async fn gate_refusals(h: &Harness) -> Vec<String> {
    h.state
        .audit(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "gate.refused")
        .map(|e| e.detail)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kill_switch_refuses_first_even_an_approved_fix() {
    let h = Harness::start("gate_killswitch", Options::default()).await;
    // Pending approval first, then the kill switch goes on, then the approval comes in.
    let i = h.fire("ks-1", "staging", "api-0").await;
    let approval = i.fix.as_ref().unwrap().approval.clone().unwrap();
    let (status, _) = h.client_put_killswitch(true).await;
    assert_eq!(status, 200);
    let (status, body) = h.approve(&approval, APPROVER_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fix"]["kind"], "refused");
    assert_eq!(body["fix"]["gate"], "killswitch");
    // A new alert is refused before anything else is looked at (out of scope too).
    let j = h.fire("ks-2", "nowhere", "api-1").await;
    assert!(refused(&j).starts_with("killswitch:"), "{}", refused(&j));
    assert_eq!(j.state, IncidentState::Open);
    h.settle().await;
    assert_eq!(h.runs("precheck"), 0, "nothing ran");
    let refusals = gate_refusals(&h).await;
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|r| r.contains("gate killswitch: the kill switch is on (by admin: test)")),
        "{refusals:?}"
    ); // With the kill switch off, the next firing asks the gates again; a refusal that time cannot
    // change (the scope) is not asked again.
    assert_eq!(h.client_put_killswitch(false).await.0, 200);
    h.fire("ks-2", "nowhere", "api-1").await;
    let again = h
        .wait_incident("ks-2", |i| {
            i.fix.as_ref().and_then(|f| f.gate) == Some(Gate::Scope)
        })
        .await;
    assert_eq!(again.firings, 2);
    assert!(
        again
            .timeline
            .iter()
            .any(|t| t.message == "asking the gates again (refused by killswitch before)")
    );
    h.fire("ks-2", "nowhere", "api-1").await;
    let third = h.wait_incident("ks-2", |i| i.firings == 3).await;
    assert_eq!(third.fix.unwrap().gate, Some(Gate::Scope));
    assert_eq!(
        gate_refusals(&h).await.len(),
        3,
        "killswitch twice, then scope once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_outside_every_scope_is_never_fixed() {
    let h = Harness::start("gate_scope", Options::default()).await;
    let i = h.fire("scope-1", "dev", "api-0").await;
    assert_eq!(i.state, IncidentState::Open);
    assert_eq!(refused(&i), "scope: the target is outside every scope");
    assert!(
        i.fix.as_ref().unwrap().approval.is_none(),
        "no approval is asked for"
    );
    let (_, approvals) = h.get("/api/v1/approvals", VIEWER_TOKEN).await;
    assert_eq!(approvals["items"].as_array().unwrap().len(), 0);
    assert!(
        i.timeline
            .iter()
            .any(|t| t.kind == "gate" && t.message.contains("scope gate"))
    );
    assert_eq!(gate_refusals(&h).await.len(), 1);
    assert_eq!(h.runs("precheck"), 0);
    let metrics = reqwest::get(format!("{}/metrics", h.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rootfix_gate_refusals_total{gate=\"scope\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rate_limit_counts_fixes_per_scope_in_a_sliding_hour() {
    let options = Options {
        scopes: vec![scope("staging", "staging", Stage::Auto, 2, 4)],
        ..Options::default()
    };
    let h = Harness::start("gate_rate", options).await;
    force_stage(&h, "staging", Stage::Auto).await;
    for n in 0..2 {
        h.break_target();
        h.fire(&format!("rate-{n}"), "staging", "api-0").await;
        h.settle().await;
        h.clock.advance(chrono::Duration::minutes(20));
    }
    h.break_target();
    let third = h.fire("rate-2", "staging", "api-0").await;
    assert_eq!(third.state, IncidentState::Open);
    assert_eq!(
        refused(&third),
        "rate-limit: 2 fixes started in scope staging within the last 1h; the limit is 2"
    );
    assert_eq!(h.runs("execute"), 2);
    // At 61 minutes the first start has left the window.
    h.clock.advance(chrono::Duration::minutes(21));
    let fourth = h.fire("rate-3", "staging", "api-0").await;
    assert_eq!(refused(&fourth), "");
    h.settle().await;
    assert_eq!(h.runs("execute"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fixes_per_scope_are_capped() {
    let options = Options {
        scopes: vec![scope("staging", "staging", Stage::Auto, 100, 1)],
        ..Options::default()
    };
    let h = Harness::start("gate_concurrency", options).await;
    force_stage(&h, "staging", Stage::Silent).await;
    std::fs::write(h.control().join("execute.sleep"), "2").unwrap();
    let first = h.fire("conc-1", "staging", "api-0").await;
    assert_eq!(first.state, IncidentState::Fixing);
    // Another target (its own lock) in the same scope while the first runs.
    let second = h.fire("conc-2", "staging", "api-1").await;
    assert_eq!(
        refused(&second),
        "concurrency: 1 fixes are running in scope staging; the limit is 1"
    );
    h.settle().await;
    // The slot is free again once the first finished.
    std::fs::remove_file(h.control().join("execute.sleep")).unwrap();
    h.break_target();
    let third = h.fire("conc-3", "staging", "api-2").await;
    assert_eq!(refused(&third), "");
    h.settle().await;
    let refusals = gate_refusals(&h).await;
    assert_eq!(refusals.len(), 1);
    assert!(refusals[0].contains("gate concurrency"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dry_run_runs_everything_but_execute_and_rollback() {
    let options = Options {
        dry_run: true,
        ..Options::default()
    };
    let h = Harness::start("gate_dry_run", options).await;
    force_stage(&h, "staging", Stage::Auto).await;
    h.fire("dry-1", "staging", "api-0").await;
    h.settle().await;
    let i = h
        .wait_incident("dry-1", |i| i.state != IncidentState::Fixing)
        .await;
    assert_eq!(i.state, IncidentState::Open, "a dry run closes nothing");
    let fix = i.fix.unwrap();
    assert!(fix.dry_run);
    match fix.outcome {
        Some(FixOutcome::DryRun(note)) => {
            assert!(note.contains("execute skipped"), "{note}");
            assert!(note.contains("verify container: "), "{note}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.runs("precheck"), 1);
    assert_eq!(h.runs("verify"), 1);
    assert_eq!(h.runs("execute"), 0);
    assert_eq!(h.runs("rollback"), 0);
    assert_eq!(h.target(), "broken", "nothing changed");
    assert!(h.audit_actions().await.iter().any(|a| a == "gate.dry-run"));
    // A dry run is an outcome of its own kind, not a sample: the gate's samples stay empty.
    let outcomes = h
        .state
        .outcomes(ACTION, "staging", harness::start_time())
        .await
        .unwrap();
    let kinds: Vec<&str> = outcomes.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds, ["dry-run"]);
    assert_eq!(
        rootfix::autonomy::outcome::OutcomeSummary::of(&outcomes).samples,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_approval_escalates_and_cannot_be_approved() {
    let receiver = Receiver::start().await;
    let options = Options {
        approval_ttl: Duration::from_secs(30 * 60),
        notifications: receiver.config(),
        ..Options::default()
    };
    let h = Harness::start("approval_expiry", options).await;
    let i = h.fire("exp-1", "staging", "api-0").await;
    let approval = i.fix.as_ref().unwrap().approval.clone().unwrap();
    receiver.wait_for("approval_requested").await;
    h.clock.advance(chrono::Duration::minutes(31));
    let (status, body) = h.approve(&approval, APPROVER_TOKEN).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("expired"), "{body}");
    let escalation = receiver.wait_for("approval_expired").await;
    assert_eq!(escalation["urgent"], true);
    assert_eq!(escalation["incident"], i.id.as_str());
    // The leader's job expires the ones nobody touches.
    let j = h.fire("exp-2", "staging", "api-1").await;
    h.clock.advance(chrono::Duration::minutes(31));
    let tick = h.autonomy.tick().await.unwrap();
    assert_eq!(tick.expired, [j.fix.unwrap().approval.unwrap()]);
    let j = h.wait_incident("exp-2", |_| true).await;
    assert_eq!(j.state, IncidentState::Open);
    assert!(
        j.timeline
            .iter()
            .any(|t| t.message.contains("expired: escalated"))
    );
    assert_eq!(h.runs("precheck"), 0);
    let audit = h.audit_actions().await;
    assert_eq!(audit.iter().filter(|a| *a == "approval.expired").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resolved_alert_cancels_its_approval_and_rejection_needs_a_reason() {
    let h = Harness::start("approval_cancel", Options::default()).await;
    let i = h.fire("cancel-1", "staging", "api-0").await;
    let approval = i.fix.as_ref().unwrap().approval.clone().unwrap();
    h.resolve("cancel-1", "staging", "api-0").await;
    h.wait_incident("cancel-1", |i| i.state == IncidentState::Resolved)
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, shown) = h
            .get(&format!("/api/v1/approvals/{approval}"), VIEWER_TOKEN)
            .await;
        if shown["state"] == "cancelled" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{shown}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = h.approve(&approval, APPROVER_TOKEN).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (409, format!("approval {approval} is cancelled").as_str())
    );

    let j = h.fire("reject-1", "staging", "api-1").await;
    let approval = j.fix.as_ref().unwrap().approval.clone().unwrap();
    let path = format!("/api/v1/approvals/{approval}/reject");
    let (status, body) = h.post(&path, APPROVER_TOKEN, json!({"reason": "  "})).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "a reason is required to reject")
    );
    let (status, body) = h.post(&path, VIEWER_TOKEN, json!({"reason": "no"})).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = h
        .post(&path, APPROVER_TOKEN, json!({"reason": "wrong pod"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approval"]["state"], "rejected");
    assert_eq!(body["approval"]["decided_by"], "approver");
    assert_eq!(body["approval"]["reason"], "wrong pod");
    let (status, _) = h.approve(&approval, APPROVER_TOKEN).await;
    assert_eq!(status, 409);
    let j = h.wait_incident("reject-1", |_| true).await;
    assert_eq!(j.state, IncidentState::Open);
    assert_eq!(refused(&j), "rejected by approver: wrong pod");
    assert_eq!(h.runs("precheck"), 0);
    let (_, all) = h.get("/api/v1/approvals?state=all", VIEWER_TOKEN).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let (_, pending) = h.get("/api/v1/approvals", VIEWER_TOKEN).await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_rollback_demotes_to_manual_and_pages() {
    let receiver = Receiver::start().await;
    let options = Options {
        notifications: receiver.config(),
        ..Options::default()
    };
    let h = Harness::start("rollback_failed", options).await;
    force_stage(&h, "staging", Stage::Auto).await;
    std::fs::write(h.control().join("execute.exit"), "1").unwrap();
    std::fs::write(h.control().join("rollback.exit"), "1").unwrap();
    h.fire("rbf-1", "staging", "api-0").await;
    h.settle().await;
    let i = h
        .wait_incident("rbf-1", |i| i.state != IncidentState::Fixing)
        .await;
    assert_eq!(i.state, IncidentState::Open);
    assert!(matches!(
        i.fix.unwrap().outcome,
        Some(FixOutcome::RollbackFailed(_))
    ));
    assert_eq!(
        h.state.stage(ACTION, "staging").await.unwrap().unwrap().stage,
        Stage::Manual
    );
    let page = receiver.wait_for("rollback_failed").await;
    assert_eq!(page["urgent"], true);
    let history = h.state.stage_history(ACTION, "staging").await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.from, last.to, last.by.as_str()),
        (Some(Stage::Auto), Stage::Manual, "rootfix")
    );
    assert!(last.reason.contains("rollback failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_closes_the_incident_and_silences_the_alert_in_alertmanager() {
    let am = support::alertmanager::Alertmanager::start().await;
    let options = Options {
        silences: Some(rootfix::silence::SilenceConfig {
            alertmanager_url: am.url.parse().unwrap(),
            cooldown: Duration::from_secs(30 * 60),
            matchers_from: vec!["alertname".into(), "service".into(), "instance".into()],
            timeout: Duration::from_secs(5),
        }),
        ..Options::default()
    };
    let h = Harness::start("auto_silence", options).await;
    // Alertmanager refuses silences that end in the past: run this one on today's clock.
    h.clock.set(chrono::Utc::now());
    force_stage(&h, "staging", Stage::Auto).await;
    h.fire("silence-1", "staging", "api-7").await;
    h.settle().await;
    // The cooldown starts when Alertmanager reports the alert resolved after the verified fix.
    let fixed = h
        .wait_incident("silence-1", |i| i.state == IncidentState::Fixed)
        .await;
    assert!(
        fixed.fix.as_ref().is_some_and(|f| f.silence.is_none()),
        "{:#?}",
        fixed.timeline
    );
    h.resolve("silence-1", "staging", "api-7").await;
    let i = h
        .wait_incident("silence-1", |i| {
            i.state == IncidentState::Resolved && i.fix.as_ref().is_some_and(|f| f.silence.is_some())
        })
        .await;
    let id = i.fix.unwrap().silence.unwrap();
    let silence: serde_json::Value = reqwest::get(am.api(&format!("silence/{id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(silence["status"]["state"], "active", "{silence}");
    assert_eq!(silence["createdBy"], "rootfix");
    assert!(silence["comment"].as_str().unwrap().contains(&i.id));
    let mut matchers: Vec<(String, String)> = silence["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    matchers.sort();
    assert_eq!(
        matchers,
        [
            ("alertname".to_string(), "AutonomyTest".to_string()),
            ("instance".to_string(), "api-7".to_string()),
            ("service".to_string(), "order-api".to_string())
        ]
    );
    assert!(h.audit_actions().await.iter().any(|a| a == "silence.created"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_incident_waits_for_resolved_and_a_repeat_meanwhile_is_a_recurrence() {
    let h = Harness::start("fixed_state", Options::default()).await;
    force_stage(&h, "staging", Stage::Auto).await;
    h.break_target();
    h.fire("fixed-1", "staging", "api-0").await;
    h.settle().await;
    let fixed = h
        .wait_incident("fixed-1", |i| i.state == IncidentState::Fixed)
        .await;
    assert_eq!(h.runs("execute"), 1);
    assert!(matches!(
        fixed.fix.as_ref().and_then(|f| f.outcome.as_ref()),
        Some(FixOutcome::Succeeded)
    ));
    assert!(
        fixed.resolved_at.is_none(),
        "not resolved before Alertmanager says so"
    );

    // Alertmanager repeats the alert before any resolve: it is still firing after the verified
    // fix. The repeat joins the incident, reopens it, and the outcome becomes `recurred`; no
    // second fix runs on the same firing.
    h.post_firing_again("fixed-1", "staging", "api-0").await;
    let joined = h.wait_incident("fixed-1", |i| i.firings == 2).await;
    h.settle().await;
    assert_eq!(joined.state, IncidentState::Open, "{:#?}", joined.timeline);
    assert!(
        joined.timeline.iter().any(|t| t.kind == "recurred"),
        "{:#?}",
        joined.timeline
    );
    assert_eq!(h.runs("execute"), 1, "no fix runs twice on the same firing");
    // The handler records the outcome after it saved the joined incident: wait for it (a
    // missing record still fails, after 10 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let outcomes = loop {
        let outcomes = h.outcomes("staging").await;
        if outcomes.len() >= 2 || std::time::Instant::now() > deadline {
            break outcomes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut kinds: Vec<&str> = outcomes.iter().map(|o| o.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["recurred", "succeeded"]);
    let summary = rootfix::autonomy::outcome::OutcomeSummary::of(&outcomes);
    assert_eq!(
        (summary.samples, summary.successes),
        (1, 0),
        "the recurrence turns the success into a failure"
    );

    // Alertmanager's resolved closes it.
    h.resolve("fixed-1", "staging", "api-0").await;
    let done = h
        .wait_incident("fixed-1", |i| i.state == IncidentState::Resolved)
        .await;
    assert!(done.resolved_at.is_some());
}

/// A playbook whose remedy needs evidence (`upstream_failures > 10`) that builds up while the
/// alert fires.
fn evidence_playbook() -> String {
    format!(
        r#"apiVersion: rootfix/v1
kind: Playbook
metadata: {{name: autonomy-evidence}}
spec:
  match: ['alertname="AutonomyEvidence"']
  target: {{service: '{{{{ $labels.service }}}}'}}
  evidence:
    upstream_failures:
      prometheus: {{query: 'sum(increase(upstream_fails_total[30s]))'}}
  tree:
    id: evidence_root
    children:
      - id: evidence_failing
        when: evidence.upstream_failures > 10
        remedy:
          action: {ACTION}
          params: {{target: '{{{{ $labels.instance }}}}'}}
          confidence:
            threshold: 0.5
            signals:
              - {{when: evidence.upstream_failures > 10, weight: 1.0, description: failures}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_walks_again_when_the_first_diagnosis_reached_no_remedy() {
    let h = Harness::start(
        "rewalk",
        Options {
            playbooks: vec![evidence_playbook()],
            ..Options::default()
        },
    )
    .await;
    // The alert fires before the evidence shows the failures: no remedy, nothing decided.
    h.evidence.set_signal("upstream_failures", json!(3));
    h.post_alert_named("AutonomyEvidence", "firing", "rewalk-1", "staging", "api-0")
        .await;
    let first = h
        .wait_incident("rewalk-1", |i| {
            i.state == IncidentState::Open && i.diagnosis.is_some()
        })
        .await;
    assert!(first.fix.is_none(), "{:#?}", first.timeline);
    assert!(
        first
            .timeline
            .iter()
            .any(|t| t.kind == "diagnosed" && t.message.ends_with("no remedy reached its threshold")),
        "{:#?}",
        first.timeline
    );
    // The evidence builds up; Alertmanager's repeat walks the tree again and the fix is offered.
    h.evidence.set_signal("upstream_failures", json!(25));
    h.post_alert_named("AutonomyEvidence", "firing", "rewalk-1", "staging", "api-0")
        .await;
    let second = h
        .wait_incident("rewalk-1", |i| i.state == IncidentState::AwaitingApproval)
        .await;
    assert_eq!(second.id, first.id, "the repeat joins the same incident");
    assert_eq!(second.firings, 2);
    assert_eq!(second.fix.as_ref().map(|f| f.action.as_str()), Some(ACTION));
    let diagnosed = second.timeline.iter().filter(|t| t.kind == "diagnosed").count();
    assert_eq!(diagnosed, 2, "{:#?}", second.timeline);
    assert!(
        second
            .timeline
            .iter()
            .any(|t| t.message == "the last diagnosis reached no remedy: walking the tree again")
    );
    // A further repeat walks nothing: a remedy was decided.
    h.post_alert_named("AutonomyEvidence", "firing", "rewalk-1", "staging", "api-0")
        .await;
    let third = h.wait_incident("rewalk-1", |i| i.firings == 3).await;
    assert_eq!(third.timeline.iter().filter(|t| t.kind == "diagnosed").count(), 2);
}
