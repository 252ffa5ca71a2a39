//! Remedies of several steps (`remedy.steps`) through the real executor, the real Docker engine
//! and real Redis:
//! - three test actions in order, each journaled with its step number; a failing third step
//!   rolls back itself, then the second, then the first; a failing remedy verify rolls every
//!   step back, last first; a step already healthy is skipped and not rolled back; two remedies
//!   over one target never run at once;
//! - the seed's replica-lag response with the shipped actions against a real MariaDB primary
//!   and replica (replicating) and a local HTTP flag service: read-only on the replica, the
//!   slow-query throttle on the primary, the degradation switch on; all verified; and, when the
//!   flag service accepts the switch but does not apply it, the values on both servers and the
//!   flag are restored, step 3 then 2 then 1.

#[path = "support/actions.rs"]
mod actions;
#[path = "support/docker.rs"]
mod docker;
#[path = "support/flags.rs"]
mod flags;
#[path = "support/mariadb.rs"]
mod mariadb;
#[path = "support/replica_lag.rs"]
mod replica_lag;
#[path = "support/mod.rs"]
mod support;

use replica_lag::step;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rootfix::catalog::{Catalog, Source};
use rootfix::fix::executor::{Executor, LockPolicy, StepPlan, StepsPlan, VerifyCheck};
use rootfix::fix::journal::{FixOutcome, JournalEntry, JournalEvent};
use rootfix::model::Action;
use rootfix::model::action::PhaseName;
use rootfix::runner::PhaseExit;
use rootfix::runner::docker::{DockerRunner, HostPaths};
use rootfix::state::StateStore;

struct Bench {
    dir: tempfile::TempDir,
    state: Arc<dyn StateStore>,
    executor: Arc<Executor>,
}

async fn bench(test: &str, host_paths: BTreeMap<PathBuf, PathBuf>) -> Bench {
    docker::test_image();
    let dir = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(support::redis_store(test).await);
    let runner = DockerRunner::connect(dir.path().join("fix-state"))
        .await
        .expect("the Docker engine answers")
        .with_host_paths(HostPaths::new(host_paths))
        .with_instance(&support::unique_prefix(test));
    let executor = Arc::new(Executor {
        state: state.clone(),
        docker: Some(Arc::new(runner)),
        kubernetes: None,
        kubernetes_job: None,
        lease: Duration::from_secs(10),
        lock_policy: LockPolicy::Refuse,
    });
    Bench { dir, state, executor }
}

impl Bench {
    /// A test action of its own name with its own control folder (target `broken`).
    fn test_action(&self, name: &str) -> (Arc<Action>, PathBuf) {
        let control = self.dir.path().join(name);
        std::fs::create_dir_all(&control).unwrap();
        std::fs::write(control.join("target"), "broken\n").unwrap();
        let source = Source {
            path: format!("{name}.yaml").into(),
            text: docker::test_action_yaml(name, docker::TEST_IMAGE, &control, ""),
        };
        let catalog = Catalog::from_sources(&[source]).unwrap_or_else(|p| panic!("{p:#?}"));
        (catalog.actions[name].clone(), control)
    }

    async fn journal(&self, incident: &str) -> Vec<JournalEntry> {
        self.state.journal(incident).await.unwrap()
    }
}

fn steps_plan(incident: &str, steps: Vec<StepPlan>) -> StepsPlan {
    StepsPlan {
        incident: incident.to_string(),
        name: "three-steps".into(),
        steps,
        verify: None,
        dry_run: false,
        waves: Vec::new(),
    }
}

fn target(control: &Path) -> String {
    std::fs::read_to_string(control.join("target"))
        .unwrap()
        .trim()
        .to_string()
}

