//! The seed's replica-lag response killed mid-way, with the shipped actions against the real
//! servers: a real `rootfix serve` (real Redis, the real Docker engine) diagnoses the alert, an
//! admin approves the three-step remedy, and the moment step k's execute container starts (the
//! engine's `start` event) the test freezes it (`docker pause`) and SIGKILLs serve, so rootfix dies
//! with that execute running. The next start of serve rolls back step k and the steps before it,
//! step k first: the replica takes writes again, the primary's cap is lifted, the switch is off,
//! on the real MariaDB primary and replica and the flag service. The journal holds one execute
//! per step that ran: none ran twice. Step 3 is never reached when k < 3.

#[path = "support/actions.rs"]
mod actions;
#[path = "support/flags.rs"]
mod flags;
#[path = "support/mariadb.rs"]
mod mariadb;
#[path = "support/process.rs"]
mod process;
#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rootfix::fix::journal::{FixOutcome, JournalEntry, JournalEvent};
use rootfix::model::action::PhaseName;
use rootfix::state::{FixStore, IncidentStore};
use support::*;

fn playbook(replica: &str, primary: &str, flags: &str) -> String {
    format!(
        r#"apiVersion: rootfix/v1
kind: Playbook
metadata: {{name: replica-lag-crash}}
spec:
  match: ['alertname="OrderServiceTimeout"']
  tree:
    id: lag_root
    children:
      - id: lag_leaf
        when: 'alert.labels.env == "staging"'
        remedy:
          name: replica-lag-response
          steps:
            - action: mysql-replica-lag
              params: {{replica_address: '{replica}', mode: read-only}}
            - action: mysql-replica-lag
              params: {{replica_address: '{primary}', mode: slow-query-throttle, max_execution_ms: '2000'}}
            - action: http-set-value
              params: {{url: '{flags}/flags/{{{{ $labels.service }}}}-degrade', value: 'on'}}
          confidence:
            threshold: 0.5
            signals: [{{when: 'alert.labels.env == "staging"', weight: 1.0}}]
"#
    )
}

/// Posts a firing alert of service `service` and waits for its approval; (incident, approval).
async fn diagnosed(url: &str, service: &str, fingerprint: &str) -> (String, String) {
    post_firing_alert(url, service, fingerprint).await;
    let started = Instant::now();
    loop {
        let list = admin_api(
            reqwest::Method::GET,
            &format!("{url}/api/v1/incidents?state=awaiting-approval"),
        )
        .await;
        let found = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["service"] == service)
            .cloned();
        if let Some(item) = found {
            let id = item["id"].as_str().unwrap().to_string();
            let incident = admin_api(reqwest::Method::GET, &format!("{url}/api/v1/incidents/{id}")).await;
            return (id, incident["fix"]["approval"].as_str().unwrap().to_string());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no approval: {list:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the engine's `start` of step `step`'s execute container and pauses it at once.
async fn pause_when_execute_starts(incident: &str, step: usize) -> tokio::task::JoinHandle<String> {
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        ("event".to_string(), vec!["start".to_string()]),
        (
            "label".to_string(),
            vec![
                "rootfix.phase=execute".to_string(),
                format!("rootfix.incident={incident}-step{step}"),
            ],
        ),
    ]);
    let options = bollard::query_parameters::EventsOptionsBuilder::default()
        .filters(&filters)
        .build();
    let mut events = docker.events(Some(options));
    // The subscription is open once the engine answers the request: wait for it to be sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::spawn(async move {
        let event = events
            .next()
            .await
            .expect("an event")
            .expect("the engine's events");
        let id = event.actor.and_then(|a| a.id).expect("the container's id");
        docker
            .pause_container(&id)
            .await
            .expect("pause the execute container");
        id
    })
}

fn executes(journal: &[JournalEntry]) -> Vec<u32> {
    journal
        .iter()
        .filter_map(|e| match &e.event {
            JournalEvent::PhaseStarted {
                phase: PhaseName::Execute,
                ..
            } => e.step,
            _ => None,
        })
        .collect()
}

