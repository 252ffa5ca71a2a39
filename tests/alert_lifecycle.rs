//! Incidents follow the alert's real lifecycle (issue 21), with the real parts: two real
//! Alertmanagers clustered on loopback (the usual HA pair), both sending webhooks to rootfix,
//! alerts pushed to both as Prometheus does, real Redis, and the test action run by the real
//! Docker engine.
//!
//! - a late `resolved` (older than the firing the incident holds) is ignored: the incident and
//!   its pending approval stay;
//! - a late firing after the resolve (its `startsAt` not after the resolve) opens nothing and
//!   runs nothing; a `resolved` without an incident (and a firing already over) creates nothing;
//! - a fix whose alert keeps firing is `recurred`, not fixed (one execute), both when
//!   Alertmanager repeats it and when its `resolved` does not come within `resolve_wait`;
//! - an incident whose alert was not seen for `stale_after` closes as `stale` (unless the
//!   Alertmanager still holds it active);
//! - a flapping alert keeps one incident and one approval at a time, and above `max_flaps` a human
//!   approves instead of the `auto` stage;
//! - a 50-alert storm under a concurrency cap of 3 reaches every target once, oldest first, as
//!   slots free up (no repeat from Alertmanager needed).

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use harness::{ACTION, Harness, INGEST_TOKEN, Options, scope};
use rootfix::alert_rules::AlertRules;
use rootfix::autonomy::clock::Clock;
use rootfix::autonomy::stage::Stage;
use rootfix::fix::journal::FixOutcome;
use rootfix::incident::{Incident, IncidentState};
use rootfix::record::approval::ApprovalState;
use rootfix::record::journal::JournalEvent;
use serde_json::{Value, json};
use support::alertmanager::{Alertmanager, Cluster, QUIET_CONFIG};

/// How long a step may take to reach rootfix through the Alertmanagers (group wait, group
/// interval, the second peer's timeout) and be handled.
const STEP: Duration = Duration::from_secs(30);

