//! Crash safety of a remedy of steps: a real `rootfix serve` (real Redis, the real Docker engine)
//! diagnoses an alert whose remedy has three steps, an admin approves it through the API, and
//! serve is SIGKILLed while a step's phase runs. The next start of serve finishes the remedy from
//! the journal:
//! - killed inside step k's execute (k = 1, 2, 3): step k and the steps before it are rolled
//!   back, step k first; the steps after it never run; no execute runs twice; the incident's fix
//!   ends `rolled-back` as interrupted (it does not count for promotion);
//! - killed inside step 2's verify (its execute completed): step 2's verify resumes, step 3 runs,
//!   the remedy succeeds; still no execute twice.
//!
//! - a remedy in waves through serve: the targets from a JSON API, the canary, then the rest; a
//!   failing target's wave is rolled back, the canary stays, the page shows the waves.
//!
//! Each step is its own test action with its own control folder (`tests/fixtures/runner/phase.sh`
//! counts every phase's runs there).

#[path = "support/docker.rs"]
mod docker;
#[path = "support/process.rs"]
mod process;
#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rootfix::fix::journal::{FixOutcome, JournalEntry, JournalEvent};
use rootfix::model::action::PhaseName;
use rootfix::state::{FixStore, IncidentStore};
use serde_json::Value;
use support::*;

const STEPS: [&str; 3] = ["step-one", "step-two", "step-three"];

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    prefix: String,
    port: u16,
}

impl Setup {
    fn control(&self, step: usize) -> PathBuf {
        self.dir.path().join("control").join(STEPS[step - 1])
    }

