//! The docker runner and the fix executor against the real Docker engine and real Redis: success,
//! verify failure → rollback (target back as before), a hung execute killed at its timeout →
//! rollback, precheck exit 3 → no-op, a missing image → a clear error naming the build command,
//! two concurrent fixes on one target → exactly one runs, hostile param values, the journal.

#[path = "support/docker.rs"]
mod docker;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rootfix::catalog::{Catalog, Source};
use rootfix::fix::executor::{Executor, FixPlan, LockPolicy};
use rootfix::fix::journal::{FixOutcome, JournalEvent};
use rootfix::model::Action;
use rootfix::model::action::PhaseName;
use rootfix::runner::PhaseExit;
use rootfix::runner::docker::DockerRunner;
use rootfix::state::StateStore;

struct Bench {
    control: tempfile::TempDir,
    _state_root: tempfile::TempDir,
    state: Arc<dyn StateStore>,
    executor: Arc<Executor>,
}

async fn bench(test: &str, policy: LockPolicy) -> Bench {
    docker::test_image();
    let control = tempfile::tempdir().unwrap();
    std::fs::write(control.path().join("target"), "broken\n").unwrap();
    let state_root = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(support::redis_store(test).await);
    let runner = DockerRunner::connect(state_root.path().to_path_buf())
        .await
        .expect("the Docker engine answers");
    let executor = Arc::new(Executor {
        state: state.clone(),
        docker: Some(Arc::new(runner)),
        kubernetes: None,
        kubernetes_job: None,
        lease: Duration::from_secs(10),
        lock_policy: policy,
    });
    Bench {
        control,
        _state_root: state_root,
        state,
        executor,
    }
}

fn action(name: &str, image: &str, control: &Path, extra: &str) -> Arc<Action> {
    let source = Source {
        path: format!("{name}.yaml").into(),
        text: docker::test_action_yaml(name, image, control, extra),
    };
    let catalog = Catalog::from_sources(&[source]).unwrap_or_else(|p| panic!("{p:#?}"));
    catalog.actions[name].clone()
}

fn plan(incident: &str, action: Arc<Action>, target: &str) -> FixPlan {
    FixPlan {
        incident: incident.to_string(),
        action,
        params: BTreeMap::from([("target".to_string(), target.to_string())]),
        verify: None,
        dry_run: false,
    }
}

