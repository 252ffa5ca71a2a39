//! The seed's replica-lag response, timed (`cargo bench --bench remedy_steps`; needs Redis,
//! Docker, Debian's mariadb-server and the action images). From the decision to run the remedy
//! (the executor's start: locks, journal) to all three steps verified, against a real MariaDB
//! primary and replica (replicating, on loopback) and a local HTTP flag service: read-only on the
//! replica, the slow-query throttle on the primary, the degradation switch on. Each run starts
//! from the values restored. Prints the total per run (p50, max over the runs) and where the time
//! goes: the phase containers' own run (the MariaDB client or curl inside), the engine's create
//! and start, and rootfix's own time (journal, locks, audit) around them. The seed reports 17 s.

#[path = "../../tests/support/actions.rs"]
mod actions;
#[path = "../../tests/support/flags.rs"]
mod flags;
#[path = "../../tests/support/mariadb.rs"]
mod mariadb;
#[path = "../../tests/support/replica_lag.rs"]
mod replica_lag;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rootfix::fix::executor::{Executor, LockPolicy};
use rootfix::fix::journal::{FixOutcome, JournalEvent};
use rootfix::runner::docker::{DockerRunner, HostPaths};
use rootfix::state::StateStore;

const RUNS: usize = 10;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    actions::ensure_images();
    let (primary, replica) = tokio::task::spawn_blocking(mariadb::MariaDb::pair)
        .await
        .expect("the MariaDB pair");
    let flags = flags::FlagService::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("http-secrets")).expect("mkdir");
    let host_paths = replica_lag::host_paths(&primary.secrets_dir(), &dir.path().join("http-secrets"));
    let state: Arc<dyn StateStore> = Arc::new(support::redis_store("bench-steps").await);
    let runner = DockerRunner::connect(dir.path().join("fix-state"))
        .await
        .expect("the Docker engine")
        .with_host_paths(HostPaths::new(host_paths))
        .with_instance(&support::unique_prefix("bench-steps"));
    let executor = Executor {
        state: state.clone(),
        docker: Some(Arc::new(runner)),
        kubernetes: None,
        kubernetes_job: None,
        lease: Duration::from_secs(30),
        lock_policy: LockPolicy::Refuse,
    };
    let url = format!("{}/flags/degrade-reads", flags.url);

    let mut totals = Vec::new();
    let (mut container, mut engine, mut own) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut phases = 0usize;
    for run in 0..RUNS {
        // Back to the lagging state: writable replica, no cap, switch off.
        replica
            .root_sql("SET GLOBAL read_only = OFF")
            .expect("reset replica");
        primary
            .root_sql("SET GLOBAL max_statement_time = 0")
            .expect("reset primary");
        flags
            .values
            .lock()
            .expect("flags")
            .insert("degrade-reads".into(), "off".into());
        let incident = format!("inc-bench-steps-{}-{run}", std::process::id());
        let plan = replica_lag::response(&incident, &replica.address(), &primary.address(), &url);
        let started = Instant::now();
        let report = executor.run_steps(plan).await.expect("the remedy runs");
        let total = started.elapsed();
        assert_eq!(report.outcome, FixOutcome::Succeeded, "{report:#?}");
        assert_eq!(replica.global("read_only"), "1");
        assert_eq!(primary.global("max_statement_time"), "2.000000");
        totals.push(total);
        // Each phase: the container's own run (started → exited, from the journal's phase
        // times minus rootfix's measured overhead), the engine's create-and-start, rootfix's own.
        let journal = state.journal(&incident).await.expect("journal");
        let mut open = BTreeMap::new();
        let mut wall = Duration::ZERO;
        for e in &journal {
            match &e.event {
                JournalEvent::PhaseStarted { phase, attempt } => {
                    open.insert((e.step, *phase, *attempt), e.at);
                }
                JournalEvent::PhaseFinished { phase, attempt, .. } => {
                    if let Some(at) = open.remove(&(e.step, *phase, *attempt)) {
                        wall += (e.at - at).to_std().unwrap_or_default();
                    }
                }
                _ => {}
            }
        }
        let around: Duration = report
            .overhead
            .iter()
            .map(|o| o.decision_to_create + o.exit_to_journal)
            .sum();
        let create: Duration = report.overhead.iter().map(|o| o.create_to_start).sum();
        phases += report.overhead.len();
        engine += create;
        container += wall.saturating_sub(create + around);
        own += total.saturating_sub(wall) + around;
    }
    let mut sorted = totals.clone();
    sorted.sort();
    let p50 = sorted[sorted.len() / 2];
    let max = sorted[sorted.len() - 1];
    let n = RUNS as f64;
    println!(
        "replica-lag response: decision → three steps verified, {RUNS} runs on real MariaDB (primary + replica) and a flag service"
    );
    println!(
        "  total: p50 {:.0} ms, max {:.0} ms (the seed: 17 s); {} phase containers per run",
        ms(p50),
        ms(max),
        phases / RUNS
    );
    println!(
        "  per run: containers' own run {:.0} ms, the engine's create+start {:.0} ms, rootfix's own time {:.0} ms",
        ms(container) / n,
        ms(engine) / n,
        ms(own) / n
    );
}
