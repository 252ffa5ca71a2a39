//! `nginx-upstream-failover` against a real nginx (Debian's `nginx-light`) running on the host,
//! with an upstream `payment` of two local HTTP servers. The test breaks one server, measures the
//! failures through nginx's front port itself, runs the action's phases in its image exactly as
//! the Docker runner does (`tests/support/actions.rs`), and measures again: the fix is proven by
//! traffic, not by exit codes.

#[path = "support/actions.rs"]
mod actions;
#[path = "support/evidence.rs"]
mod evidence;
#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/mod.rs"]
mod support;

use std::process::{Command, Stdio};

use actions::{Fix, assert_not_executed, hostile, measure};
use evidence::{Reply, Server, serve};
use nginx::{Nginx, payment_upstream};
use rootfix::model::action::PhaseName::{Execute, Precheck, Rollback, Verify};

const REQUESTS: usize = 20;

async fn backend(name: &'static str) -> Server {
    serve(move |_| Reply::text(200, name)).await
}

fn fix(nginx: &Nginx) -> Fix {
    let front = nginx.front_url("/pay");
    Fix::new(
        "nginx-upstream-failover",
        &[
            ("upstream", "payment"),
            ("upstream_file", "/nginx/conf.d/payment.conf"),
            ("front_url", &front),
            ("requests", "20"),
        ],
    )
    .mount("/nginx/conf.d", &nginx.conf_d())
    .mount("/nginx/run/nginx.pid", &nginx.pid_file())
}

