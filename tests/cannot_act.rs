//! Never offer what cannot run: a remedy whose action's runner cannot run on this install
//! (Kubernetes disabled, the Docker engine not answering) is refused by the `runner` gate before
//! any approval, audited, counted, on the timeline and notified as `diagnosis_only`; `/readyz`
//! and `rootfix validate --config` list the actions that cannot run. On the autonomy harness:
//! real Redis, the real Docker engine, the event loop and the API.

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

use harness::{ACTION, APPROVER_TOKEN, Harness, KUBE_ACTION, Options, Receiver, VIEWER_TOKEN};
use rootfix::autonomy::gate::Gate;
use rootfix::incident::IncidentState;
use rootfix::runner::availability::KUBERNETES_DISABLED;

const KUBE_REASON: &str = "cannot act: restart-jvm-pod needs the kubernetes runner, and kubernetes is disabled in the config (kubernetes.enabled: false)";

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
async fn a_kubernetes_remedy_with_kubernetes_disabled_is_diagnosed_not_offered() {
    let receiver = Receiver::start().await;
    let options = Options {
        notifications: receiver.config(),
        ..Options::default()
    };
    let h = Harness::start("cannot_act_kube", options).await;
    let i = h.fire_alert("AutonomyKube", "kube-1", "staging", "api-0").await;
    assert_eq!(i.state, IncidentState::Open);
    let fix = i.fix.clone().unwrap();
    assert_eq!(fix.gate, Some(Gate::Runner));
    assert_eq!(
        fix.refused.as_deref(),
        Some(format!("runner: {KUBE_REASON}").as_str())
    );
    assert!(fix.approval.is_none(), "no approval is asked for");
    let (_, approvals) = h.get("/api/v1/approvals?state=all", VIEWER_TOKEN).await;
    assert_eq!(approvals["items"].as_array().unwrap().len(), 0, "{approvals}");
    assert!(
        i.timeline.iter().any(|t| t.kind == "gate"
            && t.message == format!("{KUBE_ACTION} refused by the runner gate: {KUBE_REASON}")),
        "{:#?}",
        i.timeline
    );
    // No stage was created: the stage gate was never reached.
    assert!(h.state.stage(KUBE_ACTION, "staging").await.unwrap().is_none());
    assert_eq!(
        gate_refusals(&h).await,
        [format!(
            "incident {} action {KUBE_ACTION} scope - gate runner: {KUBE_REASON}",
            i.id
        )]
    );
    let n = receiver.wait_for("diagnosis_only").await;
    assert_eq!(n["incident"], i.id.as_str());
    assert_eq!(n["action"], KUBE_ACTION);
    assert_eq!(n["urgent"], false);
    assert_eq!(
        n["title"],
        "Diagnosis only: restart-jvm-pod on AutonomyKube (order-api)"
    );
    assert!(n["text"].as_str().unwrap().starts_with(KUBE_REASON), "{n}");
    let metrics = reqwest::get(format!("{}/metrics", h.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rootfix_gate_refusals_total{gate=\"runner\"} 1"),
        "{metrics}"
    );
    // The runner gate is asked again at the next firing (the cause can pass), and says it again
    // on the timeline, but notifies only once.
    h.fire_alert("AutonomyKube", "kube-1", "staging", "api-0").await;
    let again = h
        .wait_incident("kube-1", |i| {
            i.firings == 2 && i.fix.as_ref().and_then(|f| f.gate) == Some(Gate::Runner)
        })
        .await;
    assert!(
        again
            .timeline
            .iter()
            .any(|t| t.message == "asking the gates again (refused by runner before)"),
        "{:#?}",
        again.timeline
    );
    assert_eq!(gate_refusals(&h).await.len(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        receiver.kinds().iter().filter(|k| *k == "diagnosis_only").count(),
        1,
        "{:?}",
        receiver.kinds()
    );
    // The docker remedy next to it is offered as before.
    let docker = h.fire("docker-1", "staging", "api-0").await;
    assert_eq!(docker.state, IncidentState::AwaitingApproval);
    assert_eq!(h.runs("precheck"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_docker_engine_that_does_not_answer_refuses_docker_remedies_with_its_reason() {
    let options = Options {
        docker_socket: Some("/tmp/no-such-docker.sock".into()),
        ..Options::default()
    };
    let h = Harness::start("cannot_act_docker", options).await;
    let i = h.fire("docker-down-1", "staging", "api-0").await;
    assert_eq!(i.state, IncidentState::Open);
    let fix = i.fix.clone().unwrap();
    assert_eq!(fix.gate, Some(Gate::Runner));
    let refused = fix.refused.unwrap();
    assert!(
        refused.starts_with(&format!(
            "runner: cannot act: {ACTION} needs the docker runner, and the Docker engine at unix:///tmp/no-such-docker.sock does not answer: "
        )),
        "{refused}"
    );
    assert!(fix.approval.is_none());
    h.settle().await;
    assert_eq!(h.runs("precheck"), 0);
    // /readyz stays 200 and lists both actions that cannot run, with why.
    let r = reqwest::get(format!("{}/readyz", h.url)).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["ready"], true, "{body}");
    let cannot: Vec<(String, String, String)> = body["cannot_run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_string(),
                c["runner"].as_str().unwrap().to_string(),
                c["why"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(cannot.len(), 2, "{body}");
    assert_eq!(cannot[0].0, ACTION);
    assert_eq!(cannot[0].1, "docker");
    assert!(
        cannot[0]
            .2
            .starts_with("the Docker engine at unix:///tmp/no-such-docker.sock does not answer: "),
        "{body}"
    );
    assert_eq!(
        cannot[1],
        (
            KUBE_ACTION.to_string(),
            "kubernetes".to_string(),
            KUBERNETES_DISABLED.to_string()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approving_an_older_approval_whose_runner_went_away_answers_the_refusal() {
    let h = Harness::start("cannot_act_approve", Options::default()).await;
    let i = h.fire("old-approval", "staging", "api-0").await;
    let approval = i.fix.as_ref().unwrap().approval.clone().unwrap();
    // The engine stops answering after the approval was created.
    h.autonomy.availability.set(
        rootfix::model::action::RunnerKind::Docker,
        Some("the Docker engine at unix:///var/run/docker.sock does not answer: gone".into()),
    );
    let (status, body) = h.approve(&approval, APPROVER_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fix"]["kind"], "refused", "{body}");
    assert_eq!(body["fix"]["gate"], "runner");
    assert_eq!(
        body["fix"]["reason"],
        format!(
            "cannot act: {ACTION} needs the docker runner, and the Docker engine at unix:///var/run/docker.sock does not answer: gone"
        )
    );
    h.settle().await;
    assert_eq!(h.runs("precheck"), 0);
    let now = h
        .wait_incident("old-approval", |i| i.state == IncidentState::Open)
        .await;
    assert_eq!(now.fix.unwrap().gate, Some(Gate::Runner));
    // The engine answers again: the next firing asks the gates again, the approval stands for
    // the stage gate, and the fix runs.
    h.autonomy
        .availability
        .set(rootfix::model::action::RunnerKind::Docker, None);
    h.fire("old-approval", "staging", "api-0").await;
    let fixed = h.resolve_after_fix("old-approval", "staging", "api-0").await;
    assert_eq!(
        fixed.fix.as_ref().unwrap().approval.as_deref(),
        Some(approval.as_str())
    );
    h.settle().await;
    assert_eq!(h.runs("execute"), 1);
    let (_, approvals) = h.get("/api/v1/approvals?state=all", VIEWER_TOKEN).await;
    assert_eq!(
        approvals["items"].as_array().unwrap().len(),
        1,
        "no second approval"
    );
}

#[test]
fn validate_with_a_config_warns_about_actions_that_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rootfix.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:5001\nredis: {{url: 'redis://127.0.0.1:6379/'}}\nplaybooks: {}\nactions: {}\ntokens:\n  - {{name: admin, role: admin, token: {}}}\nkubernetes: {{enabled: false}}\n",
            support::repo_path("playbooks").display(),
            support::repo_path("actions").display(),
            support::ADMIN_TOKEN,
        ),
    )
    .unwrap();
    let run = |docker_host: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rootfix"))
            .args(["validate", "--config"])
            .arg(&config)
            .env("DOCKER_HOST", docker_host)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    // The engine answers: only the Kubernetes actions cannot run.
    let (code, out) = run("unix:///var/run/docker.sock");
    assert_eq!(code, Some(0), "{out}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(
        warnings,
        [
            format!(
                "warning: action dump-thread-stack (runner kubernetes-job) cannot run with this config: {KUBERNETES_DISABLED}"
            ),
            format!(
                "warning: action restart-jvm-pod (runner kubernetes) cannot run with this config: {KUBERNETES_DISABLED}"
            ),
        ],
        "{out}"
    );
    // No engine at that socket: every docker action too, with the engine's reason.
    let (code, out) = run("unix:///tmp/no-such-docker.sock");
    assert_eq!(code, Some(0), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("warning: action nginx-upstream-failover "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.starts_with("warning: action nginx-upstream-failover (runner docker) cannot run with this config: the Docker engine at unix:///tmp/no-such-docker.sock does not answer: "),
        "{line}"
    );
    // Without --config nothing is checked beyond the files, as before.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .arg("validate")
        .arg(support::repo_path("playbooks"))
        .arg(support::repo_path("actions"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning:"));
}
