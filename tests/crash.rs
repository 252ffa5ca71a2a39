//! Crash test: while a load generator posts real-sized Alertmanager payloads, `rootfix serve` is
//! killed with SIGKILL and restarted several times. Every alert that got a 200 must end up in
//! exactly one incident: zero lost, none doubled.

#[path = "support/process.rs"]
mod process;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use process::{Serve, write_config};
use rootfix::incident::{IncidentFilter, IncidentState};
use rootfix::state::{AlertStream, IncidentStore};
use support::*;

const KILLS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_alert() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prefix = unique_prefix("crash");
    let config = write_config(
        dir.path(),
        port,
        &redis_url(),
        &prefix,
        &repo_path("playbooks"),
        &repo_path("actions"),
        "consumer: crash-replica\nlimits: {workers: 4, walk_deadline: 2s, claim_idle: 3s}\n",
    );
    let log = dir.path().join("serve.log");
    let serve = {
        let (config, log) = (config.clone(), log.clone());
        tokio::task::spawn_blocking(move || Serve::start(&config, port, &log))
            .await
            .unwrap()
    };
    let serve = Arc::new(Mutex::new(Some(serve)));

    // The load: real payloads, one alert each; every 4th repeats the previous fingerprint.
    let template = std::fs::read_to_string(repo_path(
        "tests/fixtures/alertmanager/order-service-timeout.firing.json",
    ))
    .unwrap();
    let outcomes: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for lane in 0..4u64 {
        let (template, outcomes, stop) = (template.clone(), outcomes.clone(), stop.clone());
        let url = format!("http://127.0.0.1:{port}/api/v1/alerts/alertmanager");
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            let mut seq = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seq += 1;
                let n = if seq.is_multiple_of(4) { seq - 1 } else { seq };
                let fingerprint = format!("{lane:02x}{n:014x}");
                // Each post's content is its own (the summary names it): a repeat of a
                // fingerprint is a new firing, never a retry the dedupe window would absorb.
                let body = template.replace("cf12c1db58df9346", &fingerprint).replacen(
                    "above 5s",
                    &format!("above 5s (post {lane}/{seq})"),
                    1,
                );
                let ok = client
                    .post(&url)
                    .bearer_auth(INGEST_TOKEN)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status() == 200)
                    .unwrap_or(false);
                outcomes.lock().unwrap().push((fingerprint, ok));
                if !ok {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }

    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(900)).await;
        let (config, log, serve) = (config.clone(), log.clone(), serve.clone());
        tokio::task::spawn_blocking(move || {
            let mut guard = serve.lock().unwrap();
            if let Some(mut old) = guard.take() {
                old.kill();
            }
            *guard = Some(Serve::start(&config, port, &log));
        })
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }

    // Let the last rootfix drain the stream.
    let store = rootfix::state::redis::RedisStateStore::connect(&redis_url(), &prefix)
        .await
        .unwrap();
    eventually(Duration::from_secs(60), "the stream to drain", || async {
        let s = store.stream_stats().await.unwrap();
        (s.pending == 0 && s.lag == 0).then_some(())
    })
    .await;

    let outcomes = outcomes.lock().unwrap().clone();
    let mut ok_per_fp: BTreeMap<String, u32> = BTreeMap::new();
    let mut tries_per_fp: BTreeMap<String, u32> = BTreeMap::new();
    for (fp, ok) in &outcomes {
        *tries_per_fp.entry(fp.clone()).or_default() += 1;
        if *ok {
            *ok_per_fp.entry(fp.clone()).or_default() += 1;
        }
    }
    let incidents = store
        .list_incidents(&IncidentFilter::default(), 0, 1_000_000)
        .await
        .unwrap()
        .items;
    let mut by_fp: BTreeMap<String, Vec<&rootfix::incident::Incident>> = BTreeMap::new();
    for i in &incidents {
        by_fp.entry(i.fingerprint.clone()).or_default().push(i);
    }
    let acknowledged: u32 = ok_per_fp.values().sum();
    eprintln!(
        "crash test: {} posts, {acknowledged} answered 200, {} failed while rootfix was down, {KILLS} SIGKILLs, {} incidents",
        outcomes.len(),
        outcomes.len() as u32 - acknowledged,
        incidents.len()
    );
    assert!(
        acknowledged > 100,
        "the load generator got too few 200s to prove anything: {acknowledged}"
    );
    for (fp, ok) in &ok_per_fp {
        let found = by_fp.get(fp).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            found.len(),
            1,
            "fingerprint {fp}: {} incidents for {ok} acknowledged alerts",
            found.len()
        );
        let firings = found[0].firings;
        assert!(
            firings >= *ok && firings <= tries_per_fp[fp],
            "fingerprint {fp}: {firings} firings for {ok} acknowledged of {} tries",
            tries_per_fp[fp]
        );
        assert_ne!(
            found[0].state,
            IncidentState::Diagnosing,
            "fingerprint {fp}: the diagnosis was never finished"
        );
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log_text.contains("panicked"), "{log_text}");
}
