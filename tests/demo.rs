//! The main job's demo, end to end with every real part, exactly as `scripts/run.sh` wires it:
//! `scripts/demo.sh up` starts nginx (two payment backends, two Go module mirrors over HTTPS),
//! mtail, bounded traffic, a CI runner and the leaking order-api container on the real Docker
//! engine; `scripts/demo.sh config` writes the configs of a real Prometheus, a real Alertmanager
//! and the real `rootfix serve` binary (on the shared test Redis).
//!
//! For each demo fault (nginx: a payment backend hangs; goproxy: the runners' mirror serves a
//! rogue certificate; memory: the container leaks): fault → Prometheus fires → Alertmanager posts
//! → rootfix diagnoses over the real evidence → approval through the API → the fix runs on the
//! engine and verifies → Alertmanager's own `resolved` closes the incident; then
//! `scripts/demo.sh auto` promotes the three fix types in staging, and the same faults are fixed
//! with no human and get their cooldown silence.
//!
//! The demo's services listen on fixed ports (nginx's front on 127.0.0.1:80, the playbook's
//! `front_url`), so this test needs them free: it fails with a clear message when
//! `scripts/run.sh` is running on the same machine.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const DEMO_PORTS: [u16; 7] = [80, 18091, 18092, 18443, 18444, 3903, 18085];
const CONTAINER: &str = "rootfix-demo-order-api-test";

/// The demo environment of one test run; `scripts/demo.sh down` when dropped.
struct Demo {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Demo {
    fn run_dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(repo_path("scripts/demo.sh"))
            .args(args)
            .envs(&self.env)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("bash runs scripts/demo.sh");
        assert!(
            out.status.success(),
            "scripts/demo.sh {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn config(&self, which: &str, to: &Path) {
        std::fs::write(to, self.run(&["config", which]).stdout).unwrap();
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.command(&["down"]).output();
    }
}

struct Api {
    url: String,
    client: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str) -> Option<Value> {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(VIEWER_TOKEN)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// The newest incident created at or after `since` whose alert labels hold `labels`.
    async fn incident(&self, labels: &[(&str, &str)], since: &str) -> Option<Value> {
        let list = self.get("/api/v1/incidents?limit=100").await?;
        for item in list["items"].as_array()? {
            if item["created_at"].as_str()? < since {
                continue;
            }
            let full = self
                .get(&format!("/api/v1/incidents/{}", item["id"].as_str()?))
                .await?;
            if labels
                .iter()
                .all(|(k, v)| full["alert"]["labels"][k].as_str() == Some(v))
            {
                return Some(full);
            }
        }
        None
    }

    /// Polls until the fault's incident (created at or after `since`) is in `state`; on timeout
    /// panics with what the incident last said.
    async fn wait_state(&self, fault: &Fault, since: &str, state: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(i) = self.incident(fault.labels, since).await {
                if i["state"] == state {
                    return i;
                }
                last = Some(i);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let seen = last.map(|i| {
            format!(
                "state {}, fix {}, timeline {:#?}",
                i["state"],
                i["fix"],
                timeline_kinds(&i)
            )
        });
        panic!(
            "the {} fault's incident is not {state} after {timeout:?}; {}",
            fault.name,
            seen.unwrap_or_else(|| "no incident".into())
        );
    }

    async fn approve(&self, id: &str) -> Value {
        let r = self
            .client
            .post(format!("{}/api/v1/approvals/{id}/approve", self.url))
            .bearer_auth(APPROVER_TOKEN)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "approve {id}");
        r.json().await.unwrap()
    }
}

/// Faults injected together: the two order faults share a service, so a walk during both would
/// find both causes (the tree acts on the first); they run one after the other.
const GROUPS: [&[Fault]; 2] = [&[FAULTS[0], FAULTS[1]], &[FAULTS[2]]];

#[derive(Clone, Copy)]
struct Fault {
    name: &'static str,
    labels: &'static [(&'static str, &'static str)],
}

const FAULTS: [Fault; 3] = [
    Fault {
        name: "nginx",
        labels: &[
            ("alertname", "OrderServiceTimeout"),
            ("symptom", "payment-calls-failing"),
        ],
    },
    Fault {
        name: "goproxy",
        labels: &[("alertname", "GoModuleProxyFailing")],
    },
    Fault {
        name: "memory",
        labels: &[
            ("alertname", "OrderServiceTimeout"),
            ("symptom", "memory-pressure"),
        ],
    },
];

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn timeline_kinds(incident: &Value) -> Vec<String> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}: {}",
                t["kind"].as_str().unwrap(),
                t["message"].as_str().unwrap()
            )
        })
        .collect()
}

