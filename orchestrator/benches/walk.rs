//! The diagnosis engine's benchmark (`cargo bench --bench walk`). Prints its figures:
//!
//! 1. the shipped `order-service-timeout` tree walked with a latency per signal, against the tree's
//!    critical path (the ideal time of an infinitely parallel walk that fetches each signal once)
//!    and against a sequential walk (one node, one signal at a time);
//! 2. the seed's pruning scenario: branches that keep finding nothing, before and after pruning;
//! 3. walks per second with zero-latency evidence: the engine's own cost (in-process state, and
//!    real Redis state when one answers at ROOTFIX_TEST_REDIS_URL or 127.0.0.1:6379).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rootfix::alert::{Alert, WebhookPayload};
use rootfix::catalog::Catalog;
use rootfix::engine::fixture::FixtureEvidence;
use rootfix::engine::{NodeOutcome, WalkOptions, Walker};
use rootfix::model::Playbook;
use rootfix::state::StateStore;
use rootfix::state::memory::MemoryStateStore;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn fixture(name: &str) -> FixtureEvidence {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("benches/fixtures")
            .join(name),
    )
    .expect("bench fixture");
    FixtureEvidence::from_yaml(&text).expect("bench fixture parses")
}

fn alert() -> Arc<Alert> {
    let body = std::fs::read(repo(
        "tests/fixtures/alertmanager/order-service-timeout.firing.json",
    ))
    .expect("alert fixture");
    Arc::new(WebhookPayload::parse(&body).expect("alert parses").alerts[0].clone())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The ideal time of a walk that visits the same nodes as `visited`: every node starts when its
/// parent is decided (and the parent's diagnose is done), a signal's fetch starts at its first
/// request and is shared, a node is decided when its signals are in. Solved as a fixpoint over
/// the signals' first-request times.
fn critical_path(
    pb: &Playbook,
    visited: &BTreeSet<String>,
    hits: &BTreeSet<String>,
    lat: &dyn Fn(&str) -> f64,
) -> f64 {
    let mut first_request: BTreeMap<String, f64> = BTreeMap::new();
    let mut total = 0.0;
    for _ in 0..64 {
        let mut requests: BTreeMap<String, f64> = BTreeMap::new();
        let mut start = vec![0.0f64; pb.nodes.len()];
        let mut end = 0.0f64;
        for (i, node) in pb.nodes.iter().enumerate() {
            if !visited.contains(&node.id) {
                continue;
            }
            let begin = node.parent.map_or(0.0, |p| {
                let parent = &pb.nodes[p];
                let decided = decided_at(parent, start[p], &first_request, lat);
                decided + parent.diagnose.as_ref().map_or(0.0, |d| lat(&d.output))
            });
            start[i] = begin;
            for s in node.when.signal_names() {
                let r = requests.entry(s.to_string()).or_insert(f64::MAX);
                *r = r.min(begin);
            }
            let decided = decided_at(node, begin, &first_request, lat);
            end = end.max(decided);
            if hits.contains(&node.id)
                && let Some(remedy) = &node.remedy
            {
                let after_diagnose = decided + node.diagnose.as_ref().map_or(0.0, |d| lat(&d.output));
                end = end.max(after_diagnose);
                for ws in &remedy.confidence.signals {
                    for s in ws.when.signal_names() {
                        let r = requests.entry(s.to_string()).or_insert(f64::MAX);
                        *r = r.min(decided);
                        let ready = first_request.get(s).copied().unwrap_or(decided).min(decided) + lat(s);
                        end = end.max(ready);
                    }
                }
            }
        }
        total = end;
        if requests == first_request {
            break;
        }
        first_request = requests;
    }
    total
}

fn decided_at(
    node: &rootfix::model::playbook::Node,
    begin: f64,
    first_request: &BTreeMap<String, f64>,
    lat: &dyn Fn(&str) -> f64,
) -> f64 {
    node.when
        .signal_names()
        .iter()
        .map(|s| first_request.get(*s).copied().unwrap_or(begin).min(begin) + lat(s))
        .fold(begin, f64::max)
}

async fn timed_walk(
    pb: &Playbook,
    evidence: Arc<FixtureEvidence>,
    state: Arc<dyn StateStore>,
    sequential: bool,
) -> (Duration, rootfix::engine::Diagnosis) {
    let walker = Walker::new(
        state,
        WalkOptions {
            deadline: Duration::from_secs(120),
            sequential,
        },
    );
    let started = Instant::now();
    let d = walker.walk(pb, alert(), evidence, chrono::Utc::now()).await;
    (started.elapsed(), d)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let catalog = Catalog::load(&[repo("playbooks"), repo("actions")]).expect("shipped playbooks load");
    let pb = catalog
        .playbook("order-service-timeout")
        .expect("shipped playbook")
        .clone();

    println!(
        "rootfix walk benchmark — order-service-timeout ({} nodes)\n",
        pb.nodes.len()
    );

    // 1. Concurrent walk vs critical path vs sequential walk.
    let evidence = Arc::new(fixture("all-layers-hit.evidence.yaml"));
    let mut concurrent = Vec::new();
    let mut diagnosis = None;
    for _ in 0..7 {
        let (t, d) = timed_walk(&pb, evidence.clone(), Arc::new(MemoryStateStore::new()), false).await;
        concurrent.push(t);
        diagnosis = Some(d);
    }
    let d = diagnosis.expect("walked");
    let visited: BTreeSet<String> = d.nodes.iter().map(|n| n.id.clone()).collect();
    let hits: BTreeSet<String> = d
        .nodes
        .iter()
        .filter(|n| n.outcome == NodeOutcome::Hit)
        .map(|n| n.id.clone())
        .collect();
    let lat = |s: &str| ms(evidence.latency_of(s));
    let critical = critical_path(&pb, &visited, &hits, &lat);
    let mut sequential = Vec::new();
    for _ in 0..3 {
        sequential.push(
            timed_walk(&pb, evidence.clone(), Arc::new(MemoryStateStore::new()), true)
                .await
                .0,
        );
    }
    let (walk, seq) = (ms(median(concurrent)), ms(median(sequential)));
    println!(
        "1. latency walk (all {} nodes visited, {} signals + 2 diagnostics)",
        visited.len(),
        d.evidence.len() - 2
    );
    println!("   critical path          {critical:8.1} ms");
    println!(
        "   concurrent walk (p50)  {walk:8.1} ms   = {:.3} × critical path   (goal ≤ 1.1)",
        walk / critical
    );
    println!(
        "   sequential walk (p50)  {seq:8.1} ms   = {:.2} × the concurrent walk\n",
        seq / walk
    );

    // 2. The seed's pruning scenario.
    let evidence = Arc::new(fixture("seed-pruning.evidence.yaml"));
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let mut times = Vec::new();
    for _ in 0..6 {
        let (t, d) = timed_walk(&pb, evidence.clone(), state.clone(), false).await;
        times.push((t, d.with_outcome(NodeOutcome::Pruned).len()));
    }
    let before = ms(times[0].0);
    let after = ms(median(times[4..].iter().map(|(t, _)| *t).collect()));
    println!("2. seed pruning scenario (prune after 3 misses; walks 1-6)");
    for (i, (t, pruned)) in times.iter().enumerate() {
        println!("   walk {}  {:8.1} ms   {pruned} nodes skipped", i + 1, ms(*t));
    }
    println!(
        "   before pruning {before:.1} ms → after {after:.1} ms: {:.2}× faster   (goal ≥ 3×; the seed: 87 s → 29 s)\n",
        before / after
    );

    // 3. Engine cost with zero-latency evidence.
    let evidence = Arc::new(fixture("all-layers-hit.evidence.yaml").with_all_latencies(Duration::ZERO));
    let walker = Walker::new(Arc::new(MemoryStateStore::new()), WalkOptions::default());
    let a = alert();
    let n = 3000;
    for _ in 0..200 {
        walker
            .walk(&pb, a.clone(), evidence.clone(), chrono::Utc::now())
            .await;
    }
    let started = Instant::now();
    for _ in 0..n {
        walker
            .walk(&pb, a.clone(), evidence.clone(), chrono::Utc::now())
            .await;
    }
    let elapsed = started.elapsed();
    println!("3. zero-latency walks, whole tree, one task");
    println!(
        "   in-process state       {:8.0} walks/s   ({:.1} µs per walk)",
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n as f64
    );

    let url = std::env::var("ROOTFIX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    match rootfix::state::redis::RedisStateStore::connect(&url, &format!("bench:{}:", std::process::id()))
        .await
    {
        Ok(redis) => {
            let walker = Walker::new(Arc::new(redis), WalkOptions::default());
            let n = 500;
            let started = Instant::now();
            for _ in 0..n {
                walker
                    .walk(&pb, a.clone(), evidence.clone(), chrono::Utc::now())
                    .await;
            }
            let elapsed = started.elapsed();
            println!(
                "   Redis state ({url})  {:8.0} walks/s   ({:.2} ms per walk: {} prune round trips each)",
                n as f64 / elapsed.as_secs_f64(),
                elapsed.as_secs_f64() * 1e3 / n as f64,
                2 * (pb.nodes.len() - 1)
            );
        }
        Err(e) => println!("   Redis state: not measured ({e})"),
    }
}
