//! Something is really fixed, end to end through rootfix's own machinery: a real nginx (Debian's
//! `nginx-light`) on the host proxies an upstream `payment` of two servers; one dies and requests
//! through nginx fail. The fix executor runs the shipped `nginx-upstream-failover` action through
//! the Docker runner (its image, its phases, the journal, the lock); its verify proves the repair
//! by sending requests through nginx; the test measures the service itself before and after.
//! Then a failing verify shows rollback putting nginx back as it was.

#[path = "support/actions.rs"]
mod actions;
#[path = "support/evidence.rs"]
mod evidence;
#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use evidence::{Reply, serve};
use nginx::{Nginx, payment_upstream};
use rootfix::catalog::{Catalog, Source};
use rootfix::fix::executor::{Executor, FixPlan, LockPolicy};
use rootfix::fix::journal::FixOutcome;
use rootfix::model::Action;
use rootfix::model::action::PhaseName;
use rootfix::runner::docker::DockerRunner;

const REQUESTS: usize = 20;

/// The shipped action's file, with its host mounts pointed at this test's nginx.
fn shipped_action_text(nginx: &Nginx) -> String {
    std::fs::read_to_string(support::repo_path("actions/nginx-upstream-failover/action.yaml"))
        .unwrap()
        .replace(
            "host: /etc/nginx/conf.d,",
            &format!("host: {},", nginx.conf_d().display()),
        )
        .replace(
            "host: /run/nginx.pid,",
            &format!("host: {},", nginx.pid_file().display()),
        )
}

fn action_from(text: String) -> Arc<Action> {
    let source = Source {
        path: "action.yaml".into(),
        text,
    };
    let catalog = Catalog::from_sources(&[source]).unwrap_or_else(|p| panic!("{p:#?}"));
    catalog.actions["nginx-upstream-failover"].clone()
}

/// The executor with the Docker runner and real Redis state.
async fn docker_executor(test: &str, state_root: &std::path::Path) -> Executor {
    Executor {
        state: Arc::new(support::redis_store(test).await),
        docker: Some(Arc::new(
            DockerRunner::connect(state_root.to_path_buf()).await.unwrap(),
        )),
        kubernetes: None,
        kubernetes_job: None,
        lease: Duration::from_secs(30),
        lock_policy: LockPolicy::Refuse,
    }
}

fn ok(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s == 200).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executor_fails_over_a_real_nginx_and_the_service_measures_healthy() {
    actions::ensure_images();
    let healthy = serve(|_| Reply::text(200, "payment-a")).await;
    let flaky = serve(|_| Reply::text(200, "payment-b")).await;
    let nginx = Nginx::start(&payment_upstream(&[healthy.port(), flaky.port()]));
    let front = nginx.front_url("/pay");
    let original = std::fs::read_to_string(nginx.upstream_file()).unwrap();

    let state_root = tempfile::tempdir().unwrap();
    let executor = docker_executor("fix-nginx", state_root.path()).await;
    let action = action_from(shipped_action_text(&nginx));
    let params = BTreeMap::from([
        ("upstream".to_string(), "payment".to_string()),
        (
            "upstream_file".to_string(),
            "/nginx/conf.d/payment.conf".to_string(),
        ),
        ("front_url".to_string(), front.clone()),
        ("requests".to_string(), REQUESTS.to_string()),
    ]);

    // Break the service the way the alert describes: a payment server dies.
    drop(flaky);
    let before = actions::measure(&front, REQUESTS).await;
    assert!(
        ok(&before) < REQUESTS,
        "the dead server must make requests fail: {before:?}"
    );

    let report = executor
        .run(FixPlan {
            incident: format!("inc-nginx-{}", std::process::id()),
            action: action.clone(),
            params: params.clone(),
            verify: None,
            dry_run: false,
        })
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        FixOutcome::Succeeded,
        "{report:#?}\nnginx: {}",
        nginx.error_log()
    );
    let phases: Vec<PhaseName> = report.phases.iter().map(|(p, _, _)| *p).collect();
    assert_eq!(
        phases,
        [PhaseName::Precheck, PhaseName::Execute, PhaseName::Verify]
    );
    // Measured by the test, not trusted from an exit code.
    let after = actions::measure(&front, REQUESTS).await;
    assert_eq!(ok(&after), REQUESTS, "{after:?}");
    let fixed = std::fs::read_to_string(nginx.upstream_file()).unwrap();
    assert_ne!(fixed, original);
    assert!(fixed.contains(" down"), "{fixed}");

    // A second run finds nothing to do (the failing server is already down).
    let again = executor
        .run(FixPlan {
            incident: format!("inc-nginx-again-{}", std::process::id()),
            action,
            params,
            verify: None,
            dry_run: false,
        })
        .await
        .unwrap();
    assert_eq!(again.outcome, FixOutcome::AlreadyHealthy);
    assert_eq!(std::fs::read_to_string(nginx.upstream_file()).unwrap(), fixed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_that_cannot_pass_rolls_nginx_back_as_it_was() {
    actions::ensure_images();
    let healthy = serve(|_| Reply::text(200, "payment-a")).await;
    let flaky = serve(|_| Reply::text(200, "payment-b")).await;
    let nginx = Nginx::start(&payment_upstream(&[healthy.port(), flaky.port()]));
    let original = std::fs::read_to_string(nginx.upstream_file()).unwrap();
    drop(flaky);
    let state_root = tempfile::tempdir().unwrap();
    let executor = docker_executor("fix-nginx-rollback", state_root.path()).await;
    // Verify measures a front that does not answer: it cannot pass.
    let action = action_from(
        shipped_action_text(&nginx).replace("retries: 5, interval: 5s", "retries: 2, interval: 200ms"),
    );
    let front = nginx.front_url("/pay");
    let report = executor
        .run(FixPlan {
            incident: format!("inc-nginx-rb-{}", std::process::id()),
            action,
            params: BTreeMap::from([
                ("upstream".to_string(), "payment".to_string()),
                (
                    "upstream_file".to_string(),
                    "/nginx/conf.d/payment.conf".to_string(),
                ),
                // A front URL where nothing listens: verify sees failures whatever execute did.
                (
                    "front_url".to_string(),
                    format!("http://127.0.0.1:{}/pay", support::free_port()),
                ),
                ("requests".to_string(), "5".to_string()),
            ]),
            verify: None,
            dry_run: false,
        })
        .await
        .unwrap();
    assert!(
        matches!(&report.outcome, FixOutcome::RolledBack(_)),
        "{report:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(nginx.upstream_file()).unwrap(),
        original,
        "rollback restored the upstream"
    );
    let back = actions::measure(&front, REQUESTS).await;
    assert!(
        ok(&back) < REQUESTS,
        "the service is back as it was (one dead server): {back:?}"
    );
}
