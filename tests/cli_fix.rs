//! `rootfix fix run` and `rootfix fix journal`: the real binary through the HTTP API
//! (`ROOTFIX_URL`, `ROOTFIX_TOKEN`) against the autonomy harness (real Redis, the real Docker
//! engine running the test action). An operator's fix runs to verified under the operator's
//! name (timeline and audit), and is refused while the kill switch is on, for an action whose
//! runner cannot run, with bad params, and for a role below admin.

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

use harness::{ACTION, ADMIN_TOKEN, APPROVER_TOKEN, Harness, KUBE_ACTION, Options, VIEWER_TOKEN};
use rootfix::incident::IncidentState;

/// Runs the real binary with `ROOTFIX_URL` and `ROOTFIX_TOKEN` set (off the runtime's threads).
async fn cli(h: &Harness, token: &str, args: &[&str]) -> support::CliRun {
    support::run_rootfix(args, &[("ROOTFIX_URL", h.url.as_str()), ("ROOTFIX_TOKEN", token)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operators_fix_runs_through_the_api_and_its_journal_prints() {
    let h = Harness::start("cli_fix", Options::default()).await;
    // Outside every scope: rootfix would never fix it on its own; an operator may.
    let i = h.fire("op-1", "dev", "api-0").await;
    assert_eq!(i.state, IncidentState::Open);
    let id = i.id.clone();
    let run_args = [
        "fix",
        "run",
        "--incident",
        &id,
        "--action",
        ACTION,
        "--param",
        "target=api-0",
    ];

    // Refusals first: nothing runs.
    let weak = cli(&h, APPROVER_TOKEN, &run_args).await;
    assert_eq!(weak.code, 1, "{weak}");
    assert!(
        weak.err
            .contains("403: a token with role approver cannot do this; it needs role admin"),
        "{weak}"
    );
    let bad = cli(
        &h,
        ADMIN_TOKEN,
        &["fix", "run", "--incident", &id, "--action", ACTION],
    )
    .await;
    assert_eq!(bad.code, 1, "{bad}");
    assert!(bad.err.starts_with("rootfix fix: 400: "), "{bad}");
    let kube = cli(
        &h,
        ADMIN_TOKEN,
        &[
            "fix",
            "run",
            "--incident",
            &id,
            "--action",
            KUBE_ACTION,
            "--param",
            "namespace=shop",
            "--param",
            "deployment=order-api",
        ],
    )
    .await;
    assert_eq!(kube.code, 1, "{kube}");
    assert_eq!(
        kube.err,
        "rootfix fix: 409: cannot act: restart-jvm-pod needs the kubernetes runner, and kubernetes is disabled in the config (kubernetes.enabled: false)\n"
    );
    assert_eq!(h.client_put_killswitch(true).await.0, 200);
    let killed = cli(&h, ADMIN_TOKEN, &run_args).await;
    assert_eq!(killed.code, 1, "{killed}");
    assert_eq!(
        killed.err,
        "rootfix fix: 409: the kill switch is on (by admin: test)\n"
    );
    assert_eq!(h.client_put_killswitch(false).await.0, 200);
    assert_eq!(h.runs("precheck"), 0);

    // The fix, through the API: verified, under the operator's name.
    let ran = cli(&h, ADMIN_TOKEN, &run_args).await;
    assert_eq!(ran.code, 0, "{ran}");
    assert_eq!(
        ran.out,
        format!(
            "fix {id}/{ACTION} by admin: succeeded\n  precheck (attempt 1): 0\n  execute (attempt 1): 0\n  verify (attempt 1): 0\n"
        )
    );
    assert_eq!(h.target(), "healthy");
    let after = h.state.incident(&id).await.unwrap().unwrap();
    assert_eq!(
        after.state,
        IncidentState::Fixed,
        "a verified fix waits for Alertmanager's resolved"
    );
    assert!(
        after.timeline.iter().any(|t| t.kind == "fix"
            && t.message
                == format!("{ACTION} started by admin (an operator's decision: stages not consulted), params target=api-0")),
        "{:#?}",
        after.timeline
    );
    assert!(
        after
            .timeline
            .iter()
            .any(|t| t.kind == "fix" && t.message == format!("{ACTION} (by admin): succeeded")),
        "{:#?}",
        after.timeline
    );
    let mut audit = h.state.audit(100).await.unwrap();
    audit.reverse();
    let fix_events: Vec<(String, String)> = audit
        .iter()
        .filter(|e| e.action.starts_with("fix."))
        .map(|e| (e.action.clone(), e.identity.clone()))
        .collect();
    let expected: Vec<(String, String)> = [
        "fix.started",
        "fix.phase",
        "fix.phase",
        "fix.phase",
        "fix.finished",
    ]
    .iter()
    .map(|a| (a.to_string(), "admin".to_string()))
    .collect();
    assert_eq!(fix_events, expected);
    let started = audit.iter().find(|e| e.action == "fix.started").unwrap();
    assert_eq!(
        started.detail,
        format!(
            "incident {id} action {ACTION} by operator admin (stages not consulted), params target=api-0"
        )
    );

    // The journal: a table, one row per phase attempt.
    let journal = cli(&h, VIEWER_TOKEN, &["fix", "journal", "--incident", &id]).await;
    assert_eq!(journal.code, 0, "{journal}");
    let lines: Vec<&str> = journal.out.lines().collect();
    assert_eq!(lines[0], format!("fix {id}/{ACTION}: succeeded"), "{journal}");
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        ["PHASE", "ATTEMPT", "STARTED", "DURATION", "EXIT", "OUTPUT"]
    );
    assert_eq!(lines.len(), 5, "{journal}");
    for (line, phase) in lines[2..].iter().zip(["precheck", "execute", "verify"]) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[0], phase, "{journal}");
        assert_eq!(cells[1], "1");
        assert!(cells[2].ends_with('Z'), "{line}");
        assert!(cells[3].ends_with('s'), "{line}");
        assert_eq!(cells[4], "0");
        assert_eq!(
            cells[5..].join(" "),
            format!("phase {phase} target=api-0"),
            "{line}"
        );
    }
    // --json: the raw events, for machines.
    let json = cli(&h, VIEWER_TOKEN, &["fix", "journal", "--incident", &id, "--json"]).await;
    assert_eq!(json.code, 0, "{json}");
    let events: Vec<serde_json::Value> = serde_json::from_str(&json.out).unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "fix-started",
            "phase-started",
            "phase-finished",
            "phase-started",
            "phase-finished",
            "phase-started",
            "phase-finished",
            "fix-finished"
        ]
    );
    assert!(events.iter().all(|e| e["fix"] == format!("{id}/{ACTION}")));
    // An incident that does not exist.
    let missing = cli(&h, VIEWER_TOKEN, &["fix", "journal", "--incident", "inc-nope"]).await;
    assert_eq!(missing.code, 1, "{missing}");
    assert_eq!(missing.err, "rootfix fix: 404: incident inc-nope not found\n");
}
