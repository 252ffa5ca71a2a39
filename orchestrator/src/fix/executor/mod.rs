//! Runs a fix: takes the target's idempotency lock (fencing token, lease renewed while the fix
//! runs), then precheck → execute → verify (retried; a container and/or a condition over fresh
//! evidence) → rollback when execute or verify fails. Every phase transition is journaled before
//! the next step starts; [`Executor::recover`] finishes what a crashed rootfix left: it resumes
//! verify when execute completed and rolls back otherwise, so a completed execute never runs
//! twice.
//!
//! This module holds what a caller hands in and the [`Executor`] with its entry points; `report`
//! what comes back; `run` the phases of one fix in order (precheck → execute → verify, and the
//! rollback); `steps` a remedy of several steps as one fix (a saga over runs of `run`), `steps_plan` what
//! it runs; `lock` the
//! target's lock and its renewal; `recovery` the fixes a crashed rootfix left.

mod lock;
mod recovery;
mod report;
mod run;
mod steps;
mod steps_plan;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::{Instrument, info_span, warn};

use super::journal::{FixOutcome, JournalEvent, fix_id};
use crate::model::action::{Action, RunnerKind};
use crate::model::template::no_escape;
use crate::runner::availability::{
    DockerEndpoint, KUBERNETES_DISABLED, ReconnectingDocker, RunnerAvailability,
};
use crate::runner::{Runner, validate_params};
use crate::state::{StateError, StateStore};
pub use report::{FixReport, PhaseOverhead};
use run::Run;
pub use steps_plan::{StepPlan, StepsPlan, step_instance, wave_of_steps};

/// A verify condition over fresh evidence (the playbook's `remedy.verify`), evaluated by the caller.
#[async_trait]
pub trait VerifyCheck: Send + Sync {
    /// Whether the fix shows in fresh evidence; an error counts as not yet.
    async fn holds(&self) -> Result<bool, String>;
    fn retries(&self) -> u32;
    fn interval(&self) -> Duration;
}

/// Finds the verify condition of a fix (incident, action) when its playbook has one; with a
/// step number, that step's of a remedy of steps (the remedy's own with `None`).
pub type VerifyLookup<'a> = dyn Fn(&str, &str, Option<u32>) -> Option<Arc<dyn VerifyCheck>> + Sync + 'a;

/// What to run.
pub struct FixPlan {
    pub incident: String,
    pub action: Arc<Action>,
    pub params: BTreeMap<String, String>,
    pub verify: Option<Arc<dyn VerifyCheck>>,
    /// Run everything but execute and rollback: precheck, then verify once, and report.
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("no runner is configured for `{0}` actions")]
    NoRunner(&'static str),
}

/// When another fix holds the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockPolicy {
    /// Refuse at once.
    Refuse,
    /// Wait up to this long for the lock, then refuse.
    Wait(Duration),
}

pub struct Executor {
    pub state: Arc<dyn StateStore>,
    pub docker: Option<Arc<dyn Runner>>,
    pub kubernetes: Option<Arc<dyn Runner>>,
    pub kubernetes_job: Option<Arc<dyn Runner>>,
    pub lease: Duration,
    pub lock_policy: LockPolicy,
}

impl Executor {
    /// The executor `rootfix serve` and `rootfix fix` use: the runners this machine can reach.
    pub async fn from_config(config: &crate::config::ServeConfig, state: Arc<dyn StateStore>) -> Self {
        Self::from_config_checked(config, state).await.0
    }

    /// [`Self::from_config`] and what it found: which runners can run here, and why not. Docker
    /// phases connect to the engine when they run ([`ReconnectingDocker`]), so an engine that
    /// comes back after start is used; the availability says whether it answers now.
    pub async fn from_config_checked(
        config: &crate::config::ServeConfig,
        state: Arc<dyn StateStore>,
    ) -> (Self, RunnerAvailability) {
        let docker: Arc<dyn Runner> = Arc::new(
            ReconnectingDocker::new(config.fixes.state_dir.clone(), &config.key_prefix).with_host_paths(
                crate::runner::docker::HostPaths::new(config.fixes.host_paths.clone()),
            ),
        );
        let (kube, kube_why): (Option<Arc<dyn Runner>>, Option<String>) = if config.kubernetes.enabled {
            match kube::Client::try_default().await {
                Ok(client) => (
                    Some(Arc::new(crate::runner::kubernetes::KubeRunner::new(
                        client,
                        config.kubernetes.default_namespace.clone(),
                    ))),
                    None,
                ),
                Err(e) => {
                    warn!(error = %e, "no Kubernetes API: actions with runner `kubernetes`/`kubernetes-job` cannot run");
                    (
                        None,
                        Some(format!("no Kubernetes API client could be built: {e}")),
                    )
                }
            }
        } else {
            (None, Some(KUBERNETES_DISABLED.to_string()))
        };
        let availability = RunnerAvailability::checked(DockerEndpoint::local(), kube_why).await;
        let executor = Self {
            state,
            docker: Some(docker),
            kubernetes: kube.clone(),
            kubernetes_job: kube,
            lease: config.fixes.lease,
            lock_policy: if config.fixes.lock_wait.is_zero() {
                LockPolicy::Refuse
            } else {
                LockPolicy::Wait(config.fixes.lock_wait)
            },
        };
        (executor, availability)
    }

