//! Crash safety: `rootfix serve` running an operator's fix (`rootfix fix run` through its API) is
//! killed with SIGKILL inside each phase, then `rootfix fix recover` finishes the fix from the
//! journal: before execute nothing is changed;
//! inside execute it rolls back; after a completed execute it resumes verify; inside rollback it
//! rolls back again. No execute ever runs twice (the action counts its runs in a host file).

#[path = "support/docker.rs"]
mod docker;
#[path = "support/process.rs"]
mod process;
#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rootfix::fix::journal::{FixOutcome, JournalEvent};
use rootfix::state::{FixStore, IncidentStore};
use support::*;

fn runs(control: &Path, phase: &str) -> usize {
    std::fs::read_to_string(control.join(format!("{phase}.runs")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

struct Setup {
    _dir: tempfile::TempDir,
    control: std::path::PathBuf,
    config: std::path::PathBuf,
    prefix: String,
    port: u16,
    log: std::path::PathBuf,
}

fn setup(test: &str) -> Setup {
    docker::test_image();
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    let actions = dir.path().join("actions/test-fix");
    std::fs::create_dir_all(&control).unwrap();
    std::fs::create_dir_all(&actions).unwrap();
    std::fs::write(control.join("target"), "broken\n").unwrap();
    std::fs::write(
        actions.join("action.yaml"),
        docker::test_action_yaml("test-fix", docker::TEST_IMAGE, &control, ""),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    let prefix = unique_prefix(test);
    let port = free_port();
    let config = dir.path().join("rootfix.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nredis: {{url: '{}', key_prefix: '{prefix}'}}\nplaybooks: playbooks\nactions: actions\ntokens:\n  - {{name: alertmanager, role: ingest, token: {INGEST_TOKEN}}}\n  - {{name: admin, role: admin, token: {ADMIN_TOKEN}}}\nfixes: {{state_dir: {}, lease: 3s}}\n",
            redis_url(),
            dir.path().join("fix-state").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    Setup {
        _dir: dir,
        control,
        config,
        prefix,
        port,
        log,
    }
}

fn rootfix(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rootfix"));
    cmd.arg("fix")
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts `rootfix serve`, opens an incident with an alert, starts an operator's fix on it through
/// the API, waits until `phase` is running inside its container, and SIGKILLs serve. Returns the
/// incident's id.
async fn kill_inside(s: &Setup, phase: &'static str) -> String {
    let (config, port, log) = (s.config.clone(), s.port, s.log.clone());
    let serve = tokio::task::spawn_blocking(move || process::Serve::start(&config, port, &log))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let alert = std::fs::read_to_string(repo_path(
        "tests/fixtures/alertmanager/order-service-timeout.firing.json",
    ))
    .unwrap();
    let r = client
        .post(format!("{}/api/v1/alerts/alertmanager", serve.url))
        .bearer_auth(INGEST_TOKEN)
        .header("content-type", "application/json")
        .body(alert)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let started = Instant::now();
    let incident = loop {
        let list: serde_json::Value = client
            .get(format!("{}/api/v1/incidents", serve.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(id) = list["items"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no incident");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let control = s.control.clone();
    let id = incident.clone();
    tokio::task::spawn_blocking(move || kill_inside_blocking(&control, serve, &id, phase))
        .await
        .unwrap();
    incident
}

fn kill_inside_blocking(control: &Path, mut serve: process::Serve, incident: &str, phase: &str) {
    std::fs::write(control.join(format!("{phase}.sleep")), "30").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .env("ROOTFIX_URL", &serve.url)
        .env("ROOTFIX_TOKEN", ADMIN_TOKEN)
        .args([
            "fix",
            "run",
            "--incident",
            incident,
            "--action",
            "test-fix",
            "--param",
            "target=checkout",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let before = runs(control, phase);
    while runs(control, phase) == before {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{phase} never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "rootfix fix run ended before {phase}; serve's log:\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    serve.kill(); // SIGKILL: the fix dies with the server running it
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_file(control.join(format!("{phase}.sleep"))).unwrap();
}

async fn recover(s: &Setup, incident: &str) -> FixOutcome {
    let out = tokio::task::spawn_blocking({
        let config = s.config.clone();
        move || rootfix(&config, &["recover"]).output().unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("fix {incident}/test-fix:")),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = rootfix::state::redis::RedisStateStore::connect(&redis_url(), &s.prefix)
        .await
        .unwrap();
    assert!(
        store.active_fixes().await.unwrap().is_empty(),
        "the fix is still marked unfinished"
    );
    let journal = store.journal(incident).await.unwrap();
    match journal.last().map(|e| &e.event) {
        Some(JournalEvent::FixFinished { outcome }) => outcome.clone(),
        other => panic!("the journal does not end with the outcome: {other:?}"),
    }
}

fn target(s: &Setup) -> String {
    std::fs::read_to_string(s.control.join("target"))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_precheck_nothing_changes() {
    let s = setup("crash-precheck");
    let incident = &kill_inside(&s, "precheck").await;
    let outcome = recover(&s, incident).await;
    assert!(
        matches!(&outcome, FixOutcome::Aborted(r) if r.contains("before execute")),
        "{outcome:?}"
    );
    assert_eq!(
        (runs(&s.control, "execute"), target(&s)),
        (0, "broken".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_execute_rolls_back() {
    let s = setup("crash-execute");
    let incident = &kill_inside(&s, "execute").await;
    let outcome = recover(&s, incident).await;
    assert!(
        matches!(&outcome, FixOutcome::RolledBack(r) if r.contains("during execute")),
        "{outcome:?}"
    );
    // The killed execute is not run again, and the leftover container was stopped before it acted.
    assert_eq!(runs(&s.control, "execute"), 1);
    assert_eq!(runs(&s.control, "rollback"), 1);
    assert_eq!(target(&s), "broken");
    docker::assert_no_containers_left(incident);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_verify_resumes_verify_and_never_executes_twice() {
    let s = setup("crash-verify");
    let incident = &kill_inside(&s, "verify").await;
    assert_eq!(target(&s), "healthy", "execute completed before the kill");
    let outcome = recover(&s, incident).await;
    assert_eq!(outcome, FixOutcome::Succeeded);
    assert_eq!(runs(&s.control, "execute"), 1, "a completed execute ran again");
    assert_eq!(runs(&s.control, "rollback"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_rollback_rolls_back_again() {
    let s = setup("crash-rollback");
    std::fs::write(s.control.join("verify.exit"), "1").unwrap();
    let incident = &kill_inside(&s, "rollback").await;
    let outcome = recover(&s, incident).await;
    assert!(matches!(&outcome, FixOutcome::RolledBack(_)), "{outcome:?}");
    assert_eq!(runs(&s.control, "execute"), 1);
    assert_eq!(runs(&s.control, "rollback"), 2);
    assert_eq!(target(&s), "broken");
}

/// A fix cut short by rootfix's own crash mid-execute is `interrupted`, not the action's failure:
/// the restarted `serve` rolls it back and the incident's timeline says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_execute_then_serve_restarts_and_the_incident_says_interrupted() {
    let s = setup("crash-interrupted");
    let incident = kill_inside(&s, "execute").await;
    let (config, port, log) = (s.config.clone(), s.port, s.log.clone());
    let serve = tokio::task::spawn_blocking(move || process::Serve::start(&config, port, &log))
        .await
        .unwrap();
    let store = rootfix::state::redis::RedisStateStore::connect(&redis_url(), &s.prefix)
        .await
        .unwrap();
    let started = Instant::now();
    let closed = loop {
        let i = store.incident(&incident).await.unwrap().unwrap();
        if i.timeline.iter().any(|t| t.kind == "interrupted") {
            break i;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the restarted serve never closed the interrupted fix: {:#?}\n{}",
            i.timeline,
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        matches!(
            closed.fix.as_ref().and_then(|f| f.outcome.as_ref()),
            Some(FixOutcome::RolledBack(r)) if r.contains("during execute")
        ),
        "{:#?}",
        closed.fix
    );
    assert_eq!(
        runs(&s.control, "execute"),
        1,
        "the killed execute is not run again"
    );
    assert_eq!(target(&s), "broken");
    assert!(store.active_fixes().await.unwrap().is_empty());
}

/// The restarted `serve` opens its port before it recovers: `/healthz` answers and `/readyz`
/// says "recovering 1 unfinished fix" while the rollback runs, alerts are stored meanwhile, and
/// it is ready once the fix is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_runs_with_the_port_open_and_readyz_says_so() {
    let s = setup("crash-port-open");
    let _incident = kill_inside(&s, "execute").await;
    // The rollback at the next start takes a few seconds.
    std::fs::write(s.control.join("rollback.sleep"), "4").unwrap();
    let (config, port, log) = (s.config.clone(), s.port, s.log.clone());
    let serve = tokio::task::spawn_blocking(move || process::Serve::start_unready(&config, port, &log))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let recovering = loop {
        let body: serde_json::Value = client
            .get(format!("{}/readyz", serve.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        if body["phase"]["phase"] == "recovering" {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never seen recovering: {body}\n{}",
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(recovering["ready"], false, "{recovering}");
    assert_eq!(
        recovering["reasons"][0], "recovering 1 unfinished fix from the journal",
        "{recovering}"
    );
    let health = client.get(format!("{}/healthz", serve.url)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // Alertmanager's webhooks are stored during recovery (handled once the event loop reads).
    let alert = std::fs::read_to_string(repo_path(
        "tests/fixtures/alertmanager/order-service-timeout.resolved.json",
    ))
    .unwrap();
    let stored = client
        .post(format!("{}/api/v1/alerts/alertmanager", serve.url))
        .bearer_auth(INGEST_TOKEN)
        .body(alert)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status().as_u16(), 200);
    let serve = tokio::task::spawn_blocking(move || {
        serve.wait_serving(Duration::from_secs(60));
        serve
    })
    .await
    .unwrap();
    let store = rootfix::state::redis::RedisStateStore::connect(&redis_url(), &s.prefix)
        .await
        .unwrap();
    assert!(
        store.active_fixes().await.unwrap().is_empty(),
        "{}",
        serve.log_text()
    );
    assert_eq!(runs(&s.control, "rollback"), 1);
    let _ = std::fs::remove_file(s.control.join("rollback.sleep"));
}
