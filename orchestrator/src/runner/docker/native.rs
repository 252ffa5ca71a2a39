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

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::RestartContainerOptionsBuilder;
use chrono::Utc;
use tokio::time::Instant;

use crate::model::action::DockerOperation;
use crate::runner::{ParamError, PhaseExit, PhaseOutcome, PhaseRequest, RunnerError, validate_params};

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

/// What rootfix reads of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView {
    pub id: String,
    /// Without the engine's leading `/`.
    pub name: String,
    pub status: String,
    pub started_at: String,
    pub pid: i64,
    pub exit_code: i64,
    pub oom_killed: bool,
    /// `None`: the container has no health check.
    pub health: Option<String>,
    /// The output of the last health check run, trimmed.
    pub last_check: Option<String>,
    /// The value of [`OWN_LABEL`] when rootfix created the container.
    pub rootfix_incident: Option<String>,
}

impl ContainerView {
    pub fn from_inspect(c: &ContainerInspectResponse) -> Self {
        let state = c.state.clone().unwrap_or_default();
        let health = state.health.as_ref().and_then(|h| match h.status {
            None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) => None,
            Some(s) => Some(s.to_string()),
        });
        let last_check = state
            .health
            .as_ref()
            .and_then(|h| h.log.as_ref())
            .and_then(|log| log.last())
            .map(|r| {
                let out = r.output.as_deref().unwrap_or("").trim();
                format!(
                    "exit {}{}",
                    r.exit_code.unwrap_or(-1),
                    if out.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", one_line(out))
                    }
                )
            });
        Self {
            id: c.id.clone().unwrap_or_default(),
            name: c
                .name
                .as_deref()
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string(),
            status: state
                .status
                .unwrap_or(ContainerStateStatusEnum::EMPTY)
                .to_string(),
            started_at: state.started_at.unwrap_or_default(),
            pid: state.pid.unwrap_or(0),
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            health,
            last_check,
            rootfix_incident: c
                .config
                .as_ref()
                .and_then(|cfg| cfg.labels.as_ref())
                .and_then(|labels| labels.get(OWN_LABEL))
                .cloned(),
        }
    }

    pub fn running(&self) -> bool {
        self.status == "running"
    }

    /// Where the container stands, judged for the operations.
    pub fn condition(&self) -> Condition {
        if !self.running() {
            return Condition::Down(self.down_reason());
        }
        match self.health.as_deref() {
            None => Condition::RunningWithoutCheck,
            Some("healthy") => Condition::Healthy,
            Some("unhealthy") => Condition::Unhealthy(
                self.last_check
                    .clone()
                    .unwrap_or_else(|| "no check output".to_string()),
            ),
            Some(_) => Condition::Starting,
        }
    }

    fn down_reason(&self) -> String {
        match self.status.as_str() {
            "exited" | "dead" | "restarting" => format!(
                "is {} (exit code {}{})",
                self.status,
                self.exit_code,
                if self.oom_killed {
                    ", killed for memory"
                } else {
                    ""
                }
            ),
            other => format!("is {other}, not running"),
        }
    }

    fn summary(&self) -> String {
        format!(
            "{}, StartedAt {}, pid {}, health {}",
            self.status,
            self.started_at,
            self.pid,
            self.health.as_deref().unwrap_or("none (no health check)")
        )
    }
}

/// A container's state as the operations judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Not running (why).
    Down(String),
    /// Running, with a health check that has not passed yet.
    Starting,
    /// Running, marked unhealthy by the engine (the last check's result).
    Unhealthy(String),
    Healthy,
    RunningWithoutCheck,
}

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

fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    if line.len() > 300 {
        format!("{}…", &line[..line.floor_char_boundary(300)])
    } else {
        line
    }
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