    /// The runner of each kind this executor has (for the diagnostic actions, which run on the
    /// same runners as the fixes).
    pub fn runners(&self) -> Vec<(RunnerKind, Arc<dyn Runner>)> {
        [
            (RunnerKind::Docker, &self.docker),
            (RunnerKind::Kubernetes, &self.kubernetes),
            (RunnerKind::KubernetesJob, &self.kubernetes_job),
        ]
        .into_iter()
        .filter_map(|(kind, runner)| runner.clone().map(|r| (kind, r)))
        .collect()
    }

    /// Why actions of `kind` cannot run with this executor: it has no runner for them.
    pub fn missing_runner(&self, kind: RunnerKind) -> Option<String> {
        self.runner_for(kind).err().map(|e| e.to_string())
    }

    fn runner_for(&self, kind: RunnerKind) -> Result<Arc<dyn Runner>, FixError> {
        let (runner, name) = match kind {
            RunnerKind::Docker => (&self.docker, "docker"),
            RunnerKind::Kubernetes => (&self.kubernetes, "kubernetes"),
            RunnerKind::KubernetesJob => (&self.kubernetes_job, "kubernetes-job"),
        };
        runner.clone().ok_or(FixError::NoRunner(name))
    }

    /// The target's key: the action's idempotency template over the params.
    pub fn target_key(action: &Action, params: &BTreeMap<String, String>) -> String {
        action
            .idempotency_key
            .as_ref()
            .and_then(|t| t.render(&BTreeMap::new(), params, no_escape).ok())
            .unwrap_or_else(|| action.name.clone())
    }

    /// Runs a fix from the start (rootfix's own decision: its phases are audited as `rootfix`).
    pub async fn run(&self, plan: FixPlan) -> Result<FixReport, FixError> {
        self.run_as(plan, "rootfix").await
    }

    /// Runs a fix from the start on `by`'s decision: its phases are audited under that identity.
    pub async fn run_as(&self, plan: FixPlan, by: &str) -> Result<FixReport, FixError> {
        let fix = fix_id(&plan.incident, &plan.action.name);
        let span = info_span!("fix", incident = %plan.incident, action = %plan.action.name);
        async {
            let refused =
                |reason: String| FixReport::without_phases(fix.clone(), FixOutcome::Refused(reason));
            let params = match validate_params(&plan.action, &plan.params) {
                Ok(p) => p,
                Err(e) => return Ok(refused(e.to_string())),
            };
            // Fail closed: an unreachable state store is an error here, and no fix starts.
            if let Some(k) = self.state.killswitch().await? {
                return Ok(refused(format!(
                    "the kill switch is on (by {}: {})",
                    k.by, k.reason
                )));
            }
            let runner = self.runner_for(plan.action.runner)?;
            let key = Self::target_key(&plan.action, &params);
            let Some(token) = self.acquire(&plan.action.name, &key).await? else {
                return Ok(refused(format!(
                    "another fix holds `{}` on `{key}`",
                    plan.action.name
                )));
            };
            let plan = FixPlan { params, ..plan };
            self.state.set_fix_active(&fix, true).await?;
            let mut run = Run::new(self, &plan, fix.clone(), runner, by);
            run.journal(JournalEvent::FixStarted {
                params: plan.params.clone(),
                fencing_token: token,
                steps: Vec::new(),
                waves: Vec::new(),
            })
            .await?;
            let renewer = self.keep_lock(&plan.action.name, &key, token, run.lost_lock.clone());
            let outcome = run.run_from_precheck().await;
            run.close(outcome, &key, token, renewer).await
        }
        .instrument(span)
        .await
    }
}
