//! The cost of rootfix's decisions after a diagnosis (`cargo bench --bench gates`; needs Redis and
//! Docker): a whole rootfix in this process (tests/support/autonomy.rs), real Redis. Prints p50
//! and p99 of
//! - `Autonomy::decide` refusing a target outside every scope (audit + incident save);
//! - `Autonomy::decide` asking for an approval in `manual` (stage read, approval, save, audit,
//!   notification enqueued);
//! - `POST /api/v1/approvals/{id}/approve` answered: the approval decided, the remaining gates
//!   (kill switch, rate window, running slot) passed and the fix handed to its task.

#[path = "../../tests/support/docker.rs"]
mod docker;
#[path = "../../tests/support/autonomy.rs"]
mod harness;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use harness::{APPROVER_TOKEN, Harness, Options, scope};
use rootfix::autonomy::stage::Stage;
use rootfix::incident::{Incident, IncidentState};

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

fn report(name: &str, v: Vec<Duration>) {
    println!(
        "{name:<52} n={:<4} p50 {:>6.2} ms   p99 {:>6.2} ms",
        v.len(),
        pct(v.clone(), 0.5),
        pct(v, 0.99)
    );
}

/// A copy of a diagnosed incident under a new id and fingerprint, ready for a decision.
fn fresh(template: &Incident, n: usize, env: &str) -> Incident {
    let mut i = template.clone();
    i.id = format!("inc-bench-{}-{env}-{n}", std::process::id());
    i.fingerprint = format!(
        "{:016x}",
        0xbe00_0000_u64 + n as u64 + if env == "dev" { 1 << 40 } else { 0 }
    );
    i.alert.fingerprint = i.fingerprint.clone();
    i.alert.labels.insert("env".into(), env.into());
    i.alert.labels.insert("instance".into(), format!("api-{n}"));
    if let Some(d) = i.diagnosis.as_mut() {
        for r in &mut d.remedies {
            r.params.insert("target".into(), format!("api-{n}"));
        }
    }
    i.state = IncidentState::Open;
    i.fix = None;
    i.timeline.clear();
    i.version = 0;
    i
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = Options {
        scopes: vec![scope("staging", "staging", Stage::Auto, 100_000, 100_000)],
        ..Options::default()
    };
    let h = Harness::start("bench-gates", options).await;
    // One real alert through ingest, the event loop and the walk gives the diagnosis to copy.
    let template = h.fire("bench-template", "staging", "api-0").await;
    let n = 300;

    let mut refused = Vec::new();
    for k in 0..n {
        let i = fresh(&template, k, "dev");
        h.state.create_incident(&i).await.expect("create");
        let t = Instant::now();
        let d = h.autonomy.decide(&i.id).await.expect("decide");
        refused.push(t.elapsed());
        assert!(
            matches!(
                d,
                rootfix::autonomy::controller::Decided::Refused {
                    gate: rootfix::autonomy::gate::Gate::Scope,
                    ..
                }
            ),
            "{d:?}"
        );
    }
    let mut approvals = Vec::new();
    let mut ids = Vec::new();
    for k in 0..n {
        let i = fresh(&template, k, "staging");
        h.state.create_incident(&i).await.expect("create");
        let t = Instant::now();
        let d = h.autonomy.decide(&i.id).await.expect("decide");
        approvals.push(t.elapsed());
        match d {
            rootfix::autonomy::controller::Decided::AwaitingApproval(id) => ids.push(id),
            other => panic!("{other:?}"),
        }
    }
    let client = reqwest::Client::new();
    let mut approve = Vec::new();
    for id in ids.iter().take(100) {
        let t = Instant::now();
        let r = client
            .post(format!("{}/api/v1/approvals/{id}/approve", h.url))
            .bearer_auth(APPROVER_TOKEN)
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("approve");
        approve.push(t.elapsed());
        assert_eq!(r.status(), 200);
        // One fix at a time, so the engine's work does not queue up behind the measurement.
        h.settle().await;
    }
    println!("decisions after a diagnosis, real Redis on 127.0.0.1 (2 cores)");
    report("decide: refused by the scope gate", refused);
    report("decide: approval requested (manual)", approvals);
    report("POST approve → gates passed, fix handed to its task", approve);
}
