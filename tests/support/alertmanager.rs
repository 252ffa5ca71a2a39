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
