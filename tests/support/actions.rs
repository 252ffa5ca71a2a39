//! Runs the phases of a shipped action the way the Docker runner does, with the docker CLI: the
//! action's image (built offline by `actions/build.sh`, never pulled), its params validated by
//! `rootfix::runner::validate_params` and handed over by `rootfix::runner::param_env`, and exactly
//! the runner's flags:
//!
//! ```text
//! docker run --rm --read-only --tmpfs /tmp --security-opt no-new-privileges
//!   --network <spec.network> [--pid host] [--memory B] [--cpus C]
//!   [-v host:container[:ro] per spec.mounts] -v <state dir>:/rootfix/state
//!   -e ROOTFIX_STATE_DIR=/rootfix/state -e ROOTFIX_INCIDENT=.. -e ROOTFIX_ACTION=..
//!   -e ROOTFIX_PHASE=.. -e ROOTFIX_PARAM_<NAME>=.. --label rootfix.incident=.. <image> <argv>
//! ```
//!
//! The one difference: a test maps every mount's host side to a temporary path of its own
//! ([`Fix::mount`]), so no test ever writes to the machine's real `/etc` or `/run`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rootfix::catalog::Catalog;
use rootfix::model::action::{Action, PhaseName, PhaseStep};
use rootfix::runner::{param_env, validate_params};

/// Where phase containers keep the per-fix state dir.
pub const STATE_IN_CONTAINER: &str = "/rootfix/state";

/// Makes sure the action images are built: runs `actions/build.sh` once per test process (a quick
/// no-op when the images are current), unless `ROOTFIX_ACTIONS_BUILT=1` says
/// `scripts/test-all.sh` built them already.
pub fn ensure_images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var("ROOTFIX_ACTIONS_BUILT").as_deref() != Ok("1") {
            run_build_sh(&[]);
        }
    });
}

/// Runs `actions/build.sh ARGS` (serialized between the processes nextest starts by a lock file)
/// and returns its stderr; panics with its output when it fails.
pub fn run_build_sh(args: &[&str]) -> String {
    let lock = std::env::temp_dir().join("rootfix-actions-build.lock");
    let out = Command::new("flock")
        .arg(&lock)
        .arg("bash")
        .arg(crate::support::repo_path("actions/build.sh"))
        .args(args)
        .output()
        .expect("flock and bash run actions/build.sh");
    assert!(
        out.status.success(),
        "actions/build.sh {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The shipped catalog's action `name`.
pub fn action(name: &str) -> Arc<Action> {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    let catalog = CATALOG.get_or_init(|| {
        Catalog::load(&crate::support::shipped_paths()).unwrap_or_else(|problems| {
            panic!(
                "shipped catalog invalid:\n{}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
    });
    catalog
        .actions
        .get(name)
        .unwrap_or_else(|| panic!("no action {name}"))
        .clone()
}

/// How a phase container ended.
#[derive(Debug, Clone)]
pub struct PhaseRun {
    pub phase: &'static str,
    /// The container's exit code (-1 when it was killed at its timeout).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl PhaseRun {
    /// Panics with the output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "{} exited {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.phase, self.code, self.stdout, self.stderr
        );
        self
    }

    /// The one JSON object a diagnostic prints on stdout.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "{} printed no single JSON object ({e}):\nstdout:\n{}\nstderr:\n{}",
                self.phase, self.stdout, self.stderr
            )
        })
    }
}

/// One fix (or diagnostic run) of an action: its params, its state dir shared by every phase,
/// and where its mounts point on this machine.
pub struct Fix {
    pub action: Arc<Action>,
    pub incident: String,
    pub params: BTreeMap<String, String>,
    state: tempfile::TempDir,
    mounts: BTreeMap<String, PathBuf>,
    network: Option<String>,
}

impl Fix {
    /// A fix of `action` with `params`, which must pass the action's patterns.
    pub fn new(action_name: &str, params: &[(&str, &str)]) -> Self {
        ensure_images();
        let action = action(action_name);
        let given: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let params = validate_params(&action, &given)
            .unwrap_or_else(|e| panic!("params of {action_name} refused: {e}"));
        let state = tempfile::Builder::new()
            .prefix("rootfix-state-")
            .tempdir()
            .expect("state dir");
        Self {
            action,
            incident: format!("test-{}-{}", std::process::id(), unique()),
            params,
            state,
            mounts: BTreeMap::new(),
            network: None,
        }
    }

    /// Points the mount whose container side is `container` at `host` (panics if the action
    /// declares no such mount).
    pub fn mount(mut self, container: &str, host: &Path) -> Self {
        assert!(
            self.action.mounts.iter().any(|m| m.container == container),
            "{} declares no mount at {container}",
            self.action.name
        );
        self.mounts.insert(container.to_string(), host.to_path_buf());
        self
    }

    /// Runs the containers in `network` instead of the action's own. Only for `kubernetes-job`
    /// actions, whose pod would have the cluster's network: here `host` stands in for it.
    pub fn network(mut self, network: &str) -> Self {
        assert_eq!(
            self.action.runner,
            rootfix::model::action::RunnerKind::KubernetesJob,
            "only a kubernetes-job action's network is replaced in tests"
        );
        self.network = Some(network.to_string());
        self
    }

