//! `docker` actions' native operations: calls on the engine (bollard), no container started.
//!
//! Every operation acts on the container that param `container` names, and only on it:
//! - the value is checked again against the action's param pattern and against Docker's own name
//!   grammar ([`DOCKER_NAME`]) before it reaches a request path;
//! - the container is looked up by that name and must carry exactly that name: the engine also
//!   resolves IDs and ID prefixes, which rootfix never acts on;
//! - a container rootfix itself created (a phase container, labelled [`OWN_LABEL`]) is refused.
//!
//! **restart-container** (execute) reads the container's state, restarts it by its ID with a
//! graceful stop (`docker restart -t`: SIGTERM, then SIGKILL after param `stop_timeout` seconds,
//! default [`DEFAULT_STOP_TIMEOUT_SECS`]), and polls it until it is `healthy` (a container with a
//! health check) or has been running for [`RUNNING_SETTLE`] (one without). It fails at once when
//! the container exits or the engine marks it `unhealthy` (the engine counts the check's retries
//! first), and reports a timeout when the phase's time runs out while it is still starting. The
//! output says what happened: old → new `StartedAt` and PID, and the time to healthy. A restart
//! cannot be undone, so an action using it has no rollback phase (the catalog enforces it).
//!
//! **container-running** (precheck, verify): Success when the container exists and runs,
//! whatever its health — a service that is up but sick is what a restart is for.
//!
//! **container-healthy** (precheck, verify): Success when the container runs and is `healthy`, or
//! runs and has no health check; Failed with what is wrong otherwise. One read: verify's retries
//! and interval belong to the executor.
//!
//! This module runs an operation on the container the params name, after checking the name again;
//! `container` is what rootfix reads of a container and how it judges it (and refuses its own);
//! `restart` is restart-container's restart and wait.

mod container;
mod restart;

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::Docker;
use chrono::Utc;
use tokio::time::Instant;

use crate::model::action::DockerOperation;
use crate::runner::{ParamError, PhaseExit, PhaseOutcome, PhaseRequest, RunnerError, validate_params};
use container::refuse_own;
pub use container::{Condition, ContainerView};
use restart::restart;

/// The label every container the Docker runner starts carries (see `DockerRunner::run_phase`).
pub const OWN_LABEL: &str = "rootfix.incident";

/// Docker's container name grammar (anchored).
pub const DOCKER_NAME: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}";

/// The graceful stop's length when the action has no `stop_timeout` param.
pub const DEFAULT_STOP_TIMEOUT_SECS: u32 = 10;

/// How long a container without a health check must keep running after the restart.
pub const RUNNING_SETTLE: Duration = Duration::from_secs(3);

/// How often the container is read while waiting for it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Param names the operations read.
pub const PARAM_CONTAINER: &str = "container";
pub const PARAM_STOP_TIMEOUT: &str = "stop_timeout";

/// How a native phase ended and what it did, one line each.
struct Report {
    exit: PhaseExit,
    lines: Vec<String>,
}

impl Report {
    fn success(lines: Vec<String>) -> Self {
        Self {
            exit: PhaseExit::Success,
            lines,
        }
    }

    fn failed(mut lines: Vec<String>, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        lines.push(reason.clone());
        Self {
            exit: PhaseExit::Failed { code: None, reason },
            lines,
        }
    }
}

fn engine(what: &str, e: impl std::fmt::Display) -> RunnerError {
    RunnerError::Engine(format!("docker: {what}: {e}"))
}

