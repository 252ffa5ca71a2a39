//! The `approvals`, `confirm`, `stages` and `incidents show` commands: the real `rootfix` binary against the
//! autonomy harness (a whole rootfix in this process: real Redis, the real Docker engine running
//! the test action, the event loop and the HTTP API, a manual clock).

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

use harness::{ACTION, ADMIN_TOKEN, APPROVER_TOKEN, Harness, Options, VIEWER_TOKEN};
use rootfix::incident::{Incident, IncidentState};

/// Runs the real binary with `ROOTFIX_URL` and `ROOTFIX_TOKEN` set (off the runtime's threads).
async fn cli(h: &Harness, token: &str, args: &[&str]) -> support::CliRun {
    support::run_rootfix(args, &[("ROOTFIX_URL", h.url.as_str()), ("ROOTFIX_TOKEN", token)]).await
}

fn approval_of(incident: &Incident) -> String {
    assert_eq!(
        incident.state,
        IncidentState::AwaitingApproval,
        "{:#?}",
        incident.timeline
    );
    incident
        .fix
        .as_ref()
        .and_then(|f| f.approval.clone())
        .expect("approval id")
}

/// The line of `text` that contains `needle`.
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approvals_confirm_and_stages_through_the_cli() {
    let h = Harness::start("cli_autonomy", Options::default()).await;

    // ── approvals: list, show, approve (twice), a viewer refused ──
    let first = h.fire("fp-cli-1", "staging", "api-0").await;
    let approval = approval_of(&first);
    let r = cli(&h, VIEWER_TOKEN, &["approvals", "list"]).await;
    assert_eq!(r.code, 0, "{r}");
    assert!(r.out.starts_with("ID "), "{r}");
    let line = line_with(&r.out, &approval);
    for word in [
        first.id.as_str(),
        ACTION,
        "staging",
        "1.00",
        "expires 2026-11-02T09:30:00",
        "pending",
    ] {
        assert!(line.contains(word), "{word:?} missing from {line:?}");
    }

    let r = cli(&h, VIEWER_TOKEN, &["approvals", "show", &approval]).await;
    assert_eq!(r.code, 0, "{r}");
    assert!(r.out.contains(&format!("approval   {approval}  pending")), "{r}");
    assert!(r.out.contains(&format!("incident   {}", first.id)), "{r}");
    assert!(r.out.contains("params     target=api-0"), "{r}");
    assert!(r.out.contains("confidence 1.000 (threshold 0.500)"), "{r}");
    assert!(!r.out.contains("decided"), "{r}");
    let r = cli(&h, VIEWER_TOKEN, &["approvals", "show", &approval, "--json"]).await;
    assert_eq!(r.code, 0, "{r}");
    let json: serde_json::Value = serde_json::from_str(&r.out).expect("--json prints JSON");
    assert_eq!(json["id"], approval.as_str());
    assert_eq!(json["state"], "pending");

    let r = cli(&h, VIEWER_TOKEN, &["approvals", "approve", &approval]).await;
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(
        r.err.trim(),
        "rootfix approvals: 403: a token with role viewer cannot do this; it needs role approver",
        "{r}"
    );
    assert!(r.out.is_empty(), "{r}");
    assert_eq!(h.runs("execute"), 0, "a refused approval runs nothing");

    let r = cli(&h, APPROVER_TOKEN, &["approvals", "approve", &approval]).await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        r.out,
        format!("approved {approval} (incident {}): fix started\n", first.id)
    );
    h.settle().await;
    h.resolve_after_fix("fp-cli-1", "staging", "api-0").await;
    assert_eq!(h.runs("execute"), 1);
    assert_eq!(h.target(), "healthy");

    let r = cli(&h, APPROVER_TOKEN, &["approvals", "approve", &approval]).await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        r.out,
        format!("approval {approval} was approved already (by approver at 2026-11-02T09:00:00Z)\n")
    );
    h.settle().await;
    assert_eq!(h.runs("execute"), 1, "approving twice runs the fix once");

    // ── reject: the reason is required by the command line, then recorded ──
    let second = h.fire("fp-cli-2", "staging", "api-1").await;
    let rejected = approval_of(&second);
    let r = cli(&h, APPROVER_TOKEN, &["approvals", "reject", &rejected]).await;
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.err
            .contains("the following required arguments were not provided")
            && r.err.contains("--reason"),
        "{r}"
    );
    let r = cli(
        &h,
        APPROVER_TOKEN,
        &[
            "approvals",
            "reject",
            &rejected,
            "--reason",
            "the deploy is the cause",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        r.out,
        format!(
            "rejected {rejected} (incident {}): the deploy is the cause\n",
            second.id
        )
    );
    let r = cli(&h, VIEWER_TOKEN, &["approvals", "list"]).await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.out.lines().count(), 1, "nothing pending:\n{r}");
    let r = cli(&h, VIEWER_TOKEN, &["approvals", "list", "--all"]).await;
    assert_eq!(r.code, 0, "{r}");
    let columns: Vec<&str> = line_with(&r.out, &rejected).split_whitespace().collect();
    assert_eq!(
        columns,
        [
            rejected.as_str(),
            second.id.as_str(),
            ACTION,
            "staging",
            "1.00",
            "2026-11-02T09:00:00Z",
            "rejected",
            "by",
            "approver"
        ],
        "{r}"
    );
    assert!(
        line_with(&r.out, &approval).ends_with("approved by approver"),
        "{r}"
    );
    let r = cli(&h, VIEWER_TOKEN, &["approvals", "show", &rejected]).await;
    assert!(
        r.out.contains("decided    2026-11-02T09:00:00Z by approver"),
        "{r}"
    );
    assert!(r.out.contains("reason     the deploy is the cause"), "{r}");
    let r = cli(&h, APPROVER_TOKEN, &["approvals", "approve", &rejected]).await;
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(
        r.err.trim(),
        format!("rootfix approvals: 409: approval {rejected} is rejected")
    );
    assert_eq!(h.runs("execute"), 1, "a rejected fix never runs");

    // ── stages: list, promote (gate, then forced), show the history, demote ──
    let r = cli(&h, VIEWER_TOKEN, &["stages", "list"]).await;
    assert_eq!(r.code, 0, "{r}");
    let line = line_with(&r.out, ACTION);
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        &columns[..11],
        [
            ACTION, "staging", "manual", "auto", "0.0", "1", "100.00", "%", "20.65", "%", "0"
        ],
        "{line}: one sample of one, and its Wilson 95 % lower bound"
    );
    assert!(
        line.ends_with(
            "-                            unmet: 0s in stage, needs 7d; 1 outcome in the last 3d, needs 5"
        ),
        "{line}"
    );

    let r = cli(&h, ADMIN_TOKEN, &["stages", "promote", ACTION, "staging"]).await;
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(
        r.err.trim(),
        "rootfix stages: 409: the promotion gate is not met: 0s in stage, needs 7d; \
         1 outcome in the last 3d, needs 5"
    );
    let r = cli(
        &h,
        APPROVER_TOKEN,
        &["stages", "promote", ACTION, "staging", "--force"],
    )
    .await;
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.err
            .contains("403: a token with role approver cannot do this; it needs role admin"),
        "{r}"
    );
    let r = cli(
        &h,
        ADMIN_TOKEN,
        &[
            "stages",
            "promote",
            ACTION,
            "staging",
            "--force",
            "--reason",
            "trusted after review",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        r.out,
        format!("promoted {ACTION} in scope staging to silent (since 2026-11-02T09:00:00Z)\n")
    );

    let r = cli(&h, VIEWER_TOKEN, &["stages", "show", ACTION, "staging"]).await;
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.out.starts_with(&format!(
            "{ACTION} in scope staging: silent since 2026-11-02T09:00:00Z (scope cap auto)\n"
        )),
        "{r}"
    );
    assert!(
        r.out.contains("gate to auto: unmet\n  - 0s in stage, needs 7d\n"),
        "{r}"
    );
    let history: Vec<&str> = r
        .out
        .split("\nhistory:\n")
        .nth(1)
        .expect("a history section")
        .lines()
        .collect();
    assert_eq!(
        history,
        [
            "  2026-11-02T09:00:00Z  (new)   → manual  by rootfix: first fix of this type in this scope: it starts manual",
            "  2026-11-02T09:00:00Z  manual  → silent  by admin: trusted after review",
        ],
        "{r}"
    );

    let r = cli(&h, ADMIN_TOKEN, &["stages", "demote", ACTION, "staging"]).await;
    assert_eq!(r.code, 2, "{r}");
    assert!(r.err.contains("--reason"), "{r}");
    let r = cli(
        &h,
        ADMIN_TOKEN,
        &["stages", "demote", ACTION, "staging", "--reason", "x"],
    )
    .await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        r.out,
        format!("demoted {ACTION} in scope staging to manual (since 2026-11-02T09:00:00Z)\n")
    );
    let r = cli(&h, VIEWER_TOKEN, &["stages", "show", ACTION, "staging"]).await;
    assert!(
        r.out
            .ends_with("  2026-11-02T09:00:00Z  silent  → manual  by admin: x\n"),
        "{r}"
    );
    let r = cli(&h, VIEWER_TOKEN, &["stages", "list"]).await;
    assert!(line_with(&r.out, ACTION).contains(" manual "), "{r}");

    // ── confirm: a misfix needs a severity; an incident is confirmed once ──
    // A minute later, as an SRE would (an outcome and its amendment at the same instant tie).
    h.clock.advance(chrono::Duration::minutes(1));
    let r = cli(&h, APPROVER_TOKEN, &["confirm", &first.id, "--verdict", "misfix"]).await;
    assert_eq!(r.code, 2, "{r}");
    assert!(r.err.contains("--severity"), "{r}");
    let r = cli(
        &h,
        APPROVER_TOKEN,
        &[
            "confirm",
            &first.id,
            "--verdict",
            "misfix",
            "--severity",
            "P2",
            "--comment",
            "wrong pod",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        r.out,
        format!(
            "incident {}: P2 misfix reported by approver; incident resolved\n",
            first.id
        )
    );
    let r = cli(
        &h,
        APPROVER_TOKEN,
        &["confirm", &first.id, "--verdict", "correct"],
    )
    .await;
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(
        r.err.trim(),
        format!(
            "rootfix confirm: 409: incident {} was confirmed by approver already",
            first.id
        )
    );
    let r = cli(
        &h,
        APPROVER_TOKEN,
        &["confirm", &second.id, "--verdict", "correct"],
    )
    .await;
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(
        r.err.trim(),
        format!(
            "rootfix confirm: 409: the fix of incident {} has not run",
            second.id
        )
    );
    // The misfix counts against the gate: one success amended to a misfix.
    let r = cli(&h, VIEWER_TOKEN, &["stages", "list"]).await;
    let columns: Vec<&str> = line_with(&r.out, ACTION).split_whitespace().collect();
    assert_eq!(&columns[5..11], ["1", "0.00", "%", "0.00", "%", "0"], "{r}");

    // ── an approval nobody decided in time: 409 ──
    let third = h.fire("fp-cli-3", "staging", "api-2").await;
    let late = approval_of(&third);
    h.clock.advance(chrono::Duration::minutes(31));
    let r = cli(&h, APPROVER_TOKEN, &["approvals", "approve", &late]).await;
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(
        r.err.trim(),
        format!("rootfix approvals: 409: approval {late} has expired")
    );
    let r = cli(&h, VIEWER_TOKEN, &["approvals", "list", "--all"]).await;
    assert!(line_with(&r.out, &late).ends_with("expired by rootfix"), "{r}");
    assert_eq!(h.runs("execute"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incidents_show_says_how_long_it_took_and_why_there_is_no_fix() {
    let h = Harness::start("cli_ttr", Options::default()).await;
    let fixed = h.fire("fp-cli-ttr", "staging", "api-0").await;
    let r = cli(&h, VIEWER_TOKEN, &["incidents", "show", &fixed.id]).await;
    assert_eq!(r.code, 0, "{r}");
    assert!(!r.out.contains("time to resolve"), "not resolved yet: {r}");
    assert!(!r.out.contains("no fix"), "a fix waits for approval: {r}");
    // Approved 23.4 s after the alert started; the fix closes the incident at once (manual clock).
    h.clock.advance(chrono::Duration::milliseconds(23_400));
    let (code, reply) = h.approve(&approval_of(&fixed), APPROVER_TOKEN).await;
    assert_eq!(code, 200, "{reply}");
    h.settle().await;
    h.resolve_after_fix("fp-cli-ttr", "staging", "api-0").await;
    let r = cli(&h, VIEWER_TOKEN, &["incidents", "show", &fixed.id]).await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        line_with(&r.out, "time to resolve"),
        "time to resolve: 23.4s",
        "{r}"
    );

    // Outside every scope: the gate and its reason.
    let refused = h.fire("fp-cli-prod", "prod", "api-1").await;
    let r = cli(&h, VIEWER_TOKEN, &["incidents", "show", &refused.id]).await;
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        line_with(&r.out, "no fix"),
        "no fix: refused by the scope gate: the target is outside every scope",
        "{r}"
    );
    assert!(!r.out.contains("time to resolve"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn label_values_with_control_characters_reach_the_terminal_escaped() {
    let h = Harness::start("cli_terminal_safe", Options::default()).await;
    // An instance label that would clear the screen and retitle the terminal if printed raw.
    let hostile = "api-\u{1b}[2J\u{1b}]0;pwned\u{7}";
    let incident = h.fire("terminal", "staging", hostile).await;
    let approval = approval_of(&incident);
    for args in [
        vec!["incidents", "show", incident.id.as_str()],
        vec!["incidents", "list"],
        vec!["approvals", "list"],
        vec!["approvals", "show", approval.as_str()],
    ] {
        let r = cli(&h, APPROVER_TOKEN, &args).await;
        assert_eq!(r.code, 0, "{args:?}: {r}");
        assert!(
            !r.out.contains('\u{1b}') && !r.out.contains('\u{7}'),
            "{args:?} printed raw control characters: {r}"
        );
    }
    let r = cli(&h, APPROVER_TOKEN, &["approvals", "show", &approval]).await;
    assert!(
        r.out.contains("api-\\u{1b}[2J\\u{1b}]0;pwned\\u{7}"),
        "shown escaped: {r}"
    );
}
