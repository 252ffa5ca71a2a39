//! The backtest's benchmark (`cargo bench --bench backtest`): 10,000 recorded incidents replayed
//! under a changed playbook, as `rootfix backtest --corpus` does it: the corpus parsed from JSON
//! lines, every incident walked again over its recorded evidence, compared, summarised and
//! rendered. Goal: under 10 s on these machines.
//!
//! The records are made by the real walker over the shipped `order-service-timeout` tree with
//! four evidence variants (every layer hitting; the heap remedy at 1.0, 0.8 and 0.5), sharing one
//! in-process prune state, so the corpus holds pruned nodes too. The candidate raises the heap
//! remedy's threshold from 0.8 to 0.85.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rootfix::alert::{Alert, WebhookPayload};
use rootfix::backtest::corpus::{corpus_line, parse_corpus};
use rootfix::backtest::report::render_text;
use rootfix::backtest::{ReplayOptions, Replayer, Summary, replay_all};
use rootfix::catalog::Catalog;
use rootfix::engine::fixture::FixtureEvidence;
use rootfix::engine::{WalkOptions, Walker};
use rootfix::incident::{Incident, IncidentState};
use rootfix::state::memory::MemoryStateStore;

const INCIDENTS: usize = 10_000;
const ROUNDS: usize = 3;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn alert() -> Alert {
    let body = std::fs::read(repo(
        "tests/fixtures/alertmanager/order-service-timeout.firing.json",
    ))
    .expect("alert fixture");
    WebhookPayload::parse(&body).expect("alert parses").alerts[0].clone()
}

/// The bench fixture with every latency dropped, and the heap remedy's evidence as given.
fn evidence(gc: f64, trace_ms: f64) -> Arc<FixtureEvidence> {
    let text = std::fs::read_to_string(repo("orchestrator/benches/fixtures/all-layers-hit.evidence.yaml"))
        .expect("bench fixture");
    let text: String = text
        .lines()
        .map(|l| match l.split_once(", latency:") {
            Some((head, _)) => format!("{head}}}"),
            None => l.to_string(),
        })
        .map(|l| {
            if l.trim_start().starts_with("gc_pause_ratio:") {
                format!("  gc_pause_ratio: {{value: {gc}}}")
            } else if l.trim_start().starts_with("trace_p99_ms:") {
                format!("  trace_p99_ms: {{value: {trace_ms}}}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    Arc::new(FixtureEvidence::from_yaml(&text).expect("fixture parses"))
}

fn load(playbook_text: &str) -> (tempfile::TempDir, Arc<Catalog>) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("order-service-timeout.yaml"), playbook_text).expect("write");
    let catalog = Catalog::load(&[dir.path().to_path_buf(), repo("actions")]).unwrap_or_else(|p| {
        panic!(
            "{}",
            p.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    });
    (dir, Arc::new(catalog))
}

async fn record(catalog: &Catalog) -> Vec<Incident> {
    let playbook = catalog
        .playbook("order-service-timeout")
        .expect("shipped playbook")
        .clone();
    let variants = [
        evidence(0.31, 6230.0),
        evidence(0.31, 3000.0),
        evidence(0.05, 6230.0),
        evidence(0.05, 3000.0),
    ];
    let walker = Walker::new(Arc::new(MemoryStateStore::new()), WalkOptions::default());
    let base = alert();
    let mut out = Vec::with_capacity(INCIDENTS);
    for n in 0..INCIDENTS {
        let mut alert = base.clone();
        alert.fingerprint = format!("{:016x}", n);
        alert.starts_at = base.starts_at + chrono::Duration::seconds(n as i64);
        let at = alert.starts_at;
        let diagnosis = walker
            .walk(&playbook, Arc::new(alert.clone()), variants[n % 4].clone(), at)
            .await;
        out.push(Incident {
            id: format!("inc-{n}-0"),
            fingerprint: alert.fingerprint.clone(),
            state: IncidentState::Open,
            alertname: alert.name().to_string(),
            service: diagnosis.service.clone(),
            playbook: Some(playbook.name.clone()),
            alert,
            created_at: at,
            updated_at: at,
            resolved_at: None,
            firings: 1,
            created_by_entry: format!("{n}-0"),
            applied_entries: vec![format!("{n}-0")],
            diagnosis: Some(diagnosis),
            timeline: vec![],
            fix: None,
            last_seen: None,
            flaps: 0,
            version: 1,
        });
    }
    out
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let shipped = std::fs::read_to_string(repo("playbooks/order-service-timeout.yaml")).expect("playbook");
    let needle = "              confidence:\n                threshold: 0.8\n                signals:\n                  - when: evidence.jvm_heap_used_ratio > 0.95";
    assert!(
        shipped.contains(needle),
        "the heap remedy's threshold moved; update the bench"
    );
    let candidate_text = shipped.replace(needle, &needle.replace("threshold: 0.8", "threshold: 0.85"));
    let (_recorded_dir, recorded) = load(&shipped);
    let (_candidate_dir, candidate) = load(&candidate_text);

    let started = Instant::now();
    let incidents = runtime.block_on(record(&recorded));
    let corpus: String = incidents.iter().map(corpus_line).collect();
    println!(
        "corpus: {INCIDENTS} incidents recorded in {:.1} s; {:.1} MiB of JSON lines, {} bytes per incident",
        started.elapsed().as_secs_f64(),
        corpus.len() as f64 / (1 << 20) as f64,
        corpus.len() / INCIDENTS
    );

    let mut times = Vec::new();
    let mut last: Option<Summary> = None;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let parsed = parse_corpus("bench", &corpus).expect("corpus parses");
        let parse = started.elapsed();
        let replayer = Replayer::new(candidate.clone(), ReplayOptions::default());
        let replays = runtime.block_on(replay_all(&replayer, parsed));
        let summary = Summary::of(&replays);
        let text = render_text(&replays, &summary);
        let total = started.elapsed();
        assert!(!text.is_empty());
        times.push((total, parse));
        last = Some(summary);
    }
    times.sort();
    let (total, parse) = times[times.len() / 2];
    let summary = last.expect("a round ran");
    println!(
        "backtest of {INCIDENTS} incidents: {:.2} s (median of {ROUNDS}; parse {:.2} s, replay, compare and render {:.2} s), {:.0} µs per incident; goal < 10 s",
        total.as_secs_f64(),
        parse.as_secs_f64(),
        (total - parse).as_secs_f64(),
        total.as_secs_f64() * 1e6 / INCIDENTS as f64
    );
    println!(
        "decisions: {} unchanged, {} changed ({} to another fix, {} to none); {} playbook-changed records",
        summary.unchanged + summary.paths_changed,
        summary.decisions_changed,
        summary.other_fixes,
        summary.fixes_lost,
        summary.playbook_changed
    );
    assert!(
        summary.decisions_changed > 0,
        "the raised threshold changes some decisions"
    );
    assert!(total < Duration::from_secs(60), "far off the goal");
}
