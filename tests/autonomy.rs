//! Staged autonomy end to end, in one process: real Redis, the real Docker engine running the
//! test action, the event loop and the HTTP API; a manual clock moves across hours and weeks.

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

use harness::{ACTION, APPROVER_TOKEN, Harness, Options};
use rootfix::incident::IncidentState;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manual_fix_waits_for_approval_and_runs_once_approved() {
    let h = Harness::start("approve_smoke", Options::default()).await;
    let incident = h.fire("fp-smoke", "staging", "api-0").await;
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
    let (status, body) = h
        .post(
            &format!("/api/v1/approvals/{approval}/approve"),
            APPROVER_TOKEN,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    h.settle().await;
    let done = h
        .wait_incident("fp-smoke", |i| i.state == IncidentState::Resolved)
        .await;
    assert_eq!(h.runs("execute"), 1);
    assert_eq!(h.target(), "healthy");
    assert!(done.fix.unwrap().outcome.is_some());
    let _ = ACTION;
}
