//! The ingest benchmark (`cargo bench --bench ingest`; needs Redis on 127.0.0.1:6379 or
//! ROOTFIX_TEST_REDIS_URL). Prints:
//!
//! 1. sustained alerts/s and p50/p99 acknowledgement latency of rootfix's webhook (auth, payload
//!    validation, pipelined XADD), beside the raw limit measured in the same run: a bare axum
//!    handler doing the same pipelined XADD and nothing else;
//! 2. p50/p99 at an offered 1,000 alerts/s;
//! 3. the RSS of a `rootfix serve` process idle and holding 10,000 open incidents;
//! 4. what durability costs: the same closed loop against a redis-server of the bench's own
//!    without persistence, with AOF `appendfsync everysec` (the main job's setting: at most a
//!    second of acknowledged alerts lost if the machine dies) and with `appendfsync always`.
//!
//! Payloads are the captured Alertmanager webhook (one alert each, ~1 KB). The load generator
//! shares the machine (2 cores) with the servers and Redis.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use rootfix::catalog::Catalog;
use rootfix::config::{Role, Token};
use rootfix::metrics::Metrics;
use rootfix::reload::CatalogHandle;
use rootfix::server::{AppState, router};
use rootfix::state::redis::RedisStateStore;
use rootfix::state::{IncidentStore, StateStore};

const TOKEN: &str = "bench-ingest-token-0001";

fn repo(path: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn redis_url() -> String {
    std::env::var("ROOTFIX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn payload(seq: u64) -> String {
    let template = std::fs::read_to_string(repo(
        "tests/fixtures/alertmanager/order-service-timeout.firing.json",
    ))
    .expect("fixture");
    template.replace("cf12c1db58df9346", &format!("{seq:016x}"))
}

struct Latencies(Vec<Duration>);

impl Latencies {
    fn pct(&mut self, p: f64) -> Duration {
        self.0.sort();
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i]
    }
}

/// Closed loop: `connections` clients post back to back for `duration`.
async fn closed_loop(url: &str, connections: usize, duration: Duration) -> (f64, Latencies, u64) {
    let body = Bytes::from(payload(1));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, body, errors) = (url.to_string(), body.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut lat = Vec::new();
            while started.elapsed() < duration {
                let t = Instant::now();
                match client
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => lat.push(t.elapsed()),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    (rate, Latencies(all), errors.load(Ordering::Relaxed))
}

/// Open loop: one request every 1/rate seconds for `duration`, whatever the answers take.
async fn open_loop(url: &str, rate: f64, duration: Duration) -> (f64, Latencies, u64) {
    let body = Bytes::from(payload(2));
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    while started.elapsed() < duration {
        tick.tick().await;
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            match client.post(&url).bearer_auth(TOKEN).body(body).send().await {
                Ok(r) if r.status() == 200 => Some(t.elapsed()),
                _ => None,
            }
        }));
    }
    let sent = tasks.len();
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        match t.await.ok().flatten() {
            Some(d) => lat.push(d),
            None => errors += 1,
        }
    }
    (sent as f64 / duration.as_secs_f64(), Latencies(lat), errors)
}

/// rootfix's router (ingest only) on `store`, served on a free port; its webhook's URL.
async fn webhook(store: RedisStateStore) -> String {
    let state: Arc<dyn StateStore> = Arc::new(store);
    let app = AppState {
        state,
        catalog: CatalogHandle::new(Catalog::load(&[repo("playbooks"), repo("actions")]).expect("catalog")),
        tokens: Arc::new(vec![Token {
            name: "bench".into(),
            role: Role::Ingest,
            secret: TOKEN.into(),
        }]),
        metrics: Arc::new(Metrics::new()),
        http: Default::default(),
        readiness: Default::default(),
        autonomy: None,
        chat: rootfix::server::chat::ChatState::disabled(),
    };
    format!("{}/api/v1/alerts/alertmanager", serve(router(app)).await)
}

