//! Helpers shared by the integration tests: where the repository is, and the real components the
//! tests talk to.
#![allow(dead_code)]

use std::path::PathBuf;

/// A real Alertmanager for one test.
pub mod alertmanager;
/// A real Prometheus for one test.
pub mod prometheus;

/// The repository root (the integration tests are compiled as part of `orchestrator/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn repo_path(relative: &str) -> PathBuf {
    repo_root().join(relative)
}

/// The shipped playbooks and actions folders.
pub fn shipped_paths() -> Vec<PathBuf> {
    vec![repo_path("playbooks"), repo_path("actions")]
}

use std::sync::Arc;

use rootfix::catalog::{Catalog, Source, read_sources};
use rootfix::model::Playbook;

/// Builds one playbook from YAML, checked together with the shipped actions; panics with the
/// problems when it is invalid.
pub fn playbook(yaml: &str) -> Arc<Playbook> {
    let mut sources = read_sources(&[repo_path("actions")]).expect("shipped actions are readable");
    sources.push(Source {
        path: "test-playbook.yaml".into(),
        text: yaml.to_string(),
    });
    let catalog = Catalog::from_sources(&sources).unwrap_or_else(|problems| {
        panic!(
            "{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    catalog.playbooks[0].clone()
}

/// The alert of a captured Alertmanager payload in tests/fixtures/alertmanager.
pub fn fixture_alert(name: &str) -> Arc<rootfix::alert::Alert> {
    let body = std::fs::read(repo_path(&format!("tests/fixtures/alertmanager/{name}.json")))
        .expect("fixture exists");
    let payload = rootfix::alert::WebhookPayload::parse(&body).expect("fixture parses");
    Arc::new(payload.alerts[0].clone())
}

/// The Redis the tests use (scripts/test-all.sh starts it); tests fail, never skip, without it.
pub fn redis_url() -> String {
    std::env::var("ROOTFIX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_string())
}

/// A key prefix no other test run uses, so tests can share one Redis.
pub fn unique_prefix(test: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "test:{test}:{}:{nanos}:{}:",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn redis_store(test: &str) -> rootfix::state::redis::RedisStateStore {
    let url = redis_url();
    rootfix::state::redis::RedisStateStore::connect(&url, &unique_prefix(test))
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is required (scripts/test-all.sh starts it): {e}"))
}

/// Bearer tokens of every role, as configured in the test servers.
pub const INGEST_TOKEN: &str = "test-ingest-token";
pub const VIEWER_TOKEN: &str = "test-viewer-token-0001";
pub const APPROVER_TOKEN: &str = "test-approver-token-01";
pub const ADMIN_TOKEN: &str = "test-admin-token-00001";

pub fn test_tokens() -> Vec<rootfix::config::Token> {
    use rootfix::config::{Role, Token};
    [
        ("alertmanager", Role::Ingest, INGEST_TOKEN),
        ("viewer", Role::Viewer, VIEWER_TOKEN),
        ("approver", Role::Approver, APPROVER_TOKEN),
        ("admin", Role::Admin, ADMIN_TOKEN),
    ]
    .into_iter()
    .map(|(name, role, secret)| Token {
        name: name.into(),
        role,
        secret: secret.into(),
    })
    .collect()
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits (30 s at most) until `<url>/-/ready` answers 2xx, as Prometheus and Alertmanager do;
/// false at once when `child` exits first.
pub async fn wait_ready(child: &mut std::process::Child, url: &str) -> bool {
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(r) = client.get(format!("{url}/-/ready")).send().await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// Polls `check` every 50 ms until it returns Some, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the real server `name` with `args` and `env`, its stderr in `<dir>/<name>.log`.
pub fn start_logged(
    dir: &std::path::Path,
    name: &str,
    args: &[String],
    env: &std::collections::BTreeMap<String, String>,
) -> Killed {
    let file = std::path::Path::new(name)
        .file_name()
        .map_or_else(|| name.to_string(), |f| f.to_string_lossy().to_string());
    let log = std::fs::File::create(dir.join(format!("{file}.log"))).expect("log file");
    let child = std::process::Command::new(name)
        .args(args)
        .envs(env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("{name} is installed (scripts/test-all.sh installs it): {e}"));
    Killed(child)
}

/// Waits (60 s at most) until `url` answers 200.
pub async fn wait_http(url: &str) {
    eventually(std::time::Duration::from_secs(60), url, || async {
        reqwest::get(url)
            .await
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    })
    .await;
}

/// A real Prometheus and a real Alertmanager started for one test, in `dir`.
pub struct AlertingPipeline {
    /// `http://127.0.0.1:<port>` of Prometheus.
    pub prometheus: String,
    pub alertmanager: String,
    dir: std::path::PathBuf,
    _processes: [Killed; 2],
}

impl AlertingPipeline {
    /// Alertmanager posting each group (by alertname and service, 1 s group wait, resolved
    /// notifications on) to `rootfix`'s webhook with the ingest token; Prometheus evaluating
    /// `rules` every second (`dir/rules.yml`) on `prom_port` and alerting to it. Both answer
    /// ready on return.
    pub async fn start(dir: &std::path::Path, rootfix: &str, rules: &str, prom_port: u16) -> Self {
        let am_port = free_port();
        std::fs::write(
            dir.join("am.yml"),
            format!(
                "route:\n  receiver: rootfix\n  group_by: [alertname, service]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\nreceivers:\n- name: rootfix\n  webhook_configs:\n  - url: {rootfix}/api/v1/alerts/alertmanager\n    send_resolved: true\n    http_config:\n      authorization: {{credentials: {INGEST_TOKEN}}}\n"
            ),
        )
        .expect("am.yml");
        let am = start_logged(
            dir,
            "prometheus-alertmanager",
            &[
                format!("--config.file={}", dir.join("am.yml").display()),
                format!("--storage.path={}", dir.join("am").display()),
                format!("--web.listen-address=127.0.0.1:{am_port}"),
                "--cluster.listen-address=".into(),
            ],
            &Default::default(),
        );
        let alertmanager = format!("http://127.0.0.1:{am_port}");
        wait_http(&format!("{alertmanager}/-/ready")).await;
        std::fs::write(dir.join("rules.yml"), rules).expect("rules.yml");
        std::fs::write(
            dir.join("prom.yml"),
            format!(
                "global: {{scrape_interval: 5s, evaluation_interval: 1s}}\nrule_files: [rules.yml]\nalerting:\n  alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]}}]\n"
            ),
        )
        .expect("prom.yml");
        let prom = start_logged(
            dir,
            "prometheus",
            &[
                format!("--config.file={}", dir.join("prom.yml").display()),
                format!("--storage.tsdb.path={}", dir.join("prom").display()),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
                "--web.enable-lifecycle".into(),
                "--rules.alert.resend-delay=1s".into(),
            ],
            &Default::default(),
        );
        let prometheus = format!("http://127.0.0.1:{prom_port}");
        wait_http(&format!("{prometheus}/-/ready")).await;
        Self {
            prometheus,
            alertmanager,
            dir: dir.to_path_buf(),
            _processes: [am, prom],
        }
    }

    /// Replaces the rules and has Prometheus reload them.
    pub async fn set_rules(&self, rules: &str) {
        std::fs::write(self.dir.join("rules.yml"), rules).expect("rules.yml");
        let reload = reqwest::Client::new()
            .post(format!("{}/-/reload", self.prometheus))
            .send()
            .await
            .expect("Prometheus answers");
        assert_eq!(reload.status(), 200, "Prometheus reloaded its rules");
    }
}

/// What one run of the real `rootfix` binary printed.
pub struct CliRun {
    pub code: i32,
    pub out: String,
    pub err: String,
}

impl std::fmt::Display for CliRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.out, self.err
        )
    }
}

/// Runs the real binary with `args` and only the `ROOTFIX_URL` / `ROOTFIX_TOKEN` of `env` (never
/// the caller's), off the runtime's threads.
pub async fn run_rootfix(args: &[&str], env: &[(&str, &str)]) -> CliRun {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rootfix"))
            .args(&args)
            .env_remove("ROOTFIX_TOKEN")
            .env_remove("ROOTFIX_URL")
            .envs(env)
            .output()
            .expect("rootfix runs");
        CliRun {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into(),
            err: String::from_utf8_lossy(&out.stderr).into(),
        }
    })
    .await
    .expect("joined")
}

/// An admin's request to a running serve's API: the JSON answer; panics unless it is 2xx.
pub async fn admin_api(method: reqwest::Method, url: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("serve answers");
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

/// Posts the captured `order-service-timeout` firing to serve at `url` as Alertmanager would,
/// starting now, for `service` with `fingerprint`; asserts the 200.
pub async fn post_firing_alert(url: &str, service: &str, fingerprint: &str) {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let payload = std::fs::read_to_string(repo_path(
        "tests/fixtures/alertmanager/order-service-timeout.firing.json",
    ))
    .expect("the fixture")
    .replace("2026-11-24T16:05:00.345Z", &now)
    .replace("\"service\":\"order\"", &format!("\"service\":\"{service}\""))
    .replace("cf12c1db58df9346", fingerprint);
    let r = reqwest::Client::new()
        .post(format!("{url}/api/v1/alerts/alertmanager"))
        .bearer_auth(INGEST_TOKEN)
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .expect("serve answers");
    assert_eq!(r.status().as_u16(), 200);
}

/// The incident's web page as a viewer sees it (the session cookie holds the token); empty when
/// serve does not answer.
pub async fn ui_page(url: &str, id: &str) -> String {
    let resp = reqwest::Client::new()
        .get(format!("{url}/ui/incidents/{id}"))
        .header("Cookie", format!("rootfix_session={VIEWER_TOKEN}"))
        .send()
        .await;
    match resp {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}
