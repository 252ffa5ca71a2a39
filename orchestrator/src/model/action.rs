//! A validated action: runner, image, typed params and phases (a command in the image or a
//! native operation of the runner).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use super::template::Template;

#[derive(Debug, Clone)]
pub struct Action {
    pub name: String,
    pub description: Option<String>,
    pub source: PathBuf,
    pub purpose: Purpose,
    pub runner: RunnerKind,
    pub image: Option<String>,
    pub params: BTreeMap<String, ParamSpec>,
    pub timeout: Duration,
    pub idempotency_key: Option<Template>,
    pub memory_bytes: Option<u64>,
    pub cpus: Option<f64>,
    pub network: String,
    pub writable_root_fs: bool,
    pub mounts: Vec<Mount>,
    pub host_pid: bool,
    pub phases: Phases,
}

/// A host path mounted into the action's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host: String,
    pub container: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Fix,
    Diagnostic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerKind {
    Docker,
    KubernetesJob,
    Kubernetes,
}

impl RunnerKind {
    pub const ALL: [(&'static str, RunnerKind); 3] = [
        ("docker", RunnerKind::Docker),
        ("kubernetes-job", RunnerKind::KubernetesJob),
        ("kubernetes", RunnerKind::Kubernetes),
    ];

    pub fn runs_containers(self) -> bool {
        matches!(self, RunnerKind::Docker | RunnerKind::KubernetesJob)
    }
}

#[derive(Debug, Clone)]
pub struct ParamSpec {
    /// The pattern as written.
    pub pattern_source: String,
    /// The pattern, anchored at both ends.
    pub pattern: Regex,
    pub required: bool,
    pub default: Option<String>,
    pub description: Option<String>,
}

impl ParamSpec {
    pub fn accepts(&self, value: &str) -> bool {
        self.pattern.is_match(value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseName {
    Precheck,
    Execute,
    Verify,
    Rollback,
}

impl PhaseName {
    pub const ALL: [PhaseName; 4] = [
        PhaseName::Precheck,
        PhaseName::Execute,
        PhaseName::Verify,
        PhaseName::Rollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PhaseName::Precheck => "precheck",
            PhaseName::Execute => "execute",
            PhaseName::Verify => "verify",
            PhaseName::Rollback => "rollback",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Phases {
    pub precheck: Option<Phase>,
    pub execute: Option<Phase>,
    pub verify: Option<Phase>,
    pub rollback: Option<Phase>,
}

impl Phases {
    pub fn get(&self, name: PhaseName) -> Option<&Phase> {
        match name {
            PhaseName::Precheck => self.precheck.as_ref(),
            PhaseName::Execute => self.execute.as_ref(),
            PhaseName::Verify => self.verify.as_ref(),
            PhaseName::Rollback => self.rollback.as_ref(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub step: PhaseStep,
    pub timeout: Duration,
    pub retries: u32,
    pub interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhaseStep {
    /// argv in the action's image.
    Run(Vec<String>),
    /// A native operation of the action's runner (Kubernetes API calls, Docker engine calls).
    Operation(Operation),
}

/// A native operation: rootfix calls the runner's API itself instead of starting a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `runner: kubernetes`.
    Kube(KubeOperation),
    /// `runner: docker`.
    Docker(DockerOperation),
}

impl Operation {
    /// The operation named `name` among those of `runner`; `None` when the runner has none of
    /// that name (or runs no native operations).
    pub fn parse(runner: RunnerKind, name: &str) -> Option<Self> {
        match runner {
            RunnerKind::Kubernetes => KubeOperation::parse(name).map(Operation::Kube),
            RunnerKind::Docker => DockerOperation::parse(name).map(Operation::Docker),
            RunnerKind::KubernetesJob => None,
        }
    }

    /// The runner whose operation this is.
    pub fn runner(self) -> RunnerKind {
        match self {
            Operation::Kube(_) => RunnerKind::Kubernetes,
            Operation::Docker(_) => RunnerKind::Docker,
        }
    }

    /// The names of `runner`'s operations, in the order of the docs.
    pub fn names_of(runner: RunnerKind) -> Vec<&'static str> {
        match runner {
            RunnerKind::Kubernetes => KubeOperation::ALL.iter().map(|o| o.as_str()).collect(),
            RunnerKind::Docker => DockerOperation::ALL.iter().map(|o| o.as_str()).collect(),
            RunnerKind::KubernetesJob => Vec::new(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Kube(op) => op.as_str(),
            Operation::Docker(op) => op.as_str(),
        }
    }

    /// The phases this operation may stand in.
    pub fn allowed_in(self, phase: PhaseName) -> bool {
        match self {
            Operation::Kube(op) => op.allowed_in(phase),
            Operation::Docker(op) => op.allowed_in(phase),
        }
    }

    /// Params the operation reads; the action must declare them.
    pub fn required_params(self) -> &'static [&'static str] {
        match self {
            Operation::Kube(op) => op.required_params(),
            Operation::Docker(op) => op.required_params(),
        }
    }

    /// Whether what this execute operation does can be undone by a rollback phase.
    pub fn can_be_rolled_back(self) -> bool {
        match self {
            Operation::Kube(_) => true,
            Operation::Docker(op) => op.can_be_rolled_back(),
        }
    }
}

/// The Docker runner's native operations (bollard calls on the engine, no container started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerOperation {
    /// execute: restart the container named by param `container` and wait for it to be healthy.
    RestartContainer,
    /// precheck, verify: the container exists and runs (whatever its health).
    ContainerRunning,
    /// precheck, verify: the container runs and is healthy (or runs and has no health check).
    ContainerHealthy,
}

impl DockerOperation {
    pub const ALL: [DockerOperation; 3] = [
        DockerOperation::RestartContainer,
        DockerOperation::ContainerRunning,
        DockerOperation::ContainerHealthy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DockerOperation::RestartContainer => "restart-container",
            DockerOperation::ContainerRunning => "container-running",
            DockerOperation::ContainerHealthy => "container-healthy",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// The phases this operation may stand in.
    pub fn allowed_in(self, phase: PhaseName) -> bool {
        match self {
            DockerOperation::RestartContainer => phase == PhaseName::Execute,
            DockerOperation::ContainerRunning | DockerOperation::ContainerHealthy => {
                matches!(phase, PhaseName::Precheck | PhaseName::Verify)
            }
        }
    }

    /// Params the operation reads; the action must declare them. `restart-container` also reads
    /// `stop_timeout` (seconds) when the action declares it.
    pub fn required_params(self) -> &'static [&'static str] {
        &["container"]
    }

    /// A restarted process stays restarted: nothing can put the old one back.
    pub fn can_be_rolled_back(self) -> bool {
        !matches!(self, DockerOperation::RestartContainer)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeOperation {
    RolloutRestart,
    Scale,
    DeletePod,
    PatchConfigMap,
    Cordon,
    Uncordon,
    RolloutHealthy,
    RestoreSnapshot,
}

impl KubeOperation {
    pub const ALL: [KubeOperation; 8] = [
        KubeOperation::RolloutRestart,
        KubeOperation::Scale,
        KubeOperation::DeletePod,
        KubeOperation::PatchConfigMap,
        KubeOperation::Cordon,
        KubeOperation::Uncordon,
        KubeOperation::RolloutHealthy,
        KubeOperation::RestoreSnapshot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KubeOperation::RolloutRestart => "rollout-restart",
            KubeOperation::Scale => "scale",
            KubeOperation::DeletePod => "delete-pod",
            KubeOperation::PatchConfigMap => "patch-configmap",
            KubeOperation::Cordon => "cordon",
            KubeOperation::Uncordon => "uncordon",
            KubeOperation::RolloutHealthy => "rollout-healthy",
            KubeOperation::RestoreSnapshot => "restore-snapshot",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// The phases this operation may stand in.
    pub fn allowed_in(self, phase: PhaseName) -> bool {
        match self {
            KubeOperation::RolloutHealthy => matches!(phase, PhaseName::Precheck | PhaseName::Verify),
            KubeOperation::RestoreSnapshot => phase == PhaseName::Rollback,
            _ => phase == PhaseName::Execute,
        }
    }

    /// Params the operation reads; the action must declare them.
    pub fn required_params(self) -> &'static [&'static str] {
        match self {
            KubeOperation::RolloutRestart | KubeOperation::RolloutHealthy => &["namespace", "deployment"],
            KubeOperation::Scale => &["namespace", "deployment", "replicas"],
            KubeOperation::DeletePod => &["namespace", "pod"],
            KubeOperation::PatchConfigMap => &["namespace", "configmap", "patch"],
            KubeOperation::Cordon | KubeOperation::Uncordon => &["node"],
            KubeOperation::RestoreSnapshot => &[],
        }
    }
}