/// Runs one native Docker phase.
pub(super) async fn run(
    docker: &Docker,
    request: &PhaseRequest<'_>,
    operation: DockerOperation,
) -> Result<PhaseOutcome, RunnerError> {
    if !operation.allowed_in(request.phase) {
        return Err(RunnerError::Unsupported {
            runner: "docker",
            reason: format!(
                "operation `{}` cannot be the {} phase",
                operation.as_str(),
                request.phase.as_str()
            ),
        });
    }
    let started_at = Utc::now();
    let deadline = Instant::now() + request.timeout;
    let report = match target(request) {
        Err(reason) => Report::failed(Vec::new(), reason),
        Ok((name, params)) => match operation {
            DockerOperation::RestartContainer => restart(docker, request, &name, &params, deadline).await?,
            DockerOperation::ContainerRunning => check(docker, &name, false).await?,
            DockerOperation::ContainerHealthy => check(docker, &name, true).await?,
        },
    };
    tracing::info!(
        incident = request.incident,
        action = %request.action.name,
        operation = operation.as_str(),
        exit = ?report.exit,
        "docker operation done"
    );
    Ok(PhaseOutcome {
        exit: report.exit,
        stdout: report.lines.iter().map(|l| format!("{l}\n")).collect(),
        stderr: String::new(),
        started_at,
        finished_at: Utc::now(),
        snapshot: None,
        timing: None,
    })
}

/// The container name, checked again here (the executor validated the params; this runner does
/// not rely on it): the action's pattern and Docker's name grammar. `Err` is the refusal.
fn target(request: &PhaseRequest<'_>) -> Result<(String, BTreeMap<String, String>), String> {
    let action = request.action;
    let Some(name) = request.params.get(PARAM_CONTAINER) else {
        return Err(ParamError::Missing {
            action: action.name.clone(),
            name: PARAM_CONTAINER.to_string(),
        }
        .to_string());
    };
    let params =
        validate_params(action, request.params).map_err(|e| format!("refused, nothing done: {e}"))?;
    if !docker_name(name) {
        return Err(format!(
            "refused, nothing done: `{name}` is not a Docker container name ({DOCKER_NAME})"
        ));
    }
    Ok((name.clone(), params))
}

/// Whether `name` is a Docker container name.
pub fn docker_name(name: &str) -> bool {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(&format!("^(?:{DOCKER_NAME})$")).ok())
        .as_ref()
        .is_some_and(|re| re.is_match(name))
}

/// The container of exactly this name, or why there is none to act on.
async fn find(docker: &Docker, name: &str) -> Result<Result<ContainerView, String>, RunnerError> {
    match docker.inspect_container(name, None).await {
        Ok(c) => {
            let view = ContainerView::from_inspect(&c);
            if view.name != name {
                // The engine resolved an ID or an ID prefix.
                return Ok(Err(format!(
                    "no container named {name} on the engine (`{name}` matches the ID of container {}; \
                     rootfix acts on names only)",
                    view.name
                )));
            }
            Ok(Ok(view))
        }
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
            Ok(Err(format!("no container named {name} on the engine")))
        }
        Err(e) => Err(engine(&format!("reading container {name}"), e)),
    }
}

/// container-running / container-healthy.
async fn check(docker: &Docker, name: &str, healthy: bool) -> Result<Report, RunnerError> {
    let view = match find(docker, name).await? {
        Ok(view) => view,
        Err(reason) => return Ok(Report::failed(Vec::new(), reason)),
    };
    if let Some(reason) = refuse_own(&view) {
        return Ok(Report::failed(Vec::new(), reason));
    }
    let lines = vec![format!("container {name}: {}", view.summary())];
    Ok(match (view.condition(), healthy) {
        (Condition::Down(why), _) => Report::failed(lines, format!("container {name} {why}")),
        (_, false) | (Condition::Healthy | Condition::RunningWithoutCheck, true) => Report::success(lines),
        (Condition::Starting, true) => Report::failed(
            lines,
            format!("container {name} runs, but its health check has not passed yet (starting)"),
        ),
        (Condition::Unhealthy(last), true) => Report::failed(
            lines,
            format!("container {name} runs, but is unhealthy (last check: {last})"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_are_checked() {
        assert!(docker_name("web-1"));
        assert!(docker_name("a.b_c-D9"));
        for bad in ["", "-x", "../x", "a/b", "a b", "x?y", &"a".repeat(129)] {
            assert!(!docker_name(bad), "{bad}");
        }
    }
}