/// A redis-server of the bench's own on a free port, with `args`; killed and its folder removed
/// when dropped.
struct OwnRedis {
    child: std::process::Child,
    dir: std::path::PathBuf,
    url: String,
}

impl OwnRedis {
    async fn start(name: &str, args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let dir = std::env::temp_dir().join(format!("rootfix-bench-redis-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", ""])
            .args(args)
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server");
        let url = format!("redis://127.0.0.1:{port}/");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { child, dir, url }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Section 4: the closed loop on a Redis without persistence, with AOF everysec and with AOF
/// always, two rounds interleaved.
async fn durability(duration: Duration) {
    let setups: [(&str, &[&str]); 3] = [
        ("no persistence", &["--appendonly", "no"]),
        (
            "AOF everysec",
            &["--appendonly", "yes", "--appendfsync", "everysec"],
        ),
        ("AOF always", &["--appendonly", "yes", "--appendfsync", "always"]),
    ];
    let mut results: Vec<(f64, Latencies)> = setups.iter().map(|_| (0.0, Latencies(Vec::new()))).collect();
    for _round in 0..2 {
        for (i, (name, args)) in setups.iter().enumerate() {
            let redis = OwnRedis::start(&name.replace(' ', "-"), args).await;
            let store = RedisStateStore::connect(&redis.url, "bench-durability:")
                .await
                .expect("own redis");
            let url = webhook(store).await;
            let _ = closed_loop(&url, 8, Duration::from_millis(500)).await;
            let (rate, lat, _errors) = closed_loop(&url, 16, duration).await;
            results[i].0 += rate / 2.0;
            results[i].1.0.extend(lat.0);
        }
    }
    println!(
        "4. durability, 16 connections, closed loop, {} s each, two rounds interleaved",
        duration.as_secs()
    );
    let base = results[0].0;
    for ((name, _), (rate, lat)) in setups.iter().zip(results.iter_mut()) {
        println!(
            "   {name:<16} {rate:8.0} alerts/s ({:3.0} %)   p50 {:6.2} ms   p99 {:6.2} ms",
            100.0 * *rate / base,
            lat.pct(0.5).as_secs_f64() * 1e3,
            lat.pct(0.99).as_secs_f64() * 1e3
        );
    }
    println!(
        "   (a replica acknowledging through WAIT is measured once rootfix can ask for it: the scale-out issue)"
    );
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[derive(Clone)]
struct Bare {
    conn: redis::aio::ConnectionManager,
    stream: String,
}

/// The raw limit: read the body, one pipelined XADD, 200.
async fn bare_handler(State(b): State<Bare>, body: Bytes) -> &'static str {
    let mut conn = b.conn.clone();
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("XADD")
        .arg(&b.stream)
        .arg("*")
        .arg("alert")
        .arg(body.as_ref());
    let _: Result<Vec<String>, _> = pipe.query_async(&mut conn).await;
    "{}"
}

async fn measure_rss() {
    let prefix = format!("bench-rss:{}:", std::process::id());
    let dir = std::env::temp_dir().join(format!("rootfix-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let config = dir.join("rootfix.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nredis: {{url: '{}', key_prefix: '{prefix}'}}\nplaybooks: {}\nactions: {}\ntokens:\n  - {{name: bench, role: admin, token: {TOKEN}}}\n",
            redis_url(),
            repo("playbooks").display(),
            repo("actions").display()
        ),
    )
    .expect("config");
    let url = format!("http://127.0.0.1:{port}");
    let mut child = support::spawn_serve(&config, &url).await;
    let client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = support::status_kib(child.id(), "VmRSS:");

    let n = 10_000u64;
    let posted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for lane in 0..8u64 {
        let (client, url, posted) = (client.clone(), url.clone(), posted.clone());
        tasks.push(tokio::spawn(async move {
            let mut seq = lane;
            while seq < n {
                let body = payload(0x5000_0000 + seq).replace("OrderServiceTimeout", "BenchUnhandled");
                if let Ok(r) = client
                    .post(format!("{url}/api/v1/alerts/alertmanager"))
                    .bearer_auth(TOKEN)
                    .body(body)
                    .send()
                    .await
                    && r.status() == 200
                {
                    posted.fetch_add(1, Ordering::Relaxed);
                }
                seq += 8;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let store = RedisStateStore::connect(&redis_url(), &prefix)
        .await
        .expect("redis");
    let started = Instant::now();
    loop {
        let counts = store.incident_counts().await.unwrap_or_default();
        let open: u64 = counts.iter().filter(|(s, _)| s.is_open()).map(|(_, n)| n).sum();
        if open >= n || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let handled = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded = support::status_kib(child.id(), "VmRSS:");
    let counts = store.incident_counts().await.unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    println!("3. RSS of `rootfix serve` (release)");
    println!(
        "   idle                          {:7.1} MiB   (goal < 30 MiB)",
        idle as f64 / 1024.0
    );
    println!(
        "   with {} open incidents      {:7.1} MiB   (goal < 200 MiB; {} alerts handled in {:.1} s after the last post)",
        counts
            .iter()
            .filter(|(s, _)| s.is_open())
            .map(|(_, n)| n)
            .sum::<u64>(),
        loaded as f64 / 1024.0,
        posted.load(Ordering::Relaxed),
        handled.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = redis_url();
    let prefix = format!("bench-ingest:{}:", std::process::id());
    let store = match RedisStateStore::connect(&url, &prefix).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("the ingest benchmark needs Redis at {url}: {e}");
            std::process::exit(1);
        }
    };
    let bare = Bare {
        conn: store.connection(),
        stream: format!("{prefix}bare"),
    };
    let rootfix_url = webhook(store).await;
    let bare_url = format!(
        "{}/ingest",
        serve(
            axum::Router::new()
                .route("/ingest", post(bare_handler))
                .with_state(bare)
        )
        .await
    );

    println!(
        "rootfix ingest benchmark — payload {} bytes, one alert each\n",
        payload(1).len()
    );
    let duration = Duration::from_secs(5);
    for _ in 0..2 {
        // Warm-up of both paths (connections, Redis scripts, allocator).
        let _ = closed_loop(&bare_url, 8, Duration::from_millis(500)).await;
        let _ = closed_loop(&rootfix_url, 8, Duration::from_millis(500)).await;
    }
    let (raw, mut raw_lat, raw_err) = closed_loop(&bare_url, 16, duration).await;
    let (ours, mut our_lat, our_err) = closed_loop(&rootfix_url, 16, duration).await;
    println!(
        "1. sustained, 16 connections, closed loop, {} s each",
        duration.as_secs()
    );
    println!(
        "   raw limit (bare axum + pipelined XADD)  {raw:8.0} alerts/s   p50 {:6.2} ms   p99 {:6.2} ms   errors {raw_err}",
        raw_lat.pct(0.5).as_secs_f64() * 1e3,
        raw_lat.pct(0.99).as_secs_f64() * 1e3
    );
    println!(
        "   rootfix webhook                         {ours:8.0} alerts/s   p50 {:6.2} ms   p99 {:6.2} ms   errors {our_err}",
        our_lat.pct(0.5).as_secs_f64() * 1e3,
        our_lat.pct(0.99).as_secs_f64() * 1e3
    );
    println!("   rootfix / raw = {:.0} %   (goal ≥ 50 %)\n", 100.0 * ours / raw);

    let (offered, mut lat, errors) = open_loop(&rootfix_url, 1000.0, duration).await;
    println!(
        "2. open loop at {offered:.0} alerts/s offered for {} s",
        duration.as_secs()
    );
    println!(
        "   rootfix webhook   p50 {:6.2} ms   p99 {:6.2} ms   errors {errors}   (goal p99 < 5 ms)\n",
        lat.pct(0.5).as_secs_f64() * 1e3,
        lat.pct(0.99).as_secs_f64() * 1e3
    );

    measure_rss().await;
    durability(duration).await;
}
