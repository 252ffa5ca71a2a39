//! The real `rootfix serve` against what production does to it: started before Redis (the port
//! opens first; SIGTERM exits 0 while it waits), Redis restarted empty while alerts keep coming,
//! Redis paused past the answer's timeout (503 "may have been stored", and the retry is not stored
//! twice), and slow or hostile clients (stalled headers and bodies, uploads without a token, more
//! connections than allowed).

#[path = "support/process.rs"]
mod process;
#[path = "support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use process::{OwnRedis, Serve, get_json, write_config};
use serde_json::Value;
use support::*;

const LIMITS: &str = "limits: {header_timeout: 2s, body_timeout: 2s, max_connections: 40}\n";

fn firing() -> String {
    std::fs::read_to_string(repo_path(
        "tests/fixtures/alertmanager/order-service-timeout.firing.json",
    ))
    .unwrap()
}

/// The fixture under a fingerprint of its own (a distinct alert).
fn firing_as(fingerprint: u64) -> String {
    firing().replace("cf12c1db58df9346", &format!("{fingerprint:016x}"))
}

async fn post_alert(url: &str, body: String) -> (u16, Value) {
    match reqwest::Client::new()
        .post(format!("{url}/api/v1/alerts/alertmanager"))
        .bearer_auth(INGEST_TOKEN)
        .timeout(Duration::from_secs(20))
        .body(body)
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

fn start(redis_url: &str, prefix: &str, extra: &str) -> (tempfile::TempDir, Serve) {
    let (dir, serve) = start_unready(redis_url, prefix, extra);
    serve.wait_serving(Duration::from_secs(30));
    (dir, serve)
}

/// Started; only the port is known to be open.
fn start_unready(redis_url: &str, prefix: &str, extra: &str) -> (tempfile::TempDir, Serve) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        port,
        redis_url,
        prefix,
        &repo_path("playbooks"),
        &repo_path("actions"),
        extra,
    );
    let serve = Serve::start_unready(&config, port, &dir.path().join("serve.log"));
    (dir, serve)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_opens_before_redis_and_sigterm_exits_0_in_every_phase() {
    // Nothing listens on this Redis port yet.
    let redis_port = free_port();
    let redis_url = format!("redis://127.0.0.1:{redis_port}/");
    let (_dir, mut serve) = start_unready(&redis_url, "", "");
    // Serve::start_unready returned: /healthz answers although Redis is not there.
    let (status, ready) = get_json(&format!("{}/readyz", serve.url), None).await;
    assert_eq!(status, 503, "{ready}");
    let reason = ready["reasons"][0].as_str().unwrap_or_default();
    assert!(reason.starts_with("waiting for Redis at"), "{ready}");
    assert_eq!(ready["phase"]["phase"], "waiting_for_redis", "{ready}");
    // The API says it is starting, so Alertmanager keeps the alert and retries.
    let (status, body) = post_alert(&serve.url, firing()).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap_or_default().contains("starting"),
        "{body}"
    );
    // SIGTERM while waiting for Redis: exit 0.
    let code = serve.terminate(Duration::from_secs(10)).map(|s| s.code());
    assert_eq!(code, Some(Some(0)), "log:\n{}", serve.log_text());

    // Redis arrives later: the same process becomes ready by itself, and SIGTERM still exits 0.
    let (_dir, mut serve) = start_unready(&redis_url, "", "");
    let _redis = OwnRedis::start_on(redis_port);
    let ready = eventually(Duration::from_secs(20), "ready once Redis is up", || async {
        let (status, body) = get_json(&format!("{}/readyz", serve.url), None).await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(ready["event_loop"]["reading"], true, "{ready}");
    assert_eq!(ready["phase"]["phase"], "serving", "{ready}");
    let code = serve.terminate(Duration::from_secs(20)).map(|s| s.code());
    assert_eq!(code, Some(Some(0)), "log:\n{}", serve.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_under_load_and_alerts_are_handled_again_without_a_restart() {
    let mut redis = OwnRedis::start();
    let redis_port = redis.port;
    let (_dir, serve) = start(&redis.url(), "", "");
    let url = serve.url.clone();
    // Load: distinct alerts, about 20 a second, for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let stored = Arc::new(AtomicU64::new(0));
    let load = tokio::spawn({
        let (stop, stored, url) = (stop.clone(), stored.clone(), url.clone());
        async move {
            let mut n = 1_000u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if post_alert(&url, firing_as(n)).await.0 == 200 {
                    stored.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    eventually(Duration::from_secs(15), "alerts stored under load", || async {
        (stored.load(Ordering::Relaxed) >= 20).then_some(())
    })
    .await;
    let (status, ready) = get_json(&format!("{url}/readyz"), None).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["event_loop"]["reading"], true, "{ready}");
    assert!(ready["stream"]["length"].as_u64().unwrap_or(0) > 0, "{ready}");

    redis.stop();
    let down = eventually(Duration::from_secs(15), "unready while Redis is down", || async {
        let (status, body) = get_json(&format!("{url}/readyz"), None).await;
        (status == 503).then_some(body)
    })
    .await;
    assert!(down["reasons"].to_string().contains("redis"), "{down}");

    // Back on the same port with no data: no stream, no consumer group.
    let _redis = OwnRedis::start_on(redis_port);
    let restarted = chrono::Utc::now();
    let since = Instant::now();
    let ready = eventually(Duration::from_secs(20), "ready again", || async {
        let (status, body) = get_json(&format!("{url}/readyz"), None).await;
        let last_read = body["event_loop"]["last_read_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        (status == 200 && last_read.is_some_and(|t| t > restarted)).then_some(body)
    })
    .await;
    assert_eq!(ready["event_loop"]["reading"], true, "{ready}");
    // A new alert becomes an incident within seconds, without restarting rootfix.
    let (status, body) = post_alert(&url, firing_as(7)).await;
    assert_eq!(status, 200, "{body}");
    eventually(Duration::from_secs(15), "the new alert's incident", || async {
        let (_, list) = get_json(&format!("{url}/api/v1/incidents?limit=500"), Some(VIEWER_TOKEN)).await;
        list["items"]
            .as_array()?
            .iter()
            .any(|i| i["fingerprint"] == format!("{:016x}", 7))
            .then_some(())
    })
    .await;
    let recovered_in = since.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = load.await;
    assert!(
        serve.log_text().contains("consumer group is gone"),
        "the log says what happened"
    );
    eprintln!("handled again {recovered_in:?} after Redis came back empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_answers_may_have_been_stored_and_the_retry_is_not_stored_twice() {
    let redis = OwnRedis::start();
    let (_dir, serve) = start(&redis.url(), "", "");
    let redis_cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &redis.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // One alert first, so the store's script is cached and a paused write runs when the pause ends.
    assert_eq!(post_alert(&serve.url, firing_as(1)).await.0, 200);
    // Writes wait 8 s on the server; rootfix gives up on the answer after 5 s.
    assert_eq!(redis_cli(&["CLIENT", "PAUSE", "8000", "WRITE"]), "OK");
    let (status, body) = post_alert(&serve.url, firing()).await;
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("may have been stored") && error.contains("retrying is safe"),
        "{body}"
    );
    // The write went through when the pause ended; Alertmanager's retry is recognised.
    let retried = eventually(Duration::from_secs(15), "the retry answered", || async {
        let (status, body) = post_alert(&serve.url, firing()).await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(
        (retried["accepted"].as_u64(), retried["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "{retried}"
    );
    assert_eq!(
        redis_cli(&["XLEN", "rootfix:alerts"]),
        "2",
        "each alert stored once"
    );
    let incident = eventually(Duration::from_secs(15), "the incident", || async {
        let (_, list) = get_json(&format!("{}/api/v1/incidents", serve.url), Some(VIEWER_TOKEN)).await;
        list["items"]
            .as_array()?
            .iter()
            .find(|i| i["fingerprint"] == "cf12c1db58df9346")
            .cloned()
    })
    .await;
    let (_, shown) = get_json(
        &format!(
            "{}/api/v1/incidents/{}",
            serve.url,
            incident["id"].as_str().unwrap_or("")
        ),
        Some(VIEWER_TOKEN),
    )
    .await;
    assert_eq!(shown["firings"], 1, "one firing, not two: {shown}");
}

/// Sends `head` on a new connection and reads until the server answers or closes; returns the
/// status line (empty when closed without an answer) and how long it took.
fn send_and_wait(addr: &str, head: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    stream.write_all(head).unwrap();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    (text.lines().next().unwrap_or("").to_string(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_hostile_clients_are_cut_off_and_cost_no_memory() {
    let prefix = unique_prefix("hostile");
    let (_dir, serve) = start(&redis_url(), &prefix, LIMITS);
    let addr = serve.url.trim_start_matches("http://").to_string();

    // A body that stalls after one byte (with a good token): 408 once body_timeout passes.
    let head = format!(
        "POST /api/v1/alerts/alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {INGEST_TOKEN}\r\nContent-Length: 1000\r\n\r\n{{"
    );
    let a = addr.clone();
    let (status, took) = tokio::task::spawn_blocking(move || send_and_wait(&a, head.as_bytes()))
        .await
        .unwrap();
    assert!(status.contains(" 408 "), "{status}");
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(8),
        "{took:?}"
    );
    eprintln!("stalled body dropped after {took:?}");

    // The same without a token: refused at once, the body never read.
    let head = "POST /api/v1/alerts/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{";
    let a = addr.clone();
    let (status, took) = tokio::task::spawn_blocking(move || send_and_wait(&a, head.as_bytes()))
        .await
        .unwrap();
    assert!(status.contains(" 401 "), "{status}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // Headers that never finish: the connection is closed after header_timeout.
    let a = addr.clone();
    let (status, took) = tokio::task::spawn_blocking(move || {
        send_and_wait(&a, b"POST /api/v1/alerts/alertmanager HTTP/1.1\r\nHost:")
    })
    .await
    .unwrap();
    assert!(!status.contains(" 200 "), "{status}");
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(8),
        "{took:?}"
    );
    eprintln!("stalled headers dropped after {took:?}");

    // 300 uploads of 1 MiB - 1 byte without a token, each stalling: memory stays flat.
    let before = rss_kib(serve.pid());
    let a = addr.clone();
    let peak = tokio::task::spawn_blocking(move || {
        let chunk = vec![b'x'; 64 * 1024];
        let mut streams = Vec::new();
        for _ in 0..300 {
            let Ok(mut s) = TcpStream::connect(&a) else {
                continue;
            };
            s.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
            let _ = s.write_all(
                b"POST /api/v1/alerts/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n",
            );
            let mut sent = 0;
            while sent < 1_048_575 {
                let n = (1_048_575 - sent).min(chunk.len());
                if s.write_all(&chunk[..n]).is_err() {
                    break;
                }
                sent += n;
            }
            streams.push(s);
        }
        streams.len()
    })
    .await
    .unwrap();
    let after = rss_kib(serve.pid());
    eprintln!("resident memory: {before} KiB before, {after} KiB after {peak} stalled uploads");
    assert!(after < before + 32 * 1024, "{before} KiB → {after} KiB");

    // More connections than max_connections (40): the 41st waits until idle ones time out.
    let idle: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = addr.clone();
    let (status, took) = tokio::task::spawn_blocking(move || {
        send_and_wait(
            &a,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .unwrap();
    drop(idle);
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(8),
        "{took:?}"
    );
    eprintln!("the connection over the cap was served after {took:?}");
}