fn container_started_at() -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{ .State.StartedAt }}", CONTAINER])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The incident closed because Alertmanager reported the alert resolved: either after the fix
/// had verified (`fixed`, then `resolved`), or while it was still verifying (the fix's end then
/// closes it).
fn assert_closed_by_alertmanager(fault: &str, timeline: &[String]) {
    // The last closing word (an `auto` fix's cooldown silence is noted after it).
    let last = timeline
        .iter()
        .rev()
        .find(|t| t.starts_with("resolved:"))
        .map(String::as_str)
        .unwrap_or_default();
    let after_fixed = timeline
        .iter()
        .any(|t| t.starts_with("fixed: the fix was verified"))
        && last == "resolved: the alert resolved after the verified fix: incident closed";
    let while_fixing = timeline
        .iter()
        .any(|t| t.starts_with("resolved: the alert resolved; the running fix finishes and verifies"))
        && last == "resolved: the alert had resolved and the fix verified: incident closed";
    assert!(after_fixed || while_fixing, "{fault}: {timeline:#?}");
}

/// The fix of one incident, as the demo's target shows it on the host.
fn assert_target_fixed(fault: &str, run: &Path, started_before: &str) {
    match fault {
        "nginx" => {
            let upstream =
                std::fs::read_to_string(run.join("demo/nginx/conf.d/payment-upstream.conf")).unwrap();
            assert!(
                upstream.contains("server 127.0.0.1:18092 max_fails=0 down;"),
                "payment-b is marked down:\n{upstream}"
            );
            assert!(
                upstream.contains("server 127.0.0.1:18091 max_fails=0;"),
                "{upstream}"
            );
        }
        "goproxy" => {
            let env = std::fs::read_to_string(run.join("demo/ci-runners/ci-runner.env")).unwrap();
            assert!(env.contains("GOPROXY=https://127.0.0.1:18444,direct"), "{env}");
            assert!(
                env.contains("GOFLAGS=-mod=mod"),
                "the rest of the file stays: {env}"
            );
        }
        "memory" => {
            assert_ne!(
                container_started_at(),
                started_before,
                "the container was restarted"
            );
        }
        other => unreachable!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_demo_fault_is_fixed_after_an_approval_and_then_with_no_human() {
    let taken: Vec<u16> = DEMO_PORTS
        .iter()
        .copied()
        .filter(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_err())
        .collect();
    assert!(
        taken.is_empty(),
        "the demo's ports {taken:?} are taken on 127.0.0.1: stop the main job (scripts/demo.sh down) before running this test"
    );

    let dir = tempfile::tempdir().unwrap();
    // nginx's workers (user nobody) serve the mirrors' files from the run folder.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (rootfix_port, prom_port, am_port) = (free_port(), free_port(), free_port());
    let rootfix_url = format!("http://127.0.0.1:{rootfix_port}");
    let env: BTreeMap<String, String> = [
        ("ROOTFIX_RUN_DIR", dir.path().display().to_string()),
        ("ROOTFIX_LISTEN", format!("127.0.0.1:{rootfix_port}")),
        ("ROOTFIX_REDIS_URL", redis_url()),
        ("ROOTFIX_KEY_PREFIX", unique_prefix("demo")),
        ("PROMETHEUS_URL", format!("http://127.0.0.1:{prom_port}")),
        ("ALERTMANAGER_URL", format!("http://127.0.0.1:{am_port}")),
        ("DEMO_ORDER_CONTAINER", CONTAINER.to_string()),
        ("ROOTFIX_BIN", env!("CARGO_BIN_EXE_rootfix").to_string()),
        ("ROOTFIX_INGEST_TOKEN", INGEST_TOKEN.to_string()),
        ("ROOTFIX_VIEWER_TOKEN", VIEWER_TOKEN.to_string()),
        ("ROOTFIX_APPROVER_TOKEN", APPROVER_TOKEN.to_string()),
        ("ROOTFIX_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
        ("RUST_LOG", "info".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let demo = Demo { dir, env };
    let run: PathBuf = demo.run_dir().to_path_buf();
    demo.run(&["up"]);

    std::fs::create_dir_all(run.join("prometheus")).unwrap();
    demo.config("prometheus", &run.join("prometheus/prometheus.yml"));
    std::fs::copy(
        repo_path("deploy/demo/rules.yml"),
        run.join("prometheus/rules.yml"),
    )
    .unwrap();
    std::fs::copy(
        repo_path("deploy/prometheus/rootfix-rules.yml"),
        run.join("prometheus/rootfix-rules.yml"),
    )
    .unwrap();
    demo.config("alertmanager", &run.join("alertmanager.yml"));
    demo.config("rootfix", &run.join("rootfix.yaml"));

    let _am = start_logged(
        &run,
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", run.join("alertmanager.yml").display()),
            format!("--storage.path={}", run.join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
        ],
        &BTreeMap::new(),
    );
    let _prom = start_logged(
        &run,
        "prometheus",
        &[
            format!(
                "--config.file={}",
                run.join("prometheus/prometheus.yml").display()
            ),
            format!("--storage.tsdb.path={}", run.join("prometheus/data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
            "--rules.alert.resend-delay=1s".into(),
        ],
        &BTreeMap::new(),
    );
    let serve_env: BTreeMap<String, String> = demo
        .env
        .iter()
        .filter(|(k, _)| k.ends_with("_TOKEN") || k.as_str() == "RUST_LOG")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let _serve = start_logged(
        &run,
        env!("CARGO_BIN_EXE_rootfix"),
        &[
            "serve".into(),
            "--config".into(),
            run.join("rootfix.yaml").display().to_string(),
        ],
        &serve_env,
    );
    wait_http(&format!("http://127.0.0.1:{am_port}/-/ready")).await;
    wait_http(&format!("http://127.0.0.1:{prom_port}/-/ready")).await;
    wait_http(&format!("{rootfix_url}/readyz")).await;
    let api = Api {
        url: rootfix_url.clone(),
        client: reqwest::Client::new(),
    };

    // ── manual: each fault waits for an approval, then the fix runs and Alertmanager resolves ──
    let container_before = container_started_at();
    let mut manual_times = Vec::new();
    for group in GROUPS {
        let t0 = now_rfc3339();
        let injected = Instant::now();
        for fault in group {
            demo.run(&["fault", fault.name, "--no-wait"]);
        }
        for fault in group {
            let waiting = api
                .wait_state(fault, &t0, "awaiting-approval", Duration::from_secs(120))
                .await;
            let approval = waiting["fix"]["approval"].as_str().unwrap().to_string();
            let answer = api.approve(&approval).await;
            assert_eq!(answer["fix"]["kind"], "started", "{}: {answer}", fault.name);
        }
        for fault in group {
            let done = api
                .wait_state(fault, &t0, "resolved", Duration::from_secs(240))
                .await;
            manual_times.push((fault.name, injected.elapsed()));
            let timeline = timeline_kinds(&done);
            assert_eq!(
                done["fix"]["outcome"]["kind"], "succeeded",
                "{}: {timeline:#?}",
                fault.name
            );
            assert_eq!(done["fix"]["stage"], "manual");
            assert_closed_by_alertmanager(fault.name, &timeline);
            assert_target_fixed(fault.name, &run, &container_before);
        }
    }
    eprintln!(
        "manual (fault → approval → fix → resolved; nginx and goproxy at once, then memory): {manual_times:?}"
    );

    // ── auto: the demo promotes the three fix types in staging; nobody approves anything ──
    let promoted = demo.run(&["auto"]);
    let text = String::from_utf8_lossy(&promoted.stderr).to_string();
    for action in ["nginx-upstream-failover", "go-proxy-switch", "restart-container"] {
        assert!(
            text.contains(&format!("promoted {action} in scope staging to auto")),
            "{text}"
        );
    }
    let t1 = now_rfc3339();
    let container_before = container_started_at();
    let mut auto_times = Vec::new();
    for group in GROUPS {
        let followers: Vec<(&str, std::thread::JoinHandle<(Output, Duration)>)> = group
            .iter()
            .map(|fault| {
                let mut cmd = demo.command(&["fault", fault.name]);
                let started = Instant::now();
                (
                    fault.name,
                    std::thread::spawn(move || (cmd.output().unwrap(), started.elapsed())),
                )
            })
            .collect();
        for (name, follower) in followers {
            let (out, took) = follower.join().unwrap();
            let story = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(out.status.success(), "{name}: {story}");
            assert!(
                story.contains(&format!("{name} fault: injection → resolved in")),
                "{story}"
            );
            assert!(!story.contains("waiting for your approval"), "{story}");
            auto_times.push((name, took));
        }
    }
    eprintln!(
        "auto (fault → fix → resolved, no human; nginx and goproxy at once, then memory): {auto_times:?}"
    );
    for fault in &FAULTS {
        let done = api.incident(fault.labels, &t1).await.unwrap();
        let timeline = timeline_kinds(&done);
        assert_eq!(done["state"], "resolved", "{}: {timeline:#?}", fault.name);
        assert_eq!(done["fix"]["stage"], "auto", "{timeline:#?}");
        assert!(
            done["fix"]["approval"].is_null(),
            "no approval at auto: {timeline:#?}"
        );
        assert_eq!(done["fix"]["outcome"]["kind"], "succeeded", "{timeline:#?}");
        assert_closed_by_alertmanager(fault.name, &timeline);
        assert_target_fixed(fault.name, &run, &container_before);
        let silence_id = eventually(Duration::from_secs(30), "the cooldown silence", || async {
            api.incident(fault.labels, &t1)
                .await
                .and_then(|i| i["fix"]["silence"].as_str().map(str::to_string))
        })
        .await;
        let silence: Value = reqwest::get(format!("http://127.0.0.1:{am_port}/api/v2/silence/{silence_id}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(silence["status"]["state"], "active", "{silence}");
        assert_eq!(silence["createdBy"], "rootfix");
    }

    // ── the seed's table, measured from these fixes: `rootfix stages list`, and /metrics ──
    let listed = Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .args(["stages", "list"])
        .env("ROOTFIX_URL", &api.url)
        .env("ROOTFIX_TOKEN", VIEWER_TOKEN)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    eprintln!("rootfix stages list after the demo:\n{table}");
    let stages = api.get("/api/v1/stages").await.unwrap();
    for action in ["nginx-upstream-failover", "go-proxy-switch", "restart-container"] {
        let row = stages["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == action && r["scope"] == "staging")
            .unwrap_or_else(|| panic!("{action}: {stages}"));
        let m = &row["measured"];
        assert_eq!(
            m["recoveries"], 2,
            "{action}: one manual and one auto fix resolved: {row}"
        );
        let mean = m["mean_recovery_seconds"].as_f64().unwrap();
        let p90 = m["p90_recovery_seconds"].as_f64().unwrap();
        assert!(mean > 0.0 && p90 >= mean - 1e-9, "{action}: {m}");
        assert_eq!(row["gate"]["samples"], 2, "{action}: {row}");
        assert!(table.contains(action), "{table}");
    }
    let metrics = reqwest::get(format!("{}/metrics", api.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "rootfix_fix_recovery_seconds{action=\"nginx-upstream-failover\",scope=\"staging\",stat=\"p90\"}"
        ),
        "{metrics}"
    );
}
