//! `rootfix simulate` over the shipped playbooks, real Alertmanager payloads and committed
//! evidence fixtures: the printed tree is compared with a committed snapshot
//! (tests/snapshots/simulate/*.txt). `UPDATE_SNAPSHOTS=1` rewrites the snapshots; review the diff.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use support::{repo_path, repo_root};

struct Case {
    name: &'static str,
    playbook: &'static str,
    alert: &'static str,
    evidence: &'static str,
    extra: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "order-jvm-heap",
        playbook: "order-service-timeout",
        alert: "order-service-timeout.firing",
        evidence: "order-jvm-heap",
        extra: &[],
    },
    Case {
        name: "order-payment-upstream",
        playbook: "order-service-timeout",
        alert: "order-service-timeout.firing",
        evidence: "order-payment-upstream",
        extra: &[],
    },
    Case {
        name: "order-quiet-network-5-walks",
        playbook: "order-service-timeout",
        alert: "order-service-timeout.firing",
        evidence: "order-quiet-network",
        extra: &["--walks", "5"],
    },
    Case {
        name: "order-replica-lag",
        playbook: "order-service-timeout",
        alert: "order-service-timeout.firing",
        evidence: "order-replica-lag",
        extra: &[],
    },
    Case {
        name: "go-proxy-tls",
        playbook: "go-module-proxy",
        alert: "go-module-proxy.firing",
        evidence: "go-proxy-tls",
        extra: &[],
    },
];

fn simulate(case: &Case, json: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rootfix"));
    cmd.current_dir(repo_root()).args([
        "simulate",
        "--playbook",
        &format!("playbooks/{}.yaml", case.playbook),
        "--alert",
        &format!("tests/fixtures/alertmanager/{}.json", case.alert),
        "--evidence",
        &format!("tests/fixtures/simulate/{}.evidence.yaml", case.evidence),
    ]);
    cmd.args(case.extra);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        case.name,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn simulate_output_matches_the_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for case in CASES {
        let actual = simulate(case, false);
        let path = repo_path(&format!("tests/snapshots/simulate/{}.txt", case.name));
        if update {
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if actual != expected {
            stale.push(format!("── {} ({}) ──\n{actual}", case.name, path.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "simulate output differs from the snapshots (UPDATE_SNAPSHOTS=1 rewrites them):\n{}",
        stale.join("\n")
    );
}

#[test]
fn simulate_json_carries_the_diagnosis() {
    let out = simulate(&CASES[1], true);
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["playbook"], "order-service-timeout");
    assert_eq!(d["service"], "order");
    let remedy = d["remedies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"] == "payment_upstream_failing")
        .unwrap();
    assert_eq!(remedy["decision"]["kind"], "act");
    assert!((remedy["score"].as_f64().unwrap() - 0.924).abs() < 1e-9);
    let tls = d["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "tls_handshake_slow")
        .unwrap();
    assert_eq!(tls["outcome"], "error");
    assert_eq!(
        d["evidence"]["tls_handshake_p99_seconds"]["error"],
        "prometheus: query timed out after 5s"
    );
}

#[test]
fn simulate_refuses_bad_input_with_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .current_dir(repo_root())
        .args([
            "simulate",
            "--playbook",
            "playbooks/order-service-timeout.yaml",
            "--alert",
            "tests/fixtures/alertmanager/order-service-timeout.firing.json",
            "--evidence",
            "no/such/file.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read no/such/file.yaml"));
}

#[tokio::test]
async fn simulate_reads_prune_state_from_redis_without_writing_it() {
    let store = support::redis_store("simulate-state").await;
    let prefix = store.keys().prefix().to_string();
    let mut conn = store.connection();
    let key = store.keys().prune("order");
    let _: () =
        ::redis::AsyncCommands::hset(&mut conn, &key, "network_layer", "2026-11-24T15:00:00Z:skipped:0")
            .await
            .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .current_dir(repo_root())
        .args([
            "simulate",
            "--playbook",
            "playbooks/order-service-timeout.yaml",
            "--alert",
            "tests/fixtures/alertmanager/order-service-timeout.firing.json",
            "--evidence",
            "tests/fixtures/simulate/order-jvm-heap.evidence.yaml",
            "--state",
            &support::redis_url(),
            "--state-prefix",
            &prefix,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("├─ network_layer  PRUNED\n│     pruned since 2026-11-24T15:00:00Z; skipped 1 of 10"),
        "{text}"
    );
    let after: String = ::redis::AsyncCommands::hget(&mut conn, &key, "network_layer")
        .await
        .unwrap();
    assert_eq!(after, "2026-11-24T15:00:00Z:skipped:0", "simulate wrote to Redis");
}