    fn runs(&self, step: usize, phase: &str) -> usize {
        std::fs::read_to_string(self.control(step).join(format!("{phase}.runs")))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn target(&self, step: usize) -> String {
        std::fs::read_to_string(self.control(step).join("target"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn serve(&self) -> process::Serve {
        process::Serve::start(&self.config, self.port, &self.dir.path().join("serve.log"))
    }
}

fn setup(test: &str) -> Setup {
    docker::test_image();
    let dir = tempfile::tempdir().unwrap();
    for step in STEPS {
        let control = dir.path().join("control").join(step);
        let actions = dir.path().join("actions").join(step);
        std::fs::create_dir_all(&control).unwrap();
        std::fs::create_dir_all(&actions).unwrap();
        std::fs::write(control.join("target"), "broken\n").unwrap();
        std::fs::write(
            actions.join("action.yaml"),
            docker::test_action_yaml(step, docker::TEST_IMAGE, &control, ""),
        )
        .unwrap();
    }
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::write(
        dir.path().join("playbooks/steps.yaml"),
        r#"apiVersion: rootfix/v1
kind: Playbook
metadata: {name: steps-crash}
spec:
  match: ['alertname="OrderServiceTimeout"']
  tree:
    id: steps_root
    children:
      - id: steps_leaf
        when: 'alert.labels.service == "order"'
        remedy:
          name: three-steps
          steps:
            - {action: step-one, params: {target: '{{ $labels.service }}-one'}}
            - {action: step-two, params: {target: '{{ $labels.service }}-two'}}
            - {action: step-three, params: {target: '{{ $labels.service }}-three'}}
          confidence:
            threshold: 0.5
            signals: [{when: 'alert.labels.env == "staging"', weight: 1.0}]
"#,
    )
    .unwrap();
    let prefix = unique_prefix(test);
    let port = free_port();
    let config = process::write_config(
        dir.path(),
        port,
        &redis_url(),
        &prefix,
        &dir.path().join("playbooks"),
        &dir.path().join("actions"),
        &format!(
            "fixes: {{state_dir: '{}', lease: 3s}}\nautonomy:\n  scopes:\n    - {{name: staging, match: ['env=\"staging\"'], max_stage: auto, fixes_per_hour: 100, concurrency: 1}}\n",
            dir.path().join("fix-state").display()
        ),
    );
    Setup {
        dir,
        config,
        prefix,
        port,
    }
}

/// Posts the alert and waits for the incident to wait for approval; returns (incident, approval).
async fn diagnosed(serve: &process::Serve) -> (String, String) {
    post_firing_alert(&serve.url, "order", "cf12c1db58df9346").await;
    let started = Instant::now();
    loop {
        let list = admin_api(reqwest::Method::GET, &format!("{}/api/v1/incidents", serve.url)).await;
        let item = &list["items"][0];
        if item["state"] == "awaiting-approval" {
            let id = item["id"].as_str().unwrap().to_string();
            let incident = admin_api(
                reqwest::Method::GET,
                &format!("{}/api/v1/incidents/{id}", serve.url),
            )
            .await;
            let fix = &incident["fix"];
            assert_eq!(fix["action"], "three-steps", "{incident:#}");
            assert_eq!(fix["steps"][1]["action"], "step-two", "{incident:#}");
            assert_eq!(fix["steps"][1]["params"]["target"], "order-two", "{incident:#}");
            let approval = fix["approval"].as_str().unwrap().to_string();
            // What the approver approves: every step.
            let shown = std::process::Command::new(env!("CARGO_BIN_EXE_rootfix"))
                .env("ROOTFIX_URL", &serve.url)
                .env("ROOTFIX_TOKEN", ADMIN_TOKEN)
                .args(["approvals", "show", &approval])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&shown.stdout);
            assert!(text.contains("step 2     step-two target=order-two"), "{text}");
            assert!(
                text.contains("remedy three-steps (3 steps: step-one → step-two → step-three)"),
                "{text}"
            );
            return (id, approval);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no approval: {list:#}\n{}",
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Approves the remedy, waits until step `step`'s `phase` runs inside its container, and
/// SIGKILLs serve.
async fn kill_inside(s: &Setup, step: usize, phase: &str) -> String {
    let mut serve = s.serve();
    let (incident, approval) = diagnosed(&serve).await;
    std::fs::write(s.control(step).join(format!("{phase}.sleep")), "30").unwrap();
    admin_api(
        reqwest::Method::POST,
        &format!("{}/api/v1/approvals/{approval}/approve", serve.url),
    )
    .await;
    let started = Instant::now();
    while s.runs(step, phase) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "step {step}'s {phase} never started; serve's log:\n{}",
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serve.kill(); // SIGKILL: the remedy dies with the server running it
    std::fs::remove_file(s.control(step).join(format!("{phase}.sleep"))).unwrap();
    incident
}

/// Starts serve again (its start-up recovers the remedy) and returns the incident's fix and the
/// journal once the remedy is finished.
async fn restart_and_finish(s: &Setup, incident: &str) -> (Value, Vec<JournalEntry>) {
    let (fix, journal, _serve) = restart_and_finish_serving(s, incident).await;
    (fix, journal)
}

/// [`restart_and_finish`], with the restarted serve still running.
async fn restart_and_finish_serving(s: &Setup, incident: &str) -> (Value, Vec<JournalEntry>, process::Serve) {
    let serve = s.serve();
    let store = rootfix::state::redis::RedisStateStore::connect(&redis_url(), &s.prefix)
        .await
        .unwrap();
    assert!(
        store.active_fixes().await.unwrap().is_empty(),
        "serve serves only after recovering; the remedy is still unfinished:\n{}",
        serve.log_text()
    );
    let journal = store.journal(incident).await.unwrap();
    let saved = store.incident(incident).await.unwrap().expect("the incident");
    (serde_json::to_value(saved.fix).unwrap(), journal, serve)
}

fn rollbacks(journal: &[JournalEntry]) -> Vec<u32> {
    journal
        .iter()
        .filter_map(|e| match &e.event {
            JournalEvent::PhaseStarted {
                phase: PhaseName::Rollback,
                ..
            } => e.step,
            _ => None,
        })
        .collect()
}

fn outcome(journal: &[JournalEntry]) -> FixOutcome {
    match journal.last().map(|e| &e.event) {
        Some(JournalEvent::FixFinished { outcome }) => outcome.clone(),
        other => panic!("the journal does not end with the outcome: {other:?}"),
    }
}

async fn killed_in_execute_of(step: usize) {
    let s = setup(&format!("steps-crash-exec{step}"));
    let incident = kill_inside(&s, step, "execute").await;
    let (fix, journal) = restart_and_finish(&s, &incident).await;
    let outcome = outcome(&journal);
    assert!(
        outcome.interrupted_by_restart(),
        "step {step}: {outcome:?} is an interruption by rootfix's own stop"
    );
    assert!(
        matches!(&outcome, FixOutcome::RolledBack(r) if r.contains(&format!("step {step}"))),
        "{outcome:?}"
    );
    let expected: Vec<u32> = (1..=step as u32).rev().collect();
    assert_eq!(
        rollbacks(&journal),
        expected,
        "step {step} first, then the ones before it"
    );
    for k in 1..=3 {
        let ran = usize::from(k <= step);
        assert_eq!(s.runs(k, "execute"), ran, "step {k}'s execute ran {ran} time(s)");
        assert_eq!(s.target(k), "broken", "step {k}'s target is as before");
    }
    assert_eq!(fix["outcome"]["kind"], "rolled-back", "{fix:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_inside_step_1s_execute_rolls_back_step_1() {
    killed_in_execute_of(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_inside_step_2s_execute_rolls_back_step_2_then_step_1() {
    killed_in_execute_of(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_inside_step_3s_execute_rolls_back_steps_3_2_1() {
    killed_in_execute_of(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_inside_step_2s_verify_resumes_it_and_finishes_the_remedy() {
    let s = setup("steps-crash-verify2");
    let incident = kill_inside(&s, 2, "verify").await;
    let (fix, journal, serve) = restart_and_finish_serving(&s, &incident).await;
    assert_eq!(outcome(&journal), FixOutcome::Succeeded, "{journal:#?}");
    assert!(rollbacks(&journal).is_empty());
    for k in 1..=3 {
        assert_eq!(s.runs(k, "execute"), 1, "step {k}'s execute ran once");
        assert_eq!(s.target(k), "healthy");
    }
    assert!(
        journal
            .iter()
            .any(|e| matches!(&e.event, JournalEvent::Recovered { note } if note.contains("step 2's execute had completed"))),
        "{journal:#?}"
    );
    assert_eq!(fix["outcome"]["kind"], "succeeded", "{fix:#}");

    // The incident page lists the steps with how each ended, and the journal says which step
    // each phase belongs to; so does `rootfix fix journal`.
    let page = ui_page(&serve.url, &incident).await;
    assert!(page.contains("<ol id=\"steps\">"), "{page}");
    for k in 1..=3 {
        assert!(
            page.contains(&format!(
                "<li data-step=\"{k}\">{} <code>target=order-{}</code> — <span class=\"step-status\">succeeded</span></li>",
                STEPS[k - 1],
                ["one", "two", "three"][k - 1]
            )),
            "step {k}: {page}"
        );
    }
    assert!(page.contains("<td>step 2 · verify</td>"), "{page}");
    // An operator's fix runs one action; a remedy of steps is refused with why.
    let refused = reqwest::Client::new()
        .post(format!("{}/api/v1/incidents/{incident}/fix", serve.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"action": "three-steps", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let why = refused.text().await.unwrap();
    assert!(why.contains("is a remedy of several steps"), "{why}");
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .env("ROOTFIX_URL", &serve.url)
        .env("ROOTFIX_TOKEN", ADMIN_TOKEN)
        .args(["fix", "journal", "--incident", &incident])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&cli.stdout);
    assert!(
        text.contains(&format!("fix {incident}/three-steps: succeeded")),
        "{text}"
    );
    assert!(text.contains("  step 2: step-two target=order-two"), "{text}");
    assert!(text.contains("  3:execute "), "{text}");
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .env("ROOTFIX_URL", &serve.url)
        .env("ROOTFIX_TOKEN", ADMIN_TOKEN)
        .args(["incidents", "show", &incident])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("    step 2: step-two target=order-two"), "{text}");
}

/// A remedy in waves through the real serve: the targets come from a JSON API the playbook
/// reads (a `jsonhttp` signal), an admin approves, the canary and then the rest run; one target
/// of the second wave fails its verify, so that wave is rolled back and the canary stays. The
/// incident page shows each target with its wave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remedy_in_waves_runs_through_serve_and_the_page_shows_its_waves() {
    docker::test_image();
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    for n in 1..=4 {
        let folder = control.join("targets").join(format!("t{n}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("target"), "broken\n").unwrap();
    }
    std::fs::write(control.join("target"), "broken\n").unwrap();
    std::fs::write(control.join("targets/t3/verify.exit"), "1").unwrap();
    std::fs::create_dir_all(dir.path().join("actions/wave-fix")).unwrap();
    std::fs::write(
        dir.path().join("actions/wave-fix/action.yaml"),
        docker::test_action_yaml("wave-fix", docker::TEST_IMAGE, &control, ""),
    )
    .unwrap();
    // The inventory the playbook asks for the targets.
    let app = axum::Router::new().route(
        "/replicas",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"targets": ["t1", "t2", "t3", "t4"]})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inventory = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::write(
        dir.path().join("playbooks/waves.yaml"),
        format!(
            r#"apiVersion: rootfix/v1
kind: Playbook
metadata: {{name: waves-serve}}
spec:
  match: ['alertname="OrderServiceTimeout"']
  evidence:
    replicas:
      jsonhttp: {{url: '{inventory}/replicas', path: '$.targets'}}
  tree:
    id: waves_root
    children:
      - id: waves_leaf
        when: 'alert.labels.env == "staging"'
        remedy:
          action: wave-fix
          waves: {{targets: replicas, param: target, sizes: [1, '100%']}}
          confidence:
            threshold: 0.5
            signals: [{{when: 'alert.labels.env == "staging"', weight: 1.0}}]
"#
        ),
    )
    .unwrap();
    let port = free_port();
    let config = process::write_config(
        dir.path(),
        port,
        &redis_url(),
        &unique_prefix("steps-waves-serve"),
        &dir.path().join("playbooks"),
        &dir.path().join("actions"),
        &format!(
            "fixes: {{state_dir: '{}'}}\nautonomy:\n  scopes:\n    - {{name: staging, match: ['env=\"staging\"'], max_stage: auto, fixes_per_hour: 100, concurrency: 1}}\n",
            dir.path().join("fix-state").display()
        ),
    );
    let serve = process::Serve::start(&config, port, &dir.path().join("serve.log"));
    post_firing_alert(&serve.url, "order", "cf12c1db58df9346").await;
    let wait_for = |state: &'static str| {
        let url = serve.url.clone();
        async move {
            let started = Instant::now();
            loop {
                let list = admin_api(reqwest::Method::GET, &format!("{url}/api/v1/incidents")).await;
                if list["items"][0]["state"] == state {
                    let id = list["items"][0]["id"].as_str().unwrap().to_string();
                    return admin_api(reqwest::Method::GET, &format!("{url}/api/v1/incidents/{id}")).await;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "never {state}: {list:#}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let incident = wait_for("awaiting-approval").await;
    assert_eq!(
        incident["fix"]["waves"],
        serde_json::json!([1, 3]),
        "{incident:#}"
    );
    let approval = incident["fix"]["approval"].as_str().unwrap().to_string();
    admin_api(
        reqwest::Method::POST,
        &format!("{}/api/v1/approvals/{approval}/approve", serve.url),
    )
    .await;
    let started = Instant::now();
    let done = loop {
        let id = incident["id"].as_str().unwrap();
        let now = admin_api(
            reqwest::Method::GET,
            &format!("{}/api/v1/incidents/{id}", serve.url),
        )
        .await;
        if !now["fix"]["outcome"].is_null() {
            break now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{now:#}\n{}",
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["fix"]["outcome"]["kind"], "rolled-back", "{done:#}");
    let reason = done["fix"]["outcome"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("wave 2 of 2, target 3") && reason.contains("(1 target(s))"),
        "{reason}"
    );
    let target = |n: u32| {
        std::fs::read_to_string(control.join(format!("targets/t{n}/target")))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        (target(1), target(2), target(3), target(4)),
        (
            "healthy".into(),
            "broken".into(),
            "broken".into(),
            "broken".into()
        ),
        "the canary stays; wave 2 is undone; t4 never ran"
    );
    let id = incident["id"].as_str().unwrap();
    let page = ui_page(&serve.url, id).await;
    assert!(page.contains("<tr><th>Waves</th>"), "{page}");
    assert!(
        page.contains("<li data-step=\"1\" data-wave=\"1\">wave 1 · wave-fix <code>target=t1</code> — <span class=\"step-status\">succeeded</span></li>"),
        "{page}"
    );
    assert!(page.contains("<li data-step=\"4\" data-wave=\"2\">wave 2 · wave-fix <code>target=t4</code> — <span class=\"step-status\">not started</span></li>"), "{page}");
    assert!(page.contains("wave 2 started"), "{page}");
}
