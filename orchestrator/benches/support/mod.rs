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