    /// The per-fix state dir on this machine.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Runs `phase` with the validated params.
    pub async fn run(&self, phase: PhaseName) -> PhaseRun {
        let env = param_env(&self.params, &self.incident, &self.action.name, phase.as_str());
        self.run_env(phase, env).await
    }

    /// Runs `phase` with params that did NOT pass through `validate_params` (the scripts' own
    /// defences): `raw` replaces or adds `ROOTFIX_PARAM_<NAME>` values.
    pub async fn run_unchecked(&self, phase: PhaseName, raw: &[(&str, &str)]) -> PhaseRun {
        let mut params = self.params.clone();
        for (k, v) in raw {
            params.insert(k.to_string(), v.to_string());
        }
        let env = param_env(&params, &self.incident, &self.action.name, phase.as_str());
        self.run_env(phase, env).await
    }

    /// The `docker run` argv for `phase` with environment `env`, as the runner builds it.
    pub fn docker_args(&self, phase: PhaseName, env: &[(String, String)], name: &str) -> Vec<String> {
        let a = &self.action;
        let mut args: Vec<String> = ["run", "--rm", "--read-only", "--tmpfs", "/tmp"]
            .into_iter()
            .map(String::from)
            .collect();
        args.extend(["--security-opt".into(), "no-new-privileges".into()]);
        args.extend([
            "--network".into(),
            self.network.clone().unwrap_or_else(|| a.network.clone()),
        ]);
        if a.host_pid {
            args.extend(["--pid".into(), "host".into()]);
        }
        if let Some(bytes) = a.memory_bytes {
            args.extend(["--memory".into(), bytes.to_string()]);
        }
        if let Some(cpus) = a.cpus {
            args.extend(["--cpus".into(), cpus.to_string()]);
        }
        for m in &a.mounts {
            let host = self.mounts.get(&m.container).unwrap_or_else(|| {
                panic!(
                    "test must map the mount {} -> {} to a temporary path (Fix::mount)",
                    m.host, m.container
                )
            });
            let ro = if m.read_only { ":ro" } else { "" };
            args.extend(["-v".into(), format!("{}:{}{ro}", host.display(), m.container)]);
        }
        args.extend([
            "-v".into(),
            format!("{}:{STATE_IN_CONTAINER}", self.state.path().display()),
            "-e".into(),
            format!("ROOTFIX_STATE_DIR={STATE_IN_CONTAINER}"),
        ]);
        for (k, v) in env {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        args.extend([
            "--label".into(),
            format!("rootfix.incident={}", self.incident),
            "--label".into(),
            "rootfix.test=1".into(),
            "--name".into(),
            name.to_string(),
        ]);
        args.push(a.image.clone().expect("a container action has an image"));
        let phase_spec = a
            .phases
            .get(phase)
            .unwrap_or_else(|| panic!("{} has no {} phase", a.name, phase.as_str()));
        match &phase_spec.step {
            PhaseStep::Run(argv) => args.extend(argv.iter().cloned()),
            PhaseStep::Operation(op) => panic!("{} is a native operation ({op:?})", phase.as_str()),
        }
        args
    }

    async fn run_env(&self, phase: PhaseName, env: Vec<(String, String)>) -> PhaseRun {
        let name = format!("rootfix-test-{}-{}", std::process::id(), unique());
        let _guard = ContainerGuard(name.clone());
        let args = self.docker_args(phase, &env, &name);
        let timeout = self
            .action
            .phases
            .get(phase)
            .map_or(Duration::from_secs(120), |p| p.timeout)
            + Duration::from_secs(20);
        let child = tokio::process::Command::new("docker")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("docker CLI runs");
        let phase_name = phase.as_str();
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => PhaseRun {
                phase: phase_name,
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Ok(Err(e)) => panic!("docker run failed: {e}"),
            Err(_) => PhaseRun {
                phase: phase_name,
                code: -1,
                stdout: String::new(),
                stderr: format!("killed after {timeout:?}"),
            },
        }
    }
}

/// Removes the named container when dropped (a phase that timed out, a panicking test).
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    nanos * 1000 + COUNTER.fetch_add(1, Ordering::Relaxed) % 1000
}

/// `count` GETs of `url` from the test itself; the status of each (0 when no answer came).
pub async fn measure(url: &str, count: usize) -> Vec<u16> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(match client.get(url).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        });
    }
    out
}

/// A param value that does something if any shell ever evaluates it: each form creates a file
/// in the state dir (`pwned-1`, `-2`, `-3`).
pub fn hostile(state: &str) -> String {
    format!("x; touch {state}/pwned-1 $(touch {state}/pwned-2) `touch {state}/pwned-3`; rm -rf /")
}

/// Panics when a hostile param value was executed (a `pwned-*` file exists in `state`).
#[track_caller]
pub fn assert_not_executed(state: &Path, what: &str) {
    for entry in std::fs::read_dir(state).expect("state dir readable") {
        let name = entry.expect("entry").file_name();
        assert!(
            !name.to_string_lossy().starts_with("pwned"),
            "{what}: a param value was executed ({name:?} exists)"
        );
    }
}