fn ok_count(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s == 200).count()
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).expect("readable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_fixes_real_nginx_and_rollback_restores_it() {
    let healthy = backend("payment-a").await;
    let flaky = backend("payment-b").await;
    let flaky_port = flaky.port();
    let mut nginx = Nginx::start(&payment_upstream(&[healthy.port(), flaky_port]));
    let original = read(&nginx.upstream_file());
    let front = nginx.front_url("/pay");
    let fix = fix(&nginx);

    // Healthy: every request succeeds, and precheck says there is nothing to do.
    assert_eq!(ok_count(&measure(&front, REQUESTS).await), REQUESTS);
    fix.run(Precheck).await.expect_code(3);

    // Break the service: one server of the upstream dies; about half the requests fail.
    drop(flaky);
    let broken = measure(&front, REQUESTS).await;
    let failures_before = REQUESTS - ok_count(&broken);
    assert!(
        failures_before > 0,
        "the dead server must make requests fail: {broken:?}"
    );
    assert!(broken.iter().all(|s| *s == 200 || *s == 502), "{broken:?}");
    // Verify measures, so it fails while the service fails.
    fix.run(Verify).await.expect_code(1);

    let pre = fix.run(Precheck).await;
    pre.expect_code(0);
    assert!(
        pre.stderr.contains(&format!("127.0.0.1:{flaky_port}")),
        "{}",
        pre.stderr
    );
    assert_eq!(read(&fix.state_dir().join("upstream.orig")), original);

    let served_before = healthy.requests().len();
    fix.run(Execute).await.expect_code(0);
    let once = read(&nginx.upstream_file());
    assert!(
        once.contains(&format!(
            "server 127.0.0.1:{flaky_port} max_fails=0 down;  # payment-1"
        )),
        "{once}"
    );
    assert!(
        once.contains(&format!(
            "server 127.0.0.1:{} max_fails=0;  # payment-0",
            healthy.port()
        )),
        "the healthy server stays up: {once}"
    );
    let after = measure(&front, REQUESTS).await;
    assert_eq!(
        ok_count(&after),
        REQUESTS,
        "after the failover every request succeeds: {after:?}"
    );
    assert!(
        healthy.requests().len() >= served_before + REQUESTS,
        "served by the healthy server"
    );

    // Idempotent: a second execute leaves the same file (and nginx still serves).
    fix.run(Execute).await.expect_code(0);
    assert_eq!(read(&nginx.upstream_file()), once);
    fix.run(Verify).await.expect_code(0);
    // Now healthy: a new precheck has nothing to do.
    fix.run(Precheck).await.expect_code(3);

    // Rollback: the file as it was, nginx reloaded, the failures are back.
    fix.run(Rollback).await.expect_code(0);
    assert_eq!(read(&nginx.upstream_file()), original);
    let rolled_back = measure(&front, REQUESTS).await;
    let failures_after = REQUESTS - ok_count(&rolled_back);
    assert!(
        failures_after > 0,
        "after rollback the dead server is in rotation again: {rolled_back:?}"
    );
    assert!(
        failures_after.abs_diff(failures_before) <= 4,
        "{failures_before} vs {failures_after}"
    );

    // nginx was reloaded, never restarted.
    assert!(nginx.is_running(), "{}", nginx.error_log());
    let pid: u32 = read(&nginx.pid_file()).trim().parse().expect("pid");
    assert_eq!(pid, nginx.master_pid());
    assert!(
        nginx.error_log().contains("reconfiguring"),
        "{}",
        nginx.error_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precheck_aborts_when_no_server_would_remain() {
    let a = backend("a").await;
    let b = backend("b").await;
    let nginx = Nginx::start(&payment_upstream(&[a.port(), b.port()]));
    let original = read(&nginx.upstream_file());
    drop((a, b));
    let fix = fix(&nginx);
    let run = fix.run(Precheck).await;
    run.expect_code(1);
    assert!(run.stderr.contains("would leave none"), "{}", run.stderr);
    // Execute without a passed precheck refuses too, and nothing changed.
    fix.run(Execute).await.expect_code(1);
    assert_eq!(read(&nginx.upstream_file()), original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_refuses_to_overwrite_a_change_made_after_execute() {
    let a = backend("a").await;
    let b = backend("b").await;
    let nginx = Nginx::start(&payment_upstream(&[a.port(), b.port()]));
    drop(b);
    let fix = fix(&nginx);
    fix.run(Precheck).await.expect_code(0);
    fix.run(Execute).await.expect_code(0);
    let theirs = format!("{}# edited by a human\n", read(&nginx.upstream_file()));
    std::fs::write(nginx.upstream_file(), &theirs).expect("edit");
    let run = fix.run(Rollback).await;
    run.expect_code(1);
    assert!(run.stderr.contains("changed since execute"), "{}", run.stderr);
    assert_eq!(read(&nginx.upstream_file()), theirs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_never_signals_a_process_that_is_not_the_nginx_master() {
    let a = backend("a").await;
    let b = backend("b").await;
    let nginx = Nginx::start(&payment_upstream(&[a.port(), b.port()]));
    drop(b);
    // A pid file naming some other process: the action must refuse to HUP it.
    let mut bystander = Bystander(
        Command::new("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep"),
    );
    let fake = tempfile::tempdir().expect("tempdir");
    let fake_pid = fake.path().join("nginx.pid");
    std::fs::write(&fake_pid, format!("{}\n", bystander.0.id())).expect("pid file");
    let fix = Fix::new(
        "nginx-upstream-failover",
        &[
            ("upstream", "payment"),
            ("upstream_file", "/nginx/conf.d/payment.conf"),
            ("front_url", &nginx.front_url("/")),
        ],
    )
    .mount("/nginx/conf.d", &nginx.conf_d())
    .mount("/nginx/run/nginx.pid", &fake_pid);
    let run = fix.run(Precheck).await;
    run.expect_code(1);
    assert!(run.stderr.contains("not an nginx master"), "{}", run.stderr);
    assert!(
        matches!(bystander.0.try_wait(), Ok(None)),
        "the bystander is alive"
    );
}

/// A process the action must leave alone; killed when the test ends.
struct Bystander(std::process::Child);

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_param_values_are_refused_or_inert() {
    let a = backend("a").await;
    let b = backend("b").await;
    let nginx = Nginx::start(&payment_upstream(&[a.port(), b.port()]));
    drop(b);
    let original = read(&nginx.upstream_file());
    let fix = fix(&nginx);
    let evil = hostile("/rootfix/state");
    for name in [
        "upstream",
        "upstream_file",
        "pid_file",
        "front_url",
        "health_path",
        "requests",
    ] {
        for value in [evil.as_str(), "$(reboot)", "../../etc/passwd", "a\nb"] {
            for phase in [Precheck, Execute] {
                let run = fix.run_unchecked(phase, &[(name, value)]).await;
                assert_eq!(run.code, 2, "{name}={value:?} in {phase:?}: {}", run.stderr);
                assert!(
                    run.stderr.contains(&format!("param {name}: refused")),
                    "{}",
                    run.stderr
                );
            }
        }
    }
    assert_not_executed(fix.state_dir(), "nginx-upstream-failover");
    assert_eq!(read(&nginx.upstream_file()), original);
}
