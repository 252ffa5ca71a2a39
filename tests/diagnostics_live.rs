//! Diagnostic actions as `serve` runs them: the real walker over `LiveEvidence` with
//! `runner::diagnostic::ActionDiagnostics` on the real Docker engine (serve's
//! `ReconnectingDocker`, the engine's availability really checked). The shipped
//! `network-troubleshoot` image (built by `actions/build.sh`, or by `scripts/test-all.sh` with
//! `ROOTFIX_ACTIONS_BUILT=1`) probes local TCP ports; a test diagnostic action on the runner tests'
//! busybox image shows how a hostile label value arrives and how a failing or non-JSON diagnostic
//! is reported.

#[path = "support/actions.rs"]
mod actions;
#[path = "support/docker.rs"]
mod docker;
#[path = "support/evidence.rs"]
mod evidence;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use evidence::{Reply, closed_port, serve};
use rootfix::catalog::{Catalog, Source, read_sources};
use rootfix::engine::{
    Diagnosis, EvidenceContext, EvidenceError, EvidenceProvider, NodeOutcome, WalkOptions, Walker,
};
use rootfix::evidence::{DiagnosticRunner, LiveEvidence};
use rootfix::model::action::RunnerKind;
use rootfix::model::playbook::Diagnose;
use rootfix::model::template::{Template, Variable};
use rootfix::reload::CatalogHandle;
use rootfix::runner::availability::{
    DockerEndpoint, KUBERNETES_DISABLED, ReconnectingDocker, RunnerAvailability,
};
use rootfix::runner::diagnostic::ActionDiagnostics;
use rootfix::state::memory::MemoryStateStore;
use serde_json::json;

/// A label value that would do things if it ever reached a shell.
const HOSTILE: &str = r#"shop; touch /tmp/pwned $(touch /tmp/pwned) `touch /tmp/pwned` "q" | && \ *"#;

fn test_action() -> String {
    format!(
        r#"apiVersion: rootfix/v1
kind: Action
metadata: {{name: echo-diagnostic}}
spec:
  purpose: diagnostic
  runner: docker
  image: {image}
  params:
    value: {{pattern: '.+'}}
    mode: {{pattern: 'json|fail|text', default: json}}
  phases:
    execute:
      run:
        - /bin/sh
        - -c
        - |
          case "$ROOTFIX_PARAM_MODE" in
            fail) echo "cannot probe: asked to fail" >&2; exit 2 ;;
            text) echo "plain text, not json"; exit 0 ;;
          esac
          same=false
          [ "$ROOTFIX_PARAM_VALUE" = "$1" ] && same=true
          injected=false
          [ -e /tmp/pwned ] && injected=true
          printf '{{"same": %s, "injected": %s, "incident": "%s"}}\n' "$same" "$injected" "$ROOTFIX_INCIDENT"
        - sh
        - '{hostile}'
      timeout: 20s
"#,
        image = docker::test_image(),
        hostile = HOSTILE,
    )
}

const PLAYBOOK: &str = r#"apiVersion: rootfix/v1
kind: Playbook
metadata: {name: diag-live}
spec:
  match: ['alertname="DiagLive"']
  tree:
    id: root
    children:
      - id: network_layer
        when: alert.labels.alertname == "DiagLive"
        diagnose:
          action: network-troubleshoot
          params: {target: '{{ $labels.target }}'}
          as: netdiag
        children:
          - {id: port_open, when: evidence.netdiag.tcp.connected}
          - {id: port_closed, when: '!evidence.netdiag.tcp.connected'}
      - id: echo_layer
        when: alert.labels.alertname == "DiagLive"
        diagnose:
          action: echo-diagnostic
          params: {value: '{{ $labels.namespace }}', mode: '{{ $labels.mode }}'}
          as: echo
        children:
          - {id: value_intact, when: evidence.echo.same && !evidence.echo.injected}
"#;