fn runs(control: &Path, phase: &str) -> usize {
    std::fs::read_to_string(control.join(format!("{phase}.runs")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn target(control: &Path) -> String {
    std::fs::read_to_string(control.join("target"))
        .unwrap()
        .trim()
        .to_string()
}

fn incident(test: &str) -> String {
    format!("inc-{test}-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_executes_and_verifies_and_journals_every_phase() {
    let b = bench("docker-success", LockPolicy::Refuse).await;
    let a = action("test-fix", docker::TEST_IMAGE, b.control.path(), "");
    let id = incident("success");
    let report = b.executor.run(plan(&id, a, "checkout")).await.unwrap();
    assert_eq!(report.outcome, FixOutcome::Succeeded);
    let phases: Vec<PhaseName> = report.phases.iter().map(|(p, _, _)| *p).collect();
    assert_eq!(
        phases,
        [PhaseName::Precheck, PhaseName::Execute, PhaseName::Verify]
    );
    assert_eq!(target(b.control.path()), "healthy");
    assert_eq!(
        (
            runs(b.control.path(), "execute"),
            runs(b.control.path(), "rollback")
        ),
        (1, 0)
    );
    // No container is left behind.
    docker::assert_no_containers_left(&id);
    // The journal: started before finished, output kept, fix finished last.
    let journal = b.state.journal(&id).await.unwrap();
    let kinds: Vec<String> = journal
        .iter()
        .map(|e| match &e.event {
            JournalEvent::FixStarted { .. } => "fix-started".into(),
            JournalEvent::PhaseStarted { phase, .. } => format!("{}-started", phase.as_str()),
            JournalEvent::PhaseFinished { phase, .. } => format!("{}-finished", phase.as_str()),
            JournalEvent::FixFinished { .. } => "fix-finished".into(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "fix-started",
            "precheck-started",
            "precheck-finished",
            "execute-started",
            "execute-finished",
            "verify-started",
            "verify-finished",
            "fix-finished"
        ]
    );
    let JournalEvent::PhaseFinished { stdout, stderr, .. } = &journal[4].event else {
        panic!()
    };
    assert_eq!(stdout.trim(), "phase execute target=checkout");
    assert_eq!(stderr.trim(), "progress of execute");
    assert!(b.state.active_fixes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_verify_is_retried_then_rolled_back_to_the_state_before() {
    let b = bench("docker-verify-fails", LockPolicy::Refuse).await;
    std::fs::write(b.control.path().join("verify.exit"), "1").unwrap();
    let a = action("test-fix", docker::TEST_IMAGE, b.control.path(), "");
    let report = b
        .executor
        .run(plan(&incident("verify"), a, "checkout"))
        .await
        .unwrap();
    assert!(
        matches!(&report.outcome, FixOutcome::RolledBack(r) if r.contains("verify: exit code 1 after 2 attempts")),
        "{:?}",
        report.outcome
    );
    assert_eq!(runs(b.control.path(), "verify"), 2);
    assert_eq!(runs(b.control.path(), "rollback"), 1);
    assert_eq!(target(b.control.path()), "broken", "rollback restored the target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_execute_is_killed_at_its_timeout_and_rolled_back() {
    let b = bench("docker-hang", LockPolicy::Refuse).await;
    std::fs::write(b.control.path().join("execute.sleep"), "60").unwrap();
    let text = docker::test_action_yaml("test-fix", docker::TEST_IMAGE, b.control.path(), "").replace(
        "execute: {run: [/rootfix/phase], timeout: 20s}",
        "execute: {run: [/rootfix/phase], timeout: 2s}",
    );
    let catalog = Catalog::from_sources(&[Source {
        path: "a.yaml".into(),
        text,
    }])
    .unwrap();
    let id = incident("hang");
    let started = std::time::Instant::now();
    let report = b
        .executor
        .run(plan(&id, catalog.actions["test-fix"].clone(), "checkout"))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        report
            .phases
            .iter()
            .any(|(p, _, e)| *p == PhaseName::Execute && matches!(e, PhaseExit::TimedOut { .. })),
        "{:?}",
        report.phases
    );
    assert!(
        matches!(&report.outcome, FixOutcome::RolledBack(r) if r.contains("timed out")),
        "{:?}",
        report.outcome
    );
    assert_eq!(target(b.control.path()), "broken");
    docker::assert_no_containers_left(&id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precheck_exit_3_is_a_no_op_success() {
    let b = bench("docker-healthy", LockPolicy::Refuse).await;
    std::fs::write(b.control.path().join("target"), "healthy\n").unwrap();
    let a = action("test-fix", docker::TEST_IMAGE, b.control.path(), "");
    let report = b
        .executor
        .run(plan(&incident("healthy"), a, "checkout"))
        .await
        .unwrap();
    assert_eq!(report.outcome, FixOutcome::AlreadyHealthy);
    assert_eq!(runs(b.control.path(), "execute"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_a_clear_error_naming_the_build() {
    let b = bench("docker-missing", LockPolicy::Refuse).await;
    let a = action("test-fix", "rootfix-test/never-built:1", b.control.path(), "");
    let report = b
        .executor
        .run(plan(&incident("missing"), a, "checkout"))
        .await
        .unwrap();
    let FixOutcome::Aborted(reason) = &report.outcome else {
        panic!("{:?}", report.outcome)
    };
    assert_eq!(
        reason,
        "precheck: image `rootfix-test/never-built:1` is not on the engine; build it with `bash actions/build.sh` (rootfix never pulls)"
    );
    assert_eq!(runs(b.control.path(), "precheck"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_fixes_on_one_target_run_exactly_once() {
    let b = bench("docker-concurrent", LockPolicy::Refuse).await;
    std::fs::write(b.control.path().join("execute.sleep"), "1").unwrap();
    let a = action("test-fix", docker::TEST_IMAGE, b.control.path(), "");
    let (x, y) = tokio::join!(
        b.executor
            .run(plan(&incident("concurrent-a"), a.clone(), "checkout")),
        b.executor
            .run(plan(&incident("concurrent-b"), a.clone(), "checkout"))
    );
    let mut outcomes = [x.unwrap().outcome, y.unwrap().outcome];
    outcomes.sort_by_key(|o| matches!(o, FixOutcome::Succeeded));
    assert!(
        matches!(&outcomes[0], FixOutcome::Refused(r) if r.contains("another fix holds")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], FixOutcome::Succeeded);
    assert_eq!(runs(b.control.path(), "execute"), 1);
    // A different target is not blocked.
    let other = b
        .executor
        .run(plan(&incident("concurrent-c"), a, "payment"))
        .await
        .unwrap();
    assert_eq!(other.outcome, FixOutcome::AlreadyHealthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_param_values_are_refused_or_pass_through_inert() {
    let b = bench("docker-params", LockPolicy::Refuse).await;
    let a = action("test-fix", docker::TEST_IMAGE, b.control.path(), "");
    let canary = b.control.path().join("pwned");
    let hostile = format!(
        "x; touch {} $(touch {}) `touch {}`",
        canary.display(),
        canary.display(),
        canary.display()
    );
    let report = b
        .executor
        .run(plan(&incident("params"), a, &hostile))
        .await
        .unwrap();
    assert_eq!(report.outcome, FixOutcome::Succeeded);
    assert!(!canary.exists(), "a param value was executed");
    let journal = b.state.journal(&incident("params")).await.unwrap();
    let printed = journal.iter().find_map(|e| match &e.event {
        JournalEvent::PhaseFinished {
            phase: PhaseName::Execute,
            stdout,
            ..
        } => Some(stdout.clone()),
        _ => None,
    });
    assert_eq!(printed.unwrap().trim(), format!("phase execute target={hostile}"));

    // With a strict pattern the same value never reaches a container.
    let shipped = Catalog::load(&support::shipped_paths()).unwrap();
    let restart = shipped.actions["restart-jvm-pod"].clone();
    let plan = FixPlan {
        incident: incident("params-strict"),
        action: restart,
        params: BTreeMap::from([
            ("namespace".into(), "shop; rm -rf /".into()),
            ("deployment".into(), "$(reboot)".into()),
        ]),
        verify: None,
        dry_run: false,
    };
    let report = b.executor.run(plan).await.unwrap();
    assert!(
        matches!(&report.outcome, FixOutcome::Refused(r) if r.contains("does not match")),
        "{:?}",
        report.outcome
    );
    assert!(report.phases.is_empty());
}

/// The seed's verify: "active JDBC connections dropped by at least 80 %", read afresh after execute
/// and compared with the value at diagnosis.
fn seed_verify(fresh_ratio: f64) -> Arc<dyn rootfix::fix::executor::VerifyCheck> {
    let catalog = Catalog::load(&support::shipped_paths()).unwrap();
    let playbook = catalog.playbook("order-service-timeout").unwrap().clone();
    let leak = playbook.node("db_connection_leak").unwrap();
    let condition = leak.remedy.as_ref().unwrap().verify.clone().unwrap();
    Arc::new(rootfix::fix::verify::ConditionVerify {
        playbook,
        condition,
        alert: support::fixture_alert("order-service-timeout.firing"),
        baseline: BTreeMap::from([("db_active_connection_ratio".to_string(), serde_json::json!(0.98))]),
        evidence: Arc::new(rootfix::engine::fixture::FixtureEvidence::new().with_signal(
            "db_active_connection_ratio",
            serde_json::json!(fresh_ratio),
            Duration::ZERO,
        )),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_condition_over_fresh_evidence_decides_with_the_container() {
    let b = bench("docker-verify-condition", LockPolicy::Refuse).await;
    let a = action("test-fix", docker::TEST_IMAGE, b.control.path(), "");
    // 0.98 → 0.12: dropped by more than 80 %.
    let mut fixed = plan(&incident("verify-cond-ok"), a.clone(), "checkout");
    fixed.verify = Some(seed_verify(0.12));
    let report = b.executor.run(fixed).await.unwrap();
    assert_eq!(report.outcome, FixOutcome::Succeeded);
    let journal = b.state.journal(&incident("verify-cond-ok")).await.unwrap();
    assert!(
        journal
            .iter()
            .any(|e| matches!(e.event, JournalEvent::VerifyCondition { held: true, .. }))
    );

    // 0.98 → 0.9: the container's verify passes, the evidence does not: rolled back.
    std::fs::write(b.control.path().join("target"), "broken\n").unwrap();
    let mut not_fixed = plan(&incident("verify-cond-no"), a, "checkout");
    not_fixed.verify = Some(seed_verify(0.9));
    let report = b.executor.run(not_fixed).await.unwrap();
    assert!(
        matches!(&report.outcome, FixOutcome::RolledBack(r) if r.contains("verify condition: does not hold")),
        "{:?}",
        report.outcome
    );
    assert_eq!(target(b.control.path()), "broken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_stops_new_fixes_and_lets_a_running_one_finish() {
    use rootfix::audit::KillSwitch;
    let b = bench("docker-killswitch", LockPolicy::Refuse).await;
    let a = action("test-fix", docker::TEST_IMAGE, b.control.path(), "");
    let on = KillSwitch {
        by: "admin".into(),
        reason: "test".into(),
        since: chrono::Utc::now(),
    };
    b.state.set_killswitch(Some(&on)).await.unwrap();
    let report = b
        .executor
        .run(plan(&incident("ks-refused"), a.clone(), "checkout"))
        .await
        .unwrap();
    assert!(
        matches!(&report.outcome, FixOutcome::Refused(r) if r.contains("kill switch is on")),
        "{:?}",
        report.outcome
    );
    assert_eq!(runs(b.control.path(), "precheck"), 0);
    b.state.set_killswitch(None).await.unwrap();

    // Turned on while execute runs: execute finishes, then the fix verifies (and succeeds); a fix
    // started after the switch is refused at once.
    std::fs::write(b.control.path().join("execute.sleep"), "2").unwrap();
    let running = {
        let (executor, a) = (b.executor.clone(), a.clone());
        tokio::spawn(async move {
            executor
                .run(plan(&incident("ks-running"), a, "checkout"))
                .await
                .unwrap()
        })
    };
    while runs(b.control.path(), "execute") == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.state.set_killswitch(Some(&on)).await.unwrap();
    let started = std::time::Instant::now();
    let refused = b
        .executor
        .run(plan(&incident("ks-new"), a, "payment"))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refusing took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(refused.outcome, FixOutcome::Refused(_)),
        "{:?}",
        refused.outcome
    );
    let report = running.await.unwrap();
    assert_eq!(report.outcome, FixOutcome::Succeeded);
    let phases: Vec<PhaseName> = report.phases.iter().map(|(p, _, _)| *p).collect();
    assert_eq!(
        phases,
        [PhaseName::Precheck, PhaseName::Execute, PhaseName::Verify]
    );
    b.state.set_killswitch(None).await.unwrap();
}