fn rollbacks(journal: &[JournalEntry]) -> Vec<u32> {
    journal
        .iter()
        .filter_map(|e| match &e.event {
            JournalEvent::PhaseFinished {
                phase: PhaseName::Rollback,
                exit,
                ..
            } => {
                assert_eq!(
                    *exit,
                    rootfix::runner::PhaseExit::Success,
                    "step {:?}'s rollback",
                    e.step
                );
                e.step
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_inside_each_steps_execute_restores_the_real_primary_replica_and_switch() {
    actions::ensure_images();
    let (primary, replica) = tokio::task::spawn_blocking(mariadb::MariaDb::pair).await.unwrap();
    let flags = flags::FlagService::start().await;
    let dir = tempfile::tempdir().unwrap();
    for d in ["playbooks", "http-secrets", "fix-state"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    std::fs::write(
        dir.path().join("playbooks/lag.yaml"),
        playbook(&replica.address(), &primary.address(), &flags.url),
    )
    .unwrap();
    let prefix = unique_prefix("steps-crash-mariadb");
    let port = free_port();
    let config = process::write_config(
        dir.path(),
        port,
        &redis_url(),
        &prefix,
        &dir.path().join("playbooks"),
        &repo_path("actions"),
        &format!(
            "fixes:\n  state_dir: '{}'\n  lease: 3s\n  host_paths:\n    /etc/rootfix/secrets/mysql: '{}'\n    /etc/rootfix/secrets/http-set-value: '{}'\nautonomy:\n  scopes:\n    - {{name: staging, match: ['env=\"staging\"'], max_stage: auto, fixes_per_hour: 100, concurrency: 3}}\n",
            dir.path().join("fix-state").display(),
            primary.secrets_dir().display(),
            dir.path().join("http-secrets").display(),
        ),
    );
    let log = dir.path().join("serve.log");
    let store = rootfix::state::redis::RedisStateStore::connect(&redis_url(), &prefix)
        .await
        .unwrap();

    for step in 1..=3usize {
        let service = format!("order{step}");
        flags
            .values
            .lock()
            .unwrap()
            .insert(format!("{service}-degrade"), "off".into());
        let mut serve = process::Serve::start(&config, port, &log);
        let (incident, approval) = diagnosed(&serve.url, &service, &format!("cf12c1db58df934{step}")).await;
        let paused = pause_when_execute_starts(&incident, step).await;
        admin_api(
            reqwest::Method::POST,
            &format!("{}/api/v1/approvals/{approval}/approve", serve.url),
        )
        .await;
        let container = tokio::time::timeout(Duration::from_secs(60), paused)
            .await
            .unwrap_or_else(|_| panic!("step {step}'s execute never started:\n{}", serve.log_text()))
            .unwrap();
        serve.kill(); // SIGKILL while step `step`'s execute runs (frozen)
        let before_restart = store.journal(&incident).await.unwrap();
        assert_eq!(executes(&before_restart), (1..=step as u32).collect::<Vec<_>>());
        let execute_ended = before_restart.iter().any(|e| {
            e.step == Some(step as u32)
                && matches!(
                    e.event,
                    JournalEvent::PhaseFinished {
                        phase: PhaseName::Execute,
                        ..
                    }
                )
        });
        assert!(
            !execute_ended,
            "step {step}: serve died inside the execute, not after it"
        );

        // The next start recovers before it serves.
        let serve = process::Serve::start(&config, port, &log);
        assert!(
            store.active_fixes().await.unwrap().is_empty(),
            "{}",
            serve.log_text()
        );
        let journal = store.journal(&incident).await.unwrap();
        let outcome = match journal.last().map(|e| &e.event) {
            Some(JournalEvent::FixFinished { outcome }) => outcome.clone(),
            other => panic!(
                "step {step}: the journal ends with {other:?}:\n{}",
                serve.log_text()
            ),
        };
        assert!(
            matches!(&outcome, FixOutcome::RolledBack(_)) && outcome.interrupted_by_restart(),
            "step {step}: {outcome:?}"
        );
        let expected: Vec<u32> = (1..=step as u32).rev().collect();
        assert_eq!(
            rollbacks(&journal),
            expected,
            "step {step}: step {step} first, then the ones before it"
        );
        assert_eq!(
            executes(&journal),
            (1..=step as u32).collect::<Vec<_>>(),
            "step {step}: no execute ran twice, none after step {step}"
        );
        assert_eq!(
            replica.global("read_only"),
            "0",
            "step {step}: the replica takes writes"
        );
        assert_eq!(
            primary.global("max_statement_time"),
            "0.000000",
            "step {step}: the primary's cap is lifted"
        );
        assert_eq!(
            flags.values.lock().unwrap()[&format!("{service}-degrade")],
            "off",
            "step {step}: the switch is off"
        );
        let fix = store.incident(&incident).await.unwrap().unwrap().fix.unwrap();
        assert!(matches!(fix.outcome, Some(FixOutcome::RolledBack(_))), "{fix:?}");
        // The frozen container is gone: recovery removed what the dead rootfix left.
        let docker = bollard::Docker::connect_with_local_defaults().unwrap();
        assert!(
            docker.inspect_container(&container, None).await.is_err(),
            "step {step}: the paused execute container was left behind"
        );
        drop(serve);
    }
}