/// The pair's config: one group per alert (`name`), sent to rootfix's webhook with the ingest
/// token, quickly (group_wait 500ms, group_interval 1s), repeated every `repeat`.
fn am_config(rootfix: &str, repeat: &str, send_resolved: bool) -> String {
    format!(
        "route:\n  receiver: rootfix\n  group_by: [alertname, name]\n  group_wait: 500ms\n  group_interval: 1s\n  repeat_interval: {repeat}\nreceivers:\n- name: rootfix\n  webhook_configs:\n  - url: {rootfix}/api/v1/alerts/alertmanager\n    send_resolved: {send_resolved}\n    http_config:\n      authorization: {{credentials: {INGEST_TOKEN}}}\n"
    )
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The labels of a test alert (`name` makes each one its own fingerprint and group).
fn labels(name: &str, instance: &str) -> Value {
    json!({
        "alertname": "AutonomyTest",
        "service": "order-api",
        "env": "staging",
        "instance": instance,
        "name": name,
    })
}

/// A firing alert as Prometheus posts it: `endsAt` a few evaluation intervals ahead.
fn firing(labels: &Value, starts: DateTime<Utc>) -> Value {
    json!({
        "labels": labels,
        "annotations": {"summary": "alert lifecycle test"},
        "startsAt": ts(starts),
        "endsAt": ts(Utc::now() + chrono::Duration::minutes(10)),
        "generatorURL": "http://127.0.0.1:9090/graph",
    })
}

/// A resolved alert as Prometheus posts it: the firing's `startsAt`, `endsAt` when it resolved.
fn resolved(labels: &Value, starts: DateTime<Utc>, ends: DateTime<Utc>) -> Value {
    json!({
        "labels": labels,
        "annotations": {"summary": "alert lifecycle test"},
        "startsAt": ts(starts),
        "endsAt": ts(ends),
        "generatorURL": "http://127.0.0.1:9090/graph",
    })
}

/// `POST /api/v2/alerts` on one Alertmanager.
async fn push(am: &Alertmanager, alerts: &[Value]) {
    let r = reqwest::Client::new()
        .post(am.api("alerts"))
        .json(&alerts)
        .send()
        .await
        .expect("post alerts");
    let status = r.status();
    assert!(
        status.is_success(),
        "Alertmanager refused the alerts: {status} {}",
        r.text().await.unwrap_or_default()
    );
}

/// Posts to both members, as Prometheus does in an HA pair.
async fn push_both(am: &Cluster, alerts: &[Value]) {
    for member in am.members() {
        push(member, alerts).await;
    }
}

/// The fingerprint an Alertmanager gives the active alert named `name` (`GET /api/v2/alerts`).
async fn am_fingerprint(am: &Alertmanager, name: &str) -> String {
    support::eventually(STEP, "the alert in Alertmanager", || async {
        let alerts: Value = reqwest::Client::new()
            .get(am.api("alerts"))
            .query(&[("filter", format!("name=\"{name}\""))])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        alerts[0]["fingerprint"].as_str().map(str::to_string)
    })
    .await
}

/// Whether an Alertmanager still holds the alert with `fingerprint` active.
async fn am_active(am: &Alertmanager, fingerprint: &str) -> bool {
    let alerts: Value = reqwest::get(am.api("alerts"))
        .await
        .expect("get alerts")
        .json()
        .await
        .expect("alerts json");
    alerts
        .as_array()
        .expect("array")
        .iter()
        .any(|a| a["fingerprint"] == fingerprint)
}

/// Every incident of `fingerprint`, oldest first.
async fn incidents_of(h: &Harness, fingerprint: &str) -> Vec<Incident> {
    let mut found: Vec<Incident> = h
        .state
        .list_incidents(&Default::default(), 0, 10_000)
        .await
        .expect("list incidents")
        .items
        .into_iter()
        .filter(|i| i.fingerprint == fingerprint)
        .collect();
    found.sort_by_key(|i| i.created_at);
    found
}

/// Every incident, oldest first.
async fn all_incidents(h: &Harness) -> Vec<Incident> {
    let mut all = h
        .state
        .list_incidents(&Default::default(), 0, 10_000)
        .await
        .expect("list incidents")
        .items;
    all.sort_by_key(|i| i.created_at);
    all
}

/// The newest incident of `fingerprint` once `done` holds.
async fn wait_for(h: &Harness, fingerprint: &str, what: &str, done: impl Fn(&Incident) -> bool) -> Incident {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let last = incidents_of(h, fingerprint).await.pop();
        if let Some(i) = &last
            && done(i)
        {
            return i.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; the incident: {last:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn has_note(i: &Incident, kind: &str) -> bool {
    i.timeline.iter().any(|t| t.kind == kind)
}

fn notes(i: &Incident, kind: &str) -> usize {
    i.timeline.iter().filter(|t| t.kind == kind).count()
}

fn kinds(i: &Incident) -> Vec<String> {
    i.timeline
        .iter()
        .map(|t| format!("{}: {}", t.kind, t.message))
        .collect()
}

/// `rootfix_alerts_ignored_total{reason}` from the harness's `/metrics`.
async fn ignored(h: &Harness, reason: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", h.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let prefix = format!("rootfix_alerts_ignored_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{text}"))
        .trim()
        .parse()
        .expect("a count")
}

/// The approvals of one incident.
async fn approvals_of(h: &Harness, incident: &str) -> Vec<rootfix::record::approval::Approval> {
    h.state
        .list_approvals(false, 1000)
        .await
        .expect("approvals")
        .into_iter()
        .filter(|a| a.incident == incident)
        .collect()
}

/// Promotes the test action in `scope` to `stage` (forced: the gate is not the point here).
async fn force_stage(h: &Harness, scope: &str, stage: Stage) {
    h.force_stage(scope, stage).await;
}

/// A webhook as an Alertmanager sends it, posted straight to rootfix (for what a real
/// Alertmanager does not produce on demand).
async fn post_webhook(h: &Harness, status: &str, alert: Value) {
    let body = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"AutonomyTest\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "rootfix",
        "groupLabels": {"alertname": "AutonomyTest"},
        "commonLabels": {"alertname": "AutonomyTest"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert],
    });
    let (code, reply) = h.post("/api/v1/alerts/alertmanager", INGEST_TOKEN, body).await;
    assert_eq!(code, 200, "{reply}");
}

/// `silences:` naming `am` (what lets the leader ask it whether a stale alert is still active).
fn silences(am: &Alertmanager) -> rootfix::silence::SilenceConfig {
    rootfix::silence::SilenceConfig {
        alertmanager_url: am.url.parse().expect("url"),
        cooldown: Duration::from_secs(30 * 60),
        matchers_from: vec!["alertname".into(), "service".into(), "instance".into()],
        timeout: Duration::from_secs(5),
    }
}

/// One fix of the storm: when its incident opened, when the fix started and finished (journal).
struct Span {
    opened: DateTime<Utc>,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
    id: String,
}

/// rootfix (the harness) with an Alertmanager pair sending to it.
struct Lab {
    h: Harness,
    am: Cluster,
}

impl Lab {
    /// Starts the pair first (so `options` can name it, e.g. for `silences:`), then rootfix on
    /// today's clock (Alertmanager's times are real), then points the pair's webhook at it.
    async fn start(
        test: &str,
        repeat: &str,
        send_resolved: bool,
        options: impl FnOnce(&Cluster) -> Options,
    ) -> Self {
        let am = Cluster::start(QUIET_CONFIG).await;
        let h = Harness::start(test, options(&am)).await;
        h.clock.set(Utc::now());
        am.reload(&am_config(&h.url, repeat, send_resolved)).await;
        Self { h, am }
    }

    /// Pushes a firing `name` (starting `starts`) to both members and returns its fingerprint,
    /// checked to be the same in both.
    async fn fire(&self, name: &str, instance: &str, starts: DateTime<Utc>) -> String {
        push_both(&self.am, &[firing(&labels(name, instance), starts)]).await;
        let a = am_fingerprint(&self.am.a, name).await;
        let b = am_fingerprint(&self.am.b, name).await;
        assert_eq!(a, b, "same labels, same fingerprint in both members");
        a
    }

    /// Pushes the resolve of `name` (its firing started `starts`, ends now) to both members.
    async fn resolve(&self, name: &str, instance: &str, starts: DateTime<Utc>) -> DateTime<Utc> {
        let ends = Utc::now();
        push_both(&self.am, &[resolved(&labels(name, instance), starts, ends)]).await;
        ends
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_resolved_from_the_peer_does_not_close_the_newer_firing_nor_cancel_its_approval() {
    // Staleness (1 min) asks Alertmanager A whether the alert is still active.
    let lab = Lab::start("late_resolved", "1h", true, |am| Options {
        alert_rules: AlertRules {
            stale_after: Duration::from_secs(60),
            ..AlertRules::default()
        },
        silences: Some(silences(&am.a)),
        ..Options::default()
    })
    .await;
    let h = &lab.h;
    // The pair starts at `manual`: the firing asks for an approval.
    let t0 = Utc::now();
    let fp = lab.fire("late-resolve", "api-1", t0).await;
    let inc = wait_for(h, &fp, "the approval request", |i| {
        i.state == IncidentState::AwaitingApproval
    })
    .await;
    let approval = inc
        .fix
        .as_ref()
        .and_then(|f| f.approval.clone())
        .expect("an approval");

    // B gets a late copy of the earlier episode's resolve (startsAt 5 min ago, endsAt 4 min ago:
    // Prometheus re-sends a resolved alert for a while, and this copy reached only B, late). B
    // holds the alert resolved with those times and sends the resolve itself.
    let late = resolved(
        &labels("late-resolve", "api-1"),
        t0 - chrono::Duration::minutes(5),
        t0 - chrono::Duration::minutes(4),
    );
    push(&lab.am.b, &[late]).await;
    let after = wait_for(h, &fp, "the late resolve, ignored", |i| has_note(i, "ignored")).await;
    assert_eq!(
        after.state,
        IncidentState::AwaitingApproval,
        "{:#?}",
        kinds(&after)
    );
    assert_eq!(after.id, inc.id);
    assert!(after.resolved_at.is_none());
    assert_eq!(after.alert.starts_at.timestamp_millis(), t0.timestamp_millis());
    let note = after.timeline.iter().find(|t| t.kind == "ignored").unwrap();
    assert!(note.message.contains("resolve"), "{}", note.message);
    let pending = h.state.approval(&approval).await.unwrap().unwrap();
    assert_eq!(
        pending.state,
        ApprovalState::Pending,
        "the approval is not cancelled"
    );
    assert_eq!(ignored(h, "stale-resolved").await, 1);

    // The episode that started at t0 really ends: Prometheus posts its resolve to both. The
    // pair's shared notification log already says this group was notified resolved (B's late
    // copy), so A normally deduplicates its own resolve away and rootfix hears nothing more: the
    // incident (and its pending approval) is then closed by staleness, once Alertmanager no
    // longer holds the alert active. Should A's resolve get through (the gossip slower than A's
    // flush), it closes the incident itself.
    lab.resolve("late-resolve", "api-1", t0).await;
    support::eventually(STEP, "the alert inactive in both members", || async {
        (!am_active(&lab.am.a, &fp).await && !am_active(&lab.am.b, &fp).await).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let now_state = h.state.incident(&inc.id).await.unwrap().unwrap().state;
    if now_state == IncidentState::Resolved {
        eprintln!("A's resolve got through");
    } else {
        assert_eq!(now_state, IncidentState::AwaitingApproval);
        eprintln!("A's resolve was deduplicated by the pair: closing by staleness");
        h.clock.set(Utc::now() + chrono::Duration::minutes(2));
        let report = h.autonomy.tick().await.unwrap();
        assert_eq!(report.stale, std::slice::from_ref(&inc.id), "{report:?}");
    }
    let closed = h.state.incident(&inc.id).await.unwrap().unwrap();
    assert!(!closed.state.is_open(), "{:#?}", kinds(&closed));
    let cancelled = h.state.approval(&approval).await.unwrap().unwrap();
    assert_eq!(cancelled.state, ApprovalState::Cancelled);
    assert_eq!(incidents_of(h, &fp).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_firing_after_the_resolve_opens_no_incident_and_runs_no_second_fix() {
    let lab = Lab::start("late_firing", "1h", true, |_| Options::default()).await;
    let h = &lab.h;
    force_stage(h, "staging", Stage::Auto).await;
    let t0 = Utc::now();
    let fp = lab.fire("late-firing", "api-2", t0).await;
    let fixed = wait_for(h, &fp, "the verified fix", |i| i.state == IncidentState::Fixed).await;
    h.settle().await;
    assert_eq!(h.runs("execute"), 1);

    lab.resolve("late-firing", "api-2", t0).await;
    let closed = wait_for(h, &fp, "the resolve", |i| i.state == IncidentState::Resolved).await;
    assert_eq!(closed.id, fixed.id);

    // Prometheus' last firing re-send, delayed on its way to B, reaches B after the resolve: B
    // holds the alert firing again with its old startsAt and sends that firing (A does not).
    push(&lab.am.b, &[firing(&labels("late-firing", "api-2"), t0)]).await;
    let after = wait_for(h, &fp, "the late firing, ignored", |i| has_note(i, "ignored")).await;
    h.settle().await;
    assert_eq!(after.id, closed.id, "noted on the last incident");
    assert_eq!(after.state, IncidentState::Resolved, "{:#?}", kinds(&after));
    let all = incidents_of(h, &fp).await;
    assert_eq!(all.len(), 1, "no phantom incident: {all:#?}");
    assert_eq!(h.runs("execute"), 1, "no second execute");
    assert_eq!(ignored(h, "stale-firing").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resolved_without_an_incident_and_a_firing_already_over_create_nothing() {
    let h = Harness::start("no_phantom", Options::default()).await;
    h.clock.set(Utc::now());
    let now = Utc::now();
    // Posted straight to rootfix: an Alertmanager sends no resolve for a group it never notified
    // as firing, so this is the resolve of a firing rootfix never received (it was not the
    // receiver then, or the firing's delivery was lost).
    post_webhook(
        &h,
        "resolved",
        json!({
            "status": "resolved",
            "labels": labels("never-fired", "api-3"),
            "annotations": {},
            "startsAt": ts(now - chrono::Duration::minutes(3)),
            "endsAt": ts(now - chrono::Duration::minutes(1)),
            "generatorURL": "",
            "fingerprint": harness::fingerprint("never-fired"),
        }),
    )
    .await;
    // And a firing whose endsAt is already past (Alertmanager zeroes endsAt while firing: a
    // firing with a past one is a stale copy from somewhere in between).
    post_webhook(
        &h,
        "firing",
        json!({
            "status": "firing",
            "labels": labels("already-over", "api-3"),
            "annotations": {},
            "startsAt": ts(now - chrono::Duration::minutes(3)),
            "endsAt": ts(now - chrono::Duration::minutes(1)),
            "generatorURL": "",
            "fingerprint": harness::fingerprint("already-over"),
        }),
    )
    .await;
    support::eventually(STEP, "both alerts handled", || async {
        (ignored(&h, "resolved-without-incident").await == 1 && ignored(&h, "firing-over").await == 1)
            .then_some(())
    })
    .await;
    let all = all_incidents(&h).await;
    assert!(all.is_empty(), "nothing opens: {all:#?}");
    let counts = h.state.incident_counts().await.unwrap();
    assert!(counts.values().all(|n| *n == 0), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fix_whose_alert_keeps_firing_is_recurred_with_one_execute() {
    // Alertmanager repeats the firing every 3 s: the alert keeps firing after the fix.
    let lab = Lab::start("recurred", "3s", true, |_| Options::default()).await;
    let h = &lab.h;
    force_stage(h, "staging", Stage::Auto).await;
    let since = h.clock.now() - chrono::Duration::days(1);
    let t0 = Utc::now();
    let fp = lab.fire("recurring", "api-4", t0).await;
    let fixed = wait_for(h, &fp, "the verified fix", |i| has_note(i, "fixed")).await;
    assert!(matches!(
        fixed.fix.as_ref().and_then(|f| f.outcome.as_ref()),
        Some(FixOutcome::Succeeded)
    ));
    // The next repeat after the verified fix (Alertmanager's own, nothing posted by the test).
    let reopened = wait_for(h, &fp, "the recurrence", |i| has_note(i, "recurred")).await;
    assert_eq!(reopened.id, fixed.id, "the repeat joins the incident");
    assert_eq!(reopened.state, IncidentState::Open, "{:#?}", kinds(&reopened));
    // One more repeat: still nothing runs again.
    let firings = reopened.firings;
    let later = wait_for(h, &fp, "another repeat", |i| i.firings > firings).await;
    h.settle().await;
    assert_eq!(later.state, IncidentState::Open, "{:#?}", kinds(&later));
    assert_eq!(notes(&later, "recurred"), 1, "{:#?}", kinds(&later));
    assert_eq!(h.runs("execute"), 1, "no fix runs twice on the same firing");
    // Both outcomes, the recurrence not before the success (on the harness's still clock both
    // carry the same time, so their stored order is not the point).
    let outcomes = h.state.outcomes(ACTION, "staging", since).await.unwrap();
    let mut kinds_of: Vec<&str> = outcomes.iter().map(|o| o.kind.as_str()).collect();
    kinds_of.sort_unstable();
    assert_eq!(kinds_of, ["recurred", "succeeded"]);
    let at = |kind: &str| outcomes.iter().find(|o| o.kind.as_str() == kind).unwrap().at;
    assert!(at("succeeded") <= at("recurred"));
    assert!(outcomes.iter().all(|o| o.incident == fixed.id));
    assert_eq!(incidents_of(h, &fp).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fixed_incident_without_resolve_within_resolve_wait_is_recurred_by_the_leader() {
    let lab = Lab::start("resolve_wait", "1h", true, |_| Options {
        resolve_wait: Duration::from_secs(10 * 60),
        ..Options::default()
    })
    .await;
    let h = &lab.h;
    force_stage(h, "staging", Stage::Auto).await;
    let since = h.clock.now() - chrono::Duration::days(1);
    let t0 = Utc::now();
    let fp = lab.fire("no-resolve", "api-5", t0).await;
    let fixed = wait_for(h, &fp, "the verified fix", |i| i.state == IncidentState::Fixed).await;
    h.settle().await;

    // Within resolve_wait: the leader leaves it fixed.
    h.clock.set(Utc::now() + chrono::Duration::minutes(9));
    let report = h.autonomy.tick().await.unwrap();
    assert!(report.recurred.is_empty(), "{report:?}");
    assert_eq!(
        h.state.incident(&fixed.id).await.unwrap().unwrap().state,
        IncidentState::Fixed
    );

    // Past it: the fix did not hold.
    h.clock.set(Utc::now() + chrono::Duration::minutes(11));
    let report = h.autonomy.tick().await.unwrap();
    assert_eq!(report.recurred, std::slice::from_ref(&fixed.id), "{report:?}");
    let reopened = h.state.incident(&fixed.id).await.unwrap().unwrap();
    assert_eq!(reopened.state, IncidentState::Open, "{:#?}", kinds(&reopened));
    assert!(has_note(&reopened, "recurred"));
    let again = h.autonomy.tick().await.unwrap();
    assert!(again.recurred.is_empty(), "recurred once: {again:?}");
    h.settle().await;
    assert_eq!(h.runs("execute"), 1);
    let outcomes = h.state.outcomes(ACTION, "staging", since).await.unwrap();
    assert_eq!(
        outcomes.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>(),
        ["succeeded", "recurred"]
    );

    // Alertmanager's resolve still closes it.
    lab.resolve("no-resolve", "api-5", t0).await;
    let closed = wait_for(h, &fp, "the resolve", |i| i.state == IncidentState::Resolved).await;
    assert_eq!(closed.id, fixed.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_incident_unseen_for_stale_after_closes_as_stale_once_alertmanager_no_longer_holds_it() {
    // A receiver with `send_resolved: false`: rootfix never hears the resolve.
    let lab = Lab::start("stale", "1h", false, |am| Options {
        alert_rules: AlertRules {
            stale_after: Duration::from_secs(60),
            ..AlertRules::default()
        },
        silences: Some(silences(&am.a)),
        ..Options::default()
    })
    .await;
    let h = &lab.h;
    let t0 = Utc::now();
    let fp = lab.fire("stale", "api-6", t0).await;
    let inc = wait_for(h, &fp, "the approval request", |i| {
        i.state == IncidentState::AwaitingApproval
    })
    .await;
    let approval = inc
        .fix
        .as_ref()
        .and_then(|f| f.approval.clone())
        .expect("an approval");

    // Not seen yet for stale_after: nothing.
    let report = h.autonomy.tick().await.unwrap();
    assert!(report.stale.is_empty(), "{report:?}");

    // Unseen for 2 min, but Alertmanager (API v2) still holds the alert active: kept open.
    h.clock.set(Utc::now() + chrono::Duration::minutes(2));
    let report = h.autonomy.tick().await.unwrap();
    assert!(report.stale.is_empty(), "{report:?}");
    let kept = h.state.incident(&inc.id).await.unwrap().unwrap();
    assert_eq!(kept.state, IncidentState::AwaitingApproval, "{:#?}", kinds(&kept));
    assert!(has_note(&kept, "seen"), "{:#?}", kinds(&kept));

    // The alert resolves in the Alertmanagers; its resolve never reaches rootfix.
    lab.resolve("stale", "api-6", t0).await;
    support::eventually(STEP, "the alert inactive in A", || async {
        (!am_active(&lab.am.a, &fp).await).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        h.state.incident(&inc.id).await.unwrap().unwrap().state,
        IncidentState::AwaitingApproval,
        "no resolve was sent"
    );

    // Unseen for stale_after again, and no longer active: closed as stale.
    h.clock.advance(chrono::Duration::minutes(2));
    let report = h.autonomy.tick().await.unwrap();
    assert_eq!(report.stale, std::slice::from_ref(&inc.id), "{report:?}");
    let stale = h.state.incident(&inc.id).await.unwrap().unwrap();
    assert_eq!(stale.state, IncidentState::Stale, "{:#?}", kinds(&stale));
    assert!(has_note(&stale, "stale"));
    assert_eq!(
        h.state.approval(&approval).await.unwrap().unwrap().state,
        ApprovalState::Cancelled
    );
    assert!(h.audit_actions().await.iter().any(|a| a == "incident.stale"));
    assert!(h.autonomy.tick().await.unwrap().stale.is_empty(), "closed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flapping_alert_keeps_one_incident_and_above_max_flaps_needs_an_approval_at_auto() {
    let lab = Lab::start("flapping", "1h", true, |_| Options {
        alert_rules: AlertRules {
            max_flaps: 2,
            stale_after: Duration::from_secs(10 * 365 * 24 * 3600),
            ..AlertRules::default()
        },
        ..Options::default()
    })
    .await;
    let h = &lab.h;
    let name = "flapping";
    // At `manual`: each firing wants an approval.
    let mut starts = Utc::now();
    let fp = lab.fire(name, "api-7", starts).await;
    let first = wait_for(h, &fp, "the approval request", |i| {
        i.state == IncidentState::AwaitingApproval
    })
    .await;
    for flap in 1..=3u32 {
        if flap == 3 {
            // Auto now: a flap above max_flaps (2) is still not fixed automatically.
            force_stage(h, "staging", Stage::Auto).await;
        }
        lab.resolve(name, "api-7", starts).await;
        let closed = wait_for(h, &fp, "the resolve", |i| i.state == IncidentState::Resolved).await;
        assert_eq!(closed.id, first.id);
        let pending: Vec<_> = approvals_of(h, &first.id)
            .await
            .into_iter()
            .filter(|a| a.state == ApprovalState::Pending)
            .collect();
        assert!(pending.is_empty(), "the resolve cancelled it: {pending:#?}");

        // Fires again, a new episode (a new startsAt), within limits.flap_window.
        tokio::time::sleep(Duration::from_millis(20)).await;
        starts = Utc::now();
        push_both(&lab.am, &[firing(&labels(name, "api-7"), starts)]).await;
        let rejoined = wait_for(h, &fp, "the flap", |i| {
            i.flaps == flap && i.state == IncidentState::AwaitingApproval
        })
        .await;
        assert_eq!(rejoined.id, first.id, "rejoined: {:#?}", kinds(&rejoined));
        assert_eq!(notes(&rejoined, "flap"), flap as usize);
        assert_eq!(incidents_of(h, &fp).await.len(), 1, "one incident");
        let pending: Vec<_> = approvals_of(h, &first.id)
            .await
            .into_iter()
            .filter(|a| a.state == ApprovalState::Pending)
            .collect();
        assert_eq!(pending.len(), 1, "one approval at a time: {pending:#?}");
    }
    h.settle().await;
    let last = incidents_of(h, &fp).await.pop().unwrap();
    assert_eq!(last.state, IncidentState::AwaitingApproval, "{:#?}", kinds(&last));
    assert!(has_note(&last, "flapping"), "{:#?}", kinds(&last));
    assert_eq!(last.fix.as_ref().and_then(|f| f.stage), Some(Stage::Manual));
    assert_eq!(h.runs("execute"), 0, "not fixed automatically while flapping");
    assert_eq!(
        approvals_of(h, &first.id).await.len(),
        4,
        "one approval per episode"
    );

    // The control: at `auto`, an alert that does not flap is fixed on its own.
    let control = lab.fire("steady", "api-8", Utc::now()).await;
    wait_for(h, &control, "the control's fix", |i| {
        i.state == IncidentState::Fixed
    })
    .await;
    h.settle().await;
    assert_eq!(h.runs("execute"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_storm_of_50_alerts_under_a_cap_of_3_reaches_every_target_once_oldest_first() {
    const N: usize = 50;
    const CAP: usize = 3;
    // The leader's interval is far longer than the test: only a freed slot wakes it.
    let lab = Lab::start("storm", "1h", true, |_| Options {
        scopes: vec![scope("storm", "staging", Stage::Auto, 1000, CAP as u32)],
        leader_interval: Duration::from_secs(600),
        ..Options::default()
    })
    .await;
    let h = &lab.h;
    force_stage(h, "storm", Stage::Auto).await;
    // Every target needs its own fix: the precheck passes (the shared test target says nothing
    // per target), execute makes it healthy, verify holds. Each fix takes a few seconds of
    // Docker (three phase containers), so fixes overlap.
    std::fs::write(h.control().join("precheck.exit"), "0").unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let leader = tokio::spawn(h.autonomy.clone().run_leader(stop_rx));

    let t0 = Utc::now();
    let alerts: Vec<Value> = (0..N)
        .map(|n| firing(&labels(&format!("storm-{n:02}"), &format!("api-{n:02}")), t0))
        .collect();
    let started = std::time::Instant::now();
    push_both(&lab.am, &alerts).await;

    // Watch the fixes running at once while the storm is worked off.
    let mut most_fixing = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    loop {
        let all = all_incidents(h).await;
        let fixing = all.iter().filter(|i| i.state == IncidentState::Fixing).count();
        most_fixing = most_fixing.max(fixing);
        let fixed = all.iter().filter(|i| i.state == IncidentState::Fixed).count();
        if all.len() == N && fixed == N {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{fixed} of {N} fixed ({} incidents); states: {:?}",
            all.len(),
            all.iter()
                .map(|i| (i.alert.labels.get("name").cloned(), i.state, i.why_no_fix()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    h.settle().await;
    assert!(
        most_fixing <= CAP,
        "at most {CAP} fixes at once, saw {most_fixing}"
    );
    assert_eq!(h.runs("execute"), N, "every target's fix executed exactly once");

    // From the journals: each incident executed once; never more than CAP fixes overlapped;
    // fixes started in the incidents' order (oldest first).
    let incidents = all_incidents(h).await;
    let mut spans = Vec::new();
    for i in &incidents {
        assert_eq!(i.firings, 1, "no repeat was needed: {:#?}", kinds(i));
        assert!(matches!(
            i.fix.as_ref().and_then(|f| f.outcome.as_ref()),
            Some(FixOutcome::Succeeded)
        ));
        let journal = h.state.journal(&i.id).await.unwrap();
        let executes = journal
            .iter()
            .filter(|e| {
                matches!(&e.event, JournalEvent::PhaseStarted { phase, .. } if *phase == rootfix::model::action::PhaseName::Execute)
            })
            .count();
        assert_eq!(executes, 1, "{}: {journal:#?}", i.id);
        let start = journal
            .iter()
            .find(|e| matches!(e.event, JournalEvent::FixStarted { .. }))
            .map(|e| e.at)
            .unwrap();
        let end = journal
            .iter()
            .find(|e| matches!(e.event, JournalEvent::FixFinished { .. }))
            .map(|e| e.at)
            .unwrap();
        spans.push(Span {
            opened: i.created_at,
            started: start,
            finished: end,
            id: i.id.clone(),
        });
    }
    // Never more than CAP fixes at once (a fix holds its slot from before it starts until after
    // it finished), and the cap was used.
    let overlap = spans
        .iter()
        .map(|s| {
            spans
                .iter()
                .filter(|o| o.started <= s.started && s.started < o.finished)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(overlap <= CAP, "{overlap} fixes overlapped");
    assert!(overlap >= 2, "the cap was used: {overlap} at most at once");
    // Queued: refused by the concurrency gate when first decided, started later by the leader as
    // slots freed.
    let queued: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            incidents.iter().any(|i| {
                i.id == s.id
                    && i.timeline
                        .iter()
                        .any(|t| t.kind == "gate" && t.message.contains("refused by the concurrency gate"))
            })
        })
        .collect();
    let is_queued = |s: &Span| queued.iter().any(|q| q.id == s.id);
    let table = {
        let t0 = spans.iter().map(|s| s.opened).min().unwrap();
        let ms = |t: DateTime<Utc>| (t - t0).num_milliseconds();
        let mut v: Vec<&Span> = spans.iter().collect();
        v.sort_by_key(|s| s.started);
        v.iter()
            .map(|s| {
                format!(
                    "opened +{:>5}ms  started +{:>5}ms  finished +{:>5}ms  {}{}",
                    ms(s.opened),
                    ms(s.started),
                    ms(s.finished),
                    s.id,
                    if is_queued(s) { "  (queued)" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    eprintln!("the fixes, by start:\n{table}");
    assert!(
        queued.len() >= N - 2 * CAP,
        "most waited for a slot: {}",
        queued.len()
    );
    // Not queued, yet started after the first fix had freed its slot while older ones waited:
    // a new firing's own decision took a freed slot ahead of the queue.
    let first_end = spans.iter().map(|s| s.finished).min().unwrap();
    let jumped: Vec<&str> = spans
        .iter()
        .filter(|s| s.started > first_end && !is_queued(s))
        .filter(|s| {
            queued
                .iter()
                .any(|q| q.opened < s.opened && q.started > s.started)
        })
        .map(|s| s.id.as_str())
        .collect();
    assert!(
        jumped.is_empty(),
        "started ahead of older incidents waiting for a slot: {jumped:?}\n{table}"
    );
    // The queued ones start oldest first: no younger one started clearly (by more than the few
    // milliseconds two fixes started in one sweep may take to journal) before an older one.
    let overtaken: Vec<String> = queued
        .iter()
        .flat_map(|older| {
            queued
                .iter()
                .filter(move |younger| {
                    younger.opened > older.opened
                        && younger.started + chrono::Duration::milliseconds(200) < older.started
                })
                .map(move |younger| format!("{} (opened later) started before {}", younger.id, older.id))
        })
        .collect();
    eprintln!("the storm of {N} was worked off in {took:?} (at most {most_fixing} fixing at once)");

    // The storm resolves: every incident closes, none opens.
    let resolves: Vec<Value> = (0..N)
        .map(|n| {
            resolved(
                &labels(&format!("storm-{n:02}"), &format!("api-{n:02}")),
                t0,
                Utc::now(),
            )
        })
        .collect();
    push_both(&lab.am, &resolves).await;
    support::eventually(Duration::from_secs(60), "every incident resolved", || async {
        let all = all_incidents(h).await;
        all.iter()
            .all(|i| i.state == IncidentState::Resolved)
            .then_some(all.len())
    })
    .await;
    // Give the second member's copies time to arrive, then count again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = all_incidents(h).await;
    assert_eq!(all.len(), N, "no phantom incident");
    assert!(all.iter().all(|i| i.state == IncidentState::Resolved));
    assert_eq!(h.runs("execute"), N);
    let _ = stop.send(true);
    let _ = leader.await;
    // Last, so a wrong order does not hide the rest.
    assert!(
        overtaken.is_empty(),
        "queued fixes start oldest first, but:\n{}\n{table}",
        overtaken.join("\n")
    );
}
