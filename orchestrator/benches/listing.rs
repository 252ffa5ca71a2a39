//! Listing cost against history (`cargo bench --bench listing`, real Redis at
//! ROOTFIX_TEST_REDIS_URL or 127.0.0.1:6379). 10 open incidents among 10,000 and among 1,000,000
//! stored (the open ones the oldest, so a scan reads everything), timed through the
//! `IncidentStore` calls the API and the page make:
//! - `GET /api/v1/incidents?state=open`: `list_incidents(state=open, 0, 50)`;
//! - the dashboard: one `list_incidents` per open state (seven), as `/ui/` does on every load;
//!
//! each with the listing indexes (by state, service, playbook) and without them (the marker
//! removed: every incident read newest first, 256 at a time, and filtered in the process, as
//! before the indexes; one round above 100,000 stored, the median of 15 otherwise). Goal: with the indexes, the same latency at 1,000,000 as at 10,000
//! within 2×. Each size uses its own key prefix, removed afterwards.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use rootfix::alert::WebhookPayload;
use rootfix::incident::{Incident, IncidentFilter, IncidentState};
use rootfix::state::IncidentStore;
use rootfix::state::redis::RedisStateStore;

const OPEN: usize = 10;
const ROUNDS: usize = 15;

fn url() -> String {
    std::env::var("ROOTFIX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn incident(n: usize, template: &rootfix::alert::Alert) -> Incident {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(n as i64);
    let mut alert = template.clone();
    alert.fingerprint = format!("{n:016x}");
    let open = n < OPEN;
    Incident {
        id: format!("inc-{n}-0"),
        fingerprint: alert.fingerprint.clone(),
        state: if open {
            IncidentState::Open
        } else {
            IncidentState::Resolved
        },
        alertname: alert.name().to_string(),
        service: Some(format!("svc-{}", n % 50)),
        playbook: Some("order-service-timeout".into()),
        alert,
        created_at: at,
        updated_at: at,
        resolved_at: (!open).then_some(at),
        firings: 1,
        created_by_entry: format!("{n}-0"),
        applied_entries: vec![format!("{n}-0")],
        diagnosis: None,
        timeline: vec![],
        fix: None,
        last_seen: None,
        flaps: 0,
        version: 0,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn time<F, Fut>(rounds: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        f().await;
        times.push(started.elapsed());
    }
    median(times)
}

async fn open_listing(store: &RedisStateStore) {
    let filter = IncidentFilter {
        state: Some(IncidentState::Open),
        ..IncidentFilter::default()
    };
    let page = store.list_incidents(&filter, 0, 50).await.expect("listing");
    assert_eq!(page.items.len(), OPEN);
}

async fn dashboard(store: &RedisStateStore) {
    let mut n = 0;
    for state in IncidentState::ALL.into_iter().filter(|s| s.is_open()) {
        let filter = IncidentFilter {
            state: Some(state),
            ..IncidentFilter::default()
        };
        n += store
            .list_incidents(&filter, 0, 50)
            .await
            .expect("listing")
            .items
            .len();
    }
    assert_eq!(n, OPEN);
}

async fn run(total: usize) -> [Duration; 4] {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/alertmanager/order-service-timeout.firing.json"
    ))
    .expect("fixture");
    let template = WebhookPayload::parse(&body).expect("fixture").alerts[0].clone();
    let prefix = format!("bench:listing:{}:{total}", std::process::id());
    let store = Arc::new(RedisStateStore::connect(&url(), &prefix).await.expect("Redis"));
    let started = Instant::now();
    futures::stream::iter(0..total)
        .map(|n| {
            let (store, template) = (store.clone(), &template);
            async move {
                store
                    .create_incident(&incident(n, template))
                    .await
                    .expect("create");
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<()>>()
        .await;
    println!(
        "  {total} incidents stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let indexed_open = time(ROUNDS, || open_listing(&store)).await;
    let indexed_dashboard = time(ROUNDS, || dashboard(&store)).await;
    let mut conn = store.connection();
    let marker = store.keys().incidents_indexed();
    let () = redis::cmd("DEL")
        .arg(&marker)
        .query_async(&mut conn)
        .await
        .expect("DEL");
    // A scan of a million incidents takes seconds: fewer rounds there.
    let scan_rounds = if total > 100_000 { 1 } else { ROUNDS };
    let scan_open = time(scan_rounds, || open_listing(&store)).await;
    let scan_dashboard = time(scan_rounds, || dashboard(&store)).await;
    // Remove the prefix's keys.
    support::remove_prefix(&mut conn, &prefix).await;
    [indexed_open, indexed_dashboard, scan_open, scan_dashboard]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sizes: Vec<usize> = std::env::var("ROOTFIX_BENCH_LISTING_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 1_000_000]);
    let mut rows = Vec::new();
    for &total in &sizes {
        println!("{OPEN} open among {total}:");
        rows.push((total, runtime.block_on(run(total))));
    }
    println!(
        "\n{:>10}  {:>22}  {:>22}  {:>22}  {:>22}",
        "stored", "state=open (indexed)", "dashboard (indexed)", "state=open (scan)", "dashboard (scan)"
    );
    for (total, [a, b, c, d]) in &rows {
        println!(
            "{total:>10}  {:>22}  {:>22}  {:>22}  {:>22}",
            ms(*a),
            ms(*b),
            ms(*c),
            ms(*d)
        );
    }
    if let (Some((_, first)), Some((_, last))) = (rows.first(), rows.last()) {
        println!(
            "indexed, largest vs smallest: state=open {:.2}×, dashboard {:.2}× (goal ≤ 2×)",
            last[0].as_secs_f64() / first[0].as_secs_f64(),
            last[1].as_secs_f64() / first[1].as_secs_f64()
        );
    }
}
