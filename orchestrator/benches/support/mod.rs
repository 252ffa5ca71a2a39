//! What several benchmarks share. Declared in a bench with
//! `#[path = "support/mod.rs"] mod support;`.
#![allow(dead_code)]

/// Removes every key under `prefix` (a benchmark's own), in batches.
pub async fn remove_prefix(conn: &mut redis::aio::ConnectionManager, prefix: &str) {
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await
            .expect("SCAN");
        if !keys.is_empty() {
            let () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(conn)
                .await
                .expect("UNLINK");
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS:`, `VmHWM:`); 0 when unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// The release `rootfix serve` with `config` (warnings only, stderr dropped), once `url`'s
/// `/readyz` answers 200 (20 s at most).
pub async fn spawn_serve(config: &std::path::Path, url: &str) -> std::process::Child {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rootfix serve");
    let client = reqwest::Client::new();
    for _ in 0..400 {
        if matches!(client.get(format!("{url}/readyz")).send().await, Ok(r) if r.status() == 200) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child
}