fn runs(control: &Path, phase: &str) -> usize {
    std::fs::read_to_string(control.join(format!("{phase}.runs")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// The (step, phase) of every phase that ended, in journal order.
fn phases(journal: &[JournalEntry]) -> Vec<(u32, PhaseName, bool)> {
    journal
        .iter()
        .filter_map(|e| match &e.event {
            JournalEvent::PhaseFinished { phase, exit, .. } => Some((
                e.step.expect("every phase of a remedy of steps names its step"),
                *phase,
                *exit == PhaseExit::Success,
            )),
            _ => None,
        })
        .collect()
}

/// The steps whose rollback ran, in order.
fn rollbacks(journal: &[JournalEntry]) -> Vec<u32> {
    phases(journal)
        .into_iter()
        .filter(|(_, p, _)| *p == PhaseName::Rollback)
        .map(|(s, _, _)| s)
        .collect()
}

fn incident(test: &str) -> String {
    format!("inc-{test}-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_steps_run_in_order_each_journaled_with_its_step() {
    let b = bench("steps-ok", BTreeMap::new()).await;
    let (a1, c1) = b.test_action("step-one");
    let (a2, c2) = b.test_action("step-two");
    let (a3, c3) = b.test_action("step-three");
    let id = incident("steps-ok");
    let plan = steps_plan(
        &id,
        vec![
            step(&a1, &[("target", "one")]),
            step(&a2, &[("target", "two")]),
            step(&a3, &[("target", "three")]),
        ],
    );
    let report = b.executor.run_steps(plan).await.unwrap();
    assert_eq!(report.outcome, FixOutcome::Succeeded, "{report:#?}");
    assert_eq!(report.fix, format!("{id}/three-steps"));
    for c in [&c1, &c2, &c3] {
        assert_eq!(target(c), "healthy");
        assert_eq!(runs(c, "execute"), 1);
        assert_eq!(runs(c, "rollback"), 0);
    }
    let journal = b.journal(&id).await;
    let order: Vec<(u32, PhaseName)> = phases(&journal).into_iter().map(|(s, p, _)| (s, p)).collect();
    use PhaseName::*;
    assert_eq!(
        order,
        vec![
            (1, Precheck),
            (1, Execute),
            (1, Verify),
            (2, Precheck),
            (2, Execute),
            (2, Verify),
            (3, Precheck),
            (3, Execute),
            (3, Verify)
        ]
    );
    match &journal[0].event {
        JournalEvent::FixStarted { steps, .. } => {
            let actions: Vec<&str> = steps.iter().map(|s| s.action.as_str()).collect();
            assert_eq!(actions, ["step-one", "step-two", "step-three"]);
            assert_eq!(steps[1].params["target"], "two");
        }
        other => panic!("the journal starts with {other:?}"),
    }
    let finished: Vec<u32> = journal
        .iter()
        .filter(|e| {
            matches!(
                e.event,
                JournalEvent::StepFinished {
                    outcome: FixOutcome::Succeeded
                }
            )
        })
        .filter_map(|e| e.step)
        .collect();
    assert_eq!(finished, [1, 2, 3]);
    assert!(matches!(
        journal.last().map(|e| &e.event),
        Some(JournalEvent::FixFinished {
            outcome: FixOutcome::Succeeded
        })
    ));
    assert!(b.state.active_fixes().await.unwrap().is_empty());
    // Each step ran under its own instance: the containers are gone, the locks are free.
    for k in 1..=3 {
        docker::assert_no_containers_left(&format!("{id}-step{k}"));
    }
    let again = b
        .executor
        .run_steps(steps_plan(&id, vec![step(&a1, &[("target", "one")])]))
        .await
        .unwrap();
    assert_eq!(again.outcome, FixOutcome::AlreadyHealthy, "the lock was released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_third_step_rolls_back_itself_then_the_second_then_the_first() {
    let b = bench("steps-fail3", BTreeMap::new()).await;
    let (a1, c1) = b.test_action("step-one");
    let (a2, c2) = b.test_action("step-two");
    let (a3, c3) = b.test_action("step-three");
    std::fs::write(c3.join("execute.exit"), "1").unwrap();
    let id = incident("steps-fail3");
    let report = b
        .executor
        .run_steps(steps_plan(
            &id,
            vec![
                step(&a1, &[("target", "one")]),
                step(&a2, &[("target", "two")]),
                step(&a3, &[("target", "three")]),
            ],
        ))
        .await
        .unwrap();
    match &report.outcome {
        FixOutcome::RolledBack(reason) => assert!(reason.contains("step 3 (step-three)"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let journal = b.journal(&id).await;
    assert_eq!(
        rollbacks(&journal),
        [3, 2, 1],
        "the failed step first, then the completed ones, last first"
    );
    for c in [&c1, &c2, &c3] {
        assert_eq!(target(c), "broken", "every target is as it was before");
        assert_eq!(runs(c, "execute"), 1);
    }
    let rolling_back = journal
        .iter()
        .position(|e| matches!(e.event, JournalEvent::RollingBack { .. }))
        .expect("the undoing is journaled");
    let step3_end = journal
        .iter()
        .position(|e| e.step == Some(3) && matches!(e.event, JournalEvent::StepFinished { .. }))
        .unwrap();
    assert!(step3_end < rolling_back);
}

struct Never;

#[async_trait]
impl VerifyCheck for Never {
    async fn holds(&self) -> Result<bool, String> {
        Ok(false)
    }
    fn retries(&self) -> u32 {
        2
    }
    fn interval(&self) -> Duration {
        Duration::from_millis(50)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_remedy_verify_rolls_every_step_back_and_a_healthy_step_is_skipped() {
    let b = bench("steps-verify", BTreeMap::new()).await;
    let (a1, c1) = b.test_action("step-one");
    let (a2, c2) = b.test_action("step-two");
    let (a3, c3) = b.test_action("step-three");
    std::fs::write(c2.join("target"), "healthy\n").unwrap();
    let id = incident("steps-verify");
    let mut plan = steps_plan(
        &id,
        vec![
            step(&a1, &[("target", "one")]),
            step(&a2, &[("target", "two")]),
            step(&a3, &[("target", "three")]),
        ],
    );
    plan.verify = Some(Arc::new(Never));
    let report = b.executor.run_steps(plan).await.unwrap();
    match &report.outcome {
        FixOutcome::RolledBack(reason) => {
            assert!(reason.contains("the remedy's verify condition"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let journal = b.journal(&id).await;
    assert_eq!(
        rollbacks(&journal),
        [3, 1],
        "step 2 changed nothing and is not undone"
    );
    assert_eq!(runs(&c2, "execute"), 0);
    assert_eq!(
        (target(&c1), target(&c2), target(&c3)),
        ("broken".into(), "healthy".into(), "broken".into())
    );
    let conditions = journal
        .iter()
        .filter(|e| e.step.is_none() && matches!(e.event, JournalEvent::VerifyCondition { held: false, .. }))
        .count();
    assert_eq!(
        conditions, 2,
        "both attempts of the remedy's verify are journaled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remedy_whose_target_another_fix_holds_is_refused_and_changes_nothing() {
    let b = bench("steps-locked", BTreeMap::new()).await;
    let (a1, c1) = b.test_action("step-one");
    let (a2, c2) = b.test_action("step-two");
    std::fs::write(c1.join("execute.sleep"), "2").unwrap();
    let first = b.executor.clone();
    let (p1, p2) = (
        steps_plan(
            &incident("steps-locked-a"),
            vec![step(&a1, &[("target", "one")]), step(&a2, &[("target", "two")])],
        ),
        steps_plan(
            &incident("steps-locked-b"),
            vec![step(&a2, &[("target", "two")]), step(&a1, &[("target", "one")])],
        ),
    );
    let running = tokio::spawn(async move { first.run_steps(p1).await.unwrap() });
    // Wait until the first remedy holds its locks (its step 1 is executing).
    let started = std::time::Instant::now();
    while runs(&c1, "execute") == 0 {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = b.executor.run_steps(p2).await.unwrap();
    match &second.outcome {
        FixOutcome::Refused(reason) => assert!(reason.contains("another fix holds"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(running.await.unwrap().outcome, FixOutcome::Succeeded);
    assert_eq!((runs(&c1, "execute"), runs(&c2, "execute")), (1, 1));
}

// ── The seed's replica-lag response against real MariaDB and a flag service ──

struct ReplicaLag {
    bench: Bench,
    primary: mariadb::MariaDb,
    replica: mariadb::MariaDb,
    flags: flags::FlagService,
    plan: StepsPlan,
}

/// The shipped actions of the response, the servers, and the three steps as the shipped
/// playbook's branch writes them (read-only on the replica, the throttle on the primary, the
/// switch in the flag service).
async fn replica_lag(test: &str) -> ReplicaLag {
    actions::ensure_images();
    let (primary, replica) = tokio::task::spawn_blocking(mariadb::MariaDb::pair).await.unwrap();
    let flags = flags::FlagService::start().await;
    let empty = tempfile::tempdir().unwrap().keep();
    let bench = bench(test, replica_lag::host_paths(&primary.secrets_dir(), &empty)).await;
    let plan = replica_lag::response(
        &incident(test),
        &replica.address(),
        &primary.address(),
        &format!("{}/flags/degrade-reads", flags.url),
    );
    ReplicaLag {
        bench,
        primary,
        replica,
        flags,
        plan,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_lag_response_applies_and_verifies_all_three_steps_on_the_real_servers() {
    let r = replica_lag("steps-lag-ok").await;
    assert_eq!(r.replica.global("read_only"), "0");
    assert_eq!(r.primary.global("max_statement_time"), "0.000000");
    let id = r.plan.incident.clone();
    let started = std::time::Instant::now();
    let report = r.bench.executor.run_steps(r.plan).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.outcome, FixOutcome::Succeeded, "{report:#?}");
    assert_eq!(
        r.replica.global("read_only"),
        "1",
        "step 1: the replica is read-only"
    );
    assert_eq!(
        r.primary.global("max_statement_time"),
        "2.000000",
        "step 2: slow statements on the primary are capped"
    );
    assert_eq!(
        r.primary.global("read_only"),
        "0",
        "the primary still takes writes"
    );
    assert_eq!(
        r.flags.values.lock().unwrap()["degrade-reads"],
        "on",
        "step 3: the switch is on"
    );
    // Replication goes on: a write on the primary reaches the read-only replica.
    r.primary
        .root_sql("INSERT INTO shop.orders (note) VALUES ('after the response')")
        .unwrap();
    let seen = std::time::Instant::now();
    while r
        .replica
        .root_sql("SELECT COUNT(*) FROM shop.orders WHERE note = 'after the response'")
        .unwrap()
        .trim()
        != "1"
    {
        assert!(seen.elapsed() < Duration::from_secs(20), "replication stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    let journal = r.bench.journal(&id).await;
    let verified: Vec<u32> = phases(&journal)
        .into_iter()
        .filter(|(_, p, ok)| *p == PhaseName::Verify && *ok)
        .map(|(s, _, _)| s)
        .collect();
    assert_eq!(verified, [1, 2, 3]);
    eprintln!("replica-lag response: three steps verified in {elapsed:.2?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_that_does_not_take_restores_the_flag_the_primary_and_the_replica_in_reverse() {
    let r = replica_lag("steps-lag-undo").await;
    r.flags
        .ignore_writes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let id = r.plan.incident.clone();
    let report = r.bench.executor.run_steps(r.plan).await.unwrap();
    match &report.outcome {
        FixOutcome::RolledBack(reason) => assert!(reason.contains("step 3 (http-set-value)"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.replica.global("read_only"),
        "0",
        "the replica takes writes again"
    );
    assert_eq!(
        r.primary.global("max_statement_time"),
        "0.000000",
        "the primary's cap is lifted"
    );
    assert_eq!(r.flags.values.lock().unwrap()["degrade-reads"], "off");
    assert_eq!(
        *r.flags.writes.lock().unwrap(),
        ["on", "off"],
        "the switch was written, then written back with the value precheck saved"
    );
    let journal = r.bench.journal(&id).await;
    assert_eq!(rollbacks(&journal), [3, 2, 1]);
    let rolled_back_ok = phases(&journal)
        .into_iter()
        .filter(|(_, p, ok)| *p == PhaseName::Rollback && *ok)
        .count();
    assert_eq!(rolled_back_ok, 3);
}

// ── A remedy in waves over several targets ──

/// One test action over `targets` targets, each with its own control folder (`broken`).
fn wave_targets(b: &Bench, targets: usize) -> (Arc<Action>, Vec<PathBuf>) {
    let (action, control) = b.test_action("wave-fix");
    let folders = (1..=targets)
        .map(|n| {
            let folder = control.join("targets").join(format!("t{n}"));
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("target"), "broken\n").unwrap();
            folder
        })
        .collect();
    (action, folders)
}

fn waves_plan(test: &str, action: &Arc<Action>, targets: usize, waves: Vec<u32>) -> StepsPlan {
    StepsPlan {
        incident: incident(test),
        name: "wave-fix".into(),
        steps: (1..=targets)
            .map(|n| step(action, &[("target", &format!("t{n}"))]))
            .collect(),
        verify: None,
        dry_run: false,
        waves,
    }
}

fn waves_started(journal: &[JournalEntry]) -> Vec<(u32, u32, u32)> {
    journal
        .iter()
        .filter_map(|e| match e.event {
            JournalEvent::WaveStarted { wave, first, last } => Some((wave, first, last)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_widen_over_six_targets_and_a_failing_wave_is_rolled_back_alone() {
    let b = bench("steps-waves", BTreeMap::new()).await;
    let (action, t) = wave_targets(&b, 6);
    // Waves 1, 50 %, 100 % of six targets: t1 (the canary), then t2-t3, then t4-t6.
    let sizes = rootfix::model::playbook::Waves {
        targets: "instances".into(),
        param: "target".into(),
        sizes: vec![
            rootfix::model::playbook::WaveSize::Count(1),
            rootfix::model::playbook::WaveSize::Share(0.5),
            rootfix::model::playbook::WaveSize::Share(1.0),
        ],
    }
    .split(6);
    assert_eq!(sizes, [1, 2, 3]);
    std::fs::write(t[4].join("verify.exit"), "1").unwrap(); // t5 does not verify
    let plan = waves_plan("steps-waves", &action, 6, sizes);
    let id = plan.incident.clone();
    let report = b.executor.run_steps(plan).await.unwrap();
    match &report.outcome {
        FixOutcome::RolledBack(reason) => {
            assert!(reason.contains("wave 3 of 3, target 5"), "{reason}");
            assert!(
                reason.contains("the waves before it stay applied (3 target(s))"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let journal = b.journal(&id).await;
    assert_eq!(waves_started(&journal), [(1, 1, 1), (2, 2, 3), (3, 4, 6)]);
    assert_eq!(
        rollbacks(&journal),
        [5, 4],
        "the failing target, then its wave's other completed target"
    );
    let states: Vec<String> = t.iter().map(|c| target(c)).collect();
    assert_eq!(
        states,
        ["healthy", "healthy", "healthy", "broken", "broken", "broken"],
        "waves 1 and 2 stay fixed; wave 3 is undone; t6 never ran"
    );
    assert_eq!(
        runs(&t[5], "precheck"),
        0,
        "the remedy stopped at the failed wave"
    );
    for c in &t[..5] {
        assert_eq!(runs(c, "execute"), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_that_fails_stops_the_remedy_before_any_other_target() {
    let b = bench("steps-canary", BTreeMap::new()).await;
    let (action, t) = wave_targets(&b, 4);
    std::fs::write(t[0].join("execute.exit"), "1").unwrap();
    let plan = waves_plan("steps-canary", &action, 4, vec![1, 3]);
    let id = plan.incident.clone();
    let report = b.executor.run_steps(plan).await.unwrap();
    match &report.outcome {
        FixOutcome::RolledBack(reason) => assert!(reason.contains("wave 1 of 2, target 1"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(rollbacks(&b.journal(&id).await), [1]);
    for c in &t[1..] {
        assert_eq!(runs(c, "precheck"), 0, "no target after the canary was touched");
        assert_eq!(target(c), "broken");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_stops_the_next_step_and_undoes_the_ones_before() {
    let b = bench("steps-killswitch", BTreeMap::new()).await;
    let (a1, c1) = b.test_action("step-one");
    let (a2, c2) = b.test_action("step-two");
    std::fs::write(c1.join("execute.sleep"), "2").unwrap();
    let executor = b.executor.clone();
    let plan = steps_plan(
        &incident("steps-killswitch"),
        vec![step(&a1, &[("target", "one")]), step(&a2, &[("target", "two")])],
    );
    let id = plan.incident.clone();
    let running = tokio::spawn(async move { executor.run_steps(plan).await.unwrap() });
    let started = std::time::Instant::now();
    while runs(&c1, "execute") == 0 {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let on = rootfix::audit::KillSwitch {
        by: "admin".into(),
        reason: "stop everything".into(),
        since: chrono::Utc::now(),
    };
    b.state.set_killswitch(Some(&on)).await.unwrap();
    let report = running.await.unwrap();
    b.state.set_killswitch(None).await.unwrap();
    match &report.outcome {
        FixOutcome::RolledBack(reason) => {
            assert!(
                reason.contains("step 2 (step-two)") && reason.contains("kill switch"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(runs(&c1, "execute"), 1, "the running execute finished");
    assert_eq!(runs(&c2, "execute"), 0, "step 2 never executed");
    assert_eq!(rollbacks(&b.journal(&id).await), [1]);
    assert_eq!((target(&c1), target(&c2)), ("broken".into(), "broken".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remedy_marked_running_without_a_journal_is_cleared_as_never_started() {
    let b = bench("steps-nojournal", BTreeMap::new()).await;
    let fix = format!("{}/three-steps", incident("steps-nojournal"));
    b.state.set_fix_active(&fix, true).await.unwrap();
    let reports = b
        .executor
        .recover(&BTreeMap::new(), &|_, _, _| None)
        .await
        .unwrap();
    assert_eq!(reports.len(), 1);
    assert!(matches!(&reports[0].outcome, FixOutcome::Aborted(r) if r.contains("nothing was changed")));
    assert!(
        b.state.active_fixes().await.unwrap().is_empty(),
        "no longer marked running"
    );
}
