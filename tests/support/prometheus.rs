//! A real Prometheus (Debian's `prometheus` package) for one test: its own free port on
//! 127.0.0.1, its own storage in a temporary folder, scraping itself every second, with recording
//! rules that make known series. Killed when the guard is dropped.
//!
//! Series that exist once it is ready:
//! - `up{job="prometheus"}` = 1
//! - `rootfix_test_answer` = 42 (one series, no labels but the name)
//! - `rootfix_test_shard{shard="a"}` = 1 and `{shard="b"}` = 2
//! - `rootfix_test_hostile{service="a\b\"} or vector(1) #"}` = 7 (see [`HOSTILE`])
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `service` label value of `rootfix_test_hostile`: a backslash, a quote, a brace and a
/// comment, everything that could end a PromQL string literal and add to the query.
pub const HOSTILE: &str = "a\\b\"} or vector(1) #";

const RULES: &str = r#"groups:
  - name: rootfix-test
    interval: 1s
    rules:
      - record: rootfix_test_answer
        expr: vector(42)
      - record: rootfix_test_shard
        expr: label_replace(vector(1), "shard", "a", "", "") or label_replace(vector(2), "shard", "b", "", "")
      - record: rootfix_test_hostile
        expr: 'label_replace(vector(7), "service", "a\\b\"} or vector(1) #", "", "")'
"#;

pub struct Prometheus {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
    pub started: Instant,
}

impl Prometheus {
    /// Starts Prometheus and waits until it is ready and every series above has a sample.
    pub async fn start() -> Self {
        let binary = which_prometheus();
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = super::free_port();
            let config = format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            );
            std::fs::write(dir.path().join("prometheus.yml"), config).expect("write config");
            std::fs::write(dir.path().join("rules.yml"), RULES).expect("write rules");
            let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
            let child = Command::new(&binary)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut prometheus = Prometheus {
                url: format!("http://127.0.0.1:{port}"),
                child,
                dir,
                started: Instant::now(),
            };
            if prometheus.wait_ready().await {
                prometheus.wait_for_series().await;
                return prometheus;
            }
            last_log = prometheus.log();
            // The port may have been taken between choosing and binding: try another.
        }
        panic!("Prometheus did not start; its log:\n{last_log}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    async fn wait_ready(&mut self) -> bool {
        super::wait_ready(&mut self.child, &self.url).await
    }

    async fn wait_for_series(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let queries = [
            "up{job=\"prometheus\"}",
            "rootfix_test_answer",
            "rootfix_test_shard",
            "rootfix_test_hostile",
        ];
        'outer: while Instant::now() < deadline {
            for q in queries {
                let found = client
                    .get(format!("{}/api/v1/query", self.url))
                    .query(&[("query", q)])
                    .send()
                    .await
                    .ok()
                    .map(|r| r.text());
                let body = match found {
                    Some(f) => f.await.unwrap_or_default(),
                    None => String::new(),
                };
                if !body.contains("\"value\"") {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue 'outer;
                }
            }
            return;
        }
        panic!("Prometheus has no data after 30 s; its log:\n{}", self.log());
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which_prometheus() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`prometheus` is not installed: apt-get install -y prometheus (scripts/test-all.sh does)")
        })
}