fn catalog() -> CatalogHandle {
    let mut sources = read_sources(&[support::repo_path("actions")]).expect("shipped actions");
    sources.push(Source {
        path: "echo-diagnostic.yaml".into(),
        text: test_action(),
    });
    sources.push(Source {
        path: "diag-live.yaml".into(),
        text: PLAYBOOK.into(),
    });
    let catalog = Catalog::from_sources(&sources).unwrap_or_else(|problems| {
        panic!(
            "{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    CatalogHandle::new(catalog)
}

/// What serve builds: the reconnecting Docker runner, availability checked against the engine,
/// Kubernetes disabled.
async fn diagnostics(catalog: &CatalogHandle, state: &tempfile::TempDir) -> ActionDiagnostics {
    let availability = Arc::new(
        RunnerAvailability::checked(DockerEndpoint::local(), Some(KUBERNETES_DISABLED.into())).await,
    );
    assert_eq!(
        availability.unavailable(RunnerKind::Docker),
        None,
        "the Docker engine answers"
    );
    let docker = ReconnectingDocker::new(state.path().to_path_buf(), "rootfix-test-diag:");
    ActionDiagnostics::new(catalog.clone(), availability).with_runner(RunnerKind::Docker, Arc::new(docker))
}

async fn provider(catalog: &CatalogHandle, state: &tempfile::TempDir) -> Arc<dyn EvidenceProvider> {
    let live: LiveEvidence = evidence::live("{}");
    Arc::new(live.with_diagnostic_runner(Arc::new(diagnostics(catalog, state).await)))
}

fn incident(test: &str) -> String {
    format!("diag-{test}-{}", std::process::id())
}

async fn walk(labels: &[(&str, &str)], incident: &str) -> Diagnosis {
    actions::ensure_images();
    let catalog = catalog();
    let state = tempfile::tempdir().expect("state dir");
    let provider = provider(&catalog, &state).await;
    let playbook = catalog
        .current()
        .playbooks
        .iter()
        .find(|p| p.name == "diag-live")
        .cloned()
        .expect("playbook");
    let mut all = vec![("alertname", "DiagLive"), ("mode", "json"), ("namespace", "shop")];
    all.retain(|(k, _)| !labels.iter().any(|(l, _)| l == k));
    all.extend_from_slice(labels);
    let alert = evidence::alert(&all, chrono::Utc::now());
    let diagnosis = Walker::new(Arc::new(MemoryStateStore::new()), WalkOptions::default())
        .walk_incident(&playbook, alert, provider, chrono::Utc::now(), incident)
        .await;
    docker::assert_no_containers_left(incident);
    diagnosis
}

fn outcome(d: &Diagnosis, node: &str) -> NodeOutcome {
    d.node(node)
        .unwrap_or_else(|| panic!("no node {node}: {d:#?}"))
        .outcome
}

fn detail(d: &Diagnosis, node: &str) -> String {
    d.node(node).and_then(|n| n.detail.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subtree_reads_the_containers_json_and_the_container_is_removed() {
    let server = serve(|_| Reply::text(200, "ok")).await;
    let target = format!("localhost:{}", server.port());
    let d = walk(&[("target", &target)], &incident("open")).await;
    assert_eq!(outcome(&d, "network_layer"), NodeOutcome::Hit, "{d:#?}");
    assert_eq!(outcome(&d, "port_open"), NodeOutcome::Hit, "{d:#?}");
    assert_eq!(outcome(&d, "port_closed"), NodeOutcome::Miss, "{d:#?}");
    let netdiag = d.evidence["netdiag"].value.clone().expect("netdiag value");
    assert_eq!(netdiag["tcp"]["connected"], json!(true), "{netdiag}");
    assert_eq!(netdiag["target"], json!(target));
    // An ordinary label is not the hostile literal: the echo diagnostic's comparison tells.
    assert_eq!(
        d.evidence["echo"].value,
        Some(json!({"same": false, "injected": false, "incident": incident("open")}))
    );
    assert_eq!(outcome(&d, "value_intact"), NodeOutcome::Miss, "{d:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_metacharacter_label_arrives_only_as_an_env_var_value() {
    let id = incident("hostile");
    let d = walk(&[("namespace", HOSTILE), ("target", "127.0.0.1:1")], &id).await;
    let echo = d.evidence["echo"].value.clone().expect("echo value");
    assert_eq!(
        echo,
        json!({"same": true, "injected": false, "incident": id}),
        "{d:#?}"
    );
    assert_eq!(outcome(&d, "value_intact"), NodeOutcome::Hit, "{d:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_port_is_evidence_and_a_bad_param_is_an_error_with_the_reason() {
    let refused = format!("127.0.0.1:{}", closed_port());
    let d = walk(&[("target", &refused)], &incident("refused")).await;
    assert_eq!(outcome(&d, "port_closed"), NodeOutcome::Hit, "{d:#?}");
    let netdiag = d.evidence["netdiag"].value.clone().expect("netdiag value");
    assert!(
        netdiag["tcp"]["error"].as_str().unwrap_or("").contains("refused"),
        "{netdiag}"
    );

    // A label the pattern refuses: nothing starts, the nodes reading the output are `error`.
    let d = walk(&[("target", "localhost:80; reboot")], &incident("badparam")).await;
    for node in ["port_open", "port_closed"] {
        assert_eq!(outcome(&d, node), NodeOutcome::Error, "{d:#?}");
        let why = detail(&d, node);
        assert!(
            why.contains("diagnostic action `network-troubleshoot` failed: param `target` of action `network-troubleshoot`: `localhost:80; reboot` does not match"),
            "{why}"
        );
    }
    assert!(detail(&d, "network_layer").contains("does not match"), "{d:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_non_json_diagnostic_is_an_error_with_its_exit_and_output() {
    let d = walk(&[("mode", "fail"), ("target", "127.0.0.1:1")], &incident("fail")).await;
    assert_eq!(outcome(&d, "value_intact"), NodeOutcome::Error, "{d:#?}");
    let why = detail(&d, "value_intact");
    assert!(
        why.contains("execute exited with code 2; stderr: cannot probe: asked to fail"),
        "{why}"
    );
    let d = walk(&[("mode", "text"), ("target", "127.0.0.1:1")], &incident("text")).await;
    let why = detail(&d, "value_intact");
    assert_eq!(outcome(&d, "value_intact"), NodeOutcome::Error, "{d:#?}");
    assert!(
        why.contains("its output is not one JSON value (") && why.ends_with("; stdout: plain text, not json"),
        "{why}"
    );
}

fn diagnose(action: &str, params: &[(&str, &str)]) -> Diagnose {
    Diagnose {
        action: action.into(),
        params: params
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Template::parse(v, &[Variable::Label]).expect("template"),
                )
            })
            .collect::<BTreeMap<_, _>>(),
        output: "out".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_action_an_unknown_action_and_a_runner_that_cannot_run_are_refused() {
    let catalog = catalog();
    let state = tempfile::tempdir().expect("state dir");
    let runner = diagnostics(&catalog, &state).await;
    let ctx: EvidenceContext = evidence::ctx(&[("namespace", "shop")]);
    let message = |e: EvidenceError| match e {
        EvidenceError::Diagnostic { message, .. } => message,
        other => panic!("not a diagnostic error: {other:?}"),
    };
    let fix = runner
        .run(
            &diagnose("restart-jvm-pod", &[("namespace", "shop"), ("deployment", "api")]),
            &ctx,
        )
        .await
        .unwrap_err();
    assert_eq!(
        fix.to_string(),
        "diagnostic action `restart-jvm-pod` failed: it is a fix action (purpose: fix); only `purpose: diagnostic` actions run as diagnostics"
    );
    let unknown = runner
        .run(&diagnose("no-such-action", &[]), &ctx)
        .await
        .unwrap_err();
    assert_eq!(message(unknown), "no such action in the catalog in force");
    let kube = runner
        .run(
            &diagnose(
                "dump-thread-stack",
                &[("url", "http://order.shop.svc:8081/actuator/threaddump")],
            ),
            &ctx,
        )
        .await
        .unwrap_err();
    assert_eq!(
        message(kube),
        format!("runner `kubernetes-job` cannot run here: {KUBERNETES_DISABLED}")
    );
    let missing = runner
        .run(
            &diagnose("network-troubleshoot", &[("target", "{{ $labels.nope }}")]),
            &ctx,
        )
        .await
        .unwrap_err();
    assert_eq!(
        message(missing),
        "param `target`: template `{{ $labels.nope }}` reads $labels.nope, which is not set"
    );
}
