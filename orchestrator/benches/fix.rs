//! The fix executor's overhead on the real Docker engine (`cargo bench --bench fix`; needs Redis
//! and Docker). Runs 100 fixes of the runner tests' action (precheck, execute, verify: 300
//! containers) and prints, per phase, p50/p99 of rootfix's own time from deciding to run a phase
//! to the engine's create request, and from the container's exit to the journal write; beside
//! them, the engine's own create-to-start time.

#[path = "../../tests/support/docker.rs"]
mod docker;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rootfix::catalog::{Catalog, Source};
use rootfix::fix::executor::{Executor, FixPlan, LockPolicy, PhaseOverhead};
use rootfix::fix::journal::FixOutcome;
use rootfix::runner::docker::DockerRunner;
use rootfix::state::StateStore;

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    docker::test_image();
    let control = tempfile::tempdir().expect("tempdir");
    let state_root = tempfile::tempdir().expect("tempdir");
    let state: Arc<dyn StateStore> = Arc::new(support::redis_store("bench-fix").await);
    let runner = DockerRunner::connect(state_root.path().to_path_buf())
        .await
        .expect("the Docker engine");
    let executor = Executor {
        state,
        docker: Some(Arc::new(runner)),
        kubernetes: None,
        kubernetes_job: None,
        lease: Duration::from_secs(30),
        lock_policy: LockPolicy::Refuse,
    };
    let text = docker::test_action_yaml("bench-fix", docker::TEST_IMAGE, control.path(), "");
    let catalog = Catalog::from_sources(&[Source {
        path: "a.yaml".into(),
        text,
    }])
    .expect("action");
    let action = catalog.actions["bench-fix"].clone();

    let n = 100;
    let mut overhead: Vec<PhaseOverhead> = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..n {
        std::fs::write(control.path().join("target"), "broken\n").expect("target");
        let report = executor
            .run(FixPlan {
                incident: format!("inc-bench-{}-{i}", std::process::id()),
                action: action.clone(),
                params: BTreeMap::from([("target".to_string(), "checkout".to_string())]),
                verify: None,
                dry_run: false,
            })
            .await
            .expect("fix");
        assert_eq!(report.outcome, FixOutcome::Succeeded, "{report:?}");
        overhead.extend(report.overhead);
    }
    let elapsed = started.elapsed();
    let col = |f: fn(&PhaseOverhead) -> Duration| overhead.iter().map(f).collect::<Vec<_>>();
    println!(
        "rootfix fix benchmark — {n} fixes, {} phase containers, real Docker engine\n",
        overhead.len()
    );
    println!("                                          p50        p99");
    for (label, values) in [
        (
            "decision → create request (rootfix)",
            col(|o| o.decision_to_create),
        ),
        (
            "container exit → journal written (rootfix)",
            col(|o| o.exit_to_journal),
        ),
        ("create → started (the engine)", col(|o| o.create_to_start)),
    ] {
        println!(
            "{label:<44} {:7.2} ms {:7.2} ms",
            pct(values.clone(), 0.5),
            pct(values, 0.99)
        );
    }
    println!(
        "\ngoal: rootfix's p99 < 10 ms per phase; whole run {:.1} s ({:.0} ms per fix)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / n as f64
    );
}
