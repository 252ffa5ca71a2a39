//! What rootfix reads of a container ([`ContainerView`]: state, health, the last check's output,
//! rootfix's own label), how the operations judge it ([`Condition`]), and the refusal of a
//! container rootfix itself created.

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};

use super::OWN_LABEL;

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

    pub(super) fn summary(&self) -> String {
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

pub(super) fn refuse_own(view: &ContainerView) -> Option<String> {
    view.rootfix_incident.as_ref().map(|incident| {
        format!(
            "refused, nothing done: container {} was created by rootfix (label {OWN_LABEL}={incident}); \
             rootfix does not act on its own containers",
            view.name
        )
    })
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
}
