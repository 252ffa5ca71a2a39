//! Which runners can run on this install, and why not when one cannot.
//!
//! [`RunnerAvailability`] answers [`RunnerAvailability::unavailable`] per [`RunnerKind`]: `None`
//! when the kind can run, or the reason it cannot ("kubernetes is disabled in the config
//! (kubernetes.enabled: false)", "the Docker engine at unix:///var/run/docker.sock does not
//! answer: …"). It is decided at `serve` start (Docker: a ping through bollard; Kubernetes:
//! enabled and a client could be built) and Docker is re-checked periodically
//! ([`RunnerAvailability::run`]), so an engine that comes back is noticed. Autonomy asks it
//! before offering a fix (the `runner` gate), `/readyz` and `rootfix validate --config` list the
//! actions that cannot run.
//!
//! [`ReconnectingDocker`] is the Docker runner `serve` uses: it connects to the engine when a
//! phase needs it, so an engine that was down at start is used once it answers.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tracing::{info, warn};

use super::docker::DockerRunner;
use super::{PhaseOutcome, PhaseRequest, Runner, RunnerError};
use crate::model::action::{Action, RunnerKind};

/// Where bollard's local defaults look for the engine without `DOCKER_HOST`.
const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// How long a ping of the Docker engine may take.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the Kubernetes runners cannot run when `kubernetes.enabled` is false.
pub const KUBERNETES_DISABLED: &str = "kubernetes is disabled in the config (kubernetes.enabled: false)";

/// The runner kind's name as action files write it.
pub fn kind_name(kind: RunnerKind) -> &'static str {
    match kind {
        RunnerKind::Docker => "docker",
        RunnerKind::Kubernetes => "kubernetes",
        RunnerKind::KubernetesJob => "kubernetes-job",
    }
}

/// One action that cannot run here, with why (`/readyz`, `validate --config`, serve's start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CannotRun {
    pub action: String,
    pub runner: &'static str,
    pub why: String,
}

/// Where the Docker engine is, and how to ask it whether it answers.
#[derive(Debug, Clone)]
pub struct DockerEndpoint {
    /// As shown in reasons: `unix:///var/run/docker.sock`.
    pub address: String,
}

impl DockerEndpoint {
    /// The engine the Docker runner uses: `DOCKER_HOST` when it is a `unix://` address, else
    /// bollard's default socket (what [`DockerRunner::connect`] connects to).
    pub fn local() -> Self {
        let address = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| h.starts_with("unix://"))
            .unwrap_or_else(|| DEFAULT_SOCKET.to_string());
        Self { address }
    }

    /// The engine at a Unix socket path.
    pub fn unix(path: &std::path::Path) -> Self {
        Self {
            address: format!("unix://{}", path.display()),
        }
    }

    /// `None` when the engine answers a ping, else why not.
    pub async fn check(&self) -> Option<String> {
        let answer = match bollard::Docker::connect_with_unix(&self.address, 10, bollard::API_DEFAULT_VERSION)
        {
            Err(e) => Err(e.to_string()),
            Ok(docker) => match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
                Err(_) => Err(format!("no answer within {PING_TIMEOUT:?}")),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok(_)) => Ok(()),
            },
        };
        answer
            .err()
            .map(|e| format!("the Docker engine at {} does not answer: {e}", self.address))
    }
}

/// Whether each runner kind can run here. Cheap to ask; Docker's answer is refreshed by
/// [`Self::recheck`].
#[derive(Debug)]
pub struct RunnerAvailability {
    /// Why each kind cannot run (absent: it can).
    why: RwLock<BTreeMap<&'static str, String>>,
    /// Re-checked periodically when set.
    docker: Option<DockerEndpoint>,
}

impl RunnerAvailability {
    /// Every runner can run (nothing is checked).
    pub fn all() -> Self {
        Self::fixed(None, None)
    }

    /// Fixed answers: `docker` and `kubernetes` (both Kubernetes kinds) say why they cannot run.
    pub fn fixed(docker: Option<String>, kubernetes: Option<String>) -> Self {
        let mut why = BTreeMap::new();
        if let Some(d) = docker {
            why.insert(kind_name(RunnerKind::Docker), d);
        }
        if let Some(k) = kubernetes {
            why.insert(kind_name(RunnerKind::Kubernetes), k.clone());
            why.insert(kind_name(RunnerKind::KubernetesJob), k);
        }
        Self {
            why: RwLock::new(why),
            docker: None,
        }
    }

    /// Pings the Docker engine at `docker` now (and at every [`Self::recheck`]); `kubernetes`
    /// is why the Kubernetes runners cannot run, if they cannot.
    pub async fn checked(docker: DockerEndpoint, kubernetes: Option<String>) -> Self {
        let mut this = Self::fixed(None, kubernetes);
        this.docker = Some(docker);
        this.recheck().await;
        this
    }

