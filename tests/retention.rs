//! Retention on the autonomy harness (real Redis, the real Docker engine running the test action,
//! the event loop, the API, a `ManualClock`): the leader's job removes a closed incident older
//! than `retention.incidents` with its journal and approval, after appending it to the export
//! file (one parseable JSON line each, exported once); a younger closed incident and an open one
//! are kept; the alert stream is trimmed behind its group.

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

use std::time::Duration;

use harness::{APPROVER_TOKEN, Harness, Options};
use rootfix::config::RetentionConfig;
use rootfix::incident::{IncidentFilter, IncidentState};
use serde_json::Value;

fn export_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_incidents_past_retention_are_exported_then_removed_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("corpus.jsonl");
    let h = Harness::start(
        "retention",
        Options {
            retention: RetentionConfig {
                incidents: Duration::from_secs(24 * 3600),
                export: Some(export.clone()),
                ..RetentionConfig::default()
            },
            ..Options::default()
        },
    )
    .await;

    // A: approved, fixed (a journal), resolved now.
    let a = h.fire("ret-a", "staging", "web-1").await;
    assert_eq!(a.state, IncidentState::AwaitingApproval);
    let approval = a.fix.as_ref().unwrap().approval.clone().unwrap();
    let (status, body) = h.approve(&approval, APPROVER_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    let a = h.resolve_after_fix("ret-a", "staging", "web-1").await;
    assert!(!h.state.journal(&a.id).await.unwrap().is_empty());

    // Two days later: B fires and resolves (its approval cancelled); C fires and stays open.
    h.clock.advance(chrono::Duration::days(2));
    h.fire("ret-b", "staging", "web-2").await;
    h.resolve("ret-b", "staging", "web-2").await;
    let b = h
        .wait_incident("ret-b", |i| i.state == IncidentState::Resolved)
        .await;
    let c = h.fire("ret-c", "staging", "web-3").await;
    h.settle().await;

    let tick = h.autonomy.tick().await.unwrap();
    assert_eq!(tick.retention.removed, std::slice::from_ref(&a.id));
    assert_eq!(tick.retention.exported, 1);
    assert!(tick.retention.trimmed_alerts >= 3, "{:?}", tick.retention);
    let stats = h.state.stream_stats().await.unwrap();
    assert_eq!((stats.pending, stats.lag), (0, 0));
    assert!(stats.length <= 1, "{stats:?}");

    // A is gone with its journal, approval and index entries.
    assert!(h.state.incident(&a.id).await.unwrap().is_none());
    assert!(h.state.journal(&a.id).await.unwrap().is_empty());
    assert!(h.state.approval(&approval).await.unwrap().is_none());
    assert!(
        h.state
            .last_closed_incident(&harness::fingerprint("ret-a"))
            .await
            .unwrap()
            .is_none()
    );
    let listed: Vec<String> = h
        .state
        .list_incidents(&IncidentFilter::default(), 0, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(listed, [c.id.clone(), b.id.clone()]);
    let counts = h.state.incident_counts().await.unwrap();
    assert_eq!(counts[&IncidentState::Resolved], 1);
    assert!(
        !h.state
            .list_approvals(false, 100)
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == approval)
    );

    // Exported first, one parseable line: the incident as removed, its journal, its approval.
    let lines = export_lines(&export);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["incident"]["id"], Value::String(a.id.clone()));
    assert_eq!(lines[0]["incident"]["state"], "resolved");
    assert!(
        lines[0]["journal"].as_array().unwrap().len() >= 4,
        "{}",
        lines[0]["journal"]
    );
    assert_eq!(lines[0]["approvals"][0]["id"], Value::String(approval.clone()));

    // Nothing more is due: no second line.
    let tick = h.autonomy.tick().await.unwrap();
    assert!(tick.retention.removed.is_empty());
    assert_eq!(export_lines(&export).len(), 1);

    // Two more days: B is due too; C, open all along, is kept.
    h.clock.advance(chrono::Duration::days(2));
    let tick = h.autonomy.tick().await.unwrap();
    assert_eq!(tick.retention.removed, std::slice::from_ref(&b.id));
    let lines = export_lines(&export);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["incident"]["id"], Value::String(b.id.clone()));
    assert!(h.state.incident(&b.id).await.unwrap().is_none());
    assert!(h.state.incident(&c.id).await.unwrap().is_some());
    let counts = h.state.incident_counts().await.unwrap();
    assert_eq!(counts.values().sum::<u64>(), 1);
}