fn refuse_own(view: &ContainerView) -> Option<String> {
    view.rootfix_incident.as_ref().map(|incident| {
        format!(
            "refused, nothing done: container {} was created by rootfix (label {OWN_LABEL}={incident}); \
             rootfix does not act on its own containers",
            view.name
        )
    })
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

fn stop_timeout(params: &BTreeMap<String, String>) -> Result<u32, String> {
    match params.get(PARAM_STOP_TIMEOUT) {
        None => Ok(DEFAULT_STOP_TIMEOUT_SECS),
        Some(text) => text.parse::<u32>().ok().filter(|s| *s <= 3600).ok_or_else(|| {
            format!("refused, nothing done: stop_timeout `{text}` is not a number of seconds up to 3600")
        }),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// restart-container.
async fn restart(
    docker: &Docker,
    request: &PhaseRequest<'_>,
    name: &str,
    params: &BTreeMap<String, String>,
    deadline: Instant,
) -> Result<Report, RunnerError> {
    let stop = match stop_timeout(params) {
        Ok(s) => s,
        Err(reason) => return Ok(Report::failed(Vec::new(), reason)),
    };
    let before = match find(docker, name).await? {
        Ok(view) => view,
        Err(reason) => return Ok(Report::failed(Vec::new(), reason)),
    };
    if let Some(reason) = refuse_own(&before) {
        return Ok(Report::failed(Vec::new(), reason));
    }
    let mut lines = vec![format!(
        "container {name} before the restart: {}",
        before.summary()
    )];
    let timed_out = |mut lines: Vec<String>, line: String| {
        lines.push(line);
        Report {
            exit: PhaseExit::TimedOut {
                after_ms: u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX),
            },
            lines,
        }
    };

    // By ID from here on: a container that takes the name meanwhile is not ours to touch.
    let id = before.id.clone();
    let options = RestartContainerOptionsBuilder::default()
        .t(i32::try_from(stop).unwrap_or(i32::MAX))
        .build();
    let asked = Instant::now();
    match tokio::time::timeout_at(deadline, docker.restart_container(&id, Some(options))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Ok(Report::failed(
                lines,
                format!("restarting container {name} failed: {e}"),
            ));
        }
        Err(_) => {
            return Ok(timed_out(
                lines,
                format!(
                    "the phase timeout ran out while the engine was still restarting container {name} \
                     (stop timeout {stop} s); it may finish the restart on its own"
                ),
            ));
        }
    }
    let restarted = Instant::now();
    lines.push(format!(
        "container {name}: restarted by the engine in {} (graceful stop timeout {stop} s)",
        secs(restarted - asked)
    ));

    let mut last: Option<ContainerView> = None;
    loop {
        let view = match docker.inspect_container(&id, None).await {
            Ok(c) => ContainerView::from_inspect(&c),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                return Ok(Report::failed(
                    lines,
                    format!("container {name} was removed after the restart"),
                ));
            }
            Err(e) => {
                return Ok(Report::failed(
                    lines,
                    format!("reading container {name} after the restart failed: {e}"),
                ));
            }
        };
        if last.is_none() {
            if view.started_at == before.started_at {
                return Ok(Report::failed(
                    lines,
                    format!(
                        "container {name} still reports StartedAt {}: the engine did not restart it",
                        view.started_at
                    ),
                ));
            }
            lines.push(format!(
                "container {name}: StartedAt {} → {}, pid {} → {}",
                before.started_at, view.started_at, before.pid, view.pid
            ));
        }
        let waited = restarted.elapsed();
        match view.condition() {
            Condition::Down(why) => {
                return Ok(Report::failed(
                    lines,
                    format!("container {name} {why} {} after the restart", secs(waited)),
                ));
            }
            Condition::Unhealthy(check) => {
                return Ok(Report::failed(
                    lines,
                    format!(
                        "container {name} became unhealthy {} after the restart (last check: {check})",
                        secs(waited)
                    ),
                ));
            }
            Condition::Healthy => {
                lines.push(format!(
                    "container {name}: healthy {} after the restart ({} after rootfix asked for it)",
                    secs(waited),
                    secs(asked.elapsed())
                ));
                return Ok(Report::success(lines));
            }
            Condition::RunningWithoutCheck if waited >= RUNNING_SETTLE => {
                lines.push(format!(
                    "container {name}: has no health check; running {} after the restart",
                    secs(waited)
                ));
                return Ok(Report::success(lines));
            }
            Condition::RunningWithoutCheck | Condition::Starting => {}
        }
        last = Some(view);
        let now = Instant::now();
        if now >= deadline {
            let state = last.as_ref().map(ContainerView::summary).unwrap_or_default();
            return Ok(timed_out(
                lines,
                format!(
                    "container {name} was not healthy when the phase timeout ran out, {} after the restart ({state})",
                    secs(restarted.elapsed())
                ),
            ));
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, ContainerState, Health, HealthcheckResult};
    use std::collections::HashMap;

    fn inspect(
        status: ContainerStateStatusEnum,
        health: Option<HealthStatusEnum>,
    ) -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("0123abcd".into()),
            name: Some("/web-1".into()),
            state: Some(ContainerState {
                status: Some(status),
                started_at: Some("2026-12-01T20:00:00.5Z".into()),
                pid: Some(42),
                exit_code: Some(137),
                health: health.map(|s| Health {
                    status: Some(s),
                    failing_streak: Some(2),
                    log: Some(vec![HealthcheckResult {
                        exit_code: Some(1),
                        output: Some("curl: (7) refused\n".into()),
                        ..Default::default()
                    }]),
                }),
                ..Default::default()
            }),
            config: Some(ContainerConfig {
                labels: Some(HashMap::from([("app".to_string(), "web".to_string())])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn conditions_follow_state_and_health() {
        use ContainerStateStatusEnum::*;
        let view = |s, h| ContainerView::from_inspect(&inspect(s, h));
        assert_eq!(view(RUNNING, None).condition(), Condition::RunningWithoutCheck);
        assert_eq!(
            view(RUNNING, Some(HealthStatusEnum::NONE)).condition(),
            Condition::RunningWithoutCheck
        );
        assert_eq!(
            view(RUNNING, Some(HealthStatusEnum::HEALTHY)).condition(),
            Condition::Healthy
        );
        assert_eq!(
            view(RUNNING, Some(HealthStatusEnum::STARTING)).condition(),
            Condition::Starting
        );
        assert_eq!(
            view(RUNNING, Some(HealthStatusEnum::UNHEALTHY)).condition(),
            Condition::Unhealthy("exit 1: curl: (7) refused".into())
        );
        assert_eq!(
            view(EXITED, Some(HealthStatusEnum::UNHEALTHY)).condition(),
            Condition::Down("is exited (exit code 137)".into())
        );
        assert_eq!(
            view(PAUSED, None).condition(),
            Condition::Down("is paused, not running".into())
        );
        let v = view(RUNNING, None);
        assert_eq!((v.name.as_str(), v.rootfix_incident.as_deref()), ("web-1", None));
    }

    #[test]
    fn rootfix_containers_are_recognised_by_their_label() {
        let mut c = inspect(ContainerStateStatusEnum::RUNNING, None);
        c.config = Some(ContainerConfig {
            labels: Some(HashMap::from([(OWN_LABEL.to_string(), "inc-1".to_string())])),
            ..Default::default()
        });
        let reason = refuse_own(&ContainerView::from_inspect(&c)).unwrap_or_default();
        assert!(
            reason.contains("created by rootfix (label rootfix.incident=inc-1)"),
            "{reason}"
        );
    }

    #[test]
    fn docker_names_are_checked() {
        assert!(docker_name("web-1"));
        assert!(docker_name("a.b_c-D9"));
        for bad in ["", "-x", "../x", "a/b", "a b", "x?y", &"a".repeat(129)] {
            assert!(!docker_name(bad), "{bad}");
        }
    }

    #[test]
    fn stop_timeout_defaults_and_bounds() {
        let p = |v: &str| BTreeMap::from([(PARAM_STOP_TIMEOUT.to_string(), v.to_string())]);
        assert_eq!(stop_timeout(&BTreeMap::new()), Ok(DEFAULT_STOP_TIMEOUT_SECS));
        assert_eq!(stop_timeout(&p("3")), Ok(3));
        assert!(stop_timeout(&p("3601")).is_err());
        assert!(stop_timeout(&p("x")).is_err());
    }
}