    /// What `serve` finds for a config: the local Docker engine, and Kubernetes when enabled and
    /// a client can be built (`kube::Client::try_default`).
    pub async fn for_config(config: &crate::config::ServeConfig) -> Self {
        let kubernetes = if config.kubernetes.enabled {
            kube::Client::try_default()
                .await
                .err()
                .map(|e| format!("no Kubernetes API client could be built: {e}"))
        } else {
            Some(KUBERNETES_DISABLED.to_string())
        };
        Self::checked(DockerEndpoint::local(), kubernetes).await
    }

    /// `None` when actions of `kind` can run here, else why not.
    pub fn unavailable(&self, kind: RunnerKind) -> Option<String> {
        self.why.read().ok().and_then(|w| w.get(kind_name(kind)).cloned())
    }

    /// Sets why `kind` cannot run (`None`: it can). Returns whether the answer changed.
    pub fn set(&self, kind: RunnerKind, why: Option<String>) -> bool {
        let Ok(mut map) = self.why.write() else {
            return false;
        };
        let name = kind_name(kind);
        let changed = map.get(name) != why.as_ref();
        match why {
            Some(w) => map.insert(name, w),
            None => map.remove(name),
        };
        changed
    }

    /// Asks the Docker engine again (when this availability pings one) and logs a change.
    pub async fn recheck(&self) {
        let Some(endpoint) = &self.docker else {
            return;
        };
        let why = endpoint.check().await;
        if self.set(RunnerKind::Docker, why.clone()) {
            match why {
                Some(why) => warn!(runner = "docker", %why, "actions with runner `docker` cannot run"),
                None => {
                    info!(runner = "docker", address = %endpoint.address, "the Docker engine answers: actions with runner `docker` can run")
                }
            }
        }
    }

    /// The actions of `actions` whose runner cannot run here, in name order.
    pub fn cannot_run(&self, actions: &BTreeMap<String, Arc<Action>>) -> Vec<CannotRun> {
        actions
            .values()
            .filter_map(|a| {
                self.unavailable(a.runner).map(|why| CannotRun {
                    action: a.name.clone(),
                    runner: kind_name(a.runner),
                    why,
                })
            })
            .collect()
    }

    /// Re-checks every `every` until `stop` turns true.
    pub async fn run(self: Arc<Self>, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            self.recheck().await;
        }
    }
}

/// The Docker runner, connected when a phase first needs it (and again after a failed connect),
/// so an engine that was down at start is used once it answers.
pub struct ReconnectingDocker {
    state_root: std::path::PathBuf,
    instance: String,
    host_paths: crate::runner::docker::HostPaths,
    runner: tokio::sync::Mutex<Option<Arc<DockerRunner>>>,
}

impl ReconnectingDocker {
    pub fn new(state_root: std::path::PathBuf, instance: &str) -> Self {
        Self {
            state_root,
            instance: instance.to_string(),
            host_paths: crate::runner::docker::HostPaths::default(),
            runner: tokio::sync::Mutex::new(None),
        }
    }

    /// The install's host paths for action mounts (`fixes.host_paths`).
    pub fn with_host_paths(mut self, host_paths: crate::runner::docker::HostPaths) -> Self {
        self.host_paths = host_paths;
        self
    }

    async fn runner(&self) -> Result<Arc<DockerRunner>, RunnerError> {
        let mut slot = self.runner.lock().await;
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let connected = Arc::new(
            DockerRunner::connect(self.state_root.clone())
                .await?
                .with_instance(&self.instance)
                .with_host_paths(self.host_paths.clone()),
        );
        *slot = Some(connected.clone());
        Ok(connected)
    }
}

#[async_trait]
impl Runner for ReconnectingDocker {
    async fn run_phase(&self, request: PhaseRequest<'_>) -> Result<PhaseOutcome, RunnerError> {
        self.runner().await?.run_phase(request).await
    }

    async fn abandon(&self, incident: &str, action: &str) -> Result<(), RunnerError> {
        self.runner().await?.abandon(incident, action).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_socket_says_so_and_kubernetes_disabled_covers_both_kinds() {
        let a = RunnerAvailability::checked(
            DockerEndpoint::unix(std::path::Path::new("/tmp/no-such-docker-unit.sock")),
            Some(KUBERNETES_DISABLED.into()),
        )
        .await;
        let docker = a.unavailable(RunnerKind::Docker).unwrap_or_default();
        assert!(
            docker.starts_with("the Docker engine at unix:///tmp/no-such-docker-unit.sock does not answer: "),
            "{docker}"
        );
        assert_eq!(
            a.unavailable(RunnerKind::Kubernetes).as_deref(),
            Some(KUBERNETES_DISABLED)
        );
        assert_eq!(
            a.unavailable(RunnerKind::KubernetesJob).as_deref(),
            Some(KUBERNETES_DISABLED)
        );
        assert!(a.set(RunnerKind::Docker, None));
        assert!(!a.set(RunnerKind::Docker, None));
        assert_eq!(a.unavailable(RunnerKind::Docker), None);
        assert_eq!(
            RunnerAvailability::all().unavailable(RunnerKind::Kubernetes),
            None
        );
    }
}
