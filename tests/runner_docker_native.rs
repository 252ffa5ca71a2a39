//! The Docker runner's native operations and `fixes.host_paths` against the real Docker engine:
//! the shipped `restart-container` fix through the executor (a new StartedAt, a new PID, a second
//! boot, healthy again), a health check that stays failing failing execute with its output, a
//! service that dies after the restart, a container without a health check, `container-running`
//! and `container-healthy` on missing, stopped and unhealthy containers, the refusals (rootfix's
//! own containers, a name outside the pattern, an ID prefix), and a mount bound from the path
//! `host_paths` maps it to.
//!
//! The target containers run `tests`' own image (busybox-static, built here like the support
//! code's): `/service` appends a line to `/ctl/boots` at each start and stops at SIGTERM; the
//! image's HEALTHCHECK runs `/health`, which passes while `/ctl/healthy` exists. `/ctl` is a
//! temporary folder of the test.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rootfix::catalog::{Catalog, Source};
use rootfix::fix::executor::{Executor, FixPlan, LockPolicy};
use rootfix::fix::journal::{FixOutcome, JournalEvent};
use rootfix::model::Action;
use rootfix::model::action::PhaseName;
use rootfix::runner::docker::{DockerRunner, HostPaths};
use rootfix::runner::{PhaseExit, PhaseOutcome, PhaseRequest, Runner};
use rootfix::state::StateStore;

const IMAGE: &str = "rootfix-test/native:1";

const SERVICE: &str = r#"#!/bin/sh
# One line per start; exit 7 from the start number written in /ctl/die-at-boot on.
echo "boot" >> /ctl/boots
if [ -f /ctl/die-at-boot ] && [ "$(wc -l < /ctl/boots)" -ge "$(cat /ctl/die-at-boot)" ]; then exit 7; fi
trap 'exit 0' TERM
while :; do sleep 1 & wait $!; done
"#;

const HEALTH: &str = r#"#!/bin/sh
if [ -e /ctl/healthy ]; then echo ok; else echo "no /ctl/healthy"; exit 1; fi
"#;

/// Builds the image once per test binary (busybox-static, `docker import`, nothing pulled).
fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for d in ["bin", "ctl", "tmp", "proc", "dev", "sys"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed");
        for applet in ["sh", "cat", "echo", "sleep", "test", "[", "wc", "rm"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
        }
        for (name, text) in [("service", SERVICE), ("health", HEALTH)] {
            let path = root.join(name);
            std::fs::write(&path, text).expect("write");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C '{}' -c . | docker import \
                 --change 'HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD [\"/health\"]' \
                 --change 'CMD [\"/service\"]' - {IMAGE} >/dev/null",
                root.display()
            ))
            .status()
            .expect("docker");
        assert!(status.success(), "docker import failed");
    });
    IMAGE
}

/// A target container of one test, removed when the test ends.
struct Target {
    name: String,
    ctl: tempfile::TempDir,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts a target container named `rootfix-native-<test>-<pid>`; `extra` goes before the image.
fn start(test: &str, healthy: bool, extra: &[&str]) -> Target {
    image();
    let name = format!("rootfix-native-{test}-{}", std::process::id());
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    let ctl = tempfile::tempdir().expect("tempdir");
    if healthy {
        std::fs::write(ctl.path().join("healthy"), "").unwrap();
    }
    let bind = format!("{}:/ctl", ctl.path().display());
    let mut args = vec!["run", "-d", "--name", &name, "-v", &bind];
    args.extend_from_slice(extra);
    args.push(IMAGE);
    docker(&args);
    let target = Target { name, ctl };
    // The service has booted (a restart before its first line would leave one boot, not two).
    let started = Instant::now();
    while boots(&target) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} never booted",
            target.name
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    target
}

fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, name])
}

