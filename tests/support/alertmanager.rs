//! A real Alertmanager (Debian's `prometheus-alertmanager`) for one test: its own free port on
//! 127.0.0.1, its own storage in a temporary folder, clustering off. Killed when dropped.
//!
//! [`Alertmanager::start`] routes every alert to a receiver that sends nothing, for tests that
//! only use the API; [`Alertmanager::start_with`] takes a whole config (webhooks to rootfix).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A config whose only receiver has no integrations: alerts are kept, never sent.
pub const QUIET_CONFIG: &str = "route:\n  receiver: quiet\nreceivers:\n  - name: quiet\n";

pub struct Alertmanager {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager with [`QUIET_CONFIG`] and waits until `/-/ready` answers 200.
    pub async fn start() -> Self {
        Self::start_with(QUIET_CONFIG).await
    }

    /// Starts Alertmanager with `config` (alertmanager.yml) and waits until it is ready; tries
    /// another port when the chosen one was taken before Alertmanager bound it.
    pub async fn start_with(config: &str) -> Self {
        let binary = which_alertmanager();
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = super::free_port();
            let config_path = dir.path().join("alertmanager.yml");
            std::fs::write(&config_path, config).expect("write config");
            let log = std::fs::File::create(dir.path().join("alertmanager.log")).expect("log file");
            let child = Command::new(&binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut am = Alertmanager {
                url: format!("http://127.0.0.1:{port}"),
                port,
                child,
                dir,
            };
            if am.wait_ready().await {
                return am;
            }
            last_log = am.log();
        }
        panic!("Alertmanager did not start; its log:\n{last_log}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// `<url>/api/v2/<path>`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v2/{}", self.url, path.trim_start_matches('/'))
    }

    async fn wait_ready(&mut self) -> bool {
        super::wait_ready(&mut self.child, &self.url).await
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which_alertmanager() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("prometheus-alertmanager"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`prometheus-alertmanager` is not installed: apt-get install -y prometheus-alertmanager (scripts/test-all.sh does)"
            )
        })
}

/// Two real Alertmanagers clustered on loopback (the usual HA pair): each gossips with the
/// other, has its own storage, and runs `config`. Gossip is sped up (settles in about a second)
/// and the peer timeout is 1 s, so the peer that is second in the cluster's order sends its copy
/// of a notification 1 s after the first one (or not at all, once the first one's log reached it).
/// Killed when dropped.
pub struct Cluster {
    pub a: Alertmanager,
    pub b: Alertmanager,
}

impl Cluster {
    /// Starts the pair and waits until both report the cluster `ready` with two peers.
    pub async fn start(config: &str) -> Self {
        let binary = which_alertmanager();
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let (web, gossip) = (
                [super::free_port(), super::free_port()],
                [super::free_port(), super::free_port()],
            );
            let mut started = Vec::new();
            for me in 0..2 {
                let other = 1 - me;
                let dir = tempfile::tempdir().expect("temp dir");
                let config_path = dir.path().join("alertmanager.yml");
                std::fs::write(&config_path, config).expect("write config");
                let log = std::fs::File::create(dir.path().join("alertmanager.log")).expect("log file");
                let child = Command::new(&binary)
                    .arg(format!("--config.file={}", config_path.display()))
                    .arg(format!("--storage.path={}", dir.path().join("data").display()))
                    .arg(format!("--web.listen-address=127.0.0.1:{}", web[me]))
                    .arg(format!("--cluster.listen-address=127.0.0.1:{}", gossip[me]))
                    .arg(format!("--cluster.advertise-address=127.0.0.1:{}", gossip[me]))
                    .arg(format!("--cluster.peer=127.0.0.1:{}", gossip[other]))
                    .arg("--cluster.gossip-interval=50ms")
                    .arg("--cluster.pushpull-interval=1s")
                    .arg("--cluster.peer-timeout=1s")
                    .arg("--log.level=info")
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().expect("log file"))
                    .stderr(log)
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
                started.push(Alertmanager {
                    url: format!("http://127.0.0.1:{}", web[me]),
                    port: web[me],
                    child,
                    dir,
                });
            }
            let mut ready = true;
            for am in &mut started {
                ready &= am.wait_ready().await;
            }
            let b = started.pop().expect("two");
            let a = started.pop().expect("two");
            let cluster = Cluster { a, b };
            if ready && cluster.wait_clustered().await {
                return cluster;
            }
            last_log = format!("A:\n{}\nB:\n{}", cluster.a.log(), cluster.b.log());
        }
        panic!("the Alertmanager cluster did not form; the logs:\n{last_log}");
    }

    /// Replaces both members' config with `config` and reloads them (`POST /-/reload`), e.g. to
    /// point their webhook at a rootfix started after them.
    pub async fn reload(&self, config: &str) {
        for am in self.members() {
            std::fs::write(am.dir.path().join("alertmanager.yml"), config).expect("write config");
            let r = reqwest::Client::new()
                .post(format!("{}/-/reload", am.url))
                .send()
                .await
                .expect("reload Alertmanager");
            assert!(
                r.status().is_success(),
                "reload refused: {}",
                r.text().await.unwrap_or_default()
            );
        }
    }

    /// Both members, A first.
    pub fn members(&self) -> [&Alertmanager; 2] {
        [&self.a, &self.b]
    }

    /// Waits (20 s at most) until both see two peers and the gossip settled (`ready`).
    async fn wait_clustered(&self) -> bool {
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let mut ok = true;
            for am in self.members() {
                let status: Option<serde_json::Value> = match client.get(am.api("status")).send().await {
                    Ok(r) => r.json().await.ok(),
                    Err(_) => None,
                };
                ok &= status.is_some_and(|s| {
                    s["cluster"]["status"] == "ready"
                        && s["cluster"]["peers"].as_array().is_some_and(|p| p.len() == 2)
                });
            }
            if ok {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    }
}
