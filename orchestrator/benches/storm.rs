//! An alert storm (`cargo bench --bench storm`; Redis on 127.0.0.1:6379 or
//! ROOTFIX_TEST_REDIS_URL): a release `rootfix serve` on its own key prefix, with one playbook
//! whose tree decides on labels alone, receives 50,000 alerts (one Alertmanager webhook each,
//! each its own fingerprint) as fast as 16 keep-alive clients can post them. Prints:
//! - the time until every alert is acknowledged and until every one is decided (an incident
//!   out of `diagnosing`, its diagnosis saved), from the first post;
//! - acknowledgement p50/p99 during the storm;
//! - the serve process's peak resident memory (VmHWM);
//! - that every alert is in exactly one incident (50,000 incidents, 50,000 fingerprints).
//!
//! The load generator, rootfix and Redis share the machine (2 cores). Set ROOTFIX_BENCH_STORM to
//! post another number of alerts, ROOTFIX_BENCH_STORM_WORKERS for `limits.workers` (default 32, as
//! serve's).

#[path = "support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rootfix::incident::{IncidentFilter, IncidentState};
use rootfix::state::IncidentStore;
use rootfix::state::redis::RedisStateStore;

const TOKEN: &str = "bench-storm-token-00001";
const CLIENTS: u64 = 16;

const PLAYBOOK: &str = r#"apiVersion: rootfix/v1
kind: Playbook
metadata: {name: storm}
spec:
  match: ['alertname="StormTest"']
  tree:
    id: storm_root
    children:
      - id: storm_critical
        when: alert.labels.severity == "critical"
        children:
          - id: storm_order
            when: alert.labels.service == "order"
      - id: storm_warning
        when: alert.labels.severity == "warning"
"#;

fn repo(path: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn redis_url() -> String {
    std::env::var("ROOTFIX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: u64 = std::env::var("ROOTFIX_BENCH_STORM")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000);
    let template = std::fs::read_to_string(repo(
        "tests/fixtures/alertmanager/order-service-timeout.firing.json",
    ))
    .expect("fixture")
    .replace("OrderServiceTimeout", "StormTest");
    let workers: usize = std::env::var("ROOTFIX_BENCH_STORM_WORKERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(32);
    let prefix = format!("bench-storm:{}:", std::process::id());
    let dir = std::env::temp_dir().join(format!("rootfix-bench-storm-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("playbooks")).expect("temp dir");
    std::fs::write(dir.join("playbooks/storm.yaml"), PLAYBOOK).expect("playbook");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let config = dir.join("rootfix.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nredis: {{url: '{}', key_prefix: '{prefix}'}}\nplaybooks: {}\nactions: {}\ntokens:\n  - {{name: bench, role: admin, token: {TOKEN}}}\nlimits: {{workers: {workers}}}\n",
            redis_url(),
            dir.join("playbooks").display(),
            repo("actions").display()
        ),
    )
    .expect("config");
    let url = format!("http://127.0.0.1:{port}");
    let mut child = support::spawn_serve(&config, &url).await;
    let client = reqwest::Client::new();
    let idle = support::status_kib(child.id(), "VmRSS:");

    // The bodies are made before the clock starts.
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..total)
            .map(|n| template.replace("cf12c1db58df9346", &format!("{:016x}", 0x7000_0000 + n)))
            .collect(),
    );
    let store = RedisStateStore::connect(&redis_url(), &prefix)
        .await
        .expect("Redis");
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for lane in 0..CLIENTS {
        let (client, url, bodies, errors) = (client.clone(), url.clone(), bodies.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut n = lane;
            while n < total {
                let t = Instant::now();
                match client
                    .post(format!("{url}/api/v1/alerts/alertmanager"))
                    .bearer_auth(TOKEN)
                    .body(bodies[n as usize].clone())
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        lat.push(t.elapsed());
                        n += CLIENTS;
                    }
                    // Shed or refused: the sender (Alertmanager) retries; so does this one.
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap_or_default());
    }
    let acked = started.elapsed();
    lat.sort();
    let mut decided = None;
    while started.elapsed() < Duration::from_secs(600) {
        let counts = store.incident_counts().await.unwrap_or_default();
        let all: u64 = counts.values().sum();
        let diagnosing = counts.get(&IncidentState::Diagnosing).copied().unwrap_or(0);
        if all >= total && diagnosing == 0 {
            decided = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let peak = support::status_kib(child.id(), "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();

    // Every alert in exactly one incident.
    let mut fingerprints = HashSet::new();
    let mut incidents = 0u64;
    let mut offset = 0;
    loop {
        let page = store
            .list_incidents(&IncidentFilter::default(), offset, 500)
            .await
            .expect("listing");
        for i in &page.items {
            incidents += 1;
            fingerprints.insert(i.fingerprint.clone());
        }
        match page.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    let decided = decided.expect("every alert decided within 10 minutes");
    println!(
        "alert storm: {total} alerts, {CLIENTS} keep-alive clients, one alert per webhook, limits.workers {workers}"
    );
    println!(
        "  acknowledged   all in {:6.2} s   {:7.0} alerts/s   p50 {:6.2} ms   p99 {:6.2} ms   retried {}",
        acked.as_secs_f64(),
        total as f64 / acked.as_secs_f64(),
        pct(&lat, 0.5).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        errors.load(Ordering::Relaxed)
    );
    println!(
        "  decided        all in {:6.2} s   {:7.0} alerts/s from the first post",
        decided.as_secs_f64(),
        total as f64 / decided.as_secs_f64()
    );
    println!(
        "  rootfix serve  RSS idle {:.1} MiB, peak {:.1} MiB",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!(
        "  incidents {incidents}, distinct fingerprints {} (every alert in exactly one: {})",
        fingerprints.len(),
        incidents == total && fingerprints.len() as u64 == total
    );
    assert_eq!((incidents, fingerprints.len() as u64), (total, total));

    let mut conn = store.connection();
    support::remove_prefix(&mut conn, &prefix).await;
    let _ = std::fs::remove_dir_all(&dir);
}