fn boots(t: &Target) -> usize {
    std::fs::read_to_string(t.ctl.path().join("boots"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Waits until the engine reports the container `healthy`.
fn wait_healthy(name: &str) {
    let started = Instant::now();
    while inspect(name, "{{.State.Health.Status}}") != "healthy" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{name} never became healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn catalog_action(name: &str, text: String) -> Arc<Action> {
    let source = Source {
        path: format!("{name}.yaml").into(),
        text,
    };
    let catalog = Catalog::from_sources(&[source]).unwrap_or_else(|p| panic!("{p:#?}"));
    catalog.actions[name].clone()
}

/// The shipped action, as the catalog loads it.
fn shipped() -> Arc<Action> {
    let path = support::repo_path("actions/restart-container/action.yaml");
    catalog_action("restart-container", std::fs::read_to_string(path).unwrap())
}

/// A restart-container action whose `container` pattern admits only this test binary's targets.
fn narrow() -> Arc<Action> {
    catalog_action(
        "restart-narrow",
        r#"apiVersion: rootfix/v1
kind: Action
metadata: {name: restart-narrow}
spec:
  purpose: fix
  runner: docker
  params:
    container: {pattern: 'rootfix-native-[a-z0-9-]+'}
    stop_timeout: {pattern: '[0-9]+', default: '2'}
  idempotency_key: '{{ $params.container }}'
  phases:
    precheck: {operation: container-running}
    execute: {operation: restart-container, timeout: 20s}
    verify: {operation: container-healthy}
"#
        .to_string(),
    )
}

async fn runner() -> (DockerRunner, tempfile::TempDir) {
    let state_root = tempfile::tempdir().unwrap();
    let runner = DockerRunner::connect(state_root.path().to_path_buf())
        .await
        .expect("the Docker engine answers");
    (runner, state_root)
}

async fn phase(
    runner: &DockerRunner,
    action: &Action,
    phase: PhaseName,
    container: &str,
    timeout: Duration,
) -> PhaseOutcome {
    let params = BTreeMap::from([
        ("container".to_string(), container.to_string()),
        ("stop_timeout".to_string(), "2".to_string()),
    ]);
    runner
        .run_phase(PhaseRequest {
            incident: "inc-native",
            action,
            phase,
            params: &params,
            attempt: 1,
            timeout,
            snapshot: None,
        })
        .await
        .expect("the phase runs")
}

fn failure(outcome: &PhaseOutcome) -> String {
    match &outcome.exit {
        PhaseExit::Failed { reason, .. } => reason.clone(),
        other => panic!("expected a failed phase, got {other:?}\n{}", outcome.stdout),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_fix_restarts_the_container_and_waits_for_healthy() {
    let t = start("fix", true, &[]);
    wait_healthy(&t.name);
    let (started, pid) = (
        inspect(&t.name, "{{.State.StartedAt}}"),
        inspect(&t.name, "{{.State.Pid}}"),
    );
    assert_eq!(boots(&t), 1);

    let state: Arc<dyn StateStore> = Arc::new(support::redis_store("docker-native-fix").await);
    let (runner, _state_root) = runner().await;
    let executor = Executor {
        state: state.clone(),
        docker: Some(Arc::new(runner)),
        kubernetes: None,
        kubernetes_job: None,
        lease: Duration::from_secs(10),
        lock_policy: LockPolicy::Refuse,
    };
    let incident = format!("inc-native-fix-{}", std::process::id());
    let report = executor
        .run(FixPlan {
            incident: incident.clone(),
            action: shipped(),
            params: BTreeMap::from([("container".to_string(), t.name.clone())]),
            verify: None,
            dry_run: false,
        })
        .await
        .unwrap();
    assert_eq!(report.outcome, FixOutcome::Succeeded, "{report:#?}");
    let phases: Vec<_> = report.phases.iter().map(|(p, _, e)| (*p, e.clone())).collect();
    assert_eq!(
        phases,
        [
            (PhaseName::Precheck, PhaseExit::Success),
            (PhaseName::Execute, PhaseExit::Success),
            (PhaseName::Verify, PhaseExit::Success),
        ]
    );

    // Really restarted: a new start time, a new process, a second boot; healthy again.
    let (started_now, pid_now) = (
        inspect(&t.name, "{{.State.StartedAt}}"),
        inspect(&t.name, "{{.State.Pid}}"),
    );
    assert_ne!(started_now, started);
    assert_ne!(pid_now, pid);
    assert_eq!(boots(&t), 2);
    assert_eq!(inspect(&t.name, "{{.State.Health.Status}}"), "healthy");

    // The journal keeps what execute said: old → new StartedAt and PID, time to healthy.
    let journal = state.journal(&incident).await.unwrap();
    let stdout = journal
        .iter()
        .find_map(|e| match &e.event {
            JournalEvent::PhaseFinished {
                phase: PhaseName::Execute,
                stdout,
                ..
            } => Some(stdout.clone()),
            _ => None,
        })
        .expect("execute is journaled");
    assert!(
        stdout.contains(&format!(
            "StartedAt {started} → {started_now}, pid {pid} → {pid_now}"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("graceful stop timeout 10 s"), "{stdout}");
    assert!(
        stdout.contains("healthy ") && stdout.contains(" after the restart"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_that_stays_failing_fails_execute_with_its_output() {
    let t = start("unhealthy", true, &[]);
    wait_healthy(&t.name);
    std::fs::remove_file(t.ctl.path().join("healthy")).unwrap();
    let (runner, _root) = runner().await;
    let action = narrow();
    let timeout = Duration::from_secs(20);
    let began = Instant::now();
    let out = phase(&runner, &action, PhaseName::Execute, &t.name, timeout).await;
    let reason = failure(&out);
    assert!(began.elapsed() < timeout, "took {:?}", began.elapsed());
    assert!(
        reason.contains(&format!("container {} became unhealthy", t.name)),
        "{reason}"
    );
    assert!(reason.contains("no /ctl/healthy"), "{reason}");
    // It was restarted (the failure is about after the restart), once.
    assert_eq!(boots(&t), 2);
    assert!(out.stdout.contains("StartedAt "), "{}", out.stdout);

    // The same container, verified: unhealthy, with the check's output.
    let v = phase(&runner, &action, PhaseName::Verify, &t.name, timeout).await;
    let why = failure(&v);
    assert!(
        why.contains("is unhealthy") && why.contains("no /ctl/healthy"),
        "{why}"
    );
    // container-running does not mind the health: precheck proceeds for a sick service.
    let p = phase(&runner, &action, PhaseName::Precheck, &t.name, timeout).await;
    assert_eq!(p.exit, PhaseExit::Success, "{}", p.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_still_starting_at_the_timeout_is_a_timeout() {
    // A check that never answers within its interval stays `starting` for its retries.
    let t = start(
        "starting",
        false,
        &["--health-interval", "30s", "--health-start-period", "60s"],
    );
    let (runner, _root) = runner().await;
    let began = Instant::now();
    let out = phase(
        &runner,
        &narrow(),
        PhaseName::Execute,
        &t.name,
        Duration::from_secs(4),
    )
    .await;
    assert!(
        matches!(out.exit, PhaseExit::TimedOut { .. }),
        "{:?}\n{}",
        out.exit,
        out.stdout
    );
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "took {:?}",
        began.elapsed()
    );
    assert!(
        out.stdout
            .contains("was not healthy when the phase timeout ran out"),
        "{}",
        out.stdout
    );
    assert_eq!(boots(&t), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_dies_after_the_restart_fails_execute() {
    let t = start("dies", true, &["--no-healthcheck"]);
    std::fs::write(t.ctl.path().join("die-at-boot"), "2").unwrap();
    let (runner, _root) = runner().await;
    let out = phase(
        &runner,
        &narrow(),
        PhaseName::Execute,
        &t.name,
        Duration::from_secs(20),
    )
    .await;
    let reason = failure(&out);
    assert!(
        reason.contains(&format!("container {} is exited (exit code 7)", t.name)),
        "{reason}"
    );
    // And verify says so too.
    let v = phase(
        &runner,
        &narrow(),
        PhaseName::Verify,
        &t.name,
        Duration::from_secs(5),
    )
    .await;
    assert!(failure(&v).contains("is exited (exit code 7)"), "{}", failure(&v));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_without_a_health_check_must_keep_running() {
    let t = start("nocheck", false, &["--no-healthcheck"]);
    let before = inspect(&t.name, "{{.State.StartedAt}}");
    let (runner, _root) = runner().await;
    let began = Instant::now();
    let out = phase(
        &runner,
        &narrow(),
        PhaseName::Execute,
        &t.name,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(out.exit, PhaseExit::Success, "{}", out.stdout);
    // It waited for the container to stay up, not just for the restart.
    assert!(
        began.elapsed() >= Duration::from_secs(3),
        "took {:?}",
        began.elapsed()
    );
    assert!(
        out.stdout.contains("has no health check; running"),
        "{}",
        out.stdout
    );
    assert_ne!(inspect(&t.name, "{{.State.StartedAt}}"), before);
    assert_eq!(boots(&t), 2);
    let v = phase(
        &runner,
        &narrow(),
        PhaseName::Verify,
        &t.name,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(v.exit, PhaseExit::Success, "{}", v.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_stopped_containers_fail_the_checks_with_their_name() {
    let (runner, _root) = runner().await;
    let action = narrow();
    let missing = format!("rootfix-native-missing-{}", std::process::id());
    for p in [PhaseName::Precheck, PhaseName::Verify, PhaseName::Execute] {
        let out = phase(&runner, &action, p, &missing, Duration::from_secs(5)).await;
        assert_eq!(
            failure(&out),
            format!("no container named {missing} on the engine"),
            "{}",
            p.as_str()
        );
    }
    let t = start("stopped", true, &[]);
    docker(&["stop", "-t", "2", &t.name]);
    let out = phase(
        &runner,
        &action,
        PhaseName::Precheck,
        &t.name,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        failure(&out),
        format!("container {} is exited (exit code 0)", t.name)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rootfix_containers_names_outside_the_pattern_and_ids_are_refused() {
    let (runner, _root) = runner().await;
    let action = narrow();
    let timeout = Duration::from_secs(20);

    // A container rootfix's Docker runner created (its phase containers carry this label).
    let own = start("own", true, &["--label", "rootfix.incident=inc-elsewhere"]);
    wait_healthy(&own.name);
    let before = inspect(&own.name, "{{.State.StartedAt}}");
    let out = phase(&runner, &action, PhaseName::Execute, &own.name, timeout).await;
    let why = failure(&out);
    assert!(
        why.contains("created by rootfix (label rootfix.incident=inc-elsewhere)"),
        "{why}"
    );
    assert_eq!(inspect(&own.name, "{{.State.StartedAt}}"), before);
    assert_eq!(boots(&own), 1);

    // A name the action's pattern does not admit: refused by the runner itself, though the
    // container exists (the executor would refuse it earlier still).
    let other = format!("other-native-{}", std::process::id());
    let _ = Command::new("docker").args(["rm", "-f", &other]).output();
    let other_target = Target {
        name: other.clone(),
        ctl: tempfile::tempdir().unwrap(),
    };
    docker(&["run", "-d", "--name", &other, "--no-healthcheck", image()]);
    let before = inspect(&other, "{{.State.StartedAt}}");
    let out = phase(&runner, &action, PhaseName::Execute, &other, timeout).await;
    let why = failure(&out);
    assert!(
        why.starts_with("refused, nothing done:") && why.contains("does not match"),
        "{why}"
    );
    assert_eq!(inspect(&other, "{{.State.StartedAt}}"), before);
    drop(other_target);

    // An ID prefix matches the shipped pattern, but rootfix acts on names only.
    let t = start("byid", true, &["--no-healthcheck"]);
    let id = inspect(&t.name, "{{.Id}}");
    let before = inspect(&t.name, "{{.State.StartedAt}}");
    let out = phase(&runner, &shipped(), PhaseName::Execute, &id[..12], timeout).await;
    let why = failure(&out);
    assert!(
        why.starts_with(&format!("no container named {} on the engine", &id[..12])),
        "{why}"
    );
    assert_eq!(inspect(&t.name, "{{.State.StartedAt}}"), before);
}

/// The mount's host path as the action names it: nothing exists there on this machine.
const NAMED_HOST: &str = "/etc/rootfix-test-native/out";

fn mount_action() -> Arc<Action> {
    catalog_action(
        "mount-probe",
        format!(
            r#"apiVersion: rootfix/v1
kind: Action
metadata: {{name: mount-probe}}
spec:
  purpose: diagnostic
  runner: docker
  image: {IMAGE}
  mounts:
    - {{host: {NAMED_HOST}, container: /out, read_only: false}}
  phases:
    execute: {{run: [/bin/sh, -c, 'echo written-by-the-phase > /out/probe'], timeout: 20s}}
"#
        ),
    )
}

async fn run_mount_phase(runner: &DockerRunner) -> Result<PhaseOutcome, rootfix::runner::RunnerError> {
    let action = mount_action();
    let params = BTreeMap::new();
    runner
        .run_phase(PhaseRequest {
            incident: &format!("inc-native-mount-{}", std::process::id()),
            action: &action,
            phase: PhaseName::Execute,
            params: &params,
            attempt: 1,
            timeout: Duration::from_secs(20),
            snapshot: None,
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_paths_bind_the_mapped_folder() {
    image();
    assert!(
        !Path::new(NAMED_HOST).exists(),
        "{NAMED_HOST} must not exist here"
    );
    let mapped = tempfile::tempdir().unwrap();
    let decoy = tempfile::tempdir().unwrap();
    std::fs::create_dir(mapped.path().join("out")).unwrap();
    // The longer key wins over its parent; the rest of the path is appended to it.
    let map = BTreeMap::from([
        (PathBuf::from("/etc"), decoy.path().to_path_buf()),
        (
            PathBuf::from("/etc/rootfix-test-native"),
            mapped.path().to_path_buf(),
        ),
    ]);
    let (plain, _root) = runner().await;

    // Without the map, the strict bind of a missing host path fails.
    let unmapped = run_mount_phase(&plain).await;
    assert!(
        unmapped.is_err() || !matches!(unmapped.as_ref().map(|o| &o.exit), Ok(PhaseExit::Success)),
        "{unmapped:?}"
    );

    let mapped_runner = plain.with_host_paths(HostPaths::new(map));
    assert_eq!(mapped_runner.host_path(NAMED_HOST), mapped.path().join("out"));
    let out = run_mount_phase(&mapped_runner).await.expect("the phase runs");
    assert_eq!(out.exit, PhaseExit::Success, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(mapped.path().join("out/probe")).unwrap(),
        "written-by-the-phase\n"
    );
    assert_eq!(std::fs::read_dir(decoy.path()).unwrap().count(), 0);
}
