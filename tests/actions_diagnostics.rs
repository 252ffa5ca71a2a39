//! The diagnostic actions, run in their images with docker: `network-troubleshoot` probing ports
//! on 127.0.0.1 (host network, as its action.yaml says), and `dump-thread-stack` reading a local
//! server that replays a Spring Boot Actuator `/actuator/threaddump` JSON body
//! (`tests/fixtures/actions/actuator-threaddump.json`: request threads waiting in a payment
//! client's connection pool, a monitor held by a busy thread, a two-thread deadlock). Each prints
//! exactly one JSON object on stdout, which the orchestrator keeps as evidence.

#[path = "support/actions.rs"]
mod actions;
#[path = "support/evidence.rs"]
mod evidence;
#[path = "support/mod.rs"]
mod support;

use actions::{Fix, assert_not_executed, hostile};
use evidence::{Reply, closed_port, serve};
use rootfix::model::action::PhaseName::Execute;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_troubleshoot_reports_dns_and_tcp_of_an_open_port() {
    let server = serve(|_| Reply::text(200, "ok")).await;
    let target = format!("localhost:{}", server.port());
    let run = Fix::new("network-troubleshoot", &[("target", &target)])
        .run(Execute)
        .await;
    run.expect_code(0);
    let out = run.json();
    assert_eq!(out["target"], json!(target));
    assert_eq!(out["port"], json!(server.port()));
    assert_eq!(out["dns"]["resolved"], json!(true), "{out}");
    assert!(
        out["dns"]["addresses"]
            .as_array()
            .expect("addresses")
            .contains(&json!("127.0.0.1")),
        "{out}"
    );
    assert_eq!(out["tcp"]["connected"], json!(true), "{out}");
    assert_eq!(out["tcp"]["address"], json!("127.0.0.1"));
    let connect_ms = out["connect_ms"].as_f64().expect("connect_ms");
    // A measured duration, not a speed check (a loaded CI machine took 4.6 s once).
    assert!((0.0..60_000.0).contains(&connect_ms), "{out}");
    assert_eq!(out["tcp"]["connect_ms"], out["connect_ms"]);
    assert!(out["dns_ms"].as_f64().is_some(), "{out}");
    assert!(out["retransmits"].as_u64().is_some(), "host TCP counters: {out}");
    // The sampling window is measured with the container's wall clock, which a loaded CI machine
    // has been seen to step (a negative window once): the report must carry it, as a number.
    assert!(out["sample_ms"].as_f64().is_some(), "sample_ms: {out}");
    assert_eq!(out["errors"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_troubleshoot_reports_a_refused_connection_as_evidence() {
    let port = closed_port();
    let target = format!("127.0.0.1:{port}");
    let run = Fix::new("network-troubleshoot", &[("target", &target)])
        .run(Execute)
        .await;
    run.expect_code(0);
    let out = run.json();
    assert_eq!(
        out["dns"]["resolved"],
        json!(true),
        "an address needs no lookup: {out}"
    );
    assert_eq!(out["tcp"]["connected"], json!(false), "{out}");
    assert_eq!(out["connect_ms"], json!(null));
    let error = out["tcp"]["error"].as_str().expect("error");
    assert!(error.contains("refused"), "{out}");
    assert_eq!(out["errors"].as_array().expect("errors").len(), 1, "{out}");
}

fn dump_fix(url: &str) -> Fix {
    Fix::new("dump-thread-stack", &[("url", url)]).network("host")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_thread_stack_summarises_an_actuator_thread_dump() {
    let body = std::fs::read_to_string(support::repo_path(
        "tests/fixtures/actions/actuator-threaddump.json",
    ))
    .expect("fixture");
    let server = serve(move |seen| {
        if seen.path == "/actuator/threaddump" {
            Reply::json(200, &body)
        } else {
            Reply::text(404, "")
        }
    })
    .await;
    let url = server.url("/actuator/threaddump");
    let run = dump_fix(&url).run(Execute).await;
    run.expect_code(0);
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("accept"), Some("application/json"));

    let out = run.json();
    assert_eq!(out["url"], json!(url));
    assert_eq!(out["total"], json!(12));
    assert_eq!(
        out["by_state"],
        json!({"WAITING": 5, "TIMED_WAITING": 1, "BLOCKED": 3, "RUNNABLE": 3})
    );
    assert_eq!(out["blocked"], json!(9));
    // What the playbook's threads_blocked_on_payment node reads.
    assert_eq!(out["blocked_on_payment"], json!(5));
    assert_eq!(out["blocked_on_focus"], json!(5));
    assert_eq!(out["focus"], json!("payment"));
    assert_eq!(out["deadlocked"], json!(["worker-a", "worker-b"]));
    let top = out["top_frames"].as_array().expect("top_frames");
    assert!(
        top.contains(&json!({"frame": "com.shop.payment.PaymentClient.charge", "threads": 5})),
        "{out}"
    );
    assert!(
        top.iter()
            .all(|f| !f["frame"].as_str().unwrap_or("").starts_with("java.")),
        "JDK frames are left out: {out}"
    );
    let blocked = out["blocked_threads"].as_array().expect("blocked_threads");
    assert_eq!(
        blocked[0]["state"],
        json!("BLOCKED"),
        "BLOCKED threads first: {out}"
    );
    assert_eq!(blocked[0]["name"], json!("http-nio-8080-exec-6"));
    assert_eq!(blocked[0]["lock_owner"], json!("http-nio-8080-exec-7"));
    assert_eq!(
        blocked[0]["frames"][0],
        json!("com.shop.order.InventoryCache.get(InventoryCache.java:52)")
    );
    assert_eq!(blocked.len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_thread_stack_fails_without_a_thread_dump() {
    let server = serve(|seen| {
        if seen.path == "/html/actuator/threaddump" {
            Reply::text(200, "<html>login</html>")
        } else {
            Reply::text(404, "not found")
        }
    })
    .await;
    for path in ["/html/actuator/threaddump", "/missing/actuator/threaddump"] {
        let run = dump_fix(&server.url(path)).run(Execute).await;
        run.expect_code(1);
        assert!(
            run.stdout.trim().is_empty(),
            "no evidence on failure: {}",
            run.stdout
        );
    }
    let run = dump_fix(&format!("http://127.0.0.1:{}/actuator/threaddump", closed_port()))
        .run(Execute)
        .await;
    run.expect_code(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_param_values_are_refused_or_inert() {
    let server = serve(|_| Reply::text(200, "ok")).await;
    let good = format!("127.0.0.1:{}", server.port());
    let net = Fix::new("network-troubleshoot", &[("target", &good)]);
    let evil = hostile("/rootfix/state");
    for value in [evil.as_str(), "$(reboot):80", "127.0.0.1:80 -e /bin/sh", "`id`:1"] {
        let run = net.run_unchecked(Execute, &[("target", value)]).await;
        assert_eq!(run.code, 2, "target={value:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    let run = net
        .run_unchecked(Execute, &[("connect_timeout", "1; reboot")])
        .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_not_executed(net.state_dir(), "network-troubleshoot");

    let dump = dump_fix(&server.url("/actuator/threaddump"));
    for (name, value) in [
        ("url", evil.as_str()),
        (
            "url",
            "http://127.0.0.1:1/actuator/threaddump -O /rootfix/state/x",
        ),
        ("url", "file:///etc/passwd#/threaddump"),
        ("focus", "payment\") | halt_error(1"),
        ("top", "$(reboot)"),
    ] {
        let run = dump.run_unchecked(Execute, &[(name, value)]).await;
        assert_eq!(run.code, 2, "{name}={value:?}: {}", run.stderr);
    }
    assert_not_executed(dump.state_dir(), "dump-thread-stack");
    assert!(
        server.requests().is_empty(),
        "nothing was sent with a refused param"
    );
}
