//! The Kubernetes runners: [`KubeRunner`] runs the phases of `kubernetes-job` actions (one
//! `batch/v1` Job per phase attempt) and of `kubernetes` actions (native API operations with a
//! snapshot for rollback).
//!
//! # Layout
//! - [`job`]: build the Job, create or adopt it, poll it to its end, read its pod's log and exit
//!   code, delete it.
//! - [`native`]: dispatch of the native operations and the shared "snapshot, change, record"
//!   flow; one module per kind of object: [`deployment`] (rollout-restart, scale,
//!   rollout-healthy), [`pod`] (delete-pod), [`configmap`] (patch-configmap), [`node`]
//!   (cordon, uncordon).
//! - [`snapshot`]: what `execute` hands to `rollback` (`PhaseOutcome.snapshot`), and
//!   restore-snapshot.
//! - [`naming`]: deterministic Job names and label values.
//!
//! The runners talk to the API only through a [`kube::Client`], so the tests put a mocked API
//! server behind one (`tests/kube_runner.rs`); `deploy/kubernetes/rbac.yaml` grants exactly the
//! requests made here, which those tests check.

pub mod configmap;
pub mod deployment;
pub mod job;
pub mod naming;
pub mod native;
pub mod node;
pub mod pod;
pub mod snapshot;

use std::time::Duration;

use async_trait::async_trait;
use kube::Client;

use super::{PhaseOutcome, PhaseRequest, Runner, RunnerError};
use crate::model::action::{Operation, PhaseStep, RunnerKind};

/// How the runners behave; [`KubeSettings::default`] is what `rootfix serve` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSettings {
    /// How often a Job or a rollout is polled while waiting for it.
    pub poll_interval: Duration,
    /// `ttlSecondsAfterFinished` of the Jobs: the cluster removes a Job rootfix could not delete.
    pub job_ttl_after_finished: Duration,
    /// The service account the Jobs' pods run as. `None`: the namespace's `default` account with
    /// no API token mounted (`automountServiceAccountToken: false`).
    pub job_service_account: Option<String>,
    /// `fieldManager` of every patch and create.
    pub field_manager: String,
}

impl Default for KubeSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            job_ttl_after_finished: Duration::from_secs(3600),
            job_service_account: None,
            field_manager: "rootfix".to_string(),
        }
    }
}

/// Runs `kubernetes-job` and `kubernetes` actions against one cluster.
#[derive(Clone)]
pub struct KubeRunner {
    client: Client,
    default_namespace: String,
    settings: KubeSettings,
}

impl KubeRunner {
    /// `default_namespace` is where Jobs of actions without a `namespace` param run.
    pub fn new(client: Client, default_namespace: impl Into<String>) -> Self {
        Self {
            client,
            default_namespace: default_namespace.into(),
            settings: KubeSettings::default(),
        }
    }

    /// The cluster of the environment (in-cluster service account, or `KUBECONFIG` /
    /// `~/.kube/config`), with that config's namespace as the default one.
    pub async fn try_default() -> Result<Self, kube::Error> {
        let client = Client::try_default().await?;
        let namespace = client.default_namespace().to_string();
        Ok(Self::new(client, namespace))
    }

    pub fn with_settings(mut self, settings: KubeSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn settings(&self) -> &KubeSettings {
        &self.settings
    }

    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl Runner for KubeRunner {
    async fn run_phase(&self, request: PhaseRequest<'_>) -> Result<PhaseOutcome, RunnerError> {
        let phase = request
            .action
            .phases
            .get(request.phase)
            .ok_or(RunnerError::NoPhase(request.phase.as_str()))?;
        match (request.action.runner, &phase.step) {
            (RunnerKind::KubernetesJob, PhaseStep::Run(argv)) => job::run(self, &request, argv).await,
            (RunnerKind::Kubernetes, PhaseStep::Operation(Operation::Kube(op))) => {
                native::run(self, &request, *op).await
            }
            (kind, _) => Err(RunnerError::Unsupported {
                runner: "kubernetes",
                reason: format!(
                    "action `{}` (runner {kind:?}) is not a kubernetes-job action with `run` nor a \
                     kubernetes action with `operation`",
                    request.action.name
                ),
            }),
        }
    }
}

/// An API error as one line: `403 Forbidden: jobs.batch is forbidden: ...`.
pub(crate) fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

/// The API server's reason for an error (`NotFound`, `AlreadyExists`, `Conflict`, ...).
pub(crate) fn api_reason(error: &kube::Error) -> Option<(u16, &str)> {
    match error {
        kube::Error::Api(status) => Some((status.code, status.reason.as_str())),
        _ => None,
    }
}

pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    api_reason(error).is_some_and(|(code, _)| code == 404)
}

pub(crate) fn engine_error(what: &str, error: &kube::Error) -> RunnerError {
    RunnerError::Engine(format!("{what}: {}", describe(error)))
}
