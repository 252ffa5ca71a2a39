//! Running the real `rootfix serve` binary (and other real servers) from tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `rootfix serve` process, killed when dropped.
pub struct Serve {
    pub child: Child,
    pub url: String,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Serve {
    /// Starts `rootfix serve --config <config>` and waits until it serves (`/readyz` reports the
    /// phase `serving`: Redis reached, fixes recovered, the event loop started).
    pub fn start(config: &Path, port: u16, log: &Path) -> Self {
        let serve = Self::start_unready(config, port, log);
        serve.wait_serving(Duration::from_secs(60));
        serve
    }

    /// Starts `rootfix serve --config <config>` and waits only for `/healthz` (the port).
    pub fn start_unready(config: &Path, port: u16, log: &Path) -> Self {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_rootfix"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("rootfix starts");
        let serve = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            config: config.to_path_buf(),
            log: log.to_path_buf(),
        };
        serve.wait_healthy(Duration::from_secs(30));
        serve
    }

    pub fn wait_healthy(&self, timeout: Duration) {
        let started = Instant::now();
        loop {
            if let Ok(200) = reqwest::blocking_get(&format!("{}/healthz", self.url)) {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "rootfix did not come up; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `/readyz` reports the phase `serving`.
    pub fn wait_serving(&self, timeout: Duration) {
        let started = Instant::now();
        loop {
            if let Ok(body) = reqwest::blocking_get_body(&format!("{}/readyz", self.url))
                && body.contains(r#""phase":"serving""#)
            {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "rootfix did not finish starting; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal blocking GET for readiness loops (status code only), without an async runtime.
/// A GET's status and JSON body: (0, null) when nothing answered within 10 s, null when the body
/// is not JSON.
pub async fn get_json(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = ::reqwest::Client::new().get(url).timeout(Duration::from_secs(10));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(serde_json::Value::Null))
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

pub mod reqwest {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// A GET of an `http://` URL sent on a new connection (closed after the answer), whose reads
    /// wait at most `read_timeout`.
    fn send_get(url: &str, read_timeout: Duration) -> std::io::Result<TcpStream> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| std::io::Error::other("http only"))?;
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let mut stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(read_timeout))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        Ok(stream)
    }

    /// The whole response (head and body) of a GET.
    pub fn blocking_get_body(url: &str) -> std::io::Result<String> {
        let mut stream = send_get(url, Duration::from_secs(5))?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    }

    pub fn blocking_get(url: &str) -> std::io::Result<u16> {
        let mut stream = send_get(url, Duration::from_secs(2))?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        let text = String::from_utf8_lossy(&head);
        text.get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("bad status line"))
    }
}

/// Writes a serve config into `dir` and returns its path.
pub fn write_config(
    dir: &Path,
    port: u16,
    redis_url: &str,
    prefix: &str,
    playbooks: &Path,
    actions: &Path,
    extra: &str,
) -> PathBuf {
    let text = format!(
        "listen: 127.0.0.1:{port}\nredis: {{url: '{redis_url}', key_prefix: '{prefix}'}}\nplaybooks: {}\nactions: {}\ntokens:\n  - {{name: alertmanager, role: ingest, token: {}}}\n  - {{name: viewer, role: viewer, token: {}}}\n  - {{name: admin, role: admin, token: {}}}\n{extra}",
        playbooks.display(),
        actions.display(),
        super::INGEST_TOKEN,
        super::VIEWER_TOKEN,
        super::ADMIN_TOKEN,
    );
    let path = dir.join("rootfix.yaml");
    std::fs::write(&path, text).expect("config written");
    path
}

/// Copies a folder tree (playbooks, actions) into `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readable") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A redis-server of the test's own, on a free port, stopped when dropped.
pub struct OwnRedis {
    pub child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = super::free_port();
        Self::start_on(port)
    }

    pub fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test-all.sh installs it)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
